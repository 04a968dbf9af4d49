//! The trace as the REPL keeps it: each event's bytes as the trace holds them (in its own
//! format), and its sections. A statement's run makes a new version that shares every event
//! it left as it was with the version before (`Arc`), so `:undo` and `:redo` cost what the
//! statements changed, not a copy of the trace each. Events are decoded when a command needs
//! them, one at a time.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use skel::explore::{describe, Address};
use skel::stream::{self, VisitOptions, Visited};
use skel_trace::{
    decode_event, decode_raw_event, DecodedEvent, Event, EventBatch, Format, Section, SlicePos, Splitter, TraceError,
    TraceWriter, Unit,
};

/// A trace: its sections around its events, in the order the file has them, and its events
/// as bytes.
#[derive(Debug, Clone)]
pub struct Store {
    pub format: Format,
    sections: Vec<Section>,
    /// How many of `sections` come before the events; `None`: the trace has no events array.
    events_after: Option<usize>,
    events: Vec<Arc<[u8]>>,
    ts: Vec<i64>,
    /// Each event's objects: how many are applied, how many deleted.
    counts: Vec<(usize, usize)>,
    /// The objects by kind and apiVersion, once counted (at `:load`, or for `:stats`).
    stats: OnceLock<Stats>,
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

    fn merge(&mut self, other: Stats) {
        for (key, [a, d]) in other.by {
            let n = self.by.entry(key).or_default();
            n[0] += a;
            n[1] += d;
        }
    }
}

/// How big the batches are that a trace is cut into to read it.
const BATCH: usize = 1 << 20;

impl Store {
    /// Reads a trace, checking every event as `Trace::read` does: each is decoded once (on
    /// every core, as `skel apply` reads), counted for `:stats`, and kept as its bytes.
    pub fn read(input: impl Read + Send, format: Format) -> Result<(Store, usize), TraceError> {
        /// What a worker makes of a batch: each event's bytes, `ts` and counts, and the stats.
        type Batch = (Vec<(Arc<[u8]>, i64, (usize, usize))>, Stats);
        let mut store = Store::empty(format);
        let mut stats = Stats::default();
        let opts = VisitOptions { batch_bytes: BATCH, ..VisitOptions::new(format) };
        let events = |(): &(), batch: &EventBatch| -> Result<Batch, TraceError> {
            let mut out = (Vec::new(), Stats::default());
            for (index, bytes, at) in batch.events() {
                let event = decode_event(bytes, format, index, at)?;
                out.1.add(&event);
                out.0.push((Arc::from(bytes), event.ts, (event.applied_objs.len(), event.deleted_objs.len())));
            }
            Ok(out)
        };
        stream::visit(
            input,
            opts,
            (),
            |_, _| None,
            events,
            |visited| {
                match visited {
                    Visited::Section(s) => store.sections.push(s),
                    Visited::Events((events, batch_stats)) => {
                        store.events_after.get_or_insert(store.sections.len());
                        for (bytes, ts, counts) in events {
                            store.events.push(bytes);
                            store.ts.push(ts);
                            store.counts.push(counts);
                        }
                        stats.merge(batch_stats);
                    }
                }
                Ok(())
            },
        )?;
        let objects = store.counts.iter().map(|(a, d)| a + d).sum();
        let _ = store.stats.set(stats);
        Ok((store, objects))
    }

    fn empty(format: Format) -> Store {
        Store {
            format,
            sections: Vec::new(),
            events_after: None,
            events: Vec::new(),
            ts: Vec::new(),
            counts: Vec::new(),
            stats: OnceLock::new(),
        }
    }

    /// The objects by kind and apiVersion (counted once per version).
    pub fn stats(&self) -> &Stats {
        self.stats.get_or_init(|| {
            let mut stats = Stats::default();
            for event in self.decoded().filter_map(|(_, e)| e.ok()) {
                stats.add(&event);
            }
            stats
        })
    }

    /// The trace a statement's run wrote (in this store's format): its events that are as
    /// they were in `self` share their bytes with it.
    pub fn next(&self, written: &[u8]) -> Result<Store, TraceError> {
        let format = self.format;
        let known: HashMap<&[u8], usize> = self.events.iter().enumerate().map(|(i, e)| (&e[..], i)).collect();
        let mut next = Store::split(written, format, |bytes, index, at| {
            if let Some(&i) = known.get(bytes) {
                if let (Some(event), Some(&ts), Some(&(a, d))) =
                    (self.events.get(i), self.ts.get(i), self.counts.get(i))
                {
                    return Ok((Arc::clone(event), ts, a, d));
                }
            }
            let (ts, a, d) = match decode_raw_event(bytes, format, index, at)? {
                DecodedEvent::Raw(raw) => (raw.ts, raw.applied_objs.len(), raw.deleted_objs.len()),
                DecodedEvent::Full(event) => (event.ts, event.applied_objs.len(), event.deleted_objs.len()),
            };
            Ok((Arc::from(bytes), ts, a, d))
        })?;
        // Every event pruned: the run still wrote the (empty) events array where it was, which
        // reading it back cannot tell.
        next.events_after = next.events_after.or(self.events_after);
        Ok(next)
    }

    /// Cuts a trace into its sections and events; `read` reads each event: its bytes to keep,
    /// its `ts`, and how many objects it applies and deletes.
    fn split(
        input: impl Read,
        format: Format,
        mut read: impl FnMut(&[u8], usize, SlicePos) -> Result<(Arc<[u8]>, i64, usize, usize), TraceError>,
    ) -> Result<Store, TraceError> {
        let mut store = Store::empty(format);
        for unit in Splitter::new(input, format, BATCH) {
            match unit? {
                Unit::Section(s) => store.sections.push(s),
                Unit::Events(batch) => {
                    store.events_after.get_or_insert(store.sections.len());
                    for (index, bytes, at) in batch.events() {
                        let (kept, ts, applied, deleted) = read(bytes, index, at)?;
                        store.ts.push(ts);
                        store.counts.push((applied, deleted));
                        store.events.push(kept);
                    }
                }
            }
        }
        Ok(store)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Where its time starts: its first event's `ts`.
    pub fn first_ts(&self) -> Option<i64> {
        self.ts.first().copied()
    }

    /// Every object's address (`EVENT.OBJECT`, the deleted ones after the applied ones).
    pub fn addresses(&self) -> impl Iterator<Item = Address> + '_ {
        self.counts
            .iter()
            .enumerate()
            .flat_map(|(event, (a, d))| (0..a + d).map(move |object| Address { event, object }))
    }

    /// How many objects event `event` has.
    pub fn objects_in(&self, event: usize) -> usize {
        self.counts.get(event).map_or(0, |(a, d)| a + d)
    }

    /// The address of object `index` of an event's `list` (`applied_objs` or `deleted_objs`).
    pub fn address(&self, event: usize, list: &str, index: usize) -> Address {
        let applied = self.counts.get(event).map_or(0, |c| c.0);
        Address { event, object: if list == "deleted_objs" { applied + index } else { index } }
    }

    pub fn last_ts(&self) -> Option<i64> {
        self.ts.last().copied()
    }

    /// The size of event `index`'s bytes.
    pub fn event_bytes(&self, index: usize) -> usize {
        self.events.get(index).map_or(0, |e| e.len())
    }

    /// Event `index`, decoded.
    pub fn event(&self, index: usize) -> Option<Result<Event, TraceError>> {
        let bytes = self.events.get(index)?;
        Some(decode_event(bytes, self.format, index, SlicePos::default()))
    }

    /// Every event, decoded one at a time, with its index.
    pub fn decoded(&self) -> impl Iterator<Item = (usize, Result<Event, TraceError>)> + '_ {
        (0..self.len()).filter_map(|i| Some((i, self.event(i)?)))
    }

    /// Whether both hold the same events (their sections are the same by construction: a
    /// statement changes none).
    pub fn same_events(&self, other: &Store) -> bool {
        self.events == other.events
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
        for (i, bytes) in self.events.iter().enumerate() {
            if format == self.format {
                writer.encoded_events(bytes, 1)?;
            } else {
                writer.event(&decode_event(bytes, self.format, i, SlicePos::default())?)?;
            }
        }
        Ok(())
    }

    /// The trace as the statements' pipeline reads it: its sections, and its events in
    /// batches of about `BATCH` bytes, each copied when the pipeline takes it (a few at a time),
    /// not the whole trace at once.
    pub fn units(&self) -> impl Iterator<Item = Result<Unit, TraceError>> + Send + '_ {
        let before = self.events_after.unwrap_or(self.sections.len());
        // Each batch: its events, and the largest `ts` before it (where inserts go).
        let mut batches = Vec::new();
        let (mut from, mut latest) = (0, None);
        while from < self.events.len() {
            let (mut to, mut bytes, first_latest) = (from, 0, latest);
            while to < self.events.len() && (to == from || bytes < BATCH) {
                bytes += self.events[to].len();
                latest = latest.max(self.ts.get(to).copied());
                to += 1;
            }
            batches.push((from, to, first_latest));
            from = to;
        }
        let start = self.first_ts();
        let events = batches.into_iter().map(move |(from, to, latest)| {
            let events = self.events[from..to].iter().map(|e| &e[..]);
            Ok(Unit::Events(EventBatch::of_events(from, start, latest, events)))
        });
        let sections =
            |range: std::ops::Range<usize>| self.sections[range].iter().cloned().map(|s| Ok(Unit::Section(s)));
        sections(0..before).chain(events).chain(sections(before..self.sections.len()))
    }

    /// About how many bytes the trace is.
    pub fn size(&self) -> usize {
        self.events.iter().map(|e| e.len() + 1).sum::<usize>() + (64 << 10)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use skel_trace::Trace;
    use std::io::Cursor;

    fn trace(format: Format) -> Vec<u8> {
        let pod = |n: usize| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{n}")}});
        let events = (0..5).map(|i| Event { ts: 10 * i as i64, applied_objs: vec![pod(i)], deleted_objs: vec![] });
        let t = Trace { events: events.collect(), ..Trace::default() };
        t.write(Cursor::new(Vec::new()), format).unwrap().into_inner()
    }

    #[test]
    fn a_store_writes_the_trace_it_read() {
        for format in [Format::Json, Format::Msgpack] {
            let bytes = trace(format);
            let (store, objects) = Store::read(bytes.as_slice(), format).unwrap();
            assert_eq!((store.len(), objects, store.first_ts()), (5, 5, Some(0)));
            assert_eq!(store.write(Cursor::new(Vec::new()), format).unwrap().into_inner(), bytes, "{format:?}");
            let other = if format == Format::Json { Format::Msgpack } else { Format::Json };
            let converted = store.write(Cursor::new(Vec::new()), other).unwrap().into_inner();
            assert_eq!(converted, trace(other));
            assert_eq!(store.event(2).unwrap().unwrap().ts, 20);
        }
    }

    #[test]
    fn a_new_version_shares_the_events_it_did_not_change() {
        let bytes = trace(Format::Msgpack);
        let (store, _) = Store::read(bytes.as_slice(), Format::Msgpack).unwrap();
        let mut t = Trace::read(bytes.as_slice(), Format::Msgpack).unwrap();
        t.events[3].applied_objs[0]["metadata"]["name"] = json!("changed");
        t.events.remove(1);
        let written = t.write(Cursor::new(Vec::new()), Format::Msgpack).unwrap().into_inner();
        let next = store.next(&written).unwrap();
        assert_eq!(next.len(), 4);
        let shared: Vec<bool> =
            next.events.iter().map(|e| store.events.iter().any(|old| Arc::ptr_eq(old, e))).collect();
        assert_eq!(shared, [true, true, false, true]);
        assert!(!next.same_events(&store));
    }
}
