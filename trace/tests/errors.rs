//! Malformed traces: each gives the right error code, message, help and location (insta snapshots).
#![allow(clippy::panic)] // tests report failures by panicking

mod common;

use miette::Diagnostic;
use skel_trace::{Format, Trace, TraceError};

const MINIMAL: &str = r#"{
  "version": 2,
  "config": {"trackedObjects": {"v1.Pod": {}}},
  "events": [
    {"ts": 1, "applied_objs": [], "deleted_objs": []},
    {
      "ts": 2,
      "applied_objs": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {"note": "MARKER"}}
      ],
      "deleted_objs": []
    }
  ],
  "index": {"v1.Pod": {"default/p": 1}},
  "pod_lifecycles": []
}"#;

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` not in the input");
    text.replacen(from, to, 1)
}

fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at =
        bytes.windows(from.len()).position(|w| w == from).unwrap_or_else(|| panic!("{from:02x?} not in the input"));
    let mut out = bytes.get(..at).unwrap_or_default().to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(bytes.get(at + from.len()..).unwrap_or_default());
    out
}

/// The minimal trace as msgpack (named fields, as SimKube writes).
fn minimal_msgpack() -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
    rmp_serde::to_vec_named(&value).unwrap_or_else(|e| panic!("{e}"))
}

fn msgpack_str(s: &str) -> Vec<u8> {
    let mut out = vec![0xa0 | s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// Reads `input`, expecting an error, and renders it the way the snapshots hold it.
fn render(input: &[u8], format: Format) -> String {
    let err = match Trace::read(input, format) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    };
    check_wording(&err);
    let code = err.code().map(|c| c.to_string()).unwrap_or_default();
    let help = err.help().map(|h| h.to_string()).unwrap_or_default();
    format!("code: {code}\nerror: {err}\nhelp: {help}\nevent: {:?}", err.event_index())
}

/// Messages are lower case and never name Rust types.
fn check_wording(err: &TraceError) {
    let text = err.to_string();
    for word in ["i64", "u64", "i128", "String", "Vec<", "Option", "struct", "enum ", "serde"] {
        assert!(!text.contains(word), "`{word}` in `{text}`");
    }
    let first = text.chars().next().unwrap_or('x');
    assert!(!first.is_uppercase(), "upper-case start: {text}");
    let code = err.code().map(|c| c.to_string()).unwrap_or_default();
    assert!(code.starts_with("skel::trace::"), "{code}");
}

macro_rules! case {
    ($name:ident, $format:expr, $input:expr) => {
        #[test]
        fn $name() {
            let input: Vec<u8> = $input;
            insta::assert_snapshot!(render(&input, $format));
        }
    };
}

// ---- JSON

case!(json_truncated, Format::Json, {
    let full = common::fixture("tu-trace.json");
    full.get(..2000).unwrap_or_default().to_vec()
});

case!(json_ts_wrong_type, Format::Json, {
    let text = String::from_utf8(common::fixture("tu-trace.json")).unwrap_or_default();
    replace_once(&text, "\"ts\": 1709241485", "\"ts\": \"yesterday\"").into_bytes()
});

case!(json_version_3, Format::Json, {
    let text = String::from_utf8(common::fixture("tu-trace.json")).unwrap_or_default();
    replace_once(&text, "\"version\": 2", "\"version\": 3").into_bytes()
});

case!(json_missing_index, Format::Json, {
    replace_once(MINIMAL, "\"index\": {\"v1.Pod\": {\"default/p\": 1}},", "").into_bytes()
});

case!(json_bad_config_paths, Format::Json, {
    let text = String::from_utf8(common::fixture("tu-trace.json")).unwrap_or_default();
    replace_once(&text, "\"podSpecTemplatePaths\": [\"/spec/template\"]", "\"podSpecTemplatePaths\": [\"/spec\"]")
        .into_bytes()
});

case!(json_bad_config_unknown_kind, Format::Json, {
    replace_once(MINIMAL, "{\"v1.Pod\": {}}", "{\"example.com/v1.Widget\": {}}").into_bytes()
});

case!(json_bad_config_field, Format::Json, {
    replace_once(MINIMAL, "{\"v1.Pod\": {}}", "{\"v1.Pod\": {\"trackLifecycles\": true}}").into_bytes()
});

case!(json_syntax_missing_comma, Format::Json, { replace_once(MINIMAL, "\"ts\": 2,", "\"ts\": 2").into_bytes() });

case!(json_trailing_data, Format::Json, format!("{MINIMAL}\n{{}}").into_bytes());

case!(json_not_an_object, Format::Json, b"[1, 2]".to_vec());

case!(json_empty, Format::Json, Vec::new());

case!(json_duplicate_section, Format::Json, {
    replace_once(MINIMAL, "\"pod_lifecycles\": []", "\"pod_lifecycles\": [], \"version\": 2").into_bytes()
});

case!(json_event_missing_key, Format::Json, { replace_once(MINIMAL, ", \"deleted_objs\": []}", "}").into_bytes() });

case!(json_manifest_not_object, Format::Json, {
    replace_once(MINIMAL, "\"applied_objs\": [],", "\"applied_objs\": [\"pod\"],").into_bytes()
});

case!(json_pod_lifecycles_object_form, Format::Json, {
    replace_once(MINIMAL, "\"pod_lifecycles\": []", "\"pod_lifecycles\": {\"v1.Pod\": {}}").into_bytes()
});

case!(json_index_negative_hash, Format::Json, {
    replace_once(MINIMAL, "\"default/p\": 1", "\"default/p\": -1").into_bytes()
});

case!(json_too_deep, Format::Json, {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    replace_once(MINIMAL, "\"MARKER\"", &deep).into_bytes()
});

// Nothing is changed quietly: a key twice, and a number a 64-bit integer or float cannot hold.
case!(json_duplicate_key, Format::Json, {
    replace_once(MINIMAL, "\"note\": \"MARKER\"", "\"a\": 1, \"a\": 2").into_bytes()
});

case!(json_integer_beyond_64_bits, Format::Json, {
    replace_once(MINIMAL, "\"MARKER\"", "[0.0, 123456789012345678901234567890]").into_bytes()
});

case!(json_number_too_small, Format::Json, { replace_once(MINIMAL, "\"MARKER\"", "[0, 1e-400]").into_bytes() });

case!(json_number_too_large, Format::Json, { replace_once(MINIMAL, "\"MARKER\"", "1e400").into_bytes() });

// ---- msgpack

case!(msgpack_truncated, Format::Msgpack, {
    let full = common::fixture("ex-cronjob.sktrace");
    full.get(..800).unwrap_or_default().to_vec()
});

case!(msgpack_empty, Format::Msgpack, Vec::new());

case!(msgpack_garbage_marker, Format::Msgpack, vec![0x85, 0xc1, 0x00, 0xff]);

case!(msgpack_garbage_not_a_map, Format::Msgpack, b"\x07garbage".to_vec());

case!(msgpack_binary_in_manifest, Format::Msgpack, {
    let mut bin = vec![0xc4, 6];
    bin.extend_from_slice(b"MARKER");
    replace_bytes(&minimal_msgpack(), &msgpack_str("MARKER"), &bin)
});

case!(msgpack_ext_in_manifest, Format::Msgpack, {
    replace_bytes(&minimal_msgpack(), &msgpack_str("MARKER"), &[0xd4, 0x01, 0x00])
});

case!(msgpack_invalid_utf8, Format::Msgpack, {
    replace_bytes(&minimal_msgpack(), &msgpack_str("MARKER"), &[0xa2, 0xff, 0xfe])
});

case!(msgpack_int_key_in_manifest, Format::Msgpack, {
    replace_bytes(&minimal_msgpack(), &msgpack_str("note"), &[0x07])
});

case!(msgpack_version_3, Format::Msgpack, {
    let mut from = msgpack_str("version");
    from.push(0x02);
    let mut to = msgpack_str("version");
    to.push(0x03);
    replace_bytes(&minimal_msgpack(), &from, &to)
});

case!(msgpack_ts_float, Format::Msgpack, {
    let mut from = msgpack_str("ts");
    from.push(0x02);
    let mut to = msgpack_str("ts");
    to.push(0xcb);
    to.extend_from_slice(&2.5f64.to_be_bytes());
    replace_bytes(&minimal_msgpack(), &from, &to)
});

case!(msgpack_too_deep, Format::Msgpack, {
    let mut deep = vec![0x91; 200];
    deep.push(0x90);
    replace_bytes(&minimal_msgpack(), &msgpack_str("MARKER"), &deep)
});

case!(msgpack_nan, Format::Msgpack, {
    let mut nan = vec![0xcb];
    nan.extend_from_slice(&f64::NAN.to_be_bytes());
    replace_bytes(&minimal_msgpack(), &msgpack_str("MARKER"), &nan)
});

case!(msgpack_duplicate_key, Format::Msgpack, {
    // {"note": "MARKER"} becomes {"ab": 1, "ab": 2}.
    let mut from = vec![0x81];
    from.extend(msgpack_str("note"));
    from.extend(msgpack_str("MARKER"));
    let mut to = vec![0x82];
    to.extend(msgpack_str("ab"));
    to.push(0x01);
    to.extend(msgpack_str("ab"));
    to.push(0x02);
    replace_bytes(&minimal_msgpack(), &from, &to)
});

case!(msgpack_missing_section, Format::Msgpack, {
    // Rename `index` to an unknown key, which is skipped.
    replace_bytes(&minimal_msgpack(), &msgpack_str("index"), &msgpack_str("indey"))
});

#[test]
fn read_errors_surface_from_read_trace_as_trace_errors() {
    struct Nothing;
    impl skel_trace::TraceVisitor for Nothing {
        type Error = std::convert::Infallible;
        fn section(&mut self, _: skel_trace::Section) -> Result<(), Self::Error> {
            Ok(())
        }
        fn event(&mut self, _: usize, _: skel_trace::Event) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let res = skel_trace::read_trace(&b"[]"[..], Format::Json, &mut Nothing);
    assert!(matches!(res, Err(skel_trace::ReadError::Trace(TraceError::WrongType { .. }))));
}
