//! The SimKube conformance corpus (`../shared/conformance/`): every case runs through the real
//! `skel` binary; outputs are compared as JSON values, error cases must fail with the right kind
//! of diagnostic and write nothing. Intended differences are listed below with their reasons;
//! nothing else is skipped.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Cases whose expected result skel deliberately does not reproduce (skel-language.md §9).
/// Format: (case name, reason). Each is also checked for what skel does instead
/// (`intended_differences_do_what_skel_says`).
const STAR_MODIFY: &str = "`[*]` in a `modify` target sets every element in skel (SimKube: a run-time error)";
const INTENDED_DIFFERENCES: &[(&str, &str)] = &[
    ("eval-err-star-modify__ex-dsb-scaling", STAR_MODIFY),
    ("eval-err-star-modify__gen-s101-e60", STAR_MODIFY),
    ("eval-err-star-modify__gen-s202-e150", STAR_MODIFY),
    ("eval-err-star-modify__gen-s303-e250", STAR_MODIFY),
    ("eval-err-star-modify__gen-s404-e40", STAR_MODIFY),
    ("eval-err-star-modify__tu-trace", STAR_MODIFY),
    ("eval-err-star-modify__tu-validation_trace", STAR_MODIFY),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "{} is missing: CI runs the corpus (.ci/run)", dir.display());
    // Past the test harness's capture, so that it shows.
    let _ = writeln!(std::io::stderr(), "SKIPPED: the conformance corpus {} is not here", dir.display());
    None
}

/// Every case folder of the corpus, sorted.
fn corpus_cases(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("script.skel").exists())
        .collect();
    cases.sort();
    cases
}

enum Expected {
    Output(Value),
    /// `SKEL_ERROR` (rejected before running) or `EVAL_ERROR` (rejected while running).
    Error {
        at_compile_time: bool,
        message: String,
    },
}

fn expected(case: &Path) -> Expected {
    if let Ok(text) = std::fs::read_to_string(case.join("expected.json")) {
        return Expected::Output(serde_json::from_str(&text).expect("expected.json parses"));
    }
    let text = std::fs::read_to_string(case.join("expected-error.txt")).expect("case has an expected result");
    Expected::Error { at_compile_time: text.starts_with("SKEL_ERROR"), message: text }
}

/// Runs one case; returns a description of the mismatch, if any.
fn run_case(case: &Path, tmp: &Path) -> Option<String> {
    let input_ref = std::fs::read_to_string(case.join("input.ref")).expect("input.ref");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(input_ref.trim());
    let out = tmp.join(format!("{}.json", case.file_name()?.to_string_lossy()));
    let result = Command::new(env!("CARGO_BIN_EXE_skel"))
        .arg("apply")
        .arg(case.join("script.skel"))
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--quiet")
        .output()
        .expect("skel runs");
    let stderr = String::from_utf8_lossy(&result.stderr);
    match expected(case) {
        Expected::Output(want) => {
            if !result.status.success() {
                return Some(format!("expected output, but skel failed:\n{stderr}"));
            }
            let got: Value = match std::fs::read_to_string(&out).map(|t| serde_json::from_str(&t)) {
                Ok(Ok(v)) => v,
                other => return Some(format!("output unreadable: {other:?}")),
            };
            (got != want).then(|| format!("output differs:\n{}", first_difference(&got, &want, "")))
        }
        Expected::Error { at_compile_time, message } => {
            if result.status.code() != Some(1) {
                return Some(format!("expected an error ({message}), got exit {:?}", result.status.code()));
            }
            if out.exists() {
                return Some("an error case wrote output".into());
            }
            let compile_time = stderr.contains("skel::parse::") || stderr.contains("skel::check::");
            let run_time = stderr.contains("skel::run::");
            match (at_compile_time, compile_time, run_time) {
                (true, true, _) | (false, false, true) => None,
                _ => Some(format!("wrong kind of error for {message}:\n{stderr}")),
            }
        }
    }
}

fn first_difference(got: &Value, want: &Value, at: &str) -> String {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    None => return format!("{at}/{k}: missing (want {wv})"),
                    Some(gv) if gv != wv => return first_difference(gv, wv, &format!("{at}/{k}")),
                    _ => {}
                }
            }
            for k in g.keys() {
                if !w.contains_key(k) {
                    return format!("{at}/{k}: unexpected");
                }
            }
            format!("{at}: differs")
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                if gv != wv {
                    return first_difference(gv, wv, &format!("{at}/{i}"));
                }
            }
            format!("{at}: differs")
        }
        _ => {
            let clip = |v: &Value| v.to_string().chars().take(200).collect::<String>();
            format!("{at}: got {} want {}", clip(got), clip(want))
        }
    }
}

#[test]
fn conformance_corpus() {
    let Some(dir) = corpus_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = corpus_cases(&dir);
    let mut failures = Vec::new();
    let mut intended = 0;
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let mismatch = run_case(case, tmp.path());
        let listed = INTENDED_DIFFERENCES.iter().any(|(n, _)| *n == name);
        match (mismatch, listed) {
            (None, false) => {}
            (Some(_), true) => intended += 1,
            (None, true) => failures.push(format!("{name}: listed as an intended difference but now passes")),
            (Some(m), false) => failures.push(format!("{name}: {m}")),
        }
    }
    let passed = cases.len() - failures.len() - intended;
    eprintln!("conformance: {passed}/{} passed, {intended} intended differences", cases.len());
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n\n"));
}

/// A case's compiled script (an error if it does not compile) and its input trace's bytes and
/// format.
fn load_case(case: &Path, level: skel::OptLevel) -> Result<(skel::Compiled, Vec<u8>, skel_trace::Format), String> {
    let src = std::fs::read_to_string(case.join("script.skel")).map_err(|e| e.to_string())?;
    let compiled = skel::compile_with(&src, level, &skel::Folder::current())
        .map_err(|r| format!("compile: {:?}", r.diagnostics))?;
    let input_ref = std::fs::read_to_string(case.join("input.ref")).map_err(|e| e.to_string())?;
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(input_ref.trim());
    let format = skel_trace::Format::from_extension(&input).unwrap_or(skel_trace::Format::Json);
    let bytes = std::fs::read(&input).map_err(|e| e.to_string())?;
    Ok((compiled, bytes, format))
}

/// Streams a trace through a program as `skel apply` does, jobs and batches as given: the
/// output bytes, or the error's text.
fn stream(
    program: &skel::Program,
    input: &[u8],
    format: skel_trace::Format,
    jobs: usize,
    batch_bytes: usize,
    out_format: skel_trace::Format,
) -> Result<Vec<u8>, String> {
    let mut writer = skel_trace::TraceWriter::new(std::io::Cursor::new(Vec::new()), out_format);
    let mut opts = skel::stream::StreamOptions::new(format, out_format);
    opts.jobs = jobs;
    opts.batch_bytes = batch_bytes;
    match skel::stream::transform(program, input, &mut writer, opts) {
        Ok(_) => {}
        Err(skel::stream::StreamError::Run(e)) => return Err(e.to_string()),
        Err(skel::stream::StreamError::Trace(e)) => return Err(e.to_string()),
    }
    writer.finish().map(|c| c.into_inner()).map_err(|e| e.to_string())
}

/// Runs a case through the stream, compiled at `level`: the output bytes, or the error's text.
fn run_streamed(
    case: &Path,
    level: skel::OptLevel,
    jobs: usize,
    batch_bytes: usize,
    out_format: skel_trace::Format,
) -> Result<Vec<u8>, String> {
    let (compiled, input, format) = load_case(case, level)?;
    stream(&compiled.program, &input, format, jobs, batch_bytes, out_format)
}

/// What a run wrote, read back whole (so that outputs compare whatever bytes the stream copied
/// as they were read), or its error.
fn read_back(run: Result<Vec<u8>, String>, format: skel_trace::Format) -> Result<skel_trace::Trace, String> {
    run.and_then(|bytes| {
        skel_trace::Trace::read(bytes.as_slice(), format).map_err(|e| format!("the output does not read back: {e}"))
    })
}

/// Batches this small hold one event each: every event is a batch of its own.
const TINY_BATCH: usize = 64;

/// The optimizer changes nothing a script does: every corpus case gives the same output trace
/// (or the same error) optimized and unoptimized, on one thread, one event a batch.
#[test]
fn optimizer_is_invisible_on_the_corpus() {
    let Some(dir) = corpus_dir() else { return };
    let cases = corpus_cases(&dir);
    let json = skel_trace::Format::Json;
    let mut differ = Vec::new();
    for case in &cases {
        let full = read_back(run_streamed(case, skel::OptLevel::Full, 1, TINY_BATCH, json), json);
        let none = read_back(run_streamed(case, skel::OptLevel::None, 1, TINY_BATCH, json), json);
        if full != none {
            differ.push(case.display().to_string());
        }
    }
    assert!(differ.is_empty(), "optimized and unoptimized differ on:\n{}", differ.join("\n"));
}

/// Inputs, and each in the other format (or why it could not be read or written).
type Converted = HashMap<Vec<u8>, Result<(Vec<u8>, skel_trace::Format), String>>;

/// The case's input trace in the other format (msgpack for JSON, JSON for msgpack), by the
/// whole-trace reader and writer; kept by input, as cases share their inputs.
fn in_other_format(
    cache: &mut Converted,
    input: Vec<u8>,
    format: skel_trace::Format,
) -> Result<(Vec<u8>, skel_trace::Format), String> {
    cache
        .entry(input)
        .or_insert_with_key(|input| {
            let other = match format {
                skel_trace::Format::Json => skel_trace::Format::Msgpack,
                skel_trace::Format::Msgpack => skel_trace::Format::Json,
            };
            let trace = skel_trace::Trace::read(input.as_slice(), format).map_err(|e| e.to_string())?;
            let bytes = trace.write(std::io::Cursor::new(Vec::new()), other).map_err(|e| e.to_string())?;
            Ok((bytes.into_inner(), other))
        })
        .clone()
}

/// `a trace`, or the error.
fn outcome(r: &Result<skel_trace::Trace, String>) -> Result<&str, &str> {
    r.as_ref().map(|_| "a trace").map_err(String::as_str)
}

/// The parallel path gives the same bytes as one thread, whatever the batch size; and the same
/// trace in the other format, streamed on one thread one event a batch, gives the same trace
/// (JSON and msgpack input are read by different code: the decoders, what is copied as bytes)
/// or the same error.
#[test]
fn streaming_is_deterministic_and_the_same_from_either_format() {
    let Some(dir) = corpus_dir() else { return };
    let cases = corpus_cases(&dir);
    let json = skel_trace::Format::Json;
    let mut problems = Vec::new();
    let mut converted = HashMap::new();
    for case in &cases {
        let name = case.display().to_string();
        // Msgpack output where the input is msgpack too (the path that copies manifests as bytes).
        let msgpack_input = name.contains("__ex-") || name.contains("s404");
        let formats: &[skel_trace::Format] =
            if msgpack_input { &[skel_trace::Format::Msgpack] } else { &[skel_trace::Format::Json] };
        let mut streamed = Err(String::new());
        for out_format in formats {
            let one = run_streamed(case, skel::OptLevel::Full, 1, 1 << 20, *out_format);
            // Small batches: many batches in flight, finishing out of order.
            if run_streamed(case, skel::OptLevel::Full, 3, 700, *out_format) != one {
                problems.push(format!("{name}: --jobs 3 (batches of 700 bytes, {out_format}) differs from --jobs 1"));
            }
            streamed = one;
        }
        if msgpack_input {
            streamed = run_streamed(case, skel::OptLevel::Full, 2, 1 << 20, json);
        }
        let other = load_case(case, skel::OptLevel::Full).and_then(|(compiled, input, format)| {
            let (input, format) = in_other_format(&mut converted, input, format)?;
            stream(&compiled.program, &input, format, 1, TINY_BATCH, json)
        });
        let (streamed, other) = (read_back(streamed, json), read_back(other, json));
        if streamed != other {
            problems.push(format!(
                "{name}: from its own format {:?}, from the other format {:?}{}",
                outcome(&streamed),
                outcome(&other),
                if streamed.is_ok() && other.is_ok() { " (different traces)" } else { "" }
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What skel does where it differs on purpose: `[*]` in a `modify` target sets the field in
/// every element of every matching object, and nothing else changes.
#[test]
fn intended_differences_do_what_skel_says() {
    let Some(dir) = corpus_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, _) in INTENDED_DIFFERENCES {
        let case = dir.join(name);
        let input_ref = std::fs::read_to_string(case.join("input.ref")).expect("input.ref");
        let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(input_ref.trim());
        let out = tmp.path().join(format!("{name}.json"));
        let status = Command::new(env!("CARGO_BIN_EXE_skel"))
            .args(["apply", "-q"])
            .arg(case.join("script.skel"))
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .status()
            .expect("skel runs");
        assert!(status.success(), "{name}");
        let got: Value = serde_json::from_slice(&std::fs::read(&out).expect("output")).expect("json");
        let mut changed = 0;
        for obj in got["events"].as_array().expect("events").iter().flat_map(|e| {
            let applied = e["applied_objs"].as_array().into_iter().flatten();
            applied.chain(e["deleted_objs"].as_array().into_iter().flatten())
        }) {
            if let Some(containers) = obj.pointer("/spec/template/spec/containers").and_then(Value::as_array) {
                for c in containers {
                    assert_eq!(c["imagePullPolicy"], "Never", "{name}: {c}");
                    changed += 1;
                }
            }
        }
        assert!(changed > 0, "{name}: no container was changed");
    }
}
