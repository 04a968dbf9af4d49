//! A REPL session and `skel apply` of the script it saves write the same bytes.
//!
//! Each session is piped into `skel repl TRACE` and ends with `:save` and `:write` (JSON and
//! msgpack); `skel apply` of the saved script over the same trace must then write
//! byte-identical files. Every session runs over several traces: the example trace, its msgpack
//! form, a small synthetic trace (`skel_trace::synth`) in both formats, and the test data traces
//! holding Deployments and CronJobs.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::Path;

use common::{run, skel};
use serde_json::Value;
use skel_trace::{Format, Trace};
use tempfile::TempDir;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A piped REPL session: what is typed, and the statements its `:save` must keep.
struct Session {
    name: &'static str,
    typed: String,
    kept: Vec<String>,
}

const MIGRATE: &str = r#"modify(kind == "CronJob" && apiVersion == "batch/v1beta1", apiVersion = "batch/v1");"#;

/// The sessions every trace goes through.
fn sessions() -> Vec<Session> {
    let statements = |lines: &[&str]| lines.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let migrate = Session { name: "migrate", typed: format!("{MIGRATE}\n"), kept: statements(&[MIGRATE]) };

    // examples/sanitize.skel, one statement (of one or more lines) at a time.
    let sanitize_src = fs::read_to_string(root().join("examples/sanitize.skel")).unwrap();
    let mut sanitize_statements = Vec::new();
    let mut statement = String::new();
    for line in sanitize_src.lines() {
        if !statement.is_empty() {
            statement.push('\n');
        }
        statement.push_str(line);
        if line.trim_end().ends_with(';') {
            sanitize_statements.push(std::mem::take(&mut statement));
        }
    }
    assert!(statement.trim().is_empty() && sanitize_statements.len() > 5, "{sanitize_src}");
    let sanitize = Session { name: "sanitize", typed: lines(&sanitize_statements), kept: sanitize_statements };

    let undo_redo = Session {
        name: "undo-redo",
        typed: format!(
            r#"{MIGRATE}
delete(kind == "Service");
:undo
modify(kind == "Deployment", spec.replicas = 3);
:stats
remove(kind == "Deployment", status);
:undo
:undo
:redo
:match kind == "Pod"
delete(kind == "Pod");
:history
"#
        ),
        kept: statements(&[
            MIGRATE,
            r#"modify(kind == "Deployment", spec.replicas = 3);"#,
            r#"delete(kind == "Pod");"#,
        ]),
    };

    let insert_lines = [
        r#"insert(@t == 0s, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first", "namespace": "default"}, "data": {"k": "v"}});"#,
        r#"insert(@t == 30s, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "added"}});"#,
        r#"modify(kind == "ConfigMap" || kind == "Namespace", metadata.labels = {"seen": "yes"});"#,
        r#"delete(@t > 2m && kind == "Namespace");"#,
        MIGRATE,
    ];
    let insert = Session { name: "insert", typed: lines(&insert_lines), kept: statements(&insert_lines) };

    let delete_lines = [
        r#"delete(kind == "ConfigMap");"#,
        r#"remove(kind == "Pod", status);"#,
        r#"remove(kind == "Deployment", metadata.labels);"#,
        r#"delete(@t >= 1m && @t < 2m);"#,
    ];
    let delete_remove = Session { name: "delete-remove", typed: lines(&delete_lines), kept: statements(&delete_lines) };

    vec![migrate, sanitize, undo_redo, insert, delete_remove]
}

fn lines<S: AsRef<str>>(statements: &[S]) -> String {
    statements.iter().map(|s| format!("{}\n", s.as_ref())).collect()
}

/// Both output formats (by extension).
const BOTH: &[&str] = &["json", "sktrace"];

/// Runs each session over `trace` (a file in `dir`) and checks that `:write` and `skel apply` of
/// the `:save`d script agree, byte for byte, in each output format of `outputs`; fails naming
/// every pair that does not.
fn check(dir: &Path, trace: &str, sessions: Vec<Session>, outputs: &[&str]) {
    let mut differences = Vec::new();
    for session in sessions {
        let name = session.name;
        let script = format!("{name}.skel");
        let writes: String = outputs.iter().map(|ext| format!(":write {name}.repl.{ext}\n")).collect();
        let typed = format!("{}:save {script}\n{writes}", session.typed);
        let repl = run(skel(dir).args(["repl", trace]).write_stdin(typed));
        assert_eq!(repl.code, 0, "session {name} over {trace}:\n{}{}", repl.stdout, repl.stderr);

        let saved = fs::read_to_string(dir.join(&script)).unwrap();
        let (header, body) = saved.split_once('\n').unwrap();
        assert!(header.starts_with("# Written by `skel repl`"), "{saved}");
        assert_eq!(body, lines(&session.kept), "{name}: {saved}");

        for ext in outputs {
            let out = format!("{name}.apply.{ext}");
            let apply = run(skel(dir).args(["apply", "-q", &script, trace, "-o", &out]));
            assert_eq!(apply.code, 0, "apply {script} over {trace}:\n{}{}", apply.stdout, apply.stderr);
            let what = format!("session {name} over {trace}, {ext} out");
            if let Some(difference) = difference(&dir.join(format!("{name}.repl.{ext}")), &dir.join(&out), &what) {
                differences.push(difference);
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Where the two files' bytes first differ (and the first event or field that differs), or
/// `None` when they hold the same bytes.
fn difference(repl: &Path, apply: &Path, what: &str) -> Option<String> {
    let (a, b) = (fs::read(repl).unwrap(), fs::read(apply).unwrap());
    if a == b {
        return None;
    }
    let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let around = |bytes: &[u8]| {
        let from = at.saturating_sub(80);
        String::from_utf8_lossy(&bytes[from..(at + 80).min(bytes.len())]).into_owned()
    };
    let mut msg = format!(
        "{what}: `:write` ({} bytes) and `skel apply` ({} bytes) differ first at byte {at}\n  repl:  {:?}\n  apply: {:?}\n",
        a.len(),
        b.len(),
        around(&a),
        around(&b)
    );
    let format = Format::from_extension(repl).unwrap();
    match (Trace::read(&a[..], format), Trace::read(&b[..], format)) {
        (Ok(x), Ok(y)) => {
            let _ = write!(msg, "{}", first_difference(&x.to_json_value(), &y.to_json_value(), "$"));
        }
        (x, y) => {
            let _ = write!(msg, "read back: repl {:?}, apply {:?}", x.err(), y.err());
        }
    }
    Some(msg)
}

/// Where two JSON values first differ, as a path from `at` (`$.events[3].applied_objs[0]`) and
/// what is there in each.
fn first_difference(a: &Value, b: &Value, at: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, v) in x {
                match y.get(key) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(v, w, &format!("{at}.{key}")),
                    None => return format!("{at}.{key} is only in repl: {}", short(v)),
                }
            }
            if let Some((key, w)) = y.iter().find(|(key, _)| !x.contains_key(*key)) {
                return format!("{at}.{key} is only in apply: {}", short(w));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return first_difference(v, w, &format!("{at}[{i}]"));
                }
            }
            if x.len() != y.len() {
                let n = x.len().min(y.len());
                let (who, extra) = if x.len() > n { ("repl", &x[n]) } else { ("apply", &y[n]) };
                return format!(
                    "{at} has {} elements in repl and {} in apply, the first {n} equal; {at}[{n}] is only in {who}: {}",
                    x.len(),
                    y.len(),
                    short(extra)
                );
            }
        }
        _ if a != b => return format!("first difference at {at}:\n  repl:  {}\n  apply: {}", short(a), short(b)),
        _ => {}
    }
    // Same values, different bytes.
    format!("read back, {at} is equal in both: only the encodings differ (spacing, key order, number form)")
}

/// `value` as JSON, cut after 400 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(400) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A temp folder holding `name`, a copy of `source` (relative to the package root).
fn folder_with(source: &str, name: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(root().join(source), dir.path().join(name)).unwrap();
    dir
}

/// A temp folder holding a small synthetic trace `name` (about 1 MB, 270 events).
fn folder_with_synthetic(name: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let format = Format::from_extension(&path).unwrap();
    let stats = skel_trace::synth::write_trace(File::create(&path).unwrap(), format, 16, 1_000_000).unwrap();
    assert!(stats.events > 100, "{stats:?}");
    dir
}

#[test]
fn example_trace_json() {
    let dir = folder_with("examples/trace.json", "trace.json");
    check(dir.path(), "trace.json", sessions(), BOTH);
}

/// The example trace converted to msgpack (by `skel apply` of an empty script).
fn folder_with_example_msgpack() -> TempDir {
    let dir = folder_with("examples/trace.json", "source.json");
    let convert =
        run(skel(dir.path()).args(["apply", "-q", "-", "source.json", "-o", "trace.sktrace"]).write_stdin(""));
    assert_eq!(convert.code, 0, "{}", convert.stderr);
    dir
}

#[test]
fn example_trace_msgpack() {
    let dir = folder_with_example_msgpack();
    check(dir.path(), "trace.sktrace", sessions(), BOTH);
}

#[test]
fn synthetic_trace_json() {
    let dir = folder_with_synthetic("synth.json");
    check(dir.path(), "synth.json", sessions(), BOTH);
}

#[test]
fn synthetic_trace_msgpack() {
    let dir = folder_with_synthetic("synth.sktrace");
    check(dir.path(), "synth.sktrace", sessions(), BOTH);
}

#[test]
fn small_trace_msgpack() {
    let dir = folder_with("tests/data/cli/small.sktrace", "small.sktrace");
    check(dir.path(), "small.sktrace", sessions(), BOTH);
}

// The JSON test data traces are spaced (`small.json`) or pretty-printed (`manifests-trace.json`).
// `skel apply` copies what a script does not touch byte for byte (docs/cli.md), spacing
// included; `:write` encodes the whole trace afresh, compactly. Into msgpack they agree.

#[test]
fn spaced_json_traces_to_msgpack() {
    let dir = folder_with("tests/data/cli/small.json", "small.json");
    check(dir.path(), "small.json", sessions(), &["sktrace"]);
    let dir = folder_with("tests/data/check/manifests-trace.json", "manifests.json");
    check(dir.path(), "manifests.json", sessions(), &["sktrace"]);
}

#[test]
#[ignore = "known difference on spaced JSON only: each pass writes again compactly the parts of an object \
            its statements decode and copies the rest as it was, so statements run one at a time (the REPL) \
            and together (`skel apply`) compact different parts of an object some of them change"]
fn spaced_json_traces_to_json() {
    let dir = folder_with("tests/data/cli/small.json", "small.json");
    check(dir.path(), "small.json", sessions(), &["json"]);
    let dir = folder_with("tests/data/check/manifests-trace.json", "manifests.json");
    check(dir.path(), "manifests.json", sessions(), &["json"]);
}

/// A session that deletes every event.
fn delete_everything() -> Vec<Session> {
    let statement = "delete(*);";
    vec![Session { name: "delete-all", typed: lines(&[statement]), kept: vec![statement.to_string()] }]
}

/// With no event left, `:write` keeps SimKube's key order (`events` after `config`), as `skel
/// apply` does (it wrote `events` last).
#[test]
fn a_session_that_deletes_every_event() {
    let dir = folder_with("examples/trace.json", "trace.json");
    check(dir.path(), "trace.json", delete_everything(), BOTH);
    let dir = folder_with_example_msgpack();
    check(dir.path(), "trace.sktrace", delete_everything(), BOTH);
}
