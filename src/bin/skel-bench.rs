//! skel-bench: times the release `skel` binary (and jq, when it is installed) on synthetic SimKube traces.
//!
//! `cargo build --release && ./target/release/skel-bench [--sizes 10,100,1000] [--formats json,msgpack]
//! [--runs 3] [--data-dir target/bench-data] [--skel PATH]`
//!
//! For every size and format it generates a trace once (`trace-<N>mb-seed1.json` / `.sktrace`,
//! reused when present), runs `skel apply` on it with an empty script (the floor: read, decode,
//! encode, write), a CronJob migration and `examples/sanitize.skel`, and `skel check` of it for
//! Kubernetes 1.25, and prints a markdown table of the best wall time, throughput and peak RSS of
//! each. Then, on traces up to `--repl-max-mb`, it pipes sessions into `skel repl` (open,
//! `:stats`, a statement, the sanitize script one statement at a time, `:match`, `:get`, and five
//! statements with undos, redos and `:write`) and prints a second table against issue 16's
//! targets, as ratios to the floor; the last session's `:write` must be the bytes `skel apply`
//! of its `:save`d script writes. This is a benchmark, not a test: it checks that the commands
//! succeed, never how fast they are.
//!
//! Peak RSS is the child's `VmHWM` (the kernel's high-water mark of its resident set), sampled
//! from `/proc/<pid>/status` every millisecond while it runs. `VmHWM` only grows, so a sample sees
//! every earlier peak; only growth in the last millisecond before exit can be missed. (`getrusage
//! (RUSAGE_CHILDREN)` would be a running maximum over all children, and `wait4` needs `unsafe`,
//! which the workspace forbids.)

use std::convert::Infallible;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use skel_trace::synth::{self, SynthStats};
use skel_trace::{read_trace, Event, Format, ReadError, Section, TraceVisitor};

/// The seed of every generated trace (it is in the file names).
const SEED: u64 = 1;

/// One MB, for sizes and throughput.
const MB: f64 = 1e6;

const MIGRATE: &str = r#"modify(kind == "CronJob" && apiVersion == "batch/v1beta1", apiVersion = "batch/v1");"#;
const SANITIZE: &str = include_str!("../../examples/sanitize.skel");

/// The scripts, in table order; the first is the floor the others are compared with.
const SCRIPTS: [(&str, &str); 3] = [("floor", ""), ("migrate", MIGRATE), ("sanitize", SANITIZE)];

/// The target version of the `skel check` row (its report, as text, goes to /dev/null).
const CHECK_VERSION: &str = "1.25";

/// `migrate` in jq, on both lists of objects of every event: with path updates (`|=` on
/// `.events[].applied_objs[]`, the obvious way), and rebuilding the lists with `map`, which jq 1.6
/// runs much faster on large traces (its path updates are superlinear).
const JQ_FILTERS: [(&str, &str); 2] = [
    (
        "migrate (jq paths)",
        r#"def migrate: if .kind == "CronJob" and .apiVersion == "batch/v1beta1" then .apiVersion = "batch/v1" else . end; .events[].applied_objs[] |= migrate | .events[].deleted_objs[] |= migrate"#,
    ),
    (
        "migrate (jq map)",
        r#"def migrate: if .kind == "CronJob" and .apiVersion == "batch/v1beta1" then .apiVersion = "batch/v1" else . end; .events |= map(.applied_objs |= map(migrate) | .deleted_objs |= map(migrate))"#,
    ),
];

/// How often the peak RSS of a child is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(1);

#[derive(Parser, Debug)]
#[command(
    name = "skel-bench",
    about = "Time the release `skel` binary on synthetic SimKube traces (and jq, if installed)",
    after_help = "Example:\n  cargo build --release && ./target/release/skel-bench --sizes 10,100 --runs 1"
)]
struct Args {
    /// Trace sizes, in MB (10^6 bytes).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000", value_parser = clap::value_parser!(u64).range(1..))]
    sizes: Vec<u64>,
    /// Trace formats.
    #[arg(long, value_delimiter = ',', default_value = "json,msgpack")]
    formats: Vec<FormatArg>,
    /// Runs of each command; the best time is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Where the generated traces are kept (and outputs written, then deleted).
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
    /// The skel binary (default: the `skel` next to this executable).
    #[arg(long)]
    skel: Option<PathBuf>,
    /// The largest trace jq is run on, in MB (jq holds the whole trace in memory, about 12 times
    /// its size, and its `|=` form takes 37 s on 100 MB).
    #[arg(long, default_value_t = 100)]
    jq_max_mb: u64,
    /// Do not run jq even if it is installed.
    #[arg(long)]
    no_jq: bool,
    /// The largest trace `skel repl` is run on, in MB; 0: no REPL rows. The REPL keeps the
    /// trace on disk and streams it (peak memory a few tens of MB); its seven sessions take about
    /// 15 times the floor's time each size.
    #[arg(long, default_value_t = 1000)]
    repl_max_mb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Json,
    Msgpack,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Json => Format::Json,
            FormatArg::Msgpack => Format::Msgpack,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            FormatArg::Json => "json",
            FormatArg::Msgpack => "sktrace",
        }
    }
}

/// A generated trace.
struct TraceFile {
    path: PathBuf,
    bytes: u64,
    objects: u64,
}

/// The best of a command's runs.
#[derive(Debug, Clone, Copy)]
struct Measurement {
    /// The best wall time.
    time: Duration,
    /// The largest peak RSS over the runs, in kB, if any sample was taken.
    peak_rss_kb: Option<u64>,
}

/// One table row.
struct Row {
    size_mb: u64,
    format: FormatArg,
    script: String,
    input: u64,
    objects: u64,
    result: Result<Measurement, String>,
    floor: Option<Duration>,
    /// The times of the jq filters, in `JQ_FILTERS` order (on `migrate` rows only).
    jq: Vec<Option<Duration>>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("skel-bench: some commands failed (see above and the table)");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("skel-bench: error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Runs the benchmark; `Ok(false)` if some command failed.
fn run(args: &Args) -> Result<bool, String> {
    let skel = skel_path(args)?;
    let jq = if args.no_jq { None } else { jq_version() };
    fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", args.data_dir.display()))?;
    let mut scripts = Vec::new();
    for (name, text) in SCRIPTS {
        let path = args.data_dir.join(format!("bench-{name}.skel"));
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        scripts.push((name, path));
    }

    let mut rows = Vec::new();
    for &size_mb in &args.sizes {
        for &format in &args.formats {
            let trace = ensure_trace(&args.data_dir, size_mb, format)?;
            let out = args.data_dir.join(format!("out-{}.{}", std::process::id(), format.extension()));
            let first = rows.len();
            for (name, script) in &scripts {
                eprintln!("skel-bench: {size_mb} MB {format:?}: skel {name} ...");
                let mut cmd = Command::new(&skel);
                cmd.arg("apply").arg(script).arg(&trace.path).arg("-o").arg(&out).arg("-q");
                let result = measure(args.runs, &out, || {
                    cmd.stdout(Stdio::null());
                    run_child(&mut cmd, "skel", None, &[0])
                });
                rows.push(Row {
                    size_mb,
                    format,
                    script: (*name).to_string(),
                    input: trace.bytes,
                    objects: trace.objects,
                    result,
                    floor: None,
                    jq: Vec::new(),
                });
            }
            eprintln!("skel-bench: {size_mb} MB {format:?}: skel check {CHECK_VERSION} ...");
            let mut cmd = Command::new(&skel);
            cmd.arg("check").arg(&trace.path).arg("--target-version").arg(CHECK_VERSION);
            // Exit code 1: the report has errors (the traces hold APIs 1.25 removed).
            let result = measure(args.runs, &out, || {
                cmd.stdout(Stdio::null());
                run_child(&mut cmd, "skel", None, &[0, 1])
            });
            rows.push(Row {
                size_mb,
                format,
                script: format!("check {CHECK_VERSION}"),
                input: trace.bytes,
                objects: trace.objects,
                result,
                floor: None,
                jq: Vec::new(),
            });
            let mut jq_times = Vec::new();
            if jq.is_some() && format == FormatArg::Json && size_mb <= args.jq_max_mb {
                for (name, filter) in JQ_FILTERS {
                    eprintln!("skel-bench: {size_mb} MB {format:?}: {name} ...");
                    let result = measure(args.runs, &out, || {
                        let mut cmd = Command::new("jq");
                        cmd.arg("-c").arg(filter).arg(&trace.path);
                        run_child(&mut cmd, "jq", Some(&out), &[0])
                    });
                    jq_times.push(result.as_ref().ok().map(|m| m.time));
                    rows.push(Row {
                        size_mb,
                        format,
                        script: name.into(),
                        input: trace.bytes,
                        objects: trace.objects,
                        result,
                        floor: None,
                        jq: Vec::new(),
                    });
                }
            }
            let floor = rows.get(first).and_then(|r| r.result.as_ref().ok()).map(|m| m.time);
            for row in rows.iter_mut().skip(first) {
                row.floor = floor;
                if row.script == "migrate" {
                    row.jq.clone_from(&jq_times);
                }
            }
        }
    }

    let mut repl = Vec::new();
    for &size_mb in args.sizes.iter().filter(|&&s| s <= args.repl_max_mb) {
        for &format in &args.formats {
            let trace = ensure_trace(&args.data_dir, size_mb, format)?;
            let floor = rows
                .iter()
                .find(|r| r.size_mb == size_mb && r.format == format && r.script == "floor")
                .and_then(|r| r.result.as_ref().ok())
                .map(|m| m.time);
            repl.extend(repl_rows(args, &skel, &trace, size_mb, format, floor));
        }
    }

    print!("{}", header(args, &skel, jq.as_deref()));
    print!("{}", table(&rows));
    if !repl.is_empty() {
        println!();
        print!("{}", repl_table(&repl));
    }
    let failures: Vec<&Row> = rows.iter().filter(|r| r.result.is_err()).collect();
    let repl_failures: Vec<&ReplRow> = repl.iter().filter(|r| r.result.is_err()).collect();
    if !failures.is_empty() || !repl_failures.is_empty() {
        println!();
        for row in &failures {
            if let Err(e) = &row.result {
                println!("- {} MB {:?} {}: {e}", row.size_mb, row.format, row.script);
            }
        }
        for row in &repl_failures {
            if let Err(e) = &row.result {
                println!("- {} MB {:?} repl {}: {e}", row.size_mb, row.format, row.session);
            }
        }
    }
    Ok(failures.is_empty() && repl_failures.is_empty())
}

/// `--skel`, or the `skel` next to this executable; it must exist.
fn skel_path(args: &Args) -> Result<PathBuf, String> {
    let path = match &args.skel {
        Some(path) => path.clone(),
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable's path: {e}"))?;
            exe.with_file_name(format!("skel{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no skel binary at {}: build it with `cargo build --release` or pass `--skel PATH`",
            path.display()
        ))
    }
}

/// `jq --version`, if jq runs.
fn jq_version() -> Option<String> {
    let out = Command::new("jq").arg("--version").stdin(Stdio::null()).output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success().then_some(version)
}

/// The trace of `size_mb` MB in `format`: generated unless a file of that name is there.
fn ensure_trace(dir: &Path, size_mb: u64, format: FormatArg) -> Result<TraceFile, String> {
    let path = dir.join(format!("trace-{size_mb}mb-seed{SEED}.{}", format.extension()));
    let stats_path = path.with_extension(format!("{}.stats", format.extension()));
    if path.is_file() {
        let bytes = fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
        let objects = match read_stats(&stats_path) {
            Some(stats) if stats.bytes == bytes => stats.objects,
            _ => {
                eprintln!("skel-bench: counting the objects of {} ...", path.display());
                let stats = count_objects(&path, format.format(), bytes)?;
                write_stats(&stats_path, &stats);
                stats.objects
            }
        };
        return Ok(TraceFile { path, bytes, objects });
    }
    eprintln!("skel-bench: generating {} ...", path.display());
    let started = Instant::now();
    let partial = path.with_extension(format!("{}.partial", format.extension()));
    let file = File::create(&partial).map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let stats = synth::write_trace(file, format.format(), SEED, size_mb.saturating_mul(1_000_000)).map_err(|e| {
        let _ = fs::remove_file(&partial);
        format!("cannot generate {}: {e}", partial.display())
    })?;
    fs::rename(&partial, &path)
        .map_err(|e| format!("cannot rename {} to {}: {e}", partial.display(), path.display()))?;
    write_stats(&stats_path, &stats);
    eprintln!(
        "skel-bench: wrote {} events, {} objects, {} bytes in {:.1} s",
        stats.events,
        stats.objects,
        stats.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(TraceFile { path, bytes: stats.bytes, objects: stats.objects })
}

/// The `events objects bytes` saved next to a generated trace.
fn read_stats(path: &Path) -> Option<SynthStats> {
    let text = fs::read_to_string(path).ok()?;
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().ok());
    let (events, objects, bytes) = (numbers.next()??, numbers.next()??, numbers.next()??);
    Some(SynthStats { events, objects, bytes })
}

fn write_stats(path: &Path, stats: &SynthStats) {
    let text = format!("{} {} {}\n", stats.events, stats.objects, stats.bytes);
    if let Err(e) = fs::write(path, text) {
        eprintln!("skel-bench: warning: cannot write {}: {e}", path.display());
    }
}

/// Counts the events and objects of a trace file by streaming it.
fn count_objects(path: &Path, format: Format, bytes: u64) -> Result<SynthStats, String> {
    struct Counter(SynthStats);
    impl TraceVisitor for Counter {
        type Error = Infallible;
        fn section(&mut self, _: Section) -> Result<(), Infallible> {
            Ok(())
        }
        fn event(&mut self, _: usize, event: Event) -> Result<(), Infallible> {
            self.0.events += 1;
            self.0.objects += (event.applied_objs.len() + event.deleted_objs.len()) as u64;
            Ok(())
        }
    }
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut counter = Counter(SynthStats { bytes, ..SynthStats::default() });
    match read_trace(file, format, &mut counter) {
        Ok(()) => Ok(counter.0),
        Err(ReadError::Trace(e)) => {
            Err(format!("{} is not a valid trace ({e}); delete it to have it generated again", path.display()))
        }
        Err(ReadError::Visitor(never)) => match never {},
    }
}

/// Runs `once` `runs` times, deleting `out` after each; the best time and largest peak RSS.
fn measure(
    runs: u32,
    out: &Path,
    mut once: impl FnMut() -> Result<(Duration, Option<u64>), String>,
) -> Result<Measurement, String> {
    let mut best: Option<Measurement> = None;
    for _ in 0..runs {
        let result = once();
        // The output only has to exist for the command; it is not checked.
        let _ = fs::remove_file(out);
        let (time, rss) = result?;
        best = Some(match best {
            None => Measurement { time, peak_rss_kb: rss },
            Some(b) => Measurement { time: b.time.min(time), peak_rss_kb: b.peak_rss_kb.max(rss) },
        });
    }
    best.ok_or_else(|| "no runs".to_string())
}

/// Runs a command to completion (stdout to `stdout_to`, or as set up), sampling its peak RSS.
/// Returns its wall time and peak RSS in kB; an error if it cannot start or fails (exits with a
/// code not in `ok`).
fn run_child(
    cmd: &mut Command,
    name: &str,
    stdout_to: Option<&Path>,
    ok: &[i32],
) -> Result<(Duration, Option<u64>), String> {
    run_child_with_input(cmd, name, stdout_to, None, ok)
}

/// `run_child`, with stdin read from `stdin_from` (else empty).
fn run_child_with_input(
    cmd: &mut Command,
    name: &str,
    stdout_to: Option<&Path>,
    stdin_from: Option<&Path>,
    ok: &[i32],
) -> Result<(Duration, Option<u64>), String> {
    if let Some(path) = stdout_to {
        let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        cmd.stdout(file);
    }
    match stdin_from {
        Some(path) => cmd.stdin(File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?),
        None => cmd.stdin(Stdio::null()),
    };
    cmd.stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {name}: {e}"))?;
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, name) = (Arc::clone(&done), name.to_string());
        thread::spawn(move || {
            let mut peak = None;
            while !done.load(Ordering::Acquire) {
                peak = peak.max(vm_hwm_kb(pid, &name));
                thread::sleep(SAMPLE_EVERY);
            }
            peak
        })
    };
    // Read stderr while waiting, so a chatty child cannot block on a full pipe.
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = BufReader::new(&mut pipe).read_to_string(&mut stderr);
    }
    let status = child.wait();
    let elapsed = started.elapsed();
    done.store(true, Ordering::Release);
    let peak = sampler.join().unwrap_or(None);
    let status = status.map_err(|e| format!("cannot wait for {name}: {e}"))?;
    if !status.code().is_some_and(|code| ok.contains(&code)) {
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{name} failed ({status}): {}", tail.join(" | ")));
    }
    Ok((elapsed, peak))
}

/// `VmHWM` of process `pid` in kB, if it is still running the program `name`.
fn vm_hwm_kb(pid: u32, name: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut lines = status.lines();
    // The kernel keeps the first 15 bytes of the program name; a different name means the pid
    // was reused after the child exited.
    let comm = lines.next()?.strip_prefix("Name:")?.trim();
    if !name.starts_with(comm) {
        return None;
    }
    let line = lines.find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()
}

// ------------------------------------------------------------------------------ the REPL

/// What a REPL session is held to (issue 16's targets), against the floor's time measured in
/// the same run.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The session's whole time at most this many floors (opening the trace included).
    Total(f64),
    /// The time past opening the trace (per statement when the session has several) at most
    /// this many floors.
    Step(f64),
    /// Peak RSS at most this fraction of the trace's size, and `:write` the bytes `skel apply`
    /// of the `:save`d script writes.
    Memory(f64),
    /// None: the time of opening alone, which the steps are measured from.
    Baseline,
}

/// One REPL session: what is typed into `skel repl TRACE`, piped.
struct Session {
    name: &'static str,
    input: String,
    /// The statements it applies (a step's time is divided among them).
    statements: u32,
    target: Target,
}

/// One row of the REPL table.
struct ReplRow {
    size_mb: u64,
    format: FormatArg,
    session: &'static str,
    input: u64,
    result: Result<Measurement, String>,
    /// The step's time: the session's past the `open` session's, per statement.
    step: Option<Duration>,
    floor: Option<Duration>,
    target: Target,
    /// Whether `:write` wrote what `skel apply` of the `:save`d script writes (memory rows).
    same_bytes: Option<bool>,
}

/// The sessions, the `open` baseline first.
fn sessions(out: &Path, saved: &Path) -> Vec<Session> {
    let sanitize_statements = SANITIZE.matches(';').count();
    let five: String = std::iter::once(MIGRATE).chain(SANITIZE.split_inclusive(';').take(4)).collect();
    vec![
        Session { name: "open", input: ":quit\n".into(), statements: 0, target: Target::Baseline },
        Session { name: "open + :stats", input: ":stats\n".into(), statements: 0, target: Target::Total(2.0) },
        Session { name: "migrate", input: format!("{MIGRATE}\n"), statements: 1, target: Target::Step(2.0) },
        Session {
            name: "sanitize, one statement at a time",
            input: format!("{SANITIZE}\n"),
            statements: u32::try_from(sanitize_statements).unwrap_or(1),
            target: Target::Step(2.0),
        },
        Session {
            name: ":match",
            input: ":match kind == \"CronJob\" && apiVersion == \"batch/v1beta1\"\n".into(),
            statements: 1,
            target: Target::Step(1.5),
        },
        Session {
            name: ":get",
            input: ":get spec.schedule where kind == \"CronJob\"\n".into(),
            statements: 1,
            target: Target::Step(1.5),
        },
        Session {
            name: "5 statements, 3 undos, 2 redos, :write",
            input: format!(
                "{five}\n:undo\n:undo\n:undo\n:redo\n:redo\n:write {}\n:save {}\n",
                out.display(),
                saved.display()
            ),
            statements: 5,
            target: Target::Memory(0.5),
        },
    ]
}

/// Runs the REPL sessions on a trace.
fn repl_rows(
    args: &Args,
    skel: &Path,
    trace: &TraceFile,
    size_mb: u64,
    format: FormatArg,
    floor: Option<Duration>,
) -> Vec<ReplRow> {
    let id = std::process::id();
    let out = args.data_dir.join(format!("repl-out-{id}.{}", format.extension()));
    let applied = args.data_dir.join(format!("repl-apply-{id}.{}", format.extension()));
    let saved = args.data_dir.join(format!("repl-saved-{id}.skel"));
    let input = args.data_dir.join(format!("repl-input-{id}.txt"));
    let mut rows: Vec<ReplRow> = Vec::new();
    let mut open: Option<Duration> = None;
    for session in sessions(&out, &saved) {
        eprintln!("skel-bench: {size_mb} MB {format:?}: skel repl, {} ...", session.name);
        let mut same_bytes = None;
        let result = fs::write(&input, &session.input)
            .map_err(|e| format!("cannot write {}: {e}", input.display()))
            .and_then(|()| {
                measure(args.runs, &out, || {
                    let mut cmd = Command::new(skel);
                    cmd.arg("repl").arg(&trace.path).stdout(Stdio::null());
                    let measured = run_child_with_input(&mut cmd, "skel", None, Some(&input), &[0])?;
                    if let Target::Memory(_) = session.target {
                        same_bytes = Some(same_as_apply(skel, &saved, &trace.path, &out, &applied)?);
                    }
                    Ok(measured)
                })
            });
        for file in [&applied, &saved] {
            let _ = fs::remove_file(file);
        }
        let time = result.as_ref().ok().map(|m| m.time);
        if let Target::Baseline = session.target {
            open = time;
        }
        let step = match (time, open, session.target) {
            (Some(t), Some(o), Target::Step(_)) => Some(t.saturating_sub(o) / session.statements.max(1)),
            _ => None,
        };
        rows.push(ReplRow {
            size_mb,
            format,
            session: session.name,
            input: trace.bytes,
            result,
            step,
            floor,
            target: session.target,
            same_bytes,
        });
    }
    let _ = fs::remove_file(&input);
    rows
}

/// Whether `out` (a REPL's `:write`) holds the bytes `skel apply SAVED TRACE` writes.
fn same_as_apply(skel: &Path, saved: &Path, trace: &Path, out: &Path, applied: &Path) -> Result<bool, String> {
    let mut cmd = Command::new(skel);
    cmd.arg("apply").arg(saved).arg(trace).arg("-o").arg(applied).arg("-q").stdout(Stdio::null());
    run_child(&mut cmd, "skel", None, &[0])?;
    let read = |p: &Path| fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    Ok(read(out)? == read(applied)?)
}

/// The REPL's markdown table.
fn repl_table(rows: &[ReplRow]) -> String {
    let mut t = String::new();
    t.push_str(
        "| size | format | skel repl session | time s | step s | step vs floor | peak RSS MB | target | met |\n",
    );
    t.push_str("|---:|---|---|---:|---:|---:|---:|---|---|\n");
    for row in rows {
        let format = match row.format {
            FormatArg::Json => "json",
            FormatArg::Msgpack => "msgpack",
        };
        let ratio = |d: Duration| row.floor.map(|f| d.as_secs_f64() / f.as_secs_f64().max(1e-9));
        let cells = match &row.result {
            Ok(m) => {
                let rss_mb = m.peak_rss_kb.map(|kb| kb as f64 * 1024.0 / MB);
                let step_ratio = row.step.and_then(ratio);
                let (target, met) = match row.target {
                    Target::Baseline => (String::new(), None),
                    Target::Total(x) => (format!("time ≤ {x}× floor"), ratio(m.time).map(|r| r <= x)),
                    Target::Step(x) => (format!("step ≤ {x}× floor"), step_ratio.map(|r| r <= x)),
                    Target::Memory(x) => (
                        format!("RSS ≤ {x}× trace, :write = apply"),
                        rss_mb.map(|mb| mb <= x * row.input as f64 / MB && row.same_bytes == Some(true)),
                    ),
                };
                let same = match row.same_bytes {
                    Some(false) => " (:write differs from apply)",
                    _ => "",
                };
                [
                    format!("{:.3}", m.time.as_secs_f64()),
                    row.step.map_or_else(String::new, |s| format!("{:.3}", s.as_secs_f64())),
                    step_ratio.map_or_else(String::new, |r| format!("{r:.2}")),
                    rss_mb.map_or_else(|| "n/a".into(), |mb| format!("{mb:.1}")),
                    target,
                    met.map_or_else(String::new, |ok| format!("{}{same}", if ok { "yes" } else { "no" })),
                ]
            }
            Err(_) => ["failed".into(), String::new(), String::new(), String::new(), String::new(), String::new()],
        };
        let _ = writeln!(t, "| {} MB | {format} | {} | {} |", row.size_mb, row.session, cells.join(" | "));
    }
    t
}

/// The header: date, machine, commands and how to read the table.
fn header(args: &Args, skel: &Path, jq: Option<&str>) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let cores = thread::available_parallelism().map_or_else(|_| "?".to_string(), |n| n.to_string());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
        let kb: f64 = line.trim_start_matches("MemTotal:").trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(format!(", {:.0} GB RAM", kb * 1024.0 / 1e9))
    });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| format!(", Linux {}", s.trim()));
    // Other processes skew the times: say how busy the machine was.
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(|one| format!(", load average {one} at the end")));
    let jq_line = match (jq, args.no_jq) {
        (_, true) => "jq: not run (--no-jq)".to_string(),
        (None, false) => "jq: not found on PATH, not run".to_string(),
        (Some(version), false) => {
            let mut line = format!("{version}, on JSON traces up to {} MB (`--jq-max-mb`):", args.jq_max_mb);
            for (name, filter) in JQ_FILTERS {
                let _ = write!(line, "\n  - {name}: `jq -c '{filter}' TRACE.json > OUT.json`");
            }
            line
        }
    };
    let mut h = String::new();
    let _ = writeln!(h, "## skel-bench, {}", synth::rfc3339(i64::try_from(now).unwrap_or(0)));
    let _ = writeln!(h);
    let _ = writeln!(
        h,
        "- machine: {cores} cores, {cpu}{}{}{}",
        mem.unwrap_or_default(),
        kernel.unwrap_or_default(),
        load.unwrap_or_default()
    );
    let _ = writeln!(h, "- skel: `{} apply SCRIPT TRACE -o OUT -q` (OUT in the input's format)", skel.display());
    let _ = writeln!(h, "- scripts: floor = empty script; migrate = `{MIGRATE}`; sanitize = examples/sanitize.skel");
    let _ = writeln!(
        h,
        "- check {CHECK_VERSION}: `{} check TRACE --target-version {CHECK_VERSION} > /dev/null` (the text report; exit 1 on its errors)",
        skel.display()
    );
    let _ = writeln!(h, "- {jq_line}");
    if args.repl_max_mb > 0 {
        let _ = writeln!(
            h,
            "- skel repl (traces up to {} MB, `--repl-max-mb`): each session piped into `{} repl TRACE`, its \
             answers to /dev/null; step = the session's time past the `open` session's (per statement when it \
             applies several), compared with the floor; targets are issue 16's",
            args.repl_max_mb,
            skel.display()
        );
    }
    let _ = writeln!(
        h,
        "- traces: synthetic (skel_trace::synth, seed {SEED}) in {}; best of {} run(s); MB = 10^6 bytes",
        args.data_dir.display(),
        args.runs
    );
    let _ = writeln!(
        h,
        "- peak RSS: largest VmHWM sampled every {} ms from /proc/<pid>/status; vs floor: time / the empty \
         script's time; vs jq (on migrate): jq's time / skel's time, for each jq filter (paths / map)",
        SAMPLE_EVERY.as_millis()
    );
    let _ = writeln!(h);
    h
}

/// The markdown table.
fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    t.push_str("| size | format | script | time s | MB/s | objects/s | peak RSS MB | vs floor | vs jq |\n");
    t.push_str("|---:|---|---|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let format = match row.format {
            FormatArg::Json => "json",
            FormatArg::Msgpack => "msgpack",
        };
        let size = format!("{} MB", row.size_mb);
        let cells = match &row.result {
            Ok(m) => {
                let secs = m.time.as_secs_f64().max(1e-9);
                let rss = m.peak_rss_kb.map_or_else(|| "n/a".into(), |kb| format!("{:.1}", kb as f64 * 1024.0 / MB));
                let floor =
                    row.floor.map_or_else(|| "n/a".into(), |f| format!("{:.2}", secs / f.as_secs_f64().max(1e-9)));
                let jq: Vec<String> = row
                    .jq
                    .iter()
                    .map(|j| j.map_or_else(|| "n/a".into(), |j| format!("{:.1}×", j.as_secs_f64() / secs)))
                    .collect();
                let jq = jq.join(" / ");
                [
                    format!("{secs:.3}"),
                    format!("{:.1}", row.input as f64 / MB / secs),
                    format!("{:.0}", row.objects as f64 / secs),
                    rss,
                    floor,
                    jq,
                ]
            }
            Err(_) => ["failed".into(), String::new(), String::new(), String::new(), String::new(), String::new()],
        };
        let _ = writeln!(t, "| {size} | {format} | {} | {} |", row.script, cells.join(" | "));
    }
    t
}
