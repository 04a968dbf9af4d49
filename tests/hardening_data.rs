//! Hardening of data fidelity (issue 17): no value is changed quietly on its way through skel
//! (numbers a 64-bit integer or float cannot hold, keys twice), and values nested too deep are
//! reported as what they are.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;

use common::{run, skel, Run};

/// A trace of one event whose one ConfigMap has `extra` (JSON text) spliced in as its last key.
fn trace_with(extra: &str) -> String {
    format!(
        r#"{{"version": 2, "config": {{"trackedObjects": {{}}}}, "events": [{{"ts": 1, "applied_objs": [
  {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "a"}}, {extra}}}], "deleted_objs": []}}], "index": {{}}, "pod_lifecycles": {{}}}}
"#
    )
}

fn apply(dir: &Path, script: &str, args: &[&str]) -> Run {
    fs::write(dir.join("s.skel"), script).unwrap();
    run(skel(dir).args(["apply", "-q", "s.skel"]).args(args))
}

/// JSON to msgpack: an integer beyond 64 bits, a number too small or too large for a float, is
/// an error naming the object and the number; nothing is written.
#[test]
fn numbers_a_float_would_change_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (name, number) in [
        ("beyond_64_bits", "123456789012345678901234567890"),
        ("below_i64", "-9223372036854775809"),
        ("too_small", "1e-400"),
        ("too_large", "1e400"),
    ] {
        let text = trace_with(&format!(r#""data": {{"n": [0.0, {number}]}}"#));
        fs::write(dir.path().join("t.json"), &text).unwrap();
        let out = apply(dir.path(), "", &["t.json", "-o", "out.sktrace"]);
        assert_eq!(out.code, 1, "{name}: {}", out.stderr);
        assert!(out.stderr.contains("skel::trace::inexact_number"), "{name}: {}", out.stderr);
        assert!(out.stderr.contains("events[0].applied_objs[0]"), "{name}: {}", out.stderr);
        assert!(!dir.path().join("out.sktrace").exists(), "{name}: nothing is written");
        insta::assert_snapshot!(format!("inexact_{name}"), out.stderr);
        // A statement that reads the number stops too, also to JSON.
        let out = apply(dir.path(), "modify(kind == \"ConfigMap\", copy = data);", &["t.json", "-o", "out.json"]);
        assert_eq!(out.code, 1, "{name}: {}", out.stderr);
        assert!(out.stderr.contains("skel::trace::inexact_number"), "{name}: {}", out.stderr);
        // Copied unread (JSON to JSON, no statement looks into the object), it is kept as it is.
        let out = apply(dir.path(), "remove(kind == \"ConfigMap\", status);", &["t.json", "-o", "out.json"]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let written = fs::read_to_string(dir.path().join("out.json")).unwrap();
        assert!(written.contains(&format!("[0.0, {number}]")), "{name}: {written}");
    }
    // Numbers a 64-bit integer or float holds convert both ways, exactly.
    let fine = r#""data": {"n": [0, -0, 0.0, 1.5, 1e300, 5e-324, -9223372036854775808, 18446744073709551615]}"#;
    fs::write(dir.path().join("t.json"), trace_with(fine)).unwrap();
    assert_eq!(apply(dir.path(), "", &["t.json", "-o", "out.sktrace"]).code, 0);
    let back = apply(dir.path(), "", &["out.sktrace", "-o", "back.json"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let back: serde_json::Value = serde_json::from_slice(&fs::read(dir.path().join("back.json")).unwrap()).unwrap();
    let n = &back["events"][0]["applied_objs"][0]["data"]["n"];
    // (`-0` is read as serde_json reads it, a float: the same number.)
    assert_eq!(n.to_string(), "[0,-0.0,0.0,1.5,1e+300,5e-324,-9223372036854775808,18446744073709551615]");
}

/// msgpack to JSON: a NaN float has no JSON number; it is an error, not null.
#[test]
fn a_msgpack_nan_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.json"), trace_with(r#""data": {"n": 1.5}"#)).unwrap();
    assert_eq!(apply(dir.path(), "", &["t.json", "-o", "t.sktrace"]).code, 0);
    let mut bytes = fs::read(dir.path().join("t.sktrace")).unwrap();
    let mut float = vec![0xcb];
    float.extend_from_slice(&1.5f64.to_be_bytes());
    let at = bytes.windows(9).position(|w| w == float.as_slice()).unwrap();
    bytes.splice(at + 1..at + 9, f64::NAN.to_be_bytes());
    fs::write(dir.path().join("nan.sktrace"), &bytes).unwrap();
    let out = apply(dir.path(), "", &["nan.sktrace", "-o", "out.json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!("msgpack_nan", out.stderr);
    // msgpack to msgpack, unread: copied as it is.
    assert_eq!(apply(dir.path(), "", &["nan.sktrace", "-o", "copy.sktrace"]).code, 0);
    assert_eq!(fs::read(dir.path().join("copy.sktrace")).unwrap(), bytes);
}

/// A key twice in an object skel reads is an error, never the last value quietly; one copied
/// unread keeps both.
#[test]
fn a_key_twice_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.json"), trace_with(r#""data": {"a": "1", "a": "2"}"#)).unwrap();
    let out = apply(dir.path(), "", &["t.json", "-o", "out.sktrace"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!("key_twice", out.stderr);
    let out = apply(dir.path(), "remove(kind == \"ConfigMap\", data.a);", &["t.json", "-o", "out.json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("skel::trace::duplicate_key"), "{}", out.stderr);
    let out = apply(dir.path(), "remove(kind == \"ConfigMap\", status);", &["t.json", "-o", "out.json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(fs::read_to_string(dir.path().join("out.json")).unwrap().contains(r#"{"a": "1", "a": "2"}"#));
    // The REPL reads an object as `skel apply` does, when a command needs it: `:stats` reads
    // only kinds, `:show` the whole object, and says so.
    let repl = run(skel(dir.path()).args(["repl", "t.json"]).write_stdin(":stats\n:show 0\n"));
    assert_eq!(repl.code, 1);
    assert!(repl.stdout.contains("ConfigMap"), "{}", repl.stdout);
    assert!(repl.stdout.contains("skel::trace::duplicate_key"), "{}", repl.stdout);
}

/// The REPL never changes a number quietly either: one it cannot hold is an error when a
/// command reads it (here `:write` to msgpack, which decodes every object), and nothing is written.
#[test]
fn the_repl_loads_no_number_changed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.json"), trace_with(r#""data": {"n": [0.0, 1e-400]}"#)).unwrap();
    let repl = run(skel(dir.path()).args(["repl", "t.json"]).write_stdin(":write out.sktrace\n"));
    assert_eq!(repl.code, 1);
    insta::assert_snapshot!("repl_inexact", repl.stdout);
    assert!(!dir.path().join("out.sktrace").exists());
}

/// Manifest files of `skel check`: a key twice is an error (as kubectl has it), YAML or JSON;
/// JSON nested too deep is reported as that, not as a trace without `version`.
#[test]
fn check_reads_manifest_files_without_changing_them() {
    let dir = tempfile::tempdir().unwrap();
    let check = |file: &str| run(skel(dir.path()).args(["check", file, "--target-version", "1.25"]));
    fs::write(
        dir.path().join("ingress.yaml"),
        "apiVersion: extensions/v1beta1\nkind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: {name: web}\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("ingress.json"),
        r#"{"apiVersion": "extensions/v1beta1", "kind": "Ingress", "apiVersion": "networking.k8s.io/v1"}"#,
    )
    .unwrap();
    let deep = format!(
        r#"{{"apiVersion": "v1", "kind": "ConfigMap", "data": {}1{}}}"#,
        r#"{"a": "#.repeat(200),
        "}".repeat(200)
    );
    fs::write(dir.path().join("deep.json"), deep).unwrap();
    let mut answers = String::new();
    for file in ["ingress.yaml", "ingress.json", "deep.json"] {
        let out = check(file);
        assert_eq!(out.code, 2, "{file}: {}", out.stderr);
        answers.push_str(&format!("$ skel check {file}\n{}\n", out.stderr));
    }
    insta::assert_snapshot!("check_manifests", answers);
}

/// A trace nested too deep: `skel::trace::too_deep`, not "invalid JSON", in JSON and msgpack.
#[test]
fn values_nested_too_deep_are_reported_as_that() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!(r#""data": {}1{}"#, "[".repeat(200), "]".repeat(200));
    fs::write(dir.path().join("t.json"), trace_with(&deep)).unwrap();
    let out = apply(dir.path(), "", &["t.json", "-o", "out.json"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("too_deep_json", out.stderr);
    let repl = run(skel(dir.path()).args(["repl", "t.json"]).write_stdin(""));
    assert!(repl.stdout.contains("skel::trace::too_deep"), "{}", repl.stdout);
    // msgpack: 200 nested one-element arrays in place of a string.
    fs::write(dir.path().join("m.json"), trace_with(r#""data": "MARKER""#)).unwrap();
    assert_eq!(apply(dir.path(), "", &["m.json", "-o", "m.sktrace"]).code, 0);
    let bytes = fs::read(dir.path().join("m.sktrace")).unwrap();
    let at = bytes.windows(7).position(|w| w == b"\xa6MARKER").unwrap();
    let mut deep = vec![0x91; 200];
    deep.push(0x01);
    let bytes = [&bytes[..at], &deep, &bytes[at + 7..]].concat();
    fs::write(dir.path().join("deep.sktrace"), bytes).unwrap();
    let out = apply(dir.path(), "", &["deep.sktrace", "-o", "out.json"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("skel::trace::too_deep"), "{}", out.stderr);
}

/// `skel check` on a trace: a key twice where a rule reads is an error naming it, in JSON and
/// in msgpack (its fast walk used to keep the last value quietly).
#[test]
fn check_reads_no_key_twice_in_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let pod = |second: &str| {
        trace_with(&format!(
            r#""spec": {{"nodeSelector": {{"node-role.kubernetes.io/master": "", "node-role.kubernetes.io/{second}": "x"}}}}"#
        ))
    };
    fs::write(dir.path().join("t.json"), pod("master")).unwrap();
    // msgpack: written with two keys of one length, then the second made the first.
    fs::write(dir.path().join("ok.json"), pod("mastex")).unwrap();
    assert_eq!(apply(dir.path(), "", &["ok.json", "-o", "ok.sktrace"]).code, 0);
    let mut bytes = fs::read(dir.path().join("ok.sktrace")).unwrap();
    let at = bytes.windows(6).position(|w| w == b"mastex").unwrap();
    bytes[at + 5] = b'r';
    fs::write(dir.path().join("t.sktrace"), &bytes).unwrap();
    for trace in ["t.json", "t.sktrace"] {
        let r = run(skel(dir.path()).args(["check", trace, "--target-version", "1.25"]));
        assert_eq!(r.code, 2, "{trace}: {}", r.stderr);
        assert!(r.stderr.contains("skel::trace::duplicate_key"), "{trace}: {}", r.stderr);
        assert!(r.stderr.contains("node-role.kubernetes.io/master"), "{trace}: {}", r.stderr);
    }
}
