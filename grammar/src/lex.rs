//! The one SKEL lexer for colouring: it names each token's kind (commands, keywords,
//! variables, paths, strings, numbers, operators, comments). It needs no parse, so it colours
//! a script that does not parse too (a line being typed in the REPL, a script being edited).
//! The language server's semantic tokens and the REPL's highlighting are made from it; the
//! words come from [`crate::registry`].

use crate::registry;

/// The language server's token types (its legend), in the order `Kind` numbers them.
pub const TYPES: &[&str] = &["function", "keyword", "variable", "property", "string", "number", "operator", "comment"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Command = 0,
    Keyword = 1,
    Variable = 2,
    Path = 3,
    String = 4,
    Number = 5,
    Operator = 6,
    Comment = 7,
}

/// A token: byte range and kind. Tokens never span lines: a string holding a newline is
/// two tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The tokens of a text, in order; what lies between them (spaces, brackets, commas) has no
/// kind.
pub fn lex(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<Token>, start: usize, end: usize, kind: Kind| {
        // A token never spans lines: split at newlines (a string may hold one).
        let mut s = start;
        for (k, c) in src[start..end].char_indices() {
            if c == '\n' {
                if start + k > s {
                    out.push(Token { start: s, end: start + k, kind });
                }
                s = start + k + 1;
            }
        }
        if end > s {
            out.push(Token { start: s, end, kind });
        }
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                push(&mut out, start, i, Kind::Comment);
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                // A quoted key right after a `.` is part of a path.
                let kind = if start > 0 && b[start - 1] == b'.' { Kind::Path } else { Kind::String };
                push(&mut out, start, i, kind);
            }
            b'$' | b'@' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let kind = if c == b'@' { Kind::Keyword } else { Kind::Variable };
                push(&mut out, start, i, kind);
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                let after_dot = start > 0 && matches!(b[start - 1], b'.' | b'[');
                push(&mut out, start, i, if after_dot { Kind::Path } else { Kind::Number });
            }
            b'-' if b.get(i + 1).is_some_and(u8::is_ascii_digit) && !prev_is_value(b, start) => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                push(&mut out, start, i, Kind::Number);
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-' || b[i] >= 0x80) {
                    i += 1;
                }
                let word = &src[start..i];
                let in_path = start > 0 && b[start - 1] == b'.';
                let next = src[i..].trim_start().chars().next();
                let kind = if !in_path && registry::by_name(word).is_some() && next == Some('(') {
                    Kind::Command
                } else if !in_path && registry::KEYWORDS.contains(&word) {
                    Kind::Keyword
                } else {
                    Kind::Path
                };
                push(&mut out, start, i, kind);
            }
            b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b':' | b'~' => {
                while i < b.len() && matches!(b[i], b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b':' | b'~') {
                    i += 1;
                }
                push(&mut out, start, i, Kind::Operator);
            }
            b'-' if b.get(i + 1) == Some(&b'>') => {
                i += 2;
                push(&mut out, start, i, Kind::Operator);
            }
            b'*' => {
                i += 1;
                push(&mut out, start, i, Kind::Path);
            }
            _ => i += 1,
        }
        // Keep to character boundaries.
        while i < b.len() && !src.is_char_boundary(i) {
            i += 1;
        }
    }
    out
}

/// The byte before `at` (spaces skipped) ends a value: a `-` after it is not a sign.
fn prev_is_value(b: &[u8], at: usize) -> bool {
    b[..at].iter().rev().find(|c| !c.is_ascii_whitespace()).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(&str, Kind)> {
        lex(src).into_iter().map(|t| (&src[t.start..t.end], t.kind)).collect()
    }

    #[test]
    fn every_kind_of_token() {
        let src = "# c\nmodify($x := spec.c[*] | $x.n == \"a\" && @t > 5m, $x.v = -1); # end";
        assert_eq!(
            kinds(src),
            vec![
                ("# c", Kind::Comment),
                ("modify", Kind::Command),
                ("$x", Kind::Variable),
                (":=", Kind::Operator),
                ("spec", Kind::Path),
                ("c", Kind::Path),
                ("*", Kind::Path),
                ("|", Kind::Operator),
                ("$x", Kind::Variable),
                ("n", Kind::Path),
                ("==", Kind::Operator),
                ("\"a\"", Kind::String),
                ("&&", Kind::Operator),
                ("@t", Kind::Keyword),
                (">", Kind::Operator),
                ("5m", Kind::Number),
                ("$x", Kind::Variable),
                ("v", Kind::Path),
                ("=", Kind::Operator),
                ("-1", Kind::Number),
                ("# end", Kind::Comment),
            ]
        );
    }

    #[test]
    fn quoted_keys_are_paths_and_tokens_stay_on_one_line() {
        let src = "remove(metadata.labels.\"app.kubernetes.io/name\");\ndelete(name == \"a\nb\");";
        let k = kinds(src);
        assert!(k.contains(&("\"app.kubernetes.io/name\"", Kind::Path)));
        assert!(k.contains(&("\"a", Kind::String)) && k.contains(&("b\"", Kind::String)));
        assert!(lex("exists(é.ü)").iter().all(|t| t.end <= "exists(é.ü)".len()));
    }
}
