//! `TraceError` (every way reading or writing a trace can fail), its `Location`, and `ReadError`.

use std::fmt;

use miette::Diagnostic;
use thiserror::Error;

use crate::model::Format;

/// How deep values nest, at most, in every reader (serde_json's own limit, which SimKube's
/// reader has too).
pub const MAX_DEPTH: usize = 128;

/// How deep an object of an event may nest, at most, so that its event can be read again: the
/// event's `{` and its `applied_objs` `[` take two of `MAX_DEPTH`'s levels.
pub const OBJECT_MAX_DEPTH: usize = MAX_DEPTH - 2;

/// Where in the input a problem was found.
///
/// JSON inputs carry `line`/`column` (1-based, as serde_json counts them); msgpack inputs carry the
/// byte `offset` (how many bytes had been read when the problem was seen). `path` names the part of
/// the trace (`config`, `events[12].applied_objs[3]`, ...) and `event` the 0-based event index when
/// the problem is inside `events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub offset: Option<u64>,
    pub event: Option<usize>,
    pub path: Option<String>,
}

impl Location {
    pub fn is_empty(&self) -> bool {
        self.line.is_none() && self.offset.is_none() && self.path.is_none() && self.event.is_none()
    }
}

/// Renders with a leading space, e.g. `at line 3, column 14, in event 12 (...)` where the
/// parentheses hold the path in backticks, or as nothing when nothing is known, so messages can
/// append it directly.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = " ";
        if let Some(line) = self.line {
            write!(f, "{sep}at line {line}")?;
            if let Some(column) = self.column {
                write!(f, ", column {column}")?;
            }
            sep = ", ";
        } else if let Some(offset) = self.offset {
            write!(f, "{sep}at byte offset {offset}")?;
            sep = ", ";
        }
        match (self.event, &self.path) {
            (Some(event), Some(path)) => write!(f, "{sep}in event {event} (`{path}`)"),
            (Some(event), None) => write!(f, "{sep}in event {event} (`events[{event}]`)"),
            (None, Some(path)) => write!(f, "{sep}in `{path}`"),
            (None, None) => Ok(()),
        }
    }
}

/// Everything that can go wrong reading or writing a trace. Codes are stable (`skel::trace::*`).
///
/// Locations are boxed so the error stays small: it travels in every `Result` of the event loop.
#[derive(Debug, Error, Diagnostic)]
pub enum TraceError {
    #[error("invalid {format}: {message}{location}")]
    #[diagnostic(
        code(skel::trace::syntax),
        help("the input is not well-formed {format}; check that it is a SimKube trace and that its format (`.json` or `.sktrace`) is the one being read")
    )]
    Syntax { format: Format, message: String, location: Box<Location> },

    #[error("the input is empty: expected a {format} trace")]
    #[diagnostic(code(skel::trace::empty), help("check the file name, and that the trace was exported completely"))]
    Empty { format: Format },

    #[error("the trace ends unexpectedly{location}")]
    #[diagnostic(
        code(skel::trace::unexpected_eof),
        help("the file looks truncated (or empty); export or copy the trace again")
    )]
    UnexpectedEof { location: Box<Location> },

    #[error("{what} must be {expected}, found {found}{location}")]
    #[diagnostic(code(skel::trace::wrong_type), help("{help}"))]
    WrongType { what: String, expected: String, found: String, help: String, location: Box<Location> },

    #[error("unsupported trace version `{found}`{location}")]
    #[diagnostic(code(skel::trace::unsupported_version), help("skel reads SimKube trace format version 2"))]
    UnsupportedVersion { found: String, location: Box<Location> },

    #[error("the trace has no `{name}` section{location}")]
    #[diagnostic(
        code(skel::trace::missing_section),
        help("a SimKube trace needs all five top-level keys: `version`, `config`, `events`, `index` and `pod_lifecycles`")
    )]
    MissingSection { name: &'static str, location: Box<Location> },

    #[error("the trace has a second `{name}` section{location}")]
    #[diagnostic(
        code(skel::trace::duplicate_section),
        help("each top-level key of a trace may appear only once; remove the extra `{name}`")
    )]
    DuplicateSection { name: &'static str, location: Box<Location> },

    #[error("{what} has `{key}` twice{location}")]
    #[diagnostic(
        code(skel::trace::duplicate_key),
        help("remove one of the two `{key}` entries; skel does not pick one of them quietly")
    )]
    DuplicateKey { what: String, key: String, location: Box<Location> },

    /// `number`: `the number `1e-400``, or `a number` where its text is not known.
    #[error("{number} cannot be kept exactly: {why}{location}")]
    #[diagnostic(
        code(skel::trace::inexact_number),
        help("skel never changes a number quietly; it holds numbers as SimKube does, as 64-bit integers or floats; write this one as a string, or as a number that fits")
    )]
    InexactNumber { number: String, why: &'static str, location: Box<Location> },

    #[error("a value is nested more than {limit} levels deep{location}")]
    #[diagnostic(
        code(skel::trace::too_deep),
        help("skel reads objects nested up to {limit} levels deep, as SimKube's reader does; no Kubernetes object is that deep: check what wrote this one")
    )]
    TooDeep { limit: usize, location: Box<Location> },

    #[error("{what} has no `{key}`{location}")]
    #[diagnostic(code(skel::trace::missing_key), help("{help}"))]
    MissingKey { what: String, key: &'static str, help: String, location: Box<Location> },

    #[error("bad tracer config: {message}{location}")]
    #[diagnostic(code(skel::trace::bad_config), help("{help}"))]
    BadConfig { message: String, help: String, location: Box<Location> },

    #[error("unexpected data after the end of the trace{location}")]
    #[diagnostic(
        code(skel::trace::trailing_data),
        help("a trace file holds exactly one trace; remove what follows it")
    )]
    TrailingData { location: Box<Location> },

    #[error("cannot {action} the trace: {source}")]
    #[diagnostic(
        code(skel::trace::io),
        help("check that the file exists, is readable (or the output writable) and the disk is not full")
    )]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot encode the trace as {format}: {message}")]
    #[diagnostic(
        code(skel::trace::encode),
        help("this trace cannot be represented in {format}; try the other output format")
    )]
    Encode { format: Format, message: String },

    #[error("cannot write {what}: {reason}")]
    #[diagnostic(
        code(skel::trace::writer_misuse),
        help("write the events together, one after another, and each section once")
    )]
    WriterMisuse { what: String, reason: String },
}

impl TraceError {
    /// Where the problem is, for errors that come from reading an input.
    pub fn location(&self) -> Option<&Location> {
        match self {
            TraceError::Syntax { location, .. }
            | TraceError::UnexpectedEof { location }
            | TraceError::WrongType { location, .. }
            | TraceError::UnsupportedVersion { location, .. }
            | TraceError::MissingSection { location, .. }
            | TraceError::DuplicateSection { location, .. }
            | TraceError::DuplicateKey { location, .. }
            | TraceError::InexactNumber { location, .. }
            | TraceError::TooDeep { location, .. }
            | TraceError::MissingKey { location, .. }
            | TraceError::BadConfig { location, .. }
            | TraceError::TrailingData { location } => Some(location),
            TraceError::Empty { .. }
            | TraceError::Io { .. }
            | TraceError::Encode { .. }
            | TraceError::WriterMisuse { .. } => None,
        }
    }

    pub(crate) fn location_mut(&mut self) -> Option<&mut Location> {
        match self {
            TraceError::Syntax { location, .. }
            | TraceError::UnexpectedEof { location }
            | TraceError::WrongType { location, .. }
            | TraceError::UnsupportedVersion { location, .. }
            | TraceError::MissingSection { location, .. }
            | TraceError::DuplicateSection { location, .. }
            | TraceError::DuplicateKey { location, .. }
            | TraceError::InexactNumber { location, .. }
            | TraceError::TooDeep { location, .. }
            | TraceError::MissingKey { location, .. }
            | TraceError::BadConfig { location, .. }
            | TraceError::TrailingData { location } => Some(location),
            TraceError::Empty { .. }
            | TraceError::Io { .. }
            | TraceError::Encode { .. }
            | TraceError::WriterMisuse { .. } => None,
        }
    }

    /// The 0-based index of the event the problem is in, if it is inside `events`.
    pub fn event_index(&self) -> Option<usize> {
        self.location().and_then(|l| l.event)
    }

    /// Fills in the parts of the location that are still unknown.
    /// Fills in the parts of the location that are not known yet.
    pub fn locate(mut self, at: Location) -> Self {
        if let Some(loc) = self.location_mut() {
            loc.line = loc.line.or(at.line);
            loc.column = loc.column.or(at.column);
            loc.offset = loc.offset.or(at.offset);
            loc.event = loc.event.or(at.event);
            if loc.path.is_none() {
                loc.path = at.path;
            }
        }
        self
    }

    pub(crate) fn wrong_type(
        what: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        TraceError::WrongType {
            what: what.into(),
            expected: expected.into(),
            found: found.into(),
            help: help.into(),
            location: Box::default(),
        }
    }

    /// A number (its text) that a 64-bit integer or float cannot hold (`why` says which way).
    pub(crate) fn inexact_number(text: &str, why: &'static str) -> Self {
        TraceError::InexactNumber { number: format!("the number `{text}`"), why, location: Box::default() }
    }

    /// serde_json's error as a trace error, without its position (the caller knows where the
    /// text it read is): a value nested too deep and a number too large for a float are what
    /// they are, not "invalid JSON".
    pub fn from_json(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        let text = e.to_string();
        // serde_json's message ends with the position, which the location renders itself.
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        match e.classify() {
            Category::Io => TraceError::Io { action: "read", source: e.into() },
            Category::Eof => TraceError::UnexpectedEof { location: Box::default() },
            Category::Syntax | Category::Data if message == "recursion limit exceeded" => {
                TraceError::TooDeep { limit: MAX_DEPTH, location: Box::default() }
            }
            Category::Syntax | Category::Data if message == "number out of range" => {
                let why = "it is beyond the largest 64-bit float (it would be infinite)";
                TraceError::InexactNumber { number: "a number".into(), why, location: Box::default() }
            }
            Category::Syntax | Category::Data => {
                TraceError::Syntax { format: Format::Json, message, location: Box::default() }
            }
        }
    }

    pub(crate) fn bad_config(message: impl Into<String>, help: impl Into<String>) -> Self {
        TraceError::BadConfig { message: message.into(), help: help.into(), location: Box::default() }
    }

    pub(crate) fn write_io(source: std::io::Error) -> Self {
        TraceError::Io { action: "write", source }
    }
}

/// The error of [`crate::read_trace`]: the trace was bad, or the visitor said stop.
#[derive(Debug)]
pub enum ReadError<E> {
    Trace(TraceError),
    Visitor(E),
}

impl<E> From<TraceError> for ReadError<E> {
    fn from(e: TraceError) -> Self {
        ReadError::Trace(e)
    }
}

impl<E: fmt::Display> fmt::Display for ReadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Trace(e) => e.fmt(f),
            ReadError::Visitor(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ReadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Trace(e) => Some(e),
            ReadError::Visitor(e) => Some(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn location_renders_json_and_event() {
        let loc = Location {
            line: Some(3),
            column: Some(14),
            event: Some(12),
            path: Some("events[12].ts".into()),
            ..Location::default()
        };
        assert_eq!(loc.to_string(), " at line 3, column 14, in event 12 (`events[12].ts`)");
    }

    #[test]
    fn location_renders_offset_and_section() {
        let loc = Location { offset: Some(77), path: Some("config".into()), ..Location::default() };
        assert_eq!(loc.to_string(), " at byte offset 77, in `config`");
        assert_eq!(Location::default().to_string(), "");
    }

    #[test]
    fn locate_keeps_known_parts() {
        let e =
            TraceError::bad_config("x", "y").locate(Location { line: Some(1), column: Some(2), ..Location::default() });
        assert_eq!(e.location().and_then(|l| l.line), Some(1));
        assert_eq!(e.event_index(), None);
    }
}
