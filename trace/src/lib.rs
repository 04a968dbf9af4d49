//! skel-trace: the SimKube trace model and its streaming readers and writers (JSON and msgpack).
//!
//! A trace is `{"version": 2, "config": .., "events": [..], "index": .., "pod_lifecycles": ..}`.
//! [`read_trace`] streams one to a [`TraceVisitor`] an event at a time; [`TraceWriter`] writes
//! one back; [`Trace`] holds a whole trace in memory. This crate knows nothing about SKEL.

mod config;
mod decode;
mod error;
mod events;
pub mod fsio;
mod index;
mod lifecycles;
mod model;
mod raw;
mod read;
mod split;
pub mod synth;
mod trace;
mod write;

pub use config::{default_pod_spec_template_paths, Config, TrackedObjectConfig};
pub use decode::{unsure_float, value_from};
pub use error::{Location, ReadError, TraceError, MAX_DEPTH, OBJECT_MAX_DEPTH};
pub use events::read_events;
pub use index::check_index;
pub use lifecycles::{PodLifecycle, PodLifecycleEntry, PodLifecycles};
pub use model::{Event, Format, Manifest, Section, TRACE_VERSION};
pub use raw::json::{offset_in, EventShell, KeySeed};
pub use raw::{
    decode_manifest, decode_raw_event, encode_event, utf8, DecodedEvent, KindProbe, MsgpackReader, RawEvent,
    RawManifest,
};
pub use read::{decode_event, read_trace, SlicePos, TraceVisitor};
pub use split::{BufferPool, EventBatch, Splitter, Unit};
pub use trace::Trace;
pub use write::TraceWriter;
