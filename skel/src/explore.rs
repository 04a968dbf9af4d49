//! Looking into a trace held in memory, for the REPL and the language server: its objects by
//! address (`EVENT.OBJECT`), the values a SKEL path reaches, the keys that occur under each
//! path, and the path being typed at a cursor (for completion).

use std::collections::HashMap;

use crate::ast::{array_index, write_key, Path, Segment};
use serde_json::Value;
use skel_trace::Event;

/// An object's address: event `event`, object `object` of `applied_objs` followed by
/// `deleted_objs` (as `:match` prints it, `3.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub event: usize,
    pub object: usize,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.event, self.object)
    }
}

/// One object of a trace, where it is.
pub struct Object<'t> {
    pub at: Address,
    pub ts: i64,
    /// It is in `deleted_objs`.
    pub deleted: bool,
    pub value: &'t Value,
}

/// Every object of every event, in order.
pub fn objects(events: &[Event]) -> impl Iterator<Item = Object<'_>> {
    events.iter().enumerate().flat_map(|(event, e)| {
        let applied = e.applied_objs.iter().map(|v| (false, v));
        let deleted = e.deleted_objs.iter().map(|v| (true, v));
        applied.chain(deleted).enumerate().map(move |(object, (deleted, value))| Object {
            at: Address { event, object },
            ts: e.ts,
            deleted,
            value,
        })
    })
}

/// The object at an address, and the name of its slot (`applied_objs[1]`).
pub fn object_at(events: &[Event], at: Address) -> Option<(String, &Value)> {
    let e = events.get(at.event)?;
    match e.applied_objs.get(at.object) {
        Some(v) => Some((format!("applied_objs[{}]", at.object), v)),
        None => {
            let i = at.object - e.applied_objs.len();
            e.deleted_objs.get(i).map(|v| (format!("deleted_objs[{i}]"), v))
        }
    }
}

/// `Kind namespace/name`, as far as the object says.
pub fn describe(obj: &Value) -> (String, String) {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object").to_string();
    let meta = obj.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("<unnamed>");
    let name = match meta.and_then(|m| m.get("namespace")).and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    (kind, name)
}

/// `+1h2m3s`: the time from `from` to `to` (unix seconds; any two, however far apart).
pub fn offset(from: i64, to: i64) -> String {
    let sign = if to < from { "-" } else { "+" };
    let s = to.abs_diff(from);
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, _) => format!("{sign}{m}m{s:02}s"),
        _ => format!("{sign}{h}h{m:02}m{s:02}s"),
    }
}

/// The values a path (without a variable) reaches in an object.
pub fn reach<'v>(v: &'v Value, segments: &[Segment], out: &mut Vec<&'v Value>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push(v);
        return;
    };
    match (first, v) {
        (Segment::Key { name, .. }, Value::Object(m)) => {
            if let Some(child) = m.get(name) {
                reach(child, rest, out);
            }
        }
        // A key of digits indexes an array, as in a JSON Pointer (`containers.0`).
        (Segment::Key { name, .. }, Value::Array(a)) => {
            if let Some(child) = array_index(name).and_then(|i| a.get(i)) {
                reach(child, rest, out);
            }
        }
        (Segment::Index { index, .. }, Value::Array(a)) => {
            if let Some(child) = usize::try_from(*index).ok().and_then(|i| a.get(i)) {
                reach(child, rest, out);
            }
        }
        (Segment::AnyIndex { .. }, Value::Array(a)) => a.iter().for_each(|c| reach(c, rest, out)),
        (Segment::AnyKey { .. }, Value::Object(m)) => m.values().for_each(|c| reach(c, rest, out)),
        _ => {}
    }
}

/// A path as the key index names it: SKEL source, every index written `[*]`.
pub fn index_key(path: &Path) -> String {
    let mut out = String::new();
    for seg in &path.segments {
        push_segment(&mut out, seg);
    }
    out
}

fn push_segment(out: &mut String, seg: &Segment) {
    match seg {
        // A key of digits is taken for an array's index (`containers.0`), as it mostly is.
        Segment::Key { name, .. } if array_index(name).is_some() => out.push_str("[*]"),
        Segment::Key { name, .. } => {
            if !out.is_empty() {
                out.push('.');
            }
            let _ = write_key(out, name);
        }
        Segment::Index { .. } | Segment::AnyIndex { .. } => out.push_str("[*]"),
        Segment::AnyKey { .. } => out.push_str(".*"),
    }
}

/// For every path in a trace's objects (indices as `[*]`), the keys found in the objects
/// there and how often: what completion offers after `spec.template.spec.`. With `stats`, also
/// how many objects have each path and a few of its values (what hover tells), so a trace can
/// be indexed as it streams by, without keeping it.
#[derive(Debug, Default)]
pub struct KeyIndex {
    keys: HashMap<String, HashMap<String, u32>>,
    /// `Some` when the index keeps path statistics.
    stats: Option<HashMap<String, PathStats>>,
    objects: u64,
}

/// What an index knows of one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Objects where the path reaches at least one value.
    pub objects: u64,
    /// Up to three distinct values it reaches, as compact JSON cut at 60 characters.
    pub examples: Vec<String>,
}

/// How many example values a path keeps.
const EXAMPLES: usize = 3;

impl KeyIndex {
    pub fn build(events: &[Event]) -> KeyIndex {
        let mut index = KeyIndex::default();
        for o in objects(events) {
            index.add(o.value);
        }
        index
    }

    /// An empty index that keeps path statistics.
    pub fn with_stats() -> KeyIndex {
        KeyIndex { stats: Some(HashMap::new()), ..KeyIndex::default() }
    }

    /// Indexes one object.
    pub fn add(&mut self, obj: &Value) {
        self.objects += 1;
        let mut seen = self.stats.as_ref().map(|_| std::collections::HashSet::new());
        self.walk(obj, &mut String::new(), 0, &mut seen);
        if let (Some(stats), Some(seen)) = (self.stats.as_mut(), seen) {
            for path in seen {
                stats.entry(path).or_default().objects += 1;
            }
        }
    }

    /// The objects indexed.
    pub fn objects(&self) -> u64 {
        self.objects
    }

    /// What the index knows of a path (key-index form, `[*]` for indices), when it keeps
    /// statistics and an object has the path.
    pub fn stats(&self, path: &str) -> Option<&PathStats> {
        self.stats.as_ref()?.get(path)
    }

    fn walk(
        &mut self,
        v: &Value,
        path: &mut String,
        depth: usize,
        seen: &mut Option<std::collections::HashSet<String>>,
    ) {
        // Deeper than any Kubernetes object goes: not worth offering.
        if depth > 24 {
            return;
        }
        if let (Some(stats), Some(seen)) = (self.stats.as_mut(), seen.as_mut()) {
            if !path.is_empty() {
                if !seen.contains(path.as_str()) {
                    seen.insert(path.clone());
                }
                let entry = stats.entry(path.clone()).or_default();
                if entry.examples.len() < EXAMPLES {
                    let mut text = serde_json::to_string(v).unwrap_or_default();
                    if text.chars().count() > 60 {
                        text = text.chars().take(57).collect::<String>() + "...";
                    }
                    if !entry.examples.contains(&text) {
                        entry.examples.push(text);
                    }
                }
            }
        }
        let len = path.len();
        match v {
            Value::Object(m) => {
                let entry = self.keys.entry(path.clone()).or_default();
                for k in m.keys() {
                    *entry.entry(k.clone()).or_default() += 1;
                }
                for (k, child) in m {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    let _ = write_key(path, k);
                    self.walk(child, path, depth + 1, seen);
                    path.truncate(len);
                }
            }
            Value::Array(a) => {
                path.push_str("[*]");
                for child in a {
                    self.walk(child, path, depth + 1, seen);
                }
                path.truncate(len);
            }
            _ => {}
        }
    }

    /// The keys found under a path (`""` is the objects' top level), most frequent first, then
    /// by name.
    pub fn keys_under(&self, path: &str) -> Vec<(&str, u32)> {
        let mut keys: Vec<(&str, u32)> = match self.keys.get(path) {
            Some(m) => m.iter().map(|(k, n)| (k.as_str(), *n)).collect(),
            None => Vec::new(),
        };
        keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        keys
    }

    /// A key written as SKEL writes it in a path (quoted when it is not a bare name).
    pub fn source_key(key: &str) -> String {
        let mut out = String::new();
        let _ = write_key(&mut out, key);
        out
    }
}

// ------------------------------------------------------------------ SKEL text

pub use skel_grammar::code_chars;

// ------------------------------------------------------------------ the path at a cursor

/// Where the word before the cursor starts: a path (quoted keys included), a variable, `@t`
/// or a command name. `None` inside a string literal, where nothing is offered.
pub fn token_start(before: &str) -> Option<usize> {
    #[derive(PartialEq)]
    enum In {
        Code,
        QuotedKey,
        Literal { escape: bool },
    }
    let (mut state, mut start, mut prev) = (In::Code, 0, None);
    for (i, c) in before.char_indices() {
        state = match state {
            In::Code if c == '"' && matches!(prev, Some('.' | '[')) => In::QuotedKey,
            In::Code if c == '"' => In::Literal { escape: false },
            In::Code => {
                if !(c.is_alphanumeric() || "_-.[]*$@/".contains(c)) {
                    start = i + c.len_utf8();
                }
                In::Code
            }
            In::QuotedKey if c == '"' => In::Code,
            In::QuotedKey => In::QuotedKey,
            In::Literal { escape: true } => In::Literal { escape: false },
            In::Literal { .. } if c == '\\' => In::Literal { escape: true },
            In::Literal { .. } if c == '"' => {
                start = i + 1;
                In::Code
            }
            lit @ In::Literal { .. } => lit,
        };
        prev = Some(c);
    }
    (!matches!(state, In::Literal { .. })).then_some(start)
}

/// `spec.template.spec.con` -> (`spec.template.spec.`, `con`): the path to look under and the
/// partial key; `None` when the word is not a path with a step.
pub fn split_path(token: &str) -> Option<(&str, &str)> {
    let mut in_quote = false;
    let mut cut = None;
    for (i, c) in token.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '.' if !in_quote => cut = Some(i),
            _ => {}
        }
    }
    let cut = cut?;
    Some((&token[..=cut], &token[cut + 1..]))
}

/// The key-index name of a path prefix typed (`spec.containers[0].` -> `spec.containers[*]`),
/// with a leading variable replaced by what the statement binds it to.
pub fn resolve(line: &str, head: &str) -> Option<String> {
    let head = head.trim_end_matches('.');
    if head.is_empty() {
        return Some(String::new());
    }
    let path = crate::parse_path(head, 0).ok()?;
    let mut prefix = String::new();
    if let Some(var) = &path.var {
        let bound = binding(line, var.name.trim_start_matches('$'))?;
        let bound = crate::parse_path(&bound, 0).ok()?;
        if bound.var.is_some() {
            return None;
        }
        prefix = index_key(&bound);
    }
    let rest = index_key(&path);
    Some(match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest,
        (false, true) => prefix,
        (false, false) if rest.starts_with('[') => prefix + &rest,
        (false, false) => format!("{prefix}.{rest}"),
    })
}

/// The path `$name := PATH` binds in the input, if any.
pub fn binding(line: &str, name: &str) -> Option<String> {
    let needle = format!("${name}");
    let mut from = 0;
    while let Some(i) = line[from..].find(&needle) {
        let after = &line[from + i + needle.len()..];
        let rest = after.trim_start();
        if let Some(value) = rest.strip_prefix(":=") {
            let value = value.trim_start();
            let end =
                value.find(|c: char| c.is_whitespace() || c == '|' || c == ')' || c == ',').unwrap_or(value.len());
            return Some(value[..end].to_string());
        }
        from += i + needle.len();
    }
    None
}

/// The variables the input binds (`$name :=`), in order, once each.
pub fn variables(line: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find('$') {
        let tail = &rest[i + 1..];
        let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        if !name.is_empty() && tail[end..].trim_start().starts_with(":=") && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &tail[end..];
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events() -> Vec<Event> {
        let a = json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "prod",
            "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}}});
        let b = json!({"kind": "Node", "metadata": {"name": "n1"}});
        vec![
            Event { ts: 10, applied_objs: vec![a], deleted_objs: vec![] },
            Event { ts: 70, applied_objs: vec![], deleted_objs: vec![b] },
        ]
    }

    #[test]
    fn objects_are_numbered_across_both_lists() {
        let ev = events();
        let all: Vec<_> = objects(&ev).map(|o| (o.at.to_string(), o.deleted, describe(o.value))).collect();
        assert_eq!(
            all,
            vec![
                ("0.0".to_string(), false, ("Deployment".to_string(), "prod/web".to_string())),
                ("1.0".to_string(), true, ("Node".to_string(), "n1".to_string())),
            ]
        );
        assert_eq!(object_at(&ev, Address { event: 1, object: 0 }).unwrap().0, "deleted_objs[0]");
        assert!(object_at(&ev, Address { event: 1, object: 1 }).is_none());
        assert!(object_at(&ev, Address { event: 2, object: 0 }).is_none());
    }

    #[test]
    fn paths_reach_values() {
        let ev = events();
        let path = crate::parse_path("spec.template.spec.containers[*].name", 0).unwrap();
        let mut out = Vec::new();
        reach(&ev[0].applied_objs[0], &path.segments, &mut out);
        assert_eq!(out, vec![&json!("a"), &json!("b")]);
        let path = crate::parse_path("metadata.labels.*", 0).unwrap();
        let mut out = Vec::new();
        reach(&ev[0].applied_objs[0], &path.segments, &mut out);
        assert_eq!(out, vec![&json!("web")]);
        let path = crate::parse_path("spec.template.spec.containers[5]", 0).unwrap();
        let mut out = Vec::new();
        reach(&ev[0].applied_objs[0], &path.segments, &mut out);
        assert!(out.is_empty());
        // A key of digits indexes an array, as in SimKube; with a leading zero it names nothing.
        for (path, found) in
            [("spec.template.spec.containers.1.name", vec![&json!("b")]), ("spec.template.spec.containers.01", vec![])]
        {
            let path = crate::parse_path(path, 0).unwrap();
            let mut out = Vec::new();
            reach(&ev[0].applied_objs[0], &path.segments, &mut out);
            assert_eq!(out, found);
        }
        let path = crate::parse_path("spec.template.spec.containers.0.image", 0).unwrap();
        assert_eq!(index_key(&path), "spec.template.spec.containers[*].image");
    }

    #[test]
    fn the_key_index_counts_keys_by_path() {
        let index = KeyIndex::build(&events());
        assert_eq!(index.keys_under("spec.template.spec.containers[*]"), vec![("name", 2), ("image", 1)]);
        assert_eq!(index.keys_under("")[..2], [("kind", 2), ("metadata", 2)]);
        assert_eq!(index.keys_under("metadata.labels"), vec![("app.kubernetes.io/name", 1)]);
        let path = crate::parse_path("spec.template.spec.containers[0]", 0).unwrap();
        assert_eq!(index_key(&path), "spec.template.spec.containers[*]");
        assert_eq!(KeyIndex::source_key("app.kubernetes.io/name"), "\"app.kubernetes.io/name\"");
    }

    #[test]
    fn an_index_with_stats_counts_objects_and_keeps_examples() {
        let mut index = KeyIndex::with_stats();
        for o in objects(&events()) {
            index.add(o.value);
        }
        assert_eq!(index.objects(), 2);
        let names = index.stats("spec.template.spec.containers[*].name").unwrap();
        assert_eq!(names, &PathStats { objects: 1, examples: vec!["\"a\"".into(), "\"b\"".into()] });
        assert_eq!(index.stats("kind").unwrap().objects, 2);
        assert_eq!(index.stats("metadata.namespace").unwrap().objects, 1);
        assert!(index.stats("spec.nothing").is_none());
        assert!(KeyIndex::build(&events()).stats("kind").is_none(), "only `with_stats` keeps them");
    }

    #[test]
    fn offsets_read_as_durations() {
        assert_eq!(offset(10, 10), "+0s");
        assert_eq!(offset(0, 75), "+1m15s");
        assert_eq!(offset(100, 3825), "+1h02m05s");
        assert_eq!(offset(5, 0), "-5s");
        assert_eq!(offset(i64::MIN, i64::MAX), "+5124095576030431h00m15s", "no overflow");
        assert_eq!(offset(i64::MAX, i64::MIN), "-5124095576030431h00m15s");
    }
}
