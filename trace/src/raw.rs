//! Events whose manifests stay bytes until something needs them: the parallel path decodes an
//! event's shell (`ts` and the two lists) and keeps each manifest as its encoded bytes, so a
//! manifest no statement can touch is copied to the output without ever being decoded. Also the
//! msgpack walker the splitter uses to find where values end.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::error::TraceError;
use crate::model::{Format, Manifest};
use crate::read::{decode_event, SlicePos};
use crate::Event;

/// An event whose manifests are still encoded.
#[derive(Debug)]
pub struct RawEvent<'a> {
    pub ts: i64,
    pub applied_objs: Vec<&'a [u8]>,
    pub deleted_objs: Vec<&'a [u8]>,
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
    #[derive(serde::Deserialize)]
    struct Shell<'a> {
        ts: i64,
        #[serde(borrow)]
        applied_objs: Vec<&'a RawValue>,
        #[serde(borrow)]
        deleted_objs: Vec<&'a RawValue>,
    }
    // One check of the whole event's UTF-8 is cheaper than the parser's check of each string,
    // which `from_str` skips.
    let shell: Shell<'_> = serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
    Some(RawEvent {
        ts: shell.ts,
        applied_objs: json_objects(shell.applied_objs)?,
        deleted_objs: json_objects(shell.deleted_objs)?,
    })
}

/// The manifests' bytes; `None` if one is not an object.
fn json_objects(list: Vec<&RawValue>) -> Option<Vec<&[u8]>> {
    list.into_iter().map(|r| Some(r.get().as_bytes()).filter(|b| b.first() == Some(&b'{'))).collect()
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

/// Decodes one manifest from its bytes.
pub fn decode_manifest(bytes: &[u8], format: Format) -> Result<Manifest, TraceError> {
    match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| TraceError::Syntax {
            format,
            message: e.to_string(),
            location: Box::default(),
        }),
        Format::Msgpack => rmp_serde::from_slice(bytes).map_err(|e| TraceError::Syntax {
            format,
            message: e.to_string(),
            location: Box::default(),
        }),
    }
}

/// A manifest's `kind`, read without decoding the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindProbe<'a> {
    /// The manifest has this kind, or none (`None`).
    Known(Option<Cow<'a, str>>),
    /// Could not tell cheaply (an escaped key, a non-string kind): decode the manifest.
    Unknown,
}

/// Finds the top-level `kind` of an encoded manifest (which must be a well-formed map, as the
/// fast decoder has checked).
pub fn probe_kind(bytes: &[u8], format: Format) -> KindProbe<'_> {
    match format {
        Format::Json => json_probe_kind(bytes).unwrap_or(KindProbe::Unknown),
        Format::Msgpack => msgpack_probe_kind(bytes).unwrap_or(KindProbe::Unknown),
    }
}

fn json_probe_kind(b: &[u8]) -> Option<KindProbe<'_>> {
    let ws = |b: &[u8], mut i: usize| {
        while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    };
    let mut kind = None;
    let mut i = ws(b, 1);
    if b.get(i) == Some(&b'}') {
        return Some(KindProbe::Known(None));
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = i + 1 + memchr::memchr(b'"', b.get(i + 1..)?)?;
        let key = b.get(i + 1..key_end)?;
        if key.contains(&b'\\') {
            return None;
        }
        i = ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        let len = crate::split::json_value_len(b.get(i..)?)?;
        if key == b"kind" {
            if kind.is_some() {
                // Which `kind` counts is the decoder's business: let it decide.
                return None;
            }
            let value = b.get(i..i + len)?;
            kind = Some(match value.first() {
                Some(b'"') if !value.contains(&b'\\') => {
                    Cow::Borrowed(std::str::from_utf8(value.get(1..len - 1)?).ok()?)
                }
                Some(b'"') => Cow::Owned(serde_json::from_slice::<String>(value).ok()?),
                _ => return None,
            });
            // A second top-level `kind` would need the text `"kind"` again: when it does not
            // occur in the rest of the object at all, there is nothing more to look at.
            let rest = b.get(i + len..)?;
            if memchr::memmem::find(rest, b"\"kind\"").is_none() && !rest.contains(&b'\\') {
                return Some(KindProbe::Known(kind));
            }
        }
        i = ws(b, i + len);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            // Every key was looked at: a second `kind` would have been seen.
            Some(b'}') => return Some(KindProbe::Known(kind)),
            _ => return None,
        }
    }
}

fn msgpack_probe_kind(b: &[u8]) -> Option<KindProbe<'_>> {
    let mut r = MsgpackReader { b, i: 0 };
    let n = r.map_len()?;
    let mut kind = None;
    for _ in 0..n {
        let key = r.str()?;
        if key == "kind" {
            if kind.is_some() {
                return None;
            }
            kind = Some(Cow::Borrowed(r.str()?));
            // Another `kind` key would be the bytes of the string "kind" again.
            if memchr::memmem::find(b.get(r.i..)?, b"\xa4kind").is_none() {
                return Some(KindProbe::Known(kind));
            }
        } else {
            r.skip()?;
        }
    }
    Some(KindProbe::Known(kind))
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
}

const MAX_DEPTH: usize = 128;

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
    // an even count left in a map means a key comes next.
    let mut open = [(0usize, false); MAX_DEPTH + 1];
    let mut depth = 0;
    loop {
        let m = *b.get(i).ok_or(Skip::Incomplete)?;
        if strict && depth > 0 {
            let (left, map) = open[depth - 1];
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
                return Err(Skip::Invalid(i, format!("values are nested more than {MAX_DEPTH} levels deep")));
            }
            open[depth] = (items, map);
            depth += 1;
            continue;
        }
        // A whole value is read: count it off its container, and off every container it closes.
        loop {
            let Some(top) = depth.checked_sub(1).and_then(|d| open.get_mut(d)) else { return Ok(i) };
            top.0 -= 1;
            if top.0 > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

/// Whether a string's bytes are UTF-8: most are ASCII, which is checked a word at a time.
fn utf8(s: &[u8]) -> bool {
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
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return None,
        };
        let s = self.b.get(self.i..self.i + len)?;
        self.i += len;
        std::str::from_utf8(s).ok()
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

    /// A list of manifests (maps), each checked and kept as bytes.
    fn manifests(&mut self) -> Option<Vec<&'a [u8]>> {
        let n = self.array_len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            if !matches!(self.b.get(self.i), Some(0x80..=0x8f | 0xde | 0xdf)) {
                return None;
            }
            let start = self.i;
            self.skip()?;
            out.push(self.b.get(start..self.i)?);
        }
        Some(out)
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
        assert_eq!(raw.applied_objs, [br#"{"kind":"Pod", "a": [1, {"b": "}"}]}"#.as_slice()]);
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
            decode_manifest(raw.deleted_objs[0], Format::Msgpack).unwrap(),
            json!({"kind": "Job", "x": [1.5, null]})
        );
    }

    #[test]
    fn probes() {
        assert_eq!(
            probe_kind(br#"{"apiVersion": "v1", "kind" : "Pod"}"#, Format::Json),
            KindProbe::Known(Some("Pod".into()))
        );
        assert_eq!(probe_kind(br#"{"a": {"kind": "X"}}"#, Format::Json), KindProbe::Known(None));
        assert_eq!(probe_kind(br#"{}"#, Format::Json), KindProbe::Known(None));
        assert_eq!(probe_kind(br#"{"kind": "P\u006fd"}"#, Format::Json), KindProbe::Known(Some("Pod".into())));
        assert_eq!(probe_kind(br#"{"ki\u006ed": "Pod"}"#, Format::Json), KindProbe::Unknown);
        assert_eq!(probe_kind(br#"{"kind": 5}"#, Format::Json), KindProbe::Unknown);
        // Two `kind`s: the decoder decides which one counts.
        assert_eq!(probe_kind(br#"{"kind": "Pod", "kind": "Job"}"#, Format::Json), KindProbe::Unknown);
        let m = mp(&json!({"metadata": {"kind": "no"}, "kind": "Pod"}));
        assert_eq!(probe_kind(&m, Format::Msgpack), KindProbe::Known(Some("Pod".into())));
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
        assert!(matches!(msgpack_skip(&nested(MAX_DEPTH + 1), 0, true), Err(Skip::Invalid(..))));
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
