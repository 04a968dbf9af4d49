//! `skel apply`: compile the script, stream the trace through it, write the result atomically,
//! and print a summary.

use std::io::{BufWriter, IsTerminal, Read};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use skel::transform::{Summary, Transform, TransformError};
use skel_trace::{Format, ReadError, TraceWriter};

use super::files::{self, FileError, Output};
use super::{report, ApplyArgs, Failed};

pub fn run(args: ApplyArgs) -> Result<(), Failed> {
    let started = Instant::now();
    let (script_name, src) = files::read_script(&args.script)?;
    let compiled = skel::compile(&src);
    let failed = compiled.has_errors();
    for d in compiled.diagnostics {
        if failed || !args.quiet {
            report::script_diagnostic(d, &script_name, &src);
        }
    }
    if failed {
        return Err(Failed);
    }

    if args.in_place && args.trace == std::path::Path::new("-") {
        report::diagnostic(FileError::InPlaceStdin);
        return Err(Failed);
    }
    let input = files::open_trace(&args.trace, args.input_format.map(Format::from))?;
    let target = if args.in_place { Some(args.trace.as_path()) } else { args.output.as_deref() };
    let out_format = args
        .format
        .map(Format::from)
        .or_else(|| target.filter(|p| *p != std::path::Path::new("-")).and_then(Format::from_extension))
        .unwrap_or(input.format);
    let output = Output::create(target)?;

    let progress = progress_bar(args.quiet, input.len);
    let reader = ProgressReader { inner: input.reader, bar: progress.clone(), pending: 0 };
    let writer = TraceWriter::new(BufWriter::with_capacity(1 << 16, output.file()?), out_format);
    let mut transform = Transform::new(&compiled.program, writer);
    let result = skel_trace::read_trace(reader, input.format, &mut transform);
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let trace_name = files::display(&args.trace);
    match result {
        Ok(()) => {}
        Err(ReadError::Trace(e)) => {
            report::diagnostic(TraceInputError { file: trace_name, inner: e });
            return Err(Failed);
        }
        Err(ReadError::Visitor(TransformError::Run(e))) => {
            report::script_diagnostic(*e, &script_name, &src);
            return Err(Failed);
        }
        Err(ReadError::Visitor(TransformError::Write(e))) => {
            report::diagnostic(e);
            return Err(Failed);
        }
    }
    let summary = transform.processor.summary;
    match transform.writer.finish() {
        Ok(mut w) => {
            use std::io::Write;
            if let Err(source) = w.flush() {
                report::diagnostic(FileError::Write { path: "output".into(), source });
                return Err(Failed);
            }
        }
        Err(e) => {
            report::diagnostic(TraceInputError { file: trace_name, inner: e });
            return Err(Failed);
        }
    }
    output.commit()?;
    if !args.quiet {
        eprintln!("{}", summary_line(&summary, started.elapsed().as_secs_f64()));
    }
    Ok(())
}

/// A trace error, with the file it came from.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("in `{file}`: {inner}")]
struct TraceInputError {
    file: String,
    #[diagnostic_source]
    inner: skel_trace::TraceError,
}

fn summary_line(s: &Summary, secs: f64) -> String {
    format!(
        "skel: {} events read, {} written, {} pruned; {} objects: {} matched, {} modified, {} deleted; \
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
