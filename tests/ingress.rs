//! The worked example of docs/ingress-migration.md: `examples/ingress-v1.skel` migrates
//! v1beta1 Ingresses to `networking.k8s.io/v1`. The real binary runs it over
//! `tests/data/ingress/trace.json`; the result must equal the hand-written `expected.json`, and
//! running the script again must change nothing (no old Ingress is left).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn apply(script: &Path, trace: &Path, out: &Path) -> String {
    let assert = Command::new(env!("CARGO_BIN_EXE_skel"))
        .arg("apply")
        .arg(script)
        .arg(trace)
        .arg("-o")
        .arg(out)
        .assert()
        .success();
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn ingress_v1beta1_to_v1_matches_the_hand_written_manifests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("examples/ingress-v1.skel");
    let data = root.join("tests/data/ingress");
    let tmp = tempfile::tempdir().unwrap();
    let once = tmp.path().join("once.json");
    let summary = apply(&script, &data.join("trace.json"), &once);
    assert!(summary.contains("2 matched, 2 modified"), "{summary}");
    let want = json(&data.join("expected.json"));
    let got = json(&once);
    for (i, (g, w)) in got["events"].as_array().unwrap().iter().zip(want["events"].as_array().unwrap()).enumerate() {
        assert_eq!(g, w, "event {i}");
    }
    assert_eq!(got, want);

    let twice = tmp.path().join("twice.json");
    let summary = apply(&script, &once, &twice);
    assert!(summary.contains("0 matched"), "{summary}");
    assert_eq!(json(&twice), want);
}
