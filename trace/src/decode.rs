//! Shared reading machinery: the error stash and position context, descriptions of unexpected
//! values, and the seeds that decode JSON-like values, manifests and integers from either format.
//!
//! Serde errors can only carry text, so every problem found while decoding is stashed here as a
//! structured `TraceError` and a placeholder serde error is returned; `read_trace` then takes the
//! stashed error back and gives it the position the deserializer reports.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::TraceError;
use crate::model::Format;

/// The message of the serde error that stands in for a stashed one.
const STAND_IN: &str = "invalid trace";

/// Where the reader is, kept current while decoding so errors can name the part of the trace.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ctx {
    pub section: Option<&'static str>,
    pub event: Option<usize>,
    pub field: Option<&'static str>,
    pub item: Option<usize>,
}

/// The side slot for the structured error, plus the context it happened in.
#[derive(Debug)]
pub(crate) struct Stash {
    pub format: Format,
    pub problem: Option<TraceError>,
    pub ctx: Ctx,
    /// A JSON float was read that may not be the number its text says (see `unsure_float`):
    /// whoever has the text checks it (`check_json_numbers`).
    pub unsure_number: bool,
}

impl Stash {
    pub fn new(format: Format) -> Self {
        Stash { format, problem: None, ctx: Ctx::default(), unsure_number: false }
    }

    /// Stashes `err` and returns the serde error that stands in for it.
    pub fn fail<E: de::Error>(&mut self, err: TraceError) -> E {
        self.problem = Some(err);
        E::custom(STAND_IN)
    }

    /// `events[12].applied_objs[3]`, `config`, ... or `None` outside every section.
    pub fn path(&self) -> Option<String> {
        let section = self.ctx.section?;
        let mut path = section.to_string();
        if let Some(event) = self.ctx.event {
            path.push_str(&format!("[{event}]"));
            if let Some(field) = self.ctx.field {
                path.push('.');
                path.push_str(field);
                if let Some(item) = self.ctx.item {
                    path.push_str(&format!("[{item}]"));
                }
            }
        }
        Some(path)
    }
}

/// What was found where something else was expected.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes,
    Null,
    Seq,
    Map,
    Ext,
}

impl Found {
    pub fn str(s: &str) -> Found {
        Found::Str(shorten(s))
    }

    pub fn describe(&self, format: Format) -> String {
        match self {
            Found::Bool(b) => format!("`{b}`"),
            Found::Int(i) => format!("the integer `{i}`"),
            Found::Float(x) => format!("the number `{x}`"),
            Found::Str(s) => format!("the string `\"{s}\"`"),
            Found::Bytes => "binary data".into(),
            Found::Null => "null".into(),
            Found::Seq => "a list".into(),
            Found::Map => match format {
                Format::Json => "an object".into(),
                Format::Msgpack => "a map".into(),
            },
            Found::Ext => "a msgpack extension value".into(),
        }
    }
}

/// Cuts long strings for messages.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or(s)),
        None => s.to_string(),
    }
}

/// A visitor that reports any value kind it does not handle through the stash.
pub(crate) trait Reject<'de>: Visitor<'de> + Sized {
    fn reject<E: de::Error>(self, found: Found) -> Result<Self::Value, E>;
}

/// Implements the listed `visit_*` methods as rejections, so that every value kind goes through
/// our own messages instead of serde's (which would name Rust types).
macro_rules! reject {
    ($lt:lifetime; $($kind:ident),* $(,)?) => { $( reject!(@one $lt $kind); )* };
    (@one $lt:lifetime bool) => {
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Bool(v))
        }
    };
    (@one $lt:lifetime i64) => {
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Int(i128::from(v)))
        }
    };
    (@one $lt:lifetime u64) => {
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Int(i128::from(v)))
        }
    };
    (@one $lt:lifetime f64) => {
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Float(v))
        }
    };
    (@one $lt:lifetime str) => {
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::str(v))
        }
    };
    (@one $lt:lifetime bytes) => {
        fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Bytes)
        }
    };
    (@one $lt:lifetime unit) => {
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Null)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Null)
        }
    };
    (@one $lt:lifetime seq) => {
        fn visit_seq<A: serde::de::SeqAccess<$lt>>(self, _: A) -> Result<Self::Value, A::Error> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Seq)
        }
    };
    (@one $lt:lifetime map) => {
        fn visit_map<A: serde::de::MapAccess<$lt>>(self, _: A) -> Result<Self::Value, A::Error> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Map)
        }
    };
    (@one $lt:lifetime ext) => {
        fn visit_newtype_struct<D: serde::de::Deserializer<$lt>>(
            self,
            _: D,
        ) -> Result<Self::Value, D::Error> {
            $crate::decode::Reject::reject(self, $crate::decode::Found::Ext)
        }
    };
}
pub(crate) use reject;

// ---------------------------------------------------------------------------------------------
// Numbers kept exactly

/// Whether a float read from JSON may not be the number its text says: serde_json reads an
/// integer beyond 64 bits as the nearest float, and a number too small for a float as 0, and
/// the float alone cannot tell `1e-400` from `0.0`, or `123456789012345678901` from `1.2e20`.
/// Only such floats (0, or whole and beyond 2^63) send the reader to the text.
pub fn unsure_float(v: f64) -> bool {
    v == 0.0 || (v.fract() == 0.0 && v.abs() >= 9_223_372_036_854_775_808.0)
}

/// The first number in JSON text that a 64-bit integer or float cannot hold exactly: its
/// offset, its text and why.
pub(crate) fn first_inexact_number(bytes: &[u8]) -> Option<(usize, &str, &'static str)> {
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        match c {
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += if c == b'\\' { 2 } else { 1 };
                    if c == b'"' {
                        break;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while matches!(bytes.get(i), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    i += 1;
                }
                let text = bytes.get(start..i).and_then(|t| std::str::from_utf8(t).ok()).unwrap_or("");
                if let Some(why) = inexact(text) {
                    return Some((start, text, why));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Why a JSON number's text is not held exactly by a 64-bit integer or float, if it is not.
/// (A decimal fraction rounds to the nearest float, as SimKube reads it: that is not refused.)
fn inexact(text: &str) -> Option<&'static str> {
    if !text.contains(['.', 'e', 'E']) {
        let fits = text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
        return (!fits).then_some("it is an integer beyond 64 bits (as a float it would be rounded)");
    }
    let v = text.parse::<f64>().ok()?;
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    if v.is_infinite() {
        Some("it is beyond the largest 64-bit float (it would be infinite)")
    } else if v == 0.0 && mantissa.bytes().any(|b| matches!(b, b'1'..=b'9')) {
        Some("it is too small for a 64-bit float (it would become 0)")
    } else {
        None
    }
}

/// Checks that every number in JSON text is held exactly (see `first_inexact_number`); the
/// error has no position (the caller says which object it is).
pub(crate) fn check_json_numbers(bytes: &[u8]) -> Result<(), TraceError> {
    match first_inexact_number(bytes) {
        Some((_, text, why)) => Err(TraceError::inexact_number(text, why)),
        None => Ok(()),
    }
}

/// The 1-based line and column of `offset` in JSON text.
pub(crate) fn json_position(bytes: &[u8], offset: usize) -> crate::error::Location {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|b| **b != b'\n').count();
    crate::error::Location { line: Some(line), column: Some(column), ..Default::default() }
}

/// Upper bound for preallocating from a length the input claims (it may lie).
pub(crate) fn cautious(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(1024)
}

// ---------------------------------------------------------------------------------------------
// JSON-like values (manifests, config, index)

/// Decodes any JSON-like value. Binary and extension values and non-string map keys are errors.
pub(crate) struct ValueSeed<'a> {
    pub stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor { stash: self.stash })
    }
}

pub(crate) struct ValueVisitor<'a> {
    pub stash: &'a mut Stash,
}

const VALUE_EXPECTED: &str = "a JSON value (null, a boolean, number, string, list or object)";

impl<'de> Reject<'de> for ValueVisitor<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<Value, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            "every value in a trace",
            VALUE_EXPECTED,
            found,
            "trace objects are JSON-like; binary and extension values cannot be read",
        )))
    }
}

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(VALUE_EXPECTED)
    }

    reject!('de; bytes, ext);

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    /// A float that is not finite (only msgpack can hold one) has no JSON value: an error, not
    /// null. A JSON float that may not be its text's number is checked against the text.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match Number::from_f64(v) {
            Some(n) => {
                self.stash.unsure_number |= self.stash.format == Format::Json && unsure_float(v);
                Ok(Value::Number(n))
            }
            None => Err(self.stash.fail(TraceError::inexact_number(&v.to_string(), "JSON has no such number"))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(cautious(seq.size_hint()));
        while let Some(item) = seq.next_element_seed(ValueSeed { stash: &mut *self.stash })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    /// A key twice is an error: one of the two values would be dropped quietly.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed { stash: &mut *self.stash, what: "an object key" })? {
            let value = map.next_value_seed(ValueSeed { stash: &mut *self.stash })?;
            match obj.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    let key = slot.key().clone();
                    let what = match self.stash.format {
                        Format::Json => "an object",
                        Format::Msgpack => "a map",
                    };
                    return Err(self.stash.fail(TraceError::DuplicateKey {
                        what: what.into(),
                        key,
                        location: Box::default(),
                    }));
                }
            }
        }
        Ok(Value::Object(obj))
    }
}

/// A JSON-like value from any serde deserializer (a YAML document of manifests, say), read as
/// a trace's values are: a key twice, a non-string key, a float JSON has not are errors, never
/// changed quietly. The error is the problem, and where the deserializer says it is.
pub fn value_from<'de, D: Deserializer<'de>>(d: D) -> Result<Value, String>
where
    D::Error: fmt::Display,
{
    let mut stash = Stash::new(Format::Json);
    ValueSeed { stash: &mut stash }.deserialize(d).map_err(|e| {
        let theirs = e.to_string();
        match stash.problem.take() {
            // The deserializer's stand-in error carries the position, if it knows one.
            Some(problem) => format!("{problem}{}", theirs.strip_prefix(STAND_IN).unwrap_or("")),
            None => theirs,
        }
    })
}

/// A map key that must be a string.
pub(crate) struct KeySeed<'a> {
    pub stash: &'a mut Stash,
    pub what: &'static str,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for KeySeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<String, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            self.what,
            "a string",
            found,
            "objects in a trace are keyed by strings",
        )))
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    reject!('de; bool, i64, u64, f64, bytes, unit, seq, map, ext);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

/// A manifest: a JSON-like value that must be an object.
pub(crate) struct ManifestSeed<'a> {
    pub stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for ManifestSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for ManifestSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<Value, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            "an entry of an event's objects",
            "an object (a Kubernetes manifest)",
            found,
            "`applied_objs` and `deleted_objs` are lists of Kubernetes objects",
        )))
    }
}

impl<'de> Visitor<'de> for ManifestSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, seq, ext);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        ValueVisitor { stash: self.stash }.visit_map(map)
    }
}

// ---------------------------------------------------------------------------------------------
// Integers

/// A signed 64-bit integer such as a timestamp; `what` and `help` name it in errors.
pub(crate) struct I64Seed<'a> {
    pub stash: &'a mut Stash,
    pub what: &'static str,
    pub expected: &'static str,
    pub help: &'static str,
}

impl<'de> DeserializeSeed<'de> for I64Seed<'_> {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for I64Seed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<i64, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(self.what, self.expected, found, self.help)))
    }
}

impl<'de> Visitor<'de> for I64Seed<'_> {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }

    reject!('de; bool, f64, str, bytes, unit, seq, map, ext);

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        match i64::try_from(v) {
            Ok(v) => Ok(v),
            Err(_) => self.reject(Found::Int(i128::from(v))),
        }
    }
}

/// Any integer, kept wide so out-of-range values can be named exactly (the trace `version`).
pub(crate) struct IntSeed<'a> {
    pub stash: &'a mut Stash,
    pub what: &'static str,
    pub expected: &'static str,
    pub help: &'static str,
}

impl<'de> DeserializeSeed<'de> for IntSeed<'_> {
    type Value = i128;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i128, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for IntSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<i128, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(self.what, self.expected, found, self.help)))
    }
}

impl<'de> Visitor<'de> for IntSeed<'_> {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }

    reject!('de; bool, f64, str, bytes, unit, seq, map, ext);

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(i128::from(v))
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn json_value(text: &str) -> Result<Value, String> {
        let mut stash = Stash::new(Format::Json);
        let mut de = serde_json::Deserializer::from_str(text);
        ValueSeed { stash: &mut stash }.deserialize(&mut de).map_err(|e| match stash.problem.take() {
            Some(p) => p.to_string(),
            None => e.to_string(),
        })
    }

    fn msgpack_value(bytes: &[u8]) -> Result<Value, String> {
        let mut stash = Stash::new(Format::Msgpack);
        let mut de = rmp_serde::Deserializer::new(bytes);
        ValueSeed { stash: &mut stash }.deserialize(&mut de).map_err(|e| match stash.problem.take() {
            Some(p) => p.to_string(),
            None => e.to_string(),
        })
    }

    #[test]
    fn json_values_keep_order_and_types() {
        let text = r#"{"b": 1, "a": [true, null, -3, 1.5, 18446744073709551615, "s"]}"#;
        let v = json_value(text);
        assert_eq!(
            v.as_ref().map(|v| v.to_string()),
            Ok(r#"{"b":1,"a":[true,null,-3,1.5,18446744073709551615,"s"]}"#.to_string())
        );
    }

    #[test]
    fn msgpack_binary_is_rejected() {
        // {"a": bin8 of 1 byte}
        let bytes = [0x81, 0xa1, b'a', 0xc4, 0x01, 0x00];
        assert_eq!(
            msgpack_value(&bytes),
            Err("every value in a trace must be a JSON value (null, a boolean, number, string, list or object), found binary data".into())
        );
    }

    #[test]
    fn msgpack_ext_and_int_keys_are_rejected() {
        let ext = [0x91, 0xd4, 0x01, 0x00];
        assert!(msgpack_value(&ext).err().is_some_and(|e| e.contains("a msgpack extension value")));
        let int_key = [0x81, 0x01, 0x02];
        assert_eq!(msgpack_value(&int_key), Err("an object key must be a string, found the integer `1`".into()));
    }

    /// A float JSON has no number for is an error, never null.
    #[test]
    fn msgpack_big_u64_and_nan() {
        let mut bytes = vec![0x91, 0xcf];
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(msgpack_value(&bytes), Ok(serde_json::json!([u64::MAX])));
        for (x, text) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf")] {
            let mut bytes = vec![0x91, 0xcb];
            bytes.extend_from_slice(&x.to_be_bytes());
            let want = format!("the number `{text}` cannot be kept exactly: JSON has no such number");
            assert_eq!(msgpack_value(&bytes), Err(want));
        }
    }

    /// A key twice is an error, whichever value would win.
    #[test]
    fn a_key_twice_is_an_error() {
        assert_eq!(json_value(r#"{"a": {"b": 1, "b": 2}}"#), Err("an object has `b` twice".into()));
        // {"k": 1, "k": 1}
        assert_eq!(msgpack_value(&[0x82, 0xa1, b'k', 0x01, 0xa1, b'k', 0x01]), Err("a map has `k` twice".into()));
    }

    /// Floats that may not be their text's number are noted for the text to decide; the text
    /// finds integers beyond 64 bits and numbers too small or too large for a float.
    #[test]
    fn inexact_numbers_are_found_in_the_text() {
        for (text, unsure) in [("0", false), ("0.0", true), ("1.5", false), ("1e300", true), ("-1e19", true)] {
            let mut stash = Stash::new(Format::Json);
            let mut de = serde_json::Deserializer::from_str(text);
            assert!(ValueSeed { stash: &mut stash }.deserialize(&mut de).is_ok());
            assert_eq!(stash.unsure_number, unsure, "{text}");
        }
        let first = |text: &str| first_inexact_number(text.as_bytes()).map(|(at, t, _)| (at, t.to_string()));
        let fine = r#"{"a": [0, -0, 0.0, 0e5, 1.5e-300, 1e300, -9223372036854775808, 18446744073709551615],
            "s": "12345678901234567890123 1e-400 \" 1e999"}"#;
        assert_eq!(first(fine), None);
        assert_eq!(first(r#"{"a": 1, "b": 18446744073709551616}"#), Some((14, "18446744073709551616".into())));
        assert_eq!(first("[-9223372036854775809]"), Some((1, "-9223372036854775809".into())));
        assert_eq!(first(r#"{"x": 1e-400}"#), Some((6, "1e-400".into())));
        assert_eq!(first("[0.000e-999, 1E+400]"), Some((13, "1E+400".into())));
        assert_eq!(
            json_position(b"{\n  \"a\": 1}", 9),
            crate::error::Location { line: Some(2), column: Some(8), ..Default::default() }
        );
    }

    #[test]
    fn shorten_cuts_long_strings() {
        assert_eq!(shorten("abc"), "abc");
        let long = "é".repeat(50);
        assert_eq!(shorten(&long).chars().count(), 41);
    }

    #[test]
    fn path_rendering() {
        let mut stash = Stash::new(Format::Json);
        assert_eq!(stash.path(), None);
        stash.ctx = Ctx { section: Some("events"), event: Some(3), field: Some("applied_objs"), item: Some(1) };
        assert_eq!(stash.path().as_deref(), Some("events[3].applied_objs[1]"));
        stash.ctx.item = None;
        stash.ctx.field = Some("ts");
        assert_eq!(stash.path().as_deref(), Some("events[3].ts"));
    }
}
