//! The compiler's diagnostics as the protocol has them.

use lsp_types::{Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Range, Uri};
use miette::Diagnostic as _;
use skel::CompileError;

use crate::text::LineIndex;

/// A compiler diagnostic as LSP sees it: the first label's range, the message with the
/// label and help, the code, and the other labels as related information.
pub fn to_lsp(d: &CompileError, text: &str, lines: &LineIndex, uri: &Uri) -> Diagnostic {
    let labels: Vec<miette::LabeledSpan> = d.labels().map(|l| l.collect()).unwrap_or_default();
    let range = labels.first().map_or(Range::default(), |l| lines.range(text, l.offset(), l.offset() + l.len()));
    let mut message = d.to_string();
    if let Some(label) = labels.first().and_then(|l| l.label()) {
        message.push_str(&format!(" ({label})"));
    }
    if let Some(help) = d.help() {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = labels
        .iter()
        .skip(1)
        .map(|l| DiagnosticRelatedInformation {
            location: Location { uri: uri.clone(), range: lines.range(text, l.offset(), l.offset() + l.len()) },
            message: l.label().unwrap_or("here").to_string(),
        })
        .collect();
    let severity = match d.severity() {
        Some(miette::Severity::Warning) => DiagnosticSeverity::WARNING,
        Some(miette::Severity::Advice) => DiagnosticSeverity::HINT,
        _ => DiagnosticSeverity::ERROR,
    };
    Diagnostic {
        range,
        severity: Some(severity),
        code: d.code().map(|c| NumberOrString::String(c.to_string())),
        source: Some("skel".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Diagnostic::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::fixture::{document_with, draw, show_range, Memory};
    use super::super::Document;

    /// Each diagnostic drawn at its start, with its code, message and related information.
    fn show(text: &str, files: &Memory) -> String {
        let doc = document_with(text, files);
        let shown: Vec<String> = doc
            .diagnostics()
            .iter()
            .map(|d| {
                let mut out = draw(text, d.range.start);
                let code = match &d.code {
                    Some(lsp_types::NumberOrString::String(c)) => c.clone(),
                    other => format!("{other:?}"),
                };
                out.push_str(&format!("{} {:?} {code}\n{}", show_range(&doc, Some(d.range)), d.severity, d.message));
                for r in d.related_information.iter().flatten() {
                    out.push_str(&format!("\nrelated: {} {}", show_range(&doc, Some(r.location.range)), r.message));
                }
                out
            })
            .collect();
        shown.join("\n====\n")
    }

    #[test]
    fn each_statement_its_own_diagnostics() {
        let text = "delete(kind = \"Pod\");\nremove(kind == \"Job\", $x.a);\nmodify(kind == \"Pod\", metadata.labels.n = 1);\n";
        insta::assert_snapshot!(show(text, &Memory(HashMap::new())));
    }

    #[test]
    fn a_second_label_is_related_information() {
        let text =
            "remove($c := spec.volumes[*] | exists($c.secret) && $c := spec.containers[*] | exists($c.env), $c);\n";
        insta::assert_snapshot!(show(text, &Memory(HashMap::new())));
    }

    #[test]
    fn insert_files_come_from_what_the_engine_is_given() {
        let text = "insert(@t == 1m, file(\"pod.yaml\"));\ninsert(@t == 2m, file(\"missing.yaml\"));\n";
        let files = Memory(HashMap::from([("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n")]));
        insta::assert_snapshot!(show(text, &files));
    }

    #[test]
    fn a_document_the_compiler_failed_on_says_so() {
        #[allow(clippy::unwrap_used)]
        let doc = Document::failed(super::super::fixture::URI.parse().unwrap(), "x".into(), Default::default(), "boom");
        assert!(doc.script.statements.is_empty());
        assert_eq!(doc.diagnostics().len(), 1);
        assert_eq!(doc.diagnostics()[0].message, "skel lsp failed on this script: boom (a bug in skel)");
    }
}
