//! End-to-end tests of `skel repl`: piped sessions (stdin not a terminal: plain text, no
//! prompts) with insta snapshots of what they print, and sessions through a pseudo-terminal
//! (rexpect) that exercise the line editor: completion, hints and multi-line input.
//!
//! Every session runs in its own temp folder with the example trace copied in, so the paths
//! the answers print are short and stable.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

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

/// `skel repl ARGS` in `dir` with `input` on stdin.
fn session(dir: &Path, args: &[&str], input: &str) -> Run {
    run(skel(dir).arg("repl").args(args).write_stdin(input))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// `:write` and `:save` write local files: a URL is refused with what to do, and nothing is
/// made (no folder named `s3:`).
#[test]
fn write_and_save_refuse_a_url() {
    let dir = folder();
    let run = session(dir.path(), &["trace.json"], ":write s3://bucket/out.json\n:save gs://bucket/s.skel\n");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.stdout.matches("skel::repl::url_target").count(), 2, "{}", run.stdout);
    assert!(run.stdout.contains("skel apply SCRIPT TRACE -o URL"), "{}", run.stdout);
    assert!(!dir.path().join("s3:").exists() && !dir.path().join("gs:").exists());
}

#[test]
fn queries_change_nothing() {
    let dir = folder();
    let input = r#":stats
:match kind == "CronJob" && @t > 2m
:show 0.1
:get spec.schedule where kind == "CronJob"
:get metadata.labels."app.kubernetes.io/name" where kind == "Deployment" && metadata.namespace == "payments"
:jsonpath $.spec.template.spec.containers[?@.imagePullPolicy == 'Always'].name where kind == "Deployment"
:match kind == "Nothing"
:get no.such.path
:history
:diff
"#;
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stderr, "");
    insta::assert_snapshot!("queries", run.stdout);
}

/// Only the last statement keeps its changes; `:undo` makes the one before last again, and
/// `:diff` shows its changes as they were shown when it ran.
#[test]
fn diff_after_undo_shows_the_statement_now_last() {
    let dir = folder();
    let migrate = "modify(kind == \"CronJob\" && apiVersion == \"batch/v1beta1\", apiVersion = \"batch/v1\");";
    let first = session(dir.path(), &["trace.json"], &format!("{migrate}\n:diff 2\n"));
    let input = format!("{migrate}\nremove(kind == \"Pod\", status);\n:undo\n:diff 2\n");
    let after_undo = session(dir.path(), &["trace.json"], &input);
    assert_eq!(after_undo.code, 0, "{}", after_undo.stdout);
    let diff = |out: &str| out[out.rfind("--- 0.").map_or(0, |i| i)..].to_string();
    let shown = diff(&first.stdout);
    assert!(shown.contains("+apiVersion: batch/v1"), "{}", first.stdout);
    assert!(after_undo.stdout.ends_with(&shown), "{}\n---- expected it to end with\n{shown}", after_undo.stdout);
}

#[test]
fn statements_rewrite_the_trace_and_undo_takes_them_back() {
    let dir = folder();
    let input = r#"modify(kind == "CronJob" && apiVersion == "batch/v1beta1",
       apiVersion = "batch/v1");
:diff 1
# a comment line, then two statements in one input
remove(kind == "Pod", status); delete(kind == "ConfigMap");
:history
:undo
:get apiVersion where kind == "CronJob"
:undo
:get apiVersion where kind == "CronJob"
:undo
:redo
:redo
:history
"#;
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 0, "{}", run.stdout);
    insta::assert_snapshot!("statements", run.stdout);
}

/// What `:save` writes, applied by `skel apply`, gives what `:write` wrote.
#[test]
fn saved_script_and_written_trace_agree_with_skel_apply() {
    let dir = folder();
    let input = r#"modify(kind == "CronJob" && apiVersion == "batch/v1beta1", apiVersion = "batch/v1");
remove(kind == "Pod", status);
delete(kind == "ConfigMap");
insert(@t == 10m, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "added"}});
:save migrate.skel
:write out.json
:write out.sktrace
"#;
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 0, "{}", run.stdout);
    insta::assert_snapshot!("save_and_write", run.stdout);
    let script = fs::read_to_string(dir.path().join("migrate.skel")).unwrap();
    insta::assert_snapshot!("saved_script", script);

    let applied =
        skel(dir.path()).args(["apply", "-q", "migrate.skel", "trace.json", "-o", "applied.json"]).output().unwrap();
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert_eq!(read_json(&dir.path().join("out.json")), read_json(&dir.path().join("applied.json")));

    // The msgpack output holds the same trace.
    let back =
        skel(dir.path()).args(["apply", "-q", "-", "out.sktrace", "-o", "back.json"]).write_stdin("").output().unwrap();
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    assert_eq!(read_json(&dir.path().join("back.json")), read_json(&dir.path().join("applied.json")));
    // Only the named files: no temp file left behind.
    let mut names: Vec<String> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["applied.json", "back.json", "migrate.skel", "out.json", "out.sktrace", "trace.json"]);
}

/// The REPL's trace is always what `skel apply` of the saved script gives, even where one
/// statement at a time would differ: times count from the loaded trace's start, and objects
/// an `insert` added are not seen by later statements.
#[test]
fn the_trace_is_what_the_saved_script_gives() {
    let dir = folder();
    let input = r#"delete(@t < 30s);
delete(@t < 30s);
:match @t < 30s
insert(@t == 1m, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "added"}});
modify(kind == "Namespace" || kind == "Service", metadata.annotations = {"x": "y"});
:diff 1
:save s.skel
:write out.json
"#;
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("note: as one script"), "{}", run.stdout);
    insta::assert_snapshot!("replay", run.stdout);
    let applied =
        skel(dir.path()).args(["apply", "-q", "s.skel", "trace.json", "-o", "applied.json"]).output().unwrap();
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert_eq!(read_json(&dir.path().join("out.json")), read_json(&dir.path().join("applied.json")));
}

#[test]
fn warnings_do_not_fail_a_session() {
    let dir = folder();
    let input = ":match kind == \"Pod\" && kind == \"Job\"\ndelete(kind == \"Pod\" && kind == \"Job\");\n";
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 0, "{}", run.stdout);
    insta::assert_snapshot!("warnings", run.stdout);
}

#[test]
fn errors_point_into_what_was_typed_and_the_session_goes_on() {
    let dir = folder();
    let input = r#":mtch kind == "Pod"
:match kind ==
:match kind = "Pod"
:show 99
:show 1.40
:show x.y
:get $x.name
:get spec..name
:jsonpath $.spec[
:diff many
:stats now
:show
:diff 0
:write -
:save -
:help :mach
:quit now
modify(kind == "Deployment", spec.replicas = spec.nothing);
modify(kind == "Deploymnt" && metadata.nme == "x", spec.replicas = 1);
:history
:load missing.json
:write no/such/folder/out.json
:match kind == "Pod"
delete(kind == "Job")
"#;
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 1, "a failed input makes a piped session exit 1");
    assert_eq!(run.stderr, "");
    insta::assert_snapshot!("errors", run.stdout);
    assert!(!dir.path().join("no").exists());
}

#[test]
fn without_a_trace_statements_are_checked_and_load_brings_one() {
    let dir = folder();
    let input = r#"delete(kind == "Pod");
:stats
:load trace.json
delete(kind == "Pod");
:stats
"#;
    let run = session(dir.path(), &[], input);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("no_trace", run.stdout);
}

#[test]
fn quit_stops_reading() {
    let dir = folder();
    let run = session(dir.path(), &["trace.json"], ":quit\ndelete(*);\n:write out.json\n");
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "loaded trace.json: 16 events, 40 objects\n");
    assert!(!dir.path().join("out.json").exists());
}

#[test]
fn help_lists_every_command() {
    let dir = folder();
    let run = session(dir.path(), &[], ":help\n:help :match\n:help stats\n:help modify\n");
    assert_eq!(run.code, 0);
    insta::assert_snapshot!("help", run.stdout);
}

#[test]
fn a_bad_trace_is_a_diagnostic() {
    let dir = folder();
    fs::write(dir.path().join("bad.json"), "{\"version\": 2, \"events\": [}").unwrap();
    let run = session(dir.path(), &["bad.json"], ":stats\n");
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("bad_trace", run.stdout);
}

// ------------------------------------------------------------------------ pseudo-terminal

/// `skel repl trace.json` on a pseudo-terminal, its history file in the temp folder.
fn pty(dir: &Path) -> rexpect::session::PtySession {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skel"));
    cmd.current_dir(dir)
        .args(["repl", "trace.json"])
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("HOME", dir)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let opts = rexpect::reader::Options::new().timeout_ms(Some(20_000)).strip_ansi_escape_codes(false);
    rexpect::session::spawn_with_options(cmd, opts).unwrap()
}

/// Sends keys to the terminal (rexpect buffers them until flushed).
fn type_in(p: &mut rexpect::session::PtySession, keys: &str) {
    p.send(keys).unwrap();
    p.flush().unwrap();
}

fn history_file(dir: &Path) -> PathBuf {
    dir.join("data/skel/history")
}

#[test]
fn terminal_session_completes_paths_and_reads_multi_line_statements() {
    let dir = folder();
    let mut p = pty(dir.path());
    p.exp_string("loaded trace.json: 16 events, 40 objects").unwrap();
    p.exp_string("skel> ").unwrap();

    // Completion of a statement name, then of a path from the trace: the only key under
    // `spec.jobTemplate.` in the CronJobs is `spec`.
    type_in(&mut p, "mod\t");
    p.exp_string("modify(").unwrap();
    type_in(&mut p, "kind == \"CronJob\", spec.jobTemplate.\t");
    p.exp_string("spec.jobTemplate.spec").unwrap();
    // Not ended by `;`: Enter starts a second line instead of running it.
    type_in(&mut p, ".template.metadata.labels.tier = \"batch\"\r");
    type_in(&mut p, "  );\r");
    p.exp_string("5 objects matched in 5 events: 5 modified, 0 deleted").unwrap();
    p.exp_string("+            tier: batch").unwrap();
    p.exp_string("skel> ").unwrap();

    // Meta-command completion, and a query that shows the change.
    type_in(&mut p, ":ge\t");
    p.exp_string(":get ").unwrap();
    type_in(&mut p, "spec.jobTemplate.spec.template.metadata.labels.tier\r");
    p.exp_string("5 values in 5 objects (1 distinct)").unwrap();
    p.exp_string("skel> ").unwrap();

    // Ctrl-C drops the input; the session goes on.
    type_in(&mut p, "delete(kind == ");
    p.send_control('c').unwrap();
    // The line ends (bracketed paste off, a new line) before the fresh prompt: each keystroke
    // above redrew `skel> ...`, which must not be taken for it (keys typed before the editor
    // reads again would be lost).
    p.exp_string("\u{1b}[?2004l\r\n").unwrap();
    p.exp_string("skel> ").unwrap();
    type_in(&mut p, ":history\r");
    p.exp_string("1  modify(kind == \"CronJob\", spec.jobTemplate.spec.template.metadata.labels.tier = \"batch\"")
        .unwrap();
    p.exp_string("skel> ").unwrap();

    // Ctrl-D leaves; the history file keeps what was entered.
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let history = fs::read_to_string(history_file(dir.path())).unwrap();
    assert!(history.contains(":get spec.jobTemplate.spec.template.metadata.labels.tier"), "{history}");
    assert!(!history.contains("delete(kind =="), "cancelled input is not history: {history}");
}

#[test]
fn terminal_session_completes_variables_and_quoted_keys() {
    let dir = folder();
    let mut p = pty(dir.path());
    p.exp_string("skel> ").unwrap();
    // Variables bound earlier in the statement, and paths through them.
    type_in(&mut p, "modify($c := spec.template.spec.containers[*] | exists($c.imageP\t");
    p.exp_string("$c.imagePullPolicy").unwrap();
    type_in(&mut p, "), $c.imagePullPolicy = \"Never\");\r");
    p.exp_string("modified").unwrap();
    p.exp_string("skel> ").unwrap();
    // A key that needs quotes is offered quoted.
    type_in(&mut p, ":get metadata.labels.\"app.kubernetes.io/na\t");
    p.exp_string("metadata.labels.\"app.kubernetes.io/name\"").unwrap();
    type_in(&mut p, "\r");
    p.exp_string("distinct)").unwrap();
    type_in(&mut p, ":quit\r");
    p.exp_eof().unwrap();
}

/// Piped, a diagnostic names the line of stdin it is on (a statement's context lines too),
/// wherever the statement or command starts: after comments, blank lines, a multi-line
/// statement, a CRLF line.
#[test]
fn piped_diagnostics_give_the_inputs_line() {
    let dir = folder();
    let input =
        "# line 1\n\n:stats\nmodify(kind == \"Pod\",\r\n  spec.x = );\n\n# a note\n\n:match kind ==\nremove(stat\n";
    let run = session(dir.path(), &["trace.json"], input);
    assert_eq!(run.code, 1);
    let headers: Vec<&str> = run.stdout.lines().filter(|l| l.contains("╭─[input:")).map(str::trim).collect();
    assert_eq!(headers, ["╭─[input:5:12]", "╭─[input:9:15]", "╭─[input:10:11]"], "{}", run.stdout);
    assert!(run.stdout.contains(" 4 │ modify(kind == \"Pod\","), "the context line is numbered too:\n{}", run.stdout);
    assert!(run.stdout.contains(" 5 │   spec.x = );"), "{}", run.stdout);
}

/// Piped, `:help` says how a piped session reads its input, not the terminal's keys.
#[test]
fn piped_help_describes_piped_input() {
    let dir = folder();
    let run = session(dir.path(), &[], ":help\n");
    assert_eq!(run.code, 0);
    assert!(!run.stdout.contains("Tab") && !run.stdout.contains("Ctrl-C"), "{}", run.stdout);
    assert!(run.stdout.contains("Piped: a statement runs at its `;`"), "{}", run.stdout);
}
