//! `Trace`: a whole trace in memory, for tests, the REPL and small traces.

use std::convert::Infallible;
use std::io::{Read, Seek, Write};

use serde_json::{Map, Value};

use crate::config::Config;
use crate::decode::{first_inexact_number, json_position, unsure_float};
use crate::error::{ReadError, TraceError};
use crate::lifecycles::PodLifecycles;
use crate::model::{Event, Format, Section, TRACE_VERSION};
use crate::read::{read_trace, TraceVisitor};
use crate::write::TraceWriter;

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub version: u64,
    pub config: Config,
    pub events: Vec<Event>,
    pub index: Value,
    pub pod_lifecycles: PodLifecycles,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            version: TRACE_VERSION,
            config: Config::default(),
            events: Vec::new(),
            index: Value::Object(Map::new()),
            pod_lifecycles: PodLifecycles::default(),
        }
    }
}

/// Collects what `read_trace` delivers; notes a JSON float that may not be its text's number.
#[derive(Default)]
struct Collector {
    trace: Trace,
    /// The input is JSON, and a manifest holds a float that may not be its text's number (see
    /// `unsure_float`): the text decides.
    unsure: bool,
    json: bool,
}

impl TraceVisitor for Collector {
    type Error = Infallible;

    fn section(&mut self, section: Section) -> Result<(), Infallible> {
        match section {
            Section::Version(v) => self.trace.version = v,
            Section::Config(c) => self.trace.config = c,
            Section::Index(i) => self.trace.index = i,
            Section::PodLifecycles(p) => self.trace.pod_lifecycles = p,
        }
        Ok(())
    }

    fn event(&mut self, _index: usize, event: Event) -> Result<(), Infallible> {
        if self.json && !self.unsure {
            self.unsure = event.applied_objs.iter().chain(&event.deleted_objs).any(holds_unsure_float);
        }
        self.trace.events.push(event);
        Ok(())
    }
}

fn holds_unsure_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(unsure_float) && n.is_f64(),
        Value::Array(items) => items.iter().any(holds_unsure_float),
        Value::Object(m) => m.values().any(holds_unsure_float),
        _ => false,
    }
}

/// A reader that keeps what it read (when `keep`).
struct Tape<R> {
    inner: R,
    keep: bool,
    bytes: Vec<u8>,
}

impl<R: Read> Read for Tape<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.keep {
            self.bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        Ok(n)
    }
}

impl Trace {
    /// Reads a whole trace (`read_trace` guarantees every section was present). A JSON number
    /// that no 64-bit integer or float holds exactly is an error, as everywhere: the text read
    /// is kept until the end, for the floats that may not be their text's number.
    pub fn read<R: Read>(r: R, f: Format) -> Result<Trace, TraceError> {
        let mut collector = Collector { json: f == Format::Json, ..Collector::default() };
        let mut tape = Tape { inner: r, keep: collector.json, bytes: Vec::new() };
        match read_trace(&mut tape, f, &mut collector) {
            Ok(()) => {}
            // A number too large for a float: serde_json does not say which; the text does.
            Err(ReadError::Trace(TraceError::InexactNumber { location, why, .. })) if collector.json => {
                let text = first_inexact_number(&tape.bytes).map_or("…", |(_, text, _)| text);
                return Err(TraceError::InexactNumber { number: format!("the number `{text}`"), why, location });
            }
            Err(ReadError::Trace(e)) => return Err(e),
            Err(ReadError::Visitor(never)) => match never {},
        }
        match if collector.unsure { first_inexact_number(&tape.bytes) } else { None } {
            Some((offset, text, why)) => {
                Err(TraceError::inexact_number(text, why).locate(json_position(&tape.bytes, offset)))
            }
            None => Ok(collector.trace),
        }
    }

    /// Writes the trace in SimKube's key order: version, config, events, index, pod_lifecycles.
    pub fn write<W: Write + Seek>(&self, w: W, f: Format) -> Result<W, TraceError> {
        let mut writer = TraceWriter::new(w, f);
        writer.section(&Section::Version(self.version))?;
        writer.section(&Section::Config(self.config.clone()))?;
        // The events array keeps its place (after the config) even when it is empty.
        writer.begin_events()?;
        for event in &self.events {
            writer.event(event)?;
        }
        writer.section(&Section::Index(self.index.clone()))?;
        writer.section(&Section::PodLifecycles(self.pod_lifecycles.clone()))?;
        writer.finish()
    }

    /// The trace as the JSON writer writes it.
    pub fn to_json_value(&self) -> Value {
        let mut top = Map::new();
        top.insert("version".into(), Value::from(self.version));
        top.insert("config".into(), self.config.to_json_value());
        top.insert("events".into(), Value::Array(self.events.iter().map(Event::to_json_value).collect()));
        top.insert("index".into(), self.index.clone());
        top.insert("pod_lifecycles".into(), self.pod_lifecycles.to_json_value());
        Value::Object(top)
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn default_trace_round_trips() -> Result<(), TraceError> {
        let trace = Trace::default();
        for format in [Format::Json, Format::Msgpack] {
            let out = trace.write(Cursor::new(Vec::new()), format)?.into_inner();
            assert_eq!(Trace::read(out.as_slice(), format)?, trace);
        }
        Ok(())
    }

    /// SimKube's key order, events or not: `events` right after `config`.
    #[test]
    fn an_empty_events_array_keeps_its_place() -> Result<(), TraceError> {
        let out = Trace::default().write(Cursor::new(Vec::new()), Format::Json)?.into_inner();
        let text = String::from_utf8_lossy(&out);
        let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap_or(usize::MAX);
        assert!(at("config") < at("events") && at("events") < at("index"), "{text}");
        Ok(())
    }
}
