//! Hardening of `skel repl` and of time arithmetic (issue 17): input that is not UTF-8 or
//! starts with a byte-order mark, and times near the ends of the `i64` range.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;

use common::{run, skel, Run};
use serde_json::Value;
use tempfile::TempDir;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A temp folder holding `trace.json` (the example trace).
fn folder() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(root().join("examples/trace.json"), dir.path().join("trace.json")).unwrap();
    dir
}

/// `skel repl ARGS` in `dir` with `input` (any bytes) on stdin.
fn session(dir: &Path, args: &[&str], input: &[u8]) -> Run {
    run(skel(dir).arg("repl").args(args).write_stdin(input))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

// ------------------------------------------------------------------------ input

/// A piped line that is not UTF-8 is reported by its number; the statement or command it is
/// part of is skipped, the rest of the input runs (`:write` writes), and the session exits 1.
#[test]
fn a_line_not_utf8_is_reported_and_the_session_goes_on() {
    let dir = folder();
    let input: &[u8] = b":match kind == \"\xff\"\n\
        delete(kind == \"Job\" &&\n  metadata.name == \"\xfe\");\n\
        delete(kind == \"ConfigMap\");\n\
        # a comment \xc3\n\
        :write out.json\n";
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.stderr, "");
    insta::assert_snapshot!("not_utf8", run.stdout);
    // Only the ConfigMaps went: the statement holding line 3 did not run.
    let out = read_json(&dir.path().join("out.json"));
    let kinds: Vec<&str> = out["events"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["applied_objs"].as_array().unwrap().iter().chain(e["deleted_objs"].as_array().unwrap()))
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"ConfigMap"), "{kinds:?}");
    assert!(kinds.contains(&"Job"), "{kinds:?}");
}

/// The input ends inside a statement holding a line that is not UTF-8: reported, not run.
#[test]
fn a_last_statement_not_utf8_is_reported() {
    let dir = folder();
    let run = session(dir.path(), &["trace.json"], b"delete(kind == \"\xff\"");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("line 1 of the input is not UTF-8"), "{}", run.stdout);
    assert!(!run.stdout.contains("skel::parse"), "the statement is not compiled: {}", run.stdout);
}

/// A byte-order mark at the start of the input, or of a line (files piped one after another),
/// is not part of the text.
#[test]
fn byte_order_marks_are_accepted() {
    let dir = folder();
    let input = "\u{feff}:get kind where kind == \"ConfigMap\"\n\
        \u{feff}delete(kind == \"ConfigMap\");\r\n\
        \u{feff}# a comment\n\
        :stats\n";
    let run = session(dir.path(), &["trace.json"], input.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("2 values in 2 objects (1 distinct)"), "{}", run.stdout);
    assert!(run.stdout.contains("2 objects matched in 2 events: 0 modified, 2 deleted"), "{}", run.stdout);
    assert!(run.stdout.contains("16 events, 38 objects (36 applied, 2 deleted)"), "{}", run.stdout);
}

/// On a terminal, a byte that is not UTF-8 drops the input typed so far; the session goes on.
#[test]
fn terminal_input_not_utf8_is_reported_and_the_session_goes_on() {
    let dir = folder();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skel"));
    cmd.current_dir(dir.path())
        .args(["repl", "trace.json"])
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("HOME", dir.path())
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let opts = rexpect::reader::Options::new().timeout_ms(Some(20_000)).strip_ansi_escape_codes(false);
    let mut p = rexpect::session::spawn_with_options(cmd, opts).unwrap();
    p.exp_string("skel> ").unwrap();
    let mut tty = p.process().get_file_handle().unwrap();
    tty.write_all(b":stats \xff\r").unwrap();
    tty.flush().unwrap();
    p.exp_string("the input is not UTF-8").unwrap();
    p.exp_string("skel> ").unwrap();
    p.send(":get kind where kind == \"ConfigMap\"\r").unwrap();
    p.flush().unwrap();
    p.exp_string("2 values in 2 objects (1 distinct)").unwrap();
    p.exp_string("skel> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

// ------------------------------------------------------------------------ time arithmetic

/// A trace of ConfigMaps at these times.
fn trace_at(dir: &Path, name: &str, times: &[i64]) {
    let events: Vec<Value> = times
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let obj =
                serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}});
            serde_json::json!({"ts": ts, "applied_objs": [obj], "deleted_objs": []})
        })
        .collect();
    let trace = serde_json::json!({"version": 2, "config": {"trackedObjects": {}}, "events": events,
        "index": {}, "pod_lifecycles": {}});
    fs::write(dir.join(name), serde_json::to_vec(&trace).unwrap()).unwrap();
}

/// Times from the smallest `ts` to the largest: spans and offsets do not overflow.
#[test]
fn the_widest_trace_has_a_span() {
    let dir = tempfile::tempdir().unwrap();
    trace_at(dir.path(), "wide.json", &[i64::MIN, i64::MIN + 90, i64::MAX]);
    let run = session(dir.path(), &["wide.json"], b":stats\n:match kind == \"ConfigMap\"\n:show 2\n");
    assert_eq!(run.code, 0, "{}", run.stdout);
    insta::assert_snapshot!("widest_trace", run.stdout);
}

/// A time after the start past the largest `ts` is skel::run::time_overflow, in the REPL and in
/// `skel apply`, never a time clamped to the largest `ts` (which put the object at the wrong
/// time). Nothing is written, the trace is unchanged.
#[test]
fn times_past_the_largest_ts_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    trace_at(dir.path(), "late.json", &[i64::MAX - 3, i64::MAX - 1]);
    let insert =
        "insert(@t == 5s, {\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"n\"}});\n";
    let input = format!("{insert}:match @t == 2s\n:stats\n");
    let run = session(dir.path(), &["late.json"], input.as_bytes());
    assert_eq!(run.code, 1, "{}", run.stdout);
    insta::assert_snapshot!("time_overflow_repl", run.stdout);

    fs::write(dir.path().join("insert.skel"), insert).unwrap();
    let apply = run_apply(dir.path(), &["insert.skel", "late.json", "-o", "out.json"]);
    assert_eq!(apply.code, 1);
    insta::assert_snapshot!("time_overflow_apply", apply.stderr);
    assert!(!dir.path().join("out.json").exists());
    // Up to the largest `ts` itself, times are fine.
    fs::write(dir.path().join("ok.skel"), insert.replace("5s", "3s")).unwrap();
    let apply = run_apply(dir.path(), &["-q", "ok.skel", "late.json", "-o", "out.json"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let out = read_json(&dir.path().join("out.json"));
    assert_eq!(out["events"][2]["ts"], i64::MAX);
    assert_eq!(out["events"][2]["applied_objs"][0]["kind"], "Namespace");
}

fn run_apply(dir: &Path, args: &[&str]) -> Run {
    run(skel(dir).arg("apply").args(args))
}
