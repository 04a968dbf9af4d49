//! The streaming transform `skel apply` runs: a reader thread cuts the input into sections and
//! batches of events (`Splitter`), worker threads decode, transform and encode the batches, and
//! the calling thread writes the results in input order. A manifest no statement can match is
//! copied from input to output as bytes, never decoded. Memory holds a few batches, whatever
//! the trace's length. `jobs == 1` runs the same steps on the calling thread.
//!
//! The same pipeline reads a trace without writing one (`visit`): the workers look at the
//! batches, and the calling thread merges what they found in input order. `skel check` runs on
//! it (`check`): a manifest is decoded only when its bytes can hold what the rules look for, and
//! then only as far as they read (`kube::shape`).

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use skel_trace::{
    decode_manifest, decode_raw_event, encode_event, BufferPool, DecodedEvent, EventBatch, Format, KindProbe, Location,
    RawManifest, Section, SlicePos, Splitter, TraceError, TraceWriter, Unit,
};

use crate::bytecode::Program;
use crate::kube::shape::Reads;
use crate::kube::KubeVersion;
use crate::lazy;
use crate::node::Node;
use crate::transform::{run_object, timed_inserts, MatchedObject, RunError, Summary};
use crate::upgrade::Scanner;
use crate::vm::Vm;

/// How to run a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Worker threads (at least 1); with 1, everything runs on the calling thread.
    pub jobs: usize,
    pub input_format: Format,
    pub output_format: Format,
    /// About how many bytes of events one batch holds.
    pub batch_bytes: usize,
    /// Whether the trace's `config.trackedObjects` keys and `pod_lifecycles` owners follow the
    /// kinds the program moves to another apiVersion (`Program::api_moves`).
    pub follow_api_versions: bool,
    /// Where relative times (`@t`, `insert`) count from; `None`: the first event's `ts`. (The
    /// REPL counts from the trace as loaded, whose first events a statement may have dropped.)
    pub start_ts: Option<i64>,
}

impl StreamOptions {
    pub fn new(input_format: Format, output_format: Format) -> Self {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        StreamOptions {
            jobs,
            input_format,
            output_format,
            batch_bytes: 1 << 20,
            follow_api_versions: false,
            start_ts: None,
        }
    }
}

/// Why a stream stopped.
#[derive(Debug)]
pub enum StreamError {
    /// The input is not a valid trace (or could not be read), or the output could not be written.
    Trace(TraceError),
    /// A statement failed on an object.
    Run(Box<RunError>),
}

impl From<TraceError> for StreamError {
    fn from(e: TraceError) -> Self {
        StreamError::Trace(e)
    }
}

impl From<Box<RunError>> for StreamError {
    fn from(e: Box<RunError>) -> Self {
        StreamError::Run(e)
    }
}

/// Why the pipeline of `transform` stopped early: an error, or `stop` said so.
enum Halt {
    Failed(StreamError),
    Stopped,
}

impl<E: Into<StreamError>> From<E> for Halt {
    fn from(e: E) -> Self {
        Halt::Failed(e.into())
    }
}

/// Streams `input` through `program` into `writer`; returns the counts. On error nothing more
/// is written (the caller discards the output).
pub fn transform<R, W>(
    program: &Program,
    input: R,
    writer: &mut TraceWriter<W>,
    opts: StreamOptions,
) -> Result<Summary, StreamError>
where
    R: Read + Send,
    W: Write + Seek,
{
    let pool = Arc::new(BufferPool::default());
    let mut splitter = Splitter::new(input, opts.input_format, opts.batch_bytes).with_pool(Arc::clone(&pool));
    if !program.inserts.is_empty() {
        // Inserts between events need each batch to know the `ts` before it.
        splitter = splitter.with_event_ts();
    }
    // Nothing says to stop: the run ends with the input, or an error.
    Ok(run(program, splitter, &pool, writer, opts, None, &|| false)?.unwrap_or_default())
}

/// `transform` of a trace already cut into sections and batches of events (the REPL's, read
/// back from where it keeps them: `EventBatch::from_parts`, each batch with the `ts` before it,
/// its buffer taken from `recording.pool`), recording every object a statement matches, in input
/// order (the REPL's answer: what matched, and, with `recording.after`, what each changed object
/// is now), and asking `stop` before each event: `Ok(None)` when it said to (the output is then
/// incomplete). `recording.written` gets each batch of events as it is written.
pub fn transform_recording<W>(
    program: &Program,
    units: impl Iterator<Item = Result<Unit, TraceError>> + Send,
    writer: &mut TraceWriter<W>,
    opts: StreamOptions,
    recording: Recording<'_>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Option<(Summary, Vec<MatchedObject>)>, StreamError>
where
    W: Write + Seek,
{
    let mut matched = Vec::new();
    let pool = Arc::clone(&recording.pool);
    let summary = run(program, units, &pool, writer, opts, Some((&mut matched, recording)), stop)?;
    Ok(summary.map(|s| (s, matched)))
}

/// How a recording run (`transform_recording`) records.
pub struct Recording<'r> {
    /// Whether each changed object's value after is kept (`MatchedObject::after`).
    pub after: bool,
    /// Who gets the written events: each batch's bytes, with where each event is in them and
    /// whether it is the input's event unchanged, byte for byte (the REPL keeps only the events a
    /// statement changed).
    pub written: &'r mut Recorder<'r>,
    /// Where the input batches' buffers come from, and go back to once run.
    pub pool: Arc<BufferPool>,
    /// What a query reads of each object it matches (`MatchedObject::looked`), computed on the
    /// worker threads, where the object is decoded.
    pub look: Option<&'r Look<'r>>,
}

/// A query's reading of a matched object (its value as it is when matched).
pub type Look<'r> = dyn Fn(&Value) -> Value + Sync + 'r;

/// An event a recording run wrote (`transform_recording`): where its bytes are in its batch's,
/// its `ts` and object counts, and the index of the input event it is unchanged from, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenEvent {
    pub start: usize,
    pub end: usize,
    pub ts: i64,
    pub applied: usize,
    pub deleted: usize,
    /// The input event's index when the written bytes are that event's bytes as read.
    pub same_as: Option<usize>,
}

/// Who gets a recording run's written events: each batch's bytes, and each event in them.
pub type Recorder<'r> = dyn FnMut(&[u8], &[WrittenEvent]) -> Result<(), TraceError> + 'r;

/// What a recording run records into: the matched objects, and how (`Recording`).
type Record<'m, 'r> = (&'m mut Vec<MatchedObject>, Recording<'r>);

fn run<W>(
    program: &Program,
    units: impl Iterator<Item = Result<Unit, TraceError>> + Send,
    pool: &Arc<BufferPool>,
    writer: &mut TraceWriter<W>,
    opts: StreamOptions,
    record: Option<Record<'_, '_>>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Option<Summary>, StreamError>
where
    W: Write + Seek,
{
    let mut summary = Summary::default();
    let (mut record, recording, recorder, look) = match record {
        Some((all, Recording { after, written, look, .. })) => (Some(all), Some(after), Some(written), look),
        None => (None, None, None, None),
    };
    let mut written = Written {
        program,
        format: opts.output_format,
        start_ts: opts.start_ts,
        latest_ts: None,
        events: false,
        late_done: false,
        follow: opts.follow_api_versions,
        recorder,
    };
    let ran = in_order(
        units,
        opts.jobs,
        |unit| unit,
        || Worker::new(program, opts, pool, (recording, look), stop),
        |worker: &mut Worker<'_>, unit: Unit| worker.work(unit),
        |mut done| {
            if let (Some(all), Done::Events(e)) = (record.as_deref_mut(), &mut done) {
                all.append(&mut e.matched);
            }
            Ok(write(writer, done, &mut summary, pool, &mut written)?)
        },
    );
    match ran {
        Ok(()) => {}
        Err(Halt::Stopped) => return Ok(None),
        Err(Halt::Failed(e)) => return Err(e),
    }
    write_late_inserts(writer, &mut summary, &mut written)?;
    Ok(Some(summary))
}

/// How `visit` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitOptions {
    /// Worker threads (at least 1); with 1, everything runs on the calling thread.
    pub jobs: usize,
    pub format: Format,
    /// About how many bytes of events one batch holds.
    pub batch_bytes: usize,
}

impl VisitOptions {
    /// One worker per core, batches of about 1 MB.
    pub fn new(format: Format) -> Self {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        VisitOptions { jobs, format, batch_bytes: 1 << 20 }
    }
}

/// What `visit` hands the caller, in input order: a section, or what was made of a batch of
/// events.
#[derive(Debug)]
pub enum Visited<T> {
    Section(Section),
    Events(T),
}

/// Reads a trace without writing one, on the pipeline `transform` runs. The events are read in a
/// context (what the sections before them say): `section` runs on the reader thread for each
/// section, in input order, and returns the context of the events after it (`None`: the same
/// one). `events` runs on the worker threads, once for each batch of whole events, with the
/// context at the batch; `consume` gets the sections and what `events` made of each batch on the
/// calling thread, in input order, so merging them as they come gives what one pass in order
/// gives. Stops at the first error (of the input, or of `events` or `consume`).
pub fn visit<R, C, T, E>(
    input: R,
    opts: VisitOptions,
    context: C,
    mut section: impl FnMut(&C, &Section) -> Option<C> + Send,
    events: impl Fn(&C, &EventBatch) -> Result<T, E> + Sync,
    consume: impl FnMut(Visited<T>) -> Result<(), E>,
) -> Result<(), E>
where
    R: Read + Send,
    C: Send + Sync,
    T: Send,
    E: From<TraceError> + Send,
{
    let pool = Arc::new(BufferPool::default());
    let splitter = Splitter::new(input, opts.format, opts.batch_bytes).with_pool(Arc::clone(&pool));
    let mut context = Arc::new(context);
    let prepare = move |unit: Unit| {
        if let Unit::Section(s) = &unit {
            if let Some(next) = section(&context, s) {
                context = Arc::new(next);
            }
        }
        (unit, Arc::clone(&context))
    };
    let work = |(): &mut (), (unit, context): (Unit, Arc<C>)| match unit {
        Unit::Section(s) => Ok(Visited::Section(s)),
        Unit::Events(batch) => {
            let done = events(&context, &batch);
            pool.put(batch.into_buffer());
            done.map(Visited::Events)
        }
    };
    in_order(splitter, opts.jobs, prepare, || (), work, consume)
}

/// `skel check` of a trace at `target`: every object of every event, and the kinds the config
/// and the pod lifecycles name, go to a `Scanner`, which comes back to make the report. Each
/// batch of events is scanned by a fork of it, merged in input order; each manifest is decoded
/// only as far as the rules read (`Reads`), and one whose bytes cannot hold anything they look
/// for is counted and not decoded. The report is the one `Scanner::object` makes of every
/// object decoded whole, for any `jobs`.
pub fn check<R: Read + Send>(input: R, opts: VisitOptions, target: KubeVersion) -> Result<Scanner, TraceError> {
    let mut scanner = Scanner::new(target);
    let context = Checking { scanner: scanner.fork(), reads: Reads::new(target) };
    let format = opts.format;
    visit(
        input,
        opts,
        context,
        |context, section| {
            let Section::Config(config) = section else { return None };
            let mut next = Checking { scanner: context.scanner.fork(), reads: context.reads.clone() };
            for (gvk, tracked) in &config.tracked_objects {
                for pointer in &tracked.pod_spec_template_paths {
                    next.scanner.pod_template_path(gvk, pointer);
                    next.reads.pod_template_path(gvk, pointer);
                }
            }
            Some(next)
        },
        |context, batch| {
            let mut part = context.scanner.fork();
            for (index, bytes, at) in batch.events() {
                check_event(&context.reads, &mut part, index, bytes, at, format)?;
            }
            Ok(part)
        },
        |visited| {
            match visited {
                Visited::Section(section) => check_section(&mut scanner, &section),
                Visited::Events(part) => scanner.merge(part),
            }
            Ok(())
        },
    )?;
    Ok(scanner)
}

/// What `check`'s events are read in: a scanner to fork (it has the config's pod-template
/// places), and what to decode.
struct Checking {
    scanner: Scanner,
    reads: Reads,
}

/// What a trace's section tells `skel check`: the config's tracked kinds and the places of
/// their pod templates, the owners of the pod lifecycles.
/// `skel check`'s sequential scan (`skel_trace::read_trace`, every object decoded whole): the
/// reference `check` is compared with, and the way a trace that is not seekable or splittable is
/// checked.
impl skel_trace::TraceVisitor for Scanner {
    type Error = std::convert::Infallible;

    fn section(&mut self, section: Section) -> Result<(), Self::Error> {
        check_section(self, &section);
        Ok(())
    }

    fn event(&mut self, index: usize, event: skel_trace::Event) -> Result<(), Self::Error> {
        self.event();
        for obj in event.applied_objs.iter().chain(&event.deleted_objs) {
            self.object(index, event.ts, obj);
        }
        Ok(())
    }
}

pub fn check_section(scanner: &mut Scanner, section: &Section) {
    match section {
        Section::Config(config) => {
            for (gvk, tracked) in &config.tracked_objects {
                scanner.trace_kind("config.trackedObjects", gvk);
                for pointer in &tracked.pod_spec_template_paths {
                    scanner.pod_template_path(gvk, pointer);
                }
            }
        }
        Section::PodLifecycles(lifecycles) => {
            for entry in lifecycles.entries() {
                scanner.trace_kind("pod_lifecycles", &entry.gvk);
            }
        }
        _ => {}
    }
}

/// Scans one event (`index`, its bytes at `at` in the input).
fn check_event(
    reads: &Reads,
    scanner: &mut Scanner,
    index: usize,
    bytes: &[u8],
    at: SlicePos,
    format: Format,
) -> Result<(), TraceError> {
    scanner.event();
    match decode_raw_event(bytes, format, index, at)? {
        DecodedEvent::Raw(raw) => {
            for (name, list) in [("applied_objs", &raw.applied_objs), ("deleted_objs", &raw.deleted_objs)] {
                for (i, m) in list.iter().enumerate() {
                    let groups = reads.groups(&m.kind, m.bytes, format);
                    if groups == 0 {
                        // Nothing to find: only counted.
                        scanner.objects += 1;
                        continue;
                    }
                    let value = reads.value(m.bytes, format, groups).map_err(|e| {
                        e.locate(Location {
                            event: Some(index),
                            path: Some(format!("events[{index}].{name}[{i}]")),
                            ..Location::default()
                        })
                    })?;
                    scanner.object(index, raw.ts, &value);
                }
            }
        }
        // Something unusual: the careful decoder decoded every manifest whole.
        DecodedEvent::Full(event) => {
            for obj in event.applied_objs.iter().chain(&event.deleted_objs) {
                scanner.object(index, event.ts, obj);
            }
        }
    }
    Ok(())
}

/// A finished unit, ready to write.
enum Done {
    Section(Section),
    Events(Encoded),
}

/// A batch's surviving events, encoded.
struct Encoded {
    bytes: Vec<u8>,
    count: u64,
    summary: Summary,
    /// The objects a statement matched, when recording.
    matched: Vec<MatchedObject>,
    /// Each event written, when recording.
    events: Vec<WrittenEvent>,
    /// The trace's first `ts`, and the largest `ts` up to the batch's end, when known.
    start_ts: Option<i64>,
    latest_ts: Option<i64>,
}

/// What the writer knows of the events written so far: for `insert`s after the last event,
/// which go at the end of the events (before any section that follows them).
struct Written<'p, 'r> {
    program: &'p Program,
    format: Format,
    start_ts: Option<i64>,
    /// The largest `ts` written so far.
    latest_ts: Option<i64>,
    /// The events array was started.
    events: bool,
    /// The inserts after the last event are written.
    late_done: bool,
    /// `StreamOptions::follow_api_versions`.
    follow: bool,
    /// Who gets the written events, when recording.
    recorder: Option<&'r mut Recorder<'r>>,
}

fn write<W: Write + Seek>(
    writer: &mut TraceWriter<W>,
    done: Done,
    summary: &mut Summary,
    pool: &BufferPool,
    written: &mut Written<'_, '_>,
) -> Result<(), StreamError> {
    match done {
        Done::Section(s) => {
            if written.events {
                write_late_inserts(writer, summary, written)?;
            }
            let s = if written.follow { follow_api_moves(s, &written.program.api_moves) } else { s };
            writer.section(&s)?
        }
        Done::Events(e) => {
            // The events array keeps its place even if every event is pruned.
            writer.begin_events()?;
            writer.encoded_events(&e.bytes, e.count)?;
            if let Some(recorder) = written.recorder.as_mut() {
                recorder(&e.bytes, &e.events)?;
            }
            summary.add(&e.summary);
            written.start_ts = written.start_ts.or(e.start_ts);
            written.latest_ts = written.latest_ts.max(e.latest_ts);
            written.events = true;
            pool.put(e.bytes);
        }
    }
    Ok(())
}

/// The config or lifecycles section with each moved kind under its new apiVersion, the moves
/// taken in script order (so `v1beta1 -> v1beta2` then `v1beta2 -> v1` ends at `v1`).
fn follow_api_moves(section: Section, moves: &[crate::ir::ApiMove]) -> Section {
    match section {
        Section::Config(mut config) => {
            for m in moves {
                let (from, to) = m.gvks();
                config.rename_kind(&from, &to);
            }
            Section::Config(config)
        }
        Section::PodLifecycles(mut lifecycles) => {
            for m in moves {
                let (from, to) = m.gvks();
                lifecycles = lifecycles.rename_kind(&from, &to);
            }
            Section::PodLifecycles(lifecycles)
        }
        other => other,
    }
}

/// Writes the `insert`s whose time is after the trace's last event, as new events at the end
/// (all of them, with absolute times, when the trace has no events).
fn write_late_inserts<W: Write + Seek>(
    writer: &mut TraceWriter<W>,
    summary: &mut Summary,
    written: &mut Written<'_, '_>,
) -> Result<(), StreamError> {
    if written.late_done {
        return Ok(());
    }
    written.late_done = true;
    let format = written.format;
    let all = timed_inserts(written.program, written.start_ts)?;
    let late = crate::bytecode::inserts_after(all, written.latest_ts);
    if late.is_empty() {
        return Ok(());
    }
    let mut out = Encoded {
        bytes: Vec::new(),
        count: 0,
        summary: Summary::default(),
        matched: Vec::new(),
        events: Vec::new(),
        start_ts: None,
        latest_ts: None,
    };
    for (t, manifests) in late {
        new_event(&mut out, format, t, &manifests)?;
    }
    if !written.events {
        writer.begin_events()?;
    }
    writer.encoded_events(&out.bytes, out.count)?;
    if let Some(recorder) = written.recorder.as_mut() {
        recorder(&out.bytes, &out.events)?;
    }
    summary.add(&out.summary);
    Ok(())
}

/// Appends a new event holding `manifests` at time `ts`.
fn new_event(out: &mut Encoded, format: Format, ts: i64, manifests: &[&Value]) -> Result<(), StreamError> {
    let mut bytes = Vec::new();
    let mut ranges = Vec::new();
    for m in manifests {
        let start = bytes.len();
        Node::from_value(m).encode(&mut bytes, format)?;
        ranges.push((start, bytes.len()));
    }
    let objs: Vec<&[u8]> = ranges.iter().map(|(a, b)| bytes.get(*a..*b).unwrap_or(&[])).collect();
    if format == Format::Json && out.count > 0 {
        out.bytes.push(b',');
    }
    let start = out.bytes.len();
    encode_event(&mut out.bytes, format, ts, &objs, &[])?;
    let (applied, end) = (objs.len(), out.bytes.len());
    out.events.push(WrittenEvent { start, end, ts, applied, deleted: 0, same_as: None });
    out.count += 1;
    out.summary.events_written += 1;
    out.summary.objects_inserted += manifests.len() as u64;
    Ok(())
}

/// What the reader hands the workers, numbered in input order.
enum Job<J> {
    Unit(u64, J),
    /// The input is malformed here; nothing after it is read.
    Failed(u64, TraceError),
    /// Every unit has been handed out; this is the count.
    End(u64),
}

/// What a worker hands the consumer: a unit's result, or the end.
type Finished<T, E> = (u64, Option<Result<T, E>>);

/// The pipeline both `transform` and `visit` run: a reader thread cuts the input into units and
/// hands each, through `prepare` (on the reader thread, in input order), to `jobs` worker
/// threads; each worker runs `work` with state of its own (made by `start` on its thread); the
/// calling thread gives the results to `consume` in input order, until the end or the first
/// error. `jobs <= 1` runs the same steps on the calling thread.
fn in_order<J, S, T, E>(
    splitter: impl Iterator<Item = Result<Unit, TraceError>> + Send,
    jobs: usize,
    mut prepare: impl FnMut(Unit) -> J + Send,
    start: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, J) -> Result<T, E> + Sync,
    mut consume: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E>
where
    J: Send,
    T: Send,
    E: From<TraceError> + Send,
{
    if jobs <= 1 {
        let mut state = start();
        for unit in splitter {
            let job = prepare(unit?);
            consume(work(&mut state, job)?)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = sync_channel::<Job<J>>(jobs * 2);
        let (done_tx, done_rx) = sync_channel::<Finished<T, E>>(jobs * 2);
        // Tickets bound the units between the reader and the consumer: a stalled worker cannot
        // make the others' finished batches pile up without limit.
        let in_flight = jobs * 4;
        let (ticket_tx, ticket_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = ticket_tx.send(());
        }
        let job_rx = Arc::new(Mutex::new(job_rx));
        scope.spawn(move || read_units(splitter, &mut prepare, &job_tx, &ticket_rx));
        for _ in 0..jobs {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let (start, work) = (&start, &work);
            scope.spawn(move || work_units(start(), work, &job_rx, &done_tx));
        }
        // Only the workers hold these now: when they stop, the reader's sends fail and it stops.
        drop(job_rx);
        drop(done_tx);
        // Returning drops `done_rx` and `ticket_tx`: workers still sending stop, and the reader.
        consume_in_order(&done_rx, &ticket_tx, &mut consume)
    })
}

/// The reader thread: takes a ticket for each unit it hands out.
fn read_units<J>(
    splitter: impl Iterator<Item = Result<Unit, TraceError>>,
    prepare: &mut impl FnMut(Unit) -> J,
    jobs: &SyncSender<Job<J>>,
    tickets: &Receiver<()>,
) {
    let mut seq = 0;
    for unit in splitter {
        if tickets.recv().is_err() {
            return;
        }
        let job = match unit {
            Ok(u) => Job::Unit(seq, prepare(u)),
            Err(e) => {
                let _ = jobs.send(Job::Failed(seq, e));
                return;
            }
        };
        if jobs.send(job).is_err() {
            return;
        }
        seq += 1;
    }
    let _ = jobs.send(Job::End(seq));
}

fn work_units<S, J, T, E: From<TraceError>>(
    mut state: S,
    work: &impl Fn(&mut S, J) -> Result<T, E>,
    jobs: &Mutex<Receiver<Job<J>>>,
    done: &SyncSender<Finished<T, E>>,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let finished = match job {
            Ok(Job::Unit(seq, unit)) => (seq, Some(work(&mut state, unit))),
            Ok(Job::Failed(seq, e)) => (seq, Some(Err(E::from(e)))),
            Ok(Job::End(seq)) => (seq, None),
            Err(_) => return,
        };
        if done.send(finished).is_err() {
            return;
        }
    }
}

/// Hands finished units to `consume` in sequence order until the end marker or the first error.
fn consume_in_order<T, E: From<TraceError>>(
    done: &Receiver<Finished<T, E>>,
    tickets: &SyncSender<()>,
    consume: &mut impl FnMut(T) -> Result<(), E>,
) -> Result<(), E> {
    let mut pending: BTreeMap<u64, Option<Result<T, E>>> = BTreeMap::new();
    let mut next = 0;
    loop {
        while let Some(entry) = pending.remove(&next) {
            match entry {
                None => return Ok(()),
                Some(result) => consume(result?)?,
            }
            // The unit is consumed: the reader may hand out another.
            let _ = tickets.try_send(());
            next += 1;
        }
        match done.recv() {
            Ok((seq, result)) => {
                pending.insert(seq, result);
            }
            // Every worker stopped without the end marker: cannot happen unless one panicked.
            Err(_) => {
                return Err(E::from(TraceError::Io {
                    action: "read",
                    source: std::io::Error::other("a worker thread stopped unexpectedly"),
                }))
            }
        }
    }
}

/// Decodes, transforms and encodes batches; one per thread.
struct Worker<'p> {
    program: &'p Program,
    pool: Arc<BufferPool>,
    vm: Option<Vm<'p>>,
    opts: StreamOptions,
    /// Manifests can be copied as bytes, and decoded lazily (same format in and out).
    raw_ok: bool,
    /// Where an event's changed manifests are encoded before the event is.
    scratch: Vec<u8>,
    /// Whether the objects statements match are recorded (`transform_recording`), and with
    /// what changed objects are now (`Some(true)`).
    record: Option<bool>,
    /// What a query reads of each matched object (`Recording::look`).
    look: Option<&'p Look<'p>>,
    stop: &'p (dyn Fn() -> bool + Sync),
}

impl<'p> Worker<'p> {
    fn new(
        program: &'p Program,
        opts: StreamOptions,
        pool: &Arc<BufferPool>,
        (record, look): (Option<bool>, Option<&'p Look<'p>>),
        stop: &'p (dyn Fn() -> bool + Sync),
    ) -> Self {
        let pool = Arc::clone(pool);
        let raw_ok = opts.input_format == opts.output_format;
        Worker { program, pool, vm: None, opts, raw_ok, scratch: Vec::new(), record, look, stop }
    }

    fn work(&mut self, unit: Unit) -> Result<Done, Halt> {
        match unit {
            Unit::Section(s) => Ok(Done::Section(s)),
            Unit::Events(batch) => {
                let done = self.batch(&batch).map(Done::Events);
                self.pool.put(batch.into_buffer());
                done
            }
        }
    }

    fn batch(&mut self, batch: &EventBatch) -> Result<Encoded, Halt> {
        let start_ts = self.opts.start_ts.or(batch.start_ts);
        let mut out = Encoded {
            bytes: self.pool.get(),
            count: 0,
            summary: Summary::default(),
            matched: Vec::new(),
            events: Vec::new(),
            start_ts,
            latest_ts: None,
        };
        let inserts = timed_inserts(self.program, start_ts)?;
        // The largest `ts` before each event: inserts between it and the event go in a new
        // event (an event no later gets none).
        let mut latest = batch.latest_ts;
        // Every statement runs on every object: every manifest will be decoded, so decode the
        // event and its manifests in one pass (not when recording: a matched object's bytes are
        // decoded again for its value before).
        let one_pass =
            self.raw_ok && self.program.dispatch.is_none() && !self.program.stmts.is_empty() && self.record.is_none();
        for (index, bytes, at) in batch.events() {
            if (self.stop)() {
                return Err(Halt::Stopped);
            }
            if one_pass {
                if let Some(event) = lazy::decode_event(bytes, self.opts.input_format, &self.program.shape) {
                    let applied = event.applied_objs.into_iter().map(Input::Node).collect();
                    let deleted = event.deleted_objs.into_iter().map(Input::Node).collect();
                    let here = Inserts::at(&inserts, index, latest, event.ts);
                    self.event((index, bytes), event.ts, [applied, deleted], start_ts, &mut out, here)?;
                    latest = latest.max(Some(event.ts));
                    continue;
                }
            }
            let (ts, lists) = match decode_raw_event(bytes, self.opts.input_format, index, at)? {
                DecodedEvent::Raw(raw) => {
                    let applied = raw.applied_objs.into_iter().map(Input::Raw).collect();
                    let deleted = raw.deleted_objs.into_iter().map(Input::Raw).collect();
                    (raw.ts, [applied, deleted])
                }
                DecodedEvent::Full(event) => {
                    let applied = event.applied_objs.into_iter().map(Input::Value).collect();
                    let deleted = event.deleted_objs.into_iter().map(Input::Value).collect();
                    (event.ts, [applied, deleted])
                }
            };
            let here = Inserts::at(&inserts, index, latest, ts);
            self.event((index, bytes), ts, lists, start_ts, &mut out, here)?;
            latest = latest.max(Some(ts));
        }
        out.latest_ts = latest;
        Ok(out)
    }

    /// Runs one event's manifests (`[applied_objs, deleted_objs]`) and encodes what is left;
    /// `read` is the event's index and its bytes as read.
    fn event(
        &mut self,
        read: (usize, &[u8]),
        ts: i64,
        lists: [Vec<Input<'_>>; 2],
        start_ts: Option<i64>,
        out: &mut Encoded,
        inserts: Inserts<'_>,
    ) -> Result<(), StreamError> {
        let (index, input) = read;
        for (t, manifests) in inserts.before {
            new_event(out, self.opts.output_format, *t, manifests)?;
        }
        let s = &mut out.summary;
        s.events_read += 1;
        s.objects_read += lists.iter().map(|l| l.len() as u64).sum::<u64>();
        let program = self.program;
        let (format, out_format) = (self.opts.input_format, self.opts.output_format);
        let raw_ok = self.raw_ok;
        let vm = self.vm.get_or_insert_with(|| Vm::new(program, start_ts.unwrap_or(ts)));
        // What is kept of each list: input bytes, or a range of `scratch` where the manifest
        // is encoded in the output format.
        let scratch = &mut self.scratch;
        scratch.clear();
        let mut kept: [Vec<Kept<'_>>; 2] = [Vec::new(), Vec::new()];
        for ((name, list), kept) in ["applied_objs", "deleted_objs"].into_iter().zip(lists).zip(kept.iter_mut()) {
            for (i, input) in list.into_iter().enumerate() {
                let may_match = match &input {
                    // Without dispatch every object runs every statement: no need to look.
                    _ if program.dispatch.is_none() => !program.stmts.is_empty(),
                    Input::Raw(RawManifest { kind: KindProbe::Known(kind), .. }) => vm.may_match(kind.as_deref()),
                    Input::Raw(RawManifest { kind: KindProbe::Unknown, .. }) => true,
                    Input::Value(v) => vm.may_match(v.get("kind").and_then(Value::as_str)),
                    Input::Node(n) => vm.may_match(n.get("kind").and_then(Node::as_str)),
                };
                let locate = |e: TraceError| {
                    e.locate(Location {
                        event: Some(index),
                        path: Some(format!("events[{index}].{name}[{i}]")),
                        ..Location::default()
                    })
                };
                // When recording, the object's kind as it was (`object` when it has none), for
                // the record if a statement matches it.
                let kind = match &input {
                    _ if self.record.is_none() || !may_match => None,
                    Input::Raw(RawManifest { kind: KindProbe::Known(kind), .. }) => {
                        Some(kind.as_deref().unwrap_or("object").to_string())
                    }
                    Input::Raw(m) => {
                        Some(crate::explore::describe(&decode_manifest(m.bytes, format).map_err(locate)?).0)
                    }
                    Input::Value(v) => Some(crate::explore::describe(v).0),
                    Input::Node(n) => Some(n.get("kind").and_then(Node::as_str).unwrap_or("object").to_string()),
                };
                let mut node = match input {
                    Input::Raw(m) if !may_match && raw_ok => {
                        kept.push(Kept::Bytes(m.bytes));
                        continue;
                    }
                    // Only what the program can see is decoded; the rest stays bytes.
                    Input::Raw(m) if raw_ok => lazy::decode(m.bytes, format, &program.shape).map_err(locate)?,
                    Input::Raw(m) => Node::from_value(&decode_manifest(m.bytes, format).map_err(locate)?),
                    Input::Value(v) => Node::from_value(&v),
                    Input::Node(n) => n,
                };
                let outcome = match may_match {
                    true => Some(run_object(vm, &mut node, ts, (index, name, i), program, &mut out.summary, format)?),
                    false => None,
                };
                let deleted = outcome.is_some_and(|o| o.deleted);
                if let (Some(o), Some(kind)) = (outcome.filter(|o| o.matched), kind) {
                    let modified = o.modified && !o.deleted;
                    // As msgpack whatever the run's formats: decoded whole first, as the parts
                    // left undecoded are bytes of the input's format.
                    let after = match modified && self.record == Some(true) {
                        true => {
                            let mut bytes = Vec::new();
                            Node::from_value(&node.to_value(format)).encode(&mut bytes, Format::Msgpack)?;
                            Some(bytes)
                        }
                        false => None,
                    };
                    let looked = self.look.map(|look| look(&node.to_value(format)));
                    out.matched.push(MatchedObject {
                        looked,
                        event: index,
                        ts,
                        list: name,
                        index: i,
                        kind,
                        after,
                        modified,
                        deleted: o.deleted,
                    });
                }
                if !deleted {
                    let start = scratch.len();
                    node.encode(scratch, out_format)?;
                    kept.push(Kept::Encoded(start, scratch.len()));
                }
            }
        }
        let [mut applied, deleted] = kept;
        for m in inserts.into {
            let start = scratch.len();
            Node::from_value(m).encode(scratch, out_format)?;
            applied.push(Kept::Encoded(start, scratch.len()));
            out.summary.objects_inserted += 1;
        }
        if applied.is_empty() && deleted.is_empty() {
            out.summary.events_pruned += 1;
            return Ok(());
        }
        out.summary.events_written += 1;
        let applied: Vec<&[u8]> = applied.iter().map(|k| k.bytes(scratch)).collect();
        let deleted: Vec<&[u8]> = deleted.iter().map(|k| k.bytes(scratch)).collect();
        if out_format == Format::Json && out.count > 0 {
            out.bytes.push(b',');
        }
        let start = out.bytes.len();
        encode_event(&mut out.bytes, out_format, ts, &applied, &deleted)?;
        if self.record.is_some() {
            let end = out.bytes.len();
            let same_as = (out.bytes.get(start..end) == Some(input)).then_some(index);
            out.events.push(WrittenEvent { start, end, ts, applied: applied.len(), deleted: deleted.len(), same_as });
        }
        out.count += 1;
        Ok(())
    }
}

/// The inserts that belong at one event: new events just before it, and manifests added to it.
struct Inserts<'a> {
    before: &'a [(i64, Vec<&'a Value>)],
    into: &'a [&'a Value],
}

impl<'a> Inserts<'a> {
    fn at(all: &'a [(i64, Vec<&'a Value>)], index: usize, latest: Option<i64>, ts: i64) -> Inserts<'a> {
        let (before, into) = crate::bytecode::inserts_around(all, index == 0, latest, ts);
        Inserts { before, into }
    }
}

/// One manifest of an event as it comes in: still bytes, decoded by the careful decoder, or
/// decoded lazily.
enum Input<'a> {
    Raw(RawManifest<'a>),
    Value(Value),
    Node(Node<'a>),
}

/// One manifest of an event on its way out: the input's bytes, or where in the worker's
/// scratch buffer it is encoded.
enum Kept<'a> {
    Bytes(&'a [u8]),
    Encoded(usize, usize),
}

impl<'a> Kept<'a> {
    fn bytes<'s>(&self, scratch: &'s [u8]) -> &'s [u8]
    where
        'a: 's,
    {
        match *self {
            Kept::Bytes(b) => b,
            Kept::Encoded(from, to) => scratch.get(from..to).unwrap_or(&[]),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use skel_trace::{Event, Trace};
    use std::io::Cursor;

    fn trace(format: Format) -> Vec<u8> {
        let cj = |name: &str| json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": name}});
        let pod = |name: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}});
        let events = (0..40)
            .map(|i| Event {
                ts: 100 + 30 * i,
                applied_objs: vec![cj(&format!("c{i}")), pod(&format!("p{i}"))],
                deleted_objs: if i % 3 == 0 { vec![pod(&format!("gone{i}"))] } else { vec![] },
            })
            .collect();
        let t = Trace { events, ..Trace::default() };
        t.write(Cursor::new(Vec::new()), format).unwrap().into_inner()
    }

    fn recording<'r>(after: bool, written: &'r mut Recorder<'r>) -> Recording<'r> {
        Recording { after, written, pool: Arc::default(), look: None }
    }

    /// What `transform_recording` gives, jobs and batches as given: the trace written, the
    /// summary, what it matched, and each written event as the recorder got it (its bytes,
    /// and the input event it is unchanged from).
    fn recorded(src: &str, format: Format, jobs: usize, start_ts: Option<i64>) -> Recorded {
        let program = crate::compile(src).expect("compiles").program;
        let mut writer = TraceWriter::new(Cursor::new(Vec::new()), format);
        let opts = StreamOptions { jobs, batch_bytes: 200, start_ts, ..StreamOptions::new(format, format) };
        let input = trace(format);
        let units = Splitter::new(input.as_slice(), format, opts.batch_bytes).with_event_ts();
        let mut events = Vec::new();
        let mut add = |bytes: &[u8], written: &[WrittenEvent]| {
            events.extend(written.iter().map(|w| (bytes[w.start..w.end].to_vec(), *w)));
            Ok(())
        };
        let (summary, matched) =
            transform_recording(&program, units, &mut writer, opts, recording(true, &mut add), &|| false)
                .unwrap()
                .unwrap();
        let out = writer.finish().unwrap().into_inner();
        Recorded { out, summary, matched, events }
    }

    struct Recorded {
        out: Vec<u8>,
        summary: Summary,
        matched: Vec<MatchedObject>,
        events: Vec<(Vec<u8>, WrittenEvent)>,
    }

    /// A recording run writes what `transform` (`skel apply`) writes, records the same
    /// objects for any jobs and format, and hands the recorder every event written, each
    /// marked with the input event it left as it was.
    #[test]
    fn recording_writes_what_apply_writes() {
        let scripts = [
            r#"modify(kind == "CronJob", apiVersion = "batch/v1"); delete(kind == "Pod" && @t > 10m);"#,
            r#"remove(metadata.name); insert(@t == 95s, {"kind": "Namespace", "metadata": {"name": "n"}});"#,
            r#"delete(kind == "Pod" && metadata.name =~ "^gone");"#,
            r#"insert(@t == 1h, {"kind": "Namespace", "metadata": {"name": "late"}});"#,
        ];
        for src in scripts {
            for start in [None, Some(40)] {
                let program = crate::compile(src).expect("compiles").program;
                let first = recorded(src, Format::Json, 1, start);
                for format in [Format::Json, Format::Msgpack] {
                    let input = trace(format);
                    let mut applied = TraceWriter::new(Cursor::new(Vec::new()), format);
                    let opts = StreamOptions { start_ts: start, ..StreamOptions::new(format, format) };
                    transform(&program, input.as_slice(), &mut applied, opts).unwrap();
                    let applied = applied.finish().unwrap().into_inner();
                    let read = Trace::read(input.as_slice(), format).unwrap();
                    for jobs in [1, 3] {
                        let r = recorded(src, format, jobs, start);
                        let here = format!("{src} from {start:?}, {format:?}, {jobs} jobs");
                        assert_eq!(r.out, applied, "{here}");
                        assert_eq!(r.matched, first.matched, "{here}");
                        assert_eq!(r.summary, first.summary, "{here}");
                        assert_eq!(r.matched.len() as u64, r.summary.objects_matched, "{here}");
                        // The recorder's events are the written trace's events, in order.
                        let out = Trace::read(r.out.as_slice(), format).unwrap().events;
                        assert_eq!(r.events.len(), out.len(), "{here}");
                        for ((bytes, w), event) in r.events.iter().zip(&out) {
                            let decoded = skel_trace::decode_event(bytes, format, 0, SlicePos::default()).unwrap();
                            assert_eq!(&decoded, event, "{here}");
                            assert_eq!(
                                (w.ts, w.applied, w.deleted),
                                (event.ts, event.applied_objs.len(), event.deleted_objs.len())
                            );
                            // Unchanged: the input event's bytes; an event it names is that one.
                            if let Some(i) = w.same_as {
                                assert_eq!(&read.events[i], event, "{here}");
                            }
                        }
                        // Exactly the events no statement matched are marked as unchanged (no
                        // insert here goes into an event: none is at an event's time).
                        let touched: std::collections::HashSet<usize> = r.matched.iter().map(|m| m.event).collect();
                        let unchanged: Vec<usize> = r.events.iter().filter_map(|(_, w)| w.same_as).collect();
                        let untouched: Vec<usize> = (0..read.events.len()).filter(|i| !touched.contains(i)).collect();
                        assert_eq!(unchanged, untouched, "{here}");
                    }
                }
            }
        }
    }

    /// What a recording run records of each object a statement matched, in input order: its
    /// place, kind, whether it was modified or deleted, and (`after`) what a modified one is now.
    #[test]
    fn recording_says_what_each_matched_object_became() {
        let src = r#"modify(kind == "CronJob", apiVersion = "batch/v1");
            delete(kind == "Pod" && metadata.name =~ "^gone");
            delete(metadata.name == "p5" || metadata.name == "c5");"#;
        for format in [Format::Json, Format::Msgpack] {
            let r = recorded(src, format, 3, None);
            assert_eq!(r.summary.events_pruned, 1, "{format:?}");
            let mut expected = Vec::new();
            for i in 0..40usize {
                let ts = 100 + 30 * i as i64;
                let cronjob = |modified, deleted| (i, ts, "applied_objs", 0, "CronJob", modified, deleted);
                expected.push(if i == 5 { cronjob(false, true) } else { cronjob(true, false) });
                if i == 5 {
                    expected.push((i, ts, "applied_objs", 1, "Pod", false, true));
                }
                if i % 3 == 0 {
                    expected.push((i, ts, "deleted_objs", 0, "Pod", false, true));
                }
            }
            let got: Vec<_> = r
                .matched
                .iter()
                .map(|m| (m.event, m.ts, m.list, m.index, m.kind.as_str(), m.modified, m.deleted))
                .collect();
            assert_eq!(got, expected, "{format:?}");
            for m in &r.matched {
                match m.modified {
                    true => {
                        let after: Value = rmp_serde::from_slice(m.after.as_deref().unwrap()).unwrap();
                        assert_eq!(after["apiVersion"], "batch/v1");
                        assert_eq!(after["metadata"]["name"], format!("c{}", m.event));
                    }
                    false => assert_eq!(m.after, None),
                }
            }
        }
    }

    #[test]
    fn stop_stops_the_stream() {
        let program = crate::compile("remove(status);").expect("compiles").program;
        let mut writer = TraceWriter::new(Cursor::new(Vec::new()), Format::Json);
        let opts = StreamOptions { jobs: 2, batch_bytes: 200, ..StreamOptions::new(Format::Json, Format::Json) };
        let input = trace(Format::Json);
        let units = Splitter::new(input.as_slice(), Format::Json, opts.batch_bytes);
        let mut ignore = |_: &[u8], _: &[WrittenEvent]| Ok(());
        let ran =
            transform_recording(&program, units, &mut writer, opts, recording(false, &mut ignore), &|| true).unwrap();
        assert!(ran.is_none());
    }
}
