//! The parallel reader's front half: `Splitter` cuts a trace's byte stream into its sections
//! (decoded here: they are small) and batches of events (left as bytes, so workers can decode,
//! transform and encode them in parallel). A structural scan finds where each value ends without
//! decoding it; every byte is still fully checked, by the worker that decodes it.

use std::io::{self, Read};

use crate::error::{Location, TraceError, MAX_DEPTH};
use crate::model::{Format, Section, SECTION_NAMES};
use crate::read::{decode_section, SlicePos};

/// One piece of a trace, in input order.
#[derive(Debug)]
pub enum Unit {
    Section(Section),
    Events(EventBatch),
}

/// Byte buffers handed back and forth between threads, so a long stream reuses a few buffers
/// instead of allocating one per batch (which fragments the allocator's per-thread arenas and
/// makes memory creep up with the length of the trace).
#[derive(Debug, Default)]
pub struct BufferPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    /// A cleared buffer, reused if one is free.
    pub fn get(&self) -> Vec<u8> {
        self.0.lock().ok().and_then(|mut v| v.pop()).unwrap_or_default()
    }

    pub fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        if let Ok(mut v) = self.0.lock() {
            // Keep a handful: the pool only needs to cover the buffers in flight.
            if v.len() < 64 {
                v.push(buf);
            }
        }
    }
}

/// Consecutive events as raw bytes.
#[derive(Debug, Default)]
pub struct EventBatch {
    /// Index of the first event in the trace's `events`.
    pub first_index: usize,
    /// The `ts` of the trace's first event, when it could be read (relative times count from it).
    pub start_ts: Option<i64>,
    /// The largest `ts` of the events before this batch's first, when the splitter was asked
    /// to read every event's `ts` (`with_event_ts`) and could.
    pub latest_ts: Option<i64>,
    data: Vec<u8>,
    spans: Vec<(usize, usize, SlicePos)>,
}

impl EventBatch {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each event: its index in the trace, its bytes and where they start in the input.
    pub fn events(&self) -> impl Iterator<Item = (usize, &[u8], SlicePos)> {
        self.spans
            .iter()
            .enumerate()
            .map(|(i, (start, end, at))| (self.first_index + i, self.data.get(*start..*end).unwrap_or(&[]), *at))
    }

    /// The batch's buffer, for reuse (see `BufferPool`).
    pub fn into_buffer(self) -> Vec<u8> {
        self.data
    }

    /// A batch of events read from elsewhere (the REPL's store): `data` holds them, each at
    /// its span (and where it is in its file, for errors); the first one is event
    /// `first_index` of its trace; `start_ts` and `latest_ts` as a splitter sets them.
    pub fn from_parts(
        first_index: usize,
        start_ts: Option<i64>,
        latest_ts: Option<i64>,
        data: Vec<u8>,
        spans: impl IntoIterator<Item = (usize, usize, SlicePos)>,
    ) -> EventBatch {
        let spans = spans.into_iter().collect();
        EventBatch { first_index, start_ts, latest_ts, data, spans }
    }

    fn push(&mut self, bytes: &[u8], at: SlicePos) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.spans.push((start, self.data.len(), at));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level map.
    Start,
    /// Expecting a key (or the end of the map); `first` before the first key.
    Key {
        first: bool,
    },
    /// Inside `events`; `first` before its first element.
    Events {
        first: bool,
    },
    /// After the top-level map: only whitespace may follow.
    End,
    Done,
}

/// Cuts a trace into sections and event batches; see the module docs.
pub struct Splitter<R: Read> {
    input: R,
    format: Format,
    buf: Vec<u8>,
    /// `buf[pos..filled]` is unread.
    pos: usize,
    filled: usize,
    eof: bool,
    /// Byte offset of `buf[0]` in the input.
    base: u64,
    /// Line of `buf[pos]` and the input offset where that line starts (JSON positions).
    line: usize,
    line_start: u64,
    state: State,
    seen: u8,
    next_event: usize,
    start_ts: Option<i64>,
    /// Msgpack: entries of the top-level map, and elements of `events`, still to come.
    map_left: u64,
    events_left: u64,
    batch_bytes: usize,
    pool: Option<std::sync::Arc<BufferPool>>,
    /// Read each event's `ts` (for `EventBatch::latest_ts`).
    event_ts: bool,
    latest_ts: Option<i64>,
}

const READ_CHUNK: usize = 1 << 20;

impl<R: Read> Splitter<R> {
    /// `batch_bytes`: about how many bytes of events go in one batch.
    pub fn new(input: R, format: Format, batch_bytes: usize) -> Self {
        Splitter {
            input,
            format,
            buf: Vec::new(),
            pos: 0,
            filled: 0,
            eof: false,
            base: 0,
            line: 1,
            line_start: 0,
            state: State::Start,
            seen: 0,
            next_event: 0,
            start_ts: None,
            map_left: 0,
            events_left: 0,
            batch_bytes: batch_bytes.max(1),
            pool: None,
            event_ts: false,
            latest_ts: None,
        }
    }

    /// Reads every event's `ts` too, so each batch knows the `ts` of the event before it.
    pub fn with_event_ts(mut self) -> Self {
        self.event_ts = true;
        self
    }

    /// Takes batch buffers from `pool` (where their users put them back).
    pub fn with_pool(mut self, pool: std::sync::Arc<BufferPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    // ------------------------------------------------------------------ buffer

    /// Reads more input; returns false at the end of the input.
    fn fill(&mut self) -> Result<bool, TraceError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.base += self.pos as u64;
            self.filled -= self.pos;
            self.pos = 0;
        }
        // Room for at least as much again as is unread (see `fill_doubling`).
        let want = self.filled + READ_CHUNK.max(self.filled);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        loop {
            let Some(dest) = self.buf.get_mut(self.filled..) else { return Ok(false) };
            match self.input.read(dest) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(TraceError::Io { action: "read", source }),
            }
        }
    }

    /// Reads until the unread part has doubled (or the input ended); returns false if nothing
    /// more came. A value longer than the buffer is rescanned from its start after each refill,
    /// which stays linear overall only if each refill doubles what there is: one `read` is not
    /// enough, since a pipe hands out at most 64 KiB at a time.
    fn fill_doubling(&mut self) -> Result<bool, TraceError> {
        let goal = self.unread().len().saturating_mul(2).max(1);
        let mut more = false;
        while self.fill()? {
            more = true;
            if self.unread().len() >= goal {
                break;
            }
        }
        Ok(more)
    }

    fn unread(&self) -> &[u8] {
        self.buf.get(self.pos..self.filled).unwrap_or(&[])
    }

    /// Moves past `n` bytes, keeping the line count.
    fn advance(&mut self, n: usize) {
        let end = (self.pos + n).min(self.filled);
        if self.format == Format::Json {
            let passed = self.buf.get(self.pos..end).unwrap_or(&[]);
            for i in memchr::memchr_iter(b'\n', passed) {
                self.line += 1;
                self.line_start = self.base + (self.pos + i) as u64 + 1;
            }
        }
        self.pos = end;
    }

    fn here(&self) -> SlicePos {
        let offset = self.base + self.pos as u64;
        SlicePos { offset, line: self.line, column: (offset - self.line_start) as usize + 1 }
    }

    fn location(&self) -> Location {
        let at = self.here();
        match self.format {
            Format::Json => Location { line: Some(at.line), column: Some(at.column), ..Location::default() },
            Format::Msgpack => Location { offset: Some(at.offset), ..Location::default() },
        }
    }

    fn eof_error(&self) -> TraceError {
        TraceError::UnexpectedEof { location: Box::new(self.location()) }
    }

    fn syntax(&self, message: impl Into<String>) -> TraceError {
        TraceError::Syntax { format: self.format, message: message.into(), location: Box::new(self.location()) }
    }

    /// The next byte, reading more input if needed.
    fn peek(&mut self) -> Result<Option<u8>, TraceError> {
        loop {
            if let Some(b) = self.unread().first() {
                return Ok(Some(*b));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The length of the complete value at `pos`, reading more input as needed.
    fn value_len(&mut self) -> Result<usize, TraceError> {
        let mut scan = Scan::default();
        loop {
            let found = match self.format {
                Format::Json => scan.json(self.unread()),
                Format::Msgpack => scan.msgpack(self.unread()),
            };
            match found {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => {
                    if !self.fill_doubling()? {
                        // Point at the end of what there is.
                        self.advance(self.filled - self.pos);
                        return Err(self.eof_error());
                    }
                }
                Err(Bad::Syntax(message)) => {
                    self.advance(scan.at);
                    return Err(self.syntax(message));
                }
                Err(Bad::TooDeep) => {
                    self.advance(scan.at);
                    return Err(TraceError::TooDeep { limit: MAX_DEPTH, location: Box::new(self.location()) });
                }
            }
        }
    }

    /// The length of the next event; errors name the event.
    fn event_len(&mut self) -> Result<usize, TraceError> {
        let index = self.next_event;
        let res = if self.peek()?.is_none() { Err(self.eof_error()) } else { self.value_len() };
        res.map_err(|e| {
            e.locate(Location { event: Some(index), path: Some(format!("events[{index}]")), ..Location::default() })
        })
    }

    fn mark_seen(&mut self, name: &'static str) -> Result<(), TraceError> {
        let bit = SECTION_NAMES.iter().position(|n| *n == name).map_or(0, |i| 1u8 << i);
        if self.seen & bit != 0 {
            return Err(TraceError::DuplicateSection { name, location: Box::new(self.location()) });
        }
        self.seen |= bit;
        Ok(())
    }

    /// The `ts` of an event (the first, for relative times; or each, `with_event_ts`); `None`
    /// if it cannot be read here (the worker decoding the event then reports why).
    fn first_ts(&self, bytes: &[u8]) -> Option<i64> {
        match self.format {
            // Writers put `ts` first: read it without parsing the event when it is there.
            Format::Json if compact_json_ts(bytes).is_some() => compact_json_ts(bytes),
            Format::Json => {
                #[derive(serde::Deserialize)]
                struct Ts {
                    ts: i64,
                }
                serde_json::from_slice::<Ts>(bytes).ok().map(|t| t.ts)
            }
            Format::Msgpack => crate::raw::msgpack_event_ts(bytes),
        }
    }

    fn push_event(&mut self, batch: &mut EventBatch, len: usize) {
        let at = self.here();
        let bytes = self.buf.get(self.pos..self.pos + len).unwrap_or(&[]);
        if self.next_event == 0 {
            self.start_ts = self.first_ts(bytes);
            batch.start_ts = self.start_ts;
        }
        if self.event_ts {
            // An event whose `ts` cannot be read here fails in the worker that decodes it.
            self.latest_ts = self.latest_ts.max(self.first_ts(bytes));
        }
        batch.push(bytes, at);
        self.next_event += 1;
        self.advance(len);
    }

    fn new_batch(&self) -> EventBatch {
        let data = self.pool.as_ref().map(|p| p.get()).unwrap_or_default();
        let latest_ts = if self.next_event == 0 { None } else { self.latest_ts };
        EventBatch { first_index: self.next_event, start_ts: self.start_ts, latest_ts, data, spans: Vec::new() }
    }

    fn section(&mut self, name: &str) -> Result<Option<Section>, TraceError> {
        let len = self.value_len()?;
        let at = self.here();
        let bytes = self.buf.get(self.pos..self.pos + len).unwrap_or(&[]);
        let section = decode_section(name, bytes, self.format, at)?;
        self.advance(len);
        Ok(section)
    }

    fn finish(&mut self) -> Result<(), TraceError> {
        if let Some((_, name)) = SECTION_NAMES.iter().enumerate().find(|(i, _)| self.seen & (1 << i) == 0) {
            return Err(TraceError::MissingSection { name, location: Box::new(self.location()) });
        }
        Ok(())
    }

    // ------------------------------------------------------------------ JSON

    fn skip_ws(&mut self) -> Result<Option<u8>, TraceError> {
        loop {
            let unread = self.unread();
            let n = unread.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')).count();
            let at_end = n == unread.len();
            self.advance(n);
            if !at_end {
                return self.peek();
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), TraceError> {
        match self.skip_ws()? {
            Some(b) if b == byte => {
                self.advance(1);
                Ok(())
            }
            Some(b) => Err(self.syntax(format!("expected {what}, found `{}`", char::from(b)))),
            None => Err(self.eof_error()),
        }
    }

    fn json_key(&mut self) -> Result<String, TraceError> {
        if self.skip_ws()? != Some(b'"') {
            return Err(match self.peek()? {
                Some(b) => self.syntax(format!("expected a key in quotes, found `{}`", char::from(b))),
                None => self.eof_error(),
            });
        }
        let len = self.value_len()?;
        let raw = self.buf.get(self.pos..self.pos + len).unwrap_or(&[]);
        let key: String = serde_json::from_slice(raw).map_err(|e| self.syntax(format!("bad key: {e}")))?;
        self.advance(len);
        self.expect(b':', "`:`")?;
        Ok(key)
    }

    fn next_json(&mut self) -> Result<Option<Unit>, TraceError> {
        loop {
            match self.state {
                State::Start => {
                    match self.skip_ws()? {
                        Some(b'{') => self.advance(1),
                        Some(b) => {
                            let found = match b {
                                b'[' => "a list".to_string(),
                                b'"' => "a string".to_string(),
                                other => format!("`{}`", char::from(other)),
                            };
                            return Err(TraceError::wrong_type(
                                "a trace",
                                "an object with the keys `version`, `config`, `events`, `index` and `pod_lifecycles`",
                                found,
                                "check that the input is a SimKube trace (and that its format is the one being read)",
                            )
                            .locate(self.location()));
                        }
                        None => return Err(TraceError::Empty { format: self.format }),
                    }
                    self.state = State::Key { first: true };
                }
                State::Key { first } => {
                    match self.skip_ws()? {
                        Some(b'}') => {
                            self.advance(1);
                            self.state = State::End;
                            continue;
                        }
                        None => return Err(self.eof_error()),
                        _ => {}
                    }
                    if !first {
                        self.expect(b',', "`,` or `}`")?;
                    }
                    let key = self.json_key()?;
                    self.skip_ws()?;
                    if key == "events" {
                        self.mark_seen("events")?;
                        if self.peek()? != Some(b'[') {
                            return Err(TraceError::wrong_type(
                                "`events`",
                                "a list of events",
                                "something else",
                                "an event looks like `{\"ts\": 1709241485, \"applied_objs\": [...], \"deleted_objs\": [...]}`",
                            )
                            .locate(self.location()));
                        }
                        self.advance(1);
                        self.state = State::Events { first: true };
                        continue;
                    }
                    self.state = State::Key { first: false };
                    if let Some(name) = SECTION_NAMES.iter().find(|n| **n == key) {
                        self.mark_seen(name)?;
                    }
                    if let Some(section) = self.section(&key)? {
                        return Ok(Some(Unit::Section(section)));
                    }
                }
                State::Events { mut first } => {
                    let mut batch = self.new_batch();
                    loop {
                        match self.skip_ws()? {
                            Some(b']') => {
                                self.advance(1);
                                self.state = State::Key { first: false };
                                break;
                            }
                            None => return Err(self.eof_error()),
                            _ => {}
                        }
                        if !first {
                            self.expect(b',', "`,` or `]`")?;
                            self.skip_ws()?;
                        }
                        first = false;
                        let len = self.event_len()?;
                        self.push_event(&mut batch, len);
                        if batch.data.len() >= self.batch_bytes {
                            self.state = State::Events { first: false };
                            break;
                        }
                    }
                    if !batch.is_empty() {
                        return Ok(Some(Unit::Events(batch)));
                    }
                }
                State::End => {
                    if self.skip_ws()?.is_some() {
                        return Err(TraceError::TrailingData { location: Box::new(self.location()) });
                    }
                    self.finish()?;
                    self.state = State::Done;
                }
                State::Done => return Ok(None),
            }
        }
    }

    // ------------------------------------------------------------------ msgpack

    /// Reads a length header (`map` or `array`) at `pos`.
    fn msgpack_len(&mut self, map: bool) -> Result<u64, TraceError> {
        while self.unread().len() < 5 && self.fill()? {}
        let b = self.unread();
        let (len, size) = match (map, b.first().copied()) {
            (true, Some(m @ 0x80..=0x8f)) => (u64::from(m & 0x0f), 1),
            (true, Some(0xde)) | (false, Some(0xdc)) => (u64::from(be16(b.get(1..3))), 3),
            (true, Some(0xdf)) | (false, Some(0xdd)) => (u64::from(be32(b.get(1..5))), 5),
            (false, Some(m @ 0x90..=0x9f)) => (u64::from(m & 0x0f), 1),
            (_, None) => return Err(self.eof_error()),
            (_, Some(m)) => {
                let what = if map { "a trace" } else { "`events`" };
                let expected = if map { "a map of the five trace sections" } else { "a list of events" };
                return Err(TraceError::wrong_type(
                    what,
                    expected,
                    format!("the msgpack marker `0x{m:02x}`"),
                    "check that the input is a SimKube trace (and that its format is the one being read)",
                )
                .locate(self.location()));
            }
        };
        if b.len() < size {
            return Err(self.eof_error());
        }
        self.advance(size);
        Ok(len)
    }

    fn msgpack_key(&mut self) -> Result<String, TraceError> {
        if self.peek()?.is_none() {
            return Err(self.eof_error());
        }
        let len = self.value_len()?;
        let raw = self.buf.get(self.pos..self.pos + len).unwrap_or(&[]);
        let key = crate::raw::msgpack_str(raw).map(str::to_string);
        match key {
            Some(k) => {
                self.advance(len);
                Ok(k)
            }
            None => Err(TraceError::wrong_type(
                "a top-level key",
                "a string",
                "something else",
                "a trace is keyed by `version`, `config`, `events`, `index` and `pod_lifecycles`",
            )
            .locate(self.location())),
        }
    }

    fn next_msgpack(&mut self) -> Result<Option<Unit>, TraceError> {
        loop {
            match self.state {
                State::Start => {
                    if self.peek()?.is_none() {
                        return Err(TraceError::Empty { format: self.format });
                    }
                    self.map_left = self.msgpack_len(true)?;
                    self.state = State::Key { first: true };
                }
                State::Key { .. } => {
                    if self.map_left == 0 {
                        self.state = State::End;
                        continue;
                    }
                    self.map_left -= 1;
                    let key = self.msgpack_key()?;
                    if key == "events" {
                        self.mark_seen("events")?;
                        self.events_left = self.msgpack_len(false)?;
                        self.state = State::Events { first: true };
                        continue;
                    }
                    if let Some(name) = SECTION_NAMES.iter().find(|n| **n == key) {
                        self.mark_seen(name)?;
                    }
                    self.state = State::Key { first: false };
                    if let Some(section) = self.section(&key)? {
                        return Ok(Some(Unit::Section(section)));
                    }
                }
                State::Events { .. } => {
                    let mut batch = self.new_batch();
                    while self.events_left > 0 && batch.data.len() < self.batch_bytes {
                        let len = self.event_len()?;
                        self.push_event(&mut batch, len);
                        self.events_left -= 1;
                    }
                    if self.events_left == 0 {
                        self.state = State::Key { first: false };
                    }
                    if !batch.is_empty() {
                        return Ok(Some(Unit::Events(batch)));
                    }
                }
                State::End => {
                    if self.peek()?.is_some() {
                        return Err(TraceError::TrailingData { location: Box::new(self.location()) });
                    }
                    self.finish()?;
                    self.state = State::Done;
                }
                State::Done => return Ok(None),
            }
        }
    }
}

impl<R: Read> Iterator for Splitter<R> {
    type Item = Result<Unit, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match self.format {
            Format::Json => self.next_json(),
            Format::Msgpack => self.next_msgpack(),
        };
        match next {
            Ok(unit) => unit.map(Ok),
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

fn be16(b: Option<&[u8]>) -> u16 {
    match b {
        Some([x, y]) => u16::from_be_bytes([*x, *y]),
        _ => 0,
    }
}

fn be32(b: Option<&[u8]>) -> u32 {
    match b {
        Some([a, b, c, d]) => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

/// Why `Scan` stopped at `Scan::at`.
#[derive(Debug)]
enum Bad {
    Syntax(String),
    /// A container opens more than `MAX_DEPTH` levels deep.
    TooDeep,
}

/// Finds where one value ends. Structural only: it tracks strings and nesting (JSON) or walks
/// markers and lengths (msgpack); decoding checks the rest.
#[derive(Debug, Default)]
struct Scan {
    /// Where a problem was found, for its position.
    at: usize,
}

impl Scan {
    /// `Ok(Some(len))` when the value is complete, `Ok(None)` when more input is needed.
    fn json(&mut self, b: &[u8]) -> Result<Option<usize>, Bad> {
        let Some(&first) = b.first() else { return Ok(None) };
        match first {
            b'"' => Ok(json_string_end(b, 1)),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut i = 0;
                while let Some(&c) = b.get(i) {
                    match c {
                        b'"' => match json_string_end(b, i + 1) {
                            Some(end) => {
                                i = end;
                                continue;
                            }
                            None => return Ok(None),
                        },
                        b'{' | b'[' => {
                            depth += 1;
                            if depth > MAX_DEPTH {
                                self.at = i;
                                return Err(Bad::TooDeep);
                            }
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(Some(i + 1));
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                Ok(None)
            }
            _ => {
                // A scalar: up to the next delimiter (decoding checks what it is).
                match b.iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    Some(0) => {
                        self.at = 0;
                        Err(Bad::Syntax(format!("expected a value, found `{}`", char::from(first))))
                    }
                    Some(n) => Ok(Some(n)),
                    None => Ok(None),
                }
            }
        }
    }

    fn msgpack(&mut self, b: &[u8]) -> Result<Option<usize>, Bad> {
        match crate::raw::msgpack_skip(b, 0, false) {
            Ok(n) => Ok(Some(n)),
            Err(crate::raw::Skip::Incomplete) => Ok(None),
            Err(crate::raw::Skip::Invalid(at, message)) => {
                self.at = at;
                Err(Bad::Syntax(message))
            }
            Err(crate::raw::Skip::TooDeep(at)) => {
                self.at = at;
                Err(Bad::TooDeep)
            }
        }
    }
}

/// `ts` of an event that starts `{"ts":<integer>,`.
fn compact_json_ts(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"{\"ts\":")?;
    let end = digits.iter().position(|c| !(c.is_ascii_digit() || *c == b'-'))?;
    match digits.get(end) {
        Some(b',' | b'}') if end > 0 => std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok(),
        _ => None,
    }
}

/// The end (one past the closing quote) of a JSON string whose contents start at `from`.
fn json_string_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let rest = b.get(i..)?;
        let n = memchr::memchr2(b'"', b'\\', rest)?;
        match rest.get(n) {
            Some(b'"') => return Some(i + n + 1),
            _ => i += n + 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(input: &[u8], format: Format, batch: usize) -> Result<Vec<Unit>, TraceError> {
        Splitter::new(input, format, batch).collect()
    }

    const TRACE: &str = r#"{"version":2,"config":{"trackedObjects":{}},"events":[
        {"ts":10,"applied_objs":[{"kind":"A","s":"}]\"x"}],"deleted_objs":[]},
        {"ts":20,"applied_objs":[],"deleted_objs":[{"kind":"B"}]}, {"ts":30,"applied_objs":[],"deleted_objs":[]}],
        "index":{},"pod_lifecycles":{}}"#;

    #[test]
    fn json_events_and_sections_in_order() {
        let units = units(TRACE.as_bytes(), Format::Json, 1).unwrap();
        let kinds: Vec<String> = units
            .iter()
            .map(|u| match u {
                Unit::Section(s) => s.name().to_string(),
                Unit::Events(b) => format!("events{}x{}", b.first_index, b.len()),
            })
            .collect();
        assert_eq!(kinds, ["version", "config", "events0x1", "events1x1", "events2x1", "index", "pod_lifecycles"]);
        let Some(Unit::Events(b)) = units.get(2) else { panic!() };
        let (_, bytes, at) = b.events().next().unwrap();
        assert_eq!(
            std::str::from_utf8(bytes).unwrap(),
            r#"{"ts":10,"applied_objs":[{"kind":"A","s":"}]\"x"}],"deleted_objs":[]}"#
        );
        assert_eq!((at.line, at.column), (2, 9));
        assert_eq!(b.start_ts, Some(10));
    }

    #[test]
    fn json_batches_hold_several_events() {
        let units = units(TRACE.as_bytes(), Format::Json, 1 << 20).unwrap();
        assert_eq!(units.len(), 5);
    }

    #[test]
    fn any_chunking_gives_the_same_units() {
        // A reader that hands out one byte at a time exercises every refill point.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match (self.0.split_first(), buf.first_mut()) {
                    (Some((b, rest)), Some(slot)) => {
                        *slot = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let whole = units(TRACE.as_bytes(), Format::Json, 1).unwrap();
        let bytewise: Vec<Unit> =
            Splitter::new(OneByte(TRACE.as_bytes()), Format::Json, 1).collect::<Result<_, _>>().unwrap();
        assert_eq!(format!("{whole:?}"), format!("{bytewise:?}"));
    }

    #[test]
    fn json_errors() {
        let cases = [
            (r#"{"version":2,"config":{"trackedObjects":{}},"events":[{"ts":1}"#, "skel::trace::unexpected_eof"),
            (r#"{"version":2,"events":[],"events":[]}"#, "skel::trace::duplicate_section"),
            (r#"{"version":2,"config":{"trackedObjects":{}},"events":[],"index":{}}"#, "skel::trace::missing_section"),
            (r#"{"version":3}"#, "skel::trace::unsupported_version"),
            (r#"{"version":2,"events":{}}"#, "skel::trace::wrong_type"),
            (r#"[1]"#, "skel::trace::wrong_type"),
            ("", "skel::trace::empty"),
        ];
        for (input, code) in cases {
            let err = units(input.as_bytes(), Format::Json, 1).unwrap_err();
            let got = miette::Diagnostic::code(&err).map(|c| c.to_string()).unwrap_or_default();
            assert_eq!(got, code, "{input}: {err}");
        }
    }

    #[test]
    fn trailing_data_is_an_error() {
        let input = format!("{TRACE} x");
        let err = units(input.as_bytes(), Format::Json, 1).unwrap_err();
        assert!(matches!(err, TraceError::TrailingData { .. }), "{err}");
    }

    /// Hands out at most 64 KiB a read, as a pipe does.
    struct PipeLike<'a>(&'a [u8]);

    impl Read for PipeLike<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(64 << 10);
            let (now, rest) = self.0.split_at(n);
            buf.get_mut(..n).unwrap_or_default().copy_from_slice(now);
            self.0 = rest;
            Ok(n)
        }
    }

    #[test]
    fn one_large_event_from_a_pipe_is_read_in_linear_time() {
        // 16 MiB in one event: each 64 KiB read used to rescan the event from its start (about
        // 2 GB scanned, a minute here); reading until the buffer doubles scans about 32 MiB.
        let mut items = "0,".repeat(8 << 20);
        items.pop();
        let event = format!(r#"{{"ts":1,"applied_objs":[{{"kind":"A","a":[{items}]}}],"deleted_objs":[]}}"#);
        let input = format!(
            r#"{{"version":2,"config":{{"trackedObjects":{{}}}},"events":[{event}],"index":{{}},"pod_lifecycles":{{}}}}"#
        );
        let units: Vec<Unit> =
            Splitter::new(PipeLike(input.as_bytes()), Format::Json, 1 << 20).collect::<Result<_, _>>().unwrap();
        let Some(Unit::Events(batch)) = units.get(2) else { panic!("no events: {units:?}") };
        let (_, bytes, _) = batch.events().next().unwrap();
        assert!(bytes == event.as_bytes());
    }
}
