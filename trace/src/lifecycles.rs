//! The `pod_lifecycles` section: its model, its JSON (list of pairs) and msgpack (tuple-keyed map)
//! forms, and the seed that reads either form.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use crate::decode::{cautious, reject, Found, I64Seed, KeySeed, Reject, Stash};
use crate::error::TraceError;

/// What SimKube recorded about one pod: not started, running since `ts`, or ran `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PodLifecycle {
    Empty,
    Running(i64),
    Finished(i64, i64),
}

impl PodLifecycle {
    /// `"Empty"`, `{"Running": ts}` or `{"Finished": [start, end]}`.
    pub fn to_json_value(&self) -> Value {
        match *self {
            PodLifecycle::Empty => Value::String("Empty".into()),
            PodLifecycle::Running(ts) => json!({ "Running": ts }),
            PodLifecycle::Finished(start, end) => json!({ "Finished": [start, end] }),
        }
    }
}

/// The lifecycles of the pods of one owner object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLifecycleEntry {
    /// The owner's `group/version.Kind`.
    pub gvk: String,
    /// The owner's `namespace/name`.
    pub ns_name: String,
    /// Pod hash -> what happened to pods with that hash, in order.
    pub pods: Vec<(u64, Vec<PodLifecycle>)>,
}

/// All pod lifecycles of a trace.
///
/// Entries are kept sorted by `(gvk, ns_name)` and each entry's pods by hash: SimKube writes the
/// section from hash maps, so the input order carries no meaning, and a canonical order makes
/// traces read from either format compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodLifecycles {
    entries: Vec<PodLifecycleEntry>,
}

impl PodLifecycles {
    /// Builds the section, sorting as described on the type.
    pub fn new(mut entries: Vec<PodLifecycleEntry>) -> Self {
        for entry in &mut entries {
            entry.pods.sort_by_key(|(hash, _)| *hash);
        }
        entries.sort_by(|a, b| (&a.gvk, &a.ns_name).cmp(&(&b.gvk, &b.ns_name)));
        PodLifecycles { entries }
    }

    pub fn entries(&self) -> &[PodLifecycleEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<PodLifecycleEntry> {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Renames the owner kind `from` (`group/version.Kind`) to `to`; where an owner then has two
    /// entries, their pods are joined (the ones already under `to` first).
    pub fn rename_kind(self, from: &str, to: &str) -> PodLifecycles {
        let mut entries: Vec<PodLifecycleEntry> = Vec::with_capacity(self.entries.len());
        let (moved, kept): (Vec<_>, Vec<_>) = self.entries.into_iter().partition(|e| e.gvk == from);
        entries.extend(kept);
        for mut entry in moved {
            entry.gvk = to.to_string();
            match entries.iter_mut().find(|e| e.gvk == entry.gvk && e.ns_name == entry.ns_name) {
                Some(existing) => {
                    for (hash, lifecycles) in entry.pods {
                        match existing.pods.iter_mut().find(|(h, _)| *h == hash) {
                            Some((_, list)) => list.extend(lifecycles),
                            None => existing.pods.push((hash, lifecycles)),
                        }
                    }
                }
                None => entries.push(entry),
            }
        }
        PodLifecycles::new(entries)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The JSON form: `[[["<gvk>", "<ns>/<name>"], {"<pod hash>": [<lifecycle>, ...]}], ...]`,
    /// sorted by key (the form the conformance corpus uses).
    pub fn to_json_value(&self) -> Value {
        let list = self
            .entries
            .iter()
            .map(|entry| {
                let mut pods = Map::with_capacity(entry.pods.len());
                for (hash, lifecycles) in &entry.pods {
                    let list = lifecycles.iter().map(PodLifecycle::to_json_value).collect();
                    pods.insert(hash.to_string(), Value::Array(list));
                }
                json!([[entry.gvk, entry.ns_name], Value::Object(pods)])
            })
            .collect();
        Value::Array(list)
    }

    /// The msgpack form SimKube writes: a map keyed by `[gvk, "ns/name"]` arrays, whose values map
    /// u64 pod hashes to lists of lifecycles.
    pub(crate) fn msgpack_form(&self) -> MsgpackForm<'_> {
        MsgpackForm(self)
    }
}

pub(crate) struct MsgpackForm<'a>(&'a PodLifecycles);

impl Serialize for MsgpackForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.entries.len()))?;
        for entry in &self.0.entries {
            map.serialize_entry(&(&entry.gvk, &entry.ns_name), &PodsForm(&entry.pods))?;
        }
        map.end()
    }
}

struct PodsForm<'a>(&'a [(u64, Vec<PodLifecycle>)]);

impl Serialize for PodsForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (hash, lifecycles) in self.0 {
            map.serialize_entry(hash, lifecycles)?;
        }
        map.end()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

const SECTION_EXPECTED: &str =
    "a map keyed by `[gvk, \"namespace/name\"]` pairs, or a list of `[[gvk, \"namespace/name\"], {...}]` pairs";
const JSON_FORM_HELP: &str = "in JSON, write `pod_lifecycles` as a list of `[[gvk, \"namespace/name\"], {\"<pod hash>\": [...]}]` pairs (or `[]`)";

/// Reads `pod_lifecycles` in either form (a tuple-keyed map, or a list of pairs; `{}` and `[]`
/// are both empty).
pub(crate) struct LifecyclesSeed<'a> {
    pub stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for LifecyclesSeed<'_> {
    type Value = PodLifecycles;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PodLifecycles, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for LifecyclesSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<PodLifecycles, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("`pod_lifecycles`", SECTION_EXPECTED, found, JSON_FORM_HELP)))
    }
}

impl<'de> Visitor<'de> for LifecyclesSeed<'_> {
    type Value = PodLifecycles;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECTION_EXPECTED)
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, ext);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PodLifecycles, A::Error> {
        let mut entries = Vec::with_capacity(cautious(map.size_hint()));
        while let Some((gvk, ns_name)) = map.next_key_seed(OwnerSeed { stash: &mut *self.stash })? {
            let pods = map.next_value_seed(PodsSeed { stash: &mut *self.stash })?;
            entries.push(PodLifecycleEntry { gvk, ns_name, pods });
        }
        finish(self.stash, entries)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PodLifecycles, A::Error> {
        let mut entries = Vec::with_capacity(cautious(seq.size_hint()));
        while let Some(entry) = seq.next_element_seed(PairSeed { stash: &mut *self.stash })? {
            entries.push(entry);
        }
        finish(self.stash, entries)
    }
}

/// Sorts and rejects duplicate owners and duplicate pod hashes.
fn finish<E: de::Error>(stash: &mut Stash, entries: Vec<PodLifecycleEntry>) -> Result<PodLifecycles, E> {
    let lifecycles = PodLifecycles::new(entries);
    for pair in lifecycles.entries.windows(2) {
        if let [a, b] = pair {
            if a.gvk == b.gvk && a.ns_name == b.ns_name {
                return Err(stash.fail(TraceError::DuplicateKey {
                    what: "`pod_lifecycles`".into(),
                    key: format!("[\"{}\", \"{}\"]", a.gvk, a.ns_name),
                    location: Box::default(),
                }));
            }
        }
    }
    for entry in &lifecycles.entries {
        for pair in entry.pods.windows(2) {
            if let [(a, _), (b, _)] = pair {
                if a == b {
                    return Err(stash.fail(TraceError::DuplicateKey {
                        what: format!("the `pod_lifecycles` entry of `{}` `{}`", entry.gvk, entry.ns_name),
                        key: a.to_string(),
                        location: Box::default(),
                    }));
                }
            }
        }
    }
    Ok(lifecycles)
}

/// One `[[gvk, "ns/name"], {...}]` pair of the list form.
struct PairSeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
    type Value = PodLifecycleEntry;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PodLifecycleEntry, D::Error> {
        d.deserialize_any(self)
    }
}

const PAIR_EXPECTED: &str = "a `[[gvk, \"namespace/name\"], {\"<pod hash>\": [...]}]` pair";

impl<'de> Reject<'de> for PairSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<PodLifecycleEntry, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            "an entry of `pod_lifecycles`",
            PAIR_EXPECTED,
            found,
            JSON_FORM_HELP,
        )))
    }
}

impl<'de> Visitor<'de> for PairSeed<'_> {
    type Value = PodLifecycleEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PAIR_EXPECTED)
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, map, ext);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PodLifecycleEntry, A::Error> {
        let owner = seq.next_element_seed(OwnerSeed { stash: &mut *self.stash })?;
        let Some((gvk, ns_name)) = owner else {
            return self.reject(Found::Seq);
        };
        let pods = seq.next_element_seed(PodsSeed { stash: &mut *self.stash })?;
        let Some(pods) = pods else {
            return self.reject(Found::Seq);
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return self.reject(Found::Seq);
        }
        Ok(PodLifecycleEntry { gvk, ns_name, pods })
    }
}

/// The `[gvk, "ns/name"]` key.
struct OwnerSeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for OwnerSeed<'_> {
    type Value = (String, String);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(String, String), D::Error> {
        d.deserialize_any(self)
    }
}

const OWNER_EXPECTED: &str = "a `[gvk, \"namespace/name\"]` pair of strings";

impl<'de> Reject<'de> for OwnerSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<(String, String), E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("a `pod_lifecycles` key", OWNER_EXPECTED, found, JSON_FORM_HELP)))
    }
}

impl<'de> Visitor<'de> for OwnerSeed<'_> {
    type Value = (String, String);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OWNER_EXPECTED)
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, map, ext);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(String, String), A::Error> {
        const WHAT: &str = "a part of a `pod_lifecycles` key";
        let gvk = seq.next_element_seed(KeySeed { stash: &mut *self.stash, what: WHAT })?;
        let ns_name = seq.next_element_seed(KeySeed { stash: &mut *self.stash, what: WHAT })?;
        match (gvk, ns_name) {
            (Some(gvk), Some(ns_name)) if seq.next_element::<IgnoredAny>()?.is_none() => Ok((gvk, ns_name)),
            _ => self.reject(Found::Seq),
        }
    }
}

/// `{<pod hash>: [<lifecycle>, ...]}`; hashes are integers (msgpack) or decimal strings (JSON).
struct PodsSeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for PodsSeed<'_> {
    type Value = Vec<(u64, Vec<PodLifecycle>)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

const PODS_EXPECTED: &str = "a map from pod hashes to lists of lifecycles";

impl<'de> Reject<'de> for PodsSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<Self::Value, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("a `pod_lifecycles` value", PODS_EXPECTED, found, JSON_FORM_HELP)))
    }
}

impl<'de> Visitor<'de> for PodsSeed<'_> {
    type Value = Vec<(u64, Vec<PodLifecycle>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PODS_EXPECTED)
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, seq, ext);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pods = Vec::with_capacity(cautious(map.size_hint()));
        while let Some(hash) = map.next_key_seed(HashSeed { stash: &mut *self.stash })? {
            let lifecycles = map.next_value_seed(LifecycleListSeed { stash: &mut *self.stash })?;
            pods.push((hash, lifecycles));
        }
        Ok(pods)
    }
}

struct HashSeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for HashSeed<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

const HASH_EXPECTED: &str = "an unsigned 64-bit integer (or its decimal string)";

impl<'de> Reject<'de> for HashSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<u64, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            "a pod hash in `pod_lifecycles`",
            HASH_EXPECTED,
            found,
            "pod hashes are the u64 hashes SimKube computed for each pod spec",
        )))
    }
}

impl<'de> Visitor<'de> for HashSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HASH_EXPECTED)
    }

    reject!('de; bool, f64, bytes, unit, seq, map, ext);

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => Ok(v),
            Err(_) => self.reject(Found::Int(i128::from(v))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        // Only plain decimal digits: `+1` or ` 1` would not write back the same.
        match v.parse::<u64>() {
            Ok(hash) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(hash),
            _ => self.reject(Found::str(v)),
        }
    }
}

struct LifecycleListSeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for LifecycleListSeed<'_> {
    type Value = Vec<PodLifecycle>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<PodLifecycle>, D::Error> {
        d.deserialize_any(self)
    }
}

const LIFECYCLE_EXPECTED: &str = "`\"Empty\"`, `{\"Running\": ts}` or `{\"Finished\": [start, end]}`";
const LIFECYCLE_HELP: &str =
    "each pod hash maps to a list of lifecycles: `\"Empty\"`, `{\"Running\": ts}` or `{\"Finished\": [start, end]}`";

impl<'de> Reject<'de> for LifecycleListSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<Vec<PodLifecycle>, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("the lifecycles of a pod hash", "a list", found, LIFECYCLE_HELP)))
    }
}

impl<'de> Visitor<'de> for LifecycleListSeed<'_> {
    type Value = Vec<PodLifecycle>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of pod lifecycles")
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, map, ext);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<PodLifecycle>, A::Error> {
        let mut list = Vec::with_capacity(cautious(seq.size_hint()));
        while let Some(lifecycle) = seq.next_element_seed(LifecycleSeed { stash: &mut *self.stash })? {
            list.push(lifecycle);
        }
        Ok(list)
    }
}

struct LifecycleSeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for LifecycleSeed<'_> {
    type Value = PodLifecycle;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PodLifecycle, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for LifecycleSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<PodLifecycle, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("a pod lifecycle", LIFECYCLE_EXPECTED, found, LIFECYCLE_HELP)))
    }
}

impl<'de> Visitor<'de> for LifecycleSeed<'_> {
    type Value = PodLifecycle;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(LIFECYCLE_EXPECTED)
    }

    reject!('de; bool, i64, u64, f64, bytes, unit, seq, ext);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PodLifecycle, E> {
        if v == "Empty" {
            Ok(PodLifecycle::Empty)
        } else {
            self.reject(Found::str(v))
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PodLifecycle, A::Error> {
        const TS_EXPECTED: &str = "an integer (unix seconds)";
        let variant = map.next_key_seed(KeySeed { stash: &mut *self.stash, what: "a pod lifecycle's kind" })?;
        let lifecycle = match variant.as_deref() {
            Some("Empty") => {
                map.next_value::<IgnoredAny>()?;
                PodLifecycle::Empty
            }
            Some("Running") => PodLifecycle::Running(map.next_value_seed(I64Seed {
                stash: &mut *self.stash,
                what: "the start of a running pod",
                expected: TS_EXPECTED,
                help: LIFECYCLE_HELP,
            })?),
            Some("Finished") => {
                let (start, end) = map.next_value_seed(SpanSeed { stash: &mut *self.stash })?;
                PodLifecycle::Finished(start, end)
            }
            Some(other) => {
                let found = Found::str(other);
                map.next_value::<IgnoredAny>()?;
                return self.reject(found);
            }
            None => return self.reject(Found::Map),
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return self.reject(Found::Map);
        }
        Ok(lifecycle)
    }
}

/// The `[start, end]` of a finished pod.
struct SpanSeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for SpanSeed<'_> {
    type Value = (i64, i64);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(i64, i64), D::Error> {
        d.deserialize_any(self)
    }
}

const SPAN_EXPECTED: &str = "a `[start, end]` pair of integers (unix seconds)";

impl<'de> Reject<'de> for SpanSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<(i64, i64), E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("the span of a finished pod", SPAN_EXPECTED, found, LIFECYCLE_HELP)))
    }
}

impl<'de> Visitor<'de> for SpanSeed<'_> {
    type Value = (i64, i64);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SPAN_EXPECTED)
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, map, ext);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(i64, i64), A::Error> {
        let mut next = |stash: &mut Stash| {
            seq.next_element_seed(I64Seed {
                stash,
                what: "the span of a finished pod",
                expected: SPAN_EXPECTED,
                help: LIFECYCLE_HELP,
            })
        };
        let start = next(self.stash)?;
        let end = next(self.stash)?;
        match (start, end) {
            (Some(start), Some(end)) if seq.next_element::<IgnoredAny>()?.is_none() => Ok((start, end)),
            _ => self.reject(Found::Seq),
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::model::Format;

    #[test]
    fn renaming_an_owner_kind_joins_entries() {
        let entry = |gvk: &str, ns_name: &str, pods: Vec<(u64, Vec<PodLifecycle>)>| PodLifecycleEntry {
            gvk: gvk.into(),
            ns_name: ns_name.into(),
            pods,
        };
        let l = PodLifecycles::new(vec![
            entry("batch/v1beta1.CronJob", "ns/a", vec![(1, vec![PodLifecycle::Finished(1, 2)])]),
            entry("batch/v1beta1.CronJob", "ns/b", vec![(2, vec![PodLifecycle::Empty])]),
            entry("batch/v1.CronJob", "ns/a", vec![(1, vec![PodLifecycle::Running(5)]), (3, vec![])]),
            entry("v1.Pod", "ns/p", vec![]),
        ]);
        let renamed = l.rename_kind("batch/v1beta1.CronJob", "batch/v1.CronJob");
        let expected = PodLifecycles::new(vec![
            entry(
                "batch/v1.CronJob",
                "ns/a",
                vec![(1, vec![PodLifecycle::Running(5), PodLifecycle::Finished(1, 2)]), (3, vec![])],
            ),
            entry("batch/v1.CronJob", "ns/b", vec![(2, vec![PodLifecycle::Empty])]),
            entry("v1.Pod", "ns/p", vec![]),
        ]);
        assert_eq!(renamed, expected);
    }

    fn from_json(text: &str) -> Result<PodLifecycles, String> {
        let mut stash = Stash::new(Format::Json);
        let mut de = serde_json::Deserializer::from_str(text);
        LifecyclesSeed { stash: &mut stash }.deserialize(&mut de).map_err(|e| match stash.problem.take() {
            Some(p) => p.to_string(),
            None => e.to_string(),
        })
    }

    fn from_msgpack(bytes: &[u8]) -> Result<PodLifecycles, String> {
        let mut stash = Stash::new(Format::Msgpack);
        let mut de = rmp_serde::Deserializer::new(bytes);
        LifecyclesSeed { stash: &mut stash }.deserialize(&mut de).map_err(|e| match stash.problem.take() {
            Some(p) => p.to_string(),
            None => e.to_string(),
        })
    }

    fn sample() -> PodLifecycles {
        PodLifecycles::new(vec![
            PodLifecycleEntry {
                gvk: "v1.Pod".into(),
                ns_name: "b/x".into(),
                pods: vec![(u64::MAX, vec![PodLifecycle::Running(5)])],
            },
            PodLifecycleEntry {
                gvk: "batch/v1.CronJob".into(),
                ns_name: "a/y".into(),
                pods: vec![(7, vec![PodLifecycle::Finished(1, 2), PodLifecycle::Empty]), (3, vec![])],
            },
        ])
    }

    #[test]
    fn json_form_is_sorted_list() {
        let v = sample().to_json_value();
        assert_eq!(
            v,
            json!([
                [["batch/v1.CronJob", "a/y"], {"3": [], "7": [{"Finished": [1, 2]}, "Empty"]}],
                [["v1.Pod", "b/x"], {"18446744073709551615": [{"Running": 5}]}],
            ])
        );
        assert_eq!(from_json(&v.to_string()), Ok(sample()));
    }

    #[test]
    fn json_empty_forms() {
        assert_eq!(from_json("{}"), Ok(PodLifecycles::default()));
        assert_eq!(from_json("[]"), Ok(PodLifecycles::default()));
    }

    #[test]
    fn msgpack_form_round_trips() {
        let mut bytes = Vec::new();
        let res = rmp_serde::encode::write_named(&mut bytes, &sample().msgpack_form());
        assert!(res.is_ok());
        // A map keyed by a 2-element array, whose inner key is a u64.
        assert_eq!(bytes.first(), Some(&0x82));
        assert_eq!(bytes.get(1), Some(&0x92));
        assert_eq!(from_msgpack(&bytes), Ok(sample()));
    }

    #[test]
    fn json_errors() {
        assert_eq!(
            from_json(r#"{"v1.Pod": {}}"#),
            Err("a `pod_lifecycles` key must be a `[gvk, \"namespace/name\"]` pair of strings, found the string `\"v1.Pod\"`".into())
        );
        assert_eq!(
            from_json(r#"[[["v1.Pod", "a/b"], {"x": []}]]"#),
            Err("a pod hash in `pod_lifecycles` must be an unsigned 64-bit integer (or its decimal string), found the string `\"x\"`".into())
        );
        assert_eq!(
            from_json(r#"[[["v1.Pod", "a/b"], {"1": ["Gone"]}]]"#),
            Err("a pod lifecycle must be `\"Empty\"`, `{\"Running\": ts}` or `{\"Finished\": [start, end]}`, found the string `\"Gone\"`".into())
        );
        assert_eq!(
            from_json(r#"[[["v1.Pod", "a/b"], {"1": [{"Finished": [1]}]}]]"#),
            Err("the span of a finished pod must be a `[start, end]` pair of integers (unix seconds), found a list"
                .into())
        );
        assert_eq!(
            from_json(r#"[[["v1.Pod", "a/b"], {}], [["v1.Pod", "a/b"], {}]]"#),
            Err("`pod_lifecycles` has `[\"v1.Pod\", \"a/b\"]` twice".into())
        );
        assert_eq!(
            from_json(r#"[[["v1.Pod", "a/b"], {"1": [], "01": []}]]"#),
            Err("the `pod_lifecycles` entry of `v1.Pod` `a/b` has `1` twice".into())
        );
        assert!(from_json(r#"[[["v1.Pod", "a/b", "c"], {}]]"#).is_err());
        assert!(from_json(r#"[[["v1.Pod", "a/b"], {}, 3]]"#).is_err());
        assert!(from_json("3").is_err());
    }

    #[test]
    fn alternative_lifecycle_encodings() {
        assert_eq!(
            from_json(r#"[[["v1.Pod", "a/b"], {"1": [{"Empty": null}, {"Running": 3}]}]]"#),
            Ok(PodLifecycles::new(vec![PodLifecycleEntry {
                gvk: "v1.Pod".into(),
                ns_name: "a/b".into(),
                pods: vec![(1, vec![PodLifecycle::Empty, PodLifecycle::Running(3)])],
            }]))
        );
    }
}
