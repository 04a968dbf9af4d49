//! The checked IR: variables resolved to slots, literals turned into JSON values, kinds checked.
//! Everything the compiler knows statically about a statement is here; spans are kept for
//! run-time diagnostics.

use std::fmt;

use serde_json::Value;
pub use skel_grammar::ast::{CmpOp, CommandName, Span};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub statements: Vec<Stmt>,
    /// `insert` statements: objects added to the trace at a time.
    pub inserts: Vec<Insert>,
}

/// `insert(@t == at, manifest)`: the manifests (a file may hold several) go into the event at
/// that time, or into a new event there.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub at: TimeRef,
    pub manifests: Vec<Value>,
    pub span: Span,
}

/// A statement that moves every object of one kind from one apiVersion to another:
/// `modify(kind == K && apiVersion == FROM, apiVersion = TO)` (either order of the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiMove {
    pub kind: String,
    pub from: String,
    pub to: String,
}

impl ApiMove {
    /// The trace's name of a kind (`config.trackedObjects` keys, `pod_lifecycles` owners):
    /// `apiVersion.Kind`, before and after.
    pub fn gvks(&self) -> (String, String) {
        (format!("{}.{}", self.from, self.kind), format!("{}.{}", self.to, self.kind))
    }
}

impl Script {
    /// The statements that move a whole kind to another apiVersion, in script order.
    pub fn api_moves(&self) -> Vec<ApiMove> {
        self.statements.iter().filter_map(Stmt::api_move).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub command: CommandName,
    pub span: Span,
    /// All must hold; empty means every object (`*` or the one-argument form).
    pub conds: Vec<Cond>,
    pub action: Action,
    /// The statement's variables, indexed by `VarId`.
    pub vars: Vec<Var>,
    /// Set by the optimizer: the statement can only match objects of this `kind` (its selector
    /// requires `kind == "..."`), so the VM dispatches it by kind.
    pub kind_guard: Option<String>,
}

impl Stmt {
    fn api_move(&self) -> Option<ApiMove> {
        let Action::Modify { target, value: Operand::Const(Value::String(to)) } = &self.action else { return None };
        if self.command != CommandName::Modify || !target.is_key("apiVersion") || self.conds.len() != 2 {
            return None;
        }
        let mut kind = None;
        let mut from = None;
        for c in &self.conds {
            let Cond::Test {
                pred: Pred::Compare { lhs, op: CmpOp::Eq, rhs: Operand::Const(Value::String(v)) }, ..
            } = c
            else {
                return None;
            };
            if lhs.is_key("kind") {
                kind = Some(v.clone());
            } else if lhs.is_key("apiVersion") {
                from = Some(v.clone());
            }
        }
        Some(ApiMove { kind: kind?, from: from?, to: to.clone() })
    }
}

pub type VarId = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `@t OP T`
    Time { op: CmpOp, at: TimeRef, span: Span },
    /// A plain field test.
    Test { pred: Pred, span: Span },
    /// `$x := over | pred`: `pred`'s paths rooted at `Root::Var(var)` see one candidate at a time.
    Bind { var: VarId, over: Path, pred: Pred, span: Span },
    /// The first branch (a conjunction) that holds; its bindings stay.
    Or { branches: Vec<Vec<Cond>>, span: Span },
    /// Holds when the conjunction does not.
    Not { conds: Vec<Cond>, span: Span },
}

impl Cond {
    /// The paths each variable is bound over in these conditions (several with `||`), by
    /// `VarId` (`vars` of them): one walk over the conditions for every variable.
    pub fn bindings(conds: &[Cond], vars: usize) -> Vec<Vec<&Path>> {
        let mut out = vec![Vec::new(); vars];
        let mut todo: Vec<&[Cond]> = vec![conds];
        while let Some(conds) = todo.pop() {
            for c in conds {
                match c {
                    Cond::Bind { var, over, .. } => {
                        if let Some(list) = out.get_mut(*var) {
                            list.push(over);
                        }
                    }
                    Cond::Or { branches, .. } => todo.extend(branches.iter().map(Vec::as_slice)),
                    Cond::Not { conds, .. } => todo.push(conds),
                    Cond::Time { .. } | Cond::Test { .. } => {}
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRef {
    /// Unix seconds.
    Absolute(i64),
    /// Seconds after the first event of the trace.
    Relative(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    Exists(Path),
    NotExists(Path),
    Compare { lhs: Path, op: CmpOp, rhs: Operand },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Const(Value),
    Path(Path),
    /// An array literal with paths among its items (one without is a `Const`).
    Array(Vec<Operand>),
    /// An object literal with paths among its values.
    Object(Vec<(String, Operand)>),
}

impl Operand {
    /// A literal whose parts are all constants, as one constant.
    pub fn folded(self) -> Operand {
        match self {
            Operand::Array(items) if items.iter().all(|i| matches!(i, Operand::Const(_))) => {
                Operand::Const(Value::Array(
                    items.into_iter().filter_map(|i| if let Operand::Const(v) = i { Some(v) } else { None }).collect(),
                ))
            }
            Operand::Object(members) if members.iter().all(|(_, v)| matches!(v, Operand::Const(_))) => {
                Operand::Const(Value::Object(
                    members
                        .into_iter()
                        .filter_map(|(k, v)| if let Operand::Const(v) = v { Some((k, v)) } else { None })
                        .collect(),
                ))
            }
            other => other,
        }
    }

    /// The paths a template reads (a path operand is its own).
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Operand::Const(_) => Vec::new(),
            Operand::Path(p) => vec![p],
            Operand::Array(items) => items.iter().flat_map(Operand::paths).collect(),
            Operand::Object(members) => members.iter().flat_map(|(_, v)| v.paths()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub root: Root,
    pub segs: Vec<Seg>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Object,
    Var(VarId),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(u64),
    AnyIndex,
    /// Every key of an object.
    AnyKey,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Delete,
    Remove(Path),
    Modify {
        target: Path,
        value: Operand,
    },
    /// `move` (`keep: false`) or `copy` (`keep: true`) the value at `from` to `to`; both
    /// paths start at the same root and have no wildcard.
    Transfer {
        from: Path,
        to: Path,
        keep: bool,
    },
}

impl Path {
    /// Whether it is the object's top-level field `key`.
    pub fn is_key(&self, key: &str) -> bool {
        self.root == Root::Object && matches!(self.segs.as_slice(), [Seg::Key(k)] if k == key)
    }

    pub fn has_wildcard(&self) -> bool {
        self.segs.iter().any(|s| matches!(s, Seg::AnyIndex | Seg::AnyKey))
    }

    pub fn first_key(&self) -> Option<&str> {
        match self.segs.first() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ text form (--emit ir)

pub struct Display<'a> {
    script: &'a Script,
}

impl Script {
    pub fn display(&self) -> Display<'_> {
        Display { script: self }
    }
}

struct PathDisplay<'a>(&'a Path, &'a [Var]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PathDisplay(p, vars) = self;
        match p.root {
            Root::Object => f.write_str(".")?,
            Root::Var(v) => write!(f, "{}", vars.get(v).map_or("$?", |v| v.name.as_str()))?,
        }
        for (i, s) in p.segs.iter().enumerate() {
            match s {
                Seg::Key(k) => {
                    if i > 0 || matches!(p.root, Root::Var(_)) {
                        f.write_str(".")?;
                    }
                    skel_grammar::ast::write_key(f, k)?;
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::AnyIndex => f.write_str("[*]")?,
                Seg::AnyKey => f.write_str(if i > 0 || matches!(p.root, Root::Var(_)) { ".*" } else { "*" })?,
            }
        }
        Ok(())
    }
}

struct OperandDisplay<'a>(&'a Operand, &'a [Var]);

impl fmt::Display for OperandDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Operand::Const(v) => write!(f, "{v}"),
            Operand::Path(p) => PathDisplay(p, self.1).fmt(f),
            Operand::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    OperandDisplay(item, self.1).fmt(f)?;
                }
                f.write_str("]")
            }
            Operand::Object(members) => {
                f.write_str("{")?;
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", Value::String(k.clone()), OperandDisplay(v, self.1))?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_pred(f: &mut fmt::Formatter<'_>, p: &Pred, vars: &[Var]) -> fmt::Result {
    match p {
        Pred::Exists(path) => write!(f, "exists({})", PathDisplay(path, vars)),
        Pred::NotExists(path) => write!(f, "!exists({})", PathDisplay(path, vars)),
        Pred::Compare { lhs, op, rhs } => {
            write!(f, "{} {op} {}", PathDisplay(lhs, vars), OperandDisplay(rhs, vars))
        }
    }
}

fn write_cond(f: &mut fmt::Formatter<'_>, c: &Cond, vars: &[Var]) -> fmt::Result {
    let conj = |f: &mut fmt::Formatter<'_>, conds: &[Cond]| -> fmt::Result {
        f.write_str("(")?;
        for (i, c) in conds.iter().enumerate() {
            if i > 0 {
                f.write_str(" && ")?;
            }
            write_cond(f, c, vars)?;
        }
        f.write_str(")")
    };
    match c {
        Cond::Time { op, at: TimeRef::Absolute(t), .. } => write!(f, "@t {op} {t}"),
        Cond::Time { op, at: TimeRef::Relative(t), .. } => write!(f, "@t {op} start+{t}s"),
        Cond::Test { pred, .. } => write_pred(f, pred, vars),
        Cond::Bind { var, over, pred, .. } => {
            let name = vars.get(*var).map_or("$?", |v| v.name.as_str());
            write!(f, "bind {name} <- {} | ", PathDisplay(over, vars))?;
            write_pred(f, pred, vars)
        }
        Cond::Or { branches, .. } => {
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    f.write_str(" || ")?;
                }
                conj(f, b)?;
            }
            Ok(())
        }
        Cond::Not { conds, .. } => {
            f.write_str("!")?;
            conj(f, conds)
        }
    }
}

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ins in &self.script.inserts {
            let at = match ins.at {
                TimeRef::Absolute(t) => t.to_string(),
                TimeRef::Relative(t) => format!("start+{t}s"),
            };
            for m in &ins.manifests {
                writeln!(f, "insert @{} at @t == {at}: {m}", ins.span)?;
            }
        }
        for (i, s) in self.script.statements.iter().enumerate() {
            writeln!(f, "stmt {i} {} @{}", s.command, s.span)?;
            if let Some(k) = &s.kind_guard {
                writeln!(f, "  only kind {k:?}")?;
            }
            for (vi, v) in s.vars.iter().enumerate() {
                writeln!(f, "  var {vi} {}", v.name)?;
            }
            if s.conds.is_empty() {
                writeln!(f, "  when always")?;
            }
            for c in &s.conds {
                f.write_str("  when ")?;
                write_cond(f, c, &s.vars)?;
                f.write_str("\n")?;
            }
            match &s.action {
                Action::Delete => writeln!(f, "  do delete")?,
                Action::Remove(p) => writeln!(f, "  do remove {}", PathDisplay(p, &s.vars))?,
                Action::Modify { target, value } => {
                    writeln!(f, "  do modify {} = {}", PathDisplay(target, &s.vars), OperandDisplay(value, &s.vars))?
                }
                Action::Transfer { from, to, keep } => writeln!(
                    f,
                    "  do {} {} -> {}",
                    if *keep { "copy" } else { "move" },
                    PathDisplay(from, &s.vars),
                    PathDisplay(to, &s.vars)
                )?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OptLevel;

    fn moves(src: &str, level: OptLevel) -> Vec<(String, String)> {
        let compiled = crate::compile_with(src, level, &crate::Folder::current()).expect("compiles");
        compiled.ir.api_moves().iter().map(ApiMove::gvks).collect()
    }

    /// Only a statement that moves every object of a kind and apiVersion is a move.
    #[test]
    fn api_moves_are_whole_kinds() {
        let src = r#"
            modify(kind == "CronJob" && apiVersion == "batch/v1beta1", apiVersion = "batch/v1");
            modify(apiVersion == "policy/v1beta1" && kind == "PodDisruptionBudget", apiVersion = "policy/v1");
            modify(kind == "Ingress" && apiVersion == "extensions/v1beta1" && metadata.name == "a", apiVersion = "networking.k8s.io/v1");
            modify(kind == "Job", apiVersion = "batch/v1");
            modify(kind == "Job" && apiVersion == "batch/v1", spec.x = "batch/v2");
        "#;
        let expected = [
            ("batch/v1beta1.CronJob".to_string(), "batch/v1.CronJob".to_string()),
            ("policy/v1beta1.PodDisruptionBudget".to_string(), "policy/v1.PodDisruptionBudget".to_string()),
        ];
        assert_eq!(moves(src, OptLevel::Full), expected);
        assert_eq!(moves(src, OptLevel::None), expected);
    }
}
