//! How diagnostics reach the user: miette's graphical report on stderr, without colour when
//! stderr is not a terminal (stable output for tests and logs). The REPL sends them to stdout
//! instead, in order with the rest of its answers (`to_stdout`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, Report};

/// 0: stderr; 1: stdout, plain; 2: stdout, in colour.
static SINK: AtomicU8 = AtomicU8::new(0);

pub fn install_hook() {
    let color = stderr_color();
    let _ = miette::set_hook(Box::new(move |_| Box::new(handler(color))));
}

fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && color_allowed()
}

/// `NO_COLOR` unset or empty (no-color.org).
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn handler(color: bool) -> GraphicalReportHandler {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    GraphicalReportHandler::new_themed(theme).with_width(100)
}

/// From now on, diagnostics go to stdout (in colour or not).
pub fn to_stdout(color: bool) {
    SINK.store(if color { 2 } else { 1 }, Ordering::Relaxed);
}

/// A diagnostic as text, the way it is printed.
pub fn render(d: &dyn Diagnostic, color: bool) -> String {
    let mut out = String::new();
    if handler(color).render_report(&mut out, d).is_err() {
        out = d.to_string();
    }
    out
}

/// A diagnostic about a piece of source (a script, or a line typed into the REPL), as text.
pub fn render_with_source<D: Diagnostic + Send + Sync + 'static>(d: D, name: &str, src: &str, color: bool) -> String {
    let report = Report::new(d).with_source_code(NamedSource::new(name, src.to_string()));
    render(report.as_ref(), color)
}

fn emit(report: Report) {
    match SINK.load(Ordering::Relaxed) {
        0 => eprintln!("{}", render(report.as_ref(), stderr_color())),
        sink => println!("{}", render(report.as_ref(), sink == 2).trim_end()),
    }
}

/// Prints a diagnostic about the script, with its source.
pub fn script_diagnostic<D: Diagnostic + Send + Sync + 'static>(d: D, name: &str, src: &str) {
    emit(Report::new(d).with_source_code(NamedSource::new(name, src.to_string())));
}

/// Prints a diagnostic that has no source snippet (trace and file errors).
pub fn diagnostic<D: Diagnostic + Send + Sync + 'static>(d: D) {
    emit(Report::new(d));
}
