//! Every ```console block of README.md and docs/*.md is run against the real `skel`, and what it
//! prints must be what the block shows (as jaq runs its manual's examples). The docs' transcripts
//! cannot rot.
//!
//! A block is a transcript: a line starting with `$ ` is a command (a line ending in `\` goes on
//! on the next line), the lines after it, up to the next command, are what it prints: stdout and
//! stderr together, in the order a terminal shows them (diagnostics go to stderr).
//!
//! How a page runs:
//! - Each page gets its own sandbox, a temporary folder holding a copy of the repository's
//!   `examples/` and `tests/data/`, plus the page's fixtures, the files its transcripts use
//!   without making them (`tests/data/docs-console/PAGE/`, copied to the sandbox's top; where the
//!   page shows a file, the fixture is that file).
//! - The page's blocks run in order in that folder, as a reader following the page would type
//!   them: files a block writes are there for the blocks after it.
//! - A block right after a ```skel or ```skel-error block (only blank lines between them) runs
//!   with that script saved first, under the name of the first `NAME.skel` its first command
//!   names (`script.skel` in docs/diagnostics.md).
//! - The commands of a block run in one `sh` (so `echo $?`, pipes and redirections work) with the
//!   binary under test first on PATH as `skel`, `NO_COLOR=1`, `COLUMNS=100`, stdin empty, and
//!   `/tmp/` in a command meaning the sandbox's own `tmp/`.
//!
//! What is compared, after normalizing both sides:
//! - trailing whitespace of each line, and blank lines at the end of a command's output, are
//!   dropped;
//! - a time in seconds with a fraction (`0.01s`, `in 2.0s`) reads `N.NNs`;
//! - the sandbox's path reads `.` (and its `tmp/` reads `/tmp`).
//!
//! A line of expected output that is only `...` or `…` matches any number of lines, none
//! included.
//!
//! An exit code is checked where the doc shows it (`$ echo $?`), not otherwise.
//!
//! A block that cannot run here (it needs a Kubernetes cluster, a terminal, an editor, the
//! network) has, on the line right before it, `<!-- not run: WHY -->`; the reason is required.
//! A block that runs `jq` or `python3` (with PyYAML) is skipped, and said to be, on a machine
//! without them.
//! The test prints (with `--nocapture`) how many blocks ran and which were skipped and why, and
//! fails if none ran.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOT_RUN: &str = "<!-- not run:";
/// No documented command takes long; one that does has hung (a REPL waiting for input, a FIFO
/// waiting for a writer), and is killed so that the test reports it instead of hanging.
const HANG: Duration = Duration::from_secs(120);
const THREADS: usize = 3;

/// One `$ ` command and what the doc says it prints.
struct Step {
    command: String,
    expected: Vec<String>,
}

/// A ```console block of a page.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    steps: Vec<Step>,
    /// `Some(reason)` when marked `<!-- not run: reason -->`.
    not_run: Option<String>,
    /// The ```skel block right before it, to save under the name its first command names.
    script: Option<String>,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn fence_info(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    trimmed.starts_with("```").then(|| trimmed.trim_start_matches('`').trim())
}

/// The console blocks of a page. A malformed block (text before its first command, a marker
/// without a reason) is an error naming its line.
fn parse(text: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    // The last ```skel / ```skel-error block, while only blank lines follow it.
    let mut script: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = fence_info(lines[i]) else {
            if !lines[i].trim().is_empty() {
                script = None;
            }
            i += 1;
            continue;
        };
        let open = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && fence_info(lines[i]).is_none() {
            body.push(lines[i]);
            i += 1;
        }
        i += 1; // the closing fence
        match info {
            "skel" | "skel-error" => {
                script = Some(body.iter().map(|l| format!("{l}\n")).collect());
                continue;
            }
            "console" => {}
            _ => {
                script = None;
                continue;
            }
        }
        let before = (0..open).rev().map(|j| lines[j].trim()).find(|l| !l.is_empty()).unwrap_or("");
        let not_run = match before.strip_prefix(NOT_RUN) {
            Some(rest) => {
                let reason = rest.trim_end_matches("-->").trim();
                if reason.is_empty() {
                    return Err(format!("line {}: `<!-- not run: -->` needs a reason", open + 1));
                }
                Some(reason.to_string())
            }
            None => None,
        };
        let mut steps: Vec<Step> = Vec::new();
        let mut rows = body.into_iter();
        while let Some(row) = rows.next() {
            if let Some(command) = row.strip_prefix("$ ") {
                let mut command = command.to_string();
                while command.ends_with('\\') {
                    match rows.next() {
                        Some(more) => command.push_str(&format!("\n{more}")),
                        None => return Err(format!("line {}: `\\` on the last line", open + 1)),
                    }
                }
                steps.push(Step { command, expected: Vec::new() });
            } else if let Some(step) = steps.last_mut() {
                step.expected.push(row.to_string());
            } else {
                return Err(format!("line {}: a console block starts with a `$ ` command", open + 1));
            }
        }
        blocks.push(Block { line: open + 1, steps, not_run, script: script.take() });
    }
    Ok(blocks)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The first `NAME.skel` of a command line.
fn first_script_name(command: &str) -> Option<&str> {
    command.split_whitespace().find(|w| w.ends_with(".skel") && !w.starts_with('-'))
}

fn normalize(text: &str, sandbox: &str) -> Vec<String> {
    let text = text.replace(&format!("{sandbox}/tmp"), "/tmp").replace(sandbox, ".");
    let mut lines: Vec<String> = text.lines().map(|l| seconds(l.trim_end())).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// `0.01s` and `2.0s` (a number with a fraction, then `s`, then no letter) read `N.NNs`.
fn seconds(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'.' {
                let mut k = j + 1;
                while k < bytes.len() && bytes[k].is_ascii_digit() {
                    k += 1;
                }
                let unit = k > j + 1 && k < bytes.len() && bytes[k] == b's';
                if unit && (k + 1 == bytes.len() || !bytes[k + 1].is_ascii_alphanumeric()) {
                    out.push_str("N.NNs");
                    i = k + 1;
                    continue;
                }
            }
            out.push_str(&line[start..j]);
            i = j;
            continue;
        }
        let c = line[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn is_ellipsis(line: &str) -> bool {
    matches!(line.trim(), "..." | "…")
}

/// Whether `actual` is `expected`, an `...` line of `expected` standing for any lines.
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if is_ellipsis(first) => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((first, rest)) => actual.first().is_some_and(|a| a == first) && matches(rest, &actual[1..]),
    }
}

/// Runs a block's commands in one shell; what each printed, stdout and stderr together.
fn run_block(block: &Block, sandbox: &Path, bin_dir: &Path) -> Result<Vec<String>, String> {
    const MARK: &str = "\u{1}docs-console-step\u{1}";
    let tmp = format!("{}/tmp/", sandbox.display());
    let mut script = String::from("exec 2>&1 </dev/null\n");
    for step in &block.steps {
        let command = step.command.replace("/tmp/", &tmp);
        script.push_str(&format!("__rc=$?; printf '{MARK}'; (exit $__rc)\n{command}\n"));
    }
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(sandbox)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove("RUST_BACKTRACE")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG {
            child.kill().unwrap();
            child.wait().unwrap();
            return Err(format!("still running after {} s; killed", HANG.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = reader.join().unwrap().unwrap();
    let out = String::from_utf8_lossy(&out);
    let mut outputs: Vec<String> = out.split(MARK).skip(1).map(str::to_string).collect();
    outputs.resize(block.steps.len(), String::new());
    Ok(outputs)
}

/// What running a page's blocks gave.
#[derive(Default)]
struct PageRun {
    ran: usize,
    /// Each block marked not run: page, line, reason.
    skipped: Vec<(String, usize, String)>,
    /// Each a message naming the block.
    failures: Vec<String>,
}

/// Runs a page's blocks.
fn run_page(file: &Path, bin_dir: &Path) -> PageRun {
    let name = file.strip_prefix(repo()).unwrap().display().to_string();
    let text = std::fs::read_to_string(file).unwrap();
    let blocks = match parse(&text) {
        Ok(blocks) => blocks,
        Err(e) => return PageRun { failures: vec![format!("{name}: {e}")], ..PageRun::default() },
    };
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().canonicalize().unwrap();
    copy_dir(&repo().join("examples"), &sandbox.join("examples"));
    copy_dir(&repo().join("tests/data"), &sandbox.join("tests/data"));
    std::fs::create_dir(sandbox.join("tmp")).unwrap();
    let stem = file.file_stem().unwrap().to_string_lossy().to_string();
    let fixtures = repo().join("tests/data/docs-console").join(&stem);
    if fixtures.is_dir() {
        copy_dir(&fixtures, &sandbox);
    }
    let sandbox_str = sandbox.display().to_string();
    let mut page = PageRun::default();
    for block in &blocks {
        let here = format!("{name}:{}", block.line);
        if let Some(reason) = &block.not_run {
            page.skipped.push((name.clone(), block.line, reason.clone()));
            continue;
        }
        if let Some(tool) = missing_tool(block) {
            page.skipped.push((name.clone(), block.line, format!("needs {tool}, which this machine lacks")));
            continue;
        }
        page.ran += 1;
        if let (Some(script), Some(first)) = (&block.script, block.steps.first()) {
            match first_script_name(&first.command) {
                Some(script_name) => std::fs::write(sandbox.join(script_name), script).unwrap(),
                None => page.failures.push(format!("{here}: follows a skel block but names no `.skel` file")),
            }
        }
        let outputs = match run_block(block, &sandbox, bin_dir) {
            Ok(outputs) => outputs,
            Err(e) => {
                page.failures.push(format!("{here}: {e}"));
                continue;
            }
        };
        for (step, output) in block.steps.iter().zip(outputs) {
            let expected = normalize(&step.expected.join("\n"), &sandbox_str);
            let actual = normalize(&output, &sandbox_str);
            if !matches(&expected, &actual) {
                page.failures.push(format!(
                    "{here}: `$ {}` printed something else\n--- the doc shows\n{}\n--- skel printed\n{}\n---",
                    step.command,
                    expected.join("\n"),
                    actual.join("\n")
                ));
            }
        }
    }
    page
}

/// A tool besides skel that a block runs and this machine lacks (`jq`, or `python3` with
/// PyYAML): the block is skipped and said to be, rather than failed.
fn missing_tool(block: &Block) -> Option<&'static str> {
    let uses = |word: &str| block.steps.iter().any(|s| s.command.split_whitespace().any(|w| w == word));
    let works = |program: &str, args: &[&str]| {
        Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if uses("jq") && !works("jq", &["--version"]) {
        return Some("jq");
    }
    if uses("python3") && !works("python3", &["-c", "import yaml"]) {
        return Some("python3 with PyYAML");
    }
    None
}

#[test]
fn console_blocks_print_what_the_docs_show() {
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_skel"), bin_dir.path().join("skel")).unwrap();
    let files = doc_files();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(file) = files.get(i) else { break };
                let result = run_page(file, bin_dir.path());
                results.lock().unwrap().push(result);
            });
        }
    });
    let pages: Vec<PageRun> = results.into_inner().unwrap();
    let ran: usize = pages.iter().map(|p| p.ran).sum();
    let mut skipped: Vec<&(String, usize, String)> = pages.iter().flat_map(|p| &p.skipped).collect();
    skipped.sort();
    let failures: Vec<&String> = pages.iter().flat_map(|p| &p.failures).collect();
    println!("docs console blocks: {ran} ran, {} skipped:", skipped.len());
    for (page, line, reason) in skipped {
        println!("  {page}:{line}: {reason}");
    }
    for failure in &failures {
        eprintln!("{failure}\n");
    }
    assert!(failures.is_empty(), "{} console transcripts differ from what skel prints (above)", failures.len());
    assert!(ran > 0, "no console block ran");
}

#[test]
fn an_ellipsis_line_stands_for_any_lines() {
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    assert!(matches(&lines("a\n...\nd"), &lines("a\nb\nc\nd")));
    assert!(matches(&lines("a\n…\nd"), &lines("a\nd")));
    assert!(matches(&lines("...\nd"), &lines("d")));
    assert!(!matches(&lines("a\n...\nd"), &lines("a\nb\nc")));
    assert!(!matches(&lines("a\nb"), &lines("a\nb\nc")));
}

#[test]
fn fractional_seconds_are_normalized() {
    assert_eq!(seconds("0 fields removed, 5 set; 0.01s"), "0 fields removed, 5 set; N.NNs");
    assert_eq!(seconds("planned) in 12.5s; 38 applied"), "planned) in N.NNs; 38 applied");
    assert_eq!(seconds("duration 1800s @29..32, v1.25s"), "duration 1800s @29..32, v1.25s");
}

#[test]
fn a_block_is_parsed_into_commands_and_their_output() {
    let page = "```skel\nremove(status);\n```\n\n```console\n$ skel compile \\\n  s.skel\nout\n$ echo $?\n0\n```\n\
                <!-- not run: needs a cluster -->\n```console\n$ skel run t.json\n```\n";
    let blocks = parse(page).unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].not_run, None);
    assert_eq!(blocks[1].not_run.as_deref(), Some("needs a cluster"));
    assert_eq!(blocks[0].script.as_deref(), Some("remove(status);\n"));
    assert_eq!(blocks[1].script, None);
    assert_eq!(blocks[0].steps[0].command, "skel compile \\\n  s.skel");
    assert_eq!(blocks[0].steps[0].expected, ["out"]);
    assert_eq!(blocks[0].steps[1].expected, ["0"]);
    assert!(parse("<!-- not run: -->\n```console\n$ x\n```\n").is_err());
    assert!(parse("```console\noutput first\n```\n").is_err());
}
