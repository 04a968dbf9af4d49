//! Helpers shared by the integration tests: fixture paths, the shared corpus, a copying visitor.
#![allow(clippy::panic)] // tests report failures by panicking
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use skel_trace::{Event, Format, Section, TraceError, TraceVisitor, TraceWriter};

/// `trace/tests/data/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The project's `shared/` folder, or `None` (with a note) when it is not there.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("note: {} is absent; skipping", dir.display());
        None
    }
}

/// Every trace in `shared/traces/`, sorted by name, with its format.
pub fn shared_traces(shared: &Path) -> Vec<(PathBuf, Format)> {
    let mut traces: Vec<(PathBuf, Format)> = std::fs::read_dir(shared.join("traces"))
        .unwrap_or_else(|e| panic!("cannot list shared/traces: {e}"))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let format = Format::from_extension(&path)?;
            Some((path, format))
        })
        .collect();
    traces.sort_by(|a, b| a.0.cmp(&b.0));
    traces
}

/// Streams what it is given straight into a `TraceWriter` (what the CLI does, minus SKEL).
pub struct Copy {
    pub writer: TraceWriter<Cursor<Vec<u8>>>,
}

impl Copy {
    pub fn new(format: Format) -> Self {
        Copy { writer: TraceWriter::new(Cursor::new(Vec::new()), format) }
    }

    pub fn finish(self) -> Result<Vec<u8>, TraceError> {
        Ok(self.writer.finish()?.into_inner())
    }
}

impl TraceVisitor for Copy {
    type Error = TraceError;

    fn section(&mut self, section: Section) -> Result<(), TraceError> {
        self.writer.section(&section)
    }

    fn event(&mut self, _index: usize, event: Event) -> Result<(), TraceError> {
        self.writer.event(&event)
    }
}

/// Reads `input` and writes it back in `to`, streaming.
pub fn convert(input: &[u8], from: Format, to: Format) -> Vec<u8> {
    let mut copy = Copy::new(to);
    if let Err(e) = skel_trace::read_trace(input, from, &mut copy) {
        panic!("read failed: {e:?}");
    }
    copy.finish().unwrap_or_else(|e| panic!("write failed: {e}"))
}
