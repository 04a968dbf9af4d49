//! Every input with which a fuzz target (fuzz/, see fuzz/README.md) found a bug, run through the
//! same check the target runs (`fuzz/checks.rs`, included here), on the stable toolchain and
//! without libFuzzer, so that `./test.sh` keeps them fixed.
//!
//! The inputs are `tests/data/fuzz/<target>/<name>`, the case's name being `<target>/<name>`:
//! - `compile_text/`: a script, through `checks::compile_text`;
//! - `compile_structured/`: a script the generator wrote, through `checks::compile_text` and
//!   `checks::format`;
//! - `format/`: a script, through `checks::format`;
//! - `manifests/`: a manifest file's text, through `checks::manifests`;
//! - `trace_read/`: a trace's bytes (read as JSON and as msgpack), through `checks::trace_read`;
//! - `lsp_messages/`: the target's input (see `checks::lsp_input`), through
//!   `checks::lsp_messages`.
//!
//! Each case runs in a child process (this test binary, running only `one_case`), on a thread
//! with the stack of a main thread, so that an abort (a stack overflow) fails that case, not the
//! whole suite. A case skel gets wrong today is listed in `KNOWN_BUGS` with the reason: its
//! failure is reported but does not fail the suite, and it must be taken off the list once it
//! passes.

#![allow(clippy::unwrap_used, clippy::panic)]

#[allow(dead_code)]
mod common;

#[path = "../fuzz/checks.rs"]
#[allow(dead_code)]
mod checks;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cases skel gets wrong today: (`target/name`, why).
const KNOWN_BUGS: &[(&str, &str)] = &[];

/// The variable that tells `one_case` which case to run.
const CASE_VAR: &str = "SKEL_FUZZ_CASE";

/// The stack the check runs on: a main thread's (what the CLI and the fuzzer run on).
const STACK: usize = 8 << 20;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz")
}

/// Every case, as (`target/name`, path), sorted.
fn cases() -> Vec<(String, PathBuf)> {
    let mut cases = Vec::new();
    let Ok(targets) = fs::read_dir(cases_dir()) else { return cases };
    for target in targets.flatten().filter(|t| t.path().is_dir()) {
        for case in fs::read_dir(target.path()).unwrap().flatten() {
            let name = format!("{}/{}", target.file_name().to_string_lossy(), case.file_name().to_string_lossy());
            cases.push((name, case.path()));
        }
    }
    cases.sort();
    cases
}

/// The check of the case's target on its input.
fn check(target: &str, input: &[u8]) -> checks::Outcome {
    // The text targets skip input that is not UTF-8, as the fuzz targets do.
    let text = || std::str::from_utf8(input).map_err(|e| format!("the input is not UTF-8: {e}"));
    match target {
        "compile_text" => checks::compile_text(text()?),
        "compile_structured" => checks::compile_text(text()?).and_then(|()| checks::format(text()?)),
        "format" => checks::format(text()?),
        "manifests" => checks::manifests(text()?),
        "trace_read" => checks::trace_read(input),
        "lsp_messages" => checks::lsp_messages(input),
        other => Err(format!("no fuzz target `{other}`")),
    }
}

/// Runs one case in a child process: `Err` with what it printed when it failed or died.
fn run_case(path: &Path) -> Result<(), String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["one_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, path)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The child's own report, without the test harness's lines around it.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("note: ") && !l.starts_with("skel lsp: ") && !l.trim().is_empty())
        .collect();
    let report = &lines[lines.len().saturating_sub(20)..];
    Err(format!("{} ({})\n{}", out.status, path.display(), report.join("\n")))
}

#[test]
fn fuzz_regressions() {
    let cases = cases();
    let results = cases.iter().map(|(name, path)| (name.clone(), run_case(path))).collect();
    common::judge(results, KNOWN_BUGS);
}

/// One case, when `SKEL_FUZZ_CASE` names it (`fuzz_regressions` runs this in a child process);
/// nothing otherwise.
#[test]
fn one_case() {
    let Some(path) = std::env::var_os(CASE_VAR).map(PathBuf::from) else { return };
    let target = path.parent().and_then(Path::file_name).unwrap().to_string_lossy().into_owned();
    let input = fs::read(&path).unwrap();
    let checked = std::thread::Builder::new().stack_size(STACK).spawn(move || check(&target, &input)).unwrap().join();
    match checked {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("the check panicked"),
    }
}

/// The checks pass on inputs of every target that hold no bug (so a check that always fails
/// cannot hide behind `KNOWN_BUGS`).
#[test]
fn checks_pass_on_good_inputs() {
    let script = "# a script\nmodify(kind == \"Deployment\" && spec.replicas > 1, spec.replicas = 2);\n\
                  remove($c := spec.template.spec.containers[*] | $c.image =~ \"^nginx\", $c.resources);\n";
    assert_eq!(check("compile_text", script.as_bytes()), Ok(()));
    assert_eq!(check("compile_structured", script.as_bytes()), Ok(()));
    assert_eq!(check("format", script.as_bytes()), Ok(()));
    assert_eq!(check("manifests", b"apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: a}\n"), Ok(()));
    assert_eq!(check("trace_read", checks::SAMPLE_TRACE.as_bytes()), Ok(()));
    let session = b"\x01{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"initialize\", \"params\": {\"capabilities\": {}}}\0\
                    {\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": \"shutdown\"}\0{\"jsonrpc\": \"2.0\", \"method\": \"exit\"}\0";
    assert_eq!(check("lsp_messages", session), Ok(()));
    // A stream that is not framed at all is answered, not a failure.
    assert_eq!(check("lsp_messages", b"\x00garbage\r\n\r\n{"), Ok(()));
}
