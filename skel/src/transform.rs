//! What a run of a program over a trace reports (`Summary`, `RunError`, `MatchedObject`), and
//! the steps of it that do not depend on how the trace is read: one object through the VM
//! (`run_object`), the inserts by time (`timed_inserts`). The one pipeline that runs a program
//! over a trace, for `skel apply`, the REPL and the tests, is `skel::stream`.

use miette::Diagnostic;
use serde_json::Value;
use skel_trace::Format;

use crate::ast::Span;
use crate::bytecode::{InsertsByTime, Program};
use crate::node::Node;
use crate::vm::{ObjectOutcome, Vm, VmErrorKind};

/// Counts for the summary `skel apply` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub events_read: u64,
    pub events_written: u64,
    pub events_pruned: u64,
    pub objects_read: u64,
    pub objects_matched: u64,
    pub objects_modified: u64,
    pub objects_deleted: u64,
    pub fields_removed: u64,
    pub fields_set: u64,
    /// Objects `insert` added.
    pub objects_inserted: u64,
}

impl Summary {
    /// Adds another part's counts (the parallel path sums its batches).
    pub fn add(&mut self, o: &Summary) {
        self.events_read += o.events_read;
        self.events_written += o.events_written;
        self.events_pruned += o.events_pruned;
        self.objects_read += o.objects_read;
        self.objects_matched += o.objects_matched;
        self.objects_modified += o.objects_modified;
        self.objects_deleted += o.objects_deleted;
        self.fields_removed += o.fields_removed;
        self.fields_set += o.fields_set;
        self.objects_inserted += o.objects_inserted;
    }
}

/// A statement failed on an object: which statement, which event and object, and why. (An
/// `insert` whose time is past the largest `ts` fails on no object: `slot` is empty.)
#[derive(Debug, Clone, PartialEq, thiserror::Error, Diagnostic)]
#[error("{kind}{}", self.location())]
#[diagnostic(forward(kind))]
pub struct RunError {
    pub event: usize,
    pub ts: i64,
    /// `applied_objs[3]` or `deleted_objs[0]`.
    pub slot: String,
    /// `Deployment default/web`, as far as the object says.
    pub object: String,
    #[label("{}", self.label())]
    pub span: Span,
    pub kind: VmErrorKind,
}

impl RunError {
    /// Where it happened, after the message: ` (in `events[2].applied_objs[0]`, Pod a/b at ts
    /// 5)`; nothing for an insert (which fails on no object).
    fn location(&self) -> String {
        if self.slot.is_empty() {
            return String::new();
        }
        format!(" (in `events[{}].{}`, {} at ts {})", self.event, self.slot, self.object, self.ts)
    }

    fn label(&self) -> &'static str {
        match self.kind {
            VmErrorKind::TimePastEnd { .. } => "the time is in this statement",
            _ => "while running this statement",
        }
    }
}

/// `Program::inserts_by_time`: the inserts by time, on a trace starting at `start` (`None`:
/// unknown, only those at absolute times); an insert whose time is past the largest `ts` is a
/// run error (on no object; the event is the first, whose `ts` is the start).
pub(crate) fn timed_inserts(program: &Program, start: Option<i64>) -> Result<InsertsByTime<'_>, Box<RunError>> {
    program.inserts_by_time(start).map_err(|(span, secs)| {
        let start = start.unwrap_or_default();
        let kind = VmErrorKind::TimePastEnd { secs, start };
        Box::new(RunError { event: 0, ts: start, slot: String::new(), object: String::new(), span, kind })
    })
}

/// An object some statement matched, as `stream::transform_recording` records it.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedObject {
    /// The event's index in the input.
    pub event: usize,
    pub ts: i64,
    /// `applied_objs` or `deleted_objs`.
    pub list: &'static str,
    /// The object's index in its list, in the input.
    pub index: usize,
    /// The object's `kind` (`object` when it has none).
    pub kind: String,
    /// The object as it is now, when changed, encoded as msgpack (compact: a statement may
    /// change every object of a trace); `None` when deleted or unchanged. What it was is in
    /// the input, at `event`, `list` and `index`.
    pub after: Option<Vec<u8>>,
    pub modified: bool,
    pub deleted: bool,
    /// What the query read of the object as it was matched (`stream::Recording::look`).
    pub looked: Option<Value>,
}

/// Runs the program over one object (`events[event].list[i]`, decoded from `format`),
/// counting what happened; returns what the statements did to it.
pub(crate) fn run_object(
    vm: &mut Vm<'_>,
    obj: &mut Node<'_>,
    ts: i64,
    (event, list, i): (usize, &str, usize),
    program: &Program,
    summary: &mut Summary,
    format: Format,
) -> Result<ObjectOutcome, Box<RunError>> {
    let out = vm.run(obj, ts).map_err(|e| {
        // The message names the object: describe all of it, not just the decoded part.
        let object = describe_object(&obj.to_value(format));
        let span = program.stmts.get(e.stmt).map_or(Span::default(), |s| s.span);
        let slot = format!("{list}[{i}]");
        Box::new(RunError { event, ts, slot, object, span, kind: e.kind })
    })?;
    summary.objects_matched += out.matched as u64;
    summary.objects_modified += (out.modified && !out.deleted) as u64;
    summary.objects_deleted += out.deleted as u64;
    summary.fields_removed += out.fields_removed;
    summary.fields_set += out.fields_set;
    Ok(out)
}

/// `Kind namespace/name` for messages, from whatever the object has.
pub fn describe_object(obj: &Value) -> String {
    let (kind, name) = crate::explore::describe(obj);
    format!("{kind} {name}")
}
