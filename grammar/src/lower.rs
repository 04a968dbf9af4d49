//! Script -> AST: splits the source into statements, runs pest on each, and lowers pest pairs
//! into `ast` nodes; pest's own errors are translated here and never escape the crate.

use pest::iterators::Pair;
use pest::Parser as _;

use crate::ast::*;
use crate::error::ParseError;

#[derive(pest_derive::Parser)]
#[grammar = "../skel.pest"]
struct SkelParser;

/// The result of parsing: the statements that parsed, and a diagnostic for each that did not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub script: Script,
    pub errors: Vec<ParseError>,
}

/// How deep a statement may nest `(`, `[` and `{`, and how many segments a path may have (the
/// levels it reaches into an object). Far below what overflows the stack of any stage that
/// walks the tree (the parser, the checker, the emitter, the formatter, on a thread of the
/// language server too), and as deep as the trace readers read objects.
pub const MAX_DEPTH: usize = 128;

/// A UTF-8 byte-order mark, which some editors write at the start of a file: whitespace there.
const BOM: char = '\u{feff}';

/// Parses a whole script. Never fails as a whole: a bad statement yields a diagnostic and the
/// others are still parsed (the language server and `skel compile` report all of them).
pub fn parse(src: &str) -> Parsed {
    let mut out = Parsed::default();
    let chunks = match split_statements(src) {
        Ok(c) => c,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    for chunk in chunks {
        let text = src.get(chunk.start..chunk.end).unwrap_or("");
        if chunk.terminated && is_blank(text) {
            out.errors.push(ParseError::EmptyStatement { span: Span::new(chunk.end, chunk.end + 1) });
            continue;
        }
        if !chunk.terminated && is_blank(text) {
            continue;
        }
        match parse_statement(text, chunk.start) {
            Ok(stmt) => {
                if chunk.terminated {
                    out.script.statements.push(stmt);
                } else {
                    let end = stmt.span.end;
                    out.errors.push(ParseError::MissingSemicolon { span: Span::new(end.saturating_sub(1), end) });
                }
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}

struct Chunk {
    start: usize,
    end: usize,
    /// Ended by `;` (the last chunk of a script may not be).
    terminated: bool,
}

/// Splits at top-level `;`, skipping strings and comments.
fn split_statements(src: &str) -> Result<Vec<Chunk>, ParseError> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut iter = src.char_indices();
    if src.starts_with(BOM) {
        iter.next();
        start = BOM.len_utf8();
    }
    while let Some((i, c)) = iter.next() {
        match c {
            '"' => {
                let mut closed = false;
                while let Some((_, c2)) = iter.next() {
                    match c2 {
                        '"' => {
                            closed = true;
                            break;
                        }
                        // `\"` and `\\` do not end the string.
                        '\\' if matches!(src.get(iter.offset()..iter.offset() + 1), Some("\"" | "\\")) => {
                            iter.next();
                        }
                        _ => {}
                    }
                }
                if !closed {
                    return Err(ParseError::UnterminatedString { span: Span::new(i, i + 1) });
                }
            }
            '#' => {
                for (_, c2) in iter.by_ref() {
                    if c2 == '\n' {
                        break;
                    }
                }
            }
            ';' => {
                chunks.push(Chunk { start, end: i, terminated: true });
                start = i + 1;
            }
            _ => {}
        }
    }
    chunks.push(Chunk { start, end: src.len(), terminated: false });
    Ok(chunks)
}

/// True when the text holds only whitespace and comments.
/// Whether a chunk between statements holds only the grammar's whitespace (` `, tab, CR, LF)
/// and comments. Other whitespace (a vertical tab, U+2028, ...) is not blank: it is a syntax
/// error that points at it, as it is inside a statement, and the formatter agrees.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let t = line.trim_matches([' ', '\t', '\r']);
        t.is_empty() || t.starts_with('#')
    })
}

fn parse_statement(text: &str, offset: usize) -> Result<Statement, ParseError> {
    check_depth(text, offset)?;
    check_command_name(text, offset)?;
    let mut pairs = match SkelParser::parse(Rule::statement, text) {
        Ok(p) => p,
        Err(e) => return Err(translate_error(text, offset, &e, Rule::statement)),
    };
    let stmt = pairs.next().and_then(|p| p.into_inner().next()).ok_or_else(|| internal(offset))?;
    Lower { offset }.statement(stmt)
}

/// Parses a field path on its own (`spec.containers[*].image`); `offset` is where `text`
/// starts in the source diagnostics point into.
pub fn parse_path(text: &str, offset: usize) -> Result<Path, ParseError> {
    let mut pairs = match SkelParser::parse(Rule::path_only, text) {
        Ok(p) => p,
        Err(e) => return Err(translate_error(text, offset, &e, Rule::path_only)),
    };
    let path = pairs.next().and_then(|p| p.into_inner().next()).ok_or_else(|| internal(offset))?;
    Lower { offset }.path(path)
}

/// An unexpected tree shape; cannot happen for trees produced by the grammar, but the
/// lowering reports it rather than panicking.
fn internal(offset: usize) -> ParseError {
    ParseError::Syntax {
        found: "input".into(),
        span: Span::new(offset, offset),
        expected: "a statement".into(),
        help: None,
    }
}

// ------------------------------------------------------------------ pest error translation

fn translate_error(text: &str, offset: usize, err: &pest::error::Error<Rule>, rule: Rule) -> ParseError {
    if let Some(e) = known_mistake(text, offset) {
        return e;
    }
    let pos = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    // pest points at the furthest *rule* that failed: after a complete value (`"Pod" x`) that is
    // the value, though what failed is the punctuation expected after it.
    if let Some((at, tokens)) = furthest_tokens(text, rule).filter(|(at, _)| *at > pos) {
        let rest = text.get(at..).unwrap_or("");
        if !rest.trim().is_empty() {
            let (found, len) = describe_found(rest);
            return ParseError::Syntax {
                found,
                span: Span::new(offset + at, offset + at + len),
                expected: tokens,
                help: None,
            };
        }
    }
    let positives: Vec<Rule> = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let rest = text.get(pos..).unwrap_or("");

    let before = text.get(..pos).unwrap_or("");
    let (found, len) = describe_found(rest);
    let mut span = Span::new(offset + pos, offset + pos + len);
    if rest.trim().is_empty() {
        // The statement ended early: point at its last character rather than at nothing.
        let last = before.trim_end();
        let start = last.char_indices().last().map_or(0, |(i, _)| i);
        span = Span::new(offset + start, offset + last.len());
    }
    let unclosed = rest.trim().is_empty() && before.matches('(').count() > before.matches(')').count();
    let expected = if unclosed { "`)`".to_string() } else { describe_expected(&positives) };
    let help = syntax_help(before, rest, &positives);
    ParseError::Syntax { found, span, expected, help }
}

/// Refuses a statement that nests brackets more than `MAX_DEPTH` deep, before pest sees it (pest
/// and every stage after it recurse once per level), pointing at the bracket one level too deep.
fn check_depth(text: &str, offset: usize) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut too_deep = None;
    code_chars(text, |i, c| match c {
        '(' | '[' | '{' => {
            depth += 1;
            if depth > MAX_DEPTH && too_deep.is_none() {
                too_deep = Some(i);
            }
        }
        ')' | ']' | '}' => depth = depth.saturating_sub(1),
        _ => {}
    });
    match too_deep {
        Some(i) => Err(ParseError::TooDeep {
            what: "brackets nested",
            limit: MAX_DEPTH,
            span: Span::new(offset + i, offset + i + 1),
            help: format!(
                "a statement nests `(`, `[` and `{{` at most {MAX_DEPTH} levels deep: split the selector into \
                 several statements, or the value into several `modify`s"
            ),
        }),
        None => Ok(()),
    }
}

/// Parses again with pest's error detail, which also records the literal tokens (`)`, `&&`)
/// tried at the furthest position; returns that position and those tokens, when they are all
/// punctuation or operators (`` `)`, `&&` or `||` ``).
fn furthest_tokens(text: &str, rule: Rule) -> Option<(usize, String)> {
    // The detail switch is global to pest: held while this parse runs, so another thread's
    // switching it off cannot cut this one's detail short.
    static DETAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let attempts = {
        let _held = DETAIL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pest::set_error_detail(true);
        let err = SkelParser::parse(rule, text).err();
        pest::set_error_detail(false);
        err?.parse_attempts()?
    };
    let mut tokens = Vec::new();
    for token in attempts.expected_tokens().iter().map(ToString::to_string) {
        // Whitespace and comments may come anywhere; a word, a range of characters (`a..z`) or
        // a built-in rule starts a value or a name, which the rule-based message describes.
        if token.trim().is_empty() || token == "#" {
            continue;
        }
        if token.starts_with(|c: char| c.is_alphanumeric()) || token.contains("..") {
            return None;
        }
        tokens.push(token);
    }
    // Closing brackets first, then `,`, then the operators.
    tokens.sort_by_key(|t| (!matches!(t.as_str(), ")" | "]" | "}"), t != ",", t.clone()));
    let tokens: Vec<String> = tokens.iter().map(|t| format!("`{t}`")).collect();
    let text = match tokens.split_last() {
        None => return None,
        Some((last, [])) => last.clone(),
        Some((last, init)) => format!("{} or {last}", init.join(", ")),
    };
    Some((attempts.max_position, text))
}

/// Reports an unknown command (`modfy(...)`, `DELETE(*)`, `insert(...)`) before pest sees it,
/// so the diagnostic can name the command and suggest the closest one.
fn check_command_name(text: &str, offset: usize) -> Result<(), ParseError> {
    let mut pos = 0;
    // skip leading whitespace and comments
    loop {
        let rest = text.get(pos..).unwrap_or("");
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with('#') {
            pos += trimmed.find('\n').unwrap_or(trimmed.len());
        } else {
            break;
        }
    }
    let rest = text.get(pos..).unwrap_or("");
    let name = leading_word(rest);
    if name.is_empty() || CommandName::ALL.iter().any(|c| c.as_str() == name) {
        return Ok(());
    }
    let span = Span::new(offset + pos, offset + pos + name.len());
    Err(ParseError::UnknownCommand { help: command_help(name), name: name.to_string(), span })
}

/// Calls `f` with each character of SKEL source outside comments and outside strings (a
/// string's opening and closing quotes included, so a string still shows: `"a" ||`); returns
/// whether the text ends inside a string.
pub fn code_chars(text: &str, mut f: impl FnMut(usize, char)) -> bool {
    let (mut in_str, mut escape, mut comment) = (false, false, false);
    for (i, c) in text.char_indices() {
        if comment {
            comment = c != '\n';
        } else if in_str {
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == '"' {
                in_str = false;
                f(i, c);
            }
        } else if c == '#' {
            comment = true;
        } else {
            in_str = c == '"';
            f(i, c);
        }
    }
    in_str
}

/// Mistakes people make often enough to deserve their own message; pest's furthest-failure
/// position would point somewhere less helpful for them.
fn known_mistake(text: &str, offset: usize) -> Option<ParseError> {
    let mut code = Vec::new();
    code_chars(text, |i, c| code.push((i, c)));
    let at = |i: usize, len: usize| Span::new(offset + i, offset + i + len);
    let syntax = |i: usize, len: usize, found: &str, expected: &str, help: &str| ParseError::Syntax {
        found: found.to_string(),
        span: at(i, len),
        expected: expected.to_string(),
        help: Some(help.to_string()),
    };
    let next_non_space = |from: usize| code.iter().skip(from).find(|(_, c)| !c.is_whitespace()).map(|(i, c)| (*i, *c));
    for (k, &(_, c)) in code.iter().enumerate() {
        if c == '*' && code.get(k.wrapping_sub(1)).is_some_and(|(_, p)| *p == '(') {
            if let Some((j, '&')) = next_non_space(k + 1) {
                return Some(syntax(
                    j,
                    2,
                    "`&&`",
                    "`)` or `,` after `*`",
                    "`*` selects every object and stands alone; drop it and keep the tests: `delete(kind == \"Pod\")`",
                ));
            }
        }
    }
    // `a->b`: `-` belongs to the name before it, so the arrow is not seen.
    for (k, &(i, c)) in code.iter().enumerate() {
        let prev = k.checked_sub(1).and_then(|p| code.get(p)).map(|(_, p)| *p);
        let next = code.get(k + 1).map(|(_, n)| *n);
        if c == '-'
            && next == Some('>')
            && prev.is_some_and(|p| p.is_ascii_alphanumeric() || matches!(p, '_' | '"' | ']'))
        {
            return Some(syntax(
                i,
                2,
                "`->`",
                "a path",
                "write spaces around `->` (`FROM -> TO`): a `-` right after a name is part of the name",
            ));
        }
    }
    // `1e5`: an exponent, which SKEL numbers do not have (it would read as a time unit).
    for (k, &(i, c)) in code.iter().enumerate() {
        let starts_number = c.is_ascii_digit()
            && (k == 0 || !code.get(k - 1).is_some_and(|(_, p)| p.is_ascii_alphanumeric() || *p == '.'));
        if starts_number {
            let word = leading_word(text.get(i..).unwrap_or(""));
            let digits = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
            let rest = word.get(digits..).unwrap_or("");
            if rest.len() > 1 && rest.starts_with(['e', 'E']) && rest[1..].chars().all(|c| c.is_ascii_digit()) {
                return Some(syntax(
                    i,
                    word.len(),
                    &format!("`{word}`"),
                    "a number",
                    "numbers are written out in full (`100000`, `0.001`): SKEL has no exponent form",
                ));
            }
        }
    }
    // `1h30m`: a duration with two units.
    let bytes = text.as_bytes();
    for (k, &(i, c)) in code.iter().enumerate() {
        if c.is_ascii_digit() && (k == 0 || !code.get(k - 1).is_some_and(|(_, p)| p.is_ascii_alphanumeric())) {
            let word = leading_word(text.get(i..).unwrap_or(""));
            let units: Vec<char> = word.chars().filter(|c| matches!(c, 'h' | 'm' | 's')).collect();
            let digits_then_units = word.chars().all(|c| c.is_ascii_digit() || matches!(c, 'h' | 'm' | 's'));
            if units.len() > 1
                && digits_then_units
                && bytes.get(i + word.len()).is_none_or(|b| !b.is_ascii_alphanumeric())
            {
                let help = format!("a relative time has one unit: write `{word}` as `{}`", single_unit(word));
                return Some(syntax(i, word.len(), &format!("`{word}`"), "a time with one unit", &help));
            }
        }
    }
    let trimmed = text.trim_start();
    // `insert(@t == T, MANIFEST)`: one manifest, an object or a file.
    let first_arg = trimmed.strip_prefix("insert").map(|r| r.trim_start().trim_start_matches('(').trim_start());
    if first_arg.is_some_and(|a| a.starts_with("@t")) {
        let mut depth = 0i32;
        let mut commas = Vec::new();
        for &(i, c) in &code {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 1 => commas.push(i),
                _ => {}
            }
        }
        if let Some(&second) = commas.get(1) {
            return Some(syntax(
                second,
                1,
                "`,`",
                "`)`: `insert` takes a time and one manifest",
                "insert one object per statement: `insert(@t == 5m, {...}); insert(@t == 5m, {...});`",
            ));
        }
        let arg = commas.first().and_then(|&c| {
            let k = code.iter().position(|(i, _)| *i == c)?;
            next_non_space(k + 1)
        });
        if let Some((j, c)) = arg.filter(|(_, c)| *c != '{') {
            let rest = text.get(j..).unwrap_or("");
            let word = leading_word(rest);
            if word != "file" {
                let len = match c {
                    '"' => rest[1..].find('"').map_or(rest.len(), |e| e + 2),
                    _ if !word.is_empty() => word.len(),
                    _ => c.len_utf8(),
                };
                let token = rest.get(..len).unwrap_or(rest);
                let found = format!("`{token}`");
                let help = if c == '"' {
                    format!("to read the object from that file, write `file({token})`")
                } else {
                    "the object to insert is written as an object (`{\"apiVersion\": \"v1\", \"kind\": ...}`) or read \
                     from a YAML or JSON file"
                        .to_string()
                };
                return Some(syntax(j, len, &found, "a manifest: an object `{...}` or `file(\"x.yaml\")`", &help));
            }
        }
    }
    // `remove(kind == "Pod")`: a selector where the one-argument form wants a path.
    if trimmed.starts_with("remove") {
        let has_comma = code.iter().any(|(_, c)| *c == ',');
        let cmp = code.windows(2).position(|w| matches!((w[0].1, w[1].1), ('=', '=') | ('!', '=')));
        if let (false, Some(k)) = (has_comma, cmp) {
            let i = code.get(k).map_or(0, |(i, _)| *i);
            let op = text.get(i..i + 2).unwrap_or("==");
            return Some(syntax(
                i,
                2,
                &format!("`{op}`"),
                "`)`: `remove(PATH)` takes a path",
                "to remove a field from the objects a selector matches, give both: `remove(SELECTOR, PATH)`",
            ));
        }
    }
    None
}

/// `1h30m` as one unit: `90m`.
fn single_unit(word: &str) -> String {
    let (mut total, mut n) = (0u64, 0u64);
    for c in word.chars() {
        match c {
            '0'..='9' => n = n.saturating_mul(10).saturating_add(u64::from(c) - u64::from('0')),
            'h' | 'm' | 's' => {
                let f = match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                total = total.saturating_add(n.saturating_mul(f));
                n = 0;
            }
            _ => {}
        }
    }
    if total % 3600 == 0 {
        format!("{}h", total / 3600)
    } else if total % 60 == 0 {
        format!("{}m", total / 60)
    } else {
        format!("{total}s")
    }
}

fn leading_word(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(s.len());
    s.get(..end).unwrap_or("")
}

fn command_help(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some(c) = CommandName::ALL.iter().find(|c| c.as_str() == lower) {
        return format!("commands are lower case: did you mean `{c}`?");
    }
    let best =
        CommandName::ALL.iter().map(|c| (strsim::damerau_levenshtein(&lower, c.as_str()), c)).min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 2 => format!("did you mean `{c}`?"),
        _ => format!("SKEL's commands are {}", crate::registry::signatures()),
    }
}

fn describe_found(rest: &str) -> (String, usize) {
    let Some(c) = rest.chars().next() else {
        return ("end of statement".to_string(), 0);
    };
    if c.is_whitespace() {
        return ("whitespace".to_string(), c.len_utf8());
    }
    let word = leading_word(rest);
    if !word.is_empty() {
        return (format!("`{word}`"), word.len());
    }
    for op in ["==", "!=", "<=", ">=", "=>", "=<", ":=", "&&", "||"] {
        if rest.starts_with(op) {
            return (format!("`{op}`"), op.len());
        }
    }
    (format!("`{c}`"), c.len_utf8())
}

fn describe_expected(positives: &[Rule]) -> String {
    if positives == [Rule::time_test] {
        return "`@t == TIME` (the time the object goes in)".to_string();
    }
    let mut names: Vec<&str> = Vec::new();
    for r in positives {
        let n = match r {
            Rule::delete_cmd | Rule::remove_cmd | Rule::modify_cmd | Rule::move_cmd | Rule::copy_cmd => "a command",
            Rule::transfer => "`FROM -> TO`",
            Rule::insert_cmd => "a command",
            Rule::file_ref => "a manifest: `{...}` or `file(\"x.yaml\")`",
            Rule::comparator | Rule::match_op | Rule::in_op => {
                "a comparison (`==`, `!=`, `<`, `>`, `<=`, `>=`, `=~`, `!~`, `in`)"
            }
            Rule::path | Rule::name | Rule::quoted_name | Rule::var => "a field path",
            Rule::index => "`[N]` or `[*]`",
            Rule::number_index | Rule::star | Rule::any_key => "an index, a quoted key or `*`",
            Rule::duration
            | Rule::number
            | Rule::null
            | Rule::string
            | Rule::boolean
            | Rule::array
            | Rule::object
            | Rule::member => "a value",
            Rule::selector
            | Rule::select_all
            | Rule::time_test
            | Rule::var_test
            | Rule::field_test
            | Rule::disjunction
            | Rule::conjunction
            | Rule::negation
            | Rule::group => "a selector",
            Rule::exists | Rule::not_exists | Rule::compare => "a test",
            Rule::assignment => "an assignment `PATH = VALUE`",
            Rule::EOI => "`;`",
            _ => "more input",
        };
        if !names.contains(&n) {
            names.push(n);
        }
    }
    match names.len() {
        0 => "valid SKEL".to_string(),
        1 => names[0].to_string(),
        _ => {
            let (last, init) = names.split_last().unwrap_or((&"", &[]));
            format!("{} or {}", init.join(", "), last)
        }
    }
}

fn syntax_help(before: &str, rest: &str, positives: &[Rule]) -> Option<String> {
    let opened = before.matches('(').count();
    let closed = before.matches(')').count();
    if rest.trim().is_empty() && opened > closed {
        return Some("a `(` is not closed: end the command with `)` before its `;`".into());
    }
    let wants_cmp = positives.contains(&Rule::comparator);
    if wants_cmp && rest.starts_with('=') && !rest.starts_with("==") {
        return Some("use `==` to compare; a single `=` assigns in `modify(SELECTOR, PATH = VALUE)`".into());
    }
    if rest.starts_with('(') {
        let prev = before.trim_end();
        let word_start =
            prev.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).map_or(0, |i| i + 1);
        let prev_word = prev.get(word_start..).unwrap_or("");
        if !prev_word.is_empty() && prev_word != "exists" && strsim::damerau_levenshtein(prev_word, "exists") <= 2 {
            return Some("did you mean `exists(PATH)`?".into());
        }
    }
    if wants_cmp && rest.starts_with(')') {
        return Some(
            "a selector test needs a comparison (`kind == \"Pod\"`) or `exists(PATH)`; \
             the one-argument `remove(PATH)` takes a path only"
                .into(),
        );
    }
    None
}

// ------------------------------------------------------------------ pairs -> AST

struct Lower {
    offset: usize,
}

impl Lower {
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.offset + s.start(), self.offset + s.end())
    }

    fn statement(&self, cmd: Pair<'_, Rule>) -> Result<Statement, ParseError> {
        let span = self.span(&cmd);
        let command = match cmd.as_rule() {
            Rule::delete_cmd => CommandName::Delete,
            Rule::remove_cmd => CommandName::Remove,
            Rule::modify_cmd => CommandName::Modify,
            Rule::move_cmd => CommandName::Move,
            Rule::copy_cmd => CommandName::Copy,
            Rule::insert_cmd => CommandName::Insert,
            _ => return Err(internal(span.start)),
        };
        let command_span = Span::new(span.start, span.start + command.as_str().len());
        let mut selector = None;
        let mut action = None;
        for p in cmd.into_inner() {
            match p.as_rule() {
                Rule::selector => selector = Some(self.selector(p)?),
                Rule::path => action = Some(Action::Remove(self.path(p)?)),
                Rule::assignment => {
                    let mut it = p.into_inner();
                    let target = self.path(it.next().ok_or_else(|| internal(span.start))?)?;
                    let value = self.operand(it.next().ok_or_else(|| internal(span.start))?)?;
                    action = Some(Action::Modify { target, value });
                }
                Rule::time_test => selector = Some(Selector::And(vec![self.test(p)?])),
                Rule::object => action = Some(Action::Insert(self.operand(p)?)),
                Rule::file_ref => {
                    let s = p.into_inner().next().ok_or_else(|| internal(span.start))?;
                    let fspan = self.span(&s);
                    action = Some(Action::InsertFile { path: self.string(s)?, span: fspan });
                }
                Rule::transfer => {
                    let mut it = p.into_inner();
                    let from = self.path(it.next().ok_or_else(|| internal(span.start))?)?;
                    let to = self.path(it.next().ok_or_else(|| internal(span.start))?)?;
                    action = Some(Action::Transfer { from, to, keep: command == CommandName::Copy });
                }
                _ => return Err(internal(span.start)),
            }
        }
        let action = match (command, action) {
            (CommandName::Delete, None) => Action::Delete,
            (_, Some(a)) => a,
            _ => return Err(internal(span.start)),
        };
        Ok(Statement { command, command_span, selector, action, span })
    }

    fn selector(&self, p: Pair<'_, Rule>) -> Result<Selector, ParseError> {
        let start = self.span(&p).start;
        let inner = p.into_inner().next().ok_or_else(|| internal(start))?;
        match inner.as_rule() {
            Rule::select_all => Ok(Selector::All(self.span(&inner))),
            Rule::disjunction => Ok(Selector::And(self.disjunction_tests(inner)?)),
            _ => Err(internal(start)),
        }
    }

    /// A disjunction as a conjunction: its one branch's tests, or one `Or` test.
    fn disjunction_tests(&self, p: Pair<'_, Rule>) -> Result<Vec<Test>, ParseError> {
        let span = self.span(&p);
        let mut branches = p.into_inner().map(|c| self.conjunction(c)).collect::<Result<Vec<_>, _>>()?;
        if branches.len() == 1 {
            return Ok(branches.pop().unwrap_or_default());
        }
        Ok(vec![Test::Or { branches, span }])
    }

    fn conjunction(&self, p: Pair<'_, Rule>) -> Result<Vec<Test>, ParseError> {
        let mut tests = Vec::new();
        for t in p.into_inner() {
            match t.as_rule() {
                // A group in a conjunction is spliced in, unless it is an `||`.
                Rule::group => {
                    let start = self.span(&t).start;
                    let d = t.into_inner().next().ok_or_else(|| internal(start))?;
                    tests.extend(self.disjunction_tests(d)?);
                }
                Rule::negation => {
                    let span = self.span(&t);
                    let inner = t.into_inner().next().ok_or_else(|| internal(span.start))?;
                    let negated = match inner.as_rule() {
                        Rule::group => {
                            let d = inner.into_inner().next().ok_or_else(|| internal(span.start))?;
                            self.disjunction_tests(d)?
                        }
                        _ => vec![self.test(inner)?],
                    };
                    tests.push(Test::Not { tests: negated, span });
                }
                _ => tests.push(self.test(t)?),
            }
        }
        Ok(tests)
    }

    fn test(&self, t: Pair<'_, Rule>) -> Result<Test, ParseError> {
        let span = self.span(&t);
        Ok(match t.as_rule() {
            Rule::time_test => {
                let mut it = t.into_inner();
                let op_pair = it.next().ok_or_else(|| internal(span.start))?;
                let (op, op_span) = (self.cmp_op(&op_pair)?, self.span(&op_pair));
                let value = self.operand(it.next().ok_or_else(|| internal(span.start))?)?;
                Test::Time { op, op_span, value, span }
            }
            Rule::var_test => {
                let mut it = t.into_inner();
                let v = it.next().ok_or_else(|| internal(span.start))?;
                let var = Ident { name: v.as_str().to_string(), span: self.span(&v) };
                let path = self.path(it.next().ok_or_else(|| internal(span.start))?)?;
                let test = self.field_test(it.next().ok_or_else(|| internal(span.start))?)?;
                Test::Bind { var, path, test, span }
            }
            Rule::field_test => Test::Field(self.field_test(t)?),
            _ => return Err(internal(span.start)),
        })
    }

    fn field_test(&self, p: Pair<'_, Rule>) -> Result<FieldTest, ParseError> {
        let start = self.span(&p).start;
        let inner = p.into_inner().next().ok_or_else(|| internal(start))?;
        let span = self.span(&inner);
        let rule = inner.as_rule();
        let mut it = inner.into_inner();
        let path = self.path(it.next().ok_or_else(|| internal(start))?)?;
        Ok(match rule {
            Rule::exists => FieldTest::Exists { path, span },
            Rule::not_exists => FieldTest::NotExists { path, span },
            Rule::compare => {
                let op_pair = it.next().ok_or_else(|| internal(start))?;
                let (op, op_span) = (self.cmp_op(&op_pair)?, self.span(&op_pair));
                let rhs = self.operand(it.next().ok_or_else(|| internal(start))?)?;
                FieldTest::Compare { lhs: path, op, op_span, rhs, span }
            }
            _ => return Err(internal(start)),
        })
    }

    fn cmp_op(&self, p: &Pair<'_, Rule>) -> Result<CmpOp, ParseError> {
        Ok(match p.as_str() {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            ">" => CmpOp::Gt,
            "<=" => CmpOp::Le,
            ">=" => CmpOp::Ge,
            "=~" => CmpOp::Match,
            "!~" => CmpOp::NotMatch,
            "in" => CmpOp::In,
            _ => return Err(internal(self.span(p).start)),
        })
    }

    fn operand(&self, p: Pair<'_, Rule>) -> Result<Operand, ParseError> {
        let span = self.span(&p);
        let text = p.as_str();
        let value = match p.as_rule() {
            Rule::path => return Ok(Operand::Path(self.path(p)?)),
            Rule::number => self.number(text, span)?,
            Rule::null => LiteralValue::Null,
            Rule::string => LiteralValue::String(self.string(p)?),
            Rule::array => {
                let items = p.into_inner().map(|item| self.operand(item)).collect::<Result<_, _>>()?;
                return Ok(Operand::Array { items, span });
            }
            Rule::object => {
                let mut members = Vec::new();
                for m in p.into_inner() {
                    let mut it = m.into_inner();
                    let key_pair = it.next().ok_or_else(|| internal(span.start))?;
                    let key_span = self.span(&key_pair);
                    let key = self.string(key_pair)?;
                    let value = self.operand(it.next().ok_or_else(|| internal(span.start))?)?;
                    members.push(Member { key, key_span, value });
                }
                return Ok(Operand::Object { members, span });
            }
            Rule::boolean => LiteralValue::Bool(text.eq_ignore_ascii_case("true")),
            Rule::duration => {
                let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
                let (num, unit) = text.split_at(digits);
                let factor = match unit {
                    "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    _ => {
                        let hint = match unit {
                            "d" => format!("; a day is `{}h`", num.parse::<u64>().unwrap_or(1).saturating_mul(24)),
                            "ms" => "; times are whole seconds".to_string(),
                            "min" => format!("; did you mean `{num}m`?"),
                            "sec" => format!("; did you mean `{num}s`?"),
                            _ => String::new(),
                        };
                        let uspan = Span::new(span.start + digits, span.end);
                        return Err(ParseError::BadTimeUnit { unit: unit.to_string(), hint, span: uspan });
                    }
                };
                let n = self.integer(num, Span::new(span.start, span.start + digits))?;
                match n.checked_mul(factor) {
                    Some(secs) if secs <= i64::MAX as u64 => LiteralValue::Duration(secs),
                    _ => return Err(ParseError::IntegerTooLarge { text: text.to_string(), span }),
                }
            }
            _ => return Err(internal(span.start)),
        };
        Ok(Operand::Literal(Literal { value, span }))
    }

    fn integer(&self, text: &str, span: Span) -> Result<u64, ParseError> {
        text.parse::<u64>().map_err(|_| ParseError::IntegerTooLarge { text: text.to_string(), span })
    }

    /// `12`, `-3`, `0.5`: an integer when it has no `.`.
    fn number(&self, text: &str, span: Span) -> Result<LiteralValue, ParseError> {
        if text.contains('.') {
            return match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(LiteralValue::Float(x)),
                _ => Err(ParseError::IntegerTooLarge { text: text.to_string(), span }),
            };
        }
        match text.strip_prefix('-') {
            Some(_) => match text.parse::<i64>() {
                Ok(0) => Ok(LiteralValue::Integer(0)),
                Ok(n) => Ok(LiteralValue::Negative(n)),
                Err(_) => Err(ParseError::IntegerTooLarge { text: text.to_string(), span }),
            },
            None => self.integer(text, span).map(LiteralValue::Integer),
        }
    }

    /// A string literal's value, escapes decoded (`\"`, `\\`, `\n`, `\t`, `\r`, `\u{HEX}`; any
    /// other backslash is itself).
    fn string(&self, p: Pair<'_, Rule>) -> Result<String, ParseError> {
        let text_pair = p.into_inner().next();
        let Some(text_pair) = text_pair else { return Ok(String::new()) };
        let base = self.span(&text_pair).start;
        let text = text_pair.as_str();
        let mut out = String::with_capacity(text.len());
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.peek().map(|(_, c)| *c) {
                Some(e @ ('"' | '\\')) => {
                    out.push(e);
                    chars.next();
                }
                Some('n') => {
                    out.push('\n');
                    chars.next();
                }
                Some('t') => {
                    out.push('\t');
                    chars.next();
                }
                Some('r') => {
                    out.push('\r');
                    chars.next();
                }
                Some('u') if text.get(i + 2..i + 3) == Some("{") => {
                    let close = text.get(i..).and_then(|t| t.find('}')).map(|n| i + n);
                    let hex = close.and_then(|end| text.get(i + 3..end));
                    let hex = hex.filter(|h| (1..=6).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()));
                    let ch = hex.and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32);
                    let end = close.unwrap_or(text.len());
                    match ch {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(ParseError::BadEscape {
                                text: text.get(i..=end).unwrap_or("\\u").to_string(),
                                span: Span::new(base + i, base + end + 1),
                            })
                        }
                    }
                    while chars.peek().is_some_and(|(j, _)| *j <= end) {
                        chars.next();
                    }
                }
                _ => out.push('\\'),
            }
        }
        Ok(out)
    }

    fn path(&self, p: Pair<'_, Rule>) -> Result<Path, ParseError> {
        let span = self.span(&p);
        let mut var = None;
        let mut segments = Vec::new();
        for (i, part) in p.into_inner().enumerate() {
            let pspan = self.span(&part);
            if segments.len() == MAX_DEPTH {
                return Err(ParseError::TooDeep {
                    what: "a path",
                    limit: MAX_DEPTH,
                    span: pspan,
                    help: format!(
                        "a path has at most {MAX_DEPTH} segments: the trace readers read no object nested deeper"
                    ),
                });
            }
            match part.as_rule() {
                Rule::var => {
                    if i != 0 {
                        return Err(ParseError::VariableInsidePath { name: part.as_str().to_string(), span: pspan });
                    }
                    var = Some(Ident { name: part.as_str().to_string(), span: pspan });
                }
                Rule::name => {
                    segments.push(Segment::Key { name: part.as_str().to_string(), quoted: false, span: pspan })
                }
                Rule::quoted_name => {
                    let name = self.string(part)?;
                    segments.push(Segment::Key { name, quoted: true, span: pspan });
                }
                Rule::any_key => segments.push(Segment::AnyKey { span: pspan }),
                Rule::index => {
                    let inner = part.into_inner().next().ok_or_else(|| internal(pspan.start))?;
                    match inner.as_rule() {
                        Rule::star => segments.push(Segment::AnyIndex { span: pspan }),
                        Rule::string => {
                            let name = self.string(inner)?;
                            segments.push(Segment::Key { name, quoted: true, span: pspan });
                        }
                        _ => {
                            let index = self.integer(inner.as_str(), self.span(&inner))?;
                            segments.push(Segment::Index { index, span: pspan });
                        }
                    }
                }
                _ => return Err(internal(pspan.start)),
            }
        }
        Ok(Path { var, segments, span })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(src: &str) -> Vec<(String, bool)> {
        split_statements(src)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (src.get(c.start..c.end).unwrap_or("").to_string(), c.terminated))
            .collect()
    }

    #[test]
    fn splits_at_semicolons_outside_strings_and_comments() {
        let got = chunks("delete(a == \";\"); # not; a split\nremove(b);\r\n");
        assert_eq!(
            got,
            [
                ("delete(a == \";\")".to_string(), true),
                (" # not; a split\nremove(b)".to_string(), true),
                ("\r\n".to_string(), false)
            ]
        );
    }

    #[test]
    fn unterminated_string_is_reported_at_its_quote() {
        assert_eq!(
            split_statements("delete(a == \"x);").err(),
            Some(ParseError::UnterminatedString { span: Span::new(12, 13) })
        );
    }

    #[test]
    fn statements_parse_independently() {
        let parsed = parse("modfy(a = 1);\nremove(status);\ndelete(*);;");
        assert_eq!(parsed.script.statements.len(), 2);
        let codes: Vec<String> =
            parsed.errors.iter().filter_map(|e| miette::Diagnostic::code(e).map(|c| c.to_string())).collect();
        assert_eq!(codes, ["skel::parse::unknown_command", "skel::parse::empty_statement"]);
    }

    #[test]
    fn single_unit_times() {
        assert_eq!(single_unit("1h30m"), "90m");
        assert_eq!(single_unit("2h60m"), "3h");
        assert_eq!(single_unit("1m5s"), "65s");
    }

    #[test]
    fn spans_point_into_the_whole_script() {
        let parsed = parse("remove(status);\nremove(sta%tus);");
        let span = parsed.errors.first().map(ParseError::span);
        assert_eq!(span, Some(Span::new(26, 27)));
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn parses_a_path_alone() {
        let p = parse_path("spec.containers[*].image", 5).expect("a path");
        assert_eq!(p.segments.len(), 4);
        assert_eq!(p.span, Span::new(5, 29));
        assert!(p.var.is_none());
    }

    #[test]
    fn a_bad_path_points_into_it() {
        let e = parse_path("spec..image", 5).expect_err("not a path");
        let msg = format!("{e}");
        assert!(msg.contains("field") || msg.contains("path") || msg.contains("expected"), "{msg}");
        assert!(parse_path("spec.x y", 0).is_err());
        assert!(parse_path("", 0).is_err());
    }
}
