//! Property tests: reading never panics on arbitrary or mutated input, errors keep their wording
//! rules, and whatever reads back writes and re-reads to the same trace in both formats.
#![allow(clippy::panic)] // tests report failures by panicking

mod common;

use std::io::Cursor;

use miette::Diagnostic;
use proptest::prelude::*;
use serde_json::{Map, Value};
use skel_trace::{Config, Event, Format, Trace, TraceError};

/// Reading `input` either fails with a well-formed error or gives a trace that round-trips.
fn check(input: &[u8], format: Format) -> Result<(), TestCaseError> {
    match Trace::read(input, format) {
        Err(err) => {
            let code = err.code().map(|c| c.to_string()).unwrap_or_default();
            prop_assert!(code.starts_with("skel::trace::"), "code {code}");
            let text = err.to_string();
            prop_assert!(!text.is_empty());
            for word in ["i64", "u64", "String", "Vec<", "Option<", "serde"] {
                prop_assert!(!text.contains(word), "`{word}` in `{text}`");
            }
            prop_assert!(err.help().is_some(), "no help for `{text}`");
        }
        Ok(trace) => round_trip(&trace)?,
    }
    Ok(())
}

fn round_trip(trace: &Trace) -> Result<(), TestCaseError> {
    for format in [Format::Json, Format::Msgpack] {
        let out = trace
            .write(Cursor::new(Vec::new()), format)
            .map_err(|e| TestCaseError::fail(format!("write {format}: {e}")))?
            .into_inner();
        let again =
            Trace::read(out.as_slice(), format).map_err(|e| TestCaseError::fail(format!("re-read {format}: {e}")))?;
        prop_assert_eq!(&again, trace);
    }
    Ok(())
}

/// Replaces bytes at the given positions (modulo the length), then maybe truncates.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let len = bytes.len();
    if len > 0 {
        for (at, byte) in edits {
            if let Some(b) = bytes.get_mut(at % len) {
                *b = *byte;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % len);
        }
    }
    bytes
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..5)
                .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn manifest() -> impl Strategy<Value = Value> {
    prop::collection::vec(("[a-zA-Z]{1,8}", json_value()), 0..5)
        .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<_, _>>()))
}

fn event() -> impl Strategy<Value = Event> {
    (any::<i64>(), prop::collection::vec(manifest(), 0..3), prop::collection::vec(manifest(), 0..3))
        .prop_map(|(ts, applied_objs, deleted_objs)| Event { ts, applied_objs, deleted_objs })
}

fn trace() -> impl Strategy<Value = Trace> {
    (prop::collection::vec(event(), 0..6), prop::collection::vec(("[a-z]{1,6}/[a-z]{1,6}", any::<u64>()), 0..4))
        .prop_map(|(events, hashes)| {
            let objects: Map<String, Value> = hashes.into_iter().map(|(k, h)| (k, Value::from(h))).collect();
            let mut index = Map::new();
            index.insert("v1.Pod".into(), Value::Object(objects));
            let config =
                Config::from_json_value(&serde_json::json!({"trackedObjects": {"v1.Pod": {"trackLifecycle": true}}}))
                    .unwrap_or_default();
            Trace { events, index: Value::Object(index), config, ..Trace::default() }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes, Format::Json)?;
        check(&bytes, Format::Msgpack)?;
    }

    #[test]
    fn arbitrary_bytes_after_a_map_start_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        first in prop_oneof![Just(b'{'), 0x80u8..=0x8f, Just(0xde), Just(0xdf)],
    ) {
        let mut input = vec![first];
        input.extend_from_slice(&bytes);
        check(&input, Format::sniff(&[first]))?;
    }

    #[test]
    fn mutated_json_trace_never_panics(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in prop::option::weighted(0.2, any::<usize>()),
    ) {
        let input = mutate(common::fixture("tu-trace.json"), &edits, cut);
        check(&input, Format::Json)?;
    }

    #[test]
    fn mutated_msgpack_trace_never_panics(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in prop::option::weighted(0.2, any::<usize>()),
    ) {
        let input = mutate(common::fixture("ex-cronjob.sktrace"), &edits, cut);
        check(&input, Format::Msgpack)?;
    }

    #[test]
    fn generated_traces_round_trip(trace in trace()) {
        round_trip(&trace)?;
    }
}

#[test]
fn error_type_stays_small() {
    // Results carrying a TraceError are returned on every event; keep them cheap to move.
    assert!(std::mem::size_of::<TraceError>() <= 160, "{}", std::mem::size_of::<TraceError>());
}
