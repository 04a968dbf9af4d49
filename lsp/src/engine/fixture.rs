//! What the engine's tests share: a document from a text with its cursor marked `¦`, the
//! text drawn with a `↑` under the cursor (as the snapshots show it), a small trace index.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;

use lsp_types::{Position, Range, Uri};
use skel::explore::KeyIndex;

use super::{Document, TraceIndex};
use crate::text::Encoding;

pub const URI: &str = "file:///work/script.skel";

/// Insert files held in memory, by the path a script names.
pub struct Memory(pub HashMap<&'static str, &'static str>);

impl skel::Files for Memory {
    fn name(&self, path: &str) -> String {
        format!("/work/{path}")
    }

    fn read(&self, path: &str) -> Result<String, String> {
        self.0.get(path).map(|t| t.to_string()).ok_or_else(|| "no such file".into())
    }
}

/// A document of `text`, analyzed with `files` for its insert files.
pub fn document_with(text: &str, files: &dyn skel::Files) -> Document {
    let uri: Uri = URI.parse().unwrap();
    Document::new(uri, text.to_string(), Encoding::Utf16, skel::analyze(text, files))
}

pub fn document(text: &str) -> Document {
    document_with(text, &Memory(HashMap::new()))
}

/// The text without its `¦`, and the cursor's byte offset.
fn cursor(marked: &str) -> (String, usize) {
    let offset = marked.find('¦').unwrap_or_else(|| panic!("no cursor `¦` in {marked:?}"));
    (marked.replacen('¦', "", 1), offset)
}

/// The text with a `↑` drawn under the cursor's column, then what `answer` says there.
pub fn at_cursor(marked: &str, answer: impl FnOnce(&Document, Position) -> String) -> String {
    let (text, offset) = cursor(marked);
    let doc = document(&text);
    let pos = doc.lines.position(&doc.text, offset);
    format!("{}\n----\n{}", draw(&text, pos).trim_end(), answer(&doc, pos))
}

/// Each line of a text, with a `↑` line under the one holding `pos`.
pub fn draw(text: &str, pos: Position) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if i == pos.line as usize {
            let before: Vec<u16> = line.encode_utf16().take(pos.character as usize).collect();
            out.push_str(&" ".repeat(String::from_utf16_lossy(&before).chars().count()));
            out.push_str("↑\n");
        }
    }
    out
}

/// A range as `line:column-line:column` (0-based, as the protocol counts), with the text it
/// covers.
pub fn show_range(doc: &Document, range: Option<Range>) -> String {
    let Some(r) = range else { return "none".into() };
    let (start, end) = (doc.lines.offset(&doc.text, r.start), doc.lines.offset(&doc.text, r.end));
    format!(
        "{}:{}-{}:{} {:?}",
        r.start.line,
        r.start.character,
        r.end.line,
        r.end.character,
        doc.text.get(start..end).unwrap_or("")
    )
}

/// A trace of three pods, two with an `app` label.
pub fn trace() -> TraceIndex {
    let mut keys = KeyIndex::with_stats();
    for (name, app) in [("a", Some("web")), ("b", Some("db")), ("c", None)] {
        let mut pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        });
        if let Some(app) = app {
            pod["metadata"]["labels"]["app"] = app.into();
        }
        keys.add(&pod);
    }
    TraceIndex { name: "trace.json".into(), keys, cut: false }
}
