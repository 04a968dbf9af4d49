//! Property test: the whole compiler returns diagnostics, never panics, on arbitrary token
//! soup, and every program that compiles also verifies and runs on a sample manifest.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::json;

const PIECES: &[&str] = &[
    "delete(",
    "remove(",
    "modify(",
    ")",
    ";",
    ",",
    "*",
    "&&",
    "==",
    "!=",
    "<",
    ">=",
    "=",
    "$x := ",
    "$y := ",
    " | ",
    "!exists(",
    "exists(",
    "@t",
    "10m",
    "5",
    "\"s\"",
    "\"a.b\"",
    "$x",
    "$y",
    ".",
    "[*]",
    "[0]",
    "[1]",
    "spec",
    "a",
    "metadata.labels.app",
    "true",
    "#c\n",
    " ",
    "\n",
    // The extensions.
    "||",
    "!(",
    "(",
    " =~ \"^a.*\"",
    " !~ \"[\"",
    " in [1, \"x\"]",
    "{\"k\": a}",
    "[a, -2, 0.5, null]",
    "\"\\u{e9}\\n\"",
    ".*",
    "[\"k~\"]",
    "move(",
    "copy(",
    " -> ",
    "insert(@t == 0s, {\"kind\": \"X\"})",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn token_soup_compiles_or_reports(idx in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let src: String = idx.iter().map(|i| PIECES[*i]).collect();
        if let Ok(compiled) = skel::compile(&src) {
            prop_assert!(compiled.program.verify().is_ok());
            let mut obj = json!({"a": [1, {"b": 2}], "spec": {"a": "x", "k~": {"a": [3]}}, "metadata": {"labels": {"app": "w"}}});
            let mut vm = skel::Vm::new(&compiled.program, 0);
            let _ = vm.run_value(&mut obj, 600);
        }
    }
}

/// A SimKube JSON trace (the trace crate's fixture) with bytes flipped: the streaming path
/// (splitter, fast event decoder, lazy decoding, VM, encoder) reports an error or a result,
/// never panics, in both formats and with any number of workers.
fn stream_bytes(input: &[u8], format: skel_trace::Format, jobs: usize) {
    let compiled = skel::compile(
        "remove(status); modify(kind == \"Deployment\", spec.replicas = 1);\n\
         remove($x := spec.template.spec.containers[*].env[*] | exists($x.valueFrom), $x);",
    )
    .expect("compiles");
    let mut writer = skel_trace::TraceWriter::new(std::io::Cursor::new(Vec::new()), format);
    let mut opts = skel::stream::StreamOptions::new(format, format);
    opts.jobs = jobs;
    opts.batch_bytes = 64;
    if skel::stream::transform(&compiled.program, input, &mut writer, opts).is_ok() {
        let _ = writer.finish();
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../trace/tests/data").join(name))
        .expect("fixture")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn streaming_never_panics_on_mutated_traces(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), jobs in 1usize..3) {
        for (name, format) in [("tu-trace.json", skel_trace::Format::Json), ("ex-cronjob.sktrace", skel_trace::Format::Msgpack)] {
            let mut bytes = fixture(name);
            for (at, b) in &flips {
                let n = bytes.len();
                if let Some(slot) = bytes.get_mut(at % n) {
                    *slot = *b;
                }
            }
            stream_bytes(&bytes, format, jobs);
            let cut = flips[0].0 % bytes.len();
            stream_bytes(&bytes[..cut], format, jobs);
        }
    }

    #[test]
    fn streaming_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        stream_bytes(&bytes, skel_trace::Format::Json, 1);
        stream_bytes(&bytes, skel_trace::Format::Msgpack, 1);
    }
}
