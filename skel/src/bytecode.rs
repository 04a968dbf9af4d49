//! The bytecode: a flat instruction list per program over interned keys, a constant pool and a
//! path table; verified before it runs and printable by the disassembler (`--emit bytecode`).

use std::collections::HashMap;
use std::fmt::{self, Write};

use serde_json::Value;
pub use skel_grammar::ast::{CmpOp, CommandName, Span};

pub type KeyId = u32;
pub type ConstId = u32;
pub type PathId = u32;
pub type Slot = u16;
pub type BuildId = u32;
pub type RegexId = u32;
pub type Pc = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(KeyId),
    Index(u32),
    AnyIndex,
    /// Every key of an object (`.*`).
    AnyKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathRoot {
    Object,
    Slot(Slot),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathCode {
    pub root: PathRoot,
    pub segs: Box<[Seg]>,
    /// The path's first segments are a shared prefix (`Program::prefixes`), which the VM
    /// resolves once per object and reuses until the object changes.
    pub prefix: Option<Prefix>,
}

/// A path's shared prefix: prefix `id`, its first `len` segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub id: u16,
    pub len: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOperand {
    Absolute(i64),
    /// Seconds after the trace's first event; resolved when the run starts.
    Relative(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rhs {
    Const(ConstId),
    Path(PathId),
    /// An array or object literal with paths in it, built when the instruction runs.
    Build(BuildId),
    /// A regular expression (`=~`, `!~`), compiled with the program.
    Regex(RegexId),
}

/// Where inserts go around an event at `ts` that follows events up to the time `latest` (the
/// largest `ts` before it; `None`: no event before it, for the trace's first event, or unknown):
/// those after `latest` and before `ts` in new events just before it, those at `ts` into it.
/// An event no later than `latest` gets none: each insert goes in once, where the trace's time
/// first reaches it (into the first of several events at one time), even where times go back.
pub fn inserts_around<'a>(
    all: &'a [(i64, Vec<&'a Value>)],
    first: bool,
    latest: Option<i64>,
    ts: i64,
) -> (&'a [(i64, Vec<&'a Value>)], &'a [&'a Value]) {
    let after_latest = |t: i64| match latest {
        Some(p) => t > p,
        None => first,
    };
    let lo = all.partition_point(|(t, _)| !after_latest(*t));
    let hi = all.partition_point(|(t, _)| *t < ts).max(lo);
    let before = all.get(lo..hi).unwrap_or(&[]);
    let into = match all.get(hi) {
        Some((t, list)) if *t == ts => list.as_slice(),
        _ => &[],
    };
    (before, into)
}

/// The inserts after the trace's events (`latest`: their largest `ts`; `None`: there was none).
pub fn inserts_after(all: Vec<(i64, Vec<&Value>)>, latest: Option<i64>) -> Vec<(i64, Vec<&Value>)> {
    all.into_iter().filter(|(t, _)| latest.is_none_or(|l| *t > l)).collect()
}

/// The manifests `insert` adds, by time: each time once, in order, its manifests in script order.
pub type InsertsByTime<'a> = Vec<(i64, Vec<&'a Value>)>;

/// `insert`: manifests that go into the trace at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertCode {
    pub at: TimeOperand,
    pub manifests: Vec<Value>,
    /// The `insert` statement, for messages.
    pub span: Span,
}

/// A compiled regular expression; programs compare equal when their patterns do.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl std::ops::Deref for Pattern {
    type Target = regex::Regex;

    fn deref(&self) -> &regex::Regex {
        &self.0
    }
}

/// A template: constants and the single values of paths, put together as an array or object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Build {
    Const(ConstId),
    Path(PathId),
    Array(Vec<Build>),
    Object(Vec<(Box<str>, Build)>),
}

/// A field predicate: what a plain test checks, and what a binding checks per candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pred {
    Exists(PathId),
    NotExists(PathId),
    Cmp { lhs: PathId, op: CmpOp, rhs: Rhs },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instr {
    /// flag := event.ts OP time
    Time {
        op: CmpOp,
        time: TimeOperand,
    },
    /// flag := pred holds on the object
    Test(Pred),
    /// slot := the locations `over` reaches for which `pred` holds (with the slot standing for
    /// one candidate while `pred` runs); flag := the set is non-empty (for `NotExists`: no
    /// candidate has the path, and the slot is left empty).
    Bind {
        slot: Slot,
        over: PathId,
        pred: Pred,
    },
    /// if !flag goto target
    JumpIfFalse(Pc),
    /// goto target
    Jump(Pc),
    Delete,
    Remove(PathId),
    Modify {
        target: PathId,
        value: Rhs,
    },
    /// `move` / `copy` (`keep`) the value at `from` to `to` (both from the same root).
    Transfer {
        from: PathId,
        to: PathId,
        keep: bool,
    },
    /// End of a statement.
    Return,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StmtInfo {
    pub command: CommandName,
    pub span: Span,
    pub entry: Pc,
    /// Slots this statement uses (`0..slots`).
    pub slots: u16,
    /// The action can change `metadata`, `apiVersion` or `kind`, which SimKube types strictly;
    /// the VM validates them after such a statement ran.
    pub touches_typed_fields: bool,
    /// The statement's variable names by slot, for messages.
    pub var_names: Vec<Box<str>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub keys: Vec<Box<str>>,
    pub consts: Vec<Value>,
    pub paths: Vec<PathCode>,
    /// Templates (`Rhs::Build`).
    pub builds: Vec<Build>,
    /// Patterns (`Rhs::Regex`).
    pub regexes: Vec<Pattern>,
    /// Objects `insert` adds to the trace, by time, in script order.
    pub inserts: Vec<InsertCode>,
    /// Object-rooted key-only path prefixes that several paths share (see `opt::share_prefixes`).
    pub prefixes: Vec<Box<[Seg]>>,
    pub code: Vec<Instr>,
    pub stmts: Vec<StmtInfo>,
    /// Which statements run for an object, by its `kind` (absent: every statement).
    pub dispatch: Option<Dispatch>,
    /// Which parts of an object the program can see (see `Shape`): everything else is
    /// invisible to it, so it need not be decoded.
    pub shape: Shape,
    /// The statements that move a whole kind to another apiVersion (see `ir::ApiMove`), which
    /// a stream that follows apiVersions also applies to the trace's config and lifecycles.
    pub api_moves: Vec<crate::ir::ApiMove>,
}

/// The parts of an object the program's paths can reach, as a tree: the keys it walks into,
/// whether it walks into array elements, and where it needs whole values (to compare or copy
/// them). A part it only walks to (to test existence, remove or replace it) can stay encoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// The whole value is needed.
    pub full: bool,
    pub keys: Vec<(Box<str>, Shape)>,
    pub elems: Option<Box<Shape>>,
    /// Where each key is in `keys` (a script can walk into thousands of keys of one object);
    /// looked up once there are more than `SCAN_KEYS`.
    index: HashMap<Box<str>, usize>,
}

/// How many keys a `Shape` looks through in turn before it looks them up in its index.
const SCAN_KEYS: usize = 16;

impl Shape {
    pub fn key(&self, k: &str) -> Option<&Shape> {
        self.key_bytes(k.as_bytes())
    }

    /// `key`, for a key still in bytes.
    pub fn key_bytes(&self, k: &[u8]) -> Option<&Shape> {
        if self.keys.len() > SCAN_KEYS && self.index.len() == self.keys.len() {
            let i = std::str::from_utf8(k).ok().and_then(|k| self.index.get(k))?;
            return self.keys.get(*i).map(|(_, s)| s);
        }
        self.keys.iter().find(|(name, _)| crate::node::same_key(name.as_bytes(), k)).map(|(_, s)| s)
    }

    /// The child at key `k`, added if it is not there yet.
    fn child(&mut self, k: &str) -> Option<&mut Shape> {
        let found = match self.index.len() == self.keys.len() {
            true => self.index.get(k).copied(),
            false => self.keys.iter().position(|(name, _)| &**name == k),
        };
        let i = match found {
            Some(i) => i,
            None => {
                if self.index.len() == self.keys.len() {
                    self.index.insert(k.into(), self.keys.len());
                }
                self.keys.push((k.into(), Shape::default()));
                self.keys.len() - 1
            }
        };
        self.keys.get_mut(i).map(|(_, child)| child)
    }

    /// Adds a path: `segs` walked from here; `full` when its end's value is needed. A loop, not
    /// a recursion: a path's length is not bounded here.
    pub fn insert<'a>(&mut self, segs: impl Iterator<Item = PathStep<'a>>, full: bool) {
        let mut at = self;
        for step in segs {
            if at.full {
                return;
            }
            at = match step {
                PathStep::Key(k) => {
                    // A key of digits is also an index into an array (`containers.0`): such an
                    // array's elements are decoded whole.
                    if skel_grammar::ast::array_index(k).is_some() {
                        **at.elems.get_or_insert_with(Box::default) = Shape { full: true, ..Shape::default() };
                    }
                    match at.child(k) {
                        Some(child) => child,
                        None => return,
                    }
                }
                PathStep::Elem => at.elems.get_or_insert_with(Box::default),
            };
        }
        if full && !at.full {
            *at = Shape { full: true, ..Shape::default() };
        }
    }

    /// `kind`, `spec.template.spec.containers[].env[]`, `status!` (`!`: the whole value).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.describe_into(String::new(), &mut out);
        out
    }

    fn describe_into(&self, at: String, out: &mut Vec<String>) {
        if self.full {
            out.push(format!("{at}!"));
            return;
        }
        if self.keys.is_empty() && self.elems.is_none() && !at.is_empty() {
            out.push(at.clone());
        }
        for (k, child) in &self.keys {
            let mut key = String::new();
            let _ = skel_grammar::ast::write_key(&mut key, k);
            child.describe_into(if at.is_empty() { key } else { format!("{at}.{key}") }, out);
        }
        if let Some(e) = &self.elems {
            e.describe_into(format!("{at}[]"), out);
        }
    }
}

/// One step of a path, for building a `Shape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStep<'a> {
    Key(&'a str),
    Elem,
}

/// Statement lists by `kind`, each in script order: the statements guarded by that kind plus
/// the unguarded ones. Objects of any other kind (or none) run `other`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dispatch {
    pub by_kind: std::collections::HashMap<Box<str>, Box<[u32]>>,
    pub other: Box<[u32]>,
}

impl Dispatch {
    pub fn statements_for(&self, kind: Option<&str>) -> &[u32] {
        kind.and_then(|k| self.by_kind.get(k)).unwrap_or(&self.other)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bytecode at {pc}: {what}")]
pub struct VerifyError {
    pub pc: usize,
    pub what: String,
}

impl Program {
    pub fn uses_relative_time(&self) -> bool {
        self.code.iter().any(|i| matches!(i, Instr::Time { time: TimeOperand::Relative(_), .. }))
            || self.inserts.iter().any(|i| matches!(i.at, TimeOperand::Relative(_)))
    }

    /// The statements an object of this kind runs through, in script order.
    pub fn statements_for(&self, kind: Option<&str>) -> std::borrow::Cow<'_, [u32]> {
        match &self.dispatch {
            Some(d) => std::borrow::Cow::Borrowed(d.statements_for(kind)),
            None => std::borrow::Cow::Owned((0..self.stmts.len() as u32).collect()),
        }
    }

    /// The inserts by time, the manifests of one time together in script order; those at
    /// relative times only with the trace's start. `Err`: the span and seconds of an insert
    /// whose time is past the largest `ts` (the trace starts too late for it).
    pub fn inserts_by_time(&self, start_ts: Option<i64>) -> Result<InsertsByTime<'_>, (Span, i64)> {
        let mut timed: Vec<(i64, &[Value])> = Vec::new();
        for i in &self.inserts {
            let t = match (i.at, start_ts) {
                (TimeOperand::Absolute(t), _) => t,
                (TimeOperand::Relative(_), None) => continue,
                (TimeOperand::Relative(d), Some(start)) => start.checked_add(d).ok_or((i.span, d))?,
            };
            timed.push((t, i.manifests.as_slice()));
        }
        timed.sort_by_key(|(t, _)| *t);
        let mut out: Vec<(i64, Vec<&Value>)> = Vec::new();
        for (t, manifests) in timed {
            match out.last_mut() {
                Some((last, list)) if *last == t => list.extend(manifests),
                _ => out.push((t, manifests.iter().collect())),
            }
        }
        Ok(out)
    }

    pub fn max_slots(&self) -> usize {
        self.stmts.iter().map(|s| s.slots as usize).max().unwrap_or(0)
    }

    /// Checks every index and jump before the program runs, so the VM can rely on them.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let err = |pc: usize, what: String| Err(VerifyError { pc, what });
        for (i, p) in self.paths.iter().enumerate() {
            for s in p.segs.iter() {
                if let Seg::Key(k) = s {
                    if *k as usize >= self.keys.len() {
                        return err(0, format!("path p{i} uses key #{k}"));
                    }
                }
            }
            if let Some(q) = p.prefix {
                let fits = self.prefixes.get(usize::from(q.id)).is_some_and(|segs| {
                    p.root == PathRoot::Object
                        && segs.len() == usize::from(q.len)
                        && p.segs.get(..segs.len()).is_some_and(|head| head == &segs[..])
                        && segs.iter().all(|s| matches!(s, Seg::Key(_)))
                });
                if !fits {
                    return err(0, format!("path p{i} does not start with its prefix q{}", q.id));
                }
            }
        }
        if let Some(d) = &self.dispatch {
            let n = self.stmts.len() as u32;
            let lists = d.by_kind.values().chain(std::iter::once(&d.other));
            for list in lists {
                if list.iter().any(|i| *i >= n) || list.windows(2).any(|w| w[0] >= w[1]) {
                    return err(0, "a dispatch list is out of range or out of order".into());
                }
            }
        }
        let mut stmt_ends = Vec::new();
        for (si, s) in self.stmts.iter().enumerate() {
            let entry = s.entry as usize;
            let end = self.code.iter().skip(entry).position(|i| *i == Instr::Return).map(|off| entry + off);
            let Some(end) = end else { return err(entry, format!("statement {si} has no return")) };
            stmt_ends.push((s, entry, end));
        }
        for (s, entry, end) in stmt_ends {
            for pc in entry..=end {
                let Some(ins) = self.code.get(pc) else { return err(pc, "past the end".into()) };
                let slot_ok = |p: PathId| match self.paths.get(p as usize) {
                    None => false,
                    Some(pc) => match pc.root {
                        PathRoot::Object => true,
                        PathRoot::Slot(sl) => sl < s.slots,
                    },
                };
                let pred_ok = |p: &Pred| match *p {
                    Pred::Exists(a) | Pred::NotExists(a) => slot_ok(a),
                    Pred::Cmp { lhs, rhs, .. } => slot_ok(lhs) && self.rhs_ok(rhs, &slot_ok),
                };
                let ok = match ins {
                    Instr::Time { .. } | Instr::Delete | Instr::Return => true,
                    Instr::Test(p) => pred_ok(p),
                    Instr::Bind { slot, over, pred } => *slot < s.slots && slot_ok(*over) && pred_ok(pred),
                    Instr::JumpIfFalse(t) | Instr::Jump(t) => (*t as usize) > pc && (*t as usize) <= end,
                    Instr::Remove(p) => slot_ok(*p),
                    Instr::Modify { target, value } => slot_ok(*target) && self.rhs_ok(*value, &slot_ok),
                    Instr::Transfer { from, to, .. } => slot_ok(*from) && slot_ok(*to),
                };
                if !ok {
                    return err(pc, format!("`{}` refers outside the program", self.instr_text(ins)));
                }
            }
        }
        Ok(())
    }

    fn rhs_ok(&self, r: Rhs, path_ok: &dyn Fn(PathId) -> bool) -> bool {
        match r {
            Rhs::Const(c) => (c as usize) < self.consts.len(),
            Rhs::Path(p) => path_ok(p),
            Rhs::Build(b) => self.builds.get(b as usize).is_some_and(|b| self.build_ok(b, path_ok)),
            Rhs::Regex(r) => (r as usize) < self.regexes.len(),
        }
    }

    fn build_ok(&self, b: &Build, path_ok: &dyn Fn(PathId) -> bool) -> bool {
        match b {
            Build::Const(c) => (*c as usize) < self.consts.len(),
            Build::Path(p) => path_ok(*p),
            Build::Array(items) => items.iter().all(|i| self.build_ok(i, path_ok)),
            Build::Object(members) => members.iter().all(|(_, v)| self.build_ok(v, path_ok)),
        }
    }

    /// A template as the disassembler shows it: `{"name": p3, "port": c1}`.
    fn build_text(&self, b: &Build) -> String {
        match b {
            Build::Const(c) => format!("c{c}"),
            Build::Path(p) => format!("p{p}"),
            Build::Array(items) => {
                format!("[{}]", items.iter().map(|i| self.build_text(i)).collect::<Vec<_>>().join(", "))
            }
            Build::Object(members) => format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Value::String(k.to_string()), self.build_text(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A path as the disassembler shows it: `.a.b` from the object, `$0.a` from slot 0.
    pub fn path_text(&self, id: PathId) -> String {
        self.format_path(id, None)
    }

    /// A path as the user wrote it in statement `stmt` (`a.b`, `$c.image`), for messages.
    pub fn source_path(&self, id: PathId, stmt: usize) -> String {
        self.format_path(id, self.stmts.get(stmt))
    }

    fn format_path(&self, id: PathId, stmt: Option<&StmtInfo>) -> String {
        match self.paths.get(id as usize) {
            Some(p) => self.format_code(p, stmt),
            None => format!("p{id}?"),
        }
    }

    fn format_code(&self, p: &PathCode, stmt: Option<&StmtInfo>) -> String {
        let mut s = match (p.root, stmt) {
            (PathRoot::Object, None) => String::from("."),
            (PathRoot::Object, Some(_)) => String::new(),
            (PathRoot::Slot(n), None) => format!("${n}"),
            (PathRoot::Slot(n), Some(st)) => st.var_names.get(n as usize).map_or(format!("${n}"), |v| v.to_string()),
        };
        for (i, seg) in p.segs.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 || matches!(p.root, PathRoot::Slot(_)) {
                        s.push('.');
                    }
                    let key = self.keys.get(*k as usize).map_or("?", |k| k);
                    let _ = skel_grammar::ast::write_key(&mut s, key);
                }
                Seg::Index(n) => {
                    let _ = write!(s, "[{n}]");
                }
                Seg::AnyIndex => s.push_str("[*]"),
                Seg::AnyKey => s.push_str(if i > 0 || matches!(p.root, PathRoot::Slot(_)) { ".*" } else { "*" }),
            }
        }
        s
    }

    fn rhs_text(&self, r: Rhs) -> String {
        match r {
            Rhs::Const(c) => format!("c{c}"),
            Rhs::Path(p) => format!("p{p}"),
            Rhs::Build(b) => format!("b{b}"),
            Rhs::Regex(r) => format!("r{r}"),
        }
    }

    fn pred_text(&self, p: &Pred) -> String {
        match *p {
            Pred::Exists(a) => format!("exists p{a}"),
            Pred::NotExists(a) => format!("not_exists p{a}"),
            Pred::Cmp { lhs, op, rhs } => format!("cmp p{lhs} {op} {}", self.rhs_text(rhs)),
        }
    }

    fn instr_text(&self, i: &Instr) -> String {
        match i {
            Instr::Time { op, time: TimeOperand::Absolute(t) } => format!("time {op} {t}"),
            Instr::Time { op, time: TimeOperand::Relative(t) } => format!("time {op} start+{t}s"),
            Instr::Test(p) => format!("test {}", self.pred_text(p)),
            Instr::Bind { slot, over, pred } => format!("bind ${slot} over p{over} where {}", self.pred_text(pred)),
            Instr::JumpIfFalse(t) => format!("jump_if_false {t:04}"),
            Instr::Jump(t) => format!("jump {t:04}"),
            Instr::Delete => "delete".into(),
            Instr::Remove(p) => format!("remove p{p}"),
            Instr::Modify { target, value } => format!("modify p{target} = {}", self.rhs_text(*value)),
            Instr::Transfer { from, to, keep } => {
                format!("{} p{from} -> p{to}", if *keep { "copy" } else { "move" })
            }
            Instr::Return => "return".into(),
        }
    }

    /// The disassembler: a stable text form of the whole program.
    pub fn disassemble(&self) -> String {
        let mut out = String::new();
        let _ = self.write_disassembly(&mut out, true);
        out
    }

    /// The disassembly without the statements' source spans: what two scripts that differ only
    /// in layout compile to is the same text.
    pub fn disassemble_without_spans(&self) -> String {
        let mut out = String::new();
        let _ = self.write_disassembly(&mut out, false);
        out
    }

    fn write_disassembly(&self, out: &mut String, spans: bool) -> fmt::Result {
        for ins in &self.inserts {
            let at = match ins.at {
                TimeOperand::Absolute(t) => t.to_string(),
                TimeOperand::Relative(t) => format!("start+{t}s"),
            };
            for m in &ins.manifests {
                writeln!(out, "insert at {at}: {m}")?;
            }
        }
        writeln!(out, "keys:")?;
        for (i, k) in self.keys.iter().enumerate() {
            writeln!(out, "  k{i} {k:?}")?;
        }
        writeln!(out, "consts:")?;
        for (i, c) in self.consts.iter().enumerate() {
            writeln!(out, "  c{i} {c}")?;
        }
        if !self.regexes.is_empty() {
            writeln!(out, "regexes:")?;
            for (i, r) in self.regexes.iter().enumerate() {
                writeln!(out, "  r{i} {}", Value::String(r.as_str().to_string()))?;
            }
        }
        if !self.builds.is_empty() {
            writeln!(out, "builds:")?;
            for (i, b) in self.builds.iter().enumerate() {
                writeln!(out, "  b{i} {}", self.build_text(b))?;
            }
        }
        if !self.prefixes.is_empty() {
            writeln!(out, "shared prefixes:")?;
            for (i, segs) in self.prefixes.iter().enumerate() {
                let path = PathCode { root: PathRoot::Object, segs: segs.clone(), prefix: None };
                writeln!(out, "  q{i} {}", self.format_code(&path, None))?;
            }
        }
        writeln!(out, "paths:")?;
        for (i, p) in self.paths.iter().enumerate() {
            let via =
                p.prefix.map(|q| format!("  (q{} + {})", q.id, p.segs.len() - usize::from(q.len))).unwrap_or_default();
            writeln!(out, "  p{i} {}{via}", self.path_text(i as PathId))?;
        }
        if !self.stmts.is_empty() {
            writeln!(out, "decodes: {}", self.shape.describe().join(", "))?;
        }
        if let Some(d) = &self.dispatch {
            writeln!(out, "dispatch on kind:")?;
            let mut kinds: Vec<_> = d.by_kind.iter().collect();
            kinds.sort();
            for (k, list) in kinds {
                writeln!(out, "  {k:?} -> {}", stmt_list(list))?;
            }
            writeln!(out, "  other -> {}", stmt_list(&d.other))?;
        }
        for (si, s) in self.stmts.iter().enumerate() {
            let flag = if s.touches_typed_fields { " validates-typed-fields" } else { "" };
            let span = if spans { format!(" @{}", s.span) } else { String::new() };
            writeln!(out, "stmt {si} {}{span} slots={}{flag}:", s.command, s.slots)?;
            let mut pc = s.entry as usize;
            while let Some(ins) = self.code.get(pc) {
                writeln!(out, "  {pc:04}  {}", self.instr_text(ins))?;
                if *ins == Instr::Return {
                    break;
                }
                pc += 1;
            }
        }
        Ok(())
    }
}

fn stmt_list(list: &[u32]) -> String {
    if list.is_empty() {
        return "(none)".into();
    }
    list.iter().map(|i| format!("stmt {i}")).collect::<Vec<_>>().join(", ")
}
