//! Every shared trace, streamed through reader and JSON writer, equals the corpus' empty-script output.
#![allow(clippy::panic)] // tests report failures by panicking

mod common;

use serde_json::Value;
use skel_trace::Format;

/// The corpus drops events that end up with no objects; that pruning is not the trace crate's job.
fn drop_empty_events(mut trace: Value) -> Value {
    if let Some(events) = trace.get_mut("events").and_then(Value::as_array_mut) {
        events.retain(|ev| {
            let empty = |key: &str| ev.get(key).and_then(Value::as_array).is_some_and(Vec::is_empty);
            !(empty("applied_objs") && empty("deleted_objs"))
        });
    }
    trace
}

#[test]
fn identity_matches_empty_script_corpus() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let traces = common::shared_traces(&shared);
    assert!(!traces.is_empty(), "no traces in shared/traces");
    for (path, format) in traces {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let expected_path = shared.join("conformance").join(format!("empty-script__{stem}")).join("expected.json");
        let expected: Value = serde_json::from_slice(
            &std::fs::read(&expected_path).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));

        let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = common::convert(&input, format, Format::Json);
        let got: Value =
            serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{}: output is not JSON: {e}", path.display()));
        assert_eq!(drop_empty_events(got), expected, "{} differs from {}", path.display(), expected_path.display());
    }
}
