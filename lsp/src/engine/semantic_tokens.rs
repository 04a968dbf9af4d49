//! Semantic tokens: the lexer's tokens, in the protocol's relative encoding.

use lsp_types::{Position, SemanticToken};

use super::Document;
use skel_grammar::lex;

pub fn semantic_tokens(doc: &Document) -> Vec<SemanticToken> {
    let mut data = Vec::new();
    let mut prev = Position::new(0, 0);
    for t in lex::lex(&doc.text) {
        let start = doc.lines.position(&doc.text, t.start);
        let end = doc.lines.position(&doc.text, t.end);
        let delta_line = start.line - prev.line;
        let delta_start = if delta_line == 0 { start.character - prev.character } else { start.character };
        data.push(SemanticToken {
            delta_line,
            delta_start,
            length: end.character.saturating_sub(start.character),
            token_type: t.kind as u32,
            token_modifiers_bitset: 0,
        });
        prev = start;
    }
    data
}

#[cfg(test)]
mod tests {
    use super::super::fixture::document;
    use super::*;

    /// Each token decoded back to its line, column, text and type.
    #[test]
    fn every_kind_of_token_with_utf16_columns() {
        let text = "# c\nmodify($x := spec.c[*] | $x.n == \"é😀\", $x.v = 1);\n";
        let doc = document(text);
        let (mut line, mut column) = (0, 0);
        let mut shown = Vec::new();
        for t in semantic_tokens(&doc) {
            if t.delta_line > 0 {
                column = 0;
            }
            line += t.delta_line;
            column += t.delta_start;
            let units: Vec<u16> = text.lines().nth(line as usize).unwrap_or("").encode_utf16().collect();
            let word = units.get(column as usize..(column + t.length) as usize).unwrap_or(&[]);
            let kind = lex::TYPES.get(t.token_type as usize).unwrap_or(&"?");
            shown.push(format!("{line}:{column} {:?} {kind}", String::from_utf16_lossy(word)));
        }
        insta::assert_snapshot!(format!("{text}----\n{}", shown.join("\n")));
    }
}
