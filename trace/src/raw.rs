//! Events whose manifests stay bytes until something needs them: the parallel path decodes an
//! event's shell (`ts` and the two lists) and keeps each manifest as its encoded bytes, so a
//! manifest no statement can touch is copied to the output without ever being decoded. Also the
//! msgpack walker the splitter uses to find where values end.

use std::borrow::Cow;

use serde::de::DeserializeSeed;

use crate::decode::{check_json_numbers, Stash, ValueSeed};
use crate::error::{TraceError, MAX_DEPTH};
use crate::model::{Format, Manifest};
use crate::read::{decode_event, msgpack_error, SlicePos};
use crate::Event;

/// An event whose manifests are still encoded.
#[derive(Debug)]
pub struct RawEvent<'a> {
    pub ts: i64,
    pub applied_objs: Vec<RawManifest<'a>>,
    pub deleted_objs: Vec<RawManifest<'a>>,
}

/// A manifest still encoded, and its top-level `kind`, read on the way (the dispatch table
/// needs nothing else to know whether a statement can match it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest<'a> {
    pub bytes: &'a [u8],
    pub kind: KindProbe<'a>,
}

/// What the fast path could make of an event.
#[derive(Debug)]
pub enum DecodedEvent<'a> {
    /// The event's shell is well-formed; its manifests are still bytes.
    Raw(RawEvent<'a>),
    /// The careful decoder had to run (the event has something unusual, such as unknown keys in
    /// an odd place); every manifest is decoded.
    Full(Event),
}

/// Splits one event's bytes into its `ts` and its manifests' bytes, checking every byte. Falls
/// back to the careful decoder when the fast one does not accept the event, so every
/// malformed event gets the same diagnostic as the sequential reader gives.
pub fn decode_raw_event(
    bytes: &[u8],
    format: Format,
    index: usize,
    at: SlicePos,
) -> Result<DecodedEvent<'_>, TraceError> {
    let fast = match format {
        Format::Json => json_raw_event(bytes),
        Format::Msgpack => msgpack_raw_event(bytes),
    };
    match fast {
        Some(raw) => Ok(DecodedEvent::Raw(raw)),
        None => decode_event(bytes, format, index, at).map(DecodedEvent::Full),
    }
}

fn json_raw_event(bytes: &[u8]) -> Option<RawEvent<'_>> {
    // One check of the whole event's UTF-8 is cheaper than the parser's check of each string,
    // which `from_str` skips.
    let mut de = serde_json::Deserializer::from_str(std::str::from_utf8(bytes).ok()?);
    let (ts, applied_objs, deleted_objs) = json::EventShell(json::ListSeed(bytes)).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(RawEvent { ts, applied_objs, deleted_objs })
}

/// The JSON event shell, read by serde_json's parser with seeds that keep each manifest's
/// bytes and note its `kind`.
pub mod json {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::value::RawValue;

    use super::{KindProbe, RawManifest};

    /// Where a string borrowed from `input` starts in it.
    pub fn offset_in(input: &[u8], s: &str) -> Option<usize> {
        let (base, at) = (input.as_ptr() as usize, s.as_ptr() as usize);
        (at >= base && at + s.len() <= base + input.len()).then(|| at - base)
    }

    fn fail<E: de::Error>(what: &str) -> E {
        E::custom(what)
    }

    /// A map key, borrowed from the input when it has no escapes.
    pub struct KeySeed;

    impl<'de> DeserializeSeed<'de> for KeySeed {
        type Value = Cow<'de, str>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeySeed {
        type Value = Cow<'de, str>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_string()))
        }
    }

    /// An event's shell: its `ts` and its two lists, each read with the list seed `S` (other
    /// keys are skipped; a repeated or missing key is an error). Shared by the raw decoder here
    /// and the lazy one in `skel`.
    #[derive(Clone, Copy)]
    pub struct EventShell<S>(pub S);

    impl<'de, S, T> DeserializeSeed<'de> for EventShell<S>
    where
        S: DeserializeSeed<'de, Value = Vec<T>> + Copy,
    {
        type Value = (i64, Vec<T>, Vec<T>);

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de, S, T> Visitor<'de> for EventShell<S>
    where
        S: DeserializeSeed<'de, Value = Vec<T>> + Copy,
    {
        type Value = (i64, Vec<T>, Vec<T>);

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an event")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut ts, mut applied, mut deleted) = (None, None, None);
            while let Some(key) = map.next_key_seed(KeySeed)? {
                match key.as_ref() {
                    "ts" if ts.is_none() => ts = Some(map.next_value::<i64>()?),
                    "applied_objs" if applied.is_none() => applied = Some(map.next_value_seed(self.0)?),
                    "deleted_objs" if deleted.is_none() => deleted = Some(map.next_value_seed(self.0)?),
                    "ts" | "applied_objs" | "deleted_objs" => return Err(fail("a key twice")),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            match (ts, applied, deleted) {
                (Some(ts), Some(applied), Some(deleted)) => Ok((ts, applied, deleted)),
                _ => Err(fail("a key is missing")),
            }
        }
    }

    #[derive(Clone, Copy)]
    pub(super) struct ListSeed<'de>(pub &'de [u8]);

    impl<'de> DeserializeSeed<'de> for ListSeed<'de> {
        type Value = Vec<RawManifest<'de>>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for ListSeed<'de> {
        type Value = Vec<RawManifest<'de>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of manifests")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(m) = seq.next_element_seed(ManifestSeed(self.0))? {
                out.push(m);
            }
            Ok(out)
        }
    }

    struct ManifestSeed<'de>(&'de [u8]);

    impl<'de> DeserializeSeed<'de> for ManifestSeed<'de> {
        type Value = RawManifest<'de>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for ManifestSeed<'de> {
        type Value = RawManifest<'de>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a manifest")
        }

        /// Reads the top-level keys, each value as raw text; the manifest's bytes run from the
        /// brace before the first key to the brace after the last value. (An empty manifest,
        /// or one whose first key has escapes, cannot be located so: the careful path takes it.)
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let input = self.0;
            let (mut start, mut end) = (None, 0);
            let mut kind = KindProbe::Known(None);
            while let Some(key) = map.next_key_seed(KeySeed)? {
                let value: &'de RawValue = map.next_value()?;
                if start.is_none() {
                    let Cow::Borrowed(k) = key else { return Err(fail("an escaped first key")) };
                    start = offset_in(input, k).map(|at| at.saturating_sub(1));
                }
                let at = offset_in(input, value.get()).ok_or_else(|| fail("a value not in the input"))?;
                end = at + value.get().len();
                if key == "kind" {
                    kind = match kind {
                        KindProbe::Known(None) => kind_of(value.get()),
                        // Which `kind` counts is the decoder's business: let it decide.
                        _ => KindProbe::Unknown,
                    };
                }
            }
            let start = start.ok_or_else(|| fail("an empty manifest"))?;
            let not_ws = |c: &u8| !matches!(c, b' ' | b'\t' | b'\n' | b'\r');
            let open = input.get(..start).and_then(|b| b.iter().rposition(not_ws));
            let close = input.get(end..).and_then(|b| b.iter().position(not_ws)).map(|n| end + n);
            match (open, close) {
                (Some(open), Some(close)) if input.get(open) == Some(&b'{') && input.get(close) == Some(&b'}') => {
                    let bytes = input.get(open..=close).ok_or_else(|| fail("a manifest not in the input"))?;
                    Ok(RawManifest { bytes, kind })
                }
                _ => Err(fail("a manifest not between braces")),
            }
        }
    }

    /// A `kind` value's string, borrowed when it has no escapes; anything else is not a kind
    /// the dispatch table knows.
    fn kind_of(text: &str) -> KindProbe<'_> {
        match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(s) if !s.contains('\\') => KindProbe::Known(Some(Cow::Borrowed(s))),
            Some(_) => serde_json::from_str::<String>(text)
                .map_or(KindProbe::Unknown, |s| KindProbe::Known(Some(Cow::Owned(s)))),
            None => KindProbe::Unknown,
        }
    }
}

fn msgpack_raw_event(bytes: &[u8]) -> Option<RawEvent<'_>> {
    let mut r = MsgpackReader { b: bytes, i: 0 };
    let n = r.map_len()?;
    let (mut ts, mut applied, mut deleted) = (None, None, None);
    for _ in 0..n {
        let key = r.str()?;
        match key {
            "ts" if ts.is_none() => ts = Some(r.int()?),
            "applied_objs" if applied.is_none() => applied = Some(r.manifests()?),
            "deleted_objs" if deleted.is_none() => deleted = Some(r.manifests()?),
            "ts" | "applied_objs" | "deleted_objs" => return None,
            _ => r.skip()?,
        }
    }
    if r.i != bytes.len() {
        return None;
    }
    Some(RawEvent { ts: ts?, applied_objs: applied?, deleted_objs: deleted? })
}

/// Decodes one manifest from its bytes, as the careful reader decodes values: a key twice, a
/// number no 64-bit integer or float holds exactly (or, in msgpack, a float JSON has not), and
/// a value nested too deep are errors, never changed quietly. (Errors have no position: the
/// caller says which manifest it is.)
pub fn decode_manifest(bytes: &[u8], format: Format) -> Result<Manifest, TraceError> {
    let mut stash = Stash::new(format);
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let res = ValueSeed { stash: &mut stash }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
            match res {
                Ok(v) if stash.unsure_number => check_json_numbers(bytes).map(|()| v),
                Ok(v) => Ok(v),
                Err(e) => match (stash.problem.take(), TraceError::from_json(e)) {
                    (Some(problem), TraceError::Syntax { .. }) => Err(problem),
                    // A number too large for a float: serde_json does not say which; the text does.
                    (_, e @ TraceError::InexactNumber { .. }) => check_json_numbers(bytes).and(Err(e)),
                    (_, e) => Err(e),
                },
            }
        }
        Format::Msgpack => {
            let mut de = rmp_serde::Deserializer::new(bytes);
            de.set_max_depth(MAX_DEPTH);
            ValueSeed { stash: &mut stash }.deserialize(&mut de).map_err(|e| match stash.problem.take() {
                Some(problem) if matches!(e, rmp_serde::decode::Error::Syntax(_)) => problem,
                _ => msgpack_error(e),
            })
        }
    }
}

/// A manifest's `kind`, read without decoding the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindProbe<'a> {
    /// The manifest has this kind, or none (`None`).
    Known(Option<Cow<'a, str>>),
    /// Could not tell cheaply (a non-string kind, two of them): decode the manifest.
    Unknown,
}

impl KindProbe<'_> {
    /// For messages and tests: the kind, `none` or `unknown`.
    pub fn into_owned(self) -> String {
        match self {
            KindProbe::Known(Some(k)) => k.into_owned(),
            KindProbe::Known(None) => "none".into(),
            KindProbe::Unknown => "unknown".into(),
        }
    }
}

/// Appends one encoded event to `out` (as the writer encodes events), its manifests already
/// encoded in `format`.
pub fn encode_event(
    out: &mut Vec<u8>,
    format: Format,
    ts: i64,
    applied: &[&[u8]],
    deleted: &[&[u8]],
) -> Result<(), TraceError> {
    match format {
        Format::Json => {
            out.extend_from_slice(b"{\"ts\":");
            out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
            for (name, list) in [(&b",\"applied_objs\":["[..], applied), (b"],\"deleted_objs\":[", deleted)] {
                out.extend_from_slice(name);
                for (i, obj) in list.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(obj);
                }
            }
            out.extend_from_slice(b"]}");
        }
        Format::Msgpack => {
            let w = |e: rmp::encode::ValueWriteError| TraceError::Encode { format, message: e.to_string() };
            rmp::encode::write_map_len(out, 3).map_err(w)?;
            rmp::encode::write_str(out, "ts").map_err(w)?;
            rmp::encode::write_sint(out, ts).map_err(w)?;
            for (name, list) in [("applied_objs", applied), ("deleted_objs", deleted)] {
                rmp::encode::write_str(out, name).map_err(w)?;
                rmp::encode::write_array_len(out, list.len() as u32).map_err(w)?;
                for obj in list {
                    out.extend_from_slice(obj);
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// msgpack walking

/// Why a msgpack value could not be skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The input ends inside the value.
    Incomplete,
    /// Not a value skel accepts, at this offset.
    Invalid(usize, String),
    /// A container opens more than `MAX_DEPTH` levels deep, at this offset.
    TooDeep(usize),
}

/// The end of the msgpack value at `i`, checking it has no binary or extension values and
/// nests within bounds; when `strict` (manifests), also that strings are valid UTF-8 and map
/// keys are strings. (The splitter only needs the end: the worker checks strictly.)
///
/// A loop over a stack of open containers, not recursion: this walks every byte of a msgpack
/// trace, so it is the msgpack floor.
pub(crate) fn msgpack_skip(b: &[u8], mut i: usize, strict: bool) -> Result<usize, Skip> {
    // Most values skipped one by one are small integers and short strings: no stack for them.
    match b.get(i) {
        Some(0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3) => return Ok(i + 1),
        Some(&m @ 0xa0..=0xbf) => {
            let end = i + 1 + usize::from(m & 0x1f);
            let s = b.get(i + 1..end).ok_or(Skip::Incomplete)?;
            if strict && !utf8(s) {
                return Err(Skip::Invalid(i + 1, "a string is not valid UTF-8".into()));
            }
            return Ok(end);
        }
        _ => {}
    }
    // Items still to read in each open container; a map counts its keys and values apart, so
    // an even count left in a map means a key comes next. The first levels live on the stack
    // (most values skipped are shallow, and this runs once per skipped value); deeper ones in
    // `deep`.
    let mut open = Open { near: [(0, false); NEAR], deep: Vec::new() };
    let mut depth = 0;
    loop {
        let m = *b.get(i).ok_or(Skip::Incomplete)?;
        if strict && depth > 0 {
            let (left, map) = *open.at(depth - 1);
            if map && left % 2 == 0 && !matches!(m, 0xa0..=0xbf | 0xd9 | 0xda | 0xdb) {
                return Err(Skip::Invalid(i, "a map key is not a string".into()));
            }
        }
        let be = |n: usize| -> Result<usize, Skip> {
            let bytes = b.get(i + 1..i + 1 + n).ok_or(Skip::Incomplete)?;
            Ok(bytes.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x)))
        };
        let (header, container) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, None),
            0xcc | 0xd0 => (2, None),
            0xcd | 0xd1 => (3, None),
            0xca | 0xce | 0xd2 => (5, None),
            0xcb | 0xcf | 0xd3 => (9, None),
            0xa0..=0xbf | 0xd9 | 0xda | 0xdb => {
                let (start, len) = match m {
                    0xd9 => (i + 2, be(1)?),
                    0xda => (i + 3, be(2)?),
                    0xdb => (i + 5, be(4)?),
                    _ => (i + 1, usize::from(m & 0x1f)),
                };
                let s = b.get(start..start + len).ok_or(Skip::Incomplete)?;
                if strict && !utf8(s) {
                    return Err(Skip::Invalid(start, "a string is not valid UTF-8".into()));
                }
                (start + len - i, None)
            }
            0x90..=0x9f => (1, Some((usize::from(m & 0x0f), false))),
            0xdc => (3, Some((be(2)?, false))),
            0xdd => (5, Some((be(4)?, false))),
            0x80..=0x8f => (1, Some((usize::from(m & 0x0f) * 2, true))),
            0xde => (3, Some((be(2)? * 2, true))),
            0xdf => (5, Some((be(4)? * 2, true))),
            0xc4..=0xc6 => return Err(Skip::Invalid(i, "binary data is not allowed in a trace".into())),
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                return Err(Skip::Invalid(i, "msgpack extension values are not allowed in a trace".into()))
            }
            0xc1 => return Err(Skip::Invalid(i, "`0xc1` is not a valid msgpack marker".into())),
        };
        if b.len() < i + header {
            return Err(Skip::Incomplete);
        }
        i += header;
        if let Some((items, map)) = container.filter(|(items, _)| *items > 0) {
            if depth == MAX_DEPTH {
                return Err(Skip::TooDeep(i));
            }
            open.push(depth, (items, map));
            depth += 1;
            continue;
        }
        // A whole value is read: count it off its container, and off every container it closes.
        loop {
            let Some(d) = depth.checked_sub(1) else { return Ok(i) };
            let top = open.at(d);
            top.0 -= 1;
            if top.0 > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

/// How many levels of open containers `msgpack_skip` keeps on the stack.
const NEAR: usize = 12;

/// `msgpack_skip`'s stack of open containers: (items left, is a map).
struct Open {
    near: [(usize, bool); NEAR],
    deep: Vec<(usize, bool)>,
}

impl Open {
    #[inline(always)]
    fn at(&mut self, depth: usize) -> &mut (usize, bool) {
        if depth < NEAR {
            &mut self.near[depth]
        } else {
            &mut self.deep[depth - NEAR]
        }
    }

    #[inline(always)]
    fn push(&mut self, depth: usize, top: (usize, bool)) {
        if depth < NEAR {
            self.near[depth] = top;
        } else {
            self.deep.truncate(depth - NEAR);
            self.deep.push(top);
        }
    }
}

/// Whether a string's bytes are UTF-8: most are ASCII, which is checked a word at a time.
pub fn utf8(s: &[u8]) -> bool {
    s.is_ascii() || std::str::from_utf8(s).is_ok()
}

/// The string a whole slice encodes, if it is one msgpack string.
pub(crate) fn msgpack_str(b: &[u8]) -> Option<&str> {
    let mut r = MsgpackReader { b, i: 0 };
    let s = r.str()?;
    (r.i == b.len()).then_some(s)
}

/// The `ts` of an encoded msgpack event.
pub(crate) fn msgpack_event_ts(b: &[u8]) -> Option<i64> {
    let mut r = MsgpackReader { b, i: 0 };
    let n = r.map_len()?;
    for _ in 0..n {
        if r.str()? == "ts" {
            return r.int();
        }
        r.skip()?;
    }
    None
}

/// A cursor over msgpack bytes that reads one item at a time (for decoding along a shape).
pub struct MsgpackReader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> MsgpackReader<'a> {
    pub fn new(b: &'a [u8]) -> MsgpackReader<'a> {
        MsgpackReader { b, i: 0 }
    }

    /// The offset of the next item.
    pub fn pos(&self) -> usize {
        self.i
    }

    /// All the bytes read from.
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }

    /// The bytes from `start` to the cursor.
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.b.get(start..self.i).unwrap_or(&[])
    }

    /// Whether the next item is a map; an array.
    pub fn at_map(&self) -> bool {
        matches!(self.b.get(self.i), Some(0x80..=0x8f | 0xde | 0xdf))
    }

    pub fn at_array(&self) -> bool {
        matches!(self.b.get(self.i), Some(0x90..=0x9f | 0xdc | 0xdd))
    }

    fn byte(&mut self) -> Option<u8> {
        let m = *self.b.get(self.i)?;
        self.i += 1;
        Some(m)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        let bytes = self.b.get(self.i..self.i + n)?;
        self.i += n;
        Some(bytes.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    }

    pub fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x80..=0x8f => Some(usize::from(m & 0x0f)),
            0xde => self.be(2).map(|n| n as usize),
            0xdf => self.be(4).map(|n| n as usize),
            _ => None,
        }
    }

    pub fn array_len(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x90..=0x9f => Some(usize::from(m & 0x0f)),
            0xdc => self.be(2).map(|n| n as usize),
            0xdd => self.be(4).map(|n| n as usize),
            _ => None,
        }
    }

    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.str_bytes()?).ok()
    }

    /// A string's bytes, not yet checked to be UTF-8.
    pub fn str_bytes(&mut self) -> Option<&'a [u8]> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return None,
        };
        let s = self.b.get(self.i..self.i + len)?;
        self.i += len;
        Some(s)
    }

    pub fn int(&mut self) -> Option<i64> {
        let m = self.byte()?;
        match m {
            0x00..=0x7f => Some(i64::from(m)),
            0xe0..=0xff => Some(i64::from(m as i8)),
            0xcc => self.be(1).map(|v| v as i64),
            0xcd => self.be(2).map(|v| v as i64),
            0xce => self.be(4).map(|v| v as i64),
            0xcf => self.be(8).and_then(|v| i64::try_from(v).ok()),
            0xd0 => self.be(1).map(|v| i64::from(v as u8 as i8)),
            0xd1 => self.be(2).map(|v| i64::from(v as u16 as i16)),
            0xd2 => self.be(4).map(|v| i64::from(v as u32 as i32)),
            0xd3 => self.be(8).map(|v| v as i64),
            _ => None,
        }
    }

    /// Skips the next value, checking it as a manifest's value (see `msgpack_skip`).
    pub fn skip(&mut self) -> Option<()> {
        self.i = msgpack_skip(self.b, self.i, true).ok()?;
        Some(())
    }

    /// Skips the next value, checking only its structure (as the splitter does).
    pub fn skip_structure(&mut self) -> Option<()> {
        self.i = msgpack_skip(self.b, self.i, false).ok()?;
        Some(())
    }

    /// A list of manifests (maps), each checked and kept as bytes, with its `kind`.
    fn manifests(&mut self) -> Option<Vec<RawManifest<'a>>> {
        let n = self.array_len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let start = self.i;
            let mut kind = KindProbe::Known(None);
            for _ in 0..self.map_len()? {
                if self.str()? == "kind" {
                    kind = match (kind, self.at_str()) {
                        (KindProbe::Known(None), true) => KindProbe::Known(Some(Cow::Borrowed(self.str()?))),
                        // Not a string, or a second `kind`: the decoder decides.
                        _ => {
                            self.skip()?;
                            KindProbe::Unknown
                        }
                    };
                } else {
                    self.skip()?;
                }
            }
            out.push(RawManifest { bytes: self.b.get(start..self.i)?, kind });
        }
        Some(out)
    }

    fn at_str(&self) -> bool {
        matches!(self.b.get(self.i), Some(0xa0..=0xbf | 0xd9 | 0xda | 0xdb))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mp(v: &serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap()
    }

    #[test]
    fn json_raw_event_keeps_manifest_bytes() {
        let e = br#"{"ts": 5, "applied_objs": [ {"kind":"Pod", "a": [1, {"b": "}"}]} ], "deleted_objs": []}"#;
        let DecodedEvent::Raw(raw) = decode_raw_event(e, Format::Json, 0, SlicePos::default()).unwrap() else {
            panic!("fast path")
        };
        assert_eq!(raw.ts, 5);
        let bytes = br#"{"kind":"Pod", "a": [1, {"b": "}"}]}"#;
        assert_eq!(raw.applied_objs, [RawManifest { bytes, kind: KindProbe::Known(Some("Pod".into())) }]);
    }

    #[test]
    fn unusual_events_take_the_careful_path_and_malformed_ones_fail_as_before() {
        let e = br#"{"ts": 5, "applied_objs": [], "deleted_objs": [], "ts": 6}"#;
        let err = decode_raw_event(e, Format::Json, 3, SlicePos::default()).unwrap_err();
        assert_eq!(err.event_index(), Some(3));
        assert!(matches!(err, TraceError::DuplicateKey { .. }), "{err}");
    }

    #[test]
    fn msgpack_raw_event() {
        let e = mp(
            &json!({"ts": -3, "applied_objs": [{"kind": "Pod"}], "deleted_objs": [{"kind": "Job", "x": [1.5, null]}]}),
        );
        let DecodedEvent::Raw(raw) = decode_raw_event(&e, Format::Msgpack, 0, SlicePos::default()).unwrap() else {
            panic!("fast path")
        };
        assert_eq!(raw.ts, -3);
        assert_eq!(
            decode_manifest(raw.deleted_objs[0].bytes, Format::Msgpack).unwrap(),
            json!({"kind": "Job", "x": [1.5, null]})
        );
    }

    /// The kind of each manifest, as the dispatch table needs it (JSON / msgpack when they differ).
    #[test]
    fn kinds_are_read_on_the_way() {
        let kinds = |manifests: &[&str]| {
            let e = format!(r#"{{"ts": 1, "applied_objs": [{}], "deleted_objs": []}}"#, manifests.join(", "));
            let json = match decode_raw_event(e.as_bytes(), Format::Json, 0, SlicePos::default()).unwrap() {
                DecodedEvent::Raw(raw) => raw.applied_objs.iter().map(|m| m.kind.clone().into_owned()).collect(),
                DecodedEvent::Full(_) => vec![],
            };
            let m = mp(&serde_json::from_str::<serde_json::Value>(&e).unwrap());
            let msgpack: Vec<_> = match decode_raw_event(&m, Format::Msgpack, 0, SlicePos::default()).unwrap() {
                DecodedEvent::Raw(raw) => raw.applied_objs.iter().map(|m| m.kind.clone().into_owned()).collect(),
                DecodedEvent::Full(_) => vec![],
            };
            json.into_iter()
                .zip(msgpack)
                .map(|(j, m)| if j == m { j } else { format!("{j} / {m}") })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&[
                r#"{"apiVersion": "v1", "kind" : "Pod"}"#,
                r#"{"a": {"kind": "X"}}"#,
                r#"{"kind": "P\u006fd"}"#,
                r#"{"ki\u006ed": "Pod", "x": 1}"#,
                r#"{"x": 1, "ki\u006ed": "Pod"}"#,
                r#"{"kind": 5}"#
            ]),
            // An escaped first key cannot be located: the whole event goes the careful way.
            Vec::<String>::new()
        );
        assert_eq!(
            kinds(&[
                r#"{"apiVersion": "v1", "kind" : "Pod"}"#,
                r#"{"a": {"kind": "X"}}"#,
                r#"{"kind": "P\u006fd"}"#,
                r#"{"x": 1, "ki\u006ed": "Pod"}"#,
                r#"{"kind": 5}"#,
                r#"{"kind": "Pod", "kind": "Job"}"#
            ]),
            // (The msgpack copy is made through a JSON map, which keeps one `kind`.)
            ["Pod", "none", "Pod", "Pod", "unknown", "unknown / Job"]
        );
    }

    #[test]
    fn encode_matches_the_writer() {
        let v = json!({"kind": "Pod", "n": 1});
        let event = Event { ts: 7, applied_objs: vec![v.clone(), v.clone()], deleted_objs: vec![] };
        let raw = serde_json::to_vec(&v).unwrap();
        let mut out = Vec::new();
        encode_event(&mut out, Format::Json, 7, &[&raw, &raw], &[]).unwrap();
        assert_eq!(out, serde_json::to_vec(&event).unwrap());
        let raw = mp(&v);
        let mut out = Vec::new();
        encode_event(&mut out, Format::Msgpack, 7, &[&raw, &raw], &[]).unwrap();
        assert_eq!(out, rmp_serde::to_vec_named(&event).unwrap());
    }

    #[test]
    fn msgpack_skip_nests_up_to_the_limit() {
        let nested = |levels: usize| {
            let mut b = vec![0x91; levels];
            b.push(0x01);
            b
        };
        assert_eq!(msgpack_skip(&nested(MAX_DEPTH), 0, true), Ok(MAX_DEPTH + 1));
        assert_eq!(msgpack_skip(&nested(MAX_DEPTH + 1), 0, true), Err(Skip::TooDeep(MAX_DEPTH + 1)));
    }

    #[test]
    fn msgpack_skip_rejects_what_a_trace_cannot_hold() {
        assert!(matches!(msgpack_skip(&[0xc4, 1, 0], 0, true), Err(Skip::Invalid(..))));
        assert!(matches!(msgpack_skip(&[0x81, 0x01, 0x01], 0, true), Err(Skip::Invalid(..))));
        assert!(matches!(msgpack_skip(&[0xa2, 0xff, 0xfe], 0, true), Err(Skip::Invalid(..))));
        assert_eq!(msgpack_skip(&[0x92, 0x01], 0, true), Err(Skip::Incomplete));
        assert_eq!(msgpack_skip(&[0x92, 0x01, 0xc0], 0, true), Ok(3));
        // Keys are checked in nested maps too, and only keys: a value may be anything.
        assert!(matches!(msgpack_skip(&[0x91, 0x81, 0xa1, b'k', 0x81, 0x01, 0x02], 0, true), Err(Skip::Invalid(5, _))));
        assert_eq!(msgpack_skip(&[0x91, 0x81, 0xa1, b'k', 0x81, 0xa1, b'j', 0x90], 0, true), Ok(8));
        assert_eq!(msgpack_skip(&[0x81, 0x01, 0x02], 0, false), Ok(3));
        assert_eq!(msgpack_skip(&[0xa2, 0xc3, 0xa9], 0, true), Ok(3));
        // An empty container closes at once; a string's length is checked against the input.
        assert_eq!(msgpack_skip(&[0x93, 0x90, 0x80, 0x01, 0xff], 0, true), Ok(4));
        assert_eq!(msgpack_skip(&[0xa3, b'a'], 0, true), Err(Skip::Incomplete));
        assert_eq!(msgpack_skip(&[0xdc, 0x00], 0, true), Err(Skip::Incomplete));
    }
}
