//! `skel apply`: compile the script, stream the trace through it, write the result atomically,
//! and print a summary.

use std::io::{IsTerminal, Read};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use skel::stream::{self, StreamError, StreamOptions};
use skel::transform::Summary;
use skel_trace::{Format, TraceWriter};

use super::files::{self, FileError, Output};
use super::remote;
use super::report::{Report, Reporter};
use super::{ApplyArgs, Failed};

pub fn run(args: ApplyArgs, reporter: &Reporter) -> Result<(), Failed> {
    let started = Instant::now();
    let stdin = std::path::Path::new("-");
    if args.in_place && args.trace == stdin {
        return Err(FileError::InPlaceStdin.into());
    }
    if args.in_place {
        files::check_in_place(&args.trace)?;
    }
    if args.script == stdin && args.trace == stdin {
        return Err(FileError::TwoStdins.into());
    }
    let (script_name, src, program) = compile_script(&args.script, args.opt_level(), args.quiet, reporter)?;

    let input = files::open_trace(&args.trace, args.input_format.map(Format::from))?;
    let target = if args.in_place { Some(args.trace.as_path()) } else { args.output.as_deref() };
    let out_format = args
        .format
        .map(Format::from)
        .or_else(|| target.filter(|p| *p != std::path::Path::new("-")).and_then(Format::from_extension))
        .unwrap_or(input.format);
    let script = Script { name: &script_name, src: &src, program: &program };
    let how = How { jobs: args.jobs, follow_api_versions: args.follow_api_versions, quiet: args.quiet };
    // To an object store: a multipart upload, completed only when all was written (dropped on
    // an error, or aborted by Ctrl-C, it leaves nothing).
    let (remote, local) = match target.map(remote::locate).transpose().map_err(FileError::from)? {
        Some(remote::Location::Remote(remote)) => (Some(remote), None),
        // A path as given, or a `file://` URL's.
        Some(remote::Location::Local(path)) => (None, Some(path)),
        None => (None, None),
    };
    let summary = if let Some(remote) = remote {
        let mut upload = remote.upload().map_err(FileError::from)?;
        upload.abort_on_interrupt();
        let summary = rewrite(&script, input, &args.trace, &mut upload, out_format, how)?;
        upload.finish().map_err(FileError::from)?;
        summary
    } else {
        let output = Output::create(local.as_deref())?;
        let summary = rewrite(&script, input, &args.trace, output.file()?, out_format, how)?;
        output.commit()?;
        summary
    };
    if !args.quiet {
        eprintln!("{}", summary_line(&summary, started.elapsed().as_secs_f64()));
    }
    Ok(())
}

/// Reads and compiles a script; returns its display name, its text and the program (its
/// warnings said through `reporter` unless `quiet`), or every diagnostic when it has errors.
pub fn compile_script(
    path: &std::path::Path,
    level: skel::OptLevel,
    quiet: bool,
    reporter: &Reporter,
) -> Result<(String, String, skel::Program), Failed> {
    let (name, src) = files::read_script(path)?;
    match skel::compile_with(&src, level, &files::insert_files(path)) {
        Ok(c) => {
            if !quiet && !c.warnings.is_empty() {
                reporter.report(&Report::script(name.as_str(), src.as_str(), c.warnings));
            }
            Ok((name, src, c.program))
        }
        Err(r) => Err(Failed::script(name, src, r.diagnostics)),
    }
}

/// A compiled script and where it came from (for its diagnostics).
pub struct Script<'a> {
    pub name: &'a str,
    pub src: &'a str,
    pub program: &'a skel::Program,
}

/// How `rewrite` streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct How {
    /// Worker threads (default: one per core).
    pub jobs: Option<usize>,
    /// `skel apply --follow-api-versions`.
    pub follow_api_versions: bool,
    /// No progress bar.
    pub quiet: bool,
}

/// Streams the trace through the script into `out` (flushed), with a progress bar on a
/// terminal unless `quiet`.
pub fn rewrite<W: std::io::Write + std::io::Seek>(
    script: &Script,
    input: skel_trace::fsio::TraceInput,
    trace: &std::path::Path,
    out: W,
    out_format: Format,
    how: How,
) -> Result<Summary, Failed> {
    let progress = progress_bar(how.quiet, input.len);
    let reader = ProgressReader { inner: input.reader, bar: progress.clone(), pending: 0 };
    let mut writer = TraceWriter::new(out, out_format);
    let mut opts = StreamOptions::new(input.format, out_format);
    if let Some(jobs) = how.jobs {
        opts.jobs = jobs;
    }
    opts.follow_api_versions = how.follow_api_versions;
    let result = stream::transform(script.program, reader, &mut writer, opts);
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let trace_name = files::display(trace);
    let summary = match result {
        Ok(summary) => summary,
        Err(StreamError::Run(e)) => return Err(Failed::script(script.name, script.src, [*e])),
        Err(StreamError::Trace(e)) => return Err(trace_failed(e, &trace_name)),
    };
    match writer.finish() {
        Ok(mut w) => {
            if let Err(source) = w.flush() {
                return Err(FileError::Write { path: "output".into(), reason: files::reason(&source) }.into());
            }
        }
        Err(e) => return Err(trace_failed(e, &trace_name)),
    }
    Ok(summary)
}

/// A trace error's failure: a problem with the input names the file it is in.
pub fn trace_failed(e: skel_trace::TraceError, trace_name: &str) -> Failed {
    match e {
        e @ (skel_trace::TraceError::Io { action: "write", .. }
        | skel_trace::TraceError::Encode { .. }
        | skel_trace::TraceError::WriterMisuse { .. }) => Failed::error(e),
        e => Failed::error(TraceInputError { file: trace_name.to_string(), inner: e }),
    }
}

/// A trace error, with the file it came from: the trace error's own code and help, its
/// message prefixed by the file.
#[derive(Debug)]
pub struct TraceInputError {
    pub file: String,
    pub inner: skel_trace::TraceError,
}

impl std::fmt::Display for TraceInputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.inner)
    }
}

impl std::error::Error for TraceInputError {}

impl miette::Diagnostic for TraceInputError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.code()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.help()
    }
}

pub fn summary_line(s: &Summary, secs: f64) -> String {
    let inserted = if s.objects_inserted > 0 { format!(", {} inserted", s.objects_inserted) } else { String::new() };
    format!(
        "skel: {} events read, {} written, {} pruned; {} objects: {} matched, {} modified, {} deleted{inserted}; \
         {} fields removed, {} set; {:.2}s",
        s.events_read,
        s.events_written,
        s.events_pruned,
        s.objects_read,
        s.objects_matched,
        s.objects_modified,
        s.objects_deleted,
        s.fields_removed,
        s.fields_set,
        secs
    )
}

fn progress_bar(quiet: bool, len: Option<u64>) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// Counts bytes read for the progress bar, updating it every 256 KiB.
struct ProgressReader<R> {
    inner: R,
    bar: Option<ProgressBar>,
    pending: u64,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(bar) = &self.bar {
            self.pending += n as u64;
            if self.pending >= 1 << 18 || n == 0 {
                bar.inc(self.pending);
                self.pending = 0;
            }
        }
        Ok(n)
    }
}
