//! End-to-end tests of the `skel` binary: `skel apply` and `skel compile` as a user runs them.
//!
//! Every test works in its own temp folder: the files it needs are copied in and `skel` runs
//! there with relative paths, so diagnostics name short, stable files (`trace.json`) and the
//! insta snapshots do not depend on where the repository or the temp folder lives. Fixtures are
//! in `tests/data/cli/`; the SimKube traces in `../shared/traces/` are used for the msgpack
//! round trips.
//!
//! The "Regressions" section holds tests of bugs these tests found (and that are fixed).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::skel;

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture of `tests/data/cli/`.
fn data(name: &str) -> PathBuf {
    root().join("tests/data/cli").join(name)
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// The SimKube traces shared by the project (`/work/shared/traces`).
fn shared_traces() -> PathBuf {
    root().join("../shared/traces")
}

fn shared_traces_with_ext(ext: &str) -> Vec<PathBuf> {
    let dir = shared_traces();
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    found
}

/// A temp folder holding copies of `files` (source path, name in the folder).
fn workdir(files: &[(PathBuf, &str)]) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (src, name) in files {
        fs::copy(src, tmp.path().join(name)).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    }
    tmp
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().expect("skel exited normally (not by a signal)"),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

impl Run {
    fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }
}

/// Replaces what changes from run to run: the elapsed time at the end of the summary line, the
/// random part of temp-file names, and the temp folder and repository paths.
fn redact(text: &str, tmp: &Path) -> String {
    let mut s = text.replace(&tmp.display().to_string(), "[TMP]");
    if let Ok(canonical) = tmp.canonicalize() {
        s = s.replace(&canonical.display().to_string(), "[TMP]");
    }
    s = s.replace(&root().display().to_string(), "[ROOT]");
    let mut out: Vec<String> = Vec::new();
    for line in s.split('\n') {
        let mut line = line.to_string();
        if line.starts_with("skel: ") && line.ends_with('s') {
            if let Some(at) = line.rfind("; ") {
                line = format!("{}; [ELAPSED]", &line[..at]);
            }
        }
        out.push(redact_temp_names(&line));
    }
    out.join("\n")
}

/// `.skel-AbC123.tmp` -> `.skel-[RANDOM].tmp`.
fn redact_temp_names(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find(".skel-") {
        let after = &rest[start + ".skel-".len()..];
        let Some(len) = after.find(".tmp") else { break };
        out.push_str(&rest[..start]);
        out.push_str(".skel-[RANDOM].tmp");
        rest = &after[len + ".tmp".len()..];
    }
    out.push_str(rest);
    out
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("output is not JSON: {e}"))
}

/// Every object of every event (applied, then deleted).
fn objects(trace: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for event in trace["events"].as_array().expect("events is an array") {
        for key in ["applied_objs", "deleted_objs"] {
            all.extend(event[key].as_array().expect("object list is an array"));
        }
    }
    all
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Temp files `skel` left behind (`.skel-*.tmp`).
fn stray_temps(dir: &Path) -> Vec<String> {
    listing(dir).into_iter().filter(|n| n.starts_with(".skel-")).collect()
}

/// A msgpack trace is a map with five keys: fixmap marker 0x85.
const MSGPACK_TRACE_MARKER: u8 = 0x85;

/// `small.json` as an empty script writes it: the events without objects (ts 160 and 280)
/// pruned, everything else unchanged.
fn small_expected() -> Value {
    let mut v = read_json(&data("small.json"));
    let events = v["events"].as_array_mut().unwrap();
    events.retain(|e| {
        !(e["applied_objs"].as_array().unwrap().is_empty() && e["deleted_objs"].as_array().unwrap().is_empty())
    });
    assert_eq!(events.len(), 2, "the fixture has two non-empty events");
    v
}

/// An input of a failing run.
enum Input {
    /// A fixture of `tests/data/cli/`.
    Data(&'static str),
    /// An empty file.
    Empty,
    /// No file at all.
    Missing,
}

/// Runs `skel apply SCRIPT TRACE -o out.json` in a folder holding only the script and the trace
/// (under the given names) and checks the failure contract: exit 1, nothing on stdout, the
/// diagnostic's code on stderr, no output file, no temp file. Returns stderr, redacted.
fn assert_apply_fails(script: (Input, &str), trace: (Input, &str), code: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    for (input, name) in [&script, &trace] {
        match input {
            Input::Data(fixture) => {
                fs::copy(data(fixture), tmp.path().join(name)).unwrap();
            }
            Input::Empty => fs::write(tmp.path().join(name), "").unwrap(),
            Input::Missing => {}
        }
    }
    let before = listing(tmp.path());
    let r = run(skel(tmp.path()).args(["apply", script.1, trace.1, "-o", "out.json"]));
    assert_eq!(r.code, 1, "exit code; stderr:\n{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing on stdout");
    assert!(r.stderr.contains(code), "stderr names `{code}`:\n{}", r.stderr);
    assert!(!tmp.path().join("out.json").exists(), "no output file");
    assert_eq!(listing(tmp.path()), before, "the folder is unchanged (no output, no temp file)");
    redact(&r.stderr, tmp.path())
}

// ---------------------------------------------------------------------------------------------
// 1. The examples

#[test]
fn example_migrate_writes_output_and_summary() {
    let tmp = workdir(&[(example("migrate.skel"), "migrate.skel"), (example("trace.json"), "trace.json")]);
    let r = run(skel(tmp.path()).args(["apply", "migrate.skel", "trace.json", "-o", "out.json"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert!(r.stdout.is_empty(), "with -o nothing goes to stdout");
    insta::assert_snapshot!("migrate_summary", redact(&r.stderr, tmp.path()));
    assert_eq!(stray_temps(tmp.path()), Vec::<String>::new());

    let input = read_json(&tmp.path().join("trace.json"));
    let out = read_json(&tmp.path().join("out.json"));
    let in_objs = objects(&input);
    let out_objs = objects(&out);
    assert_eq!(in_objs.len(), out_objs.len(), "migrate deletes no object");
    let cronjobs =
        |objs: &[&Value], api: &str| objs.iter().filter(|o| o["kind"] == "CronJob" && o["apiVersion"] == api).count();
    assert!(cronjobs(&in_objs, "batch/v1beta1") > 0, "the example has old CronJobs to migrate");
    assert_eq!(cronjobs(&out_objs, "batch/v1beta1"), 0, "no batch/v1beta1 CronJob is left");
    assert_eq!(
        cronjobs(&out_objs, "batch/v1"),
        cronjobs(&in_objs, "batch/v1") + cronjobs(&in_objs, "batch/v1beta1"),
        "every CronJob is on batch/v1"
    );
    assert!(in_objs.iter().any(|o| o.get("status").is_some()));
    assert!(out_objs.iter().all(|o| o.get("status").is_none()), "no object keeps a status");
    for o in &out_objs {
        for c in o["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                assert!(e["valueFrom"].get("secretKeyRef").is_none(), "secret env var left: {e}");
            }
        }
    }
    // Events keep their timestamps (none is empty, so none is pruned); the other sections are
    // copied through.
    let ts = |t: &Value| t["events"].as_array().unwrap().iter().map(|e| e["ts"].clone()).collect::<Vec<_>>();
    assert_eq!(ts(&input), ts(&out));
    for key in ["version", "index"] {
        assert_eq!(input[key], out[key], "`{key}` is copied through");
    }
    // `{}` is read as no lifecycles and written in skel's JSON form, a list of pairs.
    assert_eq!(input["pod_lifecycles"], serde_json::json!({}));
    assert_eq!(out["pod_lifecycles"], serde_json::json!([]));
}

#[test]
fn example_sanitize_strips_secrets_and_status() {
    let tmp = workdir(&[(example("sanitize.skel"), "sanitize.skel"), (example("trace.json"), "trace.json")]);
    let r = run(skel(tmp.path()).args(["apply", "sanitize.skel", "trace.json", "-o", "out.json", "--quiet"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(r.stderr, "", "--quiet prints no summary");
    let out = read_json(&tmp.path().join("out.json"));
    for o in objects(&out) {
        assert!(o.get("status").is_none());
        let pod = &o["spec"]["template"]["spec"];
        assert!(pod.get("serviceAccountName").is_none() && pod.get("serviceAccount").is_none());
        for v in pod["volumes"].as_array().into_iter().flatten() {
            assert!(v.get("secret").is_none() && v.get("configMap").is_none(), "volume left: {v}");
        }
        for c in pod["containers"].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                let from = &e["valueFrom"];
                assert!(from.get("secretKeyRef").is_none() && from.get("configMapKeyRef").is_none(), "{e}");
            }
            assert!(c["envFrom"].as_array().into_iter().flatten().next().is_none(), "envFrom left in {c}");
        }
    }
}

/// `insert(..., file("x"))` reads the file next to the script, wherever skel runs from.
#[test]
fn insert_reads_its_file_from_the_scripts_folder() {
    let tmp = workdir(&[(example("trace.json"), "trace.json")]);
    let scripts = tmp.path().join("scripts");
    fs::create_dir(&scripts).unwrap();
    fs::copy(example("priorityclass.yaml"), scripts.join("priorityclass.yaml")).unwrap();
    fs::write(scripts.join("add.skel"), "insert(@t == 0s, file(\"priorityclass.yaml\"));\n").unwrap();
    let r = run(skel(tmp.path()).args(["apply", "scripts/add.skel", "trace.json", "-o", "out.json"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains(", 1 inserted;"), "{}", r.stderr);
    let out = read_json(&tmp.path().join("out.json"));
    let input = read_json(&tmp.path().join("trace.json"));
    let first = &out["events"][0];
    assert_eq!(first["ts"], input["events"][0]["ts"], "the first event's time is the trace's start");
    let last = first["applied_objs"].as_array().unwrap().last().unwrap();
    assert_eq!(last["kind"], "PriorityClass");
    assert_eq!(last["metadata"]["name"], "batch-low");
}

// ---------------------------------------------------------------------------------------------
// 2. stdin and stdout

#[test]
fn trace_from_stdin_output_to_stdout() {
    let tmp = workdir(&[(example("migrate.skel"), "migrate.skel"), (example("trace.json"), "trace.json")]);
    let trace = fs::read(tmp.path().join("trace.json")).unwrap();
    let piped = run(skel(tmp.path()).args(["apply", "migrate.skel", "-"]).write_stdin(trace));
    assert_eq!(piped.code, 0, "stderr:\n{}", piped.stderr);
    assert!(piped.stderr.starts_with("skel: 16 events read"), "summary on stderr, not stdout:\n{}", piped.stderr);

    let to_file = run(skel(tmp.path()).args(["apply", "migrate.skel", "trace.json", "-o", "out.json", "-q"]));
    assert_eq!(to_file.code, 0);
    assert_eq!(piped.stdout, fs::read(tmp.path().join("out.json")).unwrap(), "stdout holds exactly the trace");
    assert_eq!(listing(tmp.path()), ["migrate.skel", "out.json", "trace.json"], "stdout mode writes no file");

    // `-o -` is stdout too.
    let dash = run(skel(tmp.path()).args(["apply", "migrate.skel", "trace.json", "-o", "-", "-q"]));
    assert_eq!(dash.code, 0);
    assert_eq!(dash.stdout, piped.stdout);
}

#[test]
fn script_from_stdin() {
    let tmp = workdir(&[(example("trace.json"), "trace.json")]);
    let r = run(skel(tmp.path()).args(["apply", "-", "trace.json", "-q"]).write_stdin("remove(status);\n"));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(r.stderr, "");
    let out = parse_json(&r.stdout);
    assert_eq!(objects(&out).len(), 40);
    assert!(objects(&out).iter().all(|o| o.get("status").is_none()));
}

#[test]
fn script_from_stdin_diagnostics_name_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(skel(tmp.path()).args(["compile", "-"]).write_stdin("remove($x.foo);\n"));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    insta::assert_snapshot!("stdin_script_check_error", redact(&r.stderr, tmp.path()));
}

// ---------------------------------------------------------------------------------------------
// 3. --in-place

#[test]
fn in_place_rewrites_the_trace() {
    let tmp = workdir(&[
        (example("migrate.skel"), "migrate.skel"),
        (example("trace.json"), "trace.json"),
        (example("trace.json"), "copy.json"),
    ]);
    let r = run(skel(tmp.path()).args(["apply", "migrate.skel", "copy.json", "-o", "expected.json", "-q"]));
    assert_eq!(r.code, 0);

    let r = run(skel(tmp.path()).args(["apply", "migrate.skel", "trace.json", "--in-place"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert!(r.stdout.is_empty(), "--in-place writes nothing to stdout");
    assert!(r.stderr.starts_with("skel: 16 events read"));
    assert_eq!(
        fs::read(tmp.path().join("trace.json")).unwrap(),
        fs::read(tmp.path().join("expected.json")).unwrap(),
        "the file now holds what -o would have written"
    );
    assert_eq!(listing(tmp.path()), ["copy.json", "expected.json", "migrate.skel", "trace.json"]);
}

#[test]
fn in_place_keeps_msgpack() {
    let tmp = workdir(&[(data("small.sktrace"), "small.sktrace")]);
    let r =
        run(skel(tmp.path()).args(["apply", "-", "small.sktrace", "--in-place", "-q"]).write_stdin("remove(status);"));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let bytes = fs::read(tmp.path().join("small.sktrace")).unwrap();
    assert_eq!(bytes[0], MSGPACK_TRACE_MARKER, "still msgpack");
    let back = run(skel(tmp.path()).args(["apply", "-", "small.sktrace", "--format", "json", "-q"]).write_stdin(""));
    assert_eq!(back.code, 0, "stderr:\n{}", back.stderr);
    let mut want = small_expected();
    want["events"][0]["applied_objs"][0].as_object_mut().unwrap().remove("status");
    assert_eq!(parse_json(&back.stdout), want);
    assert_eq!(stray_temps(tmp.path()), Vec::<String>::new());
}

#[test]
fn in_place_run_error_leaves_the_trace_untouched() {
    let tmp = workdir(&[(data("label-number.skel"), "label-number.skel"), (example("trace.json"), "trace.json")]);
    let before = fs::read(tmp.path().join("trace.json")).unwrap();
    let mtime_before = fs::metadata(tmp.path().join("trace.json")).unwrap().modified().unwrap();
    let r = run(skel(tmp.path()).args(["apply", "label-number.skel", "trace.json", "--in-place"]));
    assert_eq!(r.code, 1, "stderr:\n{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("skel::check::label_not_string"), "the warning comes first");
    assert!(r.stderr.contains("skel::run::invalid_field_type"), "then the run-time error");
    assert_eq!(fs::read(tmp.path().join("trace.json")).unwrap(), before, "byte-identical");
    assert_eq!(fs::metadata(tmp.path().join("trace.json")).unwrap().modified().unwrap(), mtime_before);
    assert_eq!(stray_temps(tmp.path()), Vec::<String>::new(), "no .skel-*.tmp left");
    assert_eq!(listing(tmp.path()), ["label-number.skel", "trace.json"]);
    insta::assert_snapshot!("in_place_run_error", redact(&r.stderr, tmp.path()));
}

#[test]
fn in_place_trace_error_leaves_the_trace_untouched() {
    let tmp = workdir(&[(data("truncated.json"), "trace.json")]);
    let before = fs::read(tmp.path().join("trace.json")).unwrap();
    let r = run(skel(tmp.path()).args(["apply", "-", "trace.json", "--in-place"]).write_stdin(""));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("skel::trace::unexpected_eof"), "stderr:\n{}", r.stderr);
    assert_eq!(fs::read(tmp.path().join("trace.json")).unwrap(), before);
    assert_eq!(listing(tmp.path()), ["trace.json"]);
}

#[test]
fn in_place_with_stdin_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let trace = fs::read(data("small.json")).unwrap();
    let r = run(skel(tmp.path()).args(["apply", "empty.skel", "-", "--in-place"]).write_stdin(trace));
    assert_ne!(r.code, 0);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("skel::usage::in_place_stdin"), "stderr:\n{}", r.stderr);
    assert_eq!(listing(tmp.path()), ["empty.skel"]);
    insta::assert_snapshot!("in_place_stdin", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// 4. msgpack

#[test]
fn msgpack_round_trip_of_shared_traces() {
    let traces = shared_traces_with_ext("sktrace");
    assert!(traces.len() >= 4, "expected the SimKube .sktrace traces in {}", shared_traces().display());
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    for trace in traces {
        let name = trace.file_stem().unwrap().to_string_lossy().into_owned();
        let apply = |input: &Path, output: &str| {
            let r = run(skel(tmp.path()).arg("apply").arg("empty.skel").arg(input).args(["-o", output, "-q"]));
            assert_eq!(r.code, 0, "{name}: {} -> {output}:\n{}", input.display(), r.stderr);
        };
        let direct = format!("{name}.direct.json");
        let packed = format!("{name}.sktrace");
        let back = format!("{name}.back.json");
        let repacked = format!("{name}.again.sktrace");
        apply(&trace, &direct); // the original, read as JSON
        apply(&trace, &packed); // written by skel as msgpack (from the extension)
        let packed_bytes = fs::read(tmp.path().join(&packed)).unwrap();
        assert_eq!(packed_bytes[0], MSGPACK_TRACE_MARKER, "{name}: .sktrace output is msgpack");
        apply(&tmp.path().join(&packed), &back); // skel's msgpack read back
        assert_eq!(
            read_json(&tmp.path().join(&back)),
            read_json(&tmp.path().join(&direct)),
            "{name}: msgpack written by skel reads back as the original"
        );
        // Writing is deterministic and stable: msgpack -> msgpack and JSON -> msgpack give the
        // same bytes.
        apply(&tmp.path().join(&packed), &repacked);
        assert_eq!(fs::read(tmp.path().join(&repacked)).unwrap(), packed_bytes, "{name}: msgpack -> msgpack");
        apply(&tmp.path().join(&direct), &repacked);
        assert_eq!(fs::read(tmp.path().join(&repacked)).unwrap(), packed_bytes, "{name}: JSON -> msgpack");
    }
    assert_eq!(stray_temps(tmp.path()), Vec::<String>::new());
}

#[test]
fn msgpack_fixture_reads_like_its_json_twin() {
    // small.sktrace was packed by Python's msgpack from small.json (pod_lifecycles in its
    // msgpack form: array keys, integer pod hashes).
    let tmp = workdir(&[(data("small.json"), "small.json"), (data("small.sktrace"), "small.sktrace")]);
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    for (input, output) in [("small.sktrace", "from-msgpack.json"), ("small.json", "from-json.json")] {
        let r = run(skel(tmp.path()).args(["apply", "empty.skel", input, "-o", output, "-q"]));
        assert_eq!(r.code, 0, "{input}:\n{}", r.stderr);
        assert_eq!(read_json(&tmp.path().join(output)), small_expected(), "{input}");
    }
    for (input, output) in [("small.sktrace", "a.sktrace"), ("small.json", "b.sktrace")] {
        let r = run(skel(tmp.path()).args(["apply", "empty.skel", input, "-o", output, "-q"]));
        assert_eq!(r.code, 0, "{input}:\n{}", r.stderr);
    }
    assert_eq!(fs::read(tmp.path().join("a.sktrace")).unwrap(), fs::read(tmp.path().join("b.sktrace")).unwrap());
}

#[test]
fn format_msgpack_to_stdout() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let packed = run(skel(tmp.path()).args(["apply", "-", "small.json", "--format", "msgpack", "-q"]).write_stdin(""));
    assert_eq!(packed.code, 0, "stderr:\n{}", packed.stderr);
    assert_eq!(packed.stdout[0], MSGPACK_TRACE_MARKER, "stdout is msgpack");
    // Read it back from stdin (format sniffed: `-` has no extension).
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let back =
        run(skel(tmp.path()).args(["apply", "empty.skel", "-", "--format", "json", "-q"]).write_stdin(packed.stdout));
    assert_eq!(back.code, 0, "stderr:\n{}", back.stderr);
    assert_eq!(parse_json(&back.stdout), small_expected());
    assert_eq!(listing(tmp.path()), ["empty.skel", "small.json"]);
}

#[test]
fn format_flag_overrides_the_output_extension() {
    let tmp = workdir(&[(data("small.sktrace"), "small.sktrace")]);
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let r =
        run(skel(tmp.path()).args(["apply", "empty.skel", "small.sktrace", "-o", "out.sktrace", "--format", "json"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(read_json(&tmp.path().join("out.sktrace")), small_expected());
}

#[test]
fn stdout_defaults_to_the_input_format() {
    let tmp = workdir(&[(data("small.sktrace"), "small.sktrace")]);
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let r = run(skel(tmp.path()).args(["apply", "empty.skel", "small.sktrace", "-q"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(r.stdout[0], MSGPACK_TRACE_MARKER);
}

#[test]
fn format_sniffed_when_the_input_has_no_extension() {
    let sktrace = shared_traces().join("ex-cronjob.sktrace");
    let json = shared_traces().join("tu-trace.json");
    let tmp = workdir(&[(sktrace.clone(), "trace"), (json.clone(), "trace2")]);
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let apply = |args: &[&std::ffi::OsStr]| {
        let r = run(skel(tmp.path()).arg("apply").arg("empty.skel").args(args).arg("-q"));
        assert_eq!(r.code, 0, "{args:?}:\n{}", r.stderr);
        r.stdout
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);

    // msgpack without extension: read as msgpack, and stdout is msgpack like the input.
    let sniffed = apply(&[os("trace")]);
    assert_eq!(sniffed[0], MSGPACK_TRACE_MARKER);
    let named = apply(&[sktrace.as_os_str(), os("-o"), os("-")]);
    assert_eq!(sniffed, named, "same result as from the .sktrace file");

    // JSON without extension.
    let sniffed = apply(&[os("trace2")]);
    let named = apply(&[json.as_os_str()]);
    assert_eq!(parse_json(&sniffed), parse_json(&named));

    // --input-format settles it without sniffing.
    let forced = apply(&[os("trace"), os("--input-format"), os("msgpack")]);
    let named = apply(&[sktrace.as_os_str()]);
    assert_eq!(forced, named);
}

#[test]
fn msgpack_from_stdin_is_sniffed() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let packed = fs::read(data("small.sktrace")).unwrap();
    let r = run(skel(tmp.path()).args(["apply", "empty.skel", "-", "--format", "json", "-q"]).write_stdin(packed));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(parse_json(&r.stdout), small_expected());
}

#[test]
fn wrong_input_format_is_a_trace_error() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let r = run(skel(tmp.path())
        .args(["apply", "-", "small.json", "--input-format", "msgpack", "-o", "out.json"])
        .write_stdin(""));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("skel::trace::wrong_type"), "stderr:\n{}", r.stderr);
    assert_eq!(listing(tmp.path()), ["small.json"]);
    insta::assert_snapshot!("error_forced_msgpack_on_json", redact(&r.stderr, tmp.path()));
}

// ---------------------------------------------------------------------------------------------
// 5. Bad input: exit 1, a diagnostic with a stable code, nothing written

#[test]
fn error_parse() {
    let s = assert_apply_fails(
        (Input::Data("parse-error.skel"), "parse-error.skel"),
        (Input::Data("small.json"), "small.json"),
        "skel::parse::syntax",
    );
    insta::assert_snapshot!("error_parse", s);
}

#[test]
fn error_check() {
    let s = assert_apply_fails(
        (Input::Data("check-error.skel"), "check-error.skel"),
        (Input::Data("small.json"), "small.json"),
        "skel::check::undefined_variable",
    );
    insta::assert_snapshot!("error_check", s);
}

#[test]
fn error_run() {
    let s = assert_apply_fails(
        (Input::Data("run-error.skel"), "run-error.skel"),
        (Input::Data("small.json"), "small.json"),
        "skel::run::unresolved_path",
    );
    insta::assert_snapshot!("error_run", s);
}

#[test]
fn error_run_label_number() {
    let s = assert_apply_fails(
        (Input::Data("label-number.skel"), "label-number.skel"),
        (Input::Data("small.json"), "small.json"),
        "skel::run::invalid_field_type",
    );
    insta::assert_snapshot!("error_run_label_number", s);
}

#[test]
fn error_truncated_json() {
    let s = assert_apply_fails(
        (Input::Empty, "empty.skel"),
        (Input::Data("truncated.json"), "truncated.json"),
        "skel::trace::unexpected_eof",
    );
    insta::assert_snapshot!("error_truncated_json", s);
}

#[test]
fn error_empty_trace() {
    let s = assert_apply_fails((Input::Empty, "empty.skel"), (Input::Empty, "empty.json"), "skel::trace::empty");
    insta::assert_snapshot!("error_empty_trace", s);
}

#[test]
fn error_trace_version_3() {
    let s = assert_apply_fails(
        (Input::Empty, "empty.skel"),
        (Input::Data("version3.json"), "version3.json"),
        "skel::trace::unsupported_version",
    );
    assert!(s.contains("`3`"), "the message names the version found");
    insta::assert_snapshot!("error_version_3", s);
}

#[test]
fn error_trace_missing_index() {
    let s = assert_apply_fails(
        (Input::Empty, "empty.skel"),
        (Input::Data("no-index.json"), "no-index.json"),
        "skel::trace::missing_section",
    );
    assert!(s.contains("`index`"));
    insta::assert_snapshot!("error_missing_index", s);
}

#[test]
fn error_trace_wrong_type() {
    let s = assert_apply_fails(
        (Input::Empty, "empty.skel"),
        (Input::Data("bad-ts.json"), "bad-ts.json"),
        "skel::trace::wrong_type",
    );
    assert!(s.contains("events[1].ts"), "the message says where");
    insta::assert_snapshot!("error_wrong_type_ts", s);
}

#[test]
fn error_truncated_msgpack() {
    let s = assert_apply_fails(
        (Input::Empty, "empty.skel"),
        (Input::Data("truncated.sktrace"), "truncated.sktrace"),
        "skel::trace::unexpected_eof",
    );
    insta::assert_snapshot!("error_truncated_msgpack", s);
}

#[test]
fn error_non_utf8_script() {
    let s = assert_apply_fails(
        (Input::Data("non-utf8.skel"), "non-utf8.skel"),
        (Input::Data("small.json"), "small.json"),
        "skel::io::not_utf8",
    );
    insta::assert_snapshot!("error_non_utf8_script", s);
}

#[test]
fn error_missing_script() {
    let s = assert_apply_fails(
        (Input::Missing, "missing.skel"),
        (Input::Data("small.json"), "small.json"),
        "skel::io::read",
    );
    assert!(s.contains("`missing.skel`"));
    insta::assert_snapshot!("error_missing_script", s);
}

#[test]
fn error_missing_trace() {
    let s = assert_apply_fails((Input::Empty, "empty.skel"), (Input::Missing, "missing.json"), "skel::io::read");
    assert!(s.contains("`missing.json`"));
    insta::assert_snapshot!("error_missing_trace", s);
}

#[test]
fn error_to_stdout_writes_nothing() {
    // A run-time error on the first object: nothing of the trace reaches stdout.
    let tmp = workdir(&[(data("run-error.skel"), "run-error.skel"), (example("trace.json"), "trace.json")]);
    let r = run(skel(tmp.path()).args(["apply", "run-error.skel", "trace.json"]));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty(), "{} bytes on stdout", r.stdout.len());
    // A trace error late in the file: the events before it were processed, still nothing out.
    let tmp = workdir(&[(data("truncated.json"), "truncated.json")]);
    let r = run(skel(tmp.path()).args(["apply", "-", "truncated.json"]).write_stdin(""));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
}

#[test]
fn error_leaves_an_existing_output_untouched() {
    let tmp = workdir(&[(data("run-error.skel"), "run-error.skel"), (data("small.json"), "small.json")]);
    fs::write(tmp.path().join("out.json"), "previous output\n").unwrap();
    let r = run(skel(tmp.path()).args(["apply", "run-error.skel", "small.json", "-o", "out.json"]));
    assert_eq!(r.code, 1);
    assert_eq!(fs::read_to_string(tmp.path().join("out.json")).unwrap(), "previous output\n");
    assert_eq!(stray_temps(tmp.path()), Vec::<String>::new());
}

#[test]
fn error_output_folder_missing() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "-o", "no/such/folder/out.json"]).write_stdin(""));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("skel::io::write"), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("cannot write `no/such/folder/out.json`"));
    assert_eq!(listing(tmp.path()), ["small.json"]);
}

/// A pipe or a device as the output (`-o /dev/null`) is written into, never replaced by a file.
#[cfg(unix)]
#[test]
fn output_into_a_pipe_keeps_the_pipe() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "-o", "plain.json"]).write_stdin(""));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fifo = tmp.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "-o", "pipe"]).write_stdin(""));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Checked before joining: a reader of a replaced pipe would wait for ever.
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the pipe was replaced");
    assert_eq!(reader.join().unwrap(), fs::read(tmp.path().join("plain.json")).unwrap());
}

#[test]
fn usage_unknown_flag() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let r = run(skel(tmp.path()).args(["apply", "--bogus", "x.skel", "small.json", "-o", "out.json"]));
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    insta::assert_snapshot!("usage_unknown_flag", r.stderr);
    assert_eq!(listing(tmp.path()), ["small.json"]);
}

#[test]
fn usage_output_with_in_place() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let before = fs::read(tmp.path().join("small.json")).unwrap();
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "-o", "out.json", "--in-place"]).write_stdin(""));
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    insta::assert_snapshot!("usage_output_with_in_place", r.stderr);
    assert_eq!(listing(tmp.path()), ["small.json"]);
    assert_eq!(fs::read(tmp.path().join("small.json")).unwrap(), before);
}

#[test]
fn usage_missing_args() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, snap) in [
        (&["apply", "script.skel"][..], "usage_apply_missing_trace"),
        (&["apply"][..], "usage_apply_missing_both"),
        (&["compile"][..], "usage_compile_missing_script"),
        (&[][..], "usage_no_command"),
    ] {
        let r = run(skel(tmp.path()).args(args));
        assert_eq!(r.code, 2, "{args:?}:\n{}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}");
        insta::assert_snapshot!(snap, r.stderr);
    }
}

#[test]
fn usage_bad_values() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["apply", "a.skel", "t.json", "--format", "yaml"][..],
        &["apply", "a.skel", "t.json", "--input-format", "xml"][..],
        &["compile", "a.skel", "--emit", "llvm"][..],
        &["frobnicate"][..],
    ] {
        let r = run(skel(tmp.path()).args(args));
        assert_eq!(r.code, 2, "{args:?}:\n{}", r.stderr);
        assert!(r.stderr.starts_with("error:"), "{args:?}:\n{}", r.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. skel compile

#[test]
fn compile_good_script_prints_nothing() {
    let tmp = workdir(&[(example("migrate.skel"), "migrate.skel"), (example("sanitize.skel"), "sanitize.skel")]);
    for script in ["migrate.skel", "sanitize.skel"] {
        let r = run(skel(tmp.path()).args(["compile", script]));
        assert_eq!(r.code, 0, "{script}:\n{}", r.stderr);
        assert!(r.stdout.is_empty(), "{script}");
        assert_eq!(r.stderr, "", "{script}");
    }
    assert_eq!(listing(tmp.path()), ["migrate.skel", "sanitize.skel"], "compile writes no file");
}

#[test]
fn compile_bad_script_exits_1() {
    let tmp =
        workdir(&[(data("check-error.skel"), "check-error.skel"), (data("parse-error.skel"), "parse-error.skel")]);
    for script in ["check-error.skel", "parse-error.skel"] {
        let r = run(skel(tmp.path()).args(["compile", script]));
        assert_eq!(r.code, 1, "{script}");
        assert!(r.stdout.is_empty());
        assert!(r.stderr.contains("skel::"), "{script}:\n{}", r.stderr);
    }
    // With --emit, still nothing on stdout.
    let r = run(skel(tmp.path()).args(["compile", "check-error.skel", "--emit", "bytecode"]));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    insta::assert_snapshot!("compile_check_error", r.stderr);
}

#[test]
fn compile_emit_stages_of_migrate() {
    let tmp = workdir(&[(example("migrate.skel"), "migrate.skel")]);
    for emit in ["ast", "ir", "bytecode"] {
        let r = run(skel(tmp.path()).args(["compile", "migrate.skel", "--emit", emit]));
        assert_eq!(r.code, 0, "{emit}:\n{}", r.stderr);
        assert_eq!(r.stderr, "", "{emit}");
        insta::assert_snapshot!(format!("compile_emit_{emit}"), r.stdout_text());
    }
}

#[test]
fn compile_warning_is_printed_and_exits_0() {
    let tmp = workdir(&[(data("label-number.skel"), "label-number.skel")]);
    let r = run(skel(tmp.path()).args(["compile", "label-number.skel"]));
    assert_eq!(r.code, 0, "a warning is not an error");
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("skel::check::label_not_string"));
    insta::assert_snapshot!("compile_warning", r.stderr);
    // With --emit the stage is printed as well.
    let r = run(skel(tmp.path()).args(["compile", "label-number.skel", "--emit", "ir"]));
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("skel::check::label_not_string"));
    assert!(r.stdout_text().contains("modify .metadata.labels.app = 5"), "stdout:\n{}", r.stdout_text());
}

#[test]
fn apply_warning_is_printed_unless_quiet() {
    // The warning fires, but no object matches, so the run succeeds.
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let script = "modify(kind == \"Nothing\", metadata.labels.app = 5);\n";
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "-o", "out.json"]).write_stdin(script));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    insta::assert_snapshot!("apply_warning", redact(&r.stderr, tmp.path()));
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "-o", "out.json", "--quiet"]).write_stdin(script));
    assert_eq!(r.code, 0);
    assert_eq!(r.stderr, "", "--quiet hides warnings and the summary");
    assert_eq!(read_json(&tmp.path().join("out.json")), small_expected());
}

// ---------------------------------------------------------------------------------------------
// 7. Help

#[test]
fn help_texts() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, snap) in [
        (&["--help"][..], "help_skel"),
        (&["apply", "--help"][..], "help_apply"),
        (&["compile", "--help"][..], "help_compile"),
        (&["repl", "--help"][..], "help_repl"),
    ] {
        let r = run(skel(tmp.path()).args(args));
        assert_eq!(r.code, 0, "{args:?}");
        assert_eq!(r.stderr, "", "{args:?}");
        let text = r.stdout_text();
        assert!(text.contains("Example"), "{args:?} shows an example:\n{text}");
        assert!(["skel apply ", "skel compile ", "skel repl "].iter().any(|c| text.contains(c)), "{args:?}");
        insta::assert_snapshot!(snap, text);
    }
    skel(tmp.path()).arg("--version").assert().success().stdout(predicate::str::starts_with("skel "));
}

// ---------------------------------------------------------------------------------------------
// 8. Empty script: every non-empty event kept, empty ones pruned

#[test]
fn empty_script_prunes_only_empty_events() {
    let tmp = workdir(&[(data("small.json"), "small.json"), (data("small.sktrace"), "small.sktrace")]);
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let r = run(skel(tmp.path()).args(["apply", "empty.skel", "small.json", "-o", "out.json"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    insta::assert_snapshot!("empty_script_summary", redact(&r.stderr, tmp.path()));
    let out = read_json(&tmp.path().join("out.json"));
    assert_eq!(out, small_expected());
    let ts: Vec<&Value> = out["events"].as_array().unwrap().iter().map(|e| &e["ts"]).collect();
    assert_eq!(ts, [100, 220], "the event with only deleted_objs is kept; ts unchanged");
    // Key order is SimKube's.
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["version", "config", "events", "index", "pod_lifecycles"]);
    // The u64 hash survives.
    assert_eq!(out["index"]["apps/v1.Deployment"]["default/a"].as_u64(), Some(u64::MAX));

    // A script whose statements match nothing behaves the same; so does a comment-only script.
    for script in ["# only a comment\n", "delete(kind == \"Nothing\");\n", "\n\n"] {
        let r =
            run(skel(tmp.path()).args(["apply", "-", "small.sktrace", "--format", "json", "-q"]).write_stdin(script));
        assert_eq!(r.code, 0, "{script:?}:\n{}", r.stderr);
        assert_eq!(parse_json(&r.stdout), small_expected(), "{script:?}");
    }
}

#[test]
fn delete_everything_leaves_no_events() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json"]).write_stdin("delete(kind == \"Deployment\");"));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    insta::assert_snapshot!("delete_everything_summary", redact(&r.stderr, tmp.path()));
    let out = parse_json(&r.stdout);
    assert_eq!(out["events"], serde_json::json!([]));
    let want = small_expected();
    for key in ["version", "config", "index", "pod_lifecycles"] {
        assert_eq!(out[key], want[key], "`{key}` kept");
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: bugs found by these tests, fixed.

#[test]
fn regression_in_place_with_stdin_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("empty.skel"), "").unwrap();
    let r = run(skel(tmp.path()).args(["apply", "empty.skel", "-", "--in-place"]).write_stdin(""));
    assert!(r.stderr.contains("skel::usage::in_place_stdin"), "stderr:\n{}", r.stderr);
    assert_eq!(r.code, 2, "usage errors exit 2 (skel apply --help)");
}

#[test]
fn regression_script_and_trace_both_stdin_is_a_usage_error() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let trace = fs::read(tmp.path().join("small.json")).unwrap();
    let r = run(skel(tmp.path()).args(["apply", "-", "-"]).write_stdin(trace));
    assert_eq!(r.code, 2, "stderr:\n{}", r.stderr);
    assert!(!r.stderr.contains("skel::parse"), "the trace must not be parsed as a script:\n{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn regression_in_place_keeps_the_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let path = tmp.path().join("small.json");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "--in-place", "-q"]).write_stdin(""));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "mode after --in-place: {mode:o}");
}

#[cfg(unix)]
#[test]
fn regression_output_file_mode_follows_umask() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    // What any ordinary program gets under this umask.
    let reference = tmp.path().join("reference");
    fs::File::create(&reference).unwrap();
    let want = fs::metadata(&reference).unwrap().permissions().mode() & 0o777;
    let r = run(skel(tmp.path()).args(["apply", "-", "small.json", "-o", "out.json", "-q"]).write_stdin(""));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let mode = fs::metadata(tmp.path().join("out.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, want, "output mode {mode:o}, a file created normally here gets {want:o}");
}

#[test]
fn regression_all_events_pruned_keeps_key_order() {
    let tmp = workdir(&[(data("small.json"), "small.json")]);
    let r =
        run(skel(tmp.path()).args(["apply", "-", "small.json", "-q"]).write_stdin("delete(kind == \"Deployment\");"));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let out = parse_json(&r.stdout);
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["version", "config", "events", "index", "pod_lifecycles"]);
}

// ---------------------------------------------------------------------------------------------
// The test helpers themselves

#[test]
fn redaction_of_elapsed_time_paths_and_temp_names() {
    let tmp = Path::new("/tmp/.tmpXYZ");
    let text = "skel: 1 events read, 1 written; 0.03s\n\
                cannot write `/tmp/.tmpXYZ/a/.skel-Ab12Cd.tmp` and .skel-x.tmp\n\
                a .skel- without end\n\
                skel: not a summary";
    assert_eq!(
        redact(text, tmp),
        "skel: 1 events read, 1 written; [ELAPSED]\n\
         cannot write `[TMP]/a/.skel-[RANDOM].tmp` and .skel-[RANDOM].tmp\n\
         a .skel- without end\n\
         skel: not a summary"
    );
}
