//! A trace's events alone, for readers that need none of its sections (`skel run`'s survey and
//! replay, the language server's key index): a closure instead of a `TraceVisitor` of their own.

use std::io::Read;

use crate::{read_trace, Event, Format, ReadError, Section, TraceVisitor};

/// Reads a whole trace as `read_trace` does, calling `each` with every event and its index in
/// the input's `events` array; the sections are read and dropped. An error from `each` stops
/// reading and comes back as `ReadError::Visitor`.
pub fn read_events<R: Read, E>(
    input: R,
    format: Format,
    each: impl FnMut(usize, Event) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    read_trace(input, format, &mut Events(each))
}

struct Events<F>(F);

impl<E, F: FnMut(usize, Event) -> Result<(), E>> TraceVisitor for Events<F> {
    type Error = E;

    fn section(&mut self, _: Section) -> Result<(), E> {
        Ok(())
    }

    fn event(&mut self, index: usize, event: Event) -> Result<(), E> {
        (self.0)(index, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = r#"{"version": 2, "config": {"trackedObjects": {}}, "events": [
        {"ts": 1, "applied_objs": [{"kind": "Pod"}], "deleted_objs": []},
        {"ts": 2, "applied_objs": [], "deleted_objs": [{"kind": "Pod"}]}
    ], "index": {}, "pod_lifecycles": []}"#;

    #[test]
    fn every_event_comes_with_its_index() {
        let mut seen = Vec::new();
        let read = read_events(TRACE.as_bytes(), Format::Json, |i, e| {
            seen.push((i, e.ts));
            Ok::<_, ()>(())
        });
        assert!(read.is_ok());
        assert_eq!(seen, [(0, 1), (1, 2)]);
    }

    #[test]
    fn an_error_of_the_closure_stops_reading() {
        let mut calls = 0;
        let read = read_events(TRACE.as_bytes(), Format::Json, |_, _| {
            calls += 1;
            Err("stop")
        });
        assert!(matches!(read, Err(ReadError::Visitor("stop"))));
        assert_eq!(calls, 1);
    }
}
