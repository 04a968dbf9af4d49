//! Parse diagnostics: every way a script can fail to parse, with a stable code, a span and a fix.

use miette::Diagnostic;
use thiserror::Error;

use crate::ast::Span;

#[derive(Debug, Clone, PartialEq, Error, Diagnostic)]
pub enum ParseError {
    #[error("unexpected {found}")]
    #[diagnostic(code(skel::parse::syntax))]
    Syntax {
        found: String,
        #[label("expected {expected}")]
        span: Span,
        expected: String,
        #[help]
        help: Option<String>,
    },

    #[error("unknown command `{name}`")]
    #[diagnostic(code(skel::parse::unknown_command))]
    UnknownCommand {
        name: String,
        #[label("not a SKEL command")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("missing `;` after this statement")]
    #[diagnostic(code(skel::parse::missing_semicolon), help("end every statement with `;`, e.g. `remove(status);`"))]
    MissingSemicolon {
        #[label("add `;` after this")]
        span: Span,
    },

    #[error("empty statement")]
    #[diagnostic(code(skel::parse::empty_statement), help("remove the extra `;`: every `;` must end a command"))]
    EmptyStatement {
        #[label("nothing before this `;`")]
        span: Span,
    },

    #[error("unterminated string")]
    #[diagnostic(
        code(skel::parse::unterminated_string),
        help("close the string with `\"`; write `\\\"` for a `\"` inside it")
    )]
    UnterminatedString {
        #[label("this string is never closed")]
        span: Span,
    },

    #[error("invalid escape `{text}`")]
    #[diagnostic(
        code(skel::parse::bad_escape),
        help("`\\u{{HEX}}` takes 1 to 6 hex digits naming a Unicode scalar value, e.g. `\\u{{e9}}` for `é`")
    )]
    BadEscape {
        text: String,
        #[label("not a character")]
        span: Span,
    },

    #[error("unknown time unit `{unit}`")]
    #[diagnostic(
        code(skel::parse::bad_time_unit),
        help("relative times use `s` (seconds), `m` (minutes) or `h` (hours), e.g. `@t >= 10m`{hint}")
    )]
    BadTimeUnit {
        unit: String,
        hint: String,
        #[label("expected `s`, `m` or `h`")]
        span: Span,
    },

    #[error("integer `{text}` is too large")]
    #[diagnostic(
        code(skel::parse::integer_too_large),
        help("integers must be at most 18446744073709551615 (the largest unsigned 64-bit number)")
    )]
    IntegerTooLarge {
        text: String,
        #[label("does not fit in 64 bits")]
        span: Span,
    },

    /// Past the nesting limit (`MAX_DEPTH`): brackets, or the segments of a path.
    #[error("{what} more than {limit} levels deep")]
    #[diagnostic(code(skel::parse::too_deep), help("{help}"))]
    TooDeep {
        /// `brackets nested` or `a path`.
        what: &'static str,
        limit: usize,
        #[label("level {} starts here", limit + 1)]
        span: Span,
        help: String,
    },

    #[error("variable `{name}` in the middle of a path")]
    #[diagnostic(
        code(skel::parse::variable_inside_path),
        help("a variable can only start a path, as in `{name}.name`; `$x.$y` is not allowed")
    )]
    VariableInsidePath {
        name: String,
        #[label("only the first part of a path can be a variable")]
        span: Span,
    },
}

impl ParseError {
    pub fn span(&self) -> Span {
        match self {
            ParseError::Syntax { span, .. }
            | ParseError::UnknownCommand { span, .. }
            | ParseError::MissingSemicolon { span }
            | ParseError::EmptyStatement { span }
            | ParseError::UnterminatedString { span }
            | ParseError::BadEscape { span, .. }
            | ParseError::BadTimeUnit { span, .. }
            | ParseError::IntegerTooLarge { span, .. }
            | ParseError::TooDeep { span, .. }
            | ParseError::VariableInsidePath { span, .. } => *span,
        }
    }
}
