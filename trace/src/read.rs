//! `read_trace`: streams a trace (JSON or msgpack) to a `TraceVisitor`, one event at a time.
//!
//! The top-level map is decoded by a serde visitor; `events` by a seed that hands each event to
//! the visitor as soon as it is decoded, so memory holds one event plus the other sections.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::config::Config;
use crate::decode::{reject, Found, I64Seed, IntSeed, ManifestSeed, Reject, Stash, ValueSeed};
use crate::error::{Location, ReadError, TraceError, MAX_DEPTH};
use crate::index::check_index;
use crate::lifecycles::LifecyclesSeed;
use crate::model::{Event, Format, Manifest, Section, SECTION_NAMES, TRACE_VERSION};

/// Receives a trace as it is read: sections in input order, events one by one.
pub trait TraceVisitor {
    type Error;
    fn section(&mut self, section: Section) -> Result<(), Self::Error>;
    /// `index` is the 0-based position of the event in the input's `events` array.
    fn event(&mut self, index: usize, event: Event) -> Result<(), Self::Error>;
}

/// Reads a whole trace from `input`, calling `visitor` for every section and event.
///
/// All five top-level keys are required, in any order; duplicates are errors and unknown keys
/// are skipped. An error from the visitor stops reading and comes back as `ReadError::Visitor`.
pub fn read_trace<R: Read, V: TraceVisitor>(
    input: R,
    format: Format,
    visitor: &mut V,
) -> Result<(), ReadError<V::Error>> {
    let mut input = BufReader::new(input);
    if is_empty(&mut input)? {
        return Err(ReadError::Trace(TraceError::Empty { format }));
    }
    let mut stash = Stash::new(format);
    let mut stopped = None;
    let top = TopVisitor { stash: &mut stash, visitor, stopped: &mut stopped };
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_reader(input);
            match de.deserialize_any(top) {
                Ok(()) => de.end().map_err(|e| ReadError::Trace(json_trailing(e))),
                Err(e) => {
                    let at = json_location(&e);
                    let ours = e.classify() == serde_json::error::Category::Data;
                    Err(resolve(stash, stopped, ours, at, || TraceError::from_json(e)))
                }
            }
        }
        Format::Msgpack => {
            let mut de = rmp_serde::Deserializer::new(CountingReader { inner: input, count: 0 });
            de.set_max_depth(MAX_DEPTH);
            let res = de.deserialize_any(top);
            let mut offset = de.get_ref().count;
            match res {
                Ok(()) => msgpack_trailing(de.get_mut()).map_err(ReadError::Trace),
                Err(e) => {
                    use rmp_serde::decode::Error as E;
                    // A bad marker has been read already; point at it rather than past it.
                    if matches!(e, E::TypeMismatch(_)) {
                        offset = offset.saturating_sub(1);
                    }
                    let at = Location { offset: Some(offset), ..Location::default() };
                    let ours = matches!(e, E::Syntax(_));
                    Err(resolve(stash, stopped, ours, at, || msgpack_error(e)))
                }
            }
        }
    }
}

/// Whether the input has no bytes at all (told apart from a truncated trace for a clearer error).
fn is_empty<R: Read>(input: &mut BufReader<R>) -> Result<bool, TraceError> {
    loop {
        match input.fill_buf() {
            Ok(buf) => return Ok(buf.is_empty()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(TraceError::Io { action: "read", source }),
        }
    }
}

/// Picks the error to report: the visitor's, the stashed one (when the deserializer's error is
/// just its stand-in), or the deserializer's own; then gives it the position and context.
fn resolve<E>(
    stash: Stash,
    stopped: Option<E>,
    ours: bool,
    mut at: Location,
    theirs: impl FnOnce() -> TraceError,
) -> ReadError<E> {
    if let Some(e) = stopped {
        return ReadError::Visitor(e);
    }
    at.path = stash.path();
    at.event = stash.ctx.event;
    let err = match stash.problem {
        Some(problem) if ours => problem,
        _ => theirs(),
    };
    ReadError::Trace(err.locate(at))
}

pub(crate) fn json_location(e: &serde_json::Error) -> Location {
    if e.line() == 0 {
        Location::default()
    } else {
        Location { line: Some(e.line()), column: Some(e.column()), ..Location::default() }
    }
}

fn json_trailing(e: serde_json::Error) -> TraceError {
    match e.classify() {
        serde_json::error::Category::Io => TraceError::Io { action: "read", source: e.into() },
        _ => TraceError::TrailingData { location: Box::new(json_location(&e)) },
    }
}

pub(crate) fn msgpack_error(e: rmp_serde::decode::Error) -> TraceError {
    use rmp_serde::decode::Error as E;
    let message = match e {
        E::InvalidMarkerRead(source) | E::InvalidDataRead(source) => {
            return if source.kind() == io::ErrorKind::UnexpectedEof {
                TraceError::UnexpectedEof { location: Box::default() }
            } else {
                TraceError::Io { action: "read", source }
            };
        }
        E::TypeMismatch(marker) => {
            format!("`0x{:02x}` is not a valid msgpack marker", marker.to_u8())
        }
        E::OutOfRange => "a number is out of range".into(),
        E::LengthMismatch(_) => "a list is longer than expected".into(),
        E::Uncategorized(message) | E::Syntax(message) => message,
        E::Utf8Error(_) => "a string is not valid UTF-8".into(),
        E::DepthLimitExceeded => return TraceError::TooDeep { limit: MAX_DEPTH, location: Box::default() },
    };
    TraceError::Syntax { format: Format::Msgpack, message, location: Box::default() }
}

/// After the top-level map, the input must end.
fn msgpack_trailing<R: Read>(rd: &mut CountingReader<R>) -> Result<(), TraceError> {
    let at = rd.count;
    let mut byte = [0u8; 1];
    loop {
        match rd.read(&mut byte) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(TraceError::TrailingData {
                    location: Box::new(Location { offset: Some(at), ..Location::default() }),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(TraceError::Io { action: "read", source }),
        }
    }
}

/// Counts the bytes handed to the msgpack decoder, for error offsets.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// The top-level map

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopKey {
    Version,
    Config,
    Events,
    Index,
    PodLifecycles,
    Unknown,
}

impl TopKey {
    /// The key's position in `SECTION_NAMES`.
    fn bit(self) -> u8 {
        match self {
            TopKey::Version => 1,
            TopKey::Config => 1 << 1,
            TopKey::Events => 1 << 2,
            TopKey::Index => 1 << 3,
            TopKey::PodLifecycles => 1 << 4,
            TopKey::Unknown => 0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TopKey::Version => "version",
            TopKey::Config => "config",
            TopKey::Events => "events",
            TopKey::Index => "index",
            TopKey::PodLifecycles => "pod_lifecycles",
            TopKey::Unknown => "",
        }
    }
}

struct TopVisitor<'a, V: TraceVisitor> {
    stash: &'a mut Stash,
    visitor: &'a mut V,
    stopped: &'a mut Option<V::Error>,
}

impl<V: TraceVisitor> TopVisitor<'_, V> {
    fn deliver<E: de::Error>(&mut self, section: Section) -> Result<(), E> {
        self.visitor.section(section).map_err(|e| {
            *self.stopped = Some(e);
            E::custom("stopped by the visitor")
        })
    }
}

const TRACE_EXPECTED: &str = "an object with the keys `version`, `config`, `events`, `index` and `pod_lifecycles`";

impl<'de, V: TraceVisitor> Reject<'de> for TopVisitor<'_, V> {
    fn reject<E: de::Error>(self, found: Found) -> Result<(), E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            "a trace",
            TRACE_EXPECTED,
            found,
            "check that the input is a SimKube trace (and that its format is the one being read)",
        )))
    }
}

impl<'de, V: TraceVisitor> Visitor<'de> for TopVisitor<'_, V> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TRACE_EXPECTED)
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, seq, ext);

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u8;
        while let Some(key) = map.next_key_seed(TopKeySeed { stash: &mut *self.stash })? {
            if key == TopKey::Unknown {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            self.stash.ctx.section = Some(key.name());
            if seen & key.bit() != 0 {
                return Err(self
                    .stash
                    .fail(TraceError::DuplicateSection { name: key.name(), location: Box::default() }));
            }
            seen |= key.bit();
            match key {
                TopKey::Events => map.next_value_seed(EventsSeed {
                    stash: &mut *self.stash,
                    visitor: &mut *self.visitor,
                    stopped: &mut *self.stopped,
                })?,
                TopKey::Unknown => {}
                section => {
                    let section = map.next_value_seed(SectionSeed { stash: &mut *self.stash, key: section })?;
                    self.deliver(section)?;
                }
            }
            self.stash.ctx = Default::default();
        }
        let missing = SECTION_NAMES.iter().enumerate().find(|(i, _)| seen & (1 << i) == 0);
        if let Some((_, name)) = missing {
            return Err(self.stash.fail(TraceError::MissingSection { name, location: Box::default() }));
        }
        Ok(())
    }
}

/// One non-event section's value, decoded and checked.
struct SectionSeed<'a> {
    stash: &'a mut Stash,
    key: TopKey,
}

impl<'de> DeserializeSeed<'de> for SectionSeed<'_> {
    type Value = Section;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Section, D::Error> {
        let stash = self.stash;
        Ok(match self.key {
            TopKey::Version => {
                let version = IntSeed {
                    stash: &mut *stash,
                    what: "`version`",
                    expected: "an integer",
                    help: "skel reads SimKube trace format version 2",
                }
                .deserialize(d)?;
                if version != i128::from(TRACE_VERSION) {
                    return Err(stash.fail(TraceError::UnsupportedVersion {
                        found: version.to_string(),
                        location: Box::default(),
                    }));
                }
                Section::Version(TRACE_VERSION)
            }
            TopKey::Config => {
                let value = ValueSeed { stash: &mut *stash }.deserialize(d)?;
                Section::Config(Config::from_json_value(&value).map_err(|e| stash.fail(e))?)
            }
            TopKey::Index => {
                let value = ValueSeed { stash: &mut *stash }.deserialize(d)?;
                check_index(&value).map_err(|e| stash.fail(e))?;
                Section::Index(value)
            }
            TopKey::PodLifecycles => Section::PodLifecycles(LifecyclesSeed { stash }.deserialize(d)?),
            TopKey::Events | TopKey::Unknown => {
                return Err(stash.fail(TraceError::Syntax {
                    format: stash.format,
                    message: "not a section".into(),
                    location: Box::default(),
                }))
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding one piece from a slice (the parallel reader's path: see `split.rs`)

/// Where a slice starts in the input, to turn positions inside it into positions in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlicePos {
    /// Byte offset of the slice's first byte.
    pub offset: u64,
    /// 1-based line and column of the slice's first byte (JSON).
    pub line: usize,
    pub column: usize,
}

impl SlicePos {
    /// A position inside the slice, in the file's terms.
    fn absolute(&self, format: Format, inner: Location, consumed: u64) -> Location {
        match format {
            Format::Json => match (inner.line, inner.column) {
                (Some(1), Some(c)) => Location { line: Some(self.line), column: Some(self.column + c - 1), ..inner },
                (Some(l), c) => Location { line: Some(self.line + l - 1), column: c, ..inner },
                _ => Location { line: Some(self.line), column: Some(self.column), ..inner },
            },
            Format::Msgpack => Location { offset: Some(self.offset + consumed), ..inner },
        }
    }
}

/// Runs a seed (built by `$seed` from a `&mut Stash`) over a slice holding exactly one value,
/// with the reader's error handling; positions come out in the file's terms.
macro_rules! decode_slice {
    ($bytes:expr, $format:expr, $ctx:expr, $at:expr, |$stash:ident| $seed:expr) => {{
        let (bytes, format, at): (&[u8], Format, SlicePos) = ($bytes, $format, $at);
        let mut stash_slot = Stash::new(format);
        stash_slot.ctx = $ctx;
        match format {
            Format::Json => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let res = {
                    let $stash = &mut stash_slot;
                    $seed.deserialize(&mut de)
                };
                let res = res.and_then(|v| de.end().map(|()| v));
                let res = res.map_err(|e| {
                    let ours = e.classify() == serde_json::error::Category::Data;
                    let mut loc = at.absolute(format, json_location(&e), 0);
                    loc.path = stash_slot.path();
                    loc.event = stash_slot.ctx.event;
                    match stash_slot.problem.take() {
                        Some(problem) if ours => problem.locate(loc),
                        _ => TraceError::from_json(e).locate(loc),
                    }
                });
                // A float that may not be its text's number: the text says.
                let unsure = res.is_ok() && stash_slot.unsure_number;
                match if unsure { crate::decode::first_inexact_number(bytes) } else { None } {
                    Some((offset, text, why)) => {
                        let mut loc = at.absolute(format, crate::decode::json_position(bytes, offset), 0);
                        loc.event = stash_slot.ctx.event;
                        Err(TraceError::inexact_number(text, why).locate(loc))
                    }
                    None => res,
                }
            }
            Format::Msgpack => {
                let mut de = rmp_serde::Deserializer::new(CountingReader { inner: bytes, count: 0 });
                de.set_max_depth(MAX_DEPTH);
                let res = {
                    let $stash = &mut stash_slot;
                    $seed.deserialize(&mut de)
                };
                let consumed = de.get_ref().count;
                let res = res.and_then(|v| {
                    if (consumed as usize) < bytes.len() {
                        Err(rmp_serde::decode::Error::Syntax("unexpected data after the value".into()))
                    } else {
                        Ok(v)
                    }
                });
                res.map_err(|e| {
                    use rmp_serde::decode::Error as E;
                    let back = u64::from(matches!(e, E::TypeMismatch(_)));
                    let ours = matches!(e, E::Syntax(_));
                    let mut loc = at.absolute(format, Location::default(), consumed.saturating_sub(back));
                    loc.path = stash_slot.path();
                    loc.event = stash_slot.ctx.event;
                    match stash_slot.problem.take() {
                        Some(problem) if ours => problem.locate(loc),
                        _ => msgpack_error(e).locate(loc),
                    }
                })
            }
        }
    }};
}

/// Decodes and checks one top-level section from the bytes of its value.
pub(crate) fn decode_section(
    name: &str,
    bytes: &[u8],
    format: Format,
    at: SlicePos,
) -> Result<Option<Section>, TraceError> {
    let key = match name {
        "version" => TopKey::Version,
        "config" => TopKey::Config,
        "index" => TopKey::Index,
        "pod_lifecycles" => TopKey::PodLifecycles,
        _ => return Ok(None),
    };
    let ctx = crate::decode::Ctx { section: Some(key.name()), ..Default::default() };
    decode_slice!(bytes, format, ctx, at, |stash| SectionSeed { stash, key }).map(Some)
}

/// Decodes and checks one event (`events[index]`) from its bytes: every manifest becomes a
/// value. The parallel reader uses it where its fast path does not apply, and for the exact
/// diagnostic when an event is malformed.
pub fn decode_event(bytes: &[u8], format: Format, index: usize, at: SlicePos) -> Result<Event, TraceError> {
    let ctx = crate::decode::Ctx { section: Some("events"), ..Default::default() };
    decode_slice!(bytes, format, ctx, at, |stash| EventSeed { stash, index })
}

struct TopKeySeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for TopKeySeed<'_> {
    type Value = TopKey;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TopKey, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for TopKeySeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<TopKey, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            "a top-level key",
            "a string",
            found,
            "a trace is keyed by `version`, `config`, `events`, `index` and `pod_lifecycles`",
        )))
    }
}

impl<'de> Visitor<'de> for TopKeySeed<'_> {
    type Value = TopKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    reject!('de; bool, i64, u64, f64, bytes, unit, seq, map, ext);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TopKey, E> {
        Ok(match v {
            "version" => TopKey::Version,
            "config" => TopKey::Config,
            "events" => TopKey::Events,
            "index" => TopKey::Index,
            "pod_lifecycles" => TopKey::PodLifecycles,
            _ => TopKey::Unknown,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Events

struct EventsSeed<'a, V: TraceVisitor> {
    stash: &'a mut Stash,
    visitor: &'a mut V,
    stopped: &'a mut Option<V::Error>,
}

impl<'de, V: TraceVisitor> DeserializeSeed<'de> for EventsSeed<'_, V> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, V: TraceVisitor> Reject<'de> for EventsSeed<'_, V> {
    fn reject<E: de::Error>(self, found: Found) -> Result<(), E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("`events`", "a list of events", found, EVENT_HELP)))
    }
}

impl<'de, V: TraceVisitor> Visitor<'de> for EventsSeed<'_, V> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of events")
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, map, ext);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(event) = seq.next_element_seed(EventSeed { stash: &mut *self.stash, index })? {
            if let Err(e) = self.visitor.event(index, event) {
                *self.stopped = Some(e);
                return Err(de::Error::custom("stopped by the visitor"));
            }
            index += 1;
        }
        Ok(())
    }
}

const EVENT_HELP: &str = "an event looks like `{\"ts\": 1709241485, \"applied_objs\": [...], \"deleted_objs\": [...]}`";

/// One event; sets the context so that errors inside it name it.
struct EventSeed<'a> {
    stash: &'a mut Stash,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Event, D::Error> {
        self.stash.ctx.event = Some(self.index);
        self.stash.ctx.field = None;
        self.stash.ctx.item = None;
        let event = d.deserialize_any(EventVisitor { stash: &mut *self.stash })?;
        self.stash.ctx.event = None;
        Ok(event)
    }
}

struct EventVisitor<'a> {
    stash: &'a mut Stash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKey {
    Ts,
    Applied,
    Deleted,
    Unknown,
}

impl EventVisitor<'_> {
    fn duplicate<E: de::Error>(&mut self, key: &'static str) -> E {
        self.stash.ctx.field = Some(key);
        self.stash.fail(TraceError::DuplicateKey {
            what: "the event".into(),
            key: key.into(),
            location: Box::default(),
        })
    }

    fn objects<'de, A: MapAccess<'de>>(
        &mut self,
        map: &mut A,
        slot: &mut Option<Vec<Manifest>>,
        field: &'static str,
    ) -> Result<(), A::Error> {
        if slot.is_some() {
            return Err(self.duplicate(field));
        }
        self.stash.ctx.field = Some(field);
        *slot = Some(map.next_value_seed(ObjectsSeed { stash: &mut *self.stash, field })?);
        Ok(())
    }
}

impl<'de> Reject<'de> for EventVisitor<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<Event, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            "an event",
            "an object with `ts`, `applied_objs` and `deleted_objs`",
            found,
            EVENT_HELP,
        )))
    }
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event")
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, seq, ext);

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Event, A::Error> {
        let mut ts = None;
        let mut applied = None;
        let mut deleted = None;
        while let Some(key) = map.next_key_seed(EventKeySeed { stash: &mut *self.stash })? {
            match key {
                EventKey::Ts => {
                    if ts.is_some() {
                        return Err(self.duplicate("ts"));
                    }
                    self.stash.ctx.field = Some("ts");
                    ts = Some(map.next_value_seed(I64Seed {
                        stash: &mut *self.stash,
                        what: "`ts`",
                        expected: "an integer (unix seconds)",
                        help: EVENT_HELP,
                    })?);
                }
                EventKey::Applied => self.objects(&mut map, &mut applied, "applied_objs")?,
                EventKey::Deleted => self.objects(&mut map, &mut deleted, "deleted_objs")?,
                EventKey::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            self.stash.ctx.field = None;
        }
        let missing = |key: &'static str| TraceError::MissingKey {
            what: "the event".into(),
            key,
            help: EVENT_HELP.into(),
            location: Box::default(),
        };
        match (ts, applied, deleted) {
            (Some(ts), Some(applied_objs), Some(deleted_objs)) => Ok(Event { ts, applied_objs, deleted_objs }),
            (None, _, _) => Err(self.stash.fail(missing("ts"))),
            (_, None, _) => Err(self.stash.fail(missing("applied_objs"))),
            (_, _, None) => Err(self.stash.fail(missing("deleted_objs"))),
        }
    }
}

struct EventKeySeed<'a> {
    stash: &'a mut Stash,
}

impl<'de> DeserializeSeed<'de> for EventKeySeed<'_> {
    type Value = EventKey;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventKey, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for EventKeySeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<EventKey, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type("an event key", "a string", found, EVENT_HELP)))
    }
}

impl<'de> Visitor<'de> for EventKeySeed<'_> {
    type Value = EventKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    reject!('de; bool, i64, u64, f64, bytes, unit, seq, map, ext);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<EventKey, E> {
        Ok(match v {
            "ts" => EventKey::Ts,
            "applied_objs" => EventKey::Applied,
            "deleted_objs" => EventKey::Deleted,
            _ => EventKey::Unknown,
        })
    }
}

/// `applied_objs` or `deleted_objs`: a list of manifests.
struct ObjectsSeed<'a> {
    stash: &'a mut Stash,
    field: &'static str,
}

impl<'de> DeserializeSeed<'de> for ObjectsSeed<'_> {
    type Value = Vec<Manifest>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Manifest>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Reject<'de> for ObjectsSeed<'_> {
    fn reject<E: de::Error>(self, found: Found) -> Result<Vec<Manifest>, E> {
        let found = found.describe(self.stash.format);
        Err(self.stash.fail(TraceError::wrong_type(
            format!("`{}`", self.field),
            "a list of objects",
            found,
            EVENT_HELP,
        )))
    }
}

impl<'de> Visitor<'de> for ObjectsSeed<'_> {
    type Value = Vec<Manifest>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of objects")
    }

    reject!('de; bool, i64, u64, f64, str, bytes, unit, map, ext);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Manifest>, A::Error> {
        let mut objects = Vec::with_capacity(crate::decode::cautious(seq.size_hint()));
        loop {
            self.stash.ctx.item = Some(objects.len());
            match seq.next_element_seed(ManifestSeed { stash: &mut *self.stash })? {
                Some(object) => objects.push(object),
                None => break,
            }
        }
        self.stash.ctx.item = None;
        Ok(objects)
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        sections: Vec<&'static str>,
        events: Vec<(usize, i64)>,
        stop_at: Option<usize>,
    }

    impl TraceVisitor for Collect {
        type Error = String;

        fn section(&mut self, section: Section) -> Result<(), String> {
            self.sections.push(section.name());
            Ok(())
        }

        fn event(&mut self, index: usize, event: Event) -> Result<(), String> {
            if self.stop_at == Some(index) {
                return Err(format!("stop at {index}"));
            }
            self.events.push((index, event.ts));
            Ok(())
        }
    }

    const MINIMAL: &str = r#"{"pod_lifecycles": [], "index": {}, "events": [
        {"ts": 1, "applied_objs": [], "deleted_objs": []},
        {"deleted_objs": [{"kind": "Pod"}], "ts": 2, "applied_objs": [], "extra": 1}
    ], "unknown": {"x": [1]}, "version": 2, "config": {"trackedObjects": {}}}"#;

    fn read_json(text: &str, v: &mut Collect) -> Result<(), ReadError<String>> {
        read_trace(text.as_bytes(), Format::Json, v)
    }

    #[test]
    fn sections_in_input_order_and_events_streamed() {
        let mut v = Collect::default();
        let res = read_json(MINIMAL, &mut v);
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(v.sections, ["pod_lifecycles", "index", "version", "config"]);
        assert_eq!(v.events, [(0, 1), (1, 2)]);
    }

    #[test]
    fn visitor_error_comes_back_unchanged() {
        let mut v = Collect { stop_at: Some(1), ..Collect::default() };
        match read_json(MINIMAL, &mut v) {
            Err(ReadError::Visitor(e)) => assert_eq!(e, "stop at 1"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(v.events, [(0, 1)]);
    }

    #[test]
    fn error_inside_event_names_it() {
        let text = MINIMAL.replace("\"ts\": 2", "\"ts\": \"2\"");
        let err = match read_json(&text, &mut Collect::default()) {
            Err(ReadError::Trace(e)) => e,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(err.event_index(), Some(1));
        assert_eq!(
            err.to_string(),
            "`ts` must be an integer (unix seconds), found the string `\"2\"` at line 3, column 53, in event 1 (`events[1].ts`)"
        );
    }

    #[test]
    fn duplicates_and_missing() {
        let dup = MINIMAL.replace("\"unknown\"", "\"index\"");
        let err = read_json(&dup, &mut Collect::default());
        assert!(matches!(&err, Err(ReadError::Trace(TraceError::DuplicateSection { name: "index", .. }))), "{err:?}");
        let missing = MINIMAL.replace("\"ts\": 1, ", "");
        let err = read_json(&missing, &mut Collect::default());
        assert!(matches!(&err, Err(ReadError::Trace(TraceError::MissingKey { key: "ts", .. }))), "{err:?}");
        let dup_field = MINIMAL.replace("\"ts\": 1, ", "\"ts\": 1, \"ts\": 1, ");
        let err = read_json(&dup_field, &mut Collect::default());
        assert!(matches!(&err, Err(ReadError::Trace(TraceError::DuplicateKey { .. }))), "{err:?}");
    }

    #[test]
    fn msgpack_trailing_and_offsets() {
        let value: serde_json::Value = match serde_json::from_str(MINIMAL) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let mut bytes = rmp_serde::to_vec(&value).unwrap_or_default();
        let len = bytes.len() as u64;
        let ok = read_trace(bytes.as_slice(), Format::Msgpack, &mut Collect::default());
        assert!(ok.is_ok(), "{ok:?}");
        bytes.push(0xc0);
        match read_trace(bytes.as_slice(), Format::Msgpack, &mut Collect::default()) {
            Err(ReadError::Trace(TraceError::TrailingData { location })) => {
                assert_eq!(location.offset, Some(len))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_in_msgpack_is_a_syntax_error() {
        // {"version": <str with invalid utf-8>}
        let bytes = [0x81, 0xa7, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0xa1, 0xff];
        match read_trace(&bytes[..], Format::Msgpack, &mut Collect::default()) {
            Err(ReadError::Trace(TraceError::Syntax { message, .. })) => {
                assert_eq!(message, "a string is not valid UTF-8")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
