//! The trace as the REPL keeps it: its sections in memory and, for each event, only where its
//! bytes are (in the trace's own format) and its `ts` and object counts. The bytes stay on disk:
//! in the trace file itself, read again where each event starts, or in the session's scratch
//! file, which holds every event a statement wrote (and a whole trace read from a pipe). A
//! statement's run makes a new version that points at the same bytes for every event it left as
//! it was, so memory holds an index of the trace, not the trace, and `:undo` and `:redo` cost
//! what the statements changed. Events are read back and decoded when a command needs them, a
//! batch at a time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use serde_json::Value;

use super::busy::Meter;
use skel::bytecode::{PathStep, Shape};
use skel::explore::{describe, Address};
use skel::node::Node;
use skel::stream::{self, Recorder, Recording, VisitOptions, Visited, WrittenEvent};
use skel_trace::fsio::TraceInput;
use skel_trace::{
    decode_event, decode_manifest, decode_raw_event, BufferPool, DecodedEvent, Event, EventBatch, Format, Section,
    SlicePos, TraceError, TraceWriter, Unit,
};

/// A version of a trace: its sections around its events, in the order the file has them, and
/// where each event's bytes are.
#[derive(Debug, Clone)]
pub struct Store {
    pub format: Format,
    sections: Arc<[Section]>,
    /// How many of `sections` come before the events; `None`: the trace has no events array.
    events_after: Option<usize>,
    events: Arc<[EventRef]>,
    disk: Arc<Disk>,
    /// The objects by kind and apiVersion, once counted (at `:load`, or for `:stats`).
    stats: Arc<OnceLock<Stats>>,
}

/// Where an event's bytes are, and what the index needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventRef {
    /// Where its bytes start in the trace file, or in the scratch file (`scratch`).
    at: u64,
    len: u32,
    scratch: bool,
    /// Where it starts in the trace file as a person reads it (JSON: line and column; 0 when it
    /// is in the scratch file), for errors.
    line: u32,
    column: u32,
    ts: i64,
    /// How many objects it applies, and how many it deletes.
    applied: u32,
    deleted: u32,
}

impl EventRef {
    fn end(&self) -> u64 {
        self.at + u64::from(self.len)
    }

    /// Where it is, for the decoder's errors: in the trace file's terms when it is there.
    fn pos(&self) -> SlicePos {
        match self.scratch {
            true => SlicePos::default(),
            false => SlicePos { offset: self.at, line: self.line as usize, column: self.column as usize },
        }
    }
}

/// The files a session's versions of one trace read their events from.
#[derive(Debug)]
struct Disk {
    /// The trace file, when it is a regular file; otherwise every event is in `scratch`.
    base: Option<Base>,
    /// An unnamed temporary file (gone with the session), made at the first write.
    scratch: OnceLock<File>,
    /// How far `scratch` is written.
    end: Mutex<u64>,
    /// The buffers events are read into (a statement's pipeline gives them back when done).
    pool: Arc<BufferPool>,
    /// How many bytes of events were read so far (for progress: `Store::meter`).
    read: Arc<AtomicU64>,
}

/// The trace file as it was read, to tell when it changed since.
#[derive(Debug)]
struct Base {
    file: File,
    len: u64,
    modified: Option<SystemTime>,
}

impl Base {
    fn new(file: File) -> io::Result<Base> {
        let meta = file.metadata()?;
        Ok(Base { len: meta.len(), modified: meta.modified().ok(), file })
    }

    /// The file, if it is still what was read (same size and modification time).
    fn unchanged(&self) -> io::Result<&File> {
        let meta = self.file.metadata()?;
        if meta.len() != self.len || meta.modified().ok() != self.modified {
            return Err(io::Error::other(
                "the trace file changed on disk since it was loaded (its size or modification time differ); \
                 `:load` it again",
            ));
        }
        Ok(&self.file)
    }
}

impl Disk {
    fn new(base: Option<File>) -> io::Result<Disk> {
        let base = base.map(Base::new).transpose()?;
        let (scratch, end, pool, read) = (OnceLock::new(), Mutex::new(0), Arc::default(), Arc::default());
        Ok(Disk { base, scratch, end, pool, read })
    }

    /// The two files, the trace file checked once to be as it was read (when `events` need it).
    fn files(&self, events: &[EventRef]) -> io::Result<[Option<&File>; 2]> {
        let base = match events.iter().any(|e| !e.scratch) {
            true => self.base.as_ref().map(Base::unchanged).transpose()?,
            false => None,
        };
        Ok([base, self.scratch.get()])
    }

    /// Writes `bytes` at the end of the scratch file; returns where they start.
    fn append(&self, bytes: &[u8]) -> io::Result<u64> {
        let mut end = self.end.lock().unwrap_or_else(PoisonError::into_inner);
        let file = match self.scratch.get() {
            Some(file) => file,
            None => {
                let made = tempfile::tempfile()?;
                self.scratch.get_or_init(|| made)
            }
        };
        file.write_all_at(bytes, *end)?;
        let at = *end;
        *end += bytes.len() as u64;
        Ok(at)
    }

    /// Reads a batch of `events`' bytes into a buffer of the pool (`read_into`).
    fn read(&self, events: &[EventRef]) -> io::Result<ReadBack> {
        self.read_into(events, self.pool.get())
    }

    /// Reads `events`' bytes into `data`, one read for each run of events that lie close
    /// together in one file; returns the buffer and where each event is in it.
    fn read_into(&self, events: &[EventRef], mut data: Vec<u8>) -> io::Result<ReadBack> {
        /// The most bytes between two events that are still read in one go (JSON's commas and
        /// white space).
        const GAP: u64 = 4096;
        let missing = || io::Error::other("an event's bytes are missing from the session's files (a bug)");
        let [base, scratch] = self.files(events)?;
        let total = events.iter().map(|e| e.len as usize).sum();
        let mut spans = Vec::with_capacity(events.len());
        data.reserve(total);
        let mut rest = events;
        while let Some(first) = rest.first() {
            let mut end = first.end();
            let run = 1 + rest
                .iter()
                .skip(1)
                .take_while(|e| {
                    let close = e.scratch == first.scratch && e.at >= end && e.at - end <= GAP;
                    if close {
                        end = e.end();
                    }
                    close
                })
                .count();
            let (these, after) = rest.split_at(run);
            let start = data.len();
            let len = usize::try_from(end - first.at).map_err(io::Error::other)?;
            data.resize(start + len, 0);
            let file = if first.scratch { scratch } else { base };
            file.ok_or_else(missing)?.read_exact_at(&mut data[start..], first.at)?;
            self.read.fetch_add(len as u64, Ordering::Relaxed);
            for e in these {
                let from = start + usize::try_from(e.at - first.at).map_err(io::Error::other)?;
                spans.push((from, from + e.len as usize));
            }
            rest = after;
        }
        Ok((data, spans))
    }
}

/// Events read back: their bytes, and where each event is in them.
type ReadBack = (Vec<u8>, Vec<(usize, usize)>);

fn read_error(source: io::Error) -> TraceError {
    TraceError::Io { action: "read", source }
}

/// How many objects of each kind and apiVersion a trace applies and deletes.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub by: BTreeMap<(String, String), [u64; 2]>,
}

impl Stats {
    fn add(&mut self, event: &Event) {
        for (deleted, objects) in [(0, &event.applied_objs), (1, &event.deleted_objs)] {
            for v in objects {
                let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("-").to_string();
                let (kind, _) = describe(v);
                self.by.entry((kind, api)).or_default()[deleted] += 1;
            }
        }
    }

    /// Counts an event (`index`, its bytes at `at`) decoding no more of its manifests than
    /// their `kind` and `apiVersion`; returns its `ts` and object counts.
    fn add_bytes(&mut self, bytes: &[u8], format: Format, index: usize, at: SlicePos) -> Result<Counted, TraceError> {
        static NAMES: OnceLock<Shape> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            let mut shape = Shape::default();
            shape.insert([PathStep::Key("kind")].into_iter(), true);
            shape.insert([PathStep::Key("apiVersion")].into_iter(), true);
            shape
        });
        match decode_raw_event(bytes, format, index, at)? {
            DecodedEvent::Raw(raw) => {
                for (deleted, objects) in [(0, &raw.applied_objs), (1, &raw.deleted_objs)] {
                    for m in objects {
                        let node = skel::lazy::decode(m.bytes, format, names)?;
                        let name = |key: &str| node.get(key).and_then(Node::as_str).map(str::to_string);
                        let key =
                            (name("kind").unwrap_or_else(|| "object".into()), name("apiVersion").unwrap_or("-".into()));
                        self.by.entry(key).or_default()[deleted] += 1;
                    }
                }
                Ok(Counted { ts: raw.ts, applied: raw.applied_objs.len(), deleted: raw.deleted_objs.len() })
            }
            DecodedEvent::Full(event) => {
                self.add(&event);
                Ok(Counted { ts: event.ts, applied: event.applied_objs.len(), deleted: event.deleted_objs.len() })
            }
        }
    }

    fn merge(&mut self, other: Stats) {
        for (key, [a, d]) in other.by {
            let n = self.by.entry(key).or_default();
            n[0] += a;
            n[1] += d;
        }
    }
}

/// An event's `ts` and how many objects it applies and deletes.
struct Counted {
    ts: i64,
    applied: usize,
    deleted: usize,
}

/// About how many bytes of events one batch holds (to read, to run a statement on).
const BATCH: usize = 1 << 20;

fn count(n: usize) -> Result<u32, TraceError> {
    u32::try_from(n).map_err(|_| read_error(io::Error::other("an event is larger than 4 GiB or has as many objects")))
}

impl Store {
    /// Reads a trace, checking every event's shell as `skel apply` reads it and counting its
    /// objects for `:stats` (on every core), keeping only where each event is: in the trace
    /// file when it is a regular file, else in the scratch file.
    pub fn read(input: TraceInput) -> Result<(Store, usize), TraceError> {
        /// What a worker makes of a batch: each event's place, `ts` and counts, the events'
        /// bytes when they go to the scratch file, and the stats.
        type Batch = (Vec<EventRef>, Vec<u8>, Stats);
        let TraceInput { reader, format, file, .. } = input;
        let disk = Disk::new(file).map_err(read_error)?;
        let spill = disk.base.is_none();
        let (mut sections, mut events, mut events_after) = (Vec::new(), Vec::new(), None);
        let mut stats = Stats::default();
        let opts = VisitOptions { batch_bytes: BATCH, ..VisitOptions::new(format) };
        let batch = |(): &(), batch: &EventBatch| -> Result<Batch, TraceError> {
            let (mut refs, mut spilled, mut stats) = (Vec::with_capacity(batch.len()), Vec::new(), Stats::default());
            for (index, bytes, pos) in batch.events() {
                let c = stats.add_bytes(bytes, format, index, pos)?;
                let at = match spill {
                    true => {
                        spilled.extend_from_slice(bytes);
                        (spilled.len() - bytes.len()) as u64
                    }
                    false => pos.offset,
                };
                let (len, applied, deleted) = (count(bytes.len())?, count(c.applied)?, count(c.deleted)?);
                let (line, column) = match spill {
                    true => (0, 0),
                    false => (count(pos.line)?, count(pos.column)?),
                };
                refs.push(EventRef { at, len, scratch: spill, line, column, ts: c.ts, applied, deleted });
            }
            Ok((refs, spilled, stats))
        };
        stream::visit(
            reader,
            opts,
            (),
            |_, _| None,
            batch,
            |visited| {
                match visited {
                    Visited::Section(s) => sections.push(s),
                    Visited::Events((mut refs, spilled, batch_stats)) => {
                        events_after.get_or_insert(sections.len());
                        if spill {
                            let at = disk.append(&spilled).map_err(read_error)?;
                            refs.iter_mut().for_each(|r| r.at += at);
                        }
                        events.append(&mut refs);
                        stats.merge(batch_stats);
                    }
                }
                Ok(())
            },
        )?;
        let objects = events.iter().map(|e| (e.applied + e.deleted) as usize).sum();
        let store = Store {
            format,
            sections: sections.into(),
            events_after,
            events: events.into(),
            disk: Arc::new(disk),
            stats: Arc::new(OnceLock::from(stats)),
        };
        Ok((store, objects))
    }

    /// The objects by kind and apiVersion (counted once per version, on every core).
    pub fn stats(&self) -> Result<&Stats, TraceError> {
        if let Some(stats) = self.stats.get() {
            return Ok(stats);
        }
        let batches = self.batches();
        let next = AtomicUsize::new(0);
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()).min(batches.len().max(1));
        let count = || -> Result<Stats, TraceError> {
            let mut stats = Stats::default();
            while let Some(&(from, to, _)) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                self.each_event(from..to, |i, bytes, pos| stats.add_bytes(bytes, self.format, i, pos).map(|_| ()))?;
            }
            Ok(stats)
        };
        let parts: Vec<Result<Stats, TraceError>> = std::thread::scope(|s| {
            let workers: Vec<_> = (1..jobs).map(|_| s.spawn(count)).collect();
            let mut parts = vec![count()];
            parts.extend(workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err(worker_stopped()))));
            parts
        });
        let mut stats = Stats::default();
        for part in parts {
            stats.merge(part?);
        }
        Ok(self.stats.get_or_init(|| stats))
    }

    /// How far a command that reads every event once (a statement, a query, `:stats`,
    /// `:write`) got.
    pub fn meter(&self) -> Meter {
        let total = self.events.iter().map(|e| u64::from(e.len)).sum();
        Meter::new(Arc::clone(&self.disk.read), Some(total))
    }

    /// How a statement's run over `units()` records (`stream::transform_recording`): its
    /// input's buffers go back to this store's pool.
    pub fn recording<'r>(&self, after: bool, written: &'r mut Recorder<'r>) -> Recording<'r> {
        Recording { after, written, pool: Arc::clone(&self.disk.pool), look: None }
    }

    /// The next version, made of what a statement's run writes (`Next::add`, each batch in
    /// order): the events it wrote as they were share their bytes with this version.
    pub fn next(&self) -> Next<'_> {
        Next { from: self, events: Vec::with_capacity(self.events.len()) }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Where its time starts: its first event's `ts`.
    pub fn first_ts(&self) -> Option<i64> {
        self.events.first().map(|e| e.ts)
    }

    pub fn last_ts(&self) -> Option<i64> {
        self.events.last().map(|e| e.ts)
    }

    /// Every object's address (`EVENT.OBJECT`, the deleted ones after the applied ones).
    pub fn addresses(&self) -> impl Iterator<Item = Address> + '_ {
        self.events
            .iter()
            .enumerate()
            .flat_map(|(event, e)| (0..(e.applied + e.deleted) as usize).map(move |object| Address { event, object }))
    }

    /// How many objects event `event` has.
    pub fn objects_in(&self, event: usize) -> usize {
        self.events.get(event).map_or(0, |e| (e.applied + e.deleted) as usize)
    }

    /// The address of object `index` of an event's `list` (`applied_objs` or `deleted_objs`).
    pub fn address(&self, event: usize, list: &str, index: usize) -> Address {
        let applied = self.events.get(event).map_or(0, |e| e.applied as usize);
        Address { event, object: if list == "deleted_objs" { applied + index } else { index } }
    }

    /// The size of event `index`'s bytes.
    pub fn event_bytes(&self, index: usize) -> usize {
        self.events.get(index).map_or(0, |e| e.len as usize)
    }

    /// Event `index`, decoded.
    pub fn event(&self, index: usize) -> Option<Result<Event, TraceError>> {
        let e = self.events.get(index)?;
        Some(
            self.disk
                .read_into(std::slice::from_ref(e), Vec::new())
                .map_err(read_error)
                .and_then(|(data, _)| decode_event(&data, self.format, index, e.pos())),
        )
    }

    /// Event `index`'s bytes, as the trace holds them.
    pub fn bytes(&self, index: usize) -> Option<Result<Vec<u8>, TraceError>> {
        let e = self.events.get(index)?;
        Some(self.disk.read_into(std::slice::from_ref(e), Vec::new()).map(|(data, _)| data).map_err(read_error))
    }

    /// The object at `at` of an event whose bytes are `bytes` (`Store::bytes`), decoding that
    /// object alone: its slot (`applied_objs[2]`), its value and the event's `ts`.
    pub fn object(&self, bytes: &[u8], at: Address) -> Option<Result<(String, Value, i64), TraceError>> {
        let decoded = match decode_raw_event(bytes, self.format, at.event, SlicePos::default()) {
            Ok(decoded) => decoded,
            Err(e) => return Some(Err(e)),
        };
        let slot = |applied: usize| match at.object.checked_sub(applied) {
            None => ("applied_objs", at.object),
            Some(i) => ("deleted_objs", i),
        };
        match decoded {
            DecodedEvent::Raw(raw) => {
                let (list, i) = slot(raw.applied_objs.len());
                let m = if list == "applied_objs" { &raw.applied_objs } else { &raw.deleted_objs }.get(i)?;
                Some(decode_manifest(m.bytes, self.format).map(|v| (format!("{list}[{i}]"), v, raw.ts)))
            }
            DecodedEvent::Full(mut event) => {
                let (list, i) = slot(event.applied_objs.len());
                let objects = if list == "applied_objs" { &mut event.applied_objs } else { &mut event.deleted_objs };
                let v = objects.get_mut(i).map(Value::take)?;
                Some(Ok((format!("{list}[{i}]"), v, event.ts)))
            }
        }
    }

    /// Every event, decoded one at a time (read a batch at a time), with its index.
    pub fn decoded(&self) -> impl Iterator<Item = (usize, Result<Event, TraceError>)> + '_ {
        self.batches().into_iter().flat_map(move |(from, to, _)| {
            let mut events = Vec::with_capacity(to - from);
            let read = self.each_event(from..to, |i, bytes, pos| {
                events.push((i, decode_event(bytes, self.format, i, pos)));
                Ok(())
            });
            if let Err(e) = read {
                events.push((from, Err(e)));
            }
            events
        })
    }

    /// Whether both hold the same events, byte for byte (their sections are the same by
    /// construction: a statement changes none).
    pub fn same_events(&self, other: &Store) -> Result<bool, TraceError> {
        if self.len() != other.len() {
            return Ok(false);
        }
        for (a, b) in self.events.iter().zip(other.events.iter()) {
            let same_place = a == b && Arc::ptr_eq(&self.disk, &other.disk);
            if same_place {
                continue;
            }
            if (a.len, a.ts, a.applied, a.deleted) != (b.len, b.ts, b.applied, b.deleted) {
                return Ok(false);
            }
            let read = |store: &Store, e: &EventRef| {
                store.disk.read_into(std::slice::from_ref(e), Vec::new()).map_err(read_error)
            };
            if read(self, a)?.0 != read(other, b)?.0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The trace, written as `skel apply` writes it: in this store's format, its events as
    /// their bytes; in another format, each event decoded and written again.
    pub fn write<W: Write + std::io::Seek>(&self, out: W, format: Format) -> Result<W, TraceError> {
        let mut writer = TraceWriter::new(out, format);
        let events_after = self.events_after.unwrap_or(usize::MAX);
        for (i, section) in self.sections.iter().enumerate() {
            if i == events_after {
                self.write_events(&mut writer, format)?;
            }
            writer.section(section)?;
        }
        if self.events_after.is_some_and(|at| at >= self.sections.len()) {
            self.write_events(&mut writer, format)?;
        }
        writer.finish()
    }

    fn write_events<W: Write + std::io::Seek>(
        &self,
        writer: &mut TraceWriter<W>,
        format: Format,
    ) -> Result<(), TraceError> {
        writer.begin_events()?;
        for (from, to, _) in self.batches() {
            self.each_event(from..to, |i, bytes, pos| match format == self.format {
                true => writer.encoded_events(bytes, 1),
                false => writer.event(&decode_event(bytes, self.format, i, pos)?),
            })?;
        }
        Ok(())
    }

    /// Reads events `range` (one batch) and hands each to `f` with its index.
    fn each_event(
        &self,
        range: std::ops::Range<usize>,
        mut f: impl FnMut(usize, &[u8], SlicePos) -> Result<(), TraceError>,
    ) -> Result<(), TraceError> {
        let from = range.start;
        let events = self.events.get(range).unwrap_or_default();
        let (data, spans) = self.disk.read(events).map_err(read_error)?;
        for (i, ((start, end), e)) in spans.into_iter().zip(events).enumerate() {
            f(from + i, data.get(start..end).unwrap_or_default(), e.pos())?;
        }
        self.disk.pool.put(data);
        Ok(())
    }

    /// The events cut into batches of about `BATCH` bytes: each batch's first and past-the-last
    /// event, and the largest `ts` before it (where inserts go).
    fn batches(&self) -> Vec<(usize, usize, Option<i64>)> {
        let mut batches = Vec::new();
        let (mut from, mut latest) = (0, None);
        while from < self.events.len() {
            let (mut to, mut bytes, first_latest) = (from, 0, latest);
            while let Some(e) = self.events.get(to).filter(|_| to == from || bytes < BATCH) {
                bytes += e.len as usize;
                latest = latest.max(Some(e.ts));
                to += 1;
            }
            batches.push((from, to, first_latest));
            from = to;
        }
        batches
    }

    /// The trace as the statements' pipeline reads it: its sections, and its events in
    /// batches of about `BATCH` bytes, each read from disk when the pipeline takes it (a few
    /// at a time), never the whole trace at once.
    pub fn units(&self) -> impl Iterator<Item = Result<Unit, TraceError>> + Send + '_ {
        let before = self.events_after.unwrap_or(self.sections.len());
        let start = self.first_ts();
        let events = self.batches().into_iter().map(move |(from, to, latest)| {
            let events = self.events.get(from..to).unwrap_or_default();
            let (data, spans) = self.disk.read(events).map_err(read_error)?;
            let spans = spans.into_iter().zip(events).map(|((a, b), e)| (a, b, e.pos()));
            Ok(Unit::Events(EventBatch::from_parts(from, start, latest, data, spans)))
        });
        let sections =
            |range: std::ops::Range<usize>| self.sections[range].iter().cloned().map(|s| Ok(Unit::Section(s)));
        sections(0..before).chain(events).chain(sections(before..self.sections.len()))
    }
}

fn worker_stopped() -> TraceError {
    read_error(io::Error::other("a worker thread stopped unexpectedly"))
}

/// The version a statement's run is making (`Store::next`).
pub struct Next<'s> {
    from: &'s Store,
    events: Vec<EventRef>,
}

impl Next<'_> {
    /// Takes a batch of events the run wrote (`stream::transform_recording`): an event it
    /// wrote as it read it points where it was; the others go to the scratch file, in one write.
    pub fn add(&mut self, bytes: &[u8], written: &[WrittenEvent]) -> Result<(), TraceError> {
        let (mut new, mut placed) = (Vec::new(), Vec::new());
        for w in written {
            if let Some(same) = w.same_as.and_then(|i| self.from.events.get(i)) {
                self.events.push(*same);
                continue;
            }
            let event = bytes.get(w.start..w.end).unwrap_or_default();
            placed.push(self.events.len());
            self.events.push(EventRef {
                at: new.len() as u64,
                len: count(event.len())?,
                scratch: true,
                line: 0,
                column: 0,
                ts: w.ts,
                applied: count(w.applied)?,
                deleted: count(w.deleted)?,
            });
            new.extend_from_slice(event);
        }
        if !new.is_empty() {
            let at = self.from.disk.append(&new).map_err(|source| TraceError::Io { action: "write", source })?;
            for i in placed {
                if let Some(e) = self.events.get_mut(i) {
                    e.at += at;
                }
            }
        }
        Ok(())
    }

    /// The version made.
    pub fn finish(self) -> Store {
        let from = self.from;
        // A trace without events gets an events array (at its end) when a statement inserts.
        let events_after = from.events_after.or((!self.events.is_empty()).then_some(from.sections.len()));
        Store {
            format: from.format,
            sections: Arc::clone(&from.sections),
            events_after,
            events: self.events.into(),
            disk: Arc::clone(&from.disk),
            stats: Arc::default(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use skel::stream::StreamOptions;
    use skel_trace::Trace;
    use std::io::{Cursor, Seek};

    fn trace(format: Format) -> Vec<u8> {
        let pod = |n: usize| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{n}")}});
        let events = (0..5).map(|i| Event { ts: 10 * i as i64, applied_objs: vec![pod(i)], deleted_objs: vec![] });
        let t = Trace { events: events.collect(), ..Trace::default() };
        t.write(Cursor::new(Vec::new()), format).unwrap().into_inner()
    }

    /// A trace as `:load` opens it: from a regular file (read again where it is), or from a
    /// pipe (copied to the scratch file).
    fn open(bytes: &[u8], format: Format, from_file: bool) -> (Store, usize, Option<tempfile::NamedTempFile>) {
        if !from_file {
            let input = TraceInput { reader: Box::new(Cursor::new(bytes.to_vec())), format, len: None, file: None };
            let (store, objects) = Store::read(input).unwrap();
            return (store, objects, None);
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file.rewind().unwrap();
        let again = file.reopen().unwrap();
        let reader = Box::new(io::BufReader::new(file.reopen().unwrap()));
        let input = TraceInput { reader, format, len: Some(bytes.len() as u64), file: Some(again) };
        let (store, objects) = Store::read(input).unwrap();
        (store, objects, Some(file))
    }

    /// The index's cost per event, as docs/repl.md gives it.
    #[test]
    fn an_event_costs_40_bytes_of_index() {
        assert_eq!(std::mem::size_of::<EventRef>(), 40);
    }

    #[test]
    fn a_store_writes_the_trace_it_read() {
        for format in [Format::Json, Format::Msgpack] {
            for from_file in [true, false] {
                let bytes = trace(format);
                let (store, objects, _file) = open(&bytes, format, from_file);
                assert_eq!((store.len(), objects, store.first_ts()), (5, 5, Some(0)));
                let here = format!("{format:?}, from a file: {from_file}");
                assert_eq!(store.write(Cursor::new(Vec::new()), format).unwrap().into_inner(), bytes, "{here}");
                let other = if format == Format::Json { Format::Msgpack } else { Format::Json };
                let converted = store.write(Cursor::new(Vec::new()), other).unwrap().into_inner();
                assert_eq!(converted, trace(other), "{here}");
                assert_eq!(store.event(2).unwrap().unwrap().ts, 20);
                assert_eq!(store.stats().unwrap().by.get(&("Pod".into(), "v1".into())), Some(&[5, 0]));
                assert_eq!(store.disk.scratch.get().is_some(), !from_file, "{here}");
            }
        }
    }

    /// Runs `src` over a store as the REPL does (times from its first event, or 0): the next
    /// version.
    fn run(store: &Store, src: &str) -> Store {
        let program = skel::compile(src).unwrap().program;
        let start_ts = Some(store.first_ts().unwrap_or(0));
        let opts = StreamOptions { start_ts, ..StreamOptions::new(store.format, store.format) };
        let mut writer = TraceWriter::new(Cursor::new(Vec::new()), store.format);
        let mut next = store.next();
        let mut add = |bytes: &[u8], written: &[WrittenEvent]| next.add(bytes, written);
        stream::transform_recording(
            &program,
            store.units(),
            &mut writer,
            opts,
            store.recording(false, &mut add),
            &|| false,
        )
        .unwrap()
        .unwrap();
        next.finish()
    }

    #[test]
    fn a_new_version_keeps_only_the_events_it_changed() {
        for format in [Format::Json, Format::Msgpack] {
            let bytes = trace(format);
            let (store, _, _file) = open(&bytes, format, true);
            let next = run(
                &store,
                r#"modify(metadata.name == "p3", metadata.name = "changed"); delete(metadata.name == "p1");"#,
            );
            assert_eq!(next.len(), 4);
            let scratch: Vec<bool> = next.events.iter().map(|e| e.scratch).collect();
            assert_eq!(scratch, [false, false, true, false], "{format:?}");
            assert_eq!(next.event(2).unwrap().unwrap().applied_objs[0]["metadata"]["name"], "changed");
            assert!(!next.same_events(&store).unwrap());
            assert_eq!(next.stats().unwrap().by.get(&("Pod".into(), "v1".into())), Some(&[4, 0]));
            // The same statement again makes a version with the same bytes, written again.
            let again = run(
                &store,
                r#"modify(metadata.name == "p3", metadata.name = "changed"); delete(metadata.name == "p1");"#,
            );
            assert!(again.same_events(&next).unwrap());
            // An older version still reads its own events.
            assert_eq!(store.write(Cursor::new(Vec::new()), format).unwrap().into_inner(), bytes);
        }
    }

    #[test]
    fn a_trace_changed_on_disk_is_said_to_have_changed() {
        let bytes = trace(Format::Json);
        let (store, _, file) = open(&bytes, Format::Json, true);
        let file = file.unwrap();
        std::fs::write(file.path(), b"{}").unwrap();
        let err = store.event(0).unwrap().unwrap_err().to_string();
        assert!(err.contains("changed on disk since it was loaded"), "{err}");
    }

    #[test]
    fn inserts_into_a_trace_without_events_give_it_events_at_its_end() {
        let t = Trace::default();
        let bytes = t.write(Cursor::new(Vec::new()), Format::Json).unwrap().into_inner();
        let (store, _, _file) = open(&bytes, Format::Json, true);
        let next =
            run(&store, r#"insert(@t == 0s, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}});"#);
        assert_eq!(next.len(), 1);
        let written = next.write(Cursor::new(Vec::new()), Format::Json).unwrap().into_inner();
        assert_eq!(Trace::read(written.as_slice(), Format::Json).unwrap().events.len(), 1);
    }
}
