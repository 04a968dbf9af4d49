//! End-to-end tests of the SKEL language extensions (literals, templates, `[*]` and `.*` in
//! targets, `["key"]`, `=~`/`!~`/`in`, `||`/`!`/parentheses, `move` and `copy`), run through the
//! real `skel apply`.
//!
//! Every case is a folder of `tests/data/extensions/` holding `script.skel`, `input.json` (a
//! small trace) and either `expected.json` (the whole output trace, written by hand from the
//! language's semantics and compared as a JSON value) or `expected-error.txt` (the code of the
//! diagnostic expected; the run must exit with 1, name it on stderr and write nothing). The
//! runner copies a case into a temp folder, runs `skel apply script.skel input.json -o out.json`
//! there, then the same with `--jobs 1` and with msgpack output (`-o out.sktrace`, read back by
//! an empty script). It reports every failing case at once, by name.
//!
//! skel writes an empty `pod_lifecycles` as `[]` in JSON (docs/cli.md, "What skel writes"), so
//! the expected traces hold `[]` where the inputs hold `{}`.
//!
//! A case whose expectation skel does not meet yet is listed in `KNOWN_BUGS` with the reason:
//! its failure is reported but does not fail the suite, and it must be taken off the list once
//! it passes.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::skel;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Cases skel gets wrong today: (case folder, why).
const KNOWN_BUGS: &[(&str, &str)] = &[];

/// The file an error case names its diagnostic code in.
const EXPECTED_ERROR: &str = "expected-error.txt";

/// A msgpack trace is a map with five keys: fixmap marker 0x85.
const MSGPACK_TRACE_MARKER: u8 = 0x85;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/extensions")
}

/// The case folders, sorted by name.
fn case_dirs() -> Vec<PathBuf> {
    let dir = cases_dir();
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found
}

fn case_name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

struct Run {
    code: Option<i32>,
    stderr: String,
}

/// Runs `skel apply script.skel input.json -o OUTPUT EXTRA..` in `dir`.
fn apply(dir: &Path, output: &str, extra: &[&str]) -> Run {
    let out = skel(dir).args(["apply", "script.skel", "input.json", "-o", output]).args(extra).output().unwrap();
    Run { code: out.status.code(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// The places where `actual` differs from `expected`: a JSON pointer with both values (`(none)`
/// where one side has nothing there), at most `MAX_DIFFS` of them.
fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    const MAX_DIFFS: usize = 12;
    fn walk(path: &str, expected: Option<&Value>, actual: Option<&Value>, out: &mut Vec<String>) {
        if out.len() >= MAX_DIFFS {
            return;
        }
        match (expected, actual) {
            (Some(Value::Object(e)), Some(Value::Object(a))) => {
                for key in e.keys().chain(a.keys().filter(|k| !e.contains_key(*k))) {
                    let step = key.replace('~', "~0").replace('/', "~1");
                    walk(&format!("{path}/{step}"), e.get(key), a.get(key), out);
                }
            }
            (Some(Value::Array(e)), Some(Value::Array(a))) if e.len() == a.len() => {
                for (i, (e, a)) in e.iter().zip(a).enumerate() {
                    walk(&format!("{path}/{i}"), Some(e), Some(a), out);
                }
            }
            (e, a) if e != a => {
                let show = |v: Option<&Value>| v.map_or_else(|| "(none)".to_string(), Value::to_string);
                let at = if path.is_empty() { "/" } else { path };
                out.push(format!("  at {at}: expected {}, got {}", show(e), show(a)));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", Some(expected), Some(actual), &mut out);
    out
}

/// Checks a successful run: exit 0 and `output` (in `dir`) equal to `expected`.
fn check_output(dir: &Path, what: &str, run: &Run, output: &str, expected: &Value) -> Result<(), String> {
    if run.code != Some(0) {
        return Err(format!("{what}: exit code {:?}, expected 0; stderr:\n{}", run.code, run.stderr));
    }
    let actual = read_json(&dir.join(output)).map_err(|e| format!("{what}: {e}"))?;
    if &actual != expected {
        return Err(format!("{what}: output differs\n{}", differences(expected, &actual).join("\n")));
    }
    Ok(())
}

/// Checks a failed run: exit 1, `code` on stderr, and no output file.
fn check_error(dir: &Path, what: &str, run: &Run, output: &str, code: &str) -> Result<(), String> {
    if run.code != Some(1) {
        return Err(format!("{what}: exit code {:?}, expected 1; stderr:\n{}", run.code, run.stderr));
    }
    if !run.stderr.contains(code) {
        return Err(format!("{what}: stderr does not name `{code}`:\n{}", run.stderr));
    }
    if dir.join(output).exists() {
        return Err(format!("{what}: an output file was written although the run failed"));
    }
    let mut left: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.retain(|n| n != "script.skel" && n != "input.json");
    if !left.is_empty() {
        return Err(format!("{what}: files left behind by the failed run: {left:?}"));
    }
    Ok(())
}

/// Runs one case in a fresh temp folder; `Err` holds every problem found, one per line block.
fn run_case(case: &Path) -> Result<(), String> {
    for required in ["script.skel", "input.json"] {
        if !case.join(required).is_file() {
            return Err(format!("the case has no {required}"));
        }
    }
    let has_expected = case.join("expected.json").is_file();
    let has_error = case.join(EXPECTED_ERROR).is_file();
    if has_expected == has_error {
        return Err(format!("the case needs exactly one of expected.json and {EXPECTED_ERROR}"));
    }

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for name in ["script.skel", "input.json"] {
        fs::copy(case.join(name), dir.join(name)).unwrap();
    }
    let mut problems = Vec::new();

    if has_error {
        let text = fs::read_to_string(case.join(EXPECTED_ERROR)).unwrap();
        let code = text.trim();
        if code.is_empty() {
            return Err(format!("{EXPECTED_ERROR} is empty"));
        }
        for (what, output, extra) in
            [("apply", "out.json", &[][..]), ("apply --jobs 1", "out-j1.json", &["--jobs", "1"][..])]
        {
            let run = apply(dir, output, extra);
            problems.extend(check_error(dir, what, &run, output, code).err());
        }
    } else {
        let expected = read_json(&case.join("expected.json"))?;
        let run = apply(dir, "out.json", &[]);
        problems.extend(check_output(dir, "apply", &run, "out.json", &expected).err());

        let run = apply(dir, "out-j1.json", &["--jobs", "1"]);
        problems.extend(check_output(dir, "apply --jobs 1", &run, "out-j1.json", &expected).err());

        // msgpack out, then read back to JSON by an empty script.
        let run = apply(dir, "out.sktrace", &[]);
        if run.code != Some(0) {
            problems.push(format!("apply -o out.sktrace: exit code {:?}; stderr:\n{}", run.code, run.stderr));
        } else {
            let packed = fs::read(dir.join("out.sktrace")).unwrap();
            if packed.first() != Some(&MSGPACK_TRACE_MARKER) {
                problems.push("apply -o out.sktrace: the output is not a msgpack trace".to_string());
            }
            fs::write(dir.join("empty.skel"), "").unwrap();
            let out = skel(dir).args(["apply", "empty.skel", "out.sktrace", "-o", "back.json"]).output().unwrap();
            let back = Run { code: out.status.code(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() };
            problems.extend(check_output(dir, "msgpack read back", &back, "back.json", &expected).err());
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn extension_cases() {
    let cases = case_dirs();
    assert!(cases.len() >= 20, "expected the extension cases in {}", cases_dir().display());
    let names: Vec<String> = cases.iter().map(|c| case_name(c)).collect();
    let results = cases.iter().zip(names).map(|(case, name)| (name, run_case(case))).collect();
    common::judge(results, KNOWN_BUGS);
}
