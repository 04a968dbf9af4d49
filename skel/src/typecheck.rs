//! AST -> checked IR: resolves variables (defined once, before use, on the left of their `|`
//! test), checks the kinds of values (`@t` only against times, durations only against `@t`,
//! single-valued assignments) and warns about forms SimKube rejects at run time.

use std::collections::{HashMap, HashSet};

use miette::Diagnostic;
use serde_json::Value;
use skel_grammar::ast::{self, Span};
use thiserror::Error;

use crate::ir::*;

#[derive(Debug, Clone, PartialEq, Error, Diagnostic)]
pub enum TypeError {
    #[error("variable `{name}` is not defined")]
    #[diagnostic(code(skel::check::undefined_variable))]
    UndefinedVariable {
        name: String,
        #[label("not defined in this statement")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("variable `{name}` is defined twice")]
    #[diagnostic(
        code(skel::check::duplicate_variable),
        help("each variable is defined once per statement; give the second one another name")
    )]
    DuplicateVariable {
        name: String,
        #[label("defined again here")]
        span: Span,
        #[label("first defined here")]
        first: Span,
    },

    #[error("more than {limit} variables in one statement")]
    #[diagnostic(
        code(skel::check::too_many_variables),
        help("the VM holds at most {limit} variables a statement; split the statement into several")
    )]
    TooManyVariables {
        limit: usize,
        #[label("one too many")]
        span: Span,
    },

    #[error("`{op}` needs a pattern written as a string")]
    #[diagnostic(
        code(skel::check::pattern_not_string),
        help("write the regular expression in quotes, e.g. `metadata.name =~ \"^web-[0-9]+$\"`")
    )]
    PatternNotString {
        op: String,
        #[label("matched here")]
        op_span: Span,
        #[label("not a string")]
        span: Span,
    },

    #[error("invalid regular expression: {message}")]
    #[diagnostic(
        code(skel::check::invalid_regex),
        help("patterns use the syntax of Rust's `regex` crate; escape a literal `.`, `(` or `[` with a backslash")
    )]
    InvalidRegex {
        message: String,
        #[label("here")]
        span: Span,
    },

    #[error("this `{command}` cannot be run")]
    #[diagnostic(code(skel::check::invalid_transfer))]
    InvalidTransfer {
        command: String,
        #[label("{label}")]
        span: Span,
        label: String,
        #[help]
        help: String,
    },

    #[error("variable `{name}` is not bound here")]
    #[diagnostic(code(skel::check::not_bound_here))]
    NotBoundHere {
        name: String,
        #[label("may be unbound here")]
        span: Span,
        #[help]
        why: String,
    },

    #[error("`insert` needs `@t == TIME`, found {found}")]
    #[diagnostic(
        code(skel::check::insert_time),
        help(
            "an inserted object goes in at one time: `insert(@t == 10m, {{...}})` or `insert(@t == 1700000000, ...)`"
        )
    )]
    InsertTime {
        #[label("here")]
        span: Span,
        found: String,
    },

    #[error("`insert` needs a manifest: {found}")]
    #[diagnostic(
        code(skel::check::insert_not_manifest),
        help("write the object as a literal, `{{\"apiVersion\": \"v1\", \"kind\": ..., \"metadata\": {{...}}}}`, or read it with `file(\"x.yaml\")`")
    )]
    InsertNotManifest {
        #[label("not a manifest")]
        span: Span,
        found: String,
    },

    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(
        code(skel::check::insert_file),
        help("the path is relative to the script's folder; the file holds YAML or JSON (several YAML documents insert several objects)")
    )]
    InsertFile {
        path: String,
        #[label("this file")]
        span: Span,
        message: String,
    },

    #[error("key `{key}` appears twice in this object")]
    #[diagnostic(
        code(skel::check::duplicate_key),
        help("an object has each key once; remove one of them or rename it")
    )]
    DuplicateKey {
        key: String,
        #[label("again here")]
        span: Span,
        #[label("first here")]
        first: Span,
    },

    #[error("the test after `|` must start with `{var}`")]
    #[diagnostic(code(skel::check::invalid_lhs))]
    InvalidLhs {
        var: String,
        #[label("{found}")]
        span: Span,
        found: String,
        #[help]
        help: String,
    },

    #[error("`@t` compares with a time, not {found}")]
    #[diagnostic(
        code(skel::check::time_type),
        help("use unix seconds (`@t >= 1709242000`) or a time after the first event (`@t >= 10m`; units s, m, h)")
    )]
    TimeType {
        found: String,
        #[label("not a time")]
        span: Span,
    },

    #[error("the time `{text}` is too large")]
    #[diagnostic(code(skel::check::time_too_large), help("unix seconds must fit in a signed 64-bit integer"))]
    TimeTooLarge {
        text: String,
        #[label("too large")]
        span: Span,
    },

    #[error("a duration only compares with `@t`")]
    #[diagnostic(
        code(skel::check::duration_outside_time),
        help("write the number without a unit, or quote it as a string")
    )]
    DurationOutsideTime {
        #[label("a duration")]
        span: Span,
    },

    #[error("`{op}` cannot order {what}")]
    #[diagnostic(
        code(skel::check::unordered_value),
        help("`<`, `>`, `<=` and `>=` compare numbers or strings; use `==` or `!=` for booleans")
    )]
    UnorderedValue {
        op: String,
        what: String,
        #[label("not a number or string")]
        span: Span,
    },

    #[error("the value of `modify` must be a single value")]
    #[diagnostic(
        code(skel::check::multi_valued_assignment),
        help("`[*]` reaches every element; use an index (`[0]`) or bind a variable with `$x := PATH | TEST` and assign `$x.field`")
    )]
    MultiValuedAssignment {
        #[label("this path can reach more than one value")]
        span: Span,
    },

    #[error("this selector can never match")]
    #[diagnostic(
        code(skel::check::never_matches),
        severity(Warning),
        help("its tests contradict each other (a field cannot equal two values); to act on either value, join the tests with `||`")
    )]
    NeverMatches {
        #[label("never true for any object")]
        span: Span,
    },

    #[error("values in `metadata.{field}` must be strings")]
    #[diagnostic(
        code(skel::check::label_not_string),
        severity(Warning),
        help("Kubernetes {field} are string maps; quote the value: `\"{text}\"` (as written, every matching object is a run-time error)")
    )]
    LabelNotString {
        field: String,
        text: String,
        #[label("not a string")]
        span: Span,
    },
}

impl TypeError {
    pub fn is_error(&self) -> bool {
        !matches!(self, TypeError::LabelNotString { .. } | TypeError::NeverMatches { .. })
    }
}

/// The checker's result: the IR (when there were no errors) and every diagnostic, warnings
/// included.
#[derive(Debug, Clone, Default)]
pub struct TypeChecked {
    pub script: Script,
    pub diagnostics: Vec<TypeError>,
}

impl TypeChecked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(TypeError::is_error)
    }
}

/// Checks a parsed script, reading `insert(..., file("x"))` files from the working directory.
/// Statements with errors are left out of the IR; the others are kept so that every
/// diagnostic of the script is reported in one pass.
pub fn typecheck(script: &ast::Script) -> TypeChecked {
    typecheck_with(script, &crate::Folder::current())
}

/// `check`, with `insert(..., file("x"))` files read through `files`.
pub fn typecheck_with(script: &ast::Script, files: &dyn crate::Files) -> TypeChecked {
    let mut out = TypeChecked::default();
    for stmt in &script.statements {
        if stmt.command == ast::CommandName::Insert {
            match insert(stmt, files) {
                Ok(ins) => out.script.inserts.push(ins),
                Err(e) => out.diagnostics.push(e),
            }
            continue;
        }
        let mut cx = StmtChecker::new(all_var_names(stmt));
        let ir = cx.statement(stmt);
        let ok = !cx.diags.iter().any(TypeError::is_error);
        out.diagnostics.append(&mut cx.diags);
        if ok {
            if let Some(ir) = ir {
                out.script.statements.push(ir);
            }
        }
    }
    out
}

/// An `insert`: its time (`@t == T` only) and its manifests, from the literal or the file.
fn insert(stmt: &ast::Statement, files: &dyn crate::Files) -> Result<Insert, TypeError> {
    let time = match &stmt.selector {
        Some(ast::Selector::And(tests)) => match tests.as_slice() {
            [ast::Test::Time { op, op_span, value, .. }] => Some((*op, *op_span, value)),
            _ => None,
        },
        _ => None,
    };
    let Some((op, op_span, value)) = time else {
        return Err(TypeError::InsertTime { span: stmt.span, found: "no time test".into() });
    };
    if op != CmpOp::Eq {
        return Err(TypeError::InsertTime { span: op_span, found: format!("`@t {op}`") });
    }
    let mut cx = StmtChecker::new(HashSet::new());
    let at = cx.time_value(value);
    if let Some(e) = cx.diags.pop() {
        return Err(e);
    }
    let at = at.ok_or(TypeError::InsertTime { span: value.span(), found: "no time".into() })?;
    let manifests = match &stmt.action {
        ast::Action::Insert(o) => match cx.operand(o) {
            Some(Operand::Const(v @ Value::Object(_))) => vec![v],
            _ => {
                if let Some(e) = cx.diags.pop() {
                    return Err(e);
                }
                return Err(TypeError::InsertNotManifest {
                    span: o.span(),
                    found: "values computed from paths (an inserted object belongs to no object)".into(),
                });
            }
        },
        ast::Action::InsertFile { path, span } => {
            let shown = files.name(path);
            let failed = |message: String| TypeError::InsertFile { path: shown.clone(), span: *span, message };
            let text = files.read(path).map_err(failed)?;
            let text = crate::upgrade::yaml_text(&text).map_err(failed)?;
            let mut docs = Vec::new();
            for doc in serde_yaml::Deserializer::from_str(text) {
                let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| failed(e.to_string()))?;
                match v {
                    Value::Null => {}
                    Value::Object(_) => docs.push(v),
                    other => {
                        return Err(TypeError::InsertNotManifest {
                            span: *span,
                            found: format!("a document of the file is not an object: `{other}`"),
                        })
                    }
                }
            }
            if docs.is_empty() {
                return Err(TypeError::InsertNotManifest { span: *span, found: "the file holds no manifest".into() });
            }
            docs
        }
        _ => return Err(TypeError::InsertNotManifest { span: stmt.span, found: "no manifest".into() }),
    };
    // SimKube types these fields strictly: an inserted object must pass as any other does.
    // And it must nest no deeper than a trace's readers accept.
    let span = match &stmt.action {
        ast::Action::InsertFile { span, .. } => *span,
        ast::Action::Insert(o) => o.span(),
        _ => stmt.span,
    };
    for m in &manifests {
        let mut node = crate::node::Node::from_value(m);
        if let Err(e) = crate::kube::typed::validate(&mut node) {
            return Err(TypeError::InsertNotManifest {
                span,
                found: format!("`{}` must be {}, found `{}`", e.field, e.expected, e.found),
            });
        }
        let limit = skel_trace::OBJECT_MAX_DEPTH;
        if crate::vm::levels(&node, limit) > limit {
            let found = format!("an object nested more than {limit} levels deep, which a trace cannot hold");
            return Err(TypeError::InsertNotManifest { span, found });
        }
    }
    Ok(Insert { at, manifests, span: stmt.span })
}

fn all_var_names(stmt: &ast::Statement) -> HashSet<String> {
    fn collect(tests: &[ast::Test], names: &mut HashSet<String>) {
        for t in tests {
            match t {
                ast::Test::Bind { var, .. } => {
                    names.insert(var.name.clone());
                }
                ast::Test::Or { branches, .. } => branches.iter().for_each(|b| collect(b, names)),
                ast::Test::Not { tests, .. } => collect(tests, names),
                ast::Test::Time { .. } | ast::Test::Field(_) => {}
            }
        }
    }
    let mut names = HashSet::new();
    if let Some(ast::Selector::And(tests)) = &stmt.selector {
        collect(tests, &mut names);
    }
    names
}

/// The most variables one statement defines: the VM numbers them with 16 bits.
const MAX_VARIABLES: usize = crate::bytecode::Slot::MAX as usize;

/// The most variables "did you mean" looks through, and the most an "undefined variable"
/// message names.
const SUGGEST_FROM: usize = 256;
const NAMED_VARIABLES: usize = 10;

/// Checks one statement. Every look-up of a variable is by hash or by slot, never a scan:
/// a statement can define thousands.
struct StmtChecker {
    /// Every variable of the statement, by slot. A name defined in two branches of an `||`
    /// is one variable.
    vars: Vec<Var>,
    /// Each variable's slot, by name.
    ids: HashMap<String, VarId>,
    /// The variables visible here, in the order they became visible (a stack: `||` and `!`
    /// cut it back to where they began).
    scope: Vec<VarId>,
    /// Whether each variable (by slot) is in `scope`.
    in_scope: Vec<bool>,
    /// Variables defined where they cannot be seen afterwards (in some branches of an `||`, or
    /// under `!`), with why (the first reason), for the message when they are used there.
    partial: HashMap<String, &'static str>,
    /// Every variable the statement defines, for "defined later" and "did you mean" help.
    all_names: HashSet<String>,
    /// Variables an earlier branch of an enclosing `||` defined: a later branch may define
    /// them again (the same variable); anywhere else a second definition is an error. A stack
    /// like `scope`; `siblings` counts each variable's entries in it.
    sibling: Vec<VarId>,
    siblings: Vec<u32>,
    /// `TooManyVariables` was reported.
    too_many: bool,
    diags: Vec<TypeError>,
}

impl StmtChecker {
    fn new(all_names: HashSet<String>) -> StmtChecker {
        StmtChecker {
            vars: Vec::new(),
            ids: HashMap::new(),
            scope: Vec::new(),
            in_scope: Vec::new(),
            partial: HashMap::new(),
            all_names,
            sibling: Vec::new(),
            siblings: Vec::new(),
            too_many: false,
            diags: Vec::new(),
        }
    }

    fn enter_scope(&mut self, id: VarId) {
        self.scope.push(id);
        if let Some(seen) = self.in_scope.get_mut(id) {
            *seen = true;
        }
    }

    /// Back to the first `len` variables of the scope.
    fn cut_scope(&mut self, len: usize) {
        for id in self.scope.drain(len.min(self.scope.len())..) {
            if let Some(seen) = self.in_scope.get_mut(id) {
                *seen = false;
            }
        }
    }

    fn add_sibling(&mut self, id: VarId) {
        self.sibling.push(id);
        if let Some(n) = self.siblings.get_mut(id) {
            *n += 1;
        }
    }

    fn cut_siblings(&mut self, len: usize) {
        for id in self.sibling.drain(len.min(self.sibling.len())..) {
            if let Some(n) = self.siblings.get_mut(id) {
                *n = n.saturating_sub(1);
            }
        }
    }

    fn statement(&mut self, s: &ast::Statement) -> Option<Stmt> {
        let mut conds = Vec::new();
        if let Some(ast::Selector::And(tests)) = &s.selector {
            for t in tests {
                if let Some(c) = self.test(t) {
                    conds.push(c);
                }
            }
        }
        let action = match &s.action {
            ast::Action::Delete => Some(Action::Delete),
            // TypeChecked apart (`insert`): they are not per-object statements.
            ast::Action::Insert(_) | ast::Action::InsertFile { .. } => None,
            ast::Action::Remove(p) => self.path(p).map(Action::Remove),
            ast::Action::Transfer { from, to, keep } => {
                let (f, t) = (self.path(from), self.path(to));
                let (f, t) = (f?, t?);
                let what = if *keep { "copy" } else { "move" };
                // Wildcards pair the two paths up: both go through the same `[*]`/`.*` steps,
                // and each element moves its own value.
                let wild = |p: &Path| p.segs.iter().rposition(|s| matches!(s, Seg::AnyIndex | Seg::AnyKey));
                let spread = wild(&f).max(wild(&t)).map(|w| w + 1);
                let paired =
                    spread.is_none_or(|n| f.segs.len() > n && t.segs.len() > n && f.segs.get(..n) == t.segs.get(..n));
                let problem = if !paired {
                    Some((to.span, "its `[*]`/`.*` steps are not the same as the first path's".to_string(), format!("with wildcards, both paths go through the same elements and differ after them: `{what}(a[*].x -> a[*].y)`; otherwise bind a variable: `{what}($c := a[*] | exists($c.x), $c.x -> $c.y)`")))
                } else if f.root != t.root {
                    Some((to.span, "this path starts somewhere else than the first".to_string(), format!("both paths start at the object, or both at the same variable, so that each value goes to its own place: `{what}($b := ... | exists($b.x), $b.x -> $b.y)`")))
                } else if f.segs.is_empty() || t.segs.is_empty() {
                    let at = if f.segs.is_empty() { from } else { to };
                    Some((
                        at.span,
                        "a whole object or binding".to_string(),
                        "name a field on both sides: `$x.a -> $x.b`".to_string(),
                    ))
                } else {
                    None
                };
                if let Some((span, label, help)) = problem {
                    self.diags.push(TypeError::InvalidTransfer { command: what.to_string(), span, label, help });
                    return None;
                }
                Some(Action::Transfer { from: f, to: t, keep: *keep })
            }
            ast::Action::Modify { target, value } => {
                let t = self.path(target);
                let v = self.assigned_value(value);
                if let (Some(t), Some(v)) = (&t, &v) {
                    self.modify_warnings(t, v, value);
                }
                match (t, v) {
                    (Some(target), Some(value)) => Some(Action::Modify { target, value }),
                    _ => None,
                }
            }
        };
        Some(Stmt {
            command: s.command,
            span: s.span,
            conds,
            action: action?,
            vars: std::mem::take(&mut self.vars),
            kind_guard: None,
        })
    }

    fn test(&mut self, t: &ast::Test) -> Option<Cond> {
        match t {
            ast::Test::Time { op, value, span, .. } => {
                let at = self.time_value(value)?;
                Some(Cond::Time { op: *op, at, span: *span })
            }
            ast::Test::Field(f) => {
                let pred = self.pred(f, None)?;
                Some(Cond::Test { pred, span: f.span() })
            }
            ast::Test::Or { branches, span } => self.or(branches, *span),
            ast::Test::Not { tests, span } => self.not(tests, *span),
            ast::Test::Bind { var, path, test, span } => {
                let over = self.path(path);
                // The variable is visible in its own test (as the candidate location).
                let id = self.define(var)?;
                let pred = self.pred(test, Some((id, var)))?;
                Some(Cond::Bind { var: id, over: over?, pred, span: *span })
            }
        }
    }

    fn visible(&self, name: &str) -> Option<VarId> {
        self.ids.get(name).copied().filter(|id| self.in_scope.get(*id).copied().unwrap_or(false))
    }

    fn define(&mut self, var: &ast::Ident) -> Option<VarId> {
        // Visible here, or defined before where it is no longer visible (a branch of an
        // `||` that is over, under a `!`): a second definition, unless it is in another
        // branch of the same `||`.
        let known = self.ids.get(&var.name).copied();
        let earlier = known.filter(|id| self.siblings.get(*id).is_none_or(|n| *n == 0));
        if let Some(first) = self.visible(&var.name).or(earlier).and_then(|id| self.vars.get(id)) {
            self.diags.push(TypeError::DuplicateVariable { name: var.name.clone(), span: var.span, first: first.span });
            return None;
        }
        // The same name in another branch of an `||` is the same variable.
        let id = match known {
            Some(id) => id,
            None if self.vars.len() >= MAX_VARIABLES => {
                // Once a statement: the variables after it are all one too many.
                if !std::mem::replace(&mut self.too_many, true) {
                    self.diags.push(TypeError::TooManyVariables { limit: MAX_VARIABLES, span: var.span });
                }
                return None;
            }
            None => {
                self.vars.push(Var { name: var.name.clone(), span: var.span });
                self.ids.insert(var.name.clone(), self.vars.len() - 1);
                self.in_scope.push(false);
                self.siblings.push(0);
                self.vars.len() - 1
            }
        };
        self.enter_scope(id);
        Some(id)
    }

    /// `A || B`: each branch is checked from the same scope; afterwards only the variables
    /// every branch defines are visible (whichever branch held, they are bound).
    fn or(&mut self, branches: &[Vec<ast::Test>], span: Span) -> Option<Cond> {
        let before = self.scope.len();
        let siblings_before = self.sibling.len();
        // Every variable some branch defines, in order, and how many branches define it.
        let mut all: Vec<VarId> = Vec::new();
        let mut defined_in: HashMap<VarId, usize> = HashMap::new();
        let mut out = Vec::new();
        let mut ok = true;
        for b in branches {
            self.cut_scope(before);
            let conds: Vec<Option<Cond>> = b.iter().map(|t| self.test(t)).collect();
            ok &= conds.iter().all(Option::is_some);
            out.push(conds.into_iter().flatten().collect());
            let new = self.scope.get(before..).unwrap_or_default().to_vec();
            for id in new {
                let n = defined_in.entry(id).or_default();
                *n += 1;
                if *n == 1 {
                    all.push(id);
                    // What the branches before the next one defined may be defined again there.
                    self.add_sibling(id);
                }
            }
        }
        self.cut_siblings(siblings_before);
        self.cut_scope(before);
        for id in all {
            if defined_in.get(&id) == Some(&branches.len()) {
                self.enter_scope(id);
            } else if let Some(v) = self.vars.get(id) {
                self.partial.entry(v.name.clone()).or_insert(
                    "it is bound in some branches of the `||` and not in others; bind it in every branch, or use it only inside its branch",
                );
            }
        }
        ok.then_some(Cond::Or { branches: out, span })
    }

    /// `!(...)`: its variables are never visible afterwards (it holds when they are not bound).
    fn not(&mut self, tests: &[ast::Test], span: Span) -> Option<Cond> {
        let before = self.scope.len();
        let conds: Vec<Option<Cond>> = tests.iter().map(|t| self.test(t)).collect();
        for id in self.scope.get(before..).unwrap_or_default().to_vec() {
            if let Some(v) = self.vars.get(id) {
                self.partial.entry(v.name.clone()).or_insert(
                    "it is bound under `!`, which holds only when the test inside fails; use it only inside the `!(...)`",
                );
            }
        }
        self.cut_scope(before);
        let conds: Option<Vec<Cond>> = conds.into_iter().collect();
        Some(Cond::Not { conds: conds?, span })
    }

    fn time_value(&mut self, value: &ast::Operand) -> Option<TimeRef> {
        match value {
            ast::Operand::Literal(ast::Literal { value: ast::LiteralValue::Integer(n), span }) => {
                match i64::try_from(*n) {
                    Ok(t) => Some(TimeRef::Absolute(t)),
                    Err(_) => {
                        self.diags.push(TypeError::TimeTooLarge { text: n.to_string(), span: *span });
                        None
                    }
                }
            }
            ast::Operand::Literal(ast::Literal { value: ast::LiteralValue::Duration(s), .. }) => {
                // The parser caps durations at i64::MAX seconds.
                Some(TimeRef::Relative(i64::try_from(*s).unwrap_or(i64::MAX)))
            }
            other => {
                let found = match other {
                    ast::Operand::Path(p) => format!("the path `{p}`"),
                    ast::Operand::Literal(l) => match l.value {
                        ast::LiteralValue::String(_) => format!("the string {l}"),
                        _ => format!("`{l}`"),
                    },
                    ast::Operand::Array { .. } => "an array".to_string(),
                    ast::Operand::Object { .. } => "an object".to_string(),
                };
                self.diags.push(TypeError::TimeType { found, span: other.span() });
                None
            }
        }
    }

    /// A field test; `bound` is the variable being defined when this is the test of a `Bind`.
    fn pred(&mut self, t: &ast::FieldTest, bound: Option<(VarId, &ast::Ident)>) -> Option<Pred> {
        let lhs_ast = t.path();
        if let Some((_, var)) = bound {
            let uses_it = lhs_ast.var.as_ref().is_some_and(|v| v.name == var.name);
            if !uses_it {
                let (found, span) = match &lhs_ast.var {
                    Some(v) => (format!("`{}` is not the variable being defined", v.name), v.span),
                    None => ("does not start with a variable".to_string(), lhs_ast.span),
                };
                let help = format!(
                    "the test tells which locations `{0}` binds, so its path starts with `{0}`: `{0}{1}`",
                    var.name,
                    suffix_after_var(lhs_ast)
                );
                self.diags.push(TypeError::InvalidLhs { var: var.name.clone(), span, found, help });
                return None;
            }
        }
        let lhs = self.path(lhs_ast);
        Some(match t {
            ast::FieldTest::Exists { .. } => Pred::Exists(lhs?),
            ast::FieldTest::NotExists { .. } => Pred::NotExists(lhs?),
            ast::FieldTest::Compare { op: op @ (CmpOp::Match | CmpOp::NotMatch), op_span, rhs, .. } => {
                let pattern = self.pattern(*op, *op_span, rhs);
                Pred::Compare { lhs: lhs?, op: *op, rhs: Operand::Const(Value::String(pattern?)) }
            }
            ast::FieldTest::Compare { op, rhs, .. } => {
                let rhs = self.compared_value(*op, rhs);
                Pred::Compare { lhs: lhs?, op: *op, rhs: rhs? }
            }
        })
    }

    fn compared_value(&mut self, op: CmpOp, v: &ast::Operand) -> Option<Operand> {
        if let ast::Operand::Literal(l) = v {
            if op.is_ordering() && matches!(l.value, ast::LiteralValue::Bool(_)) {
                self.diags.push(TypeError::UnorderedValue {
                    op: op.to_string(),
                    what: format!("the boolean `{l}`"),
                    span: l.span,
                });
                return None;
            }
        }
        self.operand(v)
    }

    /// The pattern of `=~` / `!~`: a string literal that is a valid regular expression.
    fn pattern(&mut self, op: CmpOp, op_span: Span, v: &ast::Operand) -> Option<String> {
        let ast::Operand::Literal(ast::Literal { value: ast::LiteralValue::String(p), span }) = v else {
            self.diags.push(TypeError::PatternNotString { op: op.to_string(), op_span, span: v.span() });
            return None;
        };
        // Offsets in the pattern are offsets in the source when the literal has no escapes.
        let exact = span.len() == p.len() + 2;
        let at = |start: usize, end: usize| {
            if exact {
                Span::new(span.start + 1 + start, span.start + 1 + end.max(start + 1).min(p.len()))
            } else {
                *span
            }
        };
        let invalid = match regex_syntax::ast::parse::Parser::new().parse(p) {
            Err(e) => Some((e.kind().to_string(), at(e.span().start.offset, e.span().end.offset))),
            Ok(_) => match regex::Regex::new(p) {
                Err(e) => Some((e.to_string().lines().last().unwrap_or("invalid pattern").trim().to_string(), *span)),
                Ok(_) => None,
            },
        };
        match invalid {
            Some((message, span)) => {
                self.diags.push(TypeError::InvalidRegex { message, span });
                None
            }
            None => Some(p.clone()),
        }
    }

    fn assigned_value(&mut self, v: &ast::Operand) -> Option<Operand> {
        // A plain path with a wildcard reaches many values, also inside a literal.
        fn multi_valued(v: &ast::Operand, out: &mut Vec<Span>) {
            match v {
                ast::Operand::Path(p) => {
                    let wild =
                        |s: &ast::Segment| matches!(s, ast::Segment::AnyIndex { .. } | ast::Segment::AnyKey { .. });
                    if p.var.is_none() && p.segments.iter().any(wild) {
                        out.push(p.span);
                    }
                }
                ast::Operand::Array { items, .. } => items.iter().for_each(|i| multi_valued(i, out)),
                ast::Operand::Object { members, .. } => members.iter().for_each(|m| multi_valued(&m.value, out)),
                ast::Operand::Literal(_) => {}
            }
        }
        let mut spans = Vec::new();
        multi_valued(v, &mut spans);
        if !spans.is_empty() {
            self.diags.extend(spans.into_iter().map(|span| TypeError::MultiValuedAssignment { span }));
            return None;
        }
        self.operand(v)
    }

    /// A value: a literal becomes a constant; an array or object literal whose parts are all
    /// constants does too, one with paths in it becomes a template filled in at run time.
    fn operand(&mut self, v: &ast::Operand) -> Option<Operand> {
        match v {
            ast::Operand::Path(p) => self.path(p).map(Operand::Path),
            ast::Operand::Literal(l) => Some(Operand::Const(match &l.value {
                ast::LiteralValue::Integer(n) => Value::from(*n),
                ast::LiteralValue::Negative(n) => Value::from(*n),
                ast::LiteralValue::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
                ast::LiteralValue::Null => Value::Null,
                ast::LiteralValue::String(s) => Value::String(s.clone()),
                ast::LiteralValue::Bool(b) => Value::Bool(*b),
                ast::LiteralValue::Duration(_) => {
                    self.diags.push(TypeError::DurationOutsideTime { span: l.span });
                    return None;
                }
            })),
            ast::Operand::Array { items, .. } => {
                // Check every part, to report every error.
                let parts: Vec<Option<Operand>> = items.iter().map(|i| self.operand(i)).collect();
                let parts: Vec<Operand> = parts.into_iter().collect::<Option<_>>()?;
                Some(Operand::Array(parts).folded())
            }
            ast::Operand::Object { members, .. } => {
                let mut parts = Vec::with_capacity(members.len());
                let mut ok = true;
                for m in members {
                    if let Some(first) = members.iter().find(|o| o.key == m.key && o.key_span != m.key_span) {
                        if first.key_span.start < m.key_span.start {
                            self.diags.push(TypeError::DuplicateKey {
                                key: m.key.clone(),
                                span: m.key_span,
                                first: first.key_span,
                            });
                            ok = false;
                        }
                    }
                    match self.operand(&m.value) {
                        Some(v) => parts.push((m.key.clone(), v)),
                        None => ok = false,
                    }
                }
                ok.then(|| Operand::Object(parts).folded())
            }
        }
    }

    fn path(&mut self, p: &ast::Path) -> Option<Path> {
        let root = match &p.var {
            None => Root::Object,
            Some(v) => match self.visible(&v.name) {
                Some(id) => Root::Var(id),
                None => {
                    self.diags.push(self.undefined(v));
                    return None;
                }
            },
        };
        let segs = p
            .segments
            .iter()
            .map(|s| match s {
                ast::Segment::Key { name, .. } => Seg::Key(name.clone()),
                ast::Segment::Index { index, .. } => Seg::Index(*index),
                ast::Segment::AnyIndex { .. } => Seg::AnyIndex,
                ast::Segment::AnyKey { .. } => Seg::AnyKey,
            })
            .collect();
        Some(Path { root, segs, span: p.span })
    }

    fn undefined(&self, v: &ast::Ident) -> TypeError {
        if let Some(why) = self.partial.get(&v.name) {
            return TypeError::NotBoundHere { name: v.name.clone(), span: v.span, why: why.to_string() };
        }
        let help = if self.ids.contains_key(&v.name) {
            format!("`{}` is bound in another branch of an `||`; each branch binds its own variables", v.name)
        } else if self.all_names.contains(&v.name) {
            format!("`{0}` is defined later in this selector; define it before its first use", v.name)
        } else {
            let best = self
                .vars
                .iter()
                .take(SUGGEST_FROM)
                .map(|d| (strsim::damerau_levenshtein(&d.name, &v.name), &d.name))
                .min_by_key(|(d, _)| *d);
            match best {
                Some((d, name)) if d <= 2 => format!("did you mean `{name}`?"),
                _ if self.vars.is_empty() => format!(
                    "define it in the selector first: `{} := PATH | TEST`; variables live for one statement",
                    v.name
                ),
                _ => {
                    let names: Vec<String> =
                        self.vars.iter().take(NAMED_VARIABLES).map(|d| format!("`{}`", d.name)).collect();
                    let more = match self.vars.len().saturating_sub(NAMED_VARIABLES) {
                        0 => String::new(),
                        n => format!(" and {n} more"),
                    };
                    format!("the variables defined here are {}{more}", names.join(", "))
                }
            }
        };
        TypeError::UndefinedVariable { name: v.name.clone(), span: v.span, help }
    }

    fn modify_warnings(&mut self, target: &Path, value: &Operand, value_ast: &ast::Operand) {
        if target.root == Root::Object && target.segs.len() == 3 {
            if let (Some(Seg::Key(m)), Some(Seg::Key(field))) = (target.segs.first(), target.segs.get(1)) {
                let is_map = m == "metadata" && (field == "labels" || field == "annotations");
                if let (true, Operand::Const(v)) = (is_map, value) {
                    if !v.is_string() {
                        self.diags.push(TypeError::LabelNotString {
                            field: field.clone(),
                            text: v.to_string(),
                            span: value_ast.span(),
                        });
                    }
                }
            }
        }
    }
}

fn suffix_after_var(p: &ast::Path) -> String {
    let text = p.to_string();
    match &p.var {
        Some(v) => text.get(v.name.len()..).unwrap_or("").to_string(),
        None => format!(".{text}"),
    }
}
