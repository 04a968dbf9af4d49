//! `skel run`: replay a trace (rewritten on the way by `--script`) onto a Kubernetes (KWOK)
//! cluster, or print the plan with `--dry-run`. Exit codes: 0 every object replayed, 1 an
//! error in the script or trace, a preflight refusal, or any object failed, 2 a usage error,
//! 130 stopped by Ctrl-C.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use indicatif::{ProgressBar, ProgressStyle};
use miette::Diagnostic;
use serde_json::Value;
use skel::upgrade::KubeVersion;
use skel_runner::api::Gvk;
use skel_runner::lifecycle::{self, Lifecycles};
use skel_runner::time::{clock, parse_offset, parse_speed};
use skel_runner::{
    builtin, mpsc, Cluster, Connection, DryRun, Ending, Failure, KubeCluster, ObjectFailure, Observer, Outcome, Phase,
    Progress, ReplayError, ReplaySummary, RunOptions, Speed, Step, Survey, Verb,
};
use skel_trace::{fsio, Event, Format};
use thiserror::Error;

use super::apply::{self, Script, TraceInputError};
use super::files::{self, FileError};
use super::report::Reporter;
use super::run_report::{self, Recorder, Tee};
use super::{signals, Exit, Failed};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The trace to replay: JSON or SimKube msgpack (`.sktrace`).
    pub trace: PathBuf,
    /// A SKEL script to rewrite the trace with first (as `skel apply` would; the trace file is
    /// not changed).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// The kubeconfig to use (default: `$KUBECONFIG`, then `~/.kube/config`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Trace seconds per second: `10` replays ten times as fast; `max` does not wait.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    pub speed: Speed,
    /// Start at this time into the trace (`90s`, `5m`, `1h30m`); what came before is applied at
    /// once, as the state it leaves.
    #[arg(long, value_parser = parse_offset)]
    pub from: Option<f64>,
    /// Stop after this time into the trace.
    #[arg(long, value_parser = parse_offset)]
    pub until: Option<f64>,
    /// Prefix of the namespaces the trace's objects go to (`default` becomes `virtual-default`).
    #[arg(long, default_value = "virtual-")]
    pub namespace_prefix: String,
    /// Create this many KWOK nodes for the pods to land on (deleted at the end), at most 10000.
    #[arg(long, default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_VIRTUAL_NODES))]
    pub virtual_nodes: usize,
    /// A Node manifest (YAML or JSON) for the virtual nodes: labels, taints, allocatable.
    #[arg(long, requires = "virtual_nodes")]
    pub node_template: Option<PathBuf>,
    /// Leave the run's namespaces and virtual nodes on the cluster at the end.
    #[arg(long)]
    pub keep: bool,
    /// Stop at the first object that fails (the clean-up still runs).
    #[arg(long)]
    pub fail_fast: bool,
    /// Print the plan and check it against `--server-version`; no cluster is needed.
    #[arg(long)]
    pub dry_run: bool,
    /// The Kubernetes version a dry run checks against (default: the newest the table knows).
    #[arg(long, requires = "dry_run")]
    pub server_version: Option<String>,
    /// Requests in flight at once within an event, 1 to 256.
    #[arg(short, long, default_value_t = 8, value_parser = super::jobs_parser())]
    pub jobs: usize,
    /// How long one request may take (`30s`); failed requests are retried with backoff.
    #[arg(long, default_value = "30s", value_parser = parse_offset)]
    pub timeout: f64,
    /// Print no progress or summary; failures and errors still go to stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Install SimKube-compatible KWOK pod stages for the run (they complete the pods whose
    /// trace lifecycle ends); the clean-up puts the cluster's own back.
    #[arg(long)]
    pub install_stages: bool,
    /// How `--dry-run` prints the plan: `json` is one document for scripts (docs/run.md).
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Write a JSON report of the run (each event and object, the pods' lifecycles, the timing
    /// drift, the clean-up, the exit code) to this file, also after a failure.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
}

/// `--format`: the dry run's plan as text lines or as one JSON document.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
}

/// The most `--virtual-nodes`: a simulated cluster, not a node per pod (each node is requests
/// to create and delete it, and a line of the `--dry-run` plan).
const MAX_VIRTUAL_NODES: u64 = 10_000;

#[derive(Debug, Error, Diagnostic)]
pub enum RunUsageError {
    #[error("`skel run` needs a trace file, not stdin")]
    #[diagnostic(
        code(skel::usage::run_stdin),
        help("it reads the trace twice (preflight, then replay); save it to a file")
    )]
    Stdin,
    #[error("{}", if prefix.is_empty() { "the namespace prefix cannot be empty".to_string() } else { format!("`{prefix}` cannot be the namespace prefix") })]
    #[diagnostic(
        code(skel::usage::namespace_prefix),
        help("the prefix keeps the replay apart from the cluster's own namespaces: lowercase letters, digits and `-`, starting with a letter or digit, e.g. `--namespace-prefix sim-`")
    )]
    Prefix { prefix: String },
    #[error("`--from` ({from}) is after `--until` ({until})")]
    #[diagnostic(code(skel::usage::time_range), help("`--from` is where the replay starts, `--until` where it ends"))]
    Range { from: String, until: String },
    #[error("`{text}` is not a Kubernetes version the built-in table knows")]
    #[diagnostic(
        code(skel::usage::server_version),
        help("write a minor version from 1.{oldest} to 1.{newest}, e.g. `--server-version 1.25`")
    )]
    ServerVersion { text: String, oldest: u32, newest: u32 },
    #[error("`--node-template` without `--virtual-nodes`")]
    #[diagnostic(code(skel::usage::node_template), help("say how many nodes to make, e.g. `--virtual-nodes 5`"))]
    TemplateWithoutNodes,
    #[error("`{path}` is not a Node manifest: {reason}")]
    #[diagnostic(
        code(skel::run::node_template),
        help("give one YAML or JSON object, e.g. a `kubectl get node NAME -o yaml`")
    )]
    NodeTemplate { path: String, reason: String },
    #[error("`--format json` without `--dry-run`")]
    #[diagnostic(
        code(skel::usage::run_format),
        help("`--format json` prints the plan of a dry run; for what a real run did, write a report with `--report FILE.json`")
    )]
    FormatWithoutDryRun,
}

/// Objects the cluster refused, listed.
#[derive(Debug, Error, Diagnostic)]
#[error("{}", failed_message(.failed, .failures))]
#[diagnostic(code(skel::run::objects_failed), help("{help}"))]
pub struct ObjectsFailed {
    failed: u64,
    failures: Vec<ObjectFailure>,
    help: String,
}

/// How many failures the final diagnostic lists.
const LISTED: usize = 20;

fn failure_line(verb: Verb, gvk: &Gvk, target: &str, f: &Failure) -> String {
    let status = match f.code {
        Some(code) => format!("{code} {}", f.reason),
        None => f.reason.clone(),
    };
    let tries = if f.attempts > 1 { format!(" (after {} tries)", f.attempts) } else { String::new() };
    format!("{} {gvk} {target}: {status}: {}{tries}", verb.name(), f.message)
}

fn failed_message(failed: &u64, failures: &[ObjectFailure]) -> String {
    let mut out = format!("{failed} object{} failed", if *failed == 1 { "" } else { "s" });
    for f in failures.iter().take(LISTED) {
        out.push_str("\n  - ");
        out.push_str(&failure_line(f.verb, &f.gvk, &f.target, &f.failure));
    }
    if *failed as usize > LISTED.min(failures.len()) {
        out.push_str(&format!("\n  ... and {} more", *failed as usize - LISTED.min(failures.len())));
    }
    out
}

fn failed_help(failures: &[ObjectFailure]) -> String {
    let has = |reason: &str| failures.iter().any(|f| f.failure.reason == reason);
    if has("Invalid") || has("BadRequest") {
        "the API server rejected some manifests: fix them in the trace with a SKEL `--script`".into()
    } else if has("Forbidden") {
        "the user lacks permissions for some objects; `kubectl auth can-i` checks them".into()
    } else if has("Timeout") || has("ConnectionError") {
        "the cluster stopped answering; try a longer `--timeout`, fewer `--jobs` or a lower `--speed`".into()
    } else {
        "each line gives the API server's reason; `--fail-fast` stops at the first".into()
    }
}

pub fn run(args: RunArgs, reporter: &Reporter) -> Result<(), Failed> {
    let usage = Failed::usage::<RunUsageError>;
    if args.trace == Path::new("-") {
        return Err(usage(RunUsageError::Stdin));
    }
    let prefix_ok = !args.namespace_prefix.is_empty()
        && args.namespace_prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && args.namespace_prefix.chars().next().is_none_or(|c| c.is_ascii_alphanumeric());
    if !prefix_ok {
        return Err(usage(RunUsageError::Prefix { prefix: args.namespace_prefix.clone() }));
    }
    if let (Some(from), Some(until)) = (args.from, args.until) {
        if from > until {
            return Err(usage(RunUsageError::Range { from: clock(from), until: clock(until) }));
        }
    }
    let dry_version = match (&args.server_version, args.dry_run) {
        (Some(text), _) => match KubeVersion::parse(text) {
            Some(v) if v.major == 1 && (builtin::OLDEST..=builtin::NEWEST).contains(&v.minor) => Some(v),
            _ => {
                return Err(usage(RunUsageError::ServerVersion {
                    text: text.clone(),
                    oldest: builtin::OLDEST,
                    newest: builtin::NEWEST,
                }))
            }
        },
        (None, true) => Some(KubeVersion { major: 1, minor: builtin::NEWEST }),
        (None, false) => None,
    };
    if args.format == PlanFormat::Json && !args.dry_run {
        return Err(usage(RunUsageError::FormatWithoutDryRun));
    }
    if args.node_template.is_some() && args.virtual_nodes == 0 {
        return Err(usage(RunUsageError::TemplateWithoutNodes));
    }
    let node_template = match &args.node_template {
        Some(path) => Some(read_node_template(path).map_err(usage)?),
        None => None,
    };

    // A report that cannot be written is said before anything is sent.
    let report = match &args.report {
        Some(path) => Some(files::Output::create(Some(path))?),
        None => None,
    };
    let mut facts = Facts { run_id: run_id(), ..Facts::default() };
    let result = execute(&args, reporter, dry_version, node_template, &mut facts);
    let Some(output) = report else { return result };
    let trace_name = files::display(&args.trace);
    let script_name = args.script.as_deref().map(files::display);
    let report = run_report::report_json(&run_report::RunFacts {
        trace: &trace_name,
        script: script_name.as_deref(),
        dry_run: args.dry_run,
        run_id: &facts.run_id,
        namespace_prefix: &args.namespace_prefix,
        speed: if args.dry_run { Speed::Max } else { args.speed },
        from: args.from,
        until: args.until,
        keep: args.keep,
        survey: facts.survey.as_ref(),
        recorder: facts.recorder.as_ref(),
        summary: facts.summary.as_ref(),
        exit_code: result.as_ref().err().map_or(0, |f| f.exit.code()),
        error: result.as_ref().err().map_or(Value::Null, run_report::error_json),
    });
    let name = args.report.as_deref().map_or_else(String::new, files::display);
    let written = output.file().and_then(|mut f| {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        writeln!(f, "{text}")
            .and_then(|()| f.flush())
            .map_err(|e| FileError::Write { path: name, reason: files::reason(&e) }.into())
            .and_then(|()| {
                drop(f);
                output.commit()
            })
    });
    match (result, written) {
        (result, Ok(())) => result,
        (Ok(()), Err(e)) => Err(e),
        // The run's own failure is the one to exit with; the report's is said too.
        (Err(failed), Err(e)) => {
            if let Some(r) = &e.report {
                reporter.report(r);
            }
            Err(failed)
        }
    }
}

/// What a run found and did, for its report (each part as far as the run got).
#[derive(Default)]
struct Facts {
    run_id: String,
    survey: Option<Survey>,
    recorder: Option<Recorder>,
    summary: Option<ReplaySummary>,
}

/// The run after its arguments were checked: the rewrite, the survey, the replay (or the plan).
fn execute(
    args: &RunArgs,
    reporter: &Reporter,
    dry_version: Option<KubeVersion>,
    node_template: Option<Value>,
    facts: &mut Facts,
) -> Result<(), Failed> {
    // With a script, the survey and the replay read the rewritten trace from a temp file (the
    // rewrite reads the trace once, streamed from its store if it is in one). Without, a trace
    // in an object store, read twice, is downloaded once, to a temp file.
    let (rewritten, downloaded) = match &args.script {
        Some(script) => (Some(rewrite(script, args, reporter)?), None),
        None => match super::remote::locate(&args.trace).map_err(FileError::from)? {
            super::remote::Location::Remote(remote) => (None, Some(remote.download().map_err(FileError::from)?)),
            super::remote::Location::Local(_) => (None, None),
        },
    };
    let trace_path = rewritten.as_ref().or(downloaded.as_ref()).map_or(args.trace.as_path(), |(t, _)| t.path());
    let trace_name = files::display(&args.trace);

    let survey = facts.survey.insert(survey(trace_path, &trace_name)?);
    let survey = &*survey;
    let opts = RunOptions {
        naming: skel_runner::plan::Naming {
            namespace_prefix: args.namespace_prefix.clone(),
            run_id: facts.run_id.clone(),
        },
        speed: if args.dry_run { Speed::Max } else { args.speed },
        from: args.from,
        until: args.until,
        virtual_nodes: args.virtual_nodes,
        node_template,
        keep: args.keep,
        fail_fast: args.fail_fast,
        jobs: args.jobs,
        templates: skel_runner::plan::PodTemplates::new(survey.config.as_ref()),
        install_stages: args.install_stages,
        cleanup_wait: skel_runner::CLEANUP_WAIT,
    };
    let stop = Arc::new(AtomicBool::new(false));
    if !args.dry_run {
        interrupt_handler(stop.clone());
    }

    let (tx, rx) = mpsc::channel::<Event>(64);
    let path = trace_path.to_path_buf();
    let reader = std::thread::spawn(move || {
        let input = files::open_trace(&path, None)?;
        // An event that cannot be sent: the replay stopped early and dropped the receiver.
        match skel_trace::read_events(input.reader, input.format, |_, event| tx.blocking_send(event)) {
            Ok(()) | Err(skel_trace::ReadError::Visitor(_)) => Ok(()),
            Err(skel_trace::ReadError::Trace(e)) => {
                Err(Failed::error(TraceInputError { file: files::display(&path), inner: e }))
            }
        }
    });

    let connection = Connection {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        timeout: Some(Duration::from_secs_f64(args.timeout.max(0.001))),
        retry: Default::default(),
    };
    // The JSON plan and the report need every step; the text plan and the progress do not.
    let json = args.format == PlanFormat::Json;
    let mut recorder = (json || args.report.is_some()).then(|| Recorder::new(opts.speed, args.from));
    let outcome = skel_runner::block_on(async {
        match dry_version {
            Some(version) => {
                let cluster = DryRun::new(version);
                // The JSON plan has them in its own form.
                let lifecycles = if json { Vec::new() } else { lifecycle_lines(survey, args.speed) };
                let mut plan = Plan { out: std::io::stdout().lock(), total: survey.events, lifecycles, quiet: json };
                let mut tee = Tee { first: &mut plan, recorder: recorder.as_mut() };
                let result = skel_runner::replay(&cluster, survey, rx, &opts, &stop, &mut tee).await;
                let assumed: Vec<String> = cluster.assumed().iter().map(ToString::to_string).collect();
                for gvk in &assumed {
                    eprintln!("skel run: {gvk} is not a built-in kind; assumed a namespaced custom resource");
                }
                if let Some(r) = recorder.as_mut() {
                    r.cluster = Some(cluster.describe());
                }
                if let (true, Some(r)) = (json, recorder.as_ref()) {
                    let doc = run_report::plan_json(&run_report::PlanFacts {
                        trace: &trace_name,
                        survey,
                        speed: args.speed,
                        namespace_prefix: &args.namespace_prefix,
                        version,
                        recorder: r,
                        summary: result.as_ref().ok(),
                        error: result.as_ref().err(),
                        assumed,
                    });
                    let mut out = std::io::stdout().lock();
                    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
                    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
                }
                result
            }
            None => {
                let cluster = KubeCluster::connect(&connection).await?;
                let mut display = Display::new(args.quiet, survey.events, cluster.describe());
                if let Some(r) = recorder.as_mut() {
                    r.cluster = Some(cluster.describe());
                }
                let mut tee = Tee { first: &mut display, recorder: recorder.as_mut() };
                let result = skel_runner::replay(&cluster, survey, rx, &opts, &stop, &mut tee).await;
                display.finish();
                result
            }
        }
    });
    // A refusal names the version it checked against, though the replay never started.
    if let (Some(r), Ok(Err(ReplayError::Unserved(u)))) = (recorder.as_mut(), &outcome) {
        r.version.get_or_insert(u.version);
    }
    if let (Some(r), Some(v)) = (recorder.as_mut(), dry_version) {
        r.version.get_or_insert(v);
    }
    facts.recorder = recorder;
    let read = reader.join().unwrap_or(Err(Failed::silent(Exit::Error)));
    drop(rewritten);
    // When the replay failed and the trace went wrong as well (while the replay went on), the
    // trace's error is said first.
    let and_read = |failed: Failed| {
        if let Some(report) = read.as_ref().err().and_then(|f| f.report.as_ref()) {
            reporter.report(report);
        }
        failed
    };
    let summary = match outcome {
        Ok(Ok(summary)) => summary,
        Ok(Err(e)) => return Err(and_read(Failed::error(e))),
        Err(e) => {
            return Err(and_read(FileError::Write { path: "the runtime".into(), reason: files::reason(&e) }.into()))
        }
    };
    let summary = facts.summary.insert(summary);
    read?;
    if !args.quiet || summary.progress.failed > 0 {
        eprintln!("{}", summary_line(summary, args, survey));
    }
    if summary.progress.failed > 0 {
        let failed = summary.progress.failed;
        let help = failed_help(&summary.failures);
        return Err(Failed::error(ObjectsFailed { failed, failures: summary.failures.clone(), help }));
    }
    match summary.ending {
        Ending::Interrupted => Err(Failed::silent(Exit::Interrupted)),
        _ => Ok(()),
    }
}

/// The plan's lines about the pods' lifecycles, at the speed a real run would go.
fn lifecycle_lines(survey: &Survey, speed: Speed) -> Vec<String> {
    let lifecycles = Lifecycles::new(&survey.lifecycles);
    lifecycles.owners().map(|(owner, list)| lifecycle::describe(owner, list, speed)).collect()
}

/// Ctrl-C once: stop after the requests in flight, then clean up. Twice: quit at once.
fn interrupt_handler(stop: Arc<AtomicBool>) {
    let presses = AtomicUsize::new(0);
    signals::on_interrupt(move || {
        if presses.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("\nskel run: stopped; the run's namespaces and nodes are left on the cluster");
            signals::exit(130);
        }
        stop.store(true, Ordering::SeqCst);
        eprintln!("\nskel run: stopping after the requests in flight, then cleaning up (Ctrl-C again to quit now)");
    });
}

/// A run id for the `skel/run` label: the start time and the process, unique enough.
fn run_id() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{secs}-{}", std::process::id())
}

fn read_node_template(path: &Path) -> Result<Value, RunUsageError> {
    let name = files::display(path);
    let text = files::read_text(path, fsio::SOURCE_LIMIT)
        .map_err(|reason| RunUsageError::NodeTemplate { path: name.clone(), reason })?;
    // As every YAML file skel reads: a byte-order mark skipped, flow nesting bounded.
    let yaml =
        skel::upgrade::yaml_text(&text).map_err(|reason| RunUsageError::NodeTemplate { path: name.clone(), reason })?;
    let value: Value = serde_yaml::from_str(yaml)
        .map_err(|e| RunUsageError::NodeTemplate { path: name.clone(), reason: e.to_string() })?;
    match value.get("kind").and_then(Value::as_str) {
        _ if !value.is_object() => Err(RunUsageError::NodeTemplate { path: name, reason: "not an object".into() }),
        Some("Node") | None => Ok(value),
        Some(other) => Err(RunUsageError::NodeTemplate { path: name, reason: format!("its kind is `{other}`") }),
    }
}

/// Applies the script to the trace into a temp file (msgpack: the fastest to read back), on the
/// list a signal removes.
fn rewrite(
    script_path: &Path,
    args: &RunArgs,
    reporter: &Reporter,
) -> Result<(tempfile::NamedTempFile, signals::Registered), Failed> {
    let (script_name, src, program) = apply::compile_script(script_path, skel::OptLevel::Full, args.quiet, reporter)?;
    let input = files::open_trace(&args.trace, None)?;
    let temp = tempfile::Builder::new()
        .prefix("skel-run-")
        .suffix(".sktrace")
        .tempfile()
        .map_err(|e| FileError::Write { path: "a temp file".into(), reason: files::reason(&e) })?;
    let registered = signals::register(temp.path());
    let out =
        temp.reopen().map_err(|e| FileError::Write { path: files::display(temp.path()), reason: files::reason(&e) })?;
    let script = Script { name: &script_name, src: &src, program: &program };
    let summary = apply::rewrite(
        &script,
        input,
        &args.trace,
        out,
        Format::Msgpack,
        apply::How { quiet: args.quiet, ..Default::default() },
    )?;
    if !args.quiet {
        eprintln!("{}", apply::summary_line(&summary, 0.0).replace("; 0.00s", ""));
    }
    Ok((temp, registered))
}

/// The first pass: what the preflight checks, the trace's config and pod lifecycles.
fn survey(path: &Path, name: &str) -> Result<Survey, Failed> {
    let input = files::open_trace(path, None)?;
    let mut survey = Survey::default();
    match skel_trace::read_trace(input.reader, input.format, &mut survey) {
        Ok(()) => Ok(survey),
        Err(skel_trace::ReadError::Trace(e)) => Err(apply::trace_failed(e, name)),
        Err(skel_trace::ReadError::Visitor(never)) => match never {},
    }
}

fn phase_clock(phase: Phase, offset: f64) -> String {
    match phase {
        Phase::Setup => "setup".into(),
        Phase::Cleanup => "cleanup".into(),
        Phase::Event(_) | Phase::Catchup => clock(offset),
    }
}

/// `--dry-run`: the pods' lifecycles, then one line per request, on stdout (nothing with
/// `--format json`, which prints the whole plan at the end).
struct Plan<W: Write> {
    out: W,
    total: usize,
    /// One line per owner of pods with lifecycles in the trace.
    lifecycles: Vec<String>,
    quiet: bool,
}

impl<W: Write> Observer for Plan<W> {
    fn started(&mut self, version: KubeVersion) {
        if self.quiet {
            return;
        }
        let _ = writeln!(self.out, "# plan for Kubernetes {version}: {} (nothing is sent)", count(self.total, "event"));
        if !self.lifecycles.is_empty() {
            let _ = writeln!(self.out, "# pod lifecycles ({})", count(self.lifecycles.len(), "owner"));
            for line in &self.lifecycles {
                let _ = writeln!(self.out, "#   {line}");
            }
        }
    }

    fn step(&mut self, s: &Step) {
        if self.quiet {
            return;
        }
        let _ = writeln!(
            self.out,
            "{:<9}  {:<6}  {:<40}  {}",
            phase_clock(s.phase, s.offset),
            s.verb.name(),
            s.gvk.to_string(),
            s.target
        );
    }
}

/// A real run: a progress line on a terminal, failures as they happen.
struct Display {
    bar: Option<ProgressBar>,
    quiet: bool,
    cluster: String,
    /// The counts after the last event.
    last: Progress,
}

impl Display {
    fn new(quiet: bool, events: usize, cluster: String) -> Display {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(events as u64);
            if let Ok(style) = ProgressStyle::with_template("{spinner} event {pos}/{len} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Display { bar, quiet, cluster, last: Progress::default() }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// The progress line at simulated time `now`.
    fn show(&self, now: f64) {
        if let Some(bar) = &self.bar {
            let p = &self.last;
            bar.set_position(p.event as u64);
            bar.set_message(format!(
                "{}  applied {}  deleted {}  failed {}",
                clock(now),
                p.applied,
                p.deleted,
                p.failed
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Display {
    fn started(&mut self, version: KubeVersion) {
        if !self.quiet {
            self.say(&format!("skel run: replaying onto Kubernetes {version} at {}", self.cluster));
        }
    }

    fn step(&mut self, s: &Step) {
        if let Outcome::Failed(f) = &s.outcome {
            let line = failure_line(s.verb, &s.gvk, &s.target, f);
            self.say(&format!("{}  failed: {line}", phase_clock(s.phase, s.offset)));
        }
    }

    fn progress(&mut self, p: &Progress) {
        self.last = p.clone();
        self.show(p.offset);
    }

    fn waiting(&mut self, now: f64) {
        self.show(now);
    }
}

/// `1 namespace`, `2 namespaces`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn summary_line(s: &ReplaySummary, args: &RunArgs, survey: &Survey) -> String {
    let p = &s.progress;
    let speed = match args.speed {
        _ if args.dry_run => "planned".to_string(),
        Speed::Max => "at full speed".to_string(),
        Speed::Times(x) => format!("at {x}x"),
    };
    let ending = match s.ending {
        Ending::Done => String::new(),
        Ending::Until => ", stopped at --until".into(),
        Ending::Interrupted => ", interrupted".into(),
        Ending::FailFast => ", stopped at the first failure".into(),
    };
    let created = if args.dry_run { String::new() } else { format!(" ({} created)", s.created) };
    let gone = if s.absent > 0 { format!(" ({} already gone)", s.absent) } else { String::new() };
    let caught = if s.caught_up > 0 { format!(", {} caught up at --from", s.caught_up) } else { String::new() };
    let mut made = count(s.namespaces.len(), "namespace");
    if s.nodes > 0 {
        made = format!("{made} and {}", count(s.nodes, "virtual node"));
    }
    let cleanup = if args.keep {
        format!("; kept {made}")
    } else if s.cleaned_up == s.namespaces.len() + s.nodes {
        format!("; deleted {made}")
    } else {
        format!("; the clean-up deleted {} of {made}", s.cleaned_up)
    };
    format!(
        "skel run: {}/{} events{caught}{ending} ({} of trace, {speed}) in {:.1}s; {} applied{created}, {} deleted{gone}, \
         {} failed{cleanup}",
        p.event,
        p.events,
        clock(survey.duration() as f64).trim_start_matches('+'),
        s.elapsed.as_secs_f64(),
        p.applied,
        p.deleted,
        p.failed,
    )
}
