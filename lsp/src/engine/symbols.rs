//! Document symbols: one per statement, named by its command and selector.

use lsp_types::{DocumentSymbol, SymbolKind};
use skel::ast::Span;
use skel::explore;

use super::analysis;
use super::Document;
use skel_grammar::registry;

pub fn symbols(doc: &Document) -> Vec<DocumentSymbol> {
    let statements = &doc.script.statements;
    statements
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let next = statements.get(i + 1).map_or(doc.text.len(), |n| n.span.start);
            let end = statement_end(&doc.text, s.span.end, next);
            #[allow(deprecated)]
            DocumentSymbol {
                name: analysis::statement_name(&doc.text, s),
                detail: Some(registry::command(s.command).signature.to_string()),
                kind: SymbolKind::FUNCTION,
                tags: None,
                deprecated: None,
                range: doc.range(Span::new(s.span.start, end)),
                selection_range: doc.range(s.command_span),
                children: None,
            }
        })
        .collect()
}

/// Just past the `;` that ends a statement whose command ends at `end`, looked for before
/// `next` (where the next statement starts: each stretch of text is read once).
fn statement_end(text: &str, end: usize, next: usize) -> usize {
    let mut semi = None;
    explore::code_chars(text.get(end..next.max(end)).unwrap_or(""), |i, c| {
        if c == ';' && semi.is_none() {
            semi = Some(end + i + 1);
        }
    });
    semi.unwrap_or(end)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{document, show_range};
    use super::*;

    #[test]
    fn one_symbol_per_statement_to_its_semicolon() {
        let text = "# migrate\nmodify(kind == \"CronJob\" && apiVersion == \"batch/v1beta1\",\n       \
                    apiVersion = \"batch/v1\");\nremove(  status )   ; # done\n";
        let doc = document(text);
        let shown: Vec<String> = symbols(&doc)
            .iter()
            .map(|s| {
                format!(
                    "{}\n  detail: {}\n  range: {}\n  selection: {}",
                    s.name,
                    s.detail.as_deref().unwrap_or("-"),
                    show_range(&doc, Some(s.range)),
                    show_range(&doc, Some(s.selection_range))
                )
            })
            .collect();
        insta::assert_snapshot!(format!("{text}----\n{}", shown.join("\n")));
    }
}
