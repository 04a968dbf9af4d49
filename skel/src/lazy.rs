//! Lazy decoding: a manifest is decoded only as far as the program can see (its `Shape`); every
//! other part becomes a placeholder for its input bytes, written back unchanged. The program
//! never walks into a placeholder: it only walks the paths the shape was built from, and needs
//! whole values only where the shape says `full`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use skel_trace::{decode_manifest, placeholder, Format, MsgpackReader, TraceError};

use crate::bytecode::Shape;

/// Decodes `bytes` as far as `shape` reaches; placeholders index into `raws`.
pub fn decode<'a>(
    bytes: &'a [u8],
    format: Format,
    shape: &Shape,
    raws: &mut Vec<&'a [u8]>,
) -> Result<Value, TraceError> {
    match format {
        // One pass of serde_json's own parser; skipped parts are captured as raw text.
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let value = ShapeSeed { shape, raws, root: true, input: bytes }.deserialize(&mut de);
            value.and_then(|v| de.end().map(|()| v)).map_err(|e| TraceError::Syntax {
                format,
                message: e.to_string(),
                location: Box::default(),
            })
        }
        Format::Msgpack => msgpack(bytes, shape, raws),
    }
}

/// One JSON event decoded in a single pass, each manifest lazily, with its own raw parts.
pub struct LazyEvent<'a> {
    pub ts: i64,
    pub applied_objs: Vec<(Value, Vec<&'a [u8]>)>,
    pub deleted_objs: Vec<(Value, Vec<&'a [u8]>)>,
}

/// Decodes an event and lazily every manifest in it, in one pass (for programs that run every
/// statement on every object, so every manifest will be decoded anyway). `None` for anything
/// unusual: the caller then takes the careful path, which also names the problem.
pub fn decode_event<'a>(bytes: &'a [u8], format: Format, shape: &Shape) -> Option<LazyEvent<'a>> {
    match format {
        Format::Json => {
            // One check of the whole event's UTF-8 is cheaper than the parser's check of each
            // string, which `from_str` skips.
            let text = std::str::from_utf8(bytes).ok()?;
            let mut de = serde_json::Deserializer::from_str(text);
            let event = EventSeed { shape, input: bytes }.deserialize(&mut de).ok()?;
            de.end().ok()?;
            Some(event)
        }
        Format::Msgpack => msgpack_event(bytes, shape),
    }
}

fn msgpack_event<'a>(bytes: &'a [u8], shape: &Shape) -> Option<LazyEvent<'a>> {
    let mut r = MsgpackReader::new(bytes);
    let (mut ts, mut applied, mut deleted) = (None, None, None);
    for _ in 0..r.map_len()? {
        let key = r.str()?;
        let list = match key {
            "ts" if ts.is_none() => {
                ts = Some(r.int()?);
                continue;
            }
            "applied_objs" if applied.is_none() => &mut applied,
            "deleted_objs" if deleted.is_none() => &mut deleted,
            "ts" | "applied_objs" | "deleted_objs" => return None,
            _ => {
                r.skip()?;
                continue;
            }
        };
        let n = r.array_len()?;
        let mut manifests = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            if !r.at_map() {
                return None;
            }
            let mut raws = Vec::new();
            let value = msgpack_value(&mut r, shape, &mut raws, true)?;
            manifests.push((value, raws));
        }
        *list = Some(manifests);
    }
    (r.pos() == bytes.len()).then_some(())?;
    Some(LazyEvent { ts: ts?, applied_objs: applied?, deleted_objs: deleted? })
}

struct EventSeed<'s, 'de> {
    shape: &'s Shape,
    input: &'de [u8],
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_, 'de> {
    type Value = LazyEvent<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_, 'de> {
    type Value = LazyEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut ts, mut applied, mut deleted) = (None, None, None);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let list = ManifestsSeed { shape: self.shape, input: self.input };
            match key.as_ref() {
                "ts" if ts.is_none() => ts = Some(map.next_value::<i64>()?),
                "applied_objs" if applied.is_none() => applied = Some(map.next_value_seed(list)?),
                "deleted_objs" if deleted.is_none() => deleted = Some(map.next_value_seed(list)?),
                "ts" | "applied_objs" | "deleted_objs" => return Err(de::Error::custom("a key twice")),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        match (ts, applied, deleted) {
            (Some(ts), Some(applied_objs), Some(deleted_objs)) => Ok(LazyEvent { ts, applied_objs, deleted_objs }),
            _ => Err(de::Error::custom("a key is missing")),
        }
    }
}

#[derive(Clone, Copy)]
struct ManifestsSeed<'s, 'de> {
    shape: &'s Shape,
    input: &'de [u8],
}

impl<'de> DeserializeSeed<'de> for ManifestsSeed<'_, 'de> {
    type Value = Vec<(Value, Vec<&'de [u8]>)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ManifestsSeed<'_, 'de> {
    type Value = Vec<(Value, Vec<&'de [u8]>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of manifests")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let mut raws = Vec::new();
            let seed = ShapeSeed { shape: self.shape, raws: &mut raws, root: true, input: self.input };
            match seq.next_element_seed(seed)? {
                // A manifest is an object; anything else goes the careful way.
                Some(v @ Value::Object(_)) => out.push((v, raws)),
                Some(_) => return Err(de::Error::custom("not an object")),
                None => return Ok(out),
            }
        }
    }
}

/// The value with every placeholder decoded: what decoding it whole and running the same
/// statements would have given (for messages about the object).
pub fn materialize(value: &Value, raws: &[&[u8]], format: Format) -> Value {
    match value {
        Value::String(s) => match skel_trace::placeholder_index(s).and_then(|i| raws.get(i)) {
            Some(raw) => decode_manifest(raw, format).unwrap_or(Value::Null),
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| materialize(v, raws, format)).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                match skel_trace::placeholder_index(k).and_then(|i| raws.get(i)) {
                    // A run of entries: `"k1":v1,"k2":v2` in JSON; in msgpack the entries
                    // after each other, as many as the value says.
                    Some(run) => {
                        let text = match format {
                            Format::Json => [b"{", *run, b"}"].concat(),
                            Format::Msgpack => {
                                let n = v.as_u64().unwrap_or(0);
                                let mut text = vec![0xdf];
                                text.extend_from_slice(&u32::try_from(n).unwrap_or(0).to_be_bytes());
                                text.extend_from_slice(run);
                                text
                            }
                        };
                        if let Ok(Value::Object(entries)) = decode_manifest(&text, format) {
                            out.extend(entries);
                        }
                    }
                    None => {
                        out.insert(k.clone(), materialize(v, raws, format));
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Ends a run of entries `(from, to, count)` of `input`: one placeholder key for all of them.
fn flush_run<'a>(
    run: &mut Option<(usize, usize, u64)>,
    map: &mut Map<String, Value>,
    raws: &mut Vec<&'a [u8]>,
    input: &'a [u8],
) {
    if let Some((from, to, count)) = run.take() {
        raws.push(input.get(from..to).unwrap_or(&[]));
        map.insert(skel_trace::placeholder_key(raws.len() - 1), Value::from(count));
    }
}

/// Whether a key stands for a run of entries.
fn is_run(key: &str) -> bool {
    skel_trace::placeholder_index(key).is_some()
}

fn stand_in<'a>(raws: &mut Vec<&'a [u8]>, bytes: &'a [u8]) -> Value {
    raws.push(bytes);
    placeholder(raws.len() - 1)
}

/// A part the program only walks to (tests for existence, removes or replaces), never into.
fn opaque(shape: &Shape) -> bool {
    !shape.full && shape.keys.is_empty() && shape.elems.is_none()
}

struct ShapeSeed<'s, 'r, 'de> {
    shape: &'s Shape,
    raws: &'r mut Vec<&'de [u8]>,
    root: bool,
    /// The whole input: keys and raw values borrowed from it locate runs of entries in it.
    input: &'de [u8],
}

/// Where a string borrowed from `input` starts in it.
fn offset_in(input: &[u8], s: &str) -> Option<usize> {
    let (base, at) = (input.as_ptr() as usize, s.as_ptr() as usize);
    (at >= base && at + s.len() <= base + input.len()).then(|| at - base)
}

/// A map key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
}

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_, '_, 'de> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.shape.full {
            return serde::Deserialize::deserialize(d);
        }
        if opaque(self.shape) && !self.root {
            let raw: &'de RawValue = serde::Deserialize::deserialize(d)?;
            return Ok(stand_in(self.raws, raw.get().as_bytes()));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_, '_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // The keys the program sees, and a run of other entries around each.
        let mut out = Map::with_capacity(self.shape.keys.len() * 2 + 1);
        // Consecutive entries the program cannot see become one run: one placeholder key for
        // all of their text, instead of a key and a placeholder each.
        let mut run: Option<(usize, usize)> = None;
        let flush = |run: &mut Option<(usize, usize)>, out: &mut Map<String, Value>, raws: &mut Vec<&'de [u8]>| {
            if let Some((start, end)) = run.take() {
                if let Some(text) = self.input.get(start..end) {
                    raws.push(text);
                    out.insert(skel_trace::placeholder_key(raws.len() - 1), Value::Null);
                }
            }
        };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.shape.key(&key) {
                Some(child) => {
                    flush(&mut run, &mut out, self.raws);
                    let v = map.next_value_seed(ShapeSeed {
                        shape: child,
                        raws: &mut *self.raws,
                        root: false,
                        input: self.input,
                    })?;
                    out.insert(key.into_owned(), v);
                }
                None => {
                    let raw: &'de RawValue = map.next_value()?;
                    let key_at = match &key {
                        std::borrow::Cow::Borrowed(k) => offset_in(self.input, k).map(|at| at.saturating_sub(1)),
                        std::borrow::Cow::Owned(_) => None,
                    };
                    match (key_at, offset_in(self.input, raw.get())) {
                        (Some(start), Some(at)) => {
                            let end = at + raw.get().len();
                            run = Some((run.map_or(start, |(s, _)| s), end));
                        }
                        // An escaped key cannot be located: it gets an entry of its own.
                        _ => {
                            flush(&mut run, &mut out, self.raws);
                            let v = stand_in(self.raws, raw.get().as_bytes());
                            out.insert(key.into_owned(), v);
                        }
                    }
                }
            }
        }
        flush(&mut run, &mut out, self.raws);
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        match &self.shape.elems {
            Some(elems) => {
                while let Some(v) = seq.next_element_seed(ShapeSeed {
                    shape: elems,
                    raws: &mut *self.raws,
                    root: false,
                    input: self.input,
                })? {
                    out.push(v);
                }
            }
            // The program walks keys here, not elements: an array is decoded as it is.
            None => {
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
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
}

/// The msgpack path, in one pass: maps and arrays along the shape are read item by item, and
/// every other value is skipped (and checked) once and kept as bytes.
fn msgpack<'a>(bytes: &'a [u8], shape: &Shape, raws: &mut Vec<&'a [u8]>) -> Result<Value, TraceError> {
    let mut r = MsgpackReader::new(bytes);
    let value = msgpack_value(&mut r, shape, raws, true);
    match value {
        Some(v) if r.pos() == bytes.len() => Ok(v),
        _ => Err(TraceError::Syntax {
            format: Format::Msgpack,
            message: "a manifest is not a valid msgpack map".into(),
            location: Box::default(),
        }),
    }
}

fn msgpack_value<'a>(r: &mut MsgpackReader<'a>, shape: &Shape, raws: &mut Vec<&'a [u8]>, root: bool) -> Option<Value> {
    let start = r.pos();
    if shape.full {
        r.skip()?;
        return decode_manifest(r.since(start), Format::Msgpack).ok();
    }
    if r.at_map() && (root || !shape.keys.is_empty()) {
        let n = r.map_len()?;
        let (mark, input) = (raws.len(), r.bytes());
        let mut map = Map::with_capacity(n.min(64));
        // Consecutive entries the program cannot see become one run, as in JSON; the run's
        // value is how many entries it holds (msgpack writes a map's length before it).
        let mut run: Option<(usize, usize, u64)> = None;
        for _ in 0..n {
            let at = r.pos();
            let key = r.str()?;
            match shape.key(key) {
                Some(child) => {
                    flush_run(&mut run, &mut map, raws, input);
                    let v = msgpack_value(r, child, raws, false)?;
                    map.insert(key.to_string(), v);
                }
                None => {
                    r.skip()?;
                    let (from, _, count) = run.unwrap_or((at, at, 0));
                    run = Some((from, r.pos(), count + 1));
                }
            }
        }
        flush_run(&mut run, &mut map, raws, input);
        let held: u64 = map.iter().map(|(k, v)| if is_run(k) { v.as_u64().unwrap_or(0) } else { 1 }).sum();
        if held < n as u64 {
            // A map whose keys repeat is decoded whole, as the careful decoder would.
            raws.truncate(mark);
            return decode_manifest(r.since(start), Format::Msgpack).ok();
        }
        return Some(Value::Object(map));
    }
    if let (Some(elems), true) = (&shape.elems, r.at_array()) {
        let n = r.array_len()?;
        let mut list = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            list.push(msgpack_value(r, elems, raws, false)?);
        }
        return Some(Value::Array(list));
    }
    r.skip()?;
    Some(stand_in(raws, r.since(start)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skel_trace::{encode_event, ObjOut};

    use super::*;

    fn shape_of(src: &str) -> Shape {
        crate::compile(src).program.shape
    }

    /// Decoding lazily and encoding gives the same bytes as decoding and encoding whole.
    #[test]
    fn round_trip_is_exact() {
        let obj = json!({"kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"env": [{"name": "X", "valueFrom": {"secretKeyRef": {}}}], "image": "i"}], "n": [1, 2.5, null, true, "s\n"]}, "status": {"x": 1}});
        let shape = shape_of("remove($e := spec.containers[*].env[*] | exists($e.valueFrom), $e); remove(status);");
        for format in [Format::Json, Format::Msgpack] {
            let bytes = match format {
                Format::Json => serde_json::to_vec(&obj).unwrap(),
                Format::Msgpack => rmp_serde::to_vec_named(&obj).unwrap(),
            };
            let mut raws = Vec::new();
            let value = decode(&bytes, format, &shape, &mut raws).unwrap();
            assert!(!raws.is_empty(), "something stayed encoded");
            assert_eq!(value["spec"]["containers"][0]["env"][0]["valueFrom"], placeholder(raws.len() - 4), "{format}");
            let mut lazy = Vec::new();
            encode_event(&mut lazy, format, 1, &[ObjOut::Lazy { value: &value, raws: &raws }], &[]).unwrap();
            let mut whole = Vec::new();
            encode_event(&mut whole, format, 1, &[ObjOut::Value(&obj)], &[]).unwrap();
            assert_eq!(lazy, whole, "{format}");
            assert_eq!(materialize(&value, &raws, format), obj, "{format}");
        }
    }

    /// A repeated key the program can see: the map is decoded whole, as the careful decoder does.
    #[test]
    fn msgpack_repeated_keys_decode_whole() {
        // {"status": 1, "a": 2, "status": 3}
        let bytes = [
            0x83, 0xa6, b's', b't', b'a', b't', b'u', b's', 0x01, 0xa1, b'a', 0x02, 0xa6, b's', b't', b'a', b't', b'u',
            b's', 0x03,
        ];
        let mut raws = Vec::new();
        let value = decode(&bytes, Format::Msgpack, &shape_of("remove(status);"), &mut raws).unwrap();
        assert_eq!(value, decode_manifest(&bytes, Format::Msgpack).unwrap());
        assert!(raws.is_empty());
    }

    #[test]
    fn pretty_input_and_escaped_keys_survive() {
        let text =
            "{\n  \"kind\" : \"Pod\",\n  \"a\\u0062\": 1 ,\n  \"status\": {\"x\": [1, 2]},\n  \"z\": \"\\u00e9\"\n}";
        let shape = shape_of("remove(status); modify(n = 1);");
        let mut raws = Vec::new();
        let value = decode(text.as_bytes(), Format::Json, &shape, &mut raws).unwrap();
        let mut out = Vec::new();
        encode_event(&mut out, Format::Json, 1, &[ObjOut::Lazy { value: &value, raws: &raws }], &[]).unwrap();
        let event: Value = serde_json::from_slice(&out).unwrap();
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(event["applied_objs"][0], want);
        assert_eq!(materialize(&value, &raws, Format::Json), want);
    }

    #[test]
    fn full_parts_are_decoded_whole() {
        let obj = json!({"kind": "Pod", "spec": {"a": {"b": [1]}}, "other": {"c": 1}});
        let shape = shape_of("modify(kind == \"Pod\", x = spec.a);");
        let bytes = serde_json::to_vec(&obj).unwrap();
        let mut raws = Vec::new();
        let value = decode(&bytes, Format::Json, &shape, &mut raws).unwrap();
        assert_eq!(value["spec"]["a"], json!({"b": [1]}));
        let whole = materialize(&value, &raws, Format::Json);
        assert_eq!(whole, obj);
        assert_eq!(value["kind"], json!("Pod"));
        // `other` is a run of its own: its whole entry stays text.
        assert!(value.get("other").is_none());
        assert_eq!(raws, [br#""other":{"c":1}"#.as_slice()]);
    }
}
