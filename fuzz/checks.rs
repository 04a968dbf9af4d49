//! The checks the fuzz targets run on one input, shared with `tests/fuzz_regressions.rs` (which
//! includes this file with `#[path]`), so that every saved input is checked the same way by
//! `./test.sh`, on the stable toolchain and without libFuzzer.
//!
//! Each check returns `Err` with what is wrong (a fuzz target panics with it); a panic, an abort
//! or a hang inside the code under test is a finding too.

use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use miette::Diagnostic;
use serde_json::Value;
use skel::stream::{StreamError, StreamOptions, VisitOptions};
use skel::transform::RunError;
use skel::upgrade::{KubeVersion, Scanner};
use skel::{CompileError, OptLevel, Program};
use skel_trace::{Format, Trace, TraceWriter};

pub type Outcome = Result<(), String>;

/// The trace every compiled script runs over: a few objects of the kinds scripts are written
/// for (Deployment, Pod, CronJob, ConfigMap), over three events.
pub const SAMPLE_TRACE: &str = r#"{
  "version": 2,
  "config": {"trackedObjects": {"apps/v1.Deployment": {"podSpecTemplatePaths": ["/spec/template"]}}},
  "events": [
    {"ts": 1000, "applied_objs": [
      {"apiVersion": "apps/v1", "kind": "Deployment",
       "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                    "annotations": {"note": "a.b"}},
       "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [
                               {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                                "env": [{"name": "A", "value": "1"}], "resources": {"limits": {"cpu": "1"}}},
                               {"name": "side", "image": "busybox", "args": ["sleep", "10"]}],
                                      "nodeSelector": {"disk": "ssd"},
                                      "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]}}},
       "status": {"replicas": 3, "ready": true}},
      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tmp-cfg", "namespace": "default"},
       "data": {"key": "value", "0": "zero", "a.b": "dotted"}}
    ], "deleted_objs": []},
    {"ts": 1060, "applied_objs": [
      {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "default",
        "labels": {"app": "web"}, "ownerReferences": [{"kind": "ReplicaSet", "name": "web-x"}]},
       "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}, {"containerPort": 443}]}],
                "priority": 0, "nodeName": null},
       "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    ], "deleted_objs": [
      {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "jobs"},
       "spec": {"schedule": "0 0 * * *", "suspend": false,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "image": "alpine"}]}}}}}}
    ]},
    {"ts": 4000, "applied_objs": [
      {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lone", "namespace": "kube-system"},
       "spec": {"containers": [], "hostNetwork": true}, "status": {"phase": "Pending"}},
      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "empty"}, "data": {}},
      {"kind": "Weird", "metadata": {"name": 1.5e3, "labels": [1, "x", null]}, "spec": [[], {}]}
    ], "deleted_objs": []}
  ],
  "index": {"apps/v1.Deployment": {"default/web": 1}},
  "pod_lifecycles": []
}"#;

/// The program `trace_read` runs over what it reads: selectors of every kind, a wildcard, a
/// binding, a digit key, a template, an insert.
pub const TRACE_PROGRAM: &str = r#"
modify(kind == "Deployment" && spec.replicas > 1, spec.replicas = 1);
remove(kind == "Pod" || kind == "Deployment", spec.template.spec.containers[*].resources);
delete(kind == "ConfigMap" && metadata.name =~ "^tmp");
modify(kind == "CronJob" && apiVersion == "batch/v1beta1", apiVersion = "batch/v1");
modify($c := spec.containers[*] | $c.image =~ "nginx", $c.image = "nginx:stable");
remove(exists(metadata.labels.app) && !exists(metadata.annotations), status);
copy(kind in ["Pod", "Deployment"] && exists(metadata.labels.app), metadata.labels.app -> metadata.annotations.app);
remove(spec.containers.0.ports);
delete(@t > 1h && kind == "Event");
insert(@t == 30s, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "added"}});
"#;

// ------------------------------------------------------------------------------ compile

/// `compile_text`: the whole compiler on any text. No panic; every diagnostic points inside the
/// text, on character boundaries; the bytecode verifies; when the script compiles without
/// errors, it does the same to the sample trace with and without the optimizer, however the
/// stream runs (`STREAMS`).
pub fn compile_text(src: &str) -> Outcome {
    let compiled = skel::compile(src);
    let diagnostics = match &compiled {
        Ok(c) => &c.warnings,
        Err(r) => &r.diagnostics,
    };
    for d in diagnostics {
        if let CompileError::Internal(e) = d {
            return Err(format!("the compiler made bytecode that does not verify: {e}"));
        }
        labels_in_source(d, src)?;
    }
    let Ok(compiled) = compiled else { return Ok(()) };
    let Ok(unoptimized) = skel::compile_with(src, OptLevel::None, &skel::Folder::current()) else {
        return Err("compiles with the optimizer, but not without".into());
    };
    same_effect(&compiled.program, &unoptimized.program)
}

/// Every label of a diagnostic (and of its related ones) lies within the source, on character
/// boundaries: what the renderer needs.
fn labels_in_source(d: &dyn Diagnostic, src: &str) -> Outcome {
    for label in d.labels().into_iter().flatten() {
        let (start, end) = (label.offset(), label.offset() + label.len());
        if end > src.len() || !src.is_char_boundary(start) || !src.is_char_boundary(end) {
            return Err(format!("diagnostic `{d}` points at {start}..{end}, outside the text or inside a character"));
        }
    }
    for related in d.related().into_iter().flatten() {
        labels_in_source(related, src)?;
    }
    Ok(())
}

/// Why a run wrote nothing: the input is not a trace (or the output could not be written), or a
/// statement failed (the error with its statement's span: the statement's number may differ
/// between programs the optimizer made).
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Trace(String),
    Run(String),
}

/// What a run did, comparable between runs: the trace it wrote, read back, or why it failed.
type RunOutcome = Result<Trace, Failure>;

fn run_error(e: &RunError) -> Failure {
    Failure::Run(format!("{e} [at {}]", e.span))
}

/// A batch this small holds one event: every event is a batch of its own.
const TINY_BATCH: usize = 64;

/// How the stream is run: on one thread with a batch per event, or on four threads with the
/// default batch (a small trace in one).
#[derive(Debug, Clone, Copy)]
enum Pipeline {
    OneThreadTinyBatches,
    FourThreads,
}

/// The ways `compile_text` streams the sample trace, each taking other paths through the
/// pipeline: (input format, output format, how). Each input format meets each output format,
/// and each way of cutting and scheduling the batches; the JSON and msgpack readers decode
/// (lazily) with different code, and a manifest no statement can match is copied as bytes only
/// when the formats are the same.
const STREAMS: [(Format, Format, Pipeline); 4] = [
    (Format::Json, Format::Json, Pipeline::OneThreadTinyBatches),
    (Format::Json, Format::Msgpack, Pipeline::FourThreads),
    (Format::Msgpack, Format::Json, Pipeline::FourThreads),
    (Format::Msgpack, Format::Msgpack, Pipeline::OneThreadTinyBatches),
];

/// The sample trace in a format (msgpack: written from the JSON one, once).
fn sample_trace(format: Format) -> Result<&'static [u8], String> {
    static MSGPACK: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    match format {
        Format::Json => Ok(SAMPLE_TRACE.as_bytes()),
        Format::Msgpack => MSGPACK
            .get_or_init(|| {
                let trace =
                    Trace::read(SAMPLE_TRACE.as_bytes(), Format::Json).map_err(|e| format!("sample trace: {e}"))?;
                let bytes =
                    trace.write(Cursor::new(Vec::new()), Format::Msgpack).map_err(|e| format!("sample trace: {e}"))?;
                Ok(bytes.into_inner())
            })
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone),
    }
}

/// Streams a trace through the program as `skel apply` does; the output's bytes, or why it
/// failed.
fn run_streamed(
    program: &Program,
    input: &[u8],
    input_format: Format,
    output_format: Format,
    pipeline: Pipeline,
) -> Result<Vec<u8>, Failure> {
    let mut writer = TraceWriter::new(Cursor::new(Vec::new()), output_format);
    let mut opts = StreamOptions::new(input_format, output_format);
    match pipeline {
        Pipeline::OneThreadTinyBatches => {
            opts.jobs = 1;
            opts.batch_bytes = TINY_BATCH;
        }
        Pipeline::FourThreads => opts.jobs = 4,
    }
    match skel::stream::transform(program, input, &mut writer, opts) {
        Ok(_) => {
            writer.finish().map(Cursor::into_inner).map_err(|e| Failure::Trace(format!("finishing the output: {e}")))
        }
        Err(StreamError::Trace(e)) => Err(Failure::Trace(format!("trace: {e}"))),
        Err(StreamError::Run(e)) => Err(run_error(&e)),
    }
}

/// Two programs (optimized and not) do the same to the sample trace, streamed every way of
/// `STREAMS`: the same trace out (read back; the bytes may differ: a manifest no statement can
/// match is copied as it was read, and which those are depends on the optimizer), or the same
/// run error.
fn same_effect(optimized: &Program, unoptimized: &Program) -> Outcome {
    let mut first: Option<(String, RunOutcome)> = None;
    for (name, program) in [("optimized", optimized), ("unoptimized", unoptimized)] {
        for (input_format, output_format, pipeline) in STREAMS {
            let how = format!("{name}, {input_format:?} to {output_format:?}, {pipeline:?}");
            let input = sample_trace(input_format)?;
            let outcome = written(run_streamed(program, input, input_format, output_format, pipeline), output_format)
                .map_err(|e| format!("{how}: {e}"))?;
            match &first {
                None => first = Some((how, outcome)),
                Some((first_how, first_outcome)) if *first_outcome != outcome => {
                    return Err(format!("{first_how}:\n{first_outcome:?}\n{how}:\n{outcome:?}"));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// What a run wrote, read back, or why it failed. `Err` (the outer one) when what it wrote
/// cannot be read back.
fn written(run: Result<Vec<u8>, Failure>, format: Format) -> Result<RunOutcome, String> {
    match run {
        Ok(bytes) => match Trace::read(bytes.as_slice(), format) {
            Ok(trace) => Ok(Ok(trace)),
            Err(e) => Err(format!("cannot read the written trace back: {e}\n{}", String::from_utf8_lossy(&bytes))),
        },
        Err(e) => Ok(Err(e)),
    }
}

// ------------------------------------------------------------------------------ format

/// `format`: when the formatter formats the text, formatting its output again changes nothing,
/// and both compile to the same program and the same diagnostics (spans aside). It never
/// reports a bug of its own (`FormatError::Internal`).
pub fn format(src: &str) -> Outcome {
    let formatted = match skel_grammar::format(src) {
        Ok(f) => f,
        Err(skel_grammar::FormatError::Parse(_)) => return Ok(()),
        Err(e @ skel_grammar::FormatError::Internal(_)) => return Err(format!("{e}")),
    };
    match skel_grammar::format(&formatted) {
        Ok(again) if again == formatted => {}
        Ok(again) => return Err(format!("not idempotent:\n{formatted:?}\nthen\n{again:?}")),
        Err(e) => return Err(format!("the formatted text does not format: {e:?}\n{formatted:?}")),
    }
    let (before, after) = (meaning(src), meaning(&formatted));
    if before != after {
        return Err(format!("formatting changed the program:\n{before}\n---- formatted:\n{after}\n{formatted:?}"));
    }
    Ok(())
}

/// What a script compiles to, without its spans: the disassembly and the diagnostics' codes
/// and messages.
fn meaning(src: &str) -> String {
    let (mut out, diagnostics) = match skel::compile(src) {
        Ok(c) => (c.program.disassemble_without_spans(), c.warnings),
        Err(r) => (String::new(), r.diagnostics),
    };
    for d in &diagnostics {
        let code = d.code().map(|c| c.to_string()).unwrap_or_default();
        out.push_str(&format!("diagnostic {code}: {d}\n"));
    }
    out
}

// ------------------------------------------------------------------------------ traces

/// The program `trace_read` runs, optimized and not (compiled once).
fn trace_programs() -> Result<&'static (Program, Program), String> {
    static PROGRAMS: OnceLock<Result<(Program, Program), String>> = OnceLock::new();
    let programs = PROGRAMS.get_or_init(|| {
        let compile = |level| {
            skel::compile_with(TRACE_PROGRAM, level, &skel::Folder::current())
                .map(|c| c.program)
                .map_err(|r| format!("TRACE_PROGRAM does not compile: {:?}", r.diagnostics))
        };
        Ok((compile(OptLevel::Full)?, compile(OptLevel::None)?))
    });
    programs.as_ref().map_err(Clone::clone)
}

/// `trace_read`: the bytes as a JSON trace and as a msgpack trace. The stream runs a program
/// over them, optimized and not, on one thread with a batch per event and on four threads with
/// the default batch: all four write the same trace, or all four refuse the input; what they
/// write reads back. The stream takes the input when the whole-trace reader (`Trace::read`,
/// every object decoded whole) does, and refuses it as a trace when that reader refuses it.
/// The trace that reader read, written in the other format, streams to the same trace or the
/// same run error. `skel check`'s fast path and its sequential reader report the same findings
/// where both read it. No panic anywhere.
pub fn trace_read(data: &[u8]) -> Outcome {
    let (optimized, unoptimized) = trace_programs()?;
    for format in [Format::Json, Format::Msgpack] {
        let runs = [
            ("optimized, one thread, tiny batches", optimized, Pipeline::OneThreadTinyBatches),
            ("optimized, four threads", optimized, Pipeline::FourThreads),
            ("unoptimized, one thread, tiny batches", unoptimized, Pipeline::OneThreadTinyBatches),
            ("unoptimized, four threads", unoptimized, Pipeline::FourThreads),
        ];
        let mut outcomes = Vec::new();
        for (how, program, pipeline) in runs {
            let run = run_streamed(program, data, format, format, pipeline);
            let outcome = written(run, format).map_err(|e| format!("{format:?}, {how}: {e}"))?;
            outcomes.push((how, outcome));
        }
        let (first, first_outcome) = &outcomes[0];
        for (how, outcome) in &outcomes[1..] {
            if !same_outcome(first_outcome, outcome) {
                return Err(format!("{format:?}, {first}:\n{first_outcome:?}\n{how}:\n{outcome:?}"));
            }
        }
        let whole = Trace::read(data, format);
        match (first_outcome, &whole) {
            (Ok(_), Err(e)) => {
                return Err(format!("{format:?}: the stream took a trace the whole-trace reader refuses: {e}"));
            }
            (Err(Failure::Trace(e)), Ok(_)) => {
                return Err(format!("{format:?}: the stream refused a trace the whole-trace reader takes: {e}"));
            }
            _ => {}
        }
        if let Ok(trace) = whole {
            in_the_other_format(optimized, &trace, format, first_outcome)?;
        }
        check_both_ways(data, format)?;
    }
    Ok(())
}

/// A trace read from `format`, written in the other format and streamed (one thread, a batch
/// per event, out in `format`), gives what the stream gave from the input: the same trace, or
/// the same run error (a trace the reader took has no other error). The JSON and msgpack
/// readers are different code.
fn in_the_other_format(program: &Program, trace: &Trace, format: Format, want: &RunOutcome) -> Outcome {
    let other = match format {
        Format::Json => Format::Msgpack,
        Format::Msgpack => Format::Json,
    };
    let bytes = trace
        .write(Cursor::new(Vec::new()), other)
        .map_err(|e| format!("{format:?}: a trace read whole does not write as {other:?}: {e}"))?
        .into_inner();
    let run = run_streamed(program, &bytes, other, format, Pipeline::OneThreadTinyBatches);
    let outcome = written(run, format).map_err(|e| format!("from {other:?}: {e}"))?;
    if outcome != *want {
        return Err(format!("{format:?}:\n{want:?}\nthe same trace from {other:?}:\n{outcome:?}"));
    }
    Ok(())
}

/// Both runs wrote the same trace, or both failed. (Not necessarily with the same error: the
/// stream decodes a manifest only as far as the program reads it, so which of several faults
/// it meets first depends on the program; and the reader finds a fault in the trace's
/// structure before the batch that holds an earlier fault is decoded, or after, by the size of
/// the batches.)
fn same_outcome(a: &RunOutcome, b: &RunOutcome) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// The fast path of `skel check` (`stream::check`) and the sequential scan find the same when
/// both read the trace.
fn check_both_ways(data: &[u8], format: Format) -> Outcome {
    let target = KubeVersion::v1(25);
    let mut opts = VisitOptions::new(format);
    opts.jobs = 1;
    opts.batch_bytes = 256;
    let fast = skel::stream::check(data, opts, target);
    let mut sequential = Scanner::new(target);
    let read = skel_trace::read_trace(data, format, &mut sequential);
    if let (Ok(fast), Ok(())) = (fast, read) {
        let (a, b) = (fast.report().json(), sequential.report().json());
        if a != b {
            return Err(format!("{format:?}: skel check's fast path found\n{a:#}\nthe sequential reader\n{b:#}"));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------ manifests

/// `manifests`: `skel check`'s manifest reader on any text, and the scanner over what it reads,
/// at a few target versions, with every report format. The fix script it writes compiles.
pub fn manifests(text: &str) -> Outcome {
    let Ok(manifests) = skel::upgrade::parse_manifests(text) else { return Ok(()) };
    for target in [KubeVersion::v1(16), KubeVersion::v1(25), KubeVersion::v1(33)] {
        let mut scanner = Scanner::new(target);
        scanner.event();
        for m in &manifests.objects {
            scanner.object(0, 0, m);
        }
        let report = scanner.report();
        let _ = (report.text(), report.json(), report.sarif("manifests.yaml"), report.markdown());
        let fix = match report.fix_script() {
            Ok(fix) => fix,
            Err(e) => {
                return Err(format!("the fix script at {target} is not formatted: {e:?}\n{}", report.fix_source()))
            }
        };
        if let Err(r) = skel::compile(&fix) {
            return Err(format!("the fix script at {target} does not compile: {:?}\n{fix}", r.diagnostics));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------ lsp

/// The language server's input made of a fuzz input, and its messages when they are known:
/// with an even first byte, the rest as is (framing and all); with an odd one, the rest cut at
/// NUL bytes, each piece framed as one message (`Content-Length: N`), so that most inputs reach
/// the handlers.
pub fn lsp_input(data: &[u8]) -> (Vec<u8>, Option<Vec<&[u8]>>) {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => {
            // A NUL at the end ends the last message (it does not start an empty one).
            let rest = rest.strip_suffix(&[0]).unwrap_or(rest);
            let bodies: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
            let mut out = Vec::new();
            for body in &bodies {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            (out, Some(bodies))
        }
        Some((_, rest)) => (rest.to_vec(), None),
        None => (Vec::new(), None),
    }
}

/// The server's output, shared with the test.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The server's input; the channel closes when the server's reader thread lets it go.
struct Input {
    data: Cursor<Vec<u8>>,
    _held: std::sync::mpsc::Sender<()>,
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.data.read(buf)
    }
}

/// `lsp_messages`: the server over the input stream (see `lsp_input`) until it stops (at
/// `exit` or at the end of the input), and its reader thread until the input ends. Everything
/// they write is a whole, framed JSON-RPC message, and none says that the server failed
/// (-32603: a handler panicked). When the messages are known: nothing after an `exit` is
/// answered (the process ends at `exit`: a later answer is lost or cut short), so there are no
/// more parse errors (-32700) than bodies that are not JSON before the first `exit`.
pub fn lsp_messages(data: &[u8]) -> Outcome {
    let (input, bodies) = lsp_input(data);
    let output = Output::default();
    let (held, released) = std::sync::mpsc::channel();
    let _ = skel_lsp::serve_io(Input { data: Cursor::new(input), _held: held }, output.clone());
    // Only the disconnection comes, when the reader thread drops the input: what it writes
    // late is seen every time.
    let _ = released.recv();
    let written = std::mem::take(&mut *output.0.lock().unwrap_or_else(PoisonError::into_inner));
    let mut parse_errors = 0;
    let mut rest = &written[..];
    while !rest.is_empty() {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").ok_or("a message without a header end")?;
        let header = std::str::from_utf8(&rest[..end]).map_err(|_| "a header that is not UTF-8")?;
        let len: usize = header
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("a header without Content-Length: {header:?}"))?;
        let body = rest.get(end + 4..end + 4 + len).ok_or("a message shorter than its Content-Length")?;
        let msg: Value = serde_json::from_slice(body).map_err(|e| format!("a message that is not JSON: {e}"))?;
        if msg.get("jsonrpc") != Some(&Value::from("2.0")) {
            return Err(format!("not a JSON-RPC message: {msg}"));
        }
        match msg.pointer("/error/code").and_then(Value::as_i64) {
            Some(-32603) => return Err(format!("the server failed: {msg}")),
            Some(-32700) => parse_errors += 1,
            _ => {}
        }
        rest = &rest[end + 4 + len..];
    }
    let Some(bodies) = bodies else { return Ok(()) };
    let Some(exit) = bodies.iter().position(|b| is_exit(b)) else { return Ok(()) };
    let not_json = bodies[..exit].iter().filter(|b| serde_json::from_slice::<Value>(b).is_err()).count();
    if parse_errors > not_json {
        return Err(format!(
            "{parse_errors} parse errors answered, but only {not_json} bodies before `exit` (message {}) are not JSON: \
             what follows `exit` was answered",
            exit + 1
        ));
    }
    Ok(())
}

/// An `exit` notification.
fn is_exit(body: &[u8]) -> bool {
    let Ok(Value::Object(msg)) = serde_json::from_slice::<Value>(body) else { return false };
    msg.get("method") == Some(&Value::from("exit")) && !msg.contains_key("id")
}
