//! The value the VM works on: JSON's data model with strings borrowed from the input, objects as
//! vectors of entries (a Kubernetes object has a handful of keys a level: a scan beats hashing,
//! and building one costs one allocation), and two forms that stand for input not decoded
//! (lazy decoding): a whole value, and a run of an object's entries. Both are written back as
//! the input's bytes, so a `Node` holding them can only be written in the input's format.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};
use skel_trace::{decode_manifest, Format, TraceError};

#[derive(Debug, Clone)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Node<'a>>),
    Obj(Vec<(Cow<'a, str>, Node<'a>)>),
    /// A value still encoded in the input's format.
    Raw(&'a [u8]),
    /// Only as an object's entry, under an empty key: `count` consecutive entries still encoded
    /// (JSON: `"k1":v1,"k2":v2`; msgpack: keys and values one after another).
    Run(&'a [u8], u32),
}

/// How messages name the type of a value still encoded, from its first byte: JSON's first
/// character, or msgpack's marker (a value that is one byte below 0x80 is a number in both).
fn raw_type_name(bytes: &[u8]) -> &'static str {
    match (bytes.first().copied(), bytes.len()) {
        (None, _) => "nothing",
        (Some(b), 1) if b < 0x80 => "a number",
        (Some(b'['), _) | (Some(0x90..=0x9f | 0xdc | 0xdd), _) => "an array",
        (Some(b'{'), _) | (Some(0x80..=0x8f | 0xde | 0xdf), _) => "an object",
        (Some(b'"'), _) | (Some(0xa0..=0xbf | 0xd9..=0xdb), _) => "a string",
        (Some(b't' | b'f'), _) | (Some(0xc2 | 0xc3), _) => "a boolean",
        (Some(b'n'), _) | (Some(0xc0), _) => "null",
        (Some(b'-' | b'0'..=b'9'), _) | (Some(0xca..=0xd3 | 0xe0..=0xff), _) => "a number",
        _ => "a value",
    }
}

/// An object's entries.
pub type Entries<'a> = Vec<(Cow<'a, str>, Node<'a>)>;

impl<'a> Node<'a> {
    /// The value of field `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Obj(entries) => field(entries, key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// How messages name the type of a value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Num(_) => "a number",
            Node::Str(_) => "a string",
            Node::Arr(_) => "an array",
            Node::Obj(_) => "an object",
            Node::Raw(bytes) => raw_type_name(bytes),
            Node::Run(..) => "an object's entries",
        }
    }

    /// A node that owns everything in it.
    pub fn from_value(v: &Value) -> Node<'static> {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Num(n.clone()),
            Value::String(s) => Node::Str(Cow::Owned(s.clone())),
            Value::Array(items) => Node::Arr(items.iter().map(Node::from_value).collect()),
            Value::Object(m) => {
                Node::Obj(m.iter().map(|(k, v)| (Cow::Owned(k.clone()), Node::from_value(v))).collect())
            }
        }
    }

    /// The whole value, decoding what is still encoded (in `format`, the input's).
    pub fn to_value(&self, format: Format) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Num(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.to_string()),
            Node::Arr(items) => Value::Array(items.iter().map(|n| n.to_value(format)).collect()),
            Node::Obj(entries) => {
                let mut out = Map::new();
                for (k, v) in entries {
                    match v {
                        Node::Run(bytes, count) => {
                            if let Ok(Value::Object(m)) = decode_run(bytes, *count, format) {
                                out.extend(m);
                            }
                        }
                        _ => {
                            out.insert(k.to_string(), v.to_value(format));
                        }
                    }
                }
                Value::Object(out)
            }
            Node::Raw(bytes) => decode_manifest(bytes, format).unwrap_or(Value::Null),
            Node::Run(..) => Value::Null,
        }
    }

    /// Appends the node in `format`: as serde_json's compact writer or rmp-serde writes the
    /// same value, with what is still encoded copied as it is.
    pub fn encode(&self, out: &mut Vec<u8>, format: Format) -> Result<(), TraceError> {
        match format {
            Format::Json => {
                self.json(out);
                Ok(())
            }
            Format::Msgpack => self.msgpack(out),
        }
    }

    fn json(&self, out: &mut Vec<u8>) {
        match self {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            Node::Num(n) => {
                // Writing a number to a vector cannot fail.
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Node::Str(s) => json_str(out, s),
            Node::Arr(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.json(out);
                }
                out.push(b']');
            }
            Node::Obj(entries) => {
                out.push(b'{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if let Node::Run(bytes, _) = v {
                        out.extend_from_slice(bytes);
                        continue;
                    }
                    json_str(out, k);
                    out.push(b':');
                    v.json(out);
                }
                out.push(b'}');
            }
            Node::Raw(bytes) => out.extend_from_slice(bytes),
            Node::Run(..) => {}
        }
    }

    fn msgpack(&self, out: &mut Vec<u8>) -> Result<(), TraceError> {
        let w =
            |e: rmp::encode::ValueWriteError| TraceError::Encode { format: Format::Msgpack, message: e.to_string() };
        match self {
            Node::Null => out.push(0xc0),
            Node::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Node::Num(n) => rmp_serde::encode::write_named(out, n)
                .map_err(|e| TraceError::Encode { format: Format::Msgpack, message: e.to_string() })?,
            Node::Str(s) => rmp::encode::write_str(out, s).map_err(w)?,
            Node::Arr(items) => {
                rmp::encode::write_array_len(out, items.len() as u32).map_err(w)?;
                for item in items {
                    item.msgpack(out)?;
                }
            }
            Node::Obj(entries) => {
                let len: u64 =
                    entries.iter().map(|(_, v)| if let Node::Run(_, n) = v { u64::from(*n) } else { 1 }).sum();
                rmp::encode::write_map_len(out, len as u32).map_err(w)?;
                for (k, v) in entries {
                    if let Node::Run(bytes, _) = v {
                        out.extend_from_slice(bytes);
                        continue;
                    }
                    rmp::encode::write_str(out, k).map_err(w)?;
                    v.msgpack(out)?;
                }
            }
            Node::Raw(bytes) => out.extend_from_slice(bytes),
            Node::Run(..) => {}
        }
        Ok(())
    }
}

/// Values compare as JSON values do (`serde_json::Value`'s equality): objects as maps,
/// numbers by representation (`1` is not `1.0`).
impl PartialEq for Node<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Node::Null, Node::Null) => true,
            (Node::Bool(a), Node::Bool(b)) => a == b,
            (Node::Num(a), Node::Num(b)) => a == b,
            (Node::Str(a), Node::Str(b)) => a == b,
            (Node::Arr(a), Node::Arr(b)) => a == b,
            (Node::Obj(a), Node::Obj(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
            }
            (Node::Raw(a), Node::Raw(b)) => a == b,
            (Node::Run(a, n), Node::Run(b, m)) => a == b && n == m,
            _ => false,
        }
    }
}

/// Numbers order numerically, strings by Unicode scalar values; any other pair is unordered.
pub fn order(a: &Node<'_>, b: &Node<'_>) -> Option<Ordering> {
    match (a, b) {
        (Node::Num(x), Node::Num(y)) => order_numbers(x, y),
        (Node::Str(x), Node::Str(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Numbers in numeric order, exactly for integers of either sign.
pub fn order_numbers(x: &Number, y: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        Some(x.cmp(&y))
    } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
        Some(x.cmp(&y))
    } else if x.as_i64().is_some_and(|x| x < 0) && y.is_u64() {
        Some(Ordering::Less)
    } else if x.is_u64() && y.as_i64().is_some_and(|y| y < 0) {
        Some(Ordering::Greater)
    } else {
        x.as_f64().zip(y.as_f64()).and_then(|(x, y)| x.partial_cmp(&y))
    }
}

/// Field `key` of an object's entries (runs are not fields).
pub fn field<'n, 'a>(entries: &'n [(Cow<'a, str>, Node<'a>)], key: &str) -> Option<&'n Node<'a>> {
    entries.iter().find(|(k, v)| same_key(k.as_bytes(), key.as_bytes()) && !matches!(v, Node::Run(..))).map(|(_, v)| v)
}

pub fn field_mut<'n, 'a>(entries: &'n mut [(Cow<'a, str>, Node<'a>)], key: &str) -> Option<&'n mut Node<'a>> {
    entries
        .iter_mut()
        .find(|(k, v)| same_key(k.as_bytes(), key.as_bytes()) && !matches!(v, Node::Run(..)))
        .map(|(_, v)| v)
}

/// Where field `key` is among an object's entries.
pub fn field_index(entries: &[(Cow<'_, str>, Node<'_>)], key: &str) -> Option<usize> {
    entries.iter().position(|(k, v)| same_key(k.as_bytes(), key.as_bytes()) && !matches!(v, Node::Run(..)))
}

/// Key equality, with the first byte compared before the rest: keys of one length mostly
/// differ there, and the whole comparison is a call.
#[inline]
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a == b
}

/// Whether a key repeats among an object's fields (entries the program sees; a run of others
/// is kept as its bytes, whatever it holds). Such an object cannot be kept as it is, and
/// choosing one of the values would change it quietly: the lazy decoder leaves it to the
/// careful one, which says where the key is.
pub fn repeats(entries: &Entries<'_>) -> bool {
    let fields = || entries.iter().enumerate().filter(|(_, (_, v))| !matches!(v, Node::Run(..)));
    if entries.len() <= 16 {
        fields().any(|(i, (k, _))| entries.get(i + 1..).is_some_and(|rest| field(rest, k).is_some()))
    } else {
        let mut keys: Vec<&str> = fields().map(|(_, (k, _))| k.as_ref()).collect();
        keys.sort_unstable();
        keys.windows(2).any(|w| w.first() == w.get(1))
    }
}

/// A string as serde_json writes it.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string to a vector cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// The entries of a run, as a map.
fn decode_run(bytes: &[u8], count: u32, format: Format) -> Result<Value, TraceError> {
    let text = match format {
        Format::Json => [b"{", bytes, b"}"].concat(),
        Format::Msgpack => {
            let mut text = vec![0xdf];
            text.extend_from_slice(&count.to_be_bytes());
            text.extend_from_slice(bytes);
            text
        }
    };
    decode_manifest(&text, format)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn encodes_as_serde_does() {
        let v = json!({"a": [1, -2, 2.5, "x\"y\n", null, true, {"é": {}}], "b": 18446744073709551615u64, "c": ""});
        let n = Node::from_value(&v);
        let mut out = Vec::new();
        n.encode(&mut out, Format::Json).unwrap();
        assert_eq!(out, serde_json::to_vec(&v).unwrap());
        out.clear();
        n.encode(&mut out, Format::Msgpack).unwrap();
        assert_eq!(out, rmp_serde::to_vec_named(&v).unwrap());
        assert_eq!(n.to_value(Format::Json), v);
    }

    /// A value still encoded is named as the decoded value is, from either format.
    #[test]
    fn encoded_values_are_named_by_their_type() {
        let values = [
            json!([]),
            json!([[], {}]),
            json!({"a": 1}),
            json!({}),
            json!("x"),
            json!(""),
            json!("a string longer than thirty-one bytes, for str8"),
            json!(true),
            json!(false),
            json!(null),
            json!(0),
            json!(91),
            json!(-1),
            json!(-100),
            json!(300),
            json!(2.5),
            json!(u64::MAX),
        ];
        for v in values {
            let name = Node::from_value(&v).type_name();
            let json = serde_json::to_vec(&v).unwrap();
            let msgpack = rmp_serde::to_vec_named(&v).unwrap();
            assert_eq!(Node::Raw(&json).type_name(), name, "{v} as JSON");
            assert_eq!(Node::Raw(&msgpack).type_name(), name, "{v} as msgpack");
        }
    }

    /// What was never decoded is written as it was, around what the program changed.
    #[test]
    fn undecoded_parts_encode_as_they_were() {
        let original = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "spec": {"x": [1, "é\n", {"y": null}]}, "status": {}});
        let mut whole = original.clone();
        whole["apiVersion"] = json!("batch/v1");
        whole["spec"]["x"].as_array_mut().unwrap().push(json!(5));
        whole["new"] = json!(true);
        for format in [Format::Json, Format::Msgpack] {
            let enc = |v: &Value| match format {
                Format::Json => serde_json::to_vec(v).unwrap(),
                Format::Msgpack => rmp_serde::to_vec_named(v).unwrap(),
            };
            let run = match format {
                Format::Json => br#""kind":"CronJob""#.to_vec(),
                Format::Msgpack => [enc(&json!("kind")), enc(&json!("CronJob"))].concat(),
            };
            let x = &original["spec"]["x"];
            let (x1, x2, status) = (enc(&x[1]), enc(&x[2]), enc(&original["status"]));
            let node = Node::Obj(vec![
                (Cow::Borrowed("apiVersion"), Node::Str(Cow::Borrowed("batch/v1"))),
                (Cow::Borrowed(""), Node::Run(&run, 1)),
                (
                    Cow::Borrowed("spec"),
                    Node::Obj(vec![(
                        Cow::Borrowed("x"),
                        Node::Arr(vec![Node::Num(1.into()), Node::Raw(&x1), Node::Raw(&x2), Node::Num(5.into())]),
                    )]),
                ),
                (Cow::Borrowed("status"), Node::Raw(&status)),
                (Cow::Borrowed("new"), Node::Bool(true)),
            ]);
            let mut out = Vec::new();
            node.encode(&mut out, format).unwrap();
            assert_eq!(out, enc(&whole), "{format}");
            assert_eq!(node.to_value(format), whole, "{format}");
            assert!(node.get("kind").is_none(), "a run is not a field");
        }
    }

    #[test]
    fn objects_compare_as_maps() {
        let a = Node::from_value(&json!({"x": 1, "y": [1, 2]}));
        let b = Node::from_value(&json!({"y": [1, 2], "x": 1}));
        assert_eq!(a, b);
        assert_ne!(a, Node::from_value(&json!({"x": 1})));
        assert_ne!(Node::from_value(&json!(1)), Node::from_value(&json!(1.0)));
    }

    #[test]
    fn repeated_keys_are_found() {
        let entry = |k: &'static str, n: i64| (Cow::Borrowed(k), Node::Num(n.into()));
        assert!(repeats(&vec![entry("a", 1), entry("b", 2), entry("a", 3)]));
        assert!(!repeats(&vec![entry("a", 1), (Cow::Borrowed(""), Node::Run(b"\"a\":2", 1)), entry("b", 3)]));
        let mut many: Entries<'_> = (0..40).map(|i| (Cow::Owned(format!("k{i}")), Node::Null)).collect();
        assert!(!repeats(&many));
        many.push(entry("k7", 1));
        assert!(repeats(&many));
    }
}
