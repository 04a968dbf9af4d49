//! How diagnostics reach the user: miette's graphical report on stderr, without colour when
//! stderr is not a terminal (stable output for tests and logs).

use std::io::IsTerminal;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, Report};

pub fn install_hook() {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = miette::set_hook(Box::new(move |_| {
        let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        Box::new(GraphicalReportHandler::new_themed(theme).with_width(100))
    }));
}

/// Prints a diagnostic about the script, with its source.
pub fn script_diagnostic<D: Diagnostic + Send + Sync + 'static>(d: D, name: &str, src: &str) {
    let report = Report::new(d).with_source_code(NamedSource::new(name, src.to_string()));
    eprintln!("{report:?}");
}

/// Prints a diagnostic that has no source snippet (trace and file errors).
pub fn diagnostic<D: Diagnostic + Send + Sync + 'static>(d: D) {
    eprintln!("{:?}", Report::new(d));
}
