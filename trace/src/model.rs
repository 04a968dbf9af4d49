//! The trace data model shared by the readers and writers: `Manifest`, `Event`, `Format`, `Section`.

use std::fmt;
use std::path::Path;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::config::Config;
use crate::lifecycles::PodLifecycles;

/// One Kubernetes object, as the trace stores it (key order is kept).
pub type Manifest = serde_json::Value;

/// One entry of a trace's `events`: the objects applied and deleted at `ts` (unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts: i64,
    pub applied_objs: Vec<Manifest>,
    pub deleted_objs: Vec<Manifest>,
}

impl Event {
    /// The event in the form both formats write: `{"ts": .., "applied_objs": [..], "deleted_objs": [..]}`.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::json!({
            "ts": self.ts,
            "applied_objs": self.applied_objs,
            "deleted_objs": self.deleted_objs,
        })
    }
}

/// Serialized as a struct with named fields, so rmp-serde's `write_named` gives the map SimKube writes.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TraceEvent", 3)?;
        s.serialize_field("ts", &self.ts)?;
        s.serialize_field("applied_objs", &self.applied_objs)?;
        s.serialize_field("deleted_objs", &self.deleted_objs)?;
        s.end()
    }
}

/// The two encodings of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Msgpack,
}

impl Format {
    /// `.json` is JSON; `.sktrace`, `.msgpack` and `.mp` are msgpack (case-insensitive).
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else if ["sktrace", "msgpack", "mp"].iter().any(|e| ext.eq_ignore_ascii_case(e)) {
            Some(Format::Msgpack)
        } else {
            None
        }
    }

    /// Guesses the format from the input's first bytes (its first byte that is not JSON
    /// whitespace). A trace is a map, so msgpack starts with a map marker; anything else is read
    /// as JSON, whose reader then explains what is wrong.
    pub fn sniff(head: &[u8]) -> Format {
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(0x80..=0x8f | 0xde | 0xdf) => Format::Msgpack,
            _ => Format::Json,
        }
    }

    /// The format of a file: from its extension, else from its first bytes.
    pub fn of_file(path: &Path, head: &[u8]) -> Format {
        Format::from_extension(path).unwrap_or_else(|| Format::sniff(head))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Msgpack => "msgpack",
        })
    }
}

/// Non-event top-level sections, delivered in the order they appear in the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Section {
    Version(u64),
    Config(Config),
    Index(serde_json::Value),
    PodLifecycles(PodLifecycles),
}

impl Section {
    /// The section's top-level key.
    pub fn name(&self) -> &'static str {
        match self {
            Section::Version(_) => "version",
            Section::Config(_) => "config",
            Section::Index(_) => "index",
            Section::PodLifecycles(_) => "pod_lifecycles",
        }
    }
}

/// The only trace format version there is to read and write.
pub const TRACE_VERSION: u64 = 2;

/// The five top-level keys, in the order SimKube writes them.
pub(crate) const SECTION_NAMES: [&str; 5] = ["version", "config", "events", "index", "pod_lifecycles"];

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_extension(Path::new("a/b.json")), Some(Format::Json));
        assert_eq!(Format::from_extension(Path::new("x.SKTRACE")), Some(Format::Msgpack));
        assert_eq!(Format::from_extension(Path::new("x.msgpack")), Some(Format::Msgpack));
        assert_eq!(Format::from_extension(Path::new("x.mp")), Some(Format::Msgpack));
        assert_eq!(Format::from_extension(Path::new("x.yaml")), None);
        assert_eq!(Format::from_extension(Path::new("noext")), None);
    }

    #[test]
    fn format_sniff() {
        for b in [b'{', b' ', b'\n', b'\t', b'\r'] {
            assert_eq!(Format::sniff(&[b]), Format::Json);
        }
        for b in [0x80, 0x85, 0x8f, 0xde, 0xdf] {
            assert_eq!(Format::sniff(&[b]), Format::Msgpack);
            assert_eq!(Format::sniff(&[b' ', b'\n', b]), Format::Msgpack, "after whitespace");
        }
        assert_eq!(Format::sniff(b"x"), Format::Json);
        assert_eq!(Format::sniff(&[0x90]), Format::Json);
        assert_eq!(Format::sniff(b""), Format::Json);
        assert_eq!(Format::of_file(Path::new("t.json"), &[0x80]), Format::Json, "the extension wins");
        assert_eq!(Format::of_file(Path::new("t"), &[0x80]), Format::Msgpack);
    }

    #[test]
    fn event_json_form() {
        let ev = Event { ts: 5, applied_objs: vec![serde_json::json!({"kind": "Pod"})], deleted_objs: vec![] };
        let text = serde_json::to_string(&ev).unwrap_or_default();
        assert_eq!(text, r#"{"ts":5,"applied_objs":[{"kind":"Pod"}],"deleted_objs":[]}"#);
        assert_eq!(serde_json::to_value(&ev).ok(), Some(ev.to_json_value()));
    }
}
