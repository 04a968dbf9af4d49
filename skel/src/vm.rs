//! The VM: runs a verified program over one manifest, in place. Paths are walked over interned
//! keys; variable bindings are concrete locations kept in a reusable arena, never strings.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use std::borrow::Cow;

use serde_json::Value;

use crate::bytecode::{Build, CmpOp, Instr, PathId, PathRoot, Pred, Program, Rhs, Seg, TimeOperand};
use crate::kube::typed;
use crate::node::{field_index, field_mut, order, Node};
use skel_grammar::ast::array_index;

/// One step of a concrete location: the place of an object's entry or of an array's element.
/// A location is good until the object changes: the statement that computed it uses it before
/// then (and removes the highest places first, so a removal never moves another place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Entry(u32),
    Index(u32),
}

/// A location in the step arena.
type Loc = (u32, u32);

/// The places of shared prefixes in the current object, by prefix: not looked for yet
/// (`None`), missing (`Some(None)`), or a range of `steps`.
#[derive(Default)]
struct PrefixCache {
    at: Vec<Option<Option<Loc>>>,
    steps: Vec<Step>,
}

impl PrefixCache {
    fn forget(&mut self, prefixes: usize) {
        self.at.clear();
        self.at.resize(prefixes, None);
        self.steps.clear();
    }
}

impl VmErrorKind {
    /// Fills in the path of an error raised where only the value was known.
    fn with_path(mut self, name: String) -> VmErrorKind {
        match &mut self {
            VmErrorKind::Unresolved { path }
            | VmErrorKind::NotSingleValue { path, .. }
            | VmErrorKind::IndexOutOfRange { path, .. }
            | VmErrorKind::NotAnObject { path, .. }
            | VmErrorKind::TooDeep { path, .. } => *path = name,
            VmErrorKind::InvalidTypedField(_) | VmErrorKind::TimePastEnd { .. } => {}
        }
        self
    }
}

/// What went wrong while running a statement on an object: its message, code and help, side
/// by side ([`crate::transform::RunError`] says where).
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum VmErrorKind {
    /// A plain path on the right of `==`/`=` reached nothing (SimKube: "resolve failed").
    #[error("`{path}` does not resolve")]
    #[diagnostic(
        code(skel::run::unresolved_path),
        help(
            "a path on the right of `==` or `=` must exist on every matching object; add `exists(PATH)` to the \
             selector, or bind it with `$x := PATH | exists($x)`"
        )
    )]
    Unresolved { path: String },
    /// The value of `modify` is not exactly one value.
    #[error("`{path}` reaches {count} values; `modify` needs exactly one")]
    #[diagnostic(
        code(skel::run::not_single_value),
        help("narrow the selector so the value path reaches one value, or use an index (`[0]`)")
    )]
    NotSingleValue { path: String, count: usize },
    #[error("index {index} is past the end of an array of {len} in `{path}`")]
    #[diagnostic(
        code(skel::run::index_out_of_range),
        help("`modify` can replace an element or append one at index = length")
    )]
    IndexOutOfRange { path: String, index: u32, len: usize },
    /// A step of the target meets a value of the wrong type (`wanted` is what the step needs).
    #[error("cannot set `{path}`: a step of it needs {wanted} but finds {found}")]
    #[diagnostic(
        code(skel::run::not_an_object),
        help("fields live in objects and indices in arrays; remove or replace the value in the way first")
    )]
    NotAnObject { wanted: &'static str, path: String, found: &'static str },
    /// A typed field (metadata, apiVersion, kind) has a value Kubernetes cannot hold.
    #[error("`{}` must be {}, found `{}`", .0.field, .0.expected, .0.found)]
    #[diagnostic(
        code(skel::run::invalid_field_type),
        help("Kubernetes types these fields strictly (labels and annotations are strings); quote the value")
    )]
    InvalidTypedField(typed::TypedFieldError),
    /// A `modify`, `move` or `copy` would nest the object deeper than a trace can hold
    /// (`skel_trace::OBJECT_MAX_DEPTH` levels).
    #[error("setting `{path}` would nest the object more than {limit} levels deep")]
    #[diagnostic(
        code(skel::run::too_deep),
        help(
            "a trace holds objects at most that deep (its readers refuse deeper ones); a `move` into its own \
             value nests it one level more each time it runs"
        )
    )]
    TooDeep { path: String, limit: usize },
    /// A time `secs` after the trace's start (`start`) is past the largest `ts` (`i64::MAX`).
    #[error(
        "the trace starts at ts {start}: {secs}s after that is past the largest time a trace can hold, ts {}",
        i64::MAX
    )]
    #[diagnostic(
        code(skel::run::time_overflow),
        help(
            "durations count from the first event's `ts` (unix seconds, about 1700000000 in 2023); check it, or \
             give the time in unix seconds"
        )
    )]
    TimePastEnd { secs: i64, start: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct VmError {
    /// The statement that failed (index into `Program::stmts`).
    pub stmt: usize,
    pub kind: VmErrorKind,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectOutcome {
    /// Some statement's selector held.
    pub matched: bool,
    /// The object was changed by `modify` or `remove`.
    pub modified: bool,
    pub deleted: bool,
    pub fields_removed: u64,
    pub fields_set: u64,
}

/// Reusable VM state; one per thread.
pub struct Vm<'p> {
    prog: &'p Program,
    /// The program's constants, as nodes.
    consts: Vec<Node<'static>>,
    start_ts: i64,
    steps: Vec<Step>,
    slots: Vec<Vec<Loc>>,
    scratch_steps: Vec<Step>,
    scratch_locs: Vec<Loc>,
    scratch_bound: Vec<Loc>,
    /// Where the program's shared prefixes are in the current object.
    prefixes: std::cell::RefCell<PrefixCache>,
    /// A location buffer for `reach` to reuse (taken while in use: a nested walk gets its own).
    scratch_loc: std::cell::Cell<Vec<Step>>,
    /// The statement running, for messages.
    current: usize,
}

impl<'p> Vm<'p> {
    /// `start_ts` is the first event's `ts`, against which relative times are resolved.
    pub fn new(prog: &'p Program, start_ts: i64) -> Vm<'p> {
        Vm {
            prog,
            consts: prog.consts.iter().map(Node::from_value).collect(),
            start_ts,
            steps: Vec::new(),
            slots: vec![Vec::new(); prog.max_slots()],
            scratch_steps: Vec::new(),
            scratch_locs: Vec::new(),
            scratch_bound: Vec::new(),
            scratch_loc: std::cell::Cell::new(Vec::new()),
            prefixes: std::cell::RefCell::new(PrefixCache::default()),
            current: 0,
        }
    }

    /// Runs the program over `obj` (an object of an event at time `ts`): every statement that
    /// can match it, in script order.
    pub fn run(&mut self, obj: &mut Node<'_>, ts: i64) -> Result<ObjectOutcome, VmError> {
        let prog = self.prog;
        match &prog.dispatch {
            Some(d) => {
                let list = d.statements_for(obj.get("kind").and_then(Node::as_str));
                self.run_statements(list.iter().map(|i| *i as usize), obj, ts)
            }
            None => self.run_statements(0..prog.stmts.len(), obj, ts),
        }
    }

    /// `run` over a `serde_json::Value`.
    pub fn run_value(&mut self, obj: &mut Value, ts: i64) -> Result<ObjectOutcome, VmError> {
        let mut node = Node::from_value(obj);
        let out = self.run(&mut node, ts);
        *obj = node.to_value(skel_trace::Format::Json);
        out
    }

    /// Whether any statement can match an object of this kind (if not, the object passes
    /// through unchanged and need not be looked at).
    pub fn may_match(&self, kind: Option<&str>) -> bool {
        match &self.prog.dispatch {
            Some(d) => !d.statements_for(kind).is_empty(),
            None => !self.prog.stmts.is_empty(),
        }
    }

    fn run_statements(
        &mut self,
        list: impl Iterator<Item = usize>,
        obj: &mut Node<'_>,
        ts: i64,
    ) -> Result<ObjectOutcome, VmError> {
        let mut out = ObjectOutcome::default();
        self.prefixes.get_mut().forget(self.prog.prefixes.len());
        for si in list {
            let Some(info) = self.prog.stmts.get(si) else { break };
            let touches = info.touches_typed_fields;
            self.current = si;
            let before = (out.fields_removed, out.fields_set);
            let acted =
                self.statement(info.entry as usize, obj, ts, &mut out).map_err(|kind| VmError { stmt: si, kind })?;
            if (out.fields_removed, out.fields_set) != before || (acted && touches) {
                // The object changed: places found before may have moved.
                self.prefixes.get_mut().forget(self.prog.prefixes.len());
            }
            if acted {
                out.matched = true;
                if touches {
                    // SimKube's typed round trip would reject the object from here on: say so
                    // at the statement that did it.
                    typed::validate(obj).map_err(|e| VmError { stmt: si, kind: VmErrorKind::InvalidTypedField(e) })?;
                }
                if out.deleted {
                    // A deleted object takes no part in later statements.
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Runs one statement; returns whether its selector held (and so its action ran).
    fn statement(
        &mut self,
        mut pc: usize,
        obj: &mut Node<'_>,
        ts: i64,
        out: &mut ObjectOutcome,
    ) -> Result<bool, VmErrorKind> {
        self.steps.clear();
        for s in &mut self.slots {
            s.clear();
        }
        let mut flag = true;
        let prog = self.prog;
        while let Some(ins) = prog.code.get(pc) {
            pc += 1;
            match *ins {
                Instr::Time { op, time } => {
                    let t = match time {
                        TimeOperand::Absolute(t) => t,
                        TimeOperand::Relative(secs) => {
                            let start = self.start_ts;
                            start.checked_add(secs).ok_or(VmErrorKind::TimePastEnd { secs, start })?
                        }
                    };
                    flag = op_holds(op, ts.cmp(&t));
                }
                Instr::Test(pred) => flag = self.pred(obj, &pred)?,
                Instr::Bind { slot, over, pred } => flag = self.bind(obj, slot as usize, over, &pred)?,
                Instr::JumpIfFalse(target) => {
                    if !flag {
                        pc = target as usize;
                    }
                }
                Instr::Jump(target) => pc = target as usize,
                Instr::Delete => {
                    out.deleted = true;
                    return Ok(true);
                }
                Instr::Remove(path) => {
                    let n = self.remove(obj, path);
                    out.fields_removed += n;
                    out.modified |= n > 0;
                    return Ok(true);
                }
                Instr::Modify { target, value } => {
                    let n = self.modify(obj, target, value)?;
                    out.fields_set += n;
                    out.modified |= n > 0;
                    return Ok(true);
                }
                Instr::Transfer { from, to, keep } => {
                    let (removed, set) = self.transfer(obj, from, to, keep)?;
                    out.fields_removed += removed;
                    out.fields_set += set;
                    out.modified |= set > 0;
                    return Ok(true);
                }
                Instr::Return => return Ok(false),
            }
        }
        Ok(false)
    }

    // ---------------------------------------------------------------- paths

    /// Calls `f` with every (location, value) that path `id` reaches in `obj`.
    fn reach<'v, 'a>(
        &self,
        obj: &'v Node<'a>,
        id: PathId,
        f: &mut dyn FnMut(&[Step], &'v Node<'a>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let Some(path) = self.prog.paths.get(id as usize) else { return ControlFlow::Continue(()) };
        let mut loc = self.scratch_loc.take();
        loc.clear();
        let flow = match path.root {
            PathRoot::Object => match path.prefix {
                Some(q) => match self.shared_prefix(obj, q.id, &mut loc).and_then(|()| resolve(obj, &loc)) {
                    Some(v) => {
                        walk(v, path.segs.get(usize::from(q.len)..).unwrap_or(&[]), &self.prog.keys, &mut loc, f)
                    }
                    None => ControlFlow::Continue(()),
                },
                None => walk(obj, &path.segs, &self.prog.keys, &mut loc, f),
            },
            PathRoot::Slot(s) => {
                let mut flow = ControlFlow::Continue(());
                for &(start, len) in self.slots.get(s as usize).map_or(&[][..], |v| v.as_slice()) {
                    let steps = self.steps.get(start as usize..(start + len) as usize).unwrap_or(&[]);
                    let Some(v) = resolve(obj, steps) else { continue };
                    loc.clear();
                    loc.extend_from_slice(steps);
                    flow = walk(v, &path.segs, &self.prog.keys, &mut loc, f);
                    if flow.is_break() {
                        break;
                    }
                }
                flow
            }
        };
        self.scratch_loc.set(loc);
        flow
    }

    /// Appends the place of shared prefix `id` in `obj` to `loc`, found once per object (and
    /// again after the object changes); `None` when the object does not have it.
    fn shared_prefix(&self, obj: &Node<'_>, id: u16, loc: &mut Vec<Step>) -> Option<()> {
        let mut cache = self.prefixes.borrow_mut();
        let id = usize::from(id);
        let found = match cache.at.get(id).copied().flatten() {
            Some(found) => found,
            None => {
                let segs = self.prog.prefixes.get(id)?;
                let start = cache.steps.len();
                let mut cur = obj;
                let mut found = true;
                for seg in segs.iter() {
                    let key = match seg {
                        Seg::Key(k) => self.prog.keys.get(*k as usize)?,
                        _ => return None,
                    };
                    let Some((step, child)) = key_step(cur, key) else {
                        found = false;
                        break;
                    };
                    cache.steps.push(step);
                    cur = child;
                }
                let place = found.then_some((start as u32, (cache.steps.len() - start) as u32));
                if let Some(slot) = cache.at.get_mut(id) {
                    *slot = Some(place);
                }
                place
            }
        };
        let (start, len) = found?;
        loc.extend_from_slice(cache.steps.get(start as usize..(start + len) as usize)?);
        Some(())
    }

    fn reaches_any(&self, obj: &Node<'_>, id: PathId) -> bool {
        self.reach(obj, id, &mut |_, _| ControlFlow::Break(())).is_break()
    }

    fn values<'v, 'a>(&self, obj: &'v Node<'a>, id: PathId) -> Vec<&'v Node<'a>> {
        let mut out = Vec::new();
        let _ = self.reach(obj, id, &mut |_, v| {
            out.push(v);
            ControlFlow::Continue(())
        });
        out
    }

    fn path_name(&self, id: PathId) -> String {
        self.prog.source_path(id, self.current)
    }

    fn is_object_rooted(&self, id: PathId) -> bool {
        self.prog.paths.get(id as usize).is_some_and(|p| p.root == PathRoot::Object)
    }

    // ---------------------------------------------------------------- tests

    fn pred(&self, obj: &Node<'_>, pred: &Pred) -> Result<bool, VmErrorKind> {
        Ok(match *pred {
            Pred::Exists(p) => self.reaches_any(obj, p),
            Pred::NotExists(p) => !self.reaches_any(obj, p),
            Pred::Cmp { lhs, op, rhs: Rhs::Build(b) } => {
                // A template is built once, and only when the left side reaches something.
                if !self.reaches_any(obj, lhs) {
                    return Ok(false);
                }
                let Some(built) = self.build(obj, b, true)? else { return Ok(false) };
                let cands: Vec<&Node<'_>> = match (op, &built) {
                    (CmpOp::In, Node::Arr(items)) => items.iter().collect(),
                    _ => vec![&built],
                };
                let mut hit = false;
                let _ = self.reach(obj, lhs, &mut |_, v| {
                    hit = compare(v, op, &cands);
                    if hit {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                });
                hit
            }
            Pred::Cmp { lhs, op, rhs: Rhs::Regex(r) } => {
                // Strings only: any other value takes no part, whichever way the test goes.
                let Some(re) = self.prog.regexes.get(r as usize) else { return Ok(false) };
                let want = op == CmpOp::Match;
                self.reach(obj, lhs, &mut |_, v| match v {
                    Node::Str(s) if re.is_match(s) == want => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                })
                .is_break()
            }
            Pred::Cmp { lhs, op, rhs } => {
                let mut cands: Option<Vec<&Node<'_>>> = None;
                let mut result = Ok(false);
                let _ = self.reach(obj, lhs, &mut |_, v| {
                    if cands.is_none() {
                        match self.candidates(obj, rhs, op == CmpOp::In) {
                            Ok(c) => cands = Some(c),
                            Err(e) => {
                                result = Err(e);
                                return ControlFlow::Break(());
                            }
                        }
                    }
                    let c = cands.as_deref().unwrap_or(&[]);
                    if compare(v, op, c) {
                        result = Ok(true);
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                });
                result?
            }
        })
    }

    /// The right side's candidate values. A plain path that reaches nothing is an error, as in
    /// SimKube; a variable path that reaches nothing just has no candidates.
    fn candidates<'v, 'a>(
        &'v self,
        obj: &'v Node<'a>,
        rhs: Rhs,
        in_array: bool,
    ) -> Result<Vec<&'v Node<'a>>, VmErrorKind> {
        match rhs {
            // `in`: the array's items are the candidates.
            Rhs::Const(c) if in_array => Ok(match self.consts.get(c as usize) {
                Some(Node::Arr(items)) => items.iter().collect(),
                _ => Vec::new(),
            }),
            Rhs::Const(c) => Ok(self.consts.get(c as usize).into_iter().collect()),
            Rhs::Path(p) => {
                let vals = self.values(obj, p);
                if vals.is_empty() && self.is_object_rooted(p) {
                    return Err(VmErrorKind::Unresolved { path: self.path_name(p) });
                }
                Ok(vals)
            }
            // Handled by `pred`, which builds the template or runs the pattern itself.
            Rhs::Build(_) | Rhs::Regex(_) => Ok(Vec::new()),
        }
    }

    /// Builds template `id`: each path in it must reach one value. In a comparison
    /// (`lenient`), a variable path that reaches nothing makes the test false (`None`), as it
    /// leaves a path operand with no candidates.
    fn build<'a>(&self, obj: &Node<'a>, id: u32, lenient: bool) -> Result<Option<Node<'a>>, VmErrorKind> {
        let Some(b) = self.prog.builds.get(id as usize) else { return Ok(None) };
        self.build_part(obj, b, lenient)
    }

    fn build_part<'a>(&self, obj: &Node<'a>, b: &Build, lenient: bool) -> Result<Option<Node<'a>>, VmErrorKind> {
        Ok(Some(match b {
            Build::Const(c) => self.consts.get(*c as usize).cloned().unwrap_or(Node::Null),
            Build::Path(p) => {
                if lenient && !self.is_object_rooted(*p) && !self.reaches_any(obj, *p) {
                    return Ok(None);
                }
                self.single_value(obj, Rhs::Path(*p))?
            }
            Build::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let Some(v) = self.build_part(obj, item, lenient)? else { return Ok(None) };
                    out.push(v);
                }
                Node::Arr(out)
            }
            Build::Object(members) => {
                let mut out = Vec::with_capacity(members.len());
                for (k, v) in members {
                    let Some(v) = self.build_part(obj, v, lenient)? else { return Ok(None) };
                    out.push((Cow::Owned(k.to_string()), v));
                }
                Node::Obj(out)
            }
        }))
    }

    fn bind(&mut self, obj: &Node<'_>, slot: usize, over: PathId, pred: &Pred) -> Result<bool, VmErrorKind> {
        // Gather the candidate locations first: `over` may read other slots' locations.
        let mut cand_steps = std::mem::take(&mut self.scratch_steps);
        let mut cand_locs = std::mem::take(&mut self.scratch_locs);
        cand_steps.clear();
        cand_locs.clear();
        let _ = self.reach(obj, over, &mut |loc, _| {
            cand_locs.push((cand_steps.len() as u32, loc.len() as u32));
            cand_steps.extend_from_slice(loc);
            ControlFlow::Continue(())
        });
        let base = self.steps.len() as u32;
        self.steps.extend_from_slice(&cand_steps);
        let mut bound = std::mem::take(&mut self.scratch_bound);
        bound.clear();
        let mut any_has_path = false;
        for &(start, len) in &cand_locs {
            let loc = (base + start, len);
            if let Some(s) = self.slots.get_mut(slot) {
                s.clear();
                s.push(loc);
            }
            match *pred {
                Pred::NotExists(p) => {
                    if self.reaches_any(obj, p) {
                        any_has_path = true;
                        break;
                    }
                }
                _ => {
                    if self.pred(obj, pred)? {
                        bound.push(loc);
                    }
                }
            }
        }
        self.scratch_steps = cand_steps;
        self.scratch_locs = cand_locs;
        let holds = match pred {
            Pred::NotExists(_) => {
                bound.clear();
                !any_has_path
            }
            _ => !bound.is_empty(),
        };
        // The slot's old list is the next binding's buffer.
        if let Some(s) = self.slots.get_mut(slot) {
            std::mem::swap(s, &mut bound);
        }
        self.scratch_bound = bound;
        Ok(holds)
    }

    // ---------------------------------------------------------------- actions

    /// Removes every location the path reaches, as if simultaneously; returns how many.
    fn remove(&mut self, obj: &mut Node<'_>, path: PathId) -> u64 {
        // The bindings' scratch buffers are free once the selector has run.
        let mut steps = std::mem::take(&mut self.scratch_steps);
        let mut locs = std::mem::take(&mut self.scratch_locs);
        steps.clear();
        locs.clear();
        let _ = self.reach(obj, path, &mut |loc, _| {
            locs.push((steps.len() as u32, loc.len() as u32));
            steps.extend_from_slice(loc);
            ControlFlow::Continue(())
        });
        let get = |l: &Loc| steps.get(l.0 as usize..(l.0 + l.1) as usize).unwrap_or(&[]);
        // Deepest and highest-index first: removing one never moves another still to remove.
        locs.sort_by(|a, b| get(b).cmp(get(a)));
        locs.dedup_by(|a, b| get(a) == get(b));
        let mut removed = 0;
        for l in &locs {
            if remove_at(obj, get(l)) {
                removed += 1;
            }
        }
        self.scratch_steps = steps;
        self.scratch_locs = locs;
        removed
    }

    /// Sets the target(s) to the value; returns how many were set. A target with `[*]` or
    /// `.*` sets every element or key that exists there (nothing is created through them).
    fn modify<'a>(&mut self, obj: &mut Node<'a>, target: PathId, value: Rhs) -> Result<u64, VmErrorKind> {
        let prog = self.prog;
        let Some(path) = prog.paths.get(target as usize) else { return Ok(0) };
        // A template in `$x.f = {...}` is built once for each location `$x` is bound to, its
        // `$x` paths seeing that location only.
        // Every value is built before any is set, so none sees another's write.
        if let (Rhs::Build(b), PathRoot::Slot(s)) = (value, path.root) {
            let bound = self.slots.get(s as usize).cloned().unwrap_or_default();
            let mut values = Vec::with_capacity(bound.len());
            for &loc in &bound {
                if let Some(slot) = self.slots.get_mut(s as usize) {
                    *slot = vec![loc];
                }
                values.push(self.build(obj, b, false));
            }
            let mut n = 0;
            for (loc, value) in bound.into_iter().zip(values) {
                if let Some(slot) = self.slots.get_mut(s as usize) {
                    *slot = vec![loc];
                }
                n += self.modify_with(obj, target, value?.unwrap_or(Node::Null))?;
            }
            return Ok(n);
        }
        let value = match value {
            Rhs::Build(b) => self.build(obj, b, false)?.unwrap_or(Node::Null),
            other => self.single_value(obj, other)?,
        };
        self.modify_with(obj, target, value)
    }

    fn modify_with<'a>(&mut self, obj: &mut Node<'a>, target: PathId, value: Node<'a>) -> Result<u64, VmErrorKind> {
        let prog = self.prog;
        let Some(path) = prog.paths.get(target as usize) else { return Ok(0) };
        // The targets' prefixes: the object itself, or each location the variable is bound to
        // (slices of the step arena, which setting values does not touch).
        let whole: [Loc; 1] = [(0, 0)];
        let roots: &[Loc] = match path.root {
            PathRoot::Object => &whole,
            PathRoot::Slot(s) => self.slots.get(s as usize).map_or(&[], |l| l.as_slice()),
        };
        let wild = path.segs.iter().rposition(|s| matches!(s, Seg::AnyIndex | Seg::AnyKey));
        let (spread, rest) = path.segs.split_at(wild.map_or(0, |w| w + 1));
        // Every place the segments up to the last wildcard reach from each root.
        let mut steps: Vec<Step> = Vec::new();
        let mut places: Vec<Loc> = Vec::new();
        for &(start, len) in roots {
            let prefix = self.steps.get(start as usize..(start + len) as usize).unwrap_or(&[]);
            if spread.is_empty() {
                places.push((steps.len() as u32, prefix.len() as u32));
                steps.extend_from_slice(prefix);
                continue;
            }
            let Some(root) = resolve(obj, prefix) else { continue };
            let mut loc = prefix.to_vec();
            let _ = walk(root, spread, &prog.keys, &mut loc, &mut |l, _| {
                places.push((steps.len() as u32, l.len() as u32));
                steps.extend_from_slice(l);
                ControlFlow::Continue(())
            });
        }
        for &(start, len) in &places {
            let at = steps.get(start as usize..(start + len) as usize).unwrap_or(&[]);
            set_at(obj, at, rest, value.clone(), prog).map_err(|e| e.with_path(self.path_name(target)))?;
        }
        Ok(places.len() as u64)
    }

    /// Moves (or copies, with `keep`) the value at `from` to `to`, for each location of their
    /// common root; a root where `from` reaches nothing is left alone. Returns how many fields
    /// were removed and set.
    fn transfer(
        &mut self,
        obj: &mut Node<'_>,
        from: PathId,
        to: PathId,
        keep: bool,
    ) -> Result<(u64, u64), VmErrorKind> {
        let prog = self.prog;
        let (Some(from_path), Some(to_path)) = (prog.paths.get(from as usize), prog.paths.get(to as usize)) else {
            return Ok((0, 0));
        };
        let whole: [Loc; 1] = [(0, 0)];
        let bound: Vec<Vec<Step>> = match from_path.root {
            PathRoot::Object => whole.to_vec(),
            PathRoot::Slot(s) => self.slots.get(s as usize).cloned().unwrap_or_default(),
        }
        .into_iter()
        .map(|(start, len)| self.steps.get(start as usize..(start + len) as usize).unwrap_or(&[]).to_vec())
        .collect();
        // The paths share their steps up to the last wildcard (the checker sees to it): each
        // place those reach is a root of its own.
        let wild = |segs: &[Seg]| segs.iter().rposition(|s| matches!(s, Seg::AnyIndex | Seg::AnyKey));
        let spread = wild(&from_path.segs).max(wild(&to_path.segs)).map_or(0, |w| w + 1);
        let (shared, from_rest) = from_path.segs.split_at(spread.min(from_path.segs.len()));
        let to_rest = to_path.segs.get(spread..).unwrap_or(&[]);
        let mut roots: Vec<Vec<Step>> = Vec::new();
        for b in bound {
            let Some(root) = resolve(obj, &b) else { continue };
            let mut loc = b.clone();
            let _ = walk(root, shared, &prog.keys, &mut loc, &mut |l, _| {
                roots.push(l.to_vec());
                ControlFlow::Continue(())
            });
        }
        let (mut removed, mut set) = (0, 0);
        for root_steps in roots {
            let Some(root) = resolve(obj, &root_steps) else { continue };
            let mut loc = root_steps.clone();
            let mut found = None;
            let _ = walk(root, from_rest, &prog.keys, &mut loc, &mut |l, v| {
                found = Some((l.to_vec(), v.clone()));
                ControlFlow::Break(())
            });
            let Some((from_loc, value)) = found else { continue };
            if !keep && remove_at(obj, &from_loc) {
                removed += 1;
            }
            set_at(obj, &root_steps, to_rest, value, prog).map_err(|e| e.with_path(self.path_name(to)))?;
            set += 1;
        }
        Ok((removed, set))
    }

    fn single_value<'a>(&self, obj: &Node<'a>, rhs: Rhs) -> Result<Node<'a>, VmErrorKind> {
        match rhs {
            Rhs::Const(c) => Ok(self.consts.get(c as usize).cloned().unwrap_or(Node::Null)),
            Rhs::Build(b) => Ok(self.build(obj, b, false)?.unwrap_or(Node::Null)),
            Rhs::Regex(_) => Ok(Node::Null),
            Rhs::Path(p) => {
                let vals = self.values(obj, p);
                match vals.as_slice() {
                    [v] => Ok((*v).clone()),
                    [] if self.is_object_rooted(p) => Err(VmErrorKind::Unresolved { path: self.path_name(p) }),
                    _ => Err(VmErrorKind::NotSingleValue { path: self.path_name(p), count: vals.len() }),
                }
            }
        }
    }
}

// -------------------------------------------------------------------- free helpers

fn walk<'v, 'a>(
    v: &'v Node<'a>,
    segs: &[Seg],
    keys: &[Box<str>],
    loc: &mut Vec<Step>,
    f: &mut dyn FnMut(&[Step], &'v Node<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Some((first, rest)) = segs.split_first() else { return f(loc, v) };
    let (step, child) = match (first, v) {
        (Seg::Key(k), _) => match keys.get(*k as usize).and_then(|key| key_step(v, key)) {
            Some(found) => found,
            None => return ControlFlow::Continue(()),
        },
        (Seg::Index(i), Node::Arr(a)) => match a.get(*i as usize) {
            Some(c) => (Step::Index(*i), c),
            None => return ControlFlow::Continue(()),
        },
        (Seg::AnyIndex, Node::Arr(a)) => {
            for (i, child) in a.iter().enumerate() {
                loc.push(Step::Index(i as u32));
                let r = walk(child, rest, keys, loc, f);
                loc.pop();
                r?;
            }
            return ControlFlow::Continue(());
        }
        (Seg::AnyKey, Node::Obj(m)) => {
            for (i, (_, child)) in m.iter().enumerate() {
                if matches!(child, Node::Run(..)) {
                    continue;
                }
                loc.push(Step::Entry(i as u32));
                let r = walk(child, rest, keys, loc, f);
                loc.pop();
                r?;
            }
            return ControlFlow::Continue(());
        }
        _ => return ControlFlow::Continue(()),
    };
    loc.push(step);
    let r = walk(child, rest, keys, loc, f);
    loc.pop();
    r
}

/// Where key `key` leads from `v`: an object's field, or, for a key of digits, an array's
/// element (as a JSON Pointer's step does).
fn key_step<'v, 'a>(v: &'v Node<'a>, key: &str) -> Option<(Step, &'v Node<'a>)> {
    match v {
        Node::Obj(m) => {
            let i = field_index(m, key)?;
            Some((Step::Entry(i as u32), &m.get(i)?.1))
        }
        Node::Arr(a) => {
            let i = array_index(key)?;
            Some((Step::Index(u32::try_from(i).ok()?), a.get(i)?))
        }
        _ => None,
    }
}

fn resolve<'v, 'a>(v: &'v Node<'a>, steps: &[Step]) -> Option<&'v Node<'a>> {
    steps.iter().try_fold(v, |cur, step| match (step, cur) {
        (Step::Entry(i), Node::Obj(m)) => m.get(*i as usize).map(|(_, v)| v),
        (Step::Index(i), Node::Arr(a)) => a.get(*i as usize),
        _ => None,
    })
}

fn resolve_mut<'v, 'a>(v: &'v mut Node<'a>, steps: &[Step]) -> Option<&'v mut Node<'a>> {
    steps.iter().try_fold(v, |cur, step| match (step, cur) {
        (Step::Entry(i), Node::Obj(m)) => m.get_mut(*i as usize).map(|(_, v)| v),
        (Step::Index(i), Node::Arr(a)) => a.get_mut(*i as usize),
        _ => None,
    })
}

/// Removes the value at `loc`; returns whether something was removed.
fn remove_at(obj: &mut Node<'_>, loc: &[Step]) -> bool {
    let Some((last, parent)) = loc.split_last() else { return false };
    match (last, resolve_mut(obj, parent)) {
        (Step::Entry(i), Some(Node::Obj(m))) if (*i as usize) < m.len() => {
            m.remove(*i as usize);
            true
        }
        (Step::Index(i), Some(Node::Arr(a))) if (*i as usize) < a.len() => {
            a.remove(*i as usize);
            true
        }
        _ => false,
    }
}

/// Sets `prefix` + `segs` to `value`: replaces what is there, adds what is not, and creates
/// missing parent objects on the way (as SimKube does). An array index may be at most the
/// array's length (appending); further is an error.
fn set_at<'a>(
    obj: &mut Node<'a>,
    prefix: &[Step],
    segs: &[Seg],
    value: Node<'a>,
    prog: &Program,
) -> Result<(), VmErrorKind> {
    // The object's levels stay within what a trace can hold, so what is written can be read
    // again (and no later step recurses without bound).
    if prefix.len() + segs.len() + levels(&value, skel_trace::OBJECT_MAX_DEPTH) > skel_trace::OBJECT_MAX_DEPTH {
        return Err(VmErrorKind::TooDeep { path: String::new(), limit: skel_trace::OBJECT_MAX_DEPTH });
    }
    let Some(mut cur) = resolve_mut(obj, prefix) else { return Ok(()) };
    let Some((last, init)) = segs.split_last() else {
        *cur = value;
        return Ok(());
    };
    for (n, seg) in init.iter().enumerate() {
        // A missing step is created as what the next step needs: an array before an index.
        let next_is_index = matches!(segs.get(n + 1), Some(Seg::Index(_) | Seg::AnyIndex));
        let fresh = || if next_is_index { Node::Arr(Vec::new()) } else { Node::Obj(Vec::new()) };
        cur = match (seg, cur) {
            (Seg::Key(k), Node::Obj(m)) => {
                let key = prog.keys.get(*k as usize).map_or("", |k| k);
                let i = match field_index(m, key) {
                    Some(i) => i,
                    None => {
                        m.push((Cow::Owned(key.to_string()), fresh()));
                        m.len() - 1
                    }
                };
                match m.get_mut(i) {
                    Some((_, v)) => v,
                    None => return Ok(()),
                }
            }
            (Seg::Index(i), Node::Arr(a)) => element_mut(a, *i as usize, fresh)?,
            (Seg::Key(k), Node::Arr(a)) => match prog.keys.get(*k as usize).and_then(|k| array_index(k)) {
                Some(i) => element_mut(a, i, fresh)?,
                None => return Err(wrong_step(seg, &Node::Arr(Vec::new()))),
            },
            (seg, other) => return Err(wrong_step(seg, other)),
        };
    }
    match (last, cur) {
        (Seg::Key(k), Node::Obj(m)) => {
            let key = prog.keys.get(*k as usize).map_or("", |k| k);
            match field_mut(m, key) {
                Some(slot) => *slot = value,
                None => m.push((Cow::Owned(key.to_string()), value)),
            }
        }
        (Seg::Index(i), Node::Arr(a)) => set_element(a, *i as usize, value)?,
        (Seg::Key(k), Node::Arr(a)) => match prog.keys.get(*k as usize).and_then(|k| array_index(k)) {
            Some(i) => set_element(a, i, value)?,
            None => return Err(wrong_step(last, &Node::Arr(Vec::new()))),
        },
        (seg, other) => return Err(wrong_step(seg, other)),
    }
    Ok(())
}

/// Element `i` of an array on the way to a `modify` target: appended (as `fresh()`) when `i`
/// is the length; further is an error.
fn element_mut<'n, 'a>(
    a: &'n mut Vec<Node<'a>>,
    i: usize,
    fresh: impl FnOnce() -> Node<'a>,
) -> Result<&'n mut Node<'a>, VmErrorKind> {
    let len = a.len();
    if i == len {
        a.push(fresh());
    }
    a.get_mut(i).ok_or(VmErrorKind::IndexOutOfRange { path: String::new(), index: index_u32(i), len })
}

/// Sets element `i` of an array (a `modify` target): replaced, or appended when `i` is the
/// length; further is an error.
fn set_element<'a>(a: &mut Vec<Node<'a>>, i: usize, value: Node<'a>) -> Result<(), VmErrorKind> {
    match i.cmp(&a.len()) {
        Ordering::Less => {
            if let Some(slot) = a.get_mut(i) {
                *slot = value;
            }
        }
        Ordering::Equal => a.push(value),
        Ordering::Greater => {
            return Err(VmErrorKind::IndexOutOfRange { path: String::new(), index: index_u32(i), len: a.len() })
        }
    }
    Ok(())
}

fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// How many levels of brackets a value has (0 for a scalar), counted up to just past `limit`
/// without recursion. A part still encoded (`Raw`) counts as one level: the program decodes
/// whole the values it moves, copies or builds from.
pub(crate) fn levels(value: &Node<'_>, limit: usize) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((node, depth)) = stack.pop() {
        match node {
            Node::Arr(a) => stack.extend(a.iter().map(|c| (c, depth + 1))),
            Node::Obj(m) => stack.extend(m.iter().map(|(_, c)| (c, depth + 1))),
            Node::Raw(_) | Node::Run(..) => {}
            _ => continue,
        }
        deepest = deepest.max(depth);
        if deepest > limit {
            break;
        }
    }
    deepest
}

/// A step of a `modify` target that the value there cannot take.
fn wrong_step(seg: &Seg, found: &Node<'_>) -> VmErrorKind {
    let wanted = match seg {
        Seg::Key(_) | Seg::AnyKey => "an object",
        Seg::Index(_) | Seg::AnyIndex => "an array",
    };
    VmErrorKind::NotAnObject { path: String::new(), wanted, found: found.type_name() }
}

fn op_holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        CmpOp::In | CmpOp::Match | CmpOp::NotMatch => false,
    }
}

/// Whether `lhs OP` holds against the candidates: `==` some candidate equals it; `!=` none
/// does; the orderings, some candidate is ordered with it that way.
fn compare(lhs: &Node<'_>, op: CmpOp, cands: &[&Node<'_>]) -> bool {
    match op {
        CmpOp::Eq | CmpOp::In => cands.contains(&lhs),
        // Patterns are matched by `pred`.
        CmpOp::Match | CmpOp::NotMatch => false,
        CmpOp::Ne => cands.iter().all(|c| *c != lhs),
        _ => cands.iter().any(|c| order(lhs, c).is_some_and(|o| op_holds(op, o))),
    }
}
