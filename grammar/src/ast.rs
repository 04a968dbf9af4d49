//! The SKEL abstract syntax tree: what the script says, with the source span of every node.

use std::fmt;

/// A byte range in the script source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A whole script: its statements in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandName {
    Delete,
    Remove,
    Modify,
    Move,
    Copy,
    Insert,
}

impl CommandName {
    pub const ALL: [CommandName; 6] = [
        CommandName::Delete,
        CommandName::Remove,
        CommandName::Modify,
        CommandName::Move,
        CommandName::Copy,
        CommandName::Insert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Delete => "delete",
            CommandName::Remove => "remove",
            CommandName::Modify => "modify",
            CommandName::Move => "move",
            CommandName::Copy => "copy",
            CommandName::Insert => "insert",
        }
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `command(...);` statement. `span` covers the command without its `;`.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub command: CommandName,
    pub command_span: Span,
    /// `None` for the one-argument forms (`remove(PATH)`, `modify(PATH = VALUE)`).
    pub selector: Option<Selector>,
    pub action: Action,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Delete,
    Remove(Path),
    Modify {
        target: Path,
        value: Operand,
    },
    /// `move(FROM -> TO)` (`keep: false`) and `copy(FROM -> TO)` (`keep: true`).
    Transfer {
        from: Path,
        to: Path,
        keep: bool,
    },
    /// `insert(@t == T, {...})`: the selector holds the time test.
    Insert(Operand),
    /// `insert(@t == T, file("x.yaml"))`: a file relative to the script's folder.
    InsertFile {
        path: String,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// `*`
    All(Span),
    /// `test && test && ...`
    And(Vec<Test>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `@t OP VALUE`
    Time { op: CmpOp, op_span: Span, value: Operand, span: Span },
    /// `exists(P)`, `!exists(P)`, `P OP VALUE`
    Field(FieldTest),
    /// `$x := PATH | TEST`
    Bind { var: Ident, path: Path, test: FieldTest, span: Span },
    /// `A || B || ...`: each branch a conjunction; the first that holds decides.
    Or { branches: Vec<Vec<Test>>, span: Span },
    /// `!(A && B)` or `!TEST`: holds when the conjunction does not.
    Not { tests: Vec<Test>, span: Span },
}

impl Test {
    pub fn span(&self) -> Span {
        match self {
            Test::Time { span, .. } | Test::Bind { span, .. } | Test::Or { span, .. } | Test::Not { span, .. } => *span,
            Test::Field(t) => t.span(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldTest {
    Exists { path: Path, span: Span },
    NotExists { path: Path, span: Span },
    Compare { lhs: Path, op: CmpOp, op_span: Span, rhs: Operand, span: Span },
}

impl FieldTest {
    pub fn span(&self) -> Span {
        match self {
            FieldTest::Exists { span, .. } | FieldTest::NotExists { span, .. } | FieldTest::Compare { span, .. } => {
                *span
            }
        }
    }

    /// The path the test looks at (its left side).
    pub fn path(&self) -> &Path {
        match self {
            FieldTest::Exists { path, .. } | FieldTest::NotExists { path, .. } => path,
            FieldTest::Compare { lhs, .. } => lhs,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `=~`: a string the path reaches matches the regular expression.
    Match,
    /// `!~`: a string the path reaches does not match it.
    NotMatch,
    /// `in [..]`: a value the path reaches equals an item of the array.
    In,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
            CmpOp::Match => "=~",
            CmpOp::NotMatch => "!~",
            CmpOp::In => "in",
        }
    }

    pub fn is_ordering(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Gt | CmpOp::Le | CmpOp::Ge)
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right side of a comparison or assignment.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Literal),
    Path(Path),
    /// `[a, b]`: its items may be paths.
    Array {
        items: Vec<Operand>,
        span: Span,
    },
    /// `{"k": v}`: its values may be paths.
    Object {
        members: Vec<Member>,
        span: Span,
    },
}

/// `"key": value` in an object literal.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_span: Span,
    pub value: Operand,
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Literal(l) => l.span,
            Operand::Path(p) => p.span,
            Operand::Array { span, .. } | Operand::Object { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub value: LiteralValue,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiteralValue {
    /// Non-negative integers up to u64::MAX (SimKube: i64; larger is a parse error).
    Integer(u64),
    /// Negative integers down to i64::MIN.
    Negative(i64),
    Float(f64),
    Null,
    String(String),
    Bool(bool),
    /// `10s`, `5m`, `2h`, in seconds; only meaningful against `@t`.
    Duration(u64),
}

/// A variable name including its `$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// `Some` when the path starts with a variable (`$x.name`).
    pub var: Option<Ident>,
    pub segments: Vec<Segment>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `name` or `"quoted.name"`
    Key { name: String, quoted: bool, span: Span },
    /// `[N]`
    Index { index: u64, span: Span },
    /// `[*]`
    AnyIndex { span: Span },
    /// `.*`: every key of an object.
    AnyKey { span: Span },
}

impl Segment {
    pub fn span(&self) -> Span {
        match self {
            Segment::Key { span, .. }
            | Segment::Index { span, .. }
            | Segment::AnyIndex { span }
            | Segment::AnyKey { span } => *span,
        }
    }
}

/// The array index a key names when the value it is applied to is an array: as in a JSON
/// Pointer (and so in SimKube), `spec.containers.0` is the first container. `0` or digits
/// without a leading zero; anything else names no element.
pub fn array_index(key: &str) -> Option<usize> {
    let digits = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
    if !digits || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    key.parse().ok()
}

/// Writes a key as SKEL source: bare when it can be, quoted otherwise.
pub fn write_key(f: &mut impl fmt::Write, name: &str) -> fmt::Result {
    let bare = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        f.write_str(name)
    } else {
        write_string(f, name)
    }
}

/// Writes a string as a SKEL string literal, escaping what must be.
pub fn write_string(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if let Some(v) = &self.var {
            f.write_str(&v.name)?;
            first = false;
        }
        for seg in &self.segments {
            match seg {
                Segment::Key { name, .. } => {
                    if !first {
                        f.write_str(".")?;
                    }
                    write_key(f, name)?;
                }
                Segment::Index { index, .. } => write!(f, "[{index}]")?,
                Segment::AnyIndex { .. } => f.write_str("[*]")?,
                Segment::AnyKey { .. } => f.write_str(if first { "*" } else { ".*" })?,
            }
            first = false;
        }
        Ok(())
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            LiteralValue::Integer(n) => write!(f, "{n}"),
            LiteralValue::Negative(n) => write!(f, "{n}"),
            LiteralValue::Float(x) => write!(f, "{x:?}"),
            LiteralValue::Null => f.write_str("null"),
            LiteralValue::String(s) => write_string(f, s),
            LiteralValue::Bool(b) => write!(f, "{b}"),
            LiteralValue::Duration(s) => write!(f, "{s}s"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Literal(l) => l.fmt(f),
            Operand::Path(p) => p.fmt(f),
            Operand::Array { items, .. } => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str("]")
            }
            Operand::Object { members, .. } => {
                f.write_str("{")?;
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_string(f, &m.key)?;
                    write!(f, ": {}", m.value)?;
                }
                f.write_str("}")
            }
        }
    }
}
