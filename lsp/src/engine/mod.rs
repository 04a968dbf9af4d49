//! The engine: every answer the server gives, from a document (its text, its position index
//! and the compiler's analysis of it) and, for hover and completion, a trace's index. It is
//! pure: no files, no threads, no channels; the protocol layer (`crate::server`,
//! `crate::handlers`) reads what it needs and hands it in.

mod analysis;
mod completion;
mod diagnostics;
mod format;
mod hover;
mod navigate;
mod semantic_tokens;
mod symbols;

use lsp_types::{Diagnostic, DiagnosticSeverity, Range, Uri};
use skel::ast::{Script, Span, Statement};
use skel::explore::KeyIndex;

use crate::text::{Encoding, LineIndex};

pub use completion::completion;
pub use format::format;
pub use hover::hover;
pub use navigate::{definition, prepare_rename, references, rename};
pub use semantic_tokens::semantic_tokens;
pub use symbols::symbols;

/// A document as the engine sees it: its text, where its lines are, its syntax tree and its
/// diagnostics (converted once, when it is analyzed).
pub struct Document {
    pub uri: Uri,
    pub text: String,
    pub lines: LineIndex,
    pub script: Script,
    diagnostics: Vec<Diagnostic>,
}

impl Document {
    /// A document and the compiler's analysis of its text (`skel::analyze`).
    pub fn new(uri: Uri, text: String, encoding: Encoding, analysis: skel::Analysis) -> Document {
        let lines = LineIndex::new(&text, encoding);
        let diagnostics = analysis.diagnostics.iter().map(|d| diagnostics::to_lsp(d, &text, &lines, &uri)).collect();
        Document { uri, text, lines, script: analysis.ast, diagnostics }
    }

    /// A document the compiler failed on (a bug, `why`): it keeps its text (for tokens and
    /// formatting), without a syntax tree, and says so as its one diagnostic.
    pub fn failed(uri: Uri, text: String, encoding: Encoding, why: &str) -> Document {
        let lines = LineIndex::new(&text, encoding);
        let d = Diagnostic {
            severity: Some(DiagnosticSeverity::ERROR),
            source: Some("skel".into()),
            message: format!("skel lsp failed on this script: {why} (a bug in skel)"),
            ..Diagnostic::default()
        };
        Document { uri, text, lines, script: Script::default(), diagnostics: vec![d] }
    }

    /// The diagnostics to publish.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    fn range(&self, span: Span) -> Range {
        self.lines.range(&self.text, span.start, span.end)
    }

    /// The byte offset of a position, and the statement there.
    fn at(&self, pos: lsp_types::Position) -> (usize, Option<&Statement>) {
        let offset = self.lines.offset(&self.text, pos);
        (offset, analysis::statement_at(&self.script, offset))
    }
}

/// What a trace holds, for hover and completion: the keys under each path, and how many
/// objects have each path with a few of its values.
pub struct TraceIndex {
    /// How answers name the trace (its file name).
    pub name: String,
    pub keys: KeyIndex,
    /// Whether the trace is longer than what was indexed of it.
    pub cut: bool,
}

/// A request the engine refuses, and why (the protocol's *invalid params*).
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

#[cfg(test)]
pub(crate) mod fixture;
