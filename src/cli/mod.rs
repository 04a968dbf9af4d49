//! Subcommand definitions (clap) and dispatch.

pub mod apply;
pub mod check;
pub mod compile;
pub mod completions;
pub mod files;
mod fmt;
pub mod remote;
pub mod repl;
pub mod report;
pub mod run;
pub mod run_report;
pub mod signals;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use miette::Diagnostic;

use self::report::{Report, Reporter};

/// The most `--jobs` (worker threads of `skel apply` and `skel check`, requests in flight of
/// `skel run`): more would only cost memory, and past what the system allows threads fail to
/// start.
pub const MAX_JOBS: u64 = 256;

/// `--jobs N`: 1 to `MAX_JOBS`; another number is a usage error that gives the range.
pub fn jobs_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=MAX_JOBS)
}

/// How a command failed: its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A script, trace or file error: exit 1.
    Error,
    /// The arguments make no sense together: exit 2, as clap's own usage errors.
    Usage,
    /// Stopped by Ctrl-C: exit 130, as shells report SIGINT.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Error => 1,
            Exit::Usage => 2,
            Exit::Interrupted => 130,
        }
    }
}

/// A command's failure on its way to the edge (`main`, or the REPL's answer loop), which renders
/// its report once: what to tell the user, and the exit code.
#[derive(Debug)]
pub struct Failed {
    pub exit: Exit,
    /// `None` when there is nothing more to say (the command's output said it: `would
    /// reformat`, `skel check`'s findings, the REPL's answers).
    pub report: Option<Report>,
}

impl Failed {
    /// Exit 1, with a diagnostic that has no source snippet.
    pub fn error<D: Diagnostic + Send + Sync + 'static>(d: D) -> Failed {
        Failed { exit: Exit::Error, report: Some(Report::plain(d)) }
    }

    /// Exit 2, with a diagnostic that has no source snippet.
    pub fn usage<D: Diagnostic + Send + Sync + 'static>(d: D) -> Failed {
        Failed { exit: Exit::Usage, report: Some(Report::plain(d)) }
    }

    /// Exit 1, with diagnostics about a script.
    pub fn script<D: Diagnostic + Send + Sync + 'static>(
        name: impl Into<String>,
        src: impl Into<String>,
        diagnostics: impl IntoIterator<Item = D>,
    ) -> Failed {
        Failed { exit: Exit::Error, report: Some(Report::script(name, src, diagnostics)) }
    }

    /// Nothing more to say.
    pub fn silent(exit: Exit) -> Failed {
        Failed { exit, report: None }
    }

    /// The same report, another exit code (`skel check` exits 2 on an input error).
    pub fn exit_as(self, exit: Exit) -> Failed {
        Failed { exit, ..self }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "skel",
    version,
    about = "Compile SKEL scripts and stream SimKube traces through them",
    long_about = "skel compiles SKEL (the SimKube Expression Language) to bytecode and streams \
SimKube traces through it: select manifests, then delete them, remove fields or modify them.",
    after_help = "Example:\n  skel apply migrate.skel trace.json -o migrated.json\n  skel compile migrate.skel --emit bytecode"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a SKEL script over every object of every event of a trace and write the result.
    #[command(after_help = "Examples:
  skel apply migrate.skel trace.json -o out.json      # JSON in, JSON out
  skel apply sanitize.skel trace.sktrace --in-place   # rewrite a msgpack trace atomically
  cat trace.json | skel apply migrate.skel - > out.json

Exit codes: 0 success, 1 script or trace error (nothing is written), 2 usage error.")]
    Apply(ApplyArgs),
    /// Check a script and print its diagnostics, or one stage of the compiler's output.
    #[command(after_help = "Examples:
  skel compile migrate.skel                  # check only; exit 1 on errors
  skel compile migrate.skel --emit bytecode  # print the disassembled program
  skel compile migrate.skel --emit bytecode --no-opt  # ... before optimization")]
    Compile(CompileArgs),
    /// Find what a trace or manifests hold that a Kubernetes version rejects, ignores or
    /// deprecates, and write the SKEL that rewrites it.
    #[command(after_help = "Examples:
  skel check trace.json --target-version 1.25                  # a report; exit 1 on errors
  skel check trace.sktrace --target-version 1.25 --fix fix.skel # and the SKEL that rewrites it
  skel check manifests/ --target-version 1.29 --format sarif    # a folder of YAML manifests
  skel check manifests/ --target-version 1.32 --format markdown --fail-on warning

Exit codes: 0 nothing to fail on, 1 an error found (or a warning, with --fail-on warning),
2 usage or input error.")]
    Check(CheckArgs),
    /// Explore and rewrite a trace interactively: SKEL statements, queries, undo, save.
    #[command(after_help = "Examples:
  skel repl trace.json                       # a session over a trace
  skel repl trace.json < session.txt         # statements and :commands from a file, plain output
  echo ':match kind == \"CronJob\"' | skel repl trace.json

Type `:help` in the session for its commands. Exit code (piped): 0, or 1 if any input failed.")]
    Repl(ReplArgs),
    /// Format SKEL scripts in the canonical style (`--check` for CI)
    Fmt(fmt::FmtArgs),
    /// Replay a trace onto a Kubernetes (KWOK) cluster, after a preflight of what it serves.
    #[command(after_help = "Examples:
  skel run trace.json --dry-run --server-version 1.25      # the plan, checked; no cluster
  skel run trace.json --context kwok-sim --virtual-nodes 10 --speed 10
  skel run trace.sktrace --script migrate.skel --speed max --keep

Exit codes: 0 every object replayed; 1 an error in the script or trace, a preflight refusal,
or any object failed; 2 a usage error; 130 stopped by Ctrl-C. See docs/run.md for a KWOK
cluster step by step.")]
    Run(run::RunArgs),
    /// Run the SKEL language server (LSP over stdio) for editors.
    #[command(after_help = "Editors start it themselves; see docs/lsp.md for VS Code, Neovim and Helix.
A trace for hover and completion: the `skel.trace` initialization option, or a
`# trace: FILE` comment at the top of a script.")]
    Lsp(LspArgs),
    /// Print the shell completion script for bash, zsh, fish, PowerShell or elvish.
    Completions(completions::CompletionsArgs),
    /// Write the man pages: skel(1), and one per subcommand (skel-apply(1), ...).
    Man(completions::ManArgs),
}

#[derive(clap::Args, Debug)]
pub struct LspArgs {
    /// Talk LSP over stdin and stdout (the only transport; accepted for editors that pass it).
    #[arg(long)]
    pub stdio: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReplArgs {
    /// The trace to load (JSON or msgpack `.sktrace`); `:load` loads one later.
    pub trace: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// A trace (JSON or msgpack `.sktrace`), a YAML or JSON file of manifests, or a folder of
    /// them (read as a trace of one event).
    #[arg(required_unless_present = "list_rules")]
    pub input: Option<PathBuf>,
    /// The Kubernetes version to replay on, e.g. `1.25`.
    #[arg(long, required_unless_present = "list_rules")]
    pub target_version: Option<String>,
    /// Print every rule besides the removed APIs (id, versions, fix, sources) as a Markdown
    /// table, and exit.
    #[arg(long, conflicts_with_all = ["input", "fix"])]
    pub list_rules: bool,
    /// How to report.
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
    /// Write a SKEL script that rewrites what can be rewritten mechanically.
    #[arg(long)]
    pub fix: Option<PathBuf>,
    /// Report only findings of this severity or worse.
    #[arg(long, value_enum, default_value = "warning")]
    pub min_severity: SeverityArg,
    /// Exit 1 on findings of this severity or worse.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: SeverityArg,
    /// Worker threads reading a trace, 1 to 256 (default: one per core); `--jobs 1` runs on one
    /// thread. The report is the same for any number.
    #[arg(short, long, value_parser = jobs_parser())]
    pub jobs: Option<usize>,
}

/// A finding's severity, as a flag value.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeverityArg {
    Warning,
    Error,
}

impl From<SeverityArg> for skel::kube::hazards::Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Warning => skel::kube::hazards::Severity::Warning,
            SeverityArg::Error => skel::kube::hazards::Severity::Error,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
    Sarif,
    /// A summary table for a pull-request comment.
    Markdown,
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// The SKEL script (`-` reads it from stdin).
    pub script: PathBuf,
    /// The input trace: JSON or SimKube msgpack (`.sktrace`); `-` reads stdin.
    pub trace: PathBuf,
    /// Where to write the result (`-` for stdout, the default).
    #[arg(short, long, conflicts_with = "in_place")]
    pub output: Option<PathBuf>,
    /// Rewrite the input trace atomically.
    #[arg(long)]
    pub in_place: bool,
    /// Output format; by default from the output's extension, else the input's format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Input format; by default from the input's extension, else sniffed from its first byte.
    #[arg(long, value_enum)]
    pub input_format: Option<FormatArg>,
    /// Print no summary, progress or warnings.
    #[arg(short, long)]
    pub quiet: bool,
    /// Run the unoptimized program (for checking the optimizer; the output is the same).
    #[arg(long)]
    pub no_opt: bool,
    /// Worker threads, 1 to 256 (default: one per core); `--jobs 1` runs on one thread. The
    /// output is the same for any number.
    #[arg(short, long, value_parser = jobs_parser())]
    pub jobs: Option<usize>,
    /// Also rename, in the trace's `config.trackedObjects` and `pod_lifecycles` owners, each kind
    /// that a `modify(kind == K && apiVersion == OLD, apiVersion = NEW)` moves (as `skel check
    /// --fix` writes them); SimKube's SKEL leaves both as they are.
    #[arg(long)]
    pub follow_api_versions: bool,
}

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// The SKEL script (`-` reads it from stdin).
    pub script: PathBuf,
    /// Print this stage's output instead of only checking.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Show the IR and bytecode before optimization.
    #[arg(long)]
    pub no_opt: bool,
}

impl CompileArgs {
    pub fn opt_level(&self) -> skel::OptLevel {
        if self.no_opt {
            skel::OptLevel::None
        } else {
            skel::OptLevel::Full
        }
    }
}

impl ApplyArgs {
    pub fn opt_level(&self) -> skel::OptLevel {
        if self.no_opt {
            skel::OptLevel::None
        } else {
            skel::OptLevel::Full
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Json,
    Msgpack,
}

impl From<FormatArg> for skel_trace::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Json => skel_trace::Format::Json,
            FormatArg::Msgpack => skel_trace::Format::Msgpack,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    Ast,
    Ir,
    Bytecode,
}

/// Runs a subcommand. What it says while it goes on (warnings) goes through `reporter`; its
/// failure comes back as a value, for `main` to render.
pub fn run(cli: Cli, reporter: &Reporter) -> Result<(), Failed> {
    match cli.command {
        Command::Apply(a) => apply::run(a, reporter),
        Command::Compile(c) => compile::run(c, reporter),
        Command::Check(c) => check::run(c, reporter),
        Command::Repl(r) => repl::run(r),
        Command::Fmt(f) => fmt::run(f, reporter),
        Command::Run(r) => run::run(r, reporter),
        Command::Lsp(_) => skel_lsp::run_stdio().map_err(|e| {
            eprintln!("skel lsp: {e}");
            Failed::silent(Exit::Error)
        }),
        Command::Completions(c) => completions::completions(c),
        Command::Man(m) => completions::man(m),
    }
}
