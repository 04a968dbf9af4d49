//! Lazy decoding: a manifest is decoded only as far as the program can see (its `Shape`); every
//! other part stays its input bytes (`Node::Raw`, `Node::Run`), written back unchanged. The
//! program never walks into those: it only walks the paths the shape was built from, and needs
//! whole values only where the shape says `full`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use skel_trace::{decode_manifest, offset_in, unsure_float, EventShell, Format, KeySeed, MsgpackReader, TraceError};

use crate::bytecode::Shape;
use crate::node::{repeats, Entries, Node};

/// Decodes `bytes` as far as `shape` reaches. Anything unusual (a syntax error, a key twice,
/// a float that may not be its text's number) goes to the careful decoder, which names the
/// problem, or decodes the manifest whole when there is none after all.
pub fn decode<'a>(bytes: &'a [u8], format: Format, shape: &Shape) -> Result<Node<'a>, TraceError> {
    let lazy = match format {
        // One pass of serde_json's own parser; skipped parts are captured as raw text.
        Format::Json => std::str::from_utf8(bytes).ok().and_then(|text| {
            // As for events: one UTF-8 check, then a parser that checks no string again.
            let mut de = serde_json::Deserializer::from_str(text);
            let value = ShapeSeed { shape, root: true, input: bytes }.deserialize(&mut de);
            value.and_then(|v| de.end().map(|()| v)).ok()
        }),
        Format::Msgpack => {
            let mut r = MsgpackReader::new(bytes);
            msgpack_value(&mut r, shape, true).filter(|_| r.pos() == bytes.len())
        }
    };
    match lazy {
        Some(node) => Ok(node),
        None => decode_manifest(bytes, format).map(|v| Node::from_value(&v)),
    }
}

/// One event decoded in a single pass, each manifest lazily.
pub struct LazyEvent<'a> {
    pub ts: i64,
    pub applied_objs: Vec<Node<'a>>,
    pub deleted_objs: Vec<Node<'a>>,
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
            let list = ManifestsSeed { shape, input: bytes };
            let (ts, applied_objs, deleted_objs) = EventShell(list).deserialize(&mut de).ok()?;
            de.end().ok()?;
            Some(LazyEvent { ts, applied_objs, deleted_objs })
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
            manifests.push(msgpack_value(&mut r, shape, true)?);
        }
        *list = Some(manifests);
    }
    (r.pos() == bytes.len()).then_some(())?;
    Some(LazyEvent { ts: ts?, applied_objs: applied?, deleted_objs: deleted? })
}

#[derive(Clone, Copy)]
struct ManifestsSeed<'s, 'de> {
    shape: &'s Shape,
    input: &'de [u8],
}

impl<'de> DeserializeSeed<'de> for ManifestsSeed<'_, 'de> {
    type Value = Vec<Node<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ManifestsSeed<'_, 'de> {
    type Value = Vec<Node<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of manifests")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let seed = ShapeSeed { shape: self.shape, root: true, input: self.input };
            match seq.next_element_seed(seed)? {
                // A manifest is an object; anything else goes the careful way.
                Some(v @ Node::Obj(_)) => out.push(v),
                Some(_) => return Err(de::Error::custom("not an object")),
                None => return Ok(out),
            }
        }
    }
}

/// A part the program only walks to (tests for existence, removes or replaces), never into.
fn opaque(shape: &Shape) -> bool {
    !shape.full && shape.keys.is_empty() && shape.elems.is_none()
}

struct ShapeSeed<'s, 'de> {
    shape: &'s Shape,
    root: bool,
    /// The whole input: keys and raw values borrowed from it locate runs of entries in it.
    input: &'de [u8],
}

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_, 'de> {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        if self.shape.full {
            return d.deserialize_any(WholeSeed);
        }
        if opaque(self.shape) && !self.root {
            let raw: &'de RawValue = serde::Deserialize::deserialize(d)?;
            return Ok(Node::Raw(raw.get().as_bytes()));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_, 'de> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        // The keys the program sees, and a run of other entries around each.
        let mut out: Entries<'de> = Vec::with_capacity(self.shape.keys.len() * 2 + 1);
        // Consecutive entries the program cannot see become one run: its text, instead of a
        // key and a value each.
        let mut run: Option<(usize, usize, u32)> = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.shape.key(&key) {
                Some(child) => {
                    flush_run(&mut run, &mut out, self.input);
                    let v = map.next_value_seed(ShapeSeed { shape: child, root: false, input: self.input })?;
                    out.push((key, v));
                }
                None => {
                    let raw: &'de RawValue = map.next_value()?;
                    let key_at = match &key {
                        Cow::Borrowed(k) => offset_in(self.input, k).map(|at| at.saturating_sub(1)),
                        Cow::Owned(_) => None,
                    };
                    match (key_at, offset_in(self.input, raw.get())) {
                        (Some(start), Some(at)) => {
                            let end = at + raw.get().len();
                            let (from, _, count) = run.unwrap_or((start, start, 0));
                            run = Some((from, end, count + 1));
                        }
                        // An escaped key cannot be located: it gets an entry of its own.
                        _ => {
                            flush_run(&mut run, &mut out, self.input);
                            out.push((key, Node::Raw(raw.get().as_bytes())));
                        }
                    }
                }
            }
        }
        flush_run(&mut run, &mut out, self.input);
        if repeats(&out) {
            return Err(de::Error::custom("a key twice"));
        }
        Ok(Node::Obj(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut out = Vec::new();
        match &self.shape.elems {
            Some(elems) => {
                while let Some(v) = seq.next_element_seed(ShapeSeed { shape: elems, root: false, input: self.input })? {
                    out.push(v);
                }
            }
            // The program walks keys here, not elements: an array is decoded as it is.
            None => {
                while let Some(v) = seq.next_element_seed(WholeSeed)? {
                    out.push(v);
                }
            }
        }
        Ok(Node::Arr(out))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        WholeSeed.visit_bool(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        WholeSeed.visit_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        WholeSeed.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        WholeSeed.visit_f64(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        WholeSeed.visit_borrowed_str(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        WholeSeed.visit_str(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        WholeSeed.visit_unit()
    }
}

/// Ends a run of entries `(from, to, count)` of `input`.
fn flush_run<'a>(run: &mut Option<(usize, usize, u32)>, out: &mut Entries<'a>, input: &'a [u8]) {
    if let Some((from, to, count)) = run.take() {
        out.push((Cow::Borrowed(""), Node::Run(input.get(from..to).unwrap_or(&[]), count)));
    }
}

/// A whole value, strings borrowed where they have no escapes.
#[derive(Clone, Copy)]
struct WholeSeed;

impl<'de> DeserializeSeed<'de> for WholeSeed {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WholeSeed {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut out: Entries<'de> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            out.push((key, map.next_value_seed(WholeSeed)?));
        }
        if repeats(&out) {
            return Err(de::Error::custom("a key twice"));
        }
        Ok(Node::Obj(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(WholeSeed)? {
            out.push(v);
        }
        Ok(Node::Arr(out))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Num(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Num(v.into()))
    }

    /// A float that may not be its text's number (0, or whole past 2^63) stops the lazy
    /// decoder: the careful one checks it against the text.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        match serde_json::Number::from_f64(v) {
            Some(n) if !unsure_float(v) => Ok(Node::Num(n)),
            _ => Err(de::Error::custom("a float that may not be exact")),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
}

/// The msgpack path, in one pass: maps and arrays along the shape are read item by item, and
/// every other value is skipped once and kept as bytes. What the program cannot see is checked
/// for structure only (as the splitter checks every byte, and as an empty script copies it);
/// what it decodes, in full.
fn msgpack_value<'a>(r: &mut MsgpackReader<'a>, shape: &Shape, root: bool) -> Option<Node<'a>> {
    let start = r.pos();
    if shape.full {
        r.skip()?;
        return decode_manifest(r.since(start), Format::Msgpack).ok().map(|v| Node::from_value(&v));
    }
    if r.at_map() && (root || !shape.keys.is_empty()) {
        let n = r.map_len()?;
        let input = r.bytes();
        let mut out: Entries<'a> = Vec::with_capacity(shape.keys.len() * 2 + 1);
        // Consecutive entries the program cannot see become one run, as in JSON.
        let mut run: Option<(usize, usize, u32)> = None;
        for _ in 0..n {
            let at = r.pos();
            // Keys are compared as bytes; every key and value, seen or not, must be what a
            // trace holds (UTF-8 strings), as the reader of whole manifests checks.
            let key = r.str_bytes()?;
            match shape.key_bytes(key) {
                Some(child) => {
                    flush_run(&mut run, &mut out, input);
                    let key = std::str::from_utf8(key).ok()?;
                    let v = msgpack_value(r, child, false)?;
                    out.push((Cow::Borrowed(key), v));
                }
                None => {
                    skel_trace::utf8(key).then_some(())?;
                    r.skip()?;
                    let (from, _, count) = run.unwrap_or((at, at, 0));
                    run = Some((from, r.pos(), count + 1));
                }
            }
        }
        flush_run(&mut run, &mut out, input);
        return (!repeats(&out)).then_some(Node::Obj(out));
    }
    if let (Some(elems), true) = (&shape.elems, r.at_array()) {
        let n = r.array_len()?;
        let mut list = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            list.push(msgpack_value(r, elems, false)?);
        }
        return Some(Node::Arr(list));
    }
    r.skip()?;
    Some(Node::Raw(r.since(start)))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn shape_of(src: &str) -> Shape {
        crate::compile(src).expect("compiles").program.shape
    }

    fn encoded(node: &Node<'_>, format: Format) -> Vec<u8> {
        let mut out = Vec::new();
        node.encode(&mut out, format).unwrap();
        out
    }

    /// In msgpack, a string that is not UTF-8 is an error whether the program reads it or not
    /// (as it is for an empty script, whose reader checks every manifest): what a script reads
    /// never decides whether a trace is accepted. A string it cannot see is still copied as it
    /// is.
    #[test]
    fn msgpack_checks_every_string() {
        // {"kind": "Pod", "note": <0xff as a str>}
        let bytes =
            [0x82, 0xa4, b'k', b'i', b'n', b'd', 0xa3, b'P', b'o', b'd', 0xa4, b'n', b'o', b't', b'e', 0xa1, 0xff];
        assert!(decode(&bytes, Format::Msgpack, &shape_of("remove(status);")).is_err());
        assert!(decode(&bytes, Format::Msgpack, &shape_of("remove(note == \"x\", status);")).is_err());
        // {"kind": "Pod", <0xff as a str>: 1}: a key too.
        let bytes = [0x82, 0xa4, b'k', b'i', b'n', b'd', 0xa3, b'P', b'o', b'd', 0xa1, 0xff, 0x01];
        assert!(decode(&bytes, Format::Msgpack, &shape_of("remove(status);")).is_err());
        // {"kind": "Pod", "note": "\u{e9}"}: a string the program does not read, copied as it is.
        let bytes = [
            0x82, 0xa4, b'k', b'i', b'n', b'd', 0xa3, b'P', b'o', b'd', 0xa4, b'n', b'o', b't', b'e', 0xa2, 0xc3, 0xa9,
        ];
        let unseen = decode(&bytes, Format::Msgpack, &shape_of("remove(status);")).unwrap();
        assert_eq!(encoded(&unseen, Format::Msgpack), bytes);
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
            let node = decode(&bytes, format, &shape).unwrap();
            let env = node.get("spec").and_then(|s| s.get("containers")).map(|c| match c {
                Node::Arr(items) => items[0].get("env").cloned(),
                _ => None,
            });
            let Some(Some(Node::Arr(env))) = env else { panic!("env decoded: {node:?}") };
            assert!(matches!(env[0].get("valueFrom"), Some(Node::Raw(_))), "{format}");
            // `kind` and `metadata` stay bytes, in one run.
            let Node::Obj(top) = &node else { panic!() };
            assert!(matches!(top[0], (_, Node::Run(_, 2))), "{format}: {top:?}");
            assert_eq!(encoded(&node, format), bytes, "{format}");
            assert_eq!(node.to_value(format), obj, "{format}");
        }
    }

    /// A repeated key the program can see cannot be kept, and choosing a value would change the
    /// object quietly: the careful decoder says where it is. One it cannot see stays bytes.
    #[test]
    fn repeated_keys_are_errors() {
        // {"status": 1, "a": 2, "status": 3}
        let bytes = [
            0x83, 0xa6, b's', b't', b'a', b't', b'u', b's', 0x01, 0xa1, b'a', 0x02, 0xa6, b's', b't', b'a', b't', b'u',
            b's', 0x03,
        ];
        let shape = shape_of("remove(status);");
        let twice = |e: TraceError| matches!(e, TraceError::DuplicateKey { ref key, .. } if key == "status");
        assert!(decode(&bytes, Format::Msgpack, &shape).is_err_and(twice));
        let text = br#"{"status": 1, "a": 2, "status": 3}"#;
        assert!(decode(text, Format::Json, &shape).is_err_and(twice));
        let unseen = decode(text, Format::Json, &shape_of("remove(other);")).unwrap();
        assert_eq!(encoded(&unseen, Format::Json), text.to_vec());
    }

    /// A float that may not be its text's number is checked against the text: an exact one is
    /// decoded (whole), an inexact one is an error.
    #[test]
    fn unsure_floats_are_checked_against_the_text() {
        let shape = shape_of("modify(kind == \"Pod\", x = spec.a);");
        let node = decode(br#"{"kind": "Pod", "spec": {"a": [0.0, 1e20]}}"#, Format::Json, &shape).unwrap();
        assert_eq!(node.to_value(Format::Json), json!({"kind": "Pod", "spec": {"a": [0.0, 1e20]}}));
        for text in [r#"{"spec": {"a": 1e-400}}"#, r#"{"spec": {"a": 100000000000000000000}}"#] {
            let e = decode(text.as_bytes(), Format::Json, &shape);
            assert!(matches!(e, Err(TraceError::InexactNumber { .. })), "{text}: {e:?}");
        }
    }

    #[test]
    fn pretty_input_and_escaped_keys_survive() {
        let text =
            "{\n  \"kind\" : \"Pod\",\n  \"a\\u0062\": 1 ,\n  \"status\": {\"x\": [1, 2]},\n  \"z\": \"\\u00e9\"\n}";
        let shape = shape_of("remove(status); modify(n = 1);");
        let node = decode(text.as_bytes(), Format::Json, &shape).unwrap();
        let back: Value = serde_json::from_slice(&encoded(&node, Format::Json)).unwrap();
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, want);
        assert_eq!(node.to_value(Format::Json), want);
    }

    #[test]
    fn full_parts_are_decoded_whole() {
        let obj = json!({"kind": "Pod", "spec": {"a": {"b": [1]}}, "other": {"c": 1}});
        let shape = shape_of("modify(kind == \"Pod\", x = spec.a);");
        let bytes = serde_json::to_vec(&obj).unwrap();
        let node = decode(&bytes, Format::Json, &shape).unwrap();
        assert_eq!(node.get("spec").and_then(|s| s.get("a")), Some(&Node::from_value(&json!({"b": [1]}))));
        assert_eq!(node.to_value(Format::Json), obj);
        assert_eq!(node.get("kind").and_then(Node::as_str), Some("Pod"));
        // `other` is a run of its own: its whole entry stays text.
        assert!(node.get("other").is_none());
        let Node::Obj(top) = &node else { panic!() };
        assert_eq!(top[2].1, Node::Run(br#""other":{"c":1}"#, 1));
    }
}
