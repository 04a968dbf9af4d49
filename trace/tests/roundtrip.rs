//! Round trips between the formats, key order freedom, and that reading really streams.
#![allow(clippy::panic)] // tests report failures by panicking

mod common;

use std::cell::Cell;
use std::io::{Cursor, Read};
use std::rc::Rc;

use serde_json::{json, Value};
use skel_trace::{read_trace, Event, Format, PodLifecycle, ReadError, Section, Trace, TraceVisitor};

fn read(bytes: &[u8], format: Format) -> Trace {
    Trace::read(bytes, format).unwrap_or_else(|e| panic!("read failed: {e}"))
}

fn write(trace: &Trace, format: Format) -> Vec<u8> {
    trace.write(Cursor::new(Vec::new()), format).unwrap_or_else(|e| panic!("write failed: {e}")).into_inner()
}

#[test]
fn msgpack_round_trips() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut seen_lifecycles = false;
    for (path, format) in common::shared_traces(&shared) {
        let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let original = read(&input, format);
        seen_lifecycles |= !original.pod_lifecycles.is_empty();

        // msgpack -> msgpack
        let again = read(&write(&original, Format::Msgpack), Format::Msgpack);
        assert_eq!(again, original, "{}: msgpack round trip", path.display());

        // -> json -> msgpack
        let via_json = read(&write(&original, Format::Json), Format::Json);
        assert_eq!(via_json, original, "{}: via JSON", path.display());
        let back = read(&write(&via_json, Format::Msgpack), Format::Msgpack);
        assert_eq!(back, original, "{}: msgpack -> JSON -> msgpack", path.display());

        // The streaming writer and the in-memory one agree, byte for byte.
        for to in [Format::Json, Format::Msgpack] {
            assert_eq!(
                common::convert(&input, format, to),
                write(&original, to),
                "{}: streaming vs in-memory {to}",
                path.display()
            );
        }

        // `to_json_value` is what the JSON writer writes.
        let written: Value = serde_json::from_slice(&write(&original, Format::Json)).unwrap_or_default();
        assert_eq!(written, original.to_json_value(), "{}", path.display());
    }
    assert!(seen_lifecycles, "no shared trace has pod lifecycles");
}

#[test]
fn msgpack_output_decodes_as_simkube_shapes() {
    // The written msgpack keeps SimKube's shapes: u64 hashes, tuple keys, named event fields.
    let trace = read(&common::fixture("ex-cronjob.sktrace"), Format::Msgpack);
    let bytes = write(&trace, Format::Msgpack);
    assert_eq!(bytes.first(), Some(&0x85), "a map of five keys");
    let entry = trace.pod_lifecycles.entries().first().cloned();
    let entry = entry.unwrap_or_else(|| panic!("ex-cronjob has pod lifecycles"));
    assert_eq!(entry.gvk, "batch/v1.CronJob");
    assert_eq!(entry.ns_name, "default/hello-simkube");
    assert_eq!(
        entry.pods,
        vec![(
            10855072724872030168,
            vec![
                PodLifecycle::Finished(1743286861, 1743286891),
                PodLifecycle::Finished(1743286921, 1743286951),
                PodLifecycle::Finished(1743286981, 1743287011),
            ]
        )]
    );
    // The original file and ours decode to the same thing.
    assert_eq!(read(&bytes, Format::Msgpack), trace);
}

#[test]
fn json_fixture_round_trips_through_msgpack() {
    let input = common::fixture("tu-trace.json");
    let original = read(&input, Format::Json);
    assert_eq!(original.events.len(), 1);
    let back = read(&write(&original, Format::Msgpack), Format::Msgpack);
    assert_eq!(back, original);
}

#[test]
fn any_key_order_reads_and_writes() {
    let text = r#"{
        "index": {"apps/v1.Deployment": {"default/web": 18446744073709551615}},
        "pod_lifecycles": {},
        "events": [
            {"applied_objs": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}],
             "deleted_objs": [], "ts": 10}
        ],
        "version": 2,
        "config": {"trackedObjects": {"apps/v1.Deployment": {"trackLifecycle": false}}}
    }"#;
    let mut sections = Vec::new();
    struct Names<'a>(&'a mut Vec<&'static str>);
    impl TraceVisitor for Names<'_> {
        type Error = ();
        fn section(&mut self, s: Section) -> Result<(), ()> {
            self.0.push(s.name());
            Ok(())
        }
        fn event(&mut self, _: usize, _: Event) -> Result<(), ()> {
            self.0.push("event");
            Ok(())
        }
    }
    let res = read_trace(text.as_bytes(), Format::Json, &mut Names(&mut sections));
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(sections, ["index", "pod_lifecycles", "event", "version", "config"]);

    // Written in the order the sections came.
    let out = common::convert(text.as_bytes(), Format::Json, Format::Json);
    assert_eq!(
        String::from_utf8_lossy(&out),
        concat!(
            r#"{"index":{"apps/v1.Deployment":{"default/web":18446744073709551615}},"pod_lifecycles":[],"#,
            r#""events":[{"ts":10,"applied_objs":[{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}}],"deleted_objs":[]}],"#,
            r#""version":2,"config":{"trackedObjects":{"apps/v1.Deployment":{"podSpecTemplatePaths":["/spec/template"]}}}}"#
        )
    );
    let trace = read(&out, Format::Json);
    assert_eq!(trace.index, json!({"apps/v1.Deployment": {"default/web": u64::MAX}}));
    let msgpack = common::convert(text.as_bytes(), Format::Json, Format::Msgpack);
    assert_eq!(read(&msgpack, Format::Msgpack), trace);
}

/// Counts how many bytes the reader has taken from the input.
struct Counting<R> {
    inner: R,
    taken: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.set(self.taken.get() + n);
        Ok(n)
    }
}

struct FirstEventAt {
    taken: Rc<Cell<usize>>,
    at: Option<usize>,
    events: usize,
}

impl TraceVisitor for FirstEventAt {
    type Error = String;
    fn section(&mut self, _: Section) -> Result<(), String> {
        Ok(())
    }
    fn event(&mut self, index: usize, _: Event) -> Result<(), String> {
        if index != self.events {
            return Err(format!("event {index} came as number {}", self.events));
        }
        self.events += 1;
        self.at.get_or_insert(self.taken.get());
        Ok(())
    }
}

#[test]
fn events_are_handed_over_while_reading() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for (name, format) in [("gen-s303-e250.json", Format::Json), ("gen-s404-e40.sktrace", Format::Msgpack)] {
        let input = std::fs::read(shared.join("traces").join(name)).unwrap_or_default();
        let taken = Rc::new(Cell::new(0));
        let mut v = FirstEventAt { taken: taken.clone(), at: None, events: 0 };
        let reader = Counting { inner: input.as_slice(), taken };
        let res = read_trace(reader, format, &mut v);
        assert!(res.is_ok(), "{name}: {res:?}");
        assert!(v.events > 1, "{name}");
        let at = v.at.unwrap_or(usize::MAX);
        assert!(at < input.len() / 4, "{name}: first event only after {at} of {} bytes", input.len());
    }
}

#[test]
fn visitor_error_stops_reading() {
    struct StopAt(usize);
    impl TraceVisitor for StopAt {
        type Error = (usize, &'static str);
        fn section(&mut self, _: Section) -> Result<(), Self::Error> {
            Ok(())
        }
        fn event(&mut self, index: usize, _: Event) -> Result<(), Self::Error> {
            if index == self.0 {
                Err((index, "enough"))
            } else {
                Ok(())
            }
        }
    }
    for (bytes, format) in
        [(common::fixture("tu-trace.json"), Format::Json), (common::fixture("ex-cronjob.sktrace"), Format::Msgpack)]
    {
        match read_trace(bytes.as_slice(), format, &mut StopAt(0)) {
            Err(ReadError::Visitor(e)) => assert_eq!(e, (0, "enough")),
            other => panic!("{format}: {other:?}"),
        }
    }
}
