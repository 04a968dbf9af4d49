//! End-to-end tests of the files at the edge of `skel` (issue 17): output through symbolic links
//! and to folders, owners kept, FIFOs and devices where files are expected, size limits, folder
//! loops in `skel check`, signals in the middle of a write, the ranges of number flags, and a
//! large event from a pipe.
//!
//! Every test works in its own temp folder. A wait that could hang if a fix regressed has a
//! generous timeout, so the test fails instead of hanging; nothing asserts how long anything
//! took.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use common::{run, skel};
use tempfile::TempDir;

/// A trace of one event with a Pod and a CronJob.
const TRACE: &str = r#"{"version":2,"config":{"trackedObjects":{}},"events":[{"ts":1,"applied_objs":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"}},{"apiVersion":"batch/v1beta1","kind":"CronJob","metadata":{"name":"c","namespace":"default"}}],"deleted_objs":[]}],"index":{},"pod_lifecycles":{}}"#;

const SCRIPT: &str = "delete(kind == \"Pod\");\n";

/// What `SCRIPT` makes of `TRACE`.
const RESULT: &str = r#"{"version":2,"config":{"trackedObjects":{}},"events":[{"ts":1,"applied_objs":[{"apiVersion":"batch/v1beta1","kind":"CronJob","metadata":{"name":"c","namespace":"default"}}],"deleted_objs":[]}],"index":{},"pod_lifecycles":[]}"#;

/// Longer than any of these runs takes when it works.
const PATIENCE: Duration = Duration::from_secs(120);

fn workdir() -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("trace.json"), TRACE).unwrap();
    fs::write(tmp.path().join("s.skel"), SCRIPT).unwrap();
    tmp
}

fn symlink(to: &str, link: &Path) {
    std::os::unix::fs::symlink(to, link).unwrap();
}

fn mkfifo(path: &Path) {
    let ok = StdCommand::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// The temp files `skel` writes beside its targets, left in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut left: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".skel-") && n.ends_with(".tmp"))
        .collect();
    left.sort();
    left
}

/// Sorted names of a folder's entries.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).unwrap().file_type().is_symlink()
}

// ---------------------------------------------------------------------------------------------
// Output through symbolic links (class 1)

#[test]
fn every_output_through_a_symbolic_link_writes_the_file_it_points_to() {
    let tmp = workdir();
    let dir = tmp.path();
    fs::create_dir(dir.join("real")).unwrap();
    for name in ["out.json", "inplace.json", "fix.skel", "written.json", "saved.skel", "fmt.skel"] {
        fs::write(dir.join("real").join(name), "old").unwrap();
        symlink(&format!("real/{name}"), &dir.join(name));
    }
    fs::write(dir.join("real/inplace.json"), TRACE).unwrap();
    fs::write(dir.join("real/fmt.skel"), "delete( kind==\"Pod\" );").unwrap();

    // apply -o, apply --in-place
    let r = run(skel(dir).args(["apply", "s.skel", "trace.json", "-o", "out.json", "-q"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(skel(dir).args(["apply", "s.skel", "inplace.json", "--in-place", "-q"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // check --fix
    let r = run(skel(dir).args(["check", "trace.json", "--target-version", "1.25", "--fix", "fix.skel"]));
    assert_eq!(r.code, 1, "the trace holds a removed API: {}", r.stderr);
    // the REPL's :write and :save
    let session = "remove(metadata.namespace);\n:write written.json\n:save saved.skel\n";
    let r = run(skel(dir).args(["repl", "trace.json"]).write_stdin(session));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // fmt
    let r = run(skel(dir).args(["fmt", "fmt.skel"]));
    assert_eq!(r.code, 0, "{}", r.stderr);

    assert_eq!(fs::read_to_string(dir.join("real/out.json")).unwrap(), RESULT);
    assert_eq!(fs::read_to_string(dir.join("real/inplace.json")).unwrap(), RESULT);
    assert!(fs::read_to_string(dir.join("real/fix.skel")).unwrap().contains("apiVersion = \"batch/v1\""));
    assert!(!fs::read_to_string(dir.join("real/written.json")).unwrap().contains("\"namespace\""));
    assert!(fs::read_to_string(dir.join("real/saved.skel")).unwrap().contains("remove(metadata.namespace);"));
    assert_eq!(fs::read_to_string(dir.join("real/fmt.skel")).unwrap(), "delete(kind == \"Pod\");\n");
    for name in ["out.json", "inplace.json", "fix.skel", "written.json", "saved.skel", "fmt.skel"] {
        assert!(is_symlink(&dir.join(name)), "{name} is still a link");
    }
    assert_eq!(temp_files(dir), Vec::<String>::new());
    assert_eq!(temp_files(&dir.join("real")), Vec::<String>::new());
}

#[test]
fn a_link_to_a_file_not_there_yet_creates_that_file() {
    let tmp = workdir();
    let dir = tmp.path();
    fs::create_dir(dir.join("real")).unwrap();
    symlink("real/new.json", &dir.join("out.json"));
    let r = run(skel(dir).args(["apply", "s.skel", "trace.json", "-o", "out.json", "-q"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(is_symlink(&dir.join("out.json")));
    assert_eq!(fs::read_to_string(dir.join("real/new.json")).unwrap(), RESULT);
}

#[test]
fn output_to_the_process_own_stdout_lands_where_stdout_goes() {
    // `-o /dev/stdout > cap.json`: a link in the temp folder stands for `/dev/stdout` (the
    // real one must never be at stake in a test).
    let tmp = workdir();
    let dir = tmp.path();
    symlink("/proc/self/fd/1", &dir.join("stdout"));
    let captured = fs::File::create(dir.join("cap.json")).unwrap();
    let status = StdCommand::new(env!("CARGO_BIN_EXE_skel"))
        .current_dir(dir)
        .args(["apply", "s.skel", "trace.json", "-o", "stdout", "-q"])
        .stdout(captured)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(fs::read_to_string(dir.join("cap.json")).unwrap(), RESULT);
    assert!(is_symlink(&dir.join("stdout")));
}

#[cfg(unix)]
#[test]
fn in_place_keeps_the_owner_and_the_mode() {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    let tmp = workdir();
    let dir = tmp.path();
    let trace = dir.join("trace.json");
    // Only root may give a file away; elsewhere there is nothing to test.
    if chown(&trace, Some(4321), Some(8765)).is_err() {
        return;
    }
    fs::set_permissions(&trace, fs::Permissions::from_mode(0o640)).unwrap();
    let r = run(skel(dir).args(["apply", "s.skel", "trace.json", "--in-place", "-q"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = fs::metadata(&trace).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4321, 8765, 0o640));
    assert_eq!(fs::read_to_string(&trace).unwrap(), RESULT);
}

// ---------------------------------------------------------------------------------------------
// Output to a folder (class 13)

#[test]
fn output_to_a_folder_says_what_is_wrong() {
    let tmp = workdir();
    let dir = tmp.path();
    fs::create_dir(dir.join("out")).unwrap();
    let mut text = String::new();
    for target in ["out/", "out", "missing/", "missing/x.json", "trace.json/x.json"] {
        let r = run(skel(dir).args(["apply", "s.skel", "trace.json", "-o", target, "-q"]));
        assert_eq!(r.code, 1);
        text.push_str(&format!("$ skel apply s.skel trace.json -o {target}\n{}\n", r.stderr));
    }
    insta::assert_snapshot!(text);
    assert_eq!(listing(&dir.join("out")), Vec::<String>::new());
    assert!(!dir.join("missing").exists());
}

// ---------------------------------------------------------------------------------------------
// FIFOs and devices (class 5)

#[test]
fn in_place_on_a_fifo_is_a_usage_error() {
    let tmp = workdir();
    let dir = tmp.path();
    mkfifo(&dir.join("pipe.json"));
    let r = run(skel(dir).args(["apply", "s.skel", "pipe.json", "--in-place"]).timeout(PATIENCE));
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn an_insert_file_that_is_a_fifo_or_a_device_is_refused() {
    let tmp = workdir();
    let dir = tmp.path();
    mkfifo(&dir.join("pipe.yaml"));
    fs::write(dir.join("fifo.skel"), "insert(@t == 0s, file(\"pipe.yaml\"));\n").unwrap();
    fs::write(dir.join("zero.skel"), "insert(@t == 0s, file(\"/dev/zero\"));\n").unwrap();
    let mut text = String::new();
    for script in ["fifo.skel", "zero.skel"] {
        let r = run(skel(dir).args(["compile", script]).timeout(PATIENCE));
        assert_eq!(r.code, 1);
        text.push_str(&r.stderr);
    }
    insta::assert_snapshot!(text);
}

/// Starts `skel` on a FIFO no process writes to; once it says that it waits, writes `content`
/// into the FIFO and returns what the run printed. Without the note, the run is ended and the
/// test fails (after `PATIENCE`, a guard against a hang, not a measure).
fn feed_after_the_note(dir: &Path, args: &[&str], stdin: &str, fifo: &str, content: &str) -> (i32, String, String) {
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_skel"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        for line in stderr.lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let note = match rx.recv_timeout(PATIENCE) {
        Ok(note) => note,
        Err(e) => {
            let _ = child.kill();
            panic!("no note that skel waits for a writer ({e})");
        }
    };
    assert!(note.contains("waiting for a process to write to"), "{note}");
    fs::OpenOptions::new().write(true).open(dir.join(fifo)).unwrap().write_all(content.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    lines.join().unwrap();
    let stderr: Vec<String> = std::iter::once(note).chain(rx.try_iter()).collect();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), stderr.join("\n"))
}

#[test]
fn a_fifo_named_on_the_command_line_is_read_and_the_wait_is_announced() {
    let tmp = workdir();
    let dir = tmp.path();
    mkfifo(&dir.join("script.skel"));
    let (code, stdout, stderr) =
        feed_after_the_note(dir, &["apply", "script.skel", "trace.json", "-q"], "", "script.skel", SCRIPT);
    assert_eq!((code, stdout.as_str()), (0, RESULT), "{stderr}");

    mkfifo(&dir.join("pipe.json"));
    let (code, stdout, stderr) = feed_after_the_note(dir, &["repl", "pipe.json"], ":stats\n", "pipe.json", TRACE);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("loaded pipe.json: 1 event, 2 objects"), "{stdout}");
}

#[test]
fn the_repl_loads_a_device_without_reading_it_whole() {
    let tmp = workdir();
    let r = run(skel(tmp.path()).args(["repl"]).write_stdin(":load /dev/zero\n").timeout(PATIENCE));
    assert_eq!(r.code, 1);
    // Refused at its first byte, as `skel apply` refuses it.
    assert!(r.stdout.contains("skel::trace::") && r.stdout.contains("/dev/zero: "), "{}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// Size limits (class 6)

#[test]
fn scripts_insert_files_node_templates_and_manifests_have_size_limits() {
    let tmp = workdir();
    let dir = tmp.path();
    // Sparse: no disk space, and refused by their size before a byte is read.
    fs::File::create(dir.join("big.skel")).unwrap().set_len(2 << 30).unwrap();
    fs::File::create(dir.join("big.yaml")).unwrap().set_len(2 << 30).unwrap();
    fs::write(dir.join("insert.skel"), "insert(@t == 0s, file(\"big.yaml\"));\n").unwrap();
    fs::create_dir(dir.join("manifests")).unwrap();
    fs::File::create(dir.join("manifests/big.yaml")).unwrap().set_len(300 << 20).unwrap();
    let mut text = String::new();
    let runs: [&[&str]; 6] = [
        &["compile", "big.skel"],
        &["apply", "/dev/zero", "trace.json"],
        &["compile", "insert.skel"],
        &["run", "trace.json", "--dry-run", "--virtual-nodes", "1", "--node-template", "/dev/zero"],
        &["check", "manifests", "--target-version", "1.25"],
        &["check", "big.yaml", "--target-version", "1.25"],
    ];
    for args in runs {
        let r = run(skel(dir).args(args).timeout(PATIENCE));
        assert_ne!(r.code, 0);
        text.push_str(&format!("$ skel {}\n{}\n", args.join(" "), r.stderr));
    }
    // A script on stdin too.
    let out = StdCommand::new(env!("CARGO_BIN_EXE_skel"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(["compile", "-"])
        .stdin(fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    text.push_str(&format!("$ skel compile - < /dev/zero\n{}\n", String::from_utf8(out.stderr).unwrap()));
    insta::assert_snapshot!(text);
}

// ---------------------------------------------------------------------------------------------
// `skel check FOLDER`: loops, links, FIFOs (class 5)

#[test]
fn a_checked_folder_is_read_once_through_links_and_loops_and_skips_fifos() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cronjob = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: c\n";
    fs::create_dir_all(dir.join("m/sub")).unwrap();
    fs::write(dir.join("m/a.yaml"), cronjob).unwrap();
    fs::write(dir.join("m/sub/b.yaml"), cronjob).unwrap();
    symlink(".", &dir.join("m/self"));
    symlink("..", &dir.join("m/sub/up"));
    symlink("a.yaml", &dir.join("m/alias.yaml"));
    symlink("sub", &dir.join("m/again"));
    mkfifo(&dir.join("m/pipe.yaml"));
    let r = run(skel(dir).args(["check", "m", "--target-version", "1.25", "--format", "json"]).timeout(PATIENCE));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["objects"], 2, "a.yaml and sub/b.yaml, each once: {}", r.stdout);
    insta::assert_snapshot!(r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Signals (class 7)

#[test]
fn a_signal_during_a_write_leaves_no_temp_file() {
    for (signal, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let tmp = workdir();
        let dir = tmp.path();
        let mut child = StdCommand::new(env!("CARGO_BIN_EXE_skel"))
            .current_dir(dir)
            .args(["apply", "s.skel", "-", "-o", "out.json", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Half a trace, and the pipe kept open: the run waits for the rest, its temp file open.
        let mut input = child.stdin.take().unwrap();
        input.write_all(&TRACE.as_bytes()[..TRACE.len() / 2]).unwrap();
        input.flush().unwrap();
        let mut tries = 0;
        while temp_files(dir).is_empty() {
            tries += 1;
            assert!(tries < 12_000, "no temp file appeared");
            std::thread::sleep(Duration::from_millis(10));
        }
        let killed = StdCommand::new("kill").args(["-s", signal, &child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        drop(input);
        assert_eq!(status.code(), Some(code), "SIG{signal}");
        assert_eq!(temp_files(dir), Vec::<String>::new(), "SIG{signal}");
        assert!(!dir.join("out.json").exists());
    }
}

// ---------------------------------------------------------------------------------------------
// Number flags (class 8)

#[test]
fn out_of_range_numbers_are_usage_errors_that_give_the_range() {
    let tmp = workdir();
    let dir = tmp.path();
    let runs: [&[&str]; 7] = [
        &["apply", "s.skel", "trace.json", "--jobs", "0"],
        &["apply", "s.skel", "trace.json", "--jobs", "18446744073709551615"],
        &["apply", "s.skel", "trace.json", "--jobs", "5000"],
        &["check", "trace.json", "--target-version", "1.25", "--jobs", "257"],
        &["run", "trace.json", "--dry-run", "--jobs", "0"],
        &["run", "trace.json", "--dry-run", "--jobs", "99999"],
        &["run", "trace.json", "--dry-run", "--virtual-nodes", "99999999999"],
    ];
    let mut text = String::new();
    for args in runs {
        let r = run(skel(dir).args(args));
        assert_eq!(r.code, 2, "{}", r.stderr);
        text.push_str(&format!("$ skel {}\n{}\n", args.join(" "), r.stderr));
    }
    insta::assert_snapshot!(text);
    // The ends of the ranges are taken.
    let r = run(skel(dir).args(["apply", "s.skel", "trace.json", "--jobs", "256", "-q"]));
    assert_eq!((r.code, r.stdout.as_str()), (0, RESULT), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// A large event from a pipe (class 5)

#[test]
fn one_large_event_from_a_pipe_is_read_in_one_pass() {
    // 24 MiB in one event, written into the pipe 64 KiB at a time: each read used to rescan the
    // event from its start (minutes); now it is one pass.
    let mut items = "0,".repeat(12 << 20);
    items.pop();
    let trace = format!(
        r#"{{"version":2,"config":{{"trackedObjects":{{}}}},"events":[{{"ts":1,"applied_objs":[{{"kind":"A","a":[{items}]}}],"deleted_objs":[]}}],"index":{{}},"pod_lifecycles":{{}}}}"#
    );
    let tmp = workdir();
    let dir = tmp.path();
    fs::write(dir.join("count.skel"), "remove(kind == \"A\", a);\n").unwrap();
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_skel"))
        .current_dir(dir)
        .args(["apply", "count.skel", "-", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in trace.as_bytes().chunks(64 << 10) {
            input.write_all(chunk).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        r#"{"version":2,"config":{"trackedObjects":{}},"events":[{"ts":1,"applied_objs":[{"kind":"A"}],"deleted_objs":[]}],"index":{},"pod_lifecycles":[]}"#
    );
}
