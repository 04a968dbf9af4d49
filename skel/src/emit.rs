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
        let bindings = ir::Cond::bindings(&s.conds, s.vars.len());
        let Some(starts) = var_starts(&bindings) else {
            // The paths a variable stands for cannot be listed: the whole object is decoded.
            let mut whole = bc::Shape::default();
            whole.full = true;
            return whole;
        };
        let mut add = |p: &ir::Path, full: bool| {
            let roots = match p.root {
                ir::Root::Object => vec![(Vec::new(), false)],
                ir::Root::Var(v) => starts.get(v).cloned().unwrap_or_default(),
            };
            for root in roots {
                let (steps, any_key) = extend(root, p);
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

/// Steps from the object root, and whether the value they reach is needed whole (a `.*`, or
/// deeper than any object is read).
type Steps<'a> = (Vec<bc::PathStep<'a>>, bool);

/// The most paths from the object one variable stands for in a `Shape` (`||` multiplies them);
/// past that the whole object is decoded.
const MAX_VAR_PATHS: usize = 64;

/// The paths from the object each variable stands for (one per binding, several with `||`),
/// by `VarId`; `None` when they cannot be listed: through `||`, a variable can be bound over
/// a path from a variable bound over a path from the first, or stand for too many paths.
fn var_starts<'a>(bindings: &[Vec<&'a ir::Path>]) -> Option<Vec<Vec<Steps<'a>>>> {
    // In dependency order (a variable after those its bindings start from), by a work list,
    // not a recursion: a chain of variables is as long as the statement.
    let n = bindings.len();
    let mut waiting = vec![0usize; n];
    let mut users: Vec<Vec<ir::VarId>> = vec![Vec::new(); n];
    for (v, paths) in bindings.iter().enumerate() {
        for p in paths {
            if let ir::Root::Var(r) = p.root {
                users.get_mut(r)?.push(v);
                waiting[v] += 1;
            }
        }
    }
    let mut ready: Vec<ir::VarId> = (0..n).filter(|v| waiting[*v] == 0).collect();
    let mut starts: Vec<Option<Vec<Steps<'a>>>> = vec![None; n];
    while let Some(v) = ready.pop() {
        let mut list = Vec::new();
        for p in bindings.get(v).into_iter().flatten() {
            let roots = match p.root {
                ir::Root::Object => vec![(Vec::new(), false)],
                ir::Root::Var(r) => starts.get(r)?.clone()?,
            };
            for root in roots {
                list.push(extend(root, p));
            }
            if list.len() > MAX_VAR_PATHS {
                return None;
            }
        }
        starts[v] = Some(list);
        for u in users.get(v).into_iter().flatten() {
            waiting[*u] -= 1;
            if waiting[*u] == 0 {
                ready.push(*u);
            }
        }
    }
    // A variable still waiting is bound in a cycle.
    starts.into_iter().collect()
}

/// `root` followed by the path's segments, up to its first `.*` if it has one, and at most
/// `MAX_DEPTH` steps (no object read is deeper; below that the value is needed whole).
fn extend<'a>((mut steps, any_key): Steps<'a>, p: &'a ir::Path) -> Steps<'a> {
    if any_key {
        return (steps, true);
    }
    for seg in &p.segs {
        if steps.len() >= skel_grammar::MAX_DEPTH {
            return (steps, true);
        }
        match seg {
            ir::Seg::Key(k) => steps.push(bc::PathStep::Key(k)),
            ir::Seg::Index(_) | ir::Seg::AnyIndex => steps.push(bc::PathStep::Elem),
            ir::Seg::AnyKey => return (steps, true),
        }
    }
    (steps, false)
}

/// Whether the condition is the `kind == "<kind>"` test a dispatch guard stands for.
fn is_guard_test(c: &ir::Cond, kind: &str) -> bool {
    matches!(c, ir::Cond::Test { pred: ir::Pred::Compare { lhs, op: bc::CmpOp::Eq, rhs: ir::Operand::Const(serde_json::Value::String(k)) }, .. }
        if lhs.root == ir::Root::Object && lhs.segs == [ir::Seg::Key("kind".into())] && k == kind)
}

/// The most statement numbers a dispatch table may hold: each kind's list repeats every
/// unguarded statement, so thousands of kinds and of unguarded statements would make a table
/// of millions. Past this the VM runs every statement for every object (the same result).
const MAX_DISPATCH_ENTRIES: usize = 1 << 20;

/// The kind dispatch table, when some statement is guarded by a kind.
fn dispatch_table(script: &ir::Script) -> Option<bc::Dispatch> {
    if script.statements.iter().all(|s| s.kind_guard.is_none()) || script.statements.iter().any(writes_kind) {
        return None;
    }
    let mut guarded: Vec<(&str, Vec<u32>)> = Vec::new();
    let mut by_kind: HashMap<&str, usize> = HashMap::new();
    let mut unguarded: Vec<u32> = Vec::new();
    for (i, s) in script.statements.iter().enumerate() {
        match s.kind_guard.as_deref() {
            None => unguarded.push(i as u32),
            Some(k) => {
                let at = *by_kind.entry(k).or_insert_with(|| {
                    guarded.push((k, Vec::new()));
                    guarded.len() - 1
                });
                if let Some((_, list)) = guarded.get_mut(at) {
                    list.push(i as u32);
                }
            }
        }
    }
    if guarded.len().saturating_mul(unguarded.len()) > MAX_DISPATCH_ENTRIES {
        return None;
    }
    let mut table = bc::Dispatch::default();
    for (kind, own) in guarded {
        // Its own statements and the unguarded ones, in script order.
        let mut list = Vec::with_capacity(own.len() + unguarded.len());
        let (mut a, mut b) = (own.iter().peekable(), unguarded.iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            if x < y {
                list.push(**x);
                a.next();
            } else {
                list.push(**y);
                b.next();
            }
        }
        list.extend(a);
        list.extend(b);
        table.by_kind.insert(kind.into(), list.into());
    }
    table.other = unguarded.into();
    Some(table)
}

#[derive(Default)]
struct Emitter {
    program: Program,
    keys: HashMap<String, bc::KeyId>,
    paths: HashMap<PathCode, bc::PathId>,
    /// Constants by their JSON text (equal values written alike share an entry).
    consts: HashMap<String, bc::ConstId>,
    /// Regular expressions by pattern.
    regexes: HashMap<String, bc::RegexId>,
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
                    ir::Operand::Const(Value::String(p)) => match self.regexes.get(p) {
                        Some(i) => bc::Rhs::Regex(*i),
                        None => match regex::Regex::new(p) {
                            Ok(re) => {
                                let id = self.program.regexes.len() as bc::RegexId;
                                self.program.regexes.push(bc::Pattern(re));
                                self.regexes.insert(p.clone(), id);
                                bc::Rhs::Regex(id)
                            }
                            Err(_) => bc::Rhs::Regex(u32::MAX),
                        },
                    },
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
        let text = v.to_string();
        if let Some(id) = self.consts.get(&text) {
            return *id;
        }
        let id = self.program.consts.len() as bc::ConstId;
        self.program.consts.push(v.clone());
        self.consts.insert(text, id);
        id
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
    let bindings = ir::Cond::bindings(&s.conds, s.vars.len());
    // Followed only through variables bound once, each over a path from the object or from
    // an earlier variable: this walk ends after at most `vars.len()` steps.
    for _ in 0..=s.vars.len() {
        match path.root {
            ir::Root::Object => return path.first_key().map_or(TargetRoot::Unknown, TargetRoot::Key),
            ir::Root::Var(v) => match bindings.get(v).map(Vec::as_slice).unwrap_or_default() {
                [o] => path = o,
                // Bound in several places (`||`) or none: cannot tell.
                _ => return TargetRoot::Unknown,
            },
        }
    }
    TargetRoot::Unknown
}

#[cfg(test)]
mod tests {
    use crate::{compile, OptLevel};

    /// Through `||`, `$a` can be bound over a path from `$b` and `$b` over one from `$a`: the
    /// paths they stand for cannot be listed (following them recursed without end), so the
    /// whole object is decoded; the program still runs as written.
    #[test]
    fn variables_bound_over_each_other_decode_the_whole_object() {
        let c = compile(
            "remove(($a := x[*] | exists($a.k) && $b := $a.y[*] | exists($b.k)) || \
             ($b := z[*] | exists($b.k) && $a := $b.w[*] | exists($a.k)), $a.q);",
        )
        .expect("compiles");
        assert!(c.program.shape.full);
    }

    /// A chain of variables as long as the statement, each bound over the one before: listed
    /// in one pass, the shape as deep as the trace readers read and whole below that.
    #[test]
    fn a_long_chain_of_variables_is_followed_without_recursion() {
        let n = 2000;
        let binds: Vec<String> = (1..n).map(|i| format!("$v{i} := $v{}.b[*] | exists($v{i}.x)", i - 1)).collect();
        let src = format!("remove($v0 := a[*] | exists($v0.x) && {}, $v{}.c);", binds.join(" && "), n - 1);
        let c = crate::compile_with(&src, OptLevel::Full, &crate::Folder::current()).expect("compiles");
        let described = c.program.shape.describe();
        let deepest = described.iter().map(|d| d.matches("[]").count()).max();
        assert_eq!(deepest, Some(skel_grammar::MAX_DEPTH / 2), "{described:?}");
    }

    /// Thousands of kinds and of unguarded statements: no dispatch table of millions of
    /// entries; every statement runs for every object instead.
    #[test]
    fn a_dispatch_table_stays_small() {
        let kinds: String = (0..1100).map(|i| format!("delete(kind == \"K{i}\");\nremove(f{i});\n")).collect();
        assert!(compile(&kinds).expect("compiles").program.dispatch.is_none());
        let few: String = (0..3).map(|i| format!("delete(kind == \"K{i}\");\nremove(f{i});\n")).collect();
        let table = compile(&few).expect("compiles").program.dispatch.expect("a table");
        assert_eq!(table.by_kind.get("K1").map(|l| l.to_vec()), Some(vec![1, 2, 3, 5]));
        assert_eq!(table.other.to_vec(), vec![1, 3, 5]);
    }
}
