//! The canonical layout of a SKEL script: what `skel fmt` writes and what the language server
//! answers to `textDocument/formatting`.
//!
//! The formatter re-emits the script's own tokens, each exactly as written (strings with their
//! escapes, numbers, durations, paths with their quoted parts, `TRUE`), so the meaning cannot
//! change; only the whitespace between them is canonical:
//!
//! - No space inside a path (it is one token), none after `(`, `[`, `{` or `!`, none before `)`,
//!   `]`, `}`, `,`, `;` or the `:` of an object member, none between a command, `exists` or
//!   `file` and its `(`. One space after `,` and `:`, and around the binary operators (`==`,
//!   `!=`, `<`, `>`, `<=`, `>=`, `=~`, `!~`, `in`, `&&`, `||`, `:=`, `|`, `=`, `->`).
//! - One statement per line. A statement longer than [`MAX_WIDTH`] characters is broken at the
//!   top level of its command's parentheses (never inside a path, a string or brackets): before
//!   each `&&` and `||` of the selector, and after the `,` that ends the selector. Each
//!   continuation line is indented 4 spaces (and starts with the operator, or with the action
//!   after the `,`); lines are filled greedily: a break is made only where the next part would
//!   not fit. A part that does not fit on a line of its own stays long.
//! - Comments stay where they are, their text as written (trailing whitespace removed). A
//!   comment on its own line between statements stays on its own line, not indented; one after a
//!   statement on its line stays there, after one space. A comment inside a statement stays after
//!   the token it follows (at the end of that line, or on its own line indented 4 spaces when it
//!   was on its own line), and the statement continues on the next line, indented 4 spaces.
//! - Blank lines between statements and comments are kept, at most one in a row; none at the
//!   start, none inside a statement. The text ends with exactly one newline (`\n`), unless it is
//!   empty (a script of only whitespace formats to the empty text).
//!
//! The layout depends only on the tokens and comments, so formatting is idempotent. The tokens
//! are found from the AST's spans (paths, literals, keys, operators, variables, commands) and the
//! punctuation between them, so only a script that parses is formatted. Before the result is
//! returned it is parsed again and must hold the same tokens, the same comments and the same
//! AST (spans aside); otherwise the formatter reports a bug rather than change the script.

use crate::ast::*;
use crate::error::ParseError;
use crate::lower::parse;

/// The width (in characters, a comment at the end of the line not counted) beyond which a
/// statement is broken into several lines.
pub const MAX_WIDTH: usize = 100;

/// The indentation of a statement's continuation lines.
const INDENT: &str = "    ";

/// Why a script was not formatted.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum FormatError {
    /// The script does not parse: its diagnostics, as [`parse`](crate::parse) reports them
    /// (spans into the script). Only a script that parses is formatted.
    #[error("the script does not parse")]
    #[diagnostic(help("only a script that parses can be formatted: fix these errors first"))]
    Parse(#[related] Vec<ParseError>),
    /// The layout would have changed the script's tokens, comments or syntax tree: a bug in the
    /// formatter. Nothing was formatted.
    #[error("the formatter would change the script: {0}")]
    #[diagnostic(
        code(skel::internal::format),
        help("this is a bug in skel's formatter; please report it with the script (the script was left as it was)")
    )]
    Internal(String),
}

impl FormatError {
    /// The parse diagnostics (none for an internal error).
    pub fn parse_errors(&self) -> &[ParseError] {
        match self {
            FormatError::Parse(errors) => errors,
            FormatError::Internal(_) => &[],
        }
    }
}

/// Formats a script in the canonical style; the script must parse (else
/// [`FormatError::Parse`] with its diagnostics).
pub fn format(src: &str) -> Result<String, FormatError> {
    let parsed = parse(src);
    if !parsed.errors.is_empty() {
        return Err(FormatError::Parse(parsed.errors));
    }
    let items = lex(src, &parsed.script)?;
    let out = layout(&items)?;
    verify(&parsed.script, &items, &out)?;
    Ok(out)
}

// ------------------------------------------------------------------------------- tokens

/// What a token is, as far as spacing and line breaking care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `delete`, `remove`, ...
    Command,
    /// `exists`, `file`: followed by `(`.
    Keyword,
    /// A path, a literal, an object key, a variable, `*` (every object), `@t`.
    Value,
    /// A binary operator: a comparison, `in`, `&&`, `||`, `:=`, `|`, `=`, `->`.
    Op,
    /// `!`
    Bang,
    /// `(`, `[`, `{`
    Open,
    /// `)`, `]`, `}`
    Close,
    Comma,
    /// The `:` of an object member.
    Colon,
    Semi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Token(Kind, &'a str),
    /// A comment from its `#`, trailing whitespace removed.
    Comment(&'a str),
}

#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    piece: Piece<'a>,
    /// Line breaks between the previous item and this one.
    newlines: usize,
}

fn internal(what: impl Into<String>) -> FormatError {
    FormatError::Internal(what.into())
}

/// The script's tokens and comments in order. The tokens with content (paths, literals, keys,
/// operators, variables, commands) come from the AST's spans; the text between them holds only
/// whitespace, comments and punctuation.
fn lex<'a>(src: &'a str, script: &Script) -> Result<Vec<Item<'a>>, FormatError> {
    let mut atoms = Vec::new();
    for s in &script.statements {
        statement_atoms(s, &mut atoms);
    }
    atoms.sort_by_key(|(span, _)| span.start);
    let mut lexer = Lexer { src, items: Vec::new(), newlines: 0 };
    // A byte-order mark at the start is whitespace to the parser; the formatted text has none.
    let mut pos = if src.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    for (span, kind) in atoms {
        if span.start < pos || span.end <= span.start {
            return Err(internal(format!("overlapping or empty tokens at {span}")));
        }
        lexer.gap(pos, span.start)?;
        let text =
            src.get(span.start..span.end).ok_or_else(|| internal(format!("a token outside the script at {span}")))?;
        lexer.push(Piece::Token(kind, text));
        pos = span.end;
    }
    lexer.gap(pos, src.len())?;
    Ok(lexer.items)
}

fn statement_atoms(s: &Statement, out: &mut Vec<(Span, Kind)>) {
    out.push((s.command_span, Kind::Command));
    match &s.selector {
        None => {}
        Some(Selector::All(span)) => out.push((*span, Kind::Value)),
        Some(Selector::And(tests)) => tests.iter().for_each(|t| test_atoms(t, out)),
    }
    match &s.action {
        Action::Delete => {}
        Action::Remove(p) => out.push((p.span, Kind::Value)),
        Action::Modify { target, value } => {
            out.push((target.span, Kind::Value));
            operand_atoms(value, out);
        }
        Action::Transfer { from, to, .. } => {
            out.push((from.span, Kind::Value));
            out.push((to.span, Kind::Value));
        }
        Action::Insert(o) => operand_atoms(o, out),
        Action::InsertFile { span, .. } => out.push((*span, Kind::Value)),
    }
}

fn test_atoms(t: &Test, out: &mut Vec<(Span, Kind)>) {
    match t {
        Test::Time { op_span, value, .. } => {
            out.push((*op_span, Kind::Op));
            operand_atoms(value, out);
        }
        Test::Field(f) => field_test_atoms(f, out),
        Test::Bind { var, path, test, .. } => {
            out.push((var.span, Kind::Value));
            out.push((path.span, Kind::Value));
            field_test_atoms(test, out);
        }
        Test::Or { branches, .. } => branches.iter().flatten().for_each(|t| test_atoms(t, out)),
        Test::Not { tests, .. } => tests.iter().for_each(|t| test_atoms(t, out)),
    }
}

fn field_test_atoms(t: &FieldTest, out: &mut Vec<(Span, Kind)>) {
    match t {
        FieldTest::Exists { path, .. } | FieldTest::NotExists { path, .. } => out.push((path.span, Kind::Value)),
        FieldTest::Compare { lhs, op_span, rhs, .. } => {
            out.push((lhs.span, Kind::Value));
            out.push((*op_span, Kind::Op));
            operand_atoms(rhs, out);
        }
    }
}

fn operand_atoms(o: &Operand, out: &mut Vec<(Span, Kind)>) {
    match o {
        Operand::Literal(l) => out.push((l.span, Kind::Value)),
        Operand::Path(p) => out.push((p.span, Kind::Value)),
        Operand::Array { items, .. } => items.iter().for_each(|i| operand_atoms(i, out)),
        Operand::Object { members, .. } => {
            for m in members {
                out.push((m.key_span, Kind::Value));
                operand_atoms(&m.value, out);
            }
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    items: Vec<Item<'a>>,
    newlines: usize,
}

impl<'a> Lexer<'a> {
    fn push(&mut self, piece: Piece<'a>) {
        self.items.push(Item { piece, newlines: std::mem::take(&mut self.newlines) });
    }

    /// The text between two tokens from the AST: whitespace, comments and punctuation only.
    fn gap(&mut self, start: usize, end: usize) -> Result<(), FormatError> {
        let text = self.src.get(start..end).ok_or_else(|| internal(format!("a gap outside the script at {start}")))?;
        let mut pos = 0;
        while let Some(rest) = text.get(pos..).filter(|r| !r.is_empty()) {
            let token = |kind: Kind, len: usize| (len, Some(Piece::Token(kind, rest.get(..len).unwrap_or(""))));
            let (len, piece) = match rest.as_bytes().first().copied().unwrap_or(b' ') {
                b' ' | b'\t' | b'\r' => (1, None),
                b'\n' => {
                    self.newlines += 1;
                    (1, None)
                }
                b'#' => {
                    let len = rest.find('\n').unwrap_or(rest.len());
                    (len, Some(Piece::Comment(rest.get(..len).unwrap_or("#").trim_end())))
                }
                b'(' | b'[' | b'{' => token(Kind::Open, 1),
                b')' | b']' | b'}' => token(Kind::Close, 1),
                b',' => token(Kind::Comma, 1),
                b';' => token(Kind::Semi, 1),
                b':' if rest.starts_with(":=") => token(Kind::Op, 2),
                b':' => token(Kind::Colon, 1),
                b'|' if rest.starts_with("||") => token(Kind::Op, 2),
                b'|' => token(Kind::Op, 1),
                b'&' if rest.starts_with("&&") => token(Kind::Op, 2),
                b'-' if rest.starts_with("->") => token(Kind::Op, 2),
                b'!' if !rest.starts_with("!=") && !rest.starts_with("!~") => token(Kind::Bang, 1),
                b'=' if !rest.starts_with("==") && !rest.starts_with("=~") => token(Kind::Op, 1),
                b'@' if rest.starts_with("@t") => token(Kind::Value, 2),
                b'e' if rest.starts_with("exists") => token(Kind::Keyword, 6),
                b'f' if rest.starts_with("file") => token(Kind::Keyword, 4),
                _ => {
                    let found: String = rest.chars().take(10).collect();
                    return Err(internal(format!("unexpected `{found}` at byte {}", start + pos)));
                }
            };
            if let Some(piece) = piece {
                self.push(piece);
            }
            pos += len;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------- layout

/// Whether a space goes between two tokens on a line.
fn spaced(before: Kind, after: Kind) -> bool {
    // No space after an opening bracket or `!`, before a closing one or a separator, or
    // between a command, `exists` or `file` and its `(`; one everywhere else.
    !matches!(
        (before, after),
        (Kind::Open | Kind::Bang, _)
            | (_, Kind::Close | Kind::Comma | Kind::Colon | Kind::Semi)
            | (Kind::Command | Kind::Keyword, Kind::Open)
    )
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn layout(items: &[Item<'_>]) -> Result<String, FormatError> {
    let mut lines: Vec<String> = Vec::new();
    // The last line ends with a statement (a comment on the same line goes after it).
    let mut after_statement = false;
    let mut i = 0;
    while let Some(item) = items.get(i) {
        let blank_before = item.newlines >= 2 && !lines.is_empty();
        match item.piece {
            Piece::Comment(text) => {
                match lines.last_mut() {
                    Some(last) if after_statement && item.newlines == 0 => {
                        last.push(' ');
                        last.push_str(text);
                    }
                    _ => {
                        if blank_before {
                            lines.push(String::new());
                        }
                        lines.push(text.to_string());
                    }
                }
                after_statement = false;
                i += 1;
            }
            Piece::Token(Kind::Command, _) => {
                let len = items
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .position(|it| matches!(it.piece, Piece::Token(Kind::Semi, _)))
                    .ok_or_else(|| internal("a statement without `;`"))?;
                if blank_before {
                    lines.push(String::new());
                }
                statement(items.get(i..=i + len).unwrap_or_default(), &mut lines);
                after_statement = true;
                i += len + 1;
            }
            Piece::Token(_, text) => return Err(internal(format!("`{text}` outside a statement"))),
        }
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// Lays out one statement, from its command to its `;`, onto `lines`.
fn statement(items: &[Item<'_>], lines: &mut Vec<String>) {
    // The line may break at the top level of the command's parentheses: before an `&&` or
    // `||`, and after the `,` that ends the selector.
    let mut depth = 0usize;
    let mut after_comma = false;
    let breaks: Vec<bool> = items
        .iter()
        .map(|it| {
            let Piece::Token(kind, text) = it.piece else { return false };
            let top = depth == 1;
            let may_break = top && (after_comma || (kind == Kind::Op && matches!(text, "&&" | "||")));
            after_comma = top && kind == Kind::Comma;
            match kind {
                Kind::Open => depth += 1,
                Kind::Close => depth = depth.saturating_sub(1),
                _ => {}
            }
            may_break
        })
        .collect();
    let mut line = String::new();
    // The last token on the line; `None` while the line holds nothing but its indentation.
    let mut prev: Option<Kind> = None;
    for (k, (item, &may_break)) in items.iter().zip(&breaks).enumerate() {
        match item.piece {
            Piece::Comment(text) => {
                if prev.is_some() && item.newlines == 0 {
                    line.push(' ');
                    line.push_str(text);
                    lines.push(std::mem::take(&mut line));
                } else {
                    if prev.is_some() {
                        lines.push(std::mem::take(&mut line));
                    }
                    lines.push(format!("{INDENT}{text}"));
                }
                line = INDENT.to_string();
                prev = None;
            }
            Piece::Token(kind, text) => {
                if let Some(p) = prev {
                    if may_break && width(&line) + run_width(items, &breaks, k, p) > MAX_WIDTH {
                        lines.push(std::mem::take(&mut line));
                        line = INDENT.to_string();
                        prev = None;
                    }
                }
                if prev.is_some_and(|p| spaced(p, kind)) {
                    line.push(' ');
                }
                line.push_str(text);
                prev = Some(kind);
            }
        }
    }
    if prev.is_some() {
        lines.push(line);
    }
}

/// The width the tokens from `start` take on the current line (the space before them
/// included): up to the next place the line may break, the next comment, or the `;`.
fn run_width(items: &[Item<'_>], breaks: &[bool], start: usize, mut prev: Kind) -> usize {
    let mut w = 0;
    let rest = items.get(start..).unwrap_or_default().iter().zip(breaks.get(start..).unwrap_or_default());
    for (k, (item, &may_break)) in rest.enumerate() {
        if k > 0 && may_break {
            break;
        }
        match item.piece {
            Piece::Comment(_) => break,
            Piece::Token(kind, text) => {
                w += usize::from(spaced(prev, kind)) + width(text);
                prev = kind;
            }
        }
    }
    w
}

// ------------------------------------------------------------------------------- checking

/// The formatted text must parse to the same tokens, comments and AST as the original.
fn verify(script: &Script, items: &[Item<'_>], out: &str) -> Result<(), FormatError> {
    let again = parse(out);
    if let Some(e) = again.errors.first() {
        return Err(internal(format!("the result does not parse ({e})")));
    }
    let again_items = lex(out, &again.script)?;
    if !items.iter().map(|i| i.piece).eq(again_items.iter().map(|i| i.piece)) {
        return Err(internal("the tokens or comments differ"));
    }
    if without_spans(script) != without_spans(&again.script) {
        return Err(internal("the syntax tree differs"));
    }
    Ok(())
}

/// The script with every span set to `0..0`, for comparing what two scripts say.
fn without_spans(script: &Script) -> Script {
    let mut s = script.clone();
    for st in &mut s.statements {
        st.span = Span::default();
        st.command_span = Span::default();
        match &mut st.selector {
            None => {}
            Some(Selector::All(span)) => *span = Span::default(),
            Some(Selector::And(tests)) => tests.iter_mut().for_each(erase_test),
        }
        match &mut st.action {
            Action::Delete => {}
            Action::Remove(p) => erase_path(p),
            Action::Modify { target, value } => {
                erase_path(target);
                erase_operand(value);
            }
            Action::Transfer { from, to, .. } => {
                erase_path(from);
                erase_path(to);
            }
            Action::Insert(o) => erase_operand(o),
            Action::InsertFile { span, .. } => *span = Span::default(),
        }
    }
    s
}

fn erase_test(t: &mut Test) {
    match t {
        Test::Time { op_span, value, span, .. } => {
            *op_span = Span::default();
            *span = Span::default();
            erase_operand(value);
        }
        Test::Field(f) => erase_field_test(f),
        Test::Bind { var, path, test, span } => {
            var.span = Span::default();
            *span = Span::default();
            erase_path(path);
            erase_field_test(test);
        }
        Test::Or { branches, span } => {
            *span = Span::default();
            branches.iter_mut().flatten().for_each(erase_test);
        }
        Test::Not { tests, span } => {
            *span = Span::default();
            tests.iter_mut().for_each(erase_test);
        }
    }
}

fn erase_field_test(t: &mut FieldTest) {
    match t {
        FieldTest::Exists { path, span } | FieldTest::NotExists { path, span } => {
            *span = Span::default();
            erase_path(path);
        }
        FieldTest::Compare { lhs, op_span, rhs, span, .. } => {
            *op_span = Span::default();
            *span = Span::default();
            erase_path(lhs);
            erase_operand(rhs);
        }
    }
}

fn erase_operand(o: &mut Operand) {
    match o {
        Operand::Literal(l) => l.span = Span::default(),
        Operand::Path(p) => erase_path(p),
        Operand::Array { items, span } => {
            *span = Span::default();
            items.iter_mut().for_each(erase_operand);
        }
        Operand::Object { members, span } => {
            *span = Span::default();
            for m in members {
                m.key_span = Span::default();
                erase_operand(&mut m.value);
            }
        }
    }
}

fn erase_path(p: &mut Path) {
    p.span = Span::default();
    if let Some(v) = &mut p.var {
        v.span = Span::default();
    }
    for seg in &mut p.segments {
        match seg {
            Segment::Key { span, .. }
            | Segment::Index { span, .. }
            | Segment::AnyIndex { span }
            | Segment::AnyKey { span } => *span = Span::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        let parsed = parse(src);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        lex(src, &parsed.script)
            .map(|items| {
                items
                    .iter()
                    .map(|i| match i.piece {
                        Piece::Token(_, t) => t.to_string(),
                        Piece::Comment(c) => format!("{c}/{}", i.newlines),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn tokens_come_from_the_ast_and_the_gaps() {
        assert_eq!(
            texts("delete( ! exists( a.\"b c\"[*] ) && x in [1,\"2\"] ) ; # c"),
            [
                "delete",
                "(",
                "!",
                "exists",
                "(",
                "a.\"b c\"[*]",
                ")",
                "&&",
                "x",
                "in",
                "[",
                "1",
                ",",
                "\"2\"",
                "]",
                ")",
                ";",
                "# c/0"
            ]
        );
        assert_eq!(
            texts("insert(@t==5m,{\"k\":file});\n\n# end\r\n"),
            ["insert", "(", "@t", "==", "5m", ",", "{", "\"k\"", ":", "file", "}", ")", ";", "# end/2"]
        );
        assert_eq!(
            texts("insert(@t == 0s, file(\"x.yaml\"));"),
            ["insert", "(", "@t", "==", "0s", ",", "file", "(", "\"x.yaml\"", ")", ")", ";"]
        );
    }

    #[test]
    fn the_check_catches_a_changed_token() {
        let src = "delete(kind == \"Pod\");";
        let parsed = parse(src);
        let items = lex(src, &parsed.script).unwrap_or_default();
        assert_eq!(verify(&parsed.script, &items, "delete(kind == \"Pod\");\n"), Ok(()));
        assert!(matches!(verify(&parsed.script, &items, "delete(kind != \"Pod\");\n"), Err(FormatError::Internal(_))));
        assert!(matches!(verify(&parsed.script, &items, "delete(kind == \"Pod\")\n"), Err(FormatError::Internal(_))));
        let with_comment = "delete(kind == \"Pod\"); # x\n";
        assert!(matches!(verify(&parsed.script, &items, with_comment), Err(FormatError::Internal(_))));
    }

    #[test]
    fn a_script_that_does_not_parse_is_refused() {
        let e = format("remove(status) remove(spec);").expect_err("does not parse");
        assert_eq!(e.parse_errors().len(), 1);
    }
}
