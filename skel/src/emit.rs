//! IR -> bytecode: interns keys, constants and paths (equal paths share one entry) and lays
//! each statement out as tests with jumps to its end, then its action.

use std::collections::HashMap;

use serde_json::Value;

use crate::bytecode::{self as bc, Instr, PathCode, PathRoot, Program, StmtInfo};
use crate::ir;

/// Fields SimKube round-trips through typed Kubernetes structs (see `typed.rs`).
const TYPED_TOP_LEVEL: [&str; 3] = ["metadata", "apiVersion", "kind"];

pub fn emit(script: &ir::Script) -> Program {
    let mut e = Emitter::default();
    let dispatch = dispatch_table(script);
    for s in &script.statements {
        // Under dispatch, a statement guarded by a kind only runs for objects of that kind:
        // its `kind == "..."` test is already decided.
        let guard = if dispatch.is_some() { s.kind_guard.as_deref() } else { None };
        e.statement(s, guard);
    }
    e.program.inserts = script
        .inserts
        .iter()
        .map(|i| bc::InsertCode {
            at: match i.at {
                ir::TimeRef::Absolute(t) => bc::TimeOperand::Absolute(t),
                ir::TimeRef::Relative(t) => bc::TimeOperand::Relative(t),
            },
            manifests: i.manifests.clone(),
            span: i.span,
        })
        .collect();
    e.program.shape = shape(script, dispatch.is_some());
    e.program.api_moves = script.api_moves();
    e.program.dispatch = dispatch;
    e.program
}

/// What of an object the program can see: every path it walks (bindings, existence tests,
/// removal and modify targets) and where it needs whole values (compared or copied values,
/// the typed fields it validates, `kind` when the VM dispatches on it).
fn shape(script: &ir::Script, dispatch: bool) -> bc::Shape {
    let mut shape = bc::Shape::default();
    for s in &script.statements {
        let mut add = |p: &ir::Path, full: bool| {
            for (steps, any_key) in absolute_steps(s, p) {
                // Every key of an object: the whole object is decoded.
                shape.insert(steps.into_iter(), full || any_key);
            }
        };
        add_conds(&mut add, &s.conds);
        match &s.action {
            ir::Action::Delete => {}
            ir::Action::Remove(p) => add(p, false),
            ir::Action::Transfer { from, to, .. } => {
                add(from, true);
                add(to, false);
            }
            ir::Action::Modify { target, value } => {
                add(target, false);
                for v in value.paths() {
                    add(v, true);
                }
            }
        }
        if touches_typed_fields(s) {
            for k in TYPED_TOP_LEVEL {
                shape.insert(std::iter::once(bc::PathStep::Key(k)), true);
            }
        }
    }
    if dispatch {
        shape.insert(std::iter::once(bc::PathStep::Key("kind")), true);
    }
    shape
}

fn add_conds(add: &mut impl FnMut(&ir::Path, bool), conds: &[ir::Cond]) {
    for c in conds {
        match c {
            ir::Cond::Time { .. } => {}
            ir::Cond::Test { pred, .. } => add_pred(add, pred),
            ir::Cond::Bind { over, pred, .. } => {
                add(over, false);
                add_pred(add, pred);
            }
            ir::Cond::Or { branches, .. } => branches.iter().for_each(|b| add_conds(add, b)),
            ir::Cond::Not { conds, .. } => add_conds(add, conds),
        }
    }
}

fn add_pred(add: &mut impl FnMut(&ir::Path, bool), pred: &ir::Pred) {
    match pred {
        // Existence survives an undecoded value: only the way there must be decoded.
        ir::Pred::Exists(p) | ir::Pred::NotExists(p) => add(p, false),
        ir::Pred::Compare { lhs, rhs, .. } => {
            add(lhs, true);
            for r in rhs.paths() {
                add(r, true);
            }
        }
    }
}

/// A path's steps from the object root (a variable is replaced by each path it is bound
/// over: one per binding, several with `||`), each up to its first `.*` if it has one (then
/// `true`: the object there is needed whole).
fn absolute_steps<'a>(s: &'a ir::Stmt, p: &'a ir::Path) -> Vec<(Vec<bc::PathStep<'a>>, bool)> {
    let starts = match p.root {
        ir::Root::Object => vec![(Vec::new(), false)],
        // A variable is bound over a path rooted earlier, so this recursion ends.
        ir::Root::Var(v) => ir::Cond::bindings_of(&s.conds, v).into_iter().flat_map(|o| absolute_steps(s, o)).collect(),
    };
    starts
        .into_iter()
        .map(|(mut steps, any_key)| {
            if any_key {
                return (steps, true);
            }
            for seg in &p.segs {
                match seg {
                    ir::Seg::Key(k) => steps.push(bc::PathStep::Key(k)),
                    ir::Seg::Index(_) | ir::Seg::AnyIndex => steps.push(bc::PathStep::Elem),
                    ir::Seg::AnyKey => return (steps, true),
                }
            }
            (steps, false)
        })
        .collect()
}

/// Whether the condition is the `kind == "<kind>"` test a dispatch guard stands for.
fn is_guard_test(c: &ir::Cond, kind: &str) -> bool {
    matches!(c, ir::Cond::Test { pred: ir::Pred::Compare { lhs, op: bc::CmpOp::Eq, rhs: ir::Operand::Const(serde_json::Value::String(k)) }, .. }
        if lhs.root == ir::Root::Object && lhs.segs == [ir::Seg::Key("kind".into())] && k == kind)
}

/// The kind dispatch table, when some statement is guarded by a kind.
fn dispatch_table(script: &ir::Script) -> Option<bc::Dispatch> {
    if script.statements.iter().all(|s| s.kind_guard.is_none()) || script.statements.iter().any(writes_kind) {
        return None;
    }
    let mut table = bc::Dispatch::default();
    let unguarded: Vec<u32> =
        script.statements.iter().enumerate().filter(|(_, s)| s.kind_guard.is_none()).map(|(i, _)| i as u32).collect();
    for s in &script.statements {
        if let Some(k) = &s.kind_guard {
            if table.by_kind.contains_key(k.as_str()) {
                continue;
            }
            let list: Vec<u32> = script
                .statements
                .iter()
                .enumerate()
                .filter(|(_, t)| t.kind_guard.as_deref().is_none_or(|g| g == k))
                .map(|(i, _)| i as u32)
                .collect();
            table.by_kind.insert(k.as_str().into(), list.into());
        }
    }
    table.other = unguarded.into();
    Some(table)
}

#[derive(Default)]
struct Emitter {
    program: Program,
    keys: HashMap<String, bc::KeyId>,
    paths: HashMap<PathCode, bc::PathId>,
}

impl Emitter {
    fn statement(&mut self, s: &ir::Stmt, guard: Option<&str>) {
        let entry = self.program.code.len() as bc::Pc;
        let mut jumps = Vec::new();
        let conds: Vec<&ir::Cond> = s.conds.iter().filter(|c| !guard.is_some_and(|k| is_guard_test(c, k))).collect();
        for c in conds {
            self.cond(c, &mut jumps);
        }
        let action = match &s.action {
            ir::Action::Delete => Instr::Delete,
            ir::Action::Remove(p) => Instr::Remove(self.path(p)),
            ir::Action::Modify { target, value } => {
                Instr::Modify { target: self.path(target), value: self.operand(value) }
            }
            ir::Action::Transfer { from, to, keep } => {
                Instr::Transfer { from: self.path(from), to: self.path(to), keep: *keep }
            }
        };
        self.program.code.push(action);
        self.patch(&jumps);
        self.program.code.push(Instr::Return);
        self.program.stmts.push(StmtInfo {
            command: s.command,
            span: s.span,
            entry,
            slots: s.vars.len() as u16,
            touches_typed_fields: touches_typed_fields(s),
            var_names: s.vars.iter().map(|v| v.name.as_str().into()).collect(),
        });
    }

    /// Lays out one condition; every jump taken when it fails is added to `fails` (to be
    /// pointed past the action). `||` tries its branches in turn; `!` fails when its
    /// conjunction holds.
    fn cond(&mut self, c: &ir::Cond, fails: &mut Vec<usize>) {
        let ins = match c {
            ir::Cond::Time { op, at, .. } => Instr::Time {
                op: *op,
                time: match *at {
                    ir::TimeRef::Absolute(t) => bc::TimeOperand::Absolute(t),
                    ir::TimeRef::Relative(t) => bc::TimeOperand::Relative(t),
                },
            },
            ir::Cond::Test { pred, .. } => Instr::Test(self.pred(pred)),
            ir::Cond::Bind { var, over, pred, .. } => {
                Instr::Bind { slot: *var as bc::Slot, over: self.path(over), pred: self.pred(pred) }
            }
            ir::Cond::Or { branches, .. } => {
                let mut to_end = Vec::new();
                for (i, b) in branches.iter().enumerate() {
                    if i + 1 == branches.len() {
                        b.iter().for_each(|c| self.cond(c, fails));
                    } else {
                        let mut next = Vec::new();
                        b.iter().for_each(|c| self.cond(c, &mut next));
                        to_end.push(self.program.code.len());
                        self.program.code.push(Instr::Jump(0));
                        self.patch(&next);
                    }
                }
                self.patch(&to_end);
                return;
            }
            ir::Cond::Not { conds, .. } => {
                let mut holds = Vec::new();
                conds.iter().for_each(|c| self.cond(c, &mut holds));
                fails.push(self.program.code.len());
                self.program.code.push(Instr::Jump(0));
                self.patch(&holds);
                return;
            }
        };
        self.program.code.push(ins);
        fails.push(self.program.code.len());
        self.program.code.push(Instr::JumpIfFalse(0));
    }

    /// Points the jumps at `at` to the next instruction.
    fn patch(&mut self, at: &[usize]) {
        let target = self.program.code.len() as bc::Pc;
        for j in at {
            match self.program.code.get_mut(*j) {
                Some(Instr::JumpIfFalse(t)) | Some(Instr::Jump(t)) => *t = target,
                _ => {}
            }
        }
    }

    fn pred(&mut self, p: &ir::Pred) -> bc::Pred {
        match p {
            ir::Pred::Exists(a) => bc::Pred::Exists(self.path(a)),
            ir::Pred::NotExists(a) => bc::Pred::NotExists(self.path(a)),
            ir::Pred::Compare { lhs, op: op @ (bc::CmpOp::Match | bc::CmpOp::NotMatch), rhs } => {
                let rhs = match rhs {
                    // The checker has compiled the pattern once already: it compiles.
                    ir::Operand::Const(Value::String(p)) => {
                        match self.program.regexes.iter().position(|r| r.as_str() == p) {
                            Some(i) => bc::Rhs::Regex(i as bc::RegexId),
                            None => match regex::Regex::new(p) {
                                Ok(re) => {
                                    self.program.regexes.push(bc::Pattern(re));
                                    bc::Rhs::Regex((self.program.regexes.len() - 1) as bc::RegexId)
                                }
                                Err(_) => bc::Rhs::Regex(u32::MAX),
                            },
                        }
                    }
                    _ => bc::Rhs::Regex(u32::MAX),
                };
                bc::Pred::Cmp { lhs: self.path(lhs), op: *op, rhs }
            }
            ir::Pred::Compare { lhs, op, rhs } => {
                bc::Pred::Cmp { lhs: self.path(lhs), op: *op, rhs: self.operand(rhs) }
            }
        }
    }

    fn operand(&mut self, o: &ir::Operand) -> bc::Rhs {
        match o {
            ir::Operand::Const(v) => bc::Rhs::Const(self.constant(v)),
            ir::Operand::Path(p) => bc::Rhs::Path(self.path(p)),
            ir::Operand::Array(_) | ir::Operand::Object(_) => {
                let b = self.build(o);
                self.program.builds.push(b);
                bc::Rhs::Build((self.program.builds.len() - 1) as bc::BuildId)
            }
        }
    }

    /// A template: how to build a value from constants and the values of paths.
    fn build(&mut self, o: &ir::Operand) -> bc::Build {
        match o {
            ir::Operand::Const(v) => bc::Build::Const(self.constant(v)),
            ir::Operand::Path(p) => bc::Build::Path(self.path(p)),
            ir::Operand::Array(items) => bc::Build::Array(items.iter().map(|i| self.build(i)).collect()),
            ir::Operand::Object(members) => {
                bc::Build::Object(members.iter().map(|(k, v)| (k.as_str().into(), self.build(v))).collect())
            }
        }
    }

    fn constant(&mut self, v: &Value) -> bc::ConstId {
        if let Some(i) = self.program.consts.iter().position(|c| c == v) {
            return i as bc::ConstId;
        }
        self.program.consts.push(v.clone());
        (self.program.consts.len() - 1) as bc::ConstId
    }

    fn key(&mut self, k: &str) -> bc::KeyId {
        if let Some(id) = self.keys.get(k) {
            return *id;
        }
        let id = self.program.keys.len() as bc::KeyId;
        self.program.keys.push(k.into());
        self.keys.insert(k.to_string(), id);
        id
    }

    fn path(&mut self, p: &ir::Path) -> bc::PathId {
        let root = match p.root {
            ir::Root::Object => PathRoot::Object,
            ir::Root::Var(v) => PathRoot::Slot(v as bc::Slot),
        };
        let segs = p
            .segs
            .iter()
            .map(|s| match s {
                ir::Seg::Key(k) => bc::Seg::Key(self.key(k)),
                // Indices beyond u32 cannot exist in memory; saturate so they simply reach nothing.
                ir::Seg::Index(n) => bc::Seg::Index(u32::try_from(*n).unwrap_or(u32::MAX)),
                ir::Seg::AnyIndex => bc::Seg::AnyIndex,
                ir::Seg::AnyKey => bc::Seg::AnyKey,
            })
            .collect();
        let code = PathCode { root, segs, prefix: None };
        if let Some(id) = self.paths.get(&code) {
            return *id;
        }
        let id = self.program.paths.len() as bc::PathId;
        self.program.paths.push(code.clone());
        self.paths.insert(code, id);
        id
    }
}

/// Whether the statement's action can change a field SimKube types strictly.
fn touches_typed_fields(s: &ir::Stmt) -> bool {
    changed_paths(s).into_iter().any(|p| match target_root_key(s, p) {
        TargetRoot::Key(k) => TYPED_TOP_LEVEL.contains(&k),
        TargetRoot::Unknown => true,
    })
}

/// Whether the statement's action can change an object's `kind` (then dispatching on the kind
/// an object had before the script ran would be wrong).
fn writes_kind(s: &ir::Stmt) -> bool {
    changed_paths(s).into_iter().any(|p| match target_root_key(s, p) {
        TargetRoot::Key(k) => k == "kind",
        TargetRoot::Unknown => true,
    })
}

/// The paths an action changes.
fn changed_paths(s: &ir::Stmt) -> Vec<&ir::Path> {
    match &s.action {
        ir::Action::Delete => Vec::new(),
        ir::Action::Remove(p) => vec![p],
        ir::Action::Modify { target, .. } => vec![target],
        ir::Action::Transfer { from, to, keep: false } => vec![from, to],
        ir::Action::Transfer { to, keep: true, .. } => vec![to],
    }
}

/// The top-level key a changed path lies under.
enum TargetRoot<'a> {
    Key(&'a str),
    /// The whole object, or a variable whose origin cannot be followed.
    Unknown,
}

/// Follows a target rooted at a variable back to the path the variable was bound over.
fn target_root_key<'a>(s: &'a ir::Stmt, mut path: &'a ir::Path) -> TargetRoot<'a> {
    // Each variable is bound over a path rooted at the object or an earlier variable, so
    // this walk ends after at most `vars.len()` steps.
    for _ in 0..=s.vars.len() {
        match path.root {
            ir::Root::Object => return path.first_key().map_or(TargetRoot::Unknown, TargetRoot::Key),
            ir::Root::Var(v) => match ir::Cond::bindings_of(&s.conds, v).as_slice() {
                [o] => path = o,
                // Bound in several places (`||`) or none: cannot tell.
                _ => return TargetRoot::Unknown,
            },
        }
    }
    TargetRoot::Unknown
}
