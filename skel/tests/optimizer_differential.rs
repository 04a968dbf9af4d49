//! The optimizer and the lazy decoder change nothing: random scripts built from realistic tests
//! run optimized and unoptimized over sample objects, and streamed with lazy and with whole
//! decoding, and must give identical objects, outcomes and errors.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value};

const TESTS: &[&str] = &[
    "kind == \"Pod\"",
    "kind == \"Service\"",
    "kind != \"Pod\"",
    "apiVersion == \"v1\"",
    "exists(spec.a)",
    "!exists(spec.a)",
    "spec.a[*].b == 1",
    "spec.a[*].b != 1",
    "spec.n >= 2",
    "x == y",
    "x == spec.n",
    "@t > 5m",
    "@t < 1500",
    "@t >= 1200",
    "@t == 1000",
    "metadata.labels.app == \"web\"",
];

const BINDS: &[&str] =
    &["$v := spec.a[*] | exists($v.b)", "$v := spec.a[*] | $v.b == 1", "$v := spec.a[*] | !exists($v.c)"];

const ACTIONS: &[&str] = &[
    "delete",
    "remove(status)",
    "remove(spec.a[*].b)",
    "remove($v)",
    "modify(kind = \"Service\")",
    "modify(spec.n = 3)",
    "modify(metadata.labels.app = \"db\")",
    "modify($v.c = 1)",
    "modify(y = x)",
];

fn statement(tests: &[usize], bind: Option<usize>, action: usize) -> String {
    let mut sel: Vec<String> = tests.iter().map(|i| TESTS[*i % TESTS.len()].to_string()).collect();
    let action = ACTIONS[action % ACTIONS.len()];
    let uses_var = action.contains("$v");
    if let Some(b) = bind.or(if uses_var { Some(0) } else { None }) {
        sel.insert(sel.len() / 2, BINDS[b % BINDS.len()].to_string());
    }
    let sel = if sel.is_empty() { "*".to_string() } else { sel.join(" && ") };
    match action {
        "delete" => format!("delete({sel});"),
        a => {
            let (cmd, rest) = a.split_once('(').unwrap_or((a, ")"));
            format!("{cmd}({sel}, {rest};")
        }
    }
}

/// Scripts of one to four statements built from the pieces above.
fn script() -> impl Strategy<Value = String> {
    let stmt =
        (proptest::collection::vec(0..TESTS.len(), 0..4), proptest::option::of(0..BINDS.len()), 0..ACTIONS.len());
    proptest::collection::vec(stmt, 1..5)
        .prop_map(|stmts| stmts.iter().map(|(t, b, a)| statement(t, *b, *a)).collect::<Vec<_>>().join("\n"))
}

fn objects() -> Vec<Value> {
    vec![
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"labels": {"app": "web"}}, "spec": {"a": [{"b": 1}, {"b": 2, "c": 0}], "n": 2}, "status": {}, "x": 1, "y": 1}),
        json!({"kind": "Service", "apiVersion": "v1", "metadata": {}, "spec": {"n": 1}, "x": 1}),
        json!({"kind": "Pod", "metadata": {"labels": {"app": "db"}}, "spec": {"a": []}, "x": "1", "y": 2}),
        json!({"apiVersion": "apps/v1", "metadata": {}, "spec": {"a": [{"c": 1}]}}),
    ]
}

fn run_all(src: &str, level: skel::OptLevel) -> Vec<String> {
    let compiled = skel::compile_with(src, level, &skel::Folder::current()).expect("compiles");
    let mut results = Vec::new();
    for ts in [1000, 1300, 1700] {
        let mut vm = skel::Vm::new(&compiled.program, 1000);
        for mut obj in objects() {
            // Statement indices differ when the optimizer drops statements; the span the user
            // sees does not.
            let r = vm.run_value(&mut obj, ts).map_err(|e| (compiled.program.stmts[e.stmt].span, e.kind));
            results.push(format!("{r:?} {obj}"));
        }
    }
    results
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn optimized_equals_unoptimized(
        src in script()
    ) {
        prop_assert_eq!(run_all(&src, skel::OptLevel::Full), run_all(&src, skel::OptLevel::None), "{}", src);
    }
}

/// Streams the sample objects (one event per timestamp) through `src` from `in_format` into
/// `out_format`: the output trace as a JSON value, or the error's text. Within one format,
/// manifests are decoded lazily and what the program cannot see is copied as bytes; across
/// formats every manifest is decoded whole.
fn stream(src: &str, in_format: skel_trace::Format, out_format: skel_trace::Format) -> Result<Value, String> {
    let compiled = skel::compile(src).expect("compiles");
    let events: Vec<Value> =
        [1000, 1300, 1700].iter().map(|ts| json!({"ts": ts, "applied_objs": objects(), "deleted_objs": []})).collect();
    let trace =
        json!({"version": 2, "config": {"trackedObjects": {}}, "events": events, "index": {}, "pod_lifecycles": {}});
    let mut input = serde_json::to_vec(&trace).unwrap();
    if in_format == skel_trace::Format::Msgpack {
        let trace = skel_trace::Trace::read(input.as_slice(), skel_trace::Format::Json).unwrap();
        input = trace.write(std::io::Cursor::new(Vec::new()), in_format).unwrap().into_inner();
    }
    let mut writer = skel_trace::TraceWriter::new(std::io::Cursor::new(Vec::new()), out_format);
    let mut opts = skel::stream::StreamOptions::new(in_format, out_format);
    opts.jobs = 1;
    match skel::stream::transform(&compiled.program, input.as_slice(), &mut writer, opts) {
        Ok(_) => {}
        Err(skel::stream::StreamError::Run(e)) => return Err(format!("{:?} {}", e.span, e)),
        Err(skel::stream::StreamError::Trace(e)) => return Err(e.to_string()),
    }
    let bytes = writer.finish().unwrap().into_inner();
    let trace = skel_trace::Trace::read(bytes.as_slice(), out_format).map_err(|e| e.to_string())?;
    Ok(trace.to_json_value())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Lazy decoding is invisible: the same trace as decoding every manifest whole.
    #[test]
    fn lazy_decoding_equals_whole_decoding(
        src in script()
    ) {
        use skel_trace::Format::{Json, Msgpack};
        let whole = stream(&src, Json, Msgpack);
        prop_assert_eq!(&stream(&src, Json, Json), &whole, "{}", src);
        prop_assert_eq!(&stream(&src, Msgpack, Msgpack), &whole, "{}", src);
    }
}
