//! `TraceWriter`: writes a trace section by section and event by event, as JSON or msgpack.
//!
//! JSON is compact and written straight into a `BufWriter`. Msgpack is what SimKube writes
//! (rmp-serde with named fields); the number of events is unknown while streaming, so the events
//! array gets a 32-bit length placeholder that `finish` patches through `Seek`.

use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use serde::Serialize;

use crate::error::TraceError;
use crate::index::check_index;
use crate::model::{Event, Format, Section, SECTION_NAMES, TRACE_VERSION};

/// Where the events array is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Events {
    NotStarted,
    Open { count: u64 },
    Closed,
}

/// Streams a trace out. Sections and events are written in the order they are given; the events
/// must come one after another (a section written after events closes the events array).
pub struct TraceWriter<W: Write + Seek> {
    out: BufWriter<W>,
    format: Format,
    /// Bit `i` is set once `SECTION_NAMES[i]` has been started.
    written: u8,
    keys: usize,
    events: Events,
    /// Msgpack: where the events array's u32 length is, to patch in `finish`.
    count_at: Option<u64>,
    count: u32,
}

fn bit(name: &str) -> u8 {
    SECTION_NAMES.iter().position(|n| *n == name).map_or(0, |i| 1 << i)
}

impl<W: Write + Seek> TraceWriter<W> {
    pub fn new(out: W, format: Format) -> Self {
        TraceWriter {
            out: BufWriter::with_capacity(64 * 1024, out),
            format,
            written: 0,
            keys: 0,
            events: Events::NotStarted,
            count_at: None,
            count: 0,
        }
    }

    /// Writes one non-event section. Each section may be written once.
    pub fn section(&mut self, section: &Section) -> Result<(), TraceError> {
        let name = section.name();
        if self.written & bit(name) != 0 {
            return Err(TraceError::WriterMisuse {
                what: format!("`{name}`"),
                reason: "it was already written".into(),
            });
        }
        match section {
            Section::Version(v) if *v != TRACE_VERSION => {
                return Err(TraceError::UnsupportedVersion { found: v.to_string(), location: Box::default() })
            }
            Section::Index(index) => check_index(index)?,
            _ => {}
        }
        self.close_events()?;
        self.key(name)?;
        match (section, self.format) {
            (Section::Version(v), Format::Json) => self.json(v),
            (Section::Version(v), Format::Msgpack) => self.msgpack(v),
            (Section::Config(c), Format::Json) => self.json(&c.to_json_value()),
            (Section::Config(c), Format::Msgpack) => self.msgpack(&c.to_json_value()),
            (Section::Index(i), Format::Json) => self.json(i),
            (Section::Index(i), Format::Msgpack) => self.msgpack(i),
            (Section::PodLifecycles(p), Format::Json) => self.json(&p.to_json_value()),
            (Section::PodLifecycles(p), Format::Msgpack) => self.msgpack(&p.msgpack_form()),
        }
    }

    /// Opens the `events` array now, so it keeps its place among the sections even if every
    /// event turns out to be dropped. Does nothing once it is open.
    pub fn begin_events(&mut self) -> Result<(), TraceError> {
        match self.events {
            Events::NotStarted => self.open_events(),
            _ => Ok(()),
        }
    }

    /// Appends `count` events already encoded by `encode_event` (JSON: separated by commas).
    pub fn encoded_events(&mut self, bytes: &[u8], count: u64) -> Result<(), TraceError> {
        if count == 0 {
            return Ok(());
        }
        let before = self.next_events(count)?;
        if self.format == Format::Json && before > 0 {
            self.raw(b",")?;
        }
        self.raw(bytes)
    }

    /// Opens the events array if needed and counts `added` more events in it; returns how many
    /// there were before.
    fn next_events(&mut self, added: u64) -> Result<u64, TraceError> {
        let before = match self.events {
            Events::Closed => {
                return Err(TraceError::WriterMisuse {
                    what: "an event".into(),
                    reason: "the events were closed by writing another section after them".into(),
                })
            }
            Events::NotStarted => {
                self.open_events()?;
                0
            }
            Events::Open { count } => count,
        };
        let total = before + added;
        if self.format == Format::Msgpack {
            // The count patched in `finish` is 32 bits.
            self.count = u32::try_from(total).map_err(|_| TraceError::Encode {
                format: Format::Msgpack,
                message: "a msgpack trace holds at most 4294967295 events".into(),
            })?;
        }
        self.events = Events::Open { count: total };
        Ok(before)
    }

    /// Writes the next event of the `events` array.
    pub fn event(&mut self, event: &Event) -> Result<(), TraceError> {
        let before = self.next_events(1)?;
        match self.format {
            Format::Json => {
                if before > 0 {
                    self.raw(b",")?;
                }
                self.json(event)
            }
            Format::Msgpack => self.msgpack(event),
        }
    }

    /// Ends the trace (writing an empty `events` if no event was written), flushes, and returns
    /// the output. Every section must have been written.
    pub fn finish(mut self) -> Result<W, TraceError> {
        if self.events == Events::NotStarted {
            self.open_events()?;
        }
        self.close_events()?;
        if let Some(name) = SECTION_NAMES.iter().find(|name| self.written & bit(name) == 0) {
            return Err(TraceError::MissingSection { name, location: Box::default() });
        }
        if self.format == Format::Json {
            self.raw(b"}")?;
        }
        let mut out = self.out.into_inner().map_err(|e| TraceError::write_io(e.into_error()))?;
        if let Some(at) = self.count_at {
            patch_count(&mut out, at, self.count).map_err(TraceError::write_io)?;
        }
        out.flush().map_err(TraceError::write_io)?;
        Ok(out)
    }

    /// Starts a top-level key (and the top-level map, before the first one).
    fn key(&mut self, name: &'static str) -> Result<(), TraceError> {
        self.written |= bit(name);
        match self.format {
            Format::Json => {
                let open: &[u8] = if self.keys == 0 { b"{" } else { b"," };
                self.raw(open)?;
                self.json(name)?;
                self.raw(b":")?;
            }
            Format::Msgpack => {
                if self.keys == 0 {
                    let len = SECTION_NAMES.len() as u32;
                    rmp::encode::write_map_len(&mut self.out, len).map_err(value_write)?;
                }
                rmp::encode::write_str(&mut self.out, name).map_err(value_write)?;
            }
        }
        self.keys += 1;
        Ok(())
    }

    fn open_events(&mut self) -> Result<(), TraceError> {
        self.key("events")?;
        match self.format {
            Format::Json => self.raw(b"[")?,
            Format::Msgpack => {
                // array32 marker, then a length patched in `finish`.
                self.raw(&[0xdd])?;
                let at = self.out.stream_position().map_err(TraceError::write_io)?;
                self.count_at = Some(at);
                self.raw(&[0, 0, 0, 0])?;
            }
        }
        self.events = Events::Open { count: 0 };
        Ok(())
    }

    fn close_events(&mut self) -> Result<(), TraceError> {
        if let Events::Open { .. } = self.events {
            if self.format == Format::Json {
                self.raw(b"]")?;
            }
            self.events = Events::Closed;
        }
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), TraceError> {
        self.out.write_all(bytes).map_err(TraceError::write_io)
    }

    fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TraceError> {
        serde_json::to_writer(&mut self.out, value).map_err(|e| {
            if e.is_io() {
                TraceError::write_io(e.into())
            } else {
                TraceError::Encode { format: Format::Json, message: e.to_string() }
            }
        })
    }

    fn msgpack<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TraceError> {
        use rmp_serde::encode::Error as E;
        rmp_serde::encode::write_named(&mut self.out, value).map_err(|e| match e {
            E::InvalidValueWrite(e) => value_write(e),
            other => TraceError::Encode { format: Format::Msgpack, message: other.to_string() },
        })
    }
}

fn value_write(e: rmp::encode::ValueWriteError<io::Error>) -> TraceError {
    match e {
        rmp::encode::ValueWriteError::InvalidMarkerWrite(e) | rmp::encode::ValueWriteError::InvalidDataWrite(e) => {
            TraceError::write_io(e)
        }
    }
}

/// Writes the events count at `at`, then returns to the end of the output.
fn patch_count<W: Write + Seek>(out: &mut W, at: u64, count: u32) -> io::Result<()> {
    let end = out.stream_position()?;
    out.seek(SeekFrom::Start(at))?;
    out.write_all(&count.to_be_bytes())?;
    out.seek(SeekFrom::Start(end))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::lifecycles::PodLifecycles;
    use std::io::Cursor;

    fn sections() -> Vec<Section> {
        vec![
            Section::Version(2),
            Section::Config(Config::default()),
            Section::Index(serde_json::json!({})),
            Section::PodLifecycles(PodLifecycles::default()),
        ]
    }

    fn event(ts: i64) -> Event {
        Event { ts, applied_objs: vec![serde_json::json!({"kind": "Pod"})], deleted_objs: vec![] }
    }

    #[test]
    fn json_in_call_order() -> Result<(), TraceError> {
        let mut w = TraceWriter::new(Cursor::new(Vec::new()), Format::Json);
        let [version, config, index, lifecycles] = <[Section; 4]>::try_from(sections())
            .map_err(|_| TraceError::Encode { format: Format::Json, message: "test".into() })?;
        w.section(&index)?;
        w.event(&event(1))?;
        w.event(&event(2))?;
        w.section(&version)?;
        w.section(&lifecycles)?;
        w.section(&config)?;
        let out = w.finish()?.into_inner();
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"index":{},"events":[{"ts":1,"applied_objs":[{"kind":"Pod"}],"deleted_objs":[]},{"ts":2,"applied_objs":[{"kind":"Pod"}],"deleted_objs":[]}],"version":2,"pod_lifecycles":[],"config":{"trackedObjects":{}}}"#
        );
        Ok(())
    }

    #[test]
    fn no_events_writes_empty_array() -> Result<(), TraceError> {
        for format in [Format::Json, Format::Msgpack] {
            let mut w = TraceWriter::new(Cursor::new(Vec::new()), format);
            for s in sections() {
                w.section(&s)?;
            }
            let out = w.finish()?.into_inner();
            if format == Format::Json {
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    r#"{"version":2,"config":{"trackedObjects":{}},"index":{},"pod_lifecycles":[],"events":[]}"#
                );
            } else {
                let v: Result<serde_json::Value, _> = rmp_serde::from_slice(&out);
                assert_eq!(
                    v.ok(),
                    Some(
                        serde_json::json!({"version": 2, "config": {"trackedObjects": {}}, "index": {}, "pod_lifecycles": {}, "events": []})
                    )
                );
            }
        }
        Ok(())
    }

    #[test]
    fn msgpack_count_is_patched() -> Result<(), TraceError> {
        let mut w = TraceWriter::new(Cursor::new(vec![0xaa]), Format::Msgpack);
        // Start after an existing byte: positions must be absolute.
        w.out.get_mut().set_position(1);
        w.section(&Section::Version(2))?;
        for ts in 0..3 {
            w.event(&event(ts))?;
        }
        for s in sections().into_iter().skip(1) {
            w.section(&s)?;
        }
        let out = w.finish()?;
        assert_eq!(out.position(), out.get_ref().len() as u64);
        let bytes = out.into_inner();
        let v: Result<serde_json::Value, _> = rmp_serde::from_slice(bytes.get(1..).unwrap_or(&[]));
        let events = v.ok().and_then(|v| v.get("events").cloned());
        assert_eq!(events.and_then(|e| e.as_array().map(Vec::len)), Some(3));
        Ok(())
    }

    #[test]
    fn misuse_is_reported() -> Result<(), TraceError> {
        let mut w = TraceWriter::new(Cursor::new(Vec::new()), Format::Json);
        w.event(&event(1))?;
        w.section(&Section::Version(2))?;
        assert!(matches!(w.event(&event(2)), Err(TraceError::WriterMisuse { .. })));
        assert!(matches!(w.section(&Section::Version(2)), Err(TraceError::WriterMisuse { .. })));
        assert!(matches!(w.finish(), Err(TraceError::MissingSection { name: "config", .. })));
        let mut w = TraceWriter::new(Cursor::new(Vec::new()), Format::Json);
        assert!(matches!(w.section(&Section::Version(3)), Err(TraceError::UnsupportedVersion { .. })));
        assert!(matches!(w.section(&Section::Index(serde_json::json!([]))), Err(TraceError::WrongType { .. })));
        Ok(())
    }
}
