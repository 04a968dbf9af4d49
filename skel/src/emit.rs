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
    for s in &script.statements {
        e.statement(s);
    }
    e.program
}

#[derive(Default)]
struct Emitter {
    program: Program,
    keys: HashMap<String, bc::KeyId>,
    paths: HashMap<PathCode, bc::PathId>,
}

impl Emitter {
    fn statement(&mut self, s: &ir::Stmt) {
        let entry = self.program.code.len() as bc::Pc;
        let mut jumps = Vec::new();
        for c in &s.conds {
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
            };
            self.program.code.push(ins);
            jumps.push(self.program.code.len());
            self.program.code.push(Instr::JumpIfFalse(0));
        }
        let action = match &s.action {
            ir::Action::Delete => Instr::Delete,
            ir::Action::Remove(p) => Instr::Remove(self.path(p)),
            ir::Action::Modify { target, value } => {
                Instr::Modify { target: self.path(target), value: self.operand(value) }
            }
        };
        self.program.code.push(action);
        let ret = self.program.code.len() as bc::Pc;
        self.program.code.push(Instr::Return);
        for j in jumps {
            if let Some(slot) = self.program.code.get_mut(j) {
                *slot = Instr::JumpIfFalse(ret);
            }
        }
        self.program.stmts.push(StmtInfo {
            command: s.command,
            span: s.span,
            entry,
            slots: s.vars.len() as u16,
            touches_typed_fields: touches_typed_fields(s),
            var_names: s.vars.iter().map(|v| v.name.as_str().into()).collect(),
        });
    }

    fn pred(&mut self, p: &ir::Pred) -> bc::Pred {
        match p {
            ir::Pred::Exists(a) => bc::Pred::Exists(self.path(a)),
            ir::Pred::NotExists(a) => bc::Pred::NotExists(self.path(a)),
            ir::Pred::Compare { lhs, op, rhs } => {
                bc::Pred::Cmp { lhs: self.path(lhs), op: *op, rhs: self.operand(rhs) }
            }
        }
    }

    fn operand(&mut self, o: &ir::Operand) -> bc::Rhs {
        match o {
            ir::Operand::Const(v) => bc::Rhs::Const(self.constant(v)),
            ir::Operand::Path(p) => bc::Rhs::Path(self.path(p)),
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
            })
            .collect();
        let code = PathCode { root, segs };
        if let Some(id) = self.paths.get(&code) {
            return *id;
        }
        let id = self.program.paths.len() as bc::PathId;
        self.program.paths.push(code.clone());
        self.paths.insert(code, id);
        id
    }
}

/// Whether the statement's action can change a field SimKube types strictly. A target rooted
/// at a variable is followed back to the path the variable was bound over.
fn touches_typed_fields(s: &ir::Stmt) -> bool {
    let target = match &s.action {
        ir::Action::Delete => return false,
        ir::Action::Remove(p) => p,
        ir::Action::Modify { target, .. } => target,
    };
    let mut path = target;
    // Each variable is bound over a path rooted at the object or an earlier variable, so
    // this walk ends after at most `vars.len()` steps.
    for _ in 0..=s.vars.len() {
        match path.root {
            ir::Root::Object => return path.first_key().is_none_or(|k| TYPED_TOP_LEVEL.contains(&k)),
            ir::Root::Var(v) => {
                let over = s.conds.iter().find_map(|c| match c {
                    ir::Cond::Bind { var, over, .. } if *var == v => Some(over),
                    _ => None,
                });
                match over {
                    Some(o) => path = o,
                    None => return true,
                }
            }
        }
    }
    true
}
