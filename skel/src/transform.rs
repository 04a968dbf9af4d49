//! What a run of a program over a trace reports (`Summary`, `RunError`, `MatchedObject`), and
//! the reference runner: `EventProcessor` and `Transform` run a program over whole decoded
//! events, one at a time, the simplest way. No command runs on them (`skel apply` and the REPL
//! run `skel::stream`); the conformance, insert and fuzz tests compare `skel::stream`'s lazy,
//! parallel pipeline with them.

use std::fmt;

use miette::Diagnostic;
use serde_json::Value;
use skel_trace::{Event, Format, Section, TraceError, TraceVisitor, TraceWriter};

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

/// Runs a program over events, one at a time; keeps the VM's buffers between events. The
/// objects `insert` adds go into the events at their time (`process`), or into new events
/// the caller writes before the event (`take_new_events`) or after the last one
/// (`late_inserts`).
pub struct EventProcessor<'p> {
    program: &'p Program,
    vm: Option<Vm<'p>>,
    pub summary: Summary,
    start_ts: Option<i64>,
    /// The largest `ts` so far (inserts go in where the trace's time first reaches them).
    latest_ts: Option<i64>,
    /// The inserts by time, once the start is known (the first event).
    inserts: Vec<(i64, Vec<&'p Value>)>,
    new_events: Vec<Event>,
    late_done: bool,
    /// When `Some`, every object a statement matched is recorded here (the REPL's report).
    pub matched: Option<Vec<MatchedObject>>,
}

/// An object some statement matched, as `stream::transform_recording` and
/// `EventProcessor::record` keep it.
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
}

impl<'p> EventProcessor<'p> {
    pub fn new(program: &'p Program) -> EventProcessor<'p> {
        EventProcessor {
            program,
            vm: None,
            summary: Summary::default(),
            start_ts: None,
            latest_ts: None,
            inserts: Vec::new(),
            new_events: Vec::new(),
            late_done: false,
            matched: None,
        }
    }

    /// A processor that records every object a statement matches (`matched`).
    pub fn record(program: &'p Program) -> EventProcessor<'p> {
        EventProcessor { matched: Some(Vec::new()), ..EventProcessor::new(program) }
    }

    /// Relative times (`@t`, `insert`) count from `start`, not from the first event seen (the
    /// REPL: a trace whose first events an earlier statement dropped keeps its start).
    /// `Err`: an `insert` is past the largest `ts` from there.
    pub fn starting_at(mut self, start: i64) -> Result<EventProcessor<'p>, Box<RunError>> {
        self.inserts = timed_inserts(self.program, Some(start))?;
        self.start_ts = Some(start);
        Ok(self)
    }

    /// Transforms one event in place; returns whether it is kept (false: it is now empty).
    /// The first event seen fixes the start time relative times count from.
    pub fn process(&mut self, index: usize, event: &mut Event) -> Result<bool, Box<RunError>> {
        let s = &mut self.summary;
        s.events_read += 1;
        let n = (event.applied_objs.len() + event.deleted_objs.len()) as u64;
        s.objects_read += n;
        let start = match self.start_ts {
            Some(start) => start,
            None => {
                self.inserts = timed_inserts(self.program, Some(event.ts))?;
                *self.start_ts.insert(event.ts)
            }
        };
        if !self.program.stmts.is_empty() {
            let program = self.program;
            let vm = self.vm.get_or_insert_with(|| Vm::new(program, start));
            let ts = event.ts;
            let mut lists =
                Lists { vm, index, ts, program, summary: &mut self.summary, matched: self.matched.as_mut() };
            lists.run(&mut event.applied_objs, "applied_objs")?;
            lists.run(&mut event.deleted_objs, "deleted_objs")?;
        }
        if !self.inserts.is_empty() {
            let (before, into) = crate::bytecode::inserts_around(&self.inserts, index == 0, self.latest_ts, event.ts);
            for (t, manifests) in before {
                self.summary.events_written += 1;
                self.summary.objects_inserted += manifests.len() as u64;
                let applied_objs = manifests.iter().map(|m| (*m).clone()).collect();
                self.new_events.push(Event { ts: *t, applied_objs, deleted_objs: Vec::new() });
            }
            self.summary.objects_inserted += into.len() as u64;
            event.applied_objs.extend(into.iter().map(|m| (*m).clone()));
        }
        self.latest_ts = self.latest_ts.max(Some(event.ts));
        let keep = !(event.applied_objs.is_empty() && event.deleted_objs.is_empty());
        if keep {
            self.summary.events_written += 1;
        } else {
            self.summary.events_pruned += 1;
        }
        Ok(keep)
    }

    /// The new events `insert` made before the event just processed, to write before it.
    pub fn take_new_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.new_events)
    }

    /// The new events `insert` makes after the last event (once; then nothing).
    pub fn late_inserts(&mut self) -> Result<Vec<Event>, Box<RunError>> {
        if std::mem::replace(&mut self.late_done, true) {
            return Ok(Vec::new());
        }
        let all = match self.start_ts {
            Some(_) => std::mem::take(&mut self.inserts),
            // No event, no start: only the inserts at absolute times.
            None => timed_inserts(self.program, None)?,
        };
        let late = crate::bytecode::inserts_after(all, self.latest_ts);
        Ok(late
            .into_iter()
            .map(|(ts, manifests)| {
                self.summary.events_written += 1;
                self.summary.objects_inserted += manifests.len() as u64;
                Event { ts, applied_objs: manifests.into_iter().cloned().collect(), deleted_objs: Vec::new() }
            })
            .collect())
    }
}

/// Runs a processor over a whole trace's events in memory: the events it keeps and the ones
/// `insert` adds, in order (what the streaming `Transform` writes). `stop` is asked before
/// each event; `Ok(None)` when it said to stop.
pub fn apply_events(
    processor: &mut EventProcessor<'_>,
    events: Vec<Event>,
    stop: &dyn Fn() -> bool,
) -> Result<Option<Vec<Event>>, Box<RunError>> {
    let mut out = Vec::with_capacity(events.len());
    for (index, mut event) in events.into_iter().enumerate() {
        if stop() {
            return Ok(None);
        }
        let keep = processor.process(index, &mut event)?;
        out.extend(processor.take_new_events());
        if keep {
            out.push(event);
        }
    }
    out.extend(processor.late_inserts()?);
    Ok(Some(out))
}

/// One event's object lists, run through the VM.
struct Lists<'a, 'p> {
    vm: &'a mut Vm<'p>,
    index: usize,
    ts: i64,
    program: &'p Program,
    summary: &'a mut Summary,
    matched: Option<&'a mut Vec<MatchedObject>>,
}

impl Lists<'_, '_> {
    fn run(&mut self, objs: &mut Vec<Value>, list: &'static str) -> Result<(), Box<RunError>> {
        let mut deleted = Vec::new();
        for (i, obj) in objs.iter_mut().enumerate() {
            let mut node = Node::from_value(obj);
            let at = (self.index, list, i);
            let out = run_object(self.vm, &mut node, self.ts, at, self.program, self.summary, Format::Json)?;
            let after = node.to_value(Format::Json);
            if let Some(matched) = self.matched.as_deref_mut().filter(|_| out.matched) {
                let (kind, _) = crate::explore::describe(obj);
                let modified = out.modified && !out.deleted;
                matched.push(MatchedObject {
                    kind,
                    event: self.index,
                    ts: self.ts,
                    list,
                    index: i,
                    // An object the VM made encodes (the stream writes every one it keeps); the
                    // differential tests would show one that did not.
                    after: modified.then(|| msgpack(&after)).flatten(),
                    modified: out.modified && !out.deleted,
                    deleted: out.deleted,
                });
            }
            *obj = after;
            deleted.push(out.deleted);
        }
        if deleted.contains(&true) {
            let mut flags = deleted.into_iter();
            objs.retain(|_| !flags.next().unwrap_or(false));
        }
        Ok(())
    }
}

/// Runs the program over one object (`events[event].list[i]`, decoded from `format`),
/// counting what happened; returns whether the object was deleted.
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

/// An object encoded as msgpack, as `MatchedObject::after` holds it.
fn msgpack(v: &Value) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    Node::from_value(v).encode(&mut bytes, Format::Msgpack).ok().map(|()| bytes)
}

/// `Kind namespace/name` for messages, from whatever the object has.
pub fn describe_object(obj: &Value) -> String {
    let (kind, name) = crate::explore::describe(obj);
    format!("{kind} {name}")
}

/// Why a streamed transform stopped.
#[derive(Debug)]
pub enum TransformError {
    Run(Box<RunError>),
    Write(TraceError),
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformError::Run(e) => e.fmt(f),
            TransformError::Write(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TransformError {}

/// The reader's visitor: transforms each event and writes what is kept, in input order.
/// `finish` writes what `insert` adds after the last event, and the end of the trace.
pub struct Transform<'p, W: std::io::Write + std::io::Seek> {
    pub processor: EventProcessor<'p>,
    pub writer: TraceWriter<W>,
    events: bool,
}

impl<'p, W: std::io::Write + std::io::Seek> Transform<'p, W> {
    pub fn new(program: &'p Program, writer: TraceWriter<W>) -> Self {
        Transform { processor: EventProcessor::new(program), writer, events: false }
    }

    fn write_late_inserts(&mut self) -> Result<(), TransformError> {
        let late = self.processor.late_inserts().map_err(TransformError::Run)?;
        if !late.is_empty() {
            self.writer.begin_events().map_err(TransformError::Write)?;
        }
        late.iter().try_for_each(|e| self.writer.event(e)).map_err(TransformError::Write)
    }

    pub fn finish(mut self) -> Result<W, TransformError> {
        self.write_late_inserts()?;
        self.writer.finish().map_err(TransformError::Write)
    }
}

impl<W: std::io::Write + std::io::Seek> TraceVisitor for Transform<'_, W> {
    type Error = TransformError;

    fn section(&mut self, section: Section) -> Result<(), TransformError> {
        // What goes after the last event goes before a section that follows the events.
        if self.events {
            self.write_late_inserts()?;
        }
        self.writer.section(&section).map_err(TransformError::Write)
    }

    fn event(&mut self, index: usize, mut event: Event) -> Result<(), TransformError> {
        self.events = true;
        self.writer.begin_events().map_err(TransformError::Write)?;
        let keep = self.processor.process(index, &mut event).map_err(TransformError::Run)?;
        for e in self.processor.take_new_events() {
            self.writer.event(&e).map_err(TransformError::Write)?;
        }
        if keep {
            self.writer.event(&event).map_err(TransformError::Write)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn program(src: &str) -> Program {
        let c = crate::compile(src).expect("compiles");
        c.program
    }

    fn events() -> Vec<Event> {
        let cj = |name: &str| json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": name}});
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        vec![
            Event { ts: 0, applied_objs: vec![cj("a"), pod.clone()], deleted_objs: vec![] },
            Event { ts: 60, applied_objs: vec![pod], deleted_objs: vec![] },
            Event { ts: 120, applied_objs: vec![], deleted_objs: vec![cj("b")] },
        ]
    }

    #[test]
    fn recording_keeps_each_matched_object_before_and_after() {
        let p = program(r#"modify(kind == "CronJob", apiVersion = "batch/v1"); delete(kind == "Pod" && @t > 30s);"#);
        let mut processor = EventProcessor::record(&p);
        let out = apply_events(&mut processor, events(), &|| false).unwrap().unwrap();
        // The second event held only the deleted Pod: it is pruned.
        assert_eq!(out.iter().map(|e| e.ts).collect::<Vec<_>>(), vec![0, 120]);
        assert_eq!(out[1].deleted_objs[0]["apiVersion"], "batch/v1");
        let matched = processor.matched.unwrap();
        let seen: Vec<_> =
            matched.iter().map(|m| (m.event, m.list, m.index, m.kind.as_str(), m.modified, m.deleted)).collect();
        assert_eq!(
            seen,
            vec![
                (0, "applied_objs", 0, "CronJob", true, false),
                (1, "applied_objs", 0, "Pod", false, true),
                (2, "deleted_objs", 0, "CronJob", true, false),
            ]
        );
        let after = skel_trace::decode_manifest(matched[0].after.as_ref().unwrap(), Format::Msgpack).unwrap();
        assert_eq!(after["apiVersion"], "batch/v1");
        assert!(matched[1].after.is_none());
        assert_eq!(processor.summary.events_pruned, 1);
    }

    #[test]
    fn apply_events_places_inserts_as_the_stream_does() {
        let p = program(
            r#"insert(@t == 90s, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}); insert(@t == 1h, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "late"}});"#,
        );
        let mut processor = EventProcessor::new(&p);
        let out = apply_events(&mut processor, events(), &|| false).unwrap().unwrap();
        assert_eq!(out.iter().map(|e| e.ts).collect::<Vec<_>>(), vec![0, 60, 90, 120, 3600]);
        assert_eq!(processor.summary.objects_inserted, 2);
        assert!(processor.matched.is_none(), "only `record` records");
        let mut processor = EventProcessor::new(&p);
        assert_eq!(apply_events(&mut processor, events(), &|| true).unwrap(), None);
    }
}
