//! Formatting: the whole document as `skel fmt` writes it.

use lsp_types::TextEdit;

use super::Document;

/// One edit to the canonical text, none when it is canonical already, `None` for a script
/// that does not parse (its diagnostics say why; it is left as it is).
pub fn format(doc: &Document) -> Option<Vec<TextEdit>> {
    let formatted = skel_grammar::format(&doc.text).ok()?;
    if formatted == doc.text {
        return Some(Vec::new());
    }
    let range = doc.lines.range(&doc.text, 0, doc.text.len());
    Some(vec![TextEdit { range, new_text: formatted }])
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{document, show_range};
    use super::*;

    fn show(text: &str) -> String {
        let doc = document(text);
        match format(&doc) {
            None => format!("{text}----\n(left as it is)"),
            Some(edits) if edits.is_empty() => format!("{text}----\n(canonical already)"),
            Some(edits) => {
                let e = &edits[0];
                format!("{text}----\n{} replaced by:\n{}", show_range(&doc, Some(e.range)), e.new_text)
            }
        }
    }

    #[test]
    fn the_canonical_text_once() {
        insta::assert_snapshot!(show("# keep me\ndelete( kind==\"Pod\" ) ;\nremove(status);   # and me\n"));
        insta::assert_snapshot!(show("delete(kind == \"Pod\");\n"));
        insta::assert_snapshot!(show("delete(kind == \"Pod\"\n"));
    }
}
