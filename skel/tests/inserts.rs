//! `insert`: objects go into the event at their time, or into a new event there in time order,
//! whatever the batches the stream is cut into and the number of workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use skel_trace::Format;

/// Streams `input` (in `format`) through `program`, jobs and batches as given: the output's
/// events, as JSON.
fn stream(program: &skel::Program, input: &[u8], format: Format, jobs: usize, batch_bytes: usize) -> Value {
    let mut writer = skel_trace::TraceWriter::new(std::io::Cursor::new(Vec::new()), Format::Json);
    let mut opts = skel::stream::StreamOptions::new(format, Format::Json);
    opts.jobs = jobs;
    opts.batch_bytes = batch_bytes;
    skel::stream::transform(program, input, &mut writer, opts).map_err(|e| format!("{e:?}")).unwrap();
    let out: Value = serde_json::from_slice(&writer.finish().unwrap().into_inner()).unwrap();
    out["events"].clone()
}

/// A trace of `events` (as (ts, pod names)), as JSON and as msgpack.
fn trace_of(events: &[(i64, &[&str])]) -> (Vec<u8>, Vec<u8>) {
    let events: Vec<Value> = events
        .iter()
        .map(|(ts, names)| {
            let objs: Vec<Value> = names.iter().map(|n| json!({"kind": "Pod", "metadata": {"name": n}})).collect();
            json!({"ts": ts, "applied_objs": objs, "deleted_objs": []})
        })
        .collect();
    let trace =
        json!({"version": 2, "config": {"trackedObjects": {}}, "events": events, "index": {}, "pod_lifecycles": {}});
    let json = serde_json::to_vec(&trace).unwrap();
    let t = skel_trace::Trace::read(json.as_slice(), Format::Json).unwrap();
    let msgpack = t.write(std::io::Cursor::new(Vec::new()), Format::Msgpack).unwrap().into_inner();
    (json, msgpack)
}

/// Streams `events` (as (ts, pod names)) through `src`, from `format`, jobs and batches as
/// given: the output's events as (ts, names).
fn run(
    src: &str,
    events: &[(i64, &[&str])],
    jobs: usize,
    batch_bytes: usize,
    format: Format,
) -> Vec<(i64, Vec<String>)> {
    let compiled = skel::compile(src).expect("compiles");
    let (json, msgpack) = trace_of(events);
    let (input, other, other_format) = match format {
        Format::Json => (json, msgpack, Format::Msgpack),
        Format::Msgpack => (msgpack, json, Format::Json),
    };
    let out = stream(&compiled.program, &input, format, jobs, batch_bytes);
    // The same trace in the other format, one event to a batch on one thread, puts the
    // inserts in the same places.
    let again = stream(&compiled.program, &other, other_format, 1, 1);
    assert_eq!(again, out, "from {other_format}, jobs 1, one event a batch, differs");
    out.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let names = e["applied_objs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string());
            (e["ts"].as_i64().unwrap(), names.collect())
        })
        .collect()
}

fn pod(name: &str) -> String {
    format!(r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "{name}"}}}}"#)
}

#[test]
fn inserts_land_at_their_time_in_every_batching() {
    let src = [
        format!("insert(@t == 50, {});", pod("first")),
        format!("insert(@t == 0s, {});", pod("start")),
        format!("insert(@t == 25s, {});", pod("between")),
        format!("insert(@t == 30s, {});", pod("same-ts")),
        format!("insert(@t == 30s, {});", pod("same-ts-2")),
        format!("insert(@t == 1h, {});", pod("last")),
        "delete(metadata.name == \"gone\");".to_string(),
        format!("insert(@t == 40s, {});", pod("into-pruned")),
    ]
    .join("\n");
    let events: &[(i64, &[&str])] =
        &[(100, &["a"]), (110, &["b"]), (120, &["c"]), (130, &["d"]), (130, &["e"]), (140, &["gone"]), (150, &["f"])];
    let want: Vec<(i64, Vec<String>)> = [
        (50, vec!["first"]),
        (100, vec!["a", "start"]),
        (110, vec!["b"]),
        (120, vec!["c"]),
        (125, vec!["between"]),
        (130, vec!["d", "same-ts", "same-ts-2"]),
        (130, vec!["e"]),
        (140, vec!["into-pruned"]),
        (150, vec!["f"]),
        (3700, vec!["last"]),
    ]
    .into_iter()
    .map(|(t, n)| (t, n.into_iter().map(String::from).collect()))
    .collect();
    for format in [Format::Json, Format::Msgpack] {
        for (jobs, batch) in [(1, 1 << 20), (1, 60), (3, 60), (2, 150)] {
            assert_eq!(run(&src, events, jobs, batch, format), want, "{format} jobs {jobs} batch {batch}");
        }
    }
}

#[test]
fn inserts_into_an_empty_trace_need_absolute_times() {
    let src = format!("insert(@t == 5, {});\ninsert(@t == 1m, {});", pod("abs"), pod("rel"));
    assert_eq!(run(&src, &[], 1, 1 << 20, Format::Json), vec![(5, vec!["abs".to_string()])]);
}

/// In a trace whose times go back, each insert goes in once: where the trace's time first
/// reaches it (an event no later than one before it gets none).
#[test]
fn inserts_go_in_once_where_times_go_back() {
    let src = [
        format!("insert(@t == 0s, {});", pod("i0")),
        format!("insert(@t == 10s, {});", pod("i10")),
        format!("insert(@t == 30s, {});", pod("i30")),
        format!("insert(@t == 35s, {});", pod("i35")),
        format!("insert(@t == 1h, {});", pod("i1h")),
    ]
    .join("\n");
    let events: &[(i64, &[&str])] =
        &[(100, &["a"]), (130, &["b"]), (110, &["c"]), (130, &["d"]), (90, &["e"]), (140, &["f"])];
    let want: Vec<(i64, Vec<String>)> = [
        (100, vec!["a", "i0"]),
        (110, vec!["i10"]),
        (130, vec!["b", "i30"]),
        (110, vec!["c"]),
        (130, vec!["d"]),
        (90, vec!["e"]),
        (135, vec!["i35"]),
        (140, vec!["f"]),
        (3700, vec!["i1h"]),
    ]
    .into_iter()
    .map(|(t, n)| (t, n.into_iter().map(String::from).collect()))
    .collect();
    for format in [Format::Json, Format::Msgpack] {
        for (jobs, batch) in [(1, 1 << 20), (1, 60), (3, 60), (2, 150)] {
            assert_eq!(run(&src, events, jobs, batch, format), want, "{format} jobs {jobs} batch {batch}");
        }
    }
}

/// The error a script gives over a one-event trace starting at `start`, streamed from JSON on
/// every core and from msgpack on one thread, one event a batch (the same); `None` if it runs.
fn run_error(src: &str, start: i64) -> Option<String> {
    let compiled = skel::compile(src).expect("compiles");
    let trace = json!({"version": 2, "config": {"trackedObjects": {}},
        "events": [{"ts": start, "applied_objs": [{"kind": "Pod", "metadata": {"name": "a"}}], "deleted_objs": []}],
        "index": {}, "pod_lifecycles": {}});
    let json = serde_json::to_vec(&trace).unwrap();
    let t = skel_trace::Trace::read(json.as_slice(), Format::Json).unwrap();
    let msgpack = t.write(std::io::Cursor::new(Vec::new()), Format::Msgpack).unwrap().into_inner();
    let error = |input: &[u8], opts: skel::stream::StreamOptions| {
        let mut writer = skel_trace::TraceWriter::new(std::io::Cursor::new(Vec::new()), Format::Json);
        match skel::stream::transform(&compiled.program, input, &mut writer, opts) {
            Ok(_) => None,
            Err(skel::stream::StreamError::Run(e)) => Some(e.to_string()),
            Err(e) => panic!("{e:?}"),
        }
    };
    let parallel = error(&json, skel::stream::StreamOptions::new(Format::Json, Format::Json));
    let one = skel::stream::StreamOptions {
        jobs: 1,
        batch_bytes: 1,
        ..skel::stream::StreamOptions::new(Format::Msgpack, Format::Json)
    };
    let sequential = error(&msgpack, one);
    assert_eq!(parallel, sequential, "from JSON on every core and from msgpack on one thread differ");
    parallel
}

/// A time after the start past the largest `ts` is an error, never a time clamped to it.
#[test]
fn times_past_the_largest_ts_are_errors() {
    let start = i64::MAX - 3;
    let past = "the trace starts at ts 9223372036854775804: 5s after that is past the largest time";
    let insert = run_error(&format!("insert(@t == 5s, {});", pod("x")), start).unwrap();
    assert!(insert.starts_with(past), "{insert}");
    let test = run_error("delete(@t > 5s);", start).unwrap();
    assert!(test.starts_with(past) && test.contains("events[0].applied_objs[0]"), "{test}");
    // Up to the largest `ts` itself, times are fine.
    assert_eq!(run_error(&format!("insert(@t == 3s, {}); delete(@t < 3s);", pod("x")), start), None);
    assert_eq!(run_error("delete(@t > 5s);", i64::MIN), None);
}
