//! Traces in object stores (docs/cli.md, "Traces in object stores"): the real `skel` binary
//! reads and writes `s3://` URLs on a local S3-compatible server that each test starts itself —
//! moto in server mode, installed from PyPI by tests/object_store/setup.sh into
//! target/object-store-venv — with authentication on (`INITIAL_NO_AUTH_ACTION_COUNT=3`: an IAM
//! user and its key are made, then every request is checked), on a loopback port. The
//! `http://` scheme is read from `python3 -m http.server`, and `file://` from here.
//!
//! When moto cannot be installed (no python3 with venv, no PyPI), the moto tests say why on
//! stderr and skip; they never pass silently.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_skel");
const BUCKET: &str = "traces";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's folder once setup.sh made it; `Err`: why it could not.
fn venv() -> &'static Result<PathBuf, String> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(|| {
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../object-store-venv");
        let out = Command::new("bash")
            .arg(root().join("tests/object_store/setup.sh"))
            .arg(&venv)
            .output()
            .map_err(|e| format!("cannot run tests/object_store/setup.sh: {e}"))?;
        if out.status.success() {
            Ok(venv)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    })
}

/// Says on stderr (not captured by the test harness) that a test is skipped, and why.
fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED tests/object_store.rs {test}: moto could not be installed: {why}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what} did not listen on port {port} within 60s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process ended when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A moto server with one bucket, `traces`, and a user allowed everything on S3.
struct Moto {
    _server: Killed,
    python: PathBuf,
    endpoint: String,
    key: String,
    secret: String,
}

impl Moto {
    /// `None` when moto cannot be installed (said on stderr).
    fn start(test: &str) -> Option<Moto> {
        let venv = match venv() {
            Ok(venv) => venv,
            Err(why) => {
                skip(test, why);
                return None;
            }
        };
        let port = free_port();
        let mut child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(port, &mut child, "moto_server");
        let mut moto = Moto {
            _server: Killed(child),
            python: venv.join("bin/python"),
            endpoint: format!("http://127.0.0.1:{port}"),
            key: String::new(),
            secret: String::new(),
        };
        let creds = moto.admin_raw(&["credentials"]);
        let (key, secret) = creds.trim().split_once(' ').unwrap();
        (moto.key, moto.secret) = (key.to_string(), secret.to_string());
        moto.admin(&["mb", BUCKET]);
        Some(moto)
    }

    fn admin_raw(&self, args: &[&str]) -> String {
        let out = Command::new(&self.python)
            .arg(root().join("tests/object_store/admin.py"))
            .arg(&self.endpoint)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "admin.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// admin.py with the user's key.
    fn admin(&self, args: &[&str]) -> String {
        let mut all = vec![self.key.as_str(), self.secret.as_str()];
        all.extend_from_slice(args);
        self.admin_raw(&all)
    }

    fn put(&self, key: &str, file: &Path) {
        self.admin(&["put", BUCKET, key, file.to_str().unwrap()]);
    }

    fn get(&self, key: &str, dir: &Path) -> Vec<u8> {
        let file = dir.join("downloaded");
        self.admin(&["get", BUCKET, key, file.to_str().unwrap()]);
        std::fs::read(file).unwrap()
    }

    fn objects(&self) -> Vec<String> {
        self.admin(&["ls", BUCKET]).lines().map(str::to_string).collect()
    }

    fn uploads(&self) -> Vec<String> {
        self.admin(&["uploads", BUCKET]).lines().map(str::to_string).collect()
    }

    /// `skel` with the server's endpoint and the user's key in the environment.
    fn skel(&self, dir: &Path) -> Command {
        let mut cmd = skel(dir);
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", &self.key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret);
        cmd
    }
}

/// `skel` in `dir`, with no AWS settings of the machine's.
fn skel(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("AWS_SESSION_TOKEN").env_remove("AWS_PROFILE");
    cmd
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).to_string()
}

/// A diagnostic's words on one line (miette wraps them to the terminal's width).
fn flat(s: &str) -> String {
    s.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ")
}

fn says(err: &str, what: &str) -> bool {
    flat(err).contains(&flat(what))
}

fn ok(out: &Output) {
    assert!(out.status.success(), "failed: {}\n{}", out.status, text(&out.stderr));
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// A local `skel apply` of the migration example, to compare with.
fn local_apply(dir: &Path, trace: &Path, out: &str) -> Vec<u8> {
    let script = example("migrate.skel");
    ok(&skel(dir).args(["apply", script.to_str().unwrap(), trace.to_str().unwrap(), "-o", out]).output().unwrap());
    std::fs::read(dir.join(out)).unwrap()
}

/// A JSON trace of `n` events, each a ConfigMap with some data; the last one is named `late`.
fn big_trace(path: &Path, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write!(f, r#"{{"version":2,"config":{{"trackedObjects":{{}}}},"events":["#).unwrap();
    let filler = "x".repeat(1000);
    for i in 0..n {
        let name = if i + 1 == n { "late".to_string() } else { format!("cm-{i}") };
        let sep = if i == 0 { "" } else { "," };
        write!(
            f,
            r#"{sep}{{"ts":{ts},"applied_objs":[{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"default"}},"data":{{"filler":"{filler}"}}}}],"deleted_objs":[]}}"#,
            ts = 1_700_000_000 + i
        )
        .unwrap();
    }
    write!(f, r#"],"index":{{}},"pod_lifecycles":{{}}}}"#).unwrap();
    f.flush().unwrap();
}

#[test]
fn apply_streams_from_s3_to_s3_and_the_bytes_are_a_local_applys() {
    let Some(moto) = Moto::start("apply_streams_from_s3_to_s3") else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = example("migrate.skel");
    let script = script.to_str().unwrap();
    moto.put("in/trace.json", &example("trace.json"));
    let expected_json = local_apply(dir.path(), &example("trace.json"), "local.json");
    let expected_msgpack = local_apply(dir.path(), &example("trace.json"), "local.sktrace");

    // s3 -> s3, JSON and msgpack (whose event count is patched at the end, in the first part).
    for (key, expected) in [("out/trace.json", &expected_json), ("out/trace.sktrace", &expected_msgpack)] {
        let url = format!("s3://{BUCKET}/{key}");
        let out =
            moto.skel(dir.path()).args(["apply", script, "s3://traces/in/trace.json", "-o", &url]).output().unwrap();
        ok(&out);
        assert!(text(&out.stderr).starts_with("skel: 16 events read, 16 written"), "{}", text(&out.stderr));
        assert_eq!(&moto.get(key, dir.path()), expected, "{url}");
    }
    // s3 -> a local file, from the msgpack object (format from the key's extension).
    let out = moto
        .skel(dir.path())
        .args(["apply", script, "s3://traces/out/trace.sktrace", "-o", "back.json"])
        .output()
        .unwrap();
    ok(&out);
    let twice = local_apply(dir.path(), &dir.path().join("local.sktrace"), "twice.json");
    assert_eq!(std::fs::read(dir.path().join("back.json")).unwrap(), twice);
    assert!(moto.uploads().is_empty(), "no upload is left pending: {:?}", moto.uploads());

    // A trace larger than a part (8 MiB): several parts, uploaded as the trace is written.
    let big = dir.path().join("big.json");
    big_trace(&big, 20_000);
    moto.put("big.json", &big);
    let out = moto
        .skel(dir.path())
        .args(["apply", script, "s3://traces/big.json", "-o", "s3://traces/big.sktrace"])
        .output()
        .unwrap();
    ok(&out);
    let expected = local_apply(dir.path(), &big, "big.sktrace");
    assert!(expected.len() > 16 << 20, "the big trace spans several parts: {} bytes", expected.len());
    assert_eq!(moto.get("big.sktrace", dir.path()), expected);
}

#[test]
fn check_run_and_repl_read_from_s3() {
    let Some(moto) = Moto::start("check_run_and_repl_read_from_s3") else { return };
    let dir = tempfile::tempdir().unwrap();
    moto.put("trace.json", &example("trace.json"));
    let local = example("trace.json");
    let local = local.to_str().unwrap();

    let check = |trace: &str, cmd: &mut Command| {
        let out = cmd.args(["check", "--target-version", "1.25", trace]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "findings: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let from_s3 = check("s3://traces/trace.json", &mut moto.skel(dir.path()));
    assert_eq!(from_s3, check(local, &mut skel(dir.path())));
    assert!(from_s3.contains("batch/v1beta1"), "{from_s3}");

    let dry_run = |trace: &str, cmd: &mut Command| {
        let out = cmd.args(["run", "--dry-run", "--quiet", trace]).output().unwrap();
        (out.status.code(), text(&out.stdout).replace(trace, "TRACE"))
    };
    assert_eq!(dry_run("s3://traces/trace.json", &mut moto.skel(dir.path())), dry_run(local, &mut skel(dir.path())));

    let repl = |trace: &str, out: &str, cmd: &mut Command| {
        let mut child = cmd
            .args(["repl", trace])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = format!("delete(kind == \"CronJob\");\n:write {out}\n");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        ok(&out);
        text(&out.stdout) + &text(&out.stderr)
    };
    let said = repl("s3://traces/trace.json", "from-s3.json", &mut moto.skel(dir.path()));
    assert!(said.contains("loaded s3://traces/trace.json: 16 events, 40 objects"), "{said}");
    assert!(said.contains("wrote from-s3.json"), "{said}");
    repl(local, "local.json", &mut skel(dir.path()));
    let written = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(written("from-s3.json"), written("local.json"));
}

#[test]
fn a_wrong_key_is_access_denied_and_writes_nothing() {
    let Some(moto) = Moto::start("a_wrong_key_is_access_denied") else { return };
    let dir = tempfile::tempdir().unwrap();
    moto.put("trace.json", &example("trace.json"));
    let script = example("migrate.skel");
    let script = script.to_str().unwrap();
    let trace = example("trace.json");

    let out = moto
        .skel(dir.path())
        .env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        .args(["apply", script, "s3://traces/trace.json", "-o", "out.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(says(&err, "skel::remote::denied"), "{err}");
    assert!(says(&err, "cannot read `s3://traces/trace.json`: access denied (InvalidAccessKeyId)"), "{err}");
    assert!(says(&err, "AWS_ACCESS_KEY_ID and"), "{err}");
    assert!(!dir.path().join("out.json").exists());

    let out = moto
        .skel(dir.path())
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .args(["apply", script, trace.to_str().unwrap(), "-o", "s3://traces/out.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(says(&err, "cannot write `s3://traces/out.json`: access denied (SignatureDoesNotMatch)"), "{err}");
    assert_eq!(moto.objects(), ["trace.json"]);
    assert!(moto.uploads().is_empty());

    let out = moto
        .skel(dir.path())
        .env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        .args(["check", "--target-version", "1.25", "s3://traces/trace.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an input error");
    assert!(text(&out.stderr).contains("access denied"), "{}", text(&out.stderr));
}

#[test]
fn a_missing_bucket_object_endpoint_or_scheme_says_what_to_check() {
    let Some(moto) = Moto::start("a_missing_bucket_object_endpoint_or_scheme") else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = example("migrate.skel");
    let script = script.to_str().unwrap();
    let trace = example("trace.json");
    let trace = trace.to_str().unwrap();
    let fails = |cmd: &mut Command, args: &[&str], said: &[&str]| {
        let out = cmd.args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        for s in said {
            assert!(says(&err, s), "{args:?}: `{s}` not in\n{err}");
        }
    };
    fails(
        &mut moto.skel(dir.path()),
        &["apply", script, "s3://nobucket/t.json", "-o", "out.json"],
        &[
            "skel::remote::no_bucket",
            "cannot read `s3://nobucket/t.json`: the bucket `nobucket` does not exist",
            "check the bucket's name",
            "AWS_ENDPOINT_URL",
        ],
    );
    fails(
        &mut moto.skel(dir.path()),
        &["apply", script, trace, "-o", "s3://nobucket/t.json"],
        &["cannot write `s3://nobucket/t.json`: the bucket `nobucket` does not exist"],
    );
    fails(
        &mut moto.skel(dir.path()),
        &["apply", script, "s3://traces/missing.json", "-o", "out.json"],
        &[
            "skel::remote::not_found",
            "cannot read `s3://traces/missing.json`: no such object",
            "aws s3 ls s3://traces/",
        ],
    );
    let closed = format!("http://127.0.0.1:{}", free_port());
    fails(
        moto.skel(dir.path()).env("AWS_ENDPOINT_URL", &closed),
        &["apply", script, "s3://traces/t.json", "-o", "out.json"],
        &[
            "skel::remote::unreachable",
            &format!("{closed} cannot be reached (connection refused)"),
            "check AWS_ENDPOINT_URL",
        ],
    );
    fails(
        &mut skel(dir.path()),
        &["apply", script, "ftp://host/t.json", "-o", "out.json"],
        &["skel::remote::scheme", "skel does not read `ftp://` URLs", "s3://, gs://, az://, http(s):// or file://"],
    );
    assert!(!dir.path().join("out.json").exists());
    assert!(moto.uploads().is_empty());
}

#[test]
fn a_run_that_fails_midway_leaves_no_object_and_no_pending_upload() {
    let Some(moto) = Moto::start("a_run_that_fails_midway") else { return };
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    big_trace(&big, 30_000);
    moto.put("big.json", &big);
    // The last object stops the run, after more than a part was uploaded.
    std::fs::write(dir.path().join("late.skel"), "modify(metadata.name == \"late\", metadata.labels.app = 5);\n")
        .unwrap();
    let out = moto
        .skel(dir.path())
        .args(["apply", "late.skel", "s3://traces/big.json", "-o", "s3://traces/out.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(says(&err, "skel::run::invalid_field_type"), "{err}");
    assert!(says(&err, "ConfigMap default/late"), "{err}");
    assert_eq!(moto.objects(), ["big.json"]);
    assert!(moto.uploads().is_empty(), "the upload was aborted: {:?}", moto.uploads());
}

#[cfg(unix)]
#[test]
fn ctrl_c_aborts_the_upload() {
    let Some(moto) = Moto::start("ctrl_c_aborts_the_upload") else { return };
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    big_trace(&big, 40_000);
    let bytes = std::fs::read(&big).unwrap();
    std::fs::write(dir.path().join("all.skel"), "remove(status);\n").unwrap();
    // The trace comes through a pipe: half of it, then the run waits for the rest.
    let mut child = moto
        .skel(dir.path())
        .args(["apply", "--quiet", "all.skel", "-", "-o", "s3://traces/out.json"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes[..bytes.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    loop {
        let parts: usize = moto.admin(&["parts", BUCKET]).trim().parse().unwrap();
        if parts > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no part was uploaded within 60s");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(moto.uploads(), ["out.json"], "an upload is under way");
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(moto.uploads().is_empty(), "the upload was aborted: {:?}", moto.uploads());
    assert_eq!(moto.objects(), Vec::<String>::new());
}

#[test]
fn http_and_file_urls_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir(&served).unwrap();
    std::fs::copy(example("trace.json"), served.join("trace.json")).unwrap();
    let expected = local_apply(dir.path(), &example("trace.json"), "local.json");
    let script = example("migrate.skel");
    let script = script.to_str().unwrap();

    let file_url = format!("file://{}", served.join("trace.json").display());
    let out = skel(dir.path()).args(["apply", script, &file_url, "-o", "from-file.json"]).output().unwrap();
    ok(&out);
    assert_eq!(std::fs::read(dir.path().join("from-file.json")).unwrap(), expected);

    let port = free_port();
    let Ok(server) = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory", served.to_str().unwrap(), &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        skip("http_and_file_urls_are_read (http)", "python3 is missing");
        return;
    };
    let mut server = Killed(server);
    wait_for(port, &mut server.0, "python3 -m http.server");
    let url = format!("http://127.0.0.1:{port}/trace.json");
    let out = skel(dir.path()).args(["apply", script, &url, "-o", "from-http.json"]).output().unwrap();
    ok(&out);
    assert_eq!(std::fs::read(dir.path().join("from-http.json")).unwrap(), expected);

    let out = skel(dir.path())
        .args(["apply", script, &format!("http://127.0.0.1:{port}/none.json"), "-o", "x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no such object"), "{}", text(&out.stderr));
    let out = skel(dir.path()).args(["apply", script, "trace.json", "-o", &url]).current_dir(&served).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(says(&text(&out.stderr), "an http(s):// URL is read-only here"), "{}", text(&out.stderr));
}
