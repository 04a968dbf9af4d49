//! How diagnostics reach the user. Errors are values: a command returns its failure's
//! [`Report`] (one diagnostic, or a script's with its source) up to the edge -- `main`, which
//! renders it once on stderr through a [`Reporter`], or the REPL's session, which renders it
//! into its answer on stdout. What a command says while it goes on (a script's warnings before
//! `skel apply` streams) goes through the `Reporter` it is handed; there is no global sink.
//! On stderr: miette's graphical report, without colour when stderr is not a terminal (stable
//! output for tests and logs).
//!
//! A diagnostic about a script shows the lines around each label, from a [`Source`] that
//! indexes the script's lines once (a script with many diagnostics is not rescanned for each).
//! A line longer than [`LONG_LINE`] bytes is shown as a window around the label, and a label
//! on such a line is cut to [`LONG_LABEL`] bytes: miette could not draw a label past column
//! 65,535, and a megabyte of one line helps nobody.

use std::io::IsTerminal;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, Severity,
    SourceCode, SourceSpan, SpanContents,
};

/// Lines longer than this (in bytes) are shown as a window around the label.
const LONG_LINE: usize = 200;
/// How much of a long line is shown on each side of a label (in bytes).
const WINDOW_SIDE: usize = 60;
/// The longest label drawn on a long line (in bytes); a longer one is cut to its start.
const LONG_LABEL: usize = 80;

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

/// A diagnostic as text, the way it is printed.
pub fn render(d: &dyn Diagnostic, color: bool) -> String {
    let mut out = String::new();
    if handler(color).render_report(&mut out, d).is_err() {
        out = d.to_string();
    }
    out
}

/// A diagnostic about a piece of source (a line or statement typed into the REPL), as text.
/// The piece starts at line `first_line` (1-based) of a longer input (a statement piped into the
/// REPL): the snippet's line numbers are the input's.
pub fn render_with_source_at<D: Diagnostic + Send + Sync + 'static>(
    d: D,
    name: &str,
    src: &str,
    first_line: usize,
    color: bool,
) -> String {
    let mut source = Source::new(name, src);
    source.lines_before = first_line.saturating_sub(1);
    source.render(&d, color)
}

/// A diagnostic on its way to the edge, with the script it is about when it is about one.
#[derive(Debug)]
pub enum Report {
    /// One with no source snippet (files, traces, usage, the cluster).
    Plain(Box<dyn Diagnostic + Send + Sync>),
    /// Diagnostics about a script, in order, each shown with the lines around its labels.
    Script { name: String, src: String, diagnostics: Vec<Box<dyn Diagnostic + Send + Sync>> },
}

impl Report {
    pub fn plain(d: impl Diagnostic + Send + Sync + 'static) -> Report {
        Report::Plain(Box::new(d))
    }

    pub fn script<D: Diagnostic + Send + Sync + 'static>(
        name: impl Into<String>,
        src: impl Into<String>,
        diagnostics: impl IntoIterator<Item = D>,
    ) -> Report {
        let diagnostics = diagnostics.into_iter().map(|d| Box::new(d) as Box<dyn Diagnostic + Send + Sync>).collect();
        Report::Script { name: name.into(), src: src.into(), diagnostics }
    }

    /// Each diagnostic as text, the way it is printed (the script's lines indexed once).
    pub fn render(&self, color: bool) -> Vec<String> {
        match self {
            Report::Plain(d) => vec![render(d.as_ref(), color)],
            Report::Script { name, src, diagnostics } => {
                let source = Source::new(name, src);
                diagnostics.iter().map(|d| source.render(d.as_ref(), color)).collect()
            }
        }
    }
}

/// Prints reports on stderr: `main`'s rendering of a failure, and what a command says while it
/// goes on (warnings), handed down to it as a value.
pub struct Reporter {
    color: bool,
}

impl Reporter {
    pub fn stderr() -> Reporter {
        Reporter { color: stderr_color() }
    }

    pub fn report(&self, r: &Report) {
        for text in r.render(self.color) {
            eprintln!("{text}");
        }
    }

    /// Prints a diagnostic that has no source snippet.
    pub fn diagnostic(&self, d: impl Diagnostic + Send + Sync + 'static) {
        self.report(&Report::plain(d));
    }
}

/// A script's text and where its lines start, for the snippets of its diagnostics.
pub struct Source<'a> {
    name: &'a str,
    text: &'a str,
    /// The byte offset of each line's start (the first is 0).
    starts: Vec<usize>,
    /// The lines of the whole input before this text (added to the line numbers shown).
    lines_before: usize,
}

impl<'a> Source<'a> {
    pub fn new(name: &'a str, text: &'a str) -> Source<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Source { name, text, starts, lines_before: 0 }
    }

    /// A diagnostic about this script as text, the way it is printed.
    pub fn render(&self, d: &dyn Diagnostic, color: bool) -> String {
        render(&Excerpted::new(d, self), color)
    }

    /// The line holding byte `at`.
    fn line_of(&self, at: usize) -> usize {
        self.starts.partition_point(|s| *s <= at).saturating_sub(1)
    }

    fn line_start(&self, line: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(self.text.len())
    }

    /// Where the next line starts (after the newline), or the end of the text.
    fn next_line_start(&self, line: usize) -> usize {
        self.line_start(line + 1)
    }

    /// A line's length, its newline not counted.
    fn line_len(&self, line: usize) -> usize {
        let end = self.next_line_start(line);
        let nl = usize::from(self.starts.get(line + 1).is_some());
        end.saturating_sub(nl).saturating_sub(self.line_start(line))
    }

    fn is_long(&self, line: usize) -> bool {
        self.line_len(line) > LONG_LINE
    }

    /// The newlines before byte `at` (what miette reports as a snippet's line count: together
    /// with its first line, whether the next label's snippet may join it).
    fn newlines_before(&self, at: usize) -> usize {
        self.starts.partition_point(|s| *s <= at).saturating_sub(1)
    }

    /// `at` moved back to a character boundary.
    fn floor(&self, mut at: usize) -> usize {
        while at > 0 && !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// `at` moved on to a character boundary.
    fn ceil(&self, mut at: usize) -> usize {
        while at < self.text.len() && !self.text.is_char_boundary(at) {
            at += 1;
        }
        at.min(self.text.len())
    }

    /// A label as it is drawn: one that lies on a long line, or runs over one, is cut to at
    /// most `LONG_LABEL` bytes of its first line.
    fn clip(&self, label: &LabeledSpan) -> LabeledSpan {
        let start = label.offset();
        let end = start.saturating_add(label.len());
        let first = self.line_of(start);
        let last = self.line_of(end.saturating_sub(1).max(start));
        let long = (first..=last).any(|l| self.is_long(l));
        let first_end = self.next_line_start(first).saturating_sub(usize::from(last > first));
        let cut = if last > first { end.min(first_end) } else { end };
        let cut = if long { self.floor(cut.min(start.saturating_add(LONG_LABEL))).max(start) } else { end };
        if cut == end {
            return label.clone();
        }
        let text = label.label().map(str::to_string);
        let span = SourceSpan::from((start, cut - start));
        if label.primary() {
            LabeledSpan::new_primary_with_span(text, span)
        } else {
            LabeledSpan::new_with_span(text, span)
        }
    }
}

impl SourceCode for Source<'_> {
    /// As miette reads a `str` (the lines of the span, `before` and `after` lines around it;
    /// from the span's start when `before` is 0), except that a long line is shown as a window
    /// around the span and is never a context line; a span that runs over a long line, or over
    /// more than `LONG_LABEL` bytes of one, is refused (miette then draws its labels apart).
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let start = span.offset();
        let end = start.saturating_add(span.len());
        if end > self.text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let first = self.line_of(start);
        let last = self.line_of(end.saturating_sub(1).max(start));
        let long = (first..=last).any(|l| self.is_long(l));
        let (from, to, line) = if long {
            if last > first || end - start > LONG_LABEL {
                return Err(MietteError::OutOfBounds);
            }
            let line_start = self.line_start(first);
            let line_end = line_start + self.line_len(first);
            let from = if before == 0 { start } else { self.floor(start.saturating_sub(WINDOW_SIDE).max(line_start)) };
            let to = if after == 0 { end } else { self.ceil(end.saturating_add(WINDOW_SIDE).min(line_end)) };
            (from, to, first)
        } else {
            let mut top = first;
            while top > 0 && first - top < before && !self.is_long(top - 1) {
                top -= 1;
            }
            let mut bottom = last;
            while bottom + 1 < self.starts.len() && bottom - last < after && !self.is_long(bottom + 1) {
                bottom += 1;
            }
            let from = if before == 0 { start } else { self.line_start(top) };
            let to = if after == 0 { end } else { self.next_line_start(bottom) };
            (from, to, if before == 0 { first } else { top })
        };
        let data = self.text.as_bytes().get(from..to).ok_or(MietteError::OutOfBounds)?;
        let column = from - self.line_start(line);
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.to_string(),
            data,
            (from, to - from).into(),
            line + self.lines_before,
            column,
            self.newlines_before(to) + self.lines_before,
        )))
    }
}

/// A diagnostic shown with a [`Source`]: its labels as [`Source::clip`] draws them, its related
/// diagnostics likewise.
struct Excerpted<'a> {
    inner: &'a dyn Diagnostic,
    source: &'a Source<'a>,
    related: Vec<Excerpted<'a>>,
}

impl<'a> Excerpted<'a> {
    fn new(inner: &'a dyn Diagnostic, source: &'a Source<'a>) -> Excerpted<'a> {
        let related = inner.related().map(|r| r.map(|d| Excerpted::new(d, source)).collect()).unwrap_or_default();
        Excerpted { inner, source, related }
    }
}

impl std::fmt::Debug for Excerpted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.inner, f)
    }
}

impl std::fmt::Display for Excerpted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for Excerpted<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl Diagnostic for Excerpted<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.inner.code()
    }

    fn severity(&self) -> Option<Severity> {
        self.inner.severity()
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.inner.help()
    }

    fn url<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.inner.url()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let labels: Vec<LabeledSpan> = self.inner.labels()?.map(|l| self.source.clip(&l)).collect();
        Some(Box::new(labels.into_iter()))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn Diagnostic> + 'b>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|d| d as &dyn Diagnostic)))
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error, miette::Diagnostic)]
    #[error("here")]
    struct At {
        #[label("this")]
        span: SourceSpan,
        #[label("and this")]
        other: Option<SourceSpan>,
    }

    fn shown(src: &str, span: (usize, usize), other: Option<(usize, usize)>) -> String {
        let d = At { span: span.into(), other: other.map(Into::into) };
        Source::new("s.skel", src).render(&d, false)
    }

    /// Short lines show as miette shows them from a plain string.
    #[test]
    fn short_lines_render_as_miette_renders_them() {
        let src = "delete(a == 1);\nremove(b);\nremove(c d);\nremove(e);\nremove(f);\n";
        for (span, other) in [((30, 1), None), ((0, 6), Some((27, 5))), ((16, 6), Some((16, 6))), ((56, 0), None)] {
            let d = At { span: span.into(), other: other.map(Into::into) };
            let mut plain = String::new();
            let report = miette::Report::new(At { span: span.into(), other: other.map(Into::into) })
                .with_source_code(miette::NamedSource::new("s.skel", src.to_string()));
            let _ = handler(false).render_report(&mut plain, report.as_ref());
            assert_eq!(Source::new("s.skel", src).render(&d, false), plain);
        }
    }

    /// A label past column 65,535 (where miette's own rendering panicked) is drawn in a window.
    #[test]
    fn a_label_far_along_a_long_line_is_drawn_in_a_window() {
        let src = format!("{}remove(status\nremove(spec);\n", " ".repeat(70_000));
        let text = shown(&src, (70_013, 0), None);
        assert!(text.contains("[s.skel:1:70014]"), "{text}");
        assert!(text.contains("remove(status"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() < 200), "{text}");
        // A label over the whole line, and two labels far apart on it.
        let text = shown(&src, (0, 70_013), Some((70_000, 6)));
        assert!(text.lines().all(|l| l.chars().count() < 200), "{text}");
        assert!(text.contains("this") && text.contains("and this"), "{text}");
        // A long line next to a label's line is not shown as context.
        let text = shown(&src, (70_014, 6), None);
        assert!(text.contains("[s.skel:2:1]") && text.lines().all(|l| l.chars().count() < 200), "{text}");
    }

    #[test]
    fn many_byte_characters_are_cut_at_their_boundaries() {
        let src = format!("{}x", "é".repeat(40_000));
        let text = shown(&src, (80_000, 1), Some((1, 70_000)));
        assert!(text.contains("x") && text.lines().all(|l| l.chars().count() < 200), "{text}");
    }
}
