//! `Trace`: a whole trace in memory, for tests, the REPL and small traces.

use std::convert::Infallible;
use std::io::{Read, Seek, Write};

use serde_json::{Map, Value};

use crate::config::Config;
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

/// Collects what `read_trace` delivers.
#[derive(Default)]
struct Collector {
    trace: Trace,
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
        self.trace.events.push(event);
        Ok(())
    }
}

impl Trace {
    /// Reads a whole trace (`read_trace` guarantees every section was present).
    pub fn read<R: Read>(r: R, f: Format) -> Result<Trace, TraceError> {
        let mut collector = Collector::default();
        match read_trace(r, f, &mut collector) {
            Ok(()) => Ok(collector.trace),
            Err(ReadError::Trace(e)) => Err(e),
            Err(ReadError::Visitor(never)) => match never {},
        }
    }

    /// Writes the trace in SimKube's key order: version, config, events, index, pod_lifecycles.
    pub fn write<W: Write + Seek>(&self, w: W, f: Format) -> Result<W, TraceError> {
        let mut writer = TraceWriter::new(w, f);
        writer.section(&Section::Version(self.version))?;
        writer.section(&Section::Config(self.config.clone()))?;
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
}
