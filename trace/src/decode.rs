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
}

impl Stash {
    pub fn new(format: Format) -> Self {
        Stash { format, problem: None, ctx: Ctx::default() }
    }

    /// Stashes `err` and returns the serde error that stands in for it.
    pub fn fail<E: de::Error>(&mut self, err: TraceError) -> E {
        self.problem = Some(err);
        E::custom("invalid trace")
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

    /// Like serde_json's own `Value`: a non-finite float (only msgpack can hold one) becomes null.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
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

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed { stash: &mut *self.stash, what: "an object key" })? {
            let value = map.next_value_seed(ValueSeed { stash: &mut *self.stash })?;
            // Last one wins, as with serde_json's own `Value`.
            obj.insert(key, value);
        }
        Ok(Value::Object(obj))
    }
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

    #[test]
    fn msgpack_big_u64_and_nan() {
        // [u64 max, f64 NaN]
        let mut bytes = vec![0x92, 0xcf];
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        bytes.push(0xcb);
        bytes.extend_from_slice(&f64::NAN.to_be_bytes());
        assert_eq!(msgpack_value(&bytes), Ok(serde_json::json!([u64::MAX, null])));
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
