//! End-to-end tests of `skel check`: the report (text, JSON, SARIF), the exit codes (0 nothing
//! found, 1 findings, 2 usage or input error) and the `--fix` script, applied with `skel apply`
//! and checked again.
//!
//! Every test works in its own temp folder: the inputs are copied in and `skel` runs there with
//! relative paths, so the reports and diagnostics name short, stable paths and the insta
//! snapshots do not depend on where the repository or the temp folder lives. Fixtures are in
//! `tests/data/check/` (see its README); the SimKube traces in `../shared/traces/` are used when
//! that folder exists (the tests that need them are skipped, with a message, when it does not).
//!
//! The "Regressions" section holds tests of bugs these tests found (and that are fixed).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{run, skel, Run};

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture of `tests/data/check/`.
fn data(name: &str) -> PathBuf {
    root().join("tests/data/check").join(name)
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// `path` (of `../shared/`, next to the repository) is missing: a failure under CI, which
/// reads it (.ci/run); elsewhere the test is skipped, said on stderr past the test harness's
/// capture so that it shows.
fn shared_missing(path: &Path) {
    assert!(std::env::var_os("CI").is_none(), "{} is missing: CI runs these tests on it (.ci/run)", path.display());
    let _ = writeln!(std::io::stderr(), "SKIPPED: {} does not exist", path.display());
}

/// A SimKube trace of `../shared/traces`, or `None` (see `shared_missing`) when that folder is
/// missing.
fn shared_trace(name: &str) -> Option<PathBuf> {
    let dir = root().join("../shared/traces");
    if !dir.is_dir() {
        shared_missing(&dir);
        return None;
    }
    let path = dir.join(name);
    assert!(path.is_file(), "{} is missing from the shared traces", path.display());
    Some(path)
}

/// A temp folder holding copies of `files` (source path, name in the folder).
fn workdir(files: &[(PathBuf, &str)]) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (src, name) in files {
        let dst = tmp.path().join(name);
        if src.is_dir() {
            copy_dir(src, &dst);
        } else {
            fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
    }
    tmp
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let to = dst.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &to);
        } else {
            fs::copy(&path, &to).unwrap();
        }
    }
}

/// `skel check INPUT --target-version VERSION EXTRA...` in `dir`.
fn check(dir: &Path, input: &str, version: &str, extra: &[&str]) -> Run {
    run(skel(dir).args(["check", input, "--target-version", version]).args(extra))
}

/// `check` with `--format json`, which must succeed with the expected exit code; the report.
fn check_json(dir: &Path, input: &str, version: &str, code: i32) -> Value {
    let r = check(dir, input, version, &["--format", "json"]);
    assert_eq!(r.code, code, "exit code of check {input} at {version}; stderr:\n{}", r.stderr);
    assert_eq!(r.stderr, "", "a report prints nothing on stderr");
    parse_json(&r.stdout)
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON: {e}\n{text}"))
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings is an array")
}

/// The finding ids (`removed-api:batch/v1beta1/CronJob`, `label:KEY`, ...).
fn ids(report: &Value) -> Vec<&str> {
    findings(report).iter().map(|f| f["id"].as_str().unwrap()).collect()
}

/// `apiVersion kind` of each removed-api finding.
fn removed_apis(report: &Value) -> Vec<String> {
    findings(report)
        .iter()
        .filter(|f| f["rule"] == "removed-api")
        .map(|f| format!("{} {}", f["apiVersion"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect()
}

/// What one apiVersion/kind amounts to in a trace, counted here rather than by skel.
#[derive(Debug, Default, PartialEq, Eq)]
struct Usage {
    objects: u64,
    events: u64,
    first: Option<i64>,
    last: Option<i64>,
}

/// Counts every `apiVersion kind` of a JSON trace (applied and deleted objects).
fn count_kinds(trace: &Value) -> BTreeMap<String, Usage> {
    let mut counts: BTreeMap<String, Usage> = BTreeMap::new();
    for event in trace["events"].as_array().unwrap() {
        let ts = event["ts"].as_i64().unwrap();
        let mut seen_here: Vec<String> = Vec::new();
        for key in ["applied_objs", "deleted_objs"] {
            for obj in event[key].as_array().unwrap() {
                let name = format!("{} {}", obj["apiVersion"].as_str().unwrap(), obj["kind"].as_str().unwrap());
                let u = counts.entry(name.clone()).or_default();
                u.objects += 1;
                if !seen_here.contains(&name) {
                    u.events += 1;
                    seen_here.push(name);
                }
                u.first = Some(u.first.map_or(ts, |f| f.min(ts)));
                u.last = Some(u.last.map_or(ts, |l| l.max(ts)));
            }
        }
    }
    counts
}

/// Every removed-api finding of `report` agrees with the objects of `trace` counted here.
fn assert_removed_api_counts(report: &Value, trace: &Value) {
    let counts = count_kinds(trace);
    for f in findings(report).iter().filter(|f| f["rule"] == "removed-api") {
        let name = format!("{} {}", f["apiVersion"].as_str().unwrap(), f["kind"].as_str().unwrap());
        let want = counts.get(&name).unwrap_or_else(|| panic!("{name} is not in the trace"));
        let got = Usage {
            objects: f["objects"].as_u64().unwrap(),
            events: f["events"].as_u64().unwrap(),
            first: f["firstSeen"].as_i64(),
            last: f["lastSeen"].as_i64(),
        };
        assert_eq!(&got, want, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The shared SimKube traces: report, fix, apply, check again

/// Checks `file` at 1.25 (text and JSON snapshots `<snap>_text`, `<snap>_json`), writes the fix,
/// applies it and checks the result: nothing is left (every finding of these traces has a
/// mechanical fix).
fn check_fix_and_recheck(file: &str, snap: &str) {
    let Some(src) = shared_trace(file) else { return };
    let tmp = workdir(&[(src, file)]);
    let dir = tmp.path();

    let text = check(dir, file, "1.25", &[]);
    assert_eq!(text.code, 1, "findings: exit 1; stderr:\n{}", text.stderr);
    assert_eq!(text.stderr, "");
    insta::assert_snapshot!(format!("{snap}_text"), text.stdout);

    let json = check(dir, file, "1.25", &["--format", "json"]);
    assert_eq!(json.code, 1, "stderr:\n{}", json.stderr);
    assert_eq!(json.stderr, "");
    insta::assert_snapshot!(format!("{snap}_json"), json.stdout);
    let report = parse_json(&json.stdout);
    assert_eq!(report["target"], "1.25");
    assert!(findings(&report).iter().all(|f| f["fixable"] == true), "every finding here has a mechanical fix");
    let n = findings(&report).len();
    let errors = report["errors"].as_u64().unwrap();
    let warnings = report["warnings"].as_u64().unwrap();
    let plural = |n: u64, what: &str| if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") };
    let summary = format!(
        "\n{n} findings ({}, {}), {n} with a mechanical fix (`--fix FILE.skel`)\n",
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    assert!(text.stdout.ends_with(&summary), "the text report ends with `{summary}`:\n{}", text.stdout);

    // The removed-api counts against the trace itself (a msgpack trace read back as JSON by an
    // empty script, which only prunes the events that have no object).
    let trace = if file.ends_with(".json") {
        parse_json(&fs::read_to_string(dir.join(file)).unwrap())
    } else {
        let back = run(skel(dir).args(["apply", "-", file, "--format", "json", "-q"]).write_stdin(""));
        assert_eq!(back.code, 0, "stderr:\n{}", back.stderr);
        parse_json(&back.stdout)
    };
    assert_removed_api_counts(&report, &trace);
    if file.ends_with(".json") {
        assert_eq!(report["events"], trace["events"].as_array().unwrap().len());
        let objects: usize = trace["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["applied_objs"].as_array().unwrap().len() + e["deleted_objs"].as_array().unwrap().len())
            .sum();
        assert_eq!(report["objects"], objects);
    }

    // --fix: the same report, then where the script went.
    let fix = check(dir, file, "1.25", &["--fix", "fix.skel"]);
    assert_eq!(fix.code, 1, "stderr:\n{}", fix.stderr);
    assert_eq!(fix.stdout, format!("{}wrote fix.skel\n", text.stdout));
    let script = fs::read_to_string(dir.join("fix.skel")).unwrap();
    assert!(script.starts_with("# Written by `skel check --target-version 1.25`."), "{script}");

    let ext = Path::new(file).extension().unwrap().to_str().unwrap();
    let out = format!("out.{ext}");
    let applied = run(skel(dir).args(["apply", "fix.skel", file, "-o", &out, "-q", "--follow-api-versions"]));
    assert_eq!(applied.code, 0, "the fix applies; stderr:\n{}", applied.stderr);
    let fmt = run(skel(dir).args(["fmt", "--check", "fix.skel"]));
    assert_eq!(fmt.code, 0, "the fix script is in the canonical style:\n{}{}", fmt.stdout, fmt.stderr);

    let again = check(dir, &out, "1.25", &[]);
    assert_eq!(again.code, 0, "nothing left after the fix:\n{}{}", again.stdout, again.stderr);
    assert_eq!(again.stderr, "");
    assert!(again.stdout.ends_with("\nnothing found\n"), "{}", again.stdout);
    let again = check_json(dir, &out, "1.25", 0);
    assert_eq!(again["findings"], json!([]));
    assert_eq!(again["objects"], report["objects"], "the fix deletes no object");
}

#[test]
fn shared_gen_s101_e60() {
    check_fix_and_recheck("gen-s101-e60.json", "gen_s101_e60");
}

#[test]
fn shared_gen_s202_e150() {
    check_fix_and_recheck("gen-s202-e150.json", "gen_s202_e150");
}

#[test]
fn shared_gen_s404_e40_msgpack() {
    check_fix_and_recheck("gen-s404-e40.sktrace", "gen_s404_e40");
}

// ---------------------------------------------------------------------------------------------
// 2. Traces with nothing to report: exit 0

/// The CronJobs of `ex-cronjob.sktrace` are already `batch/v1` (the 1.25 removal is
/// `batch/v1beta1`), and they pin no pod to the master nodes: nothing to report at 1.25.
#[test]
fn ex_cronjob_is_already_batch_v1() {
    let Some(src) = shared_trace("ex-cronjob.sktrace") else { return };
    let tmp = workdir(&[(src, "ex-cronjob.sktrace")]);
    let r = check(tmp.path(), "ex-cronjob.sktrace", "1.25", &[]);
    assert_eq!(r.code, 0, "stdout:\n{}stderr:\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    // Three events (the first empty): the CronJob applied, then deleted.
    assert_eq!(
        r.stdout,
        "skel check: 2 objects in 3 events, target Kubernetes 1.25\n\
         nothing found\n"
    );
    let report = check_json(tmp.path(), "ex-cronjob.sktrace", "1.25", 0);
    assert_eq!(
        report,
        json!({"target": "1.25", "objects": 2, "events": 3, "errors": 0, "warnings": 0, "hidden": 0, "findings": []})
    );
}

/// `examples/trace.json` has `batch/v1beta1` CronJobs, `policy/v1beta1` PDBs (both removed in
/// 1.25) and the master node label and taint (deprecated 1.20, gone 1.24), but no API removed by
/// 1.23: nothing at 1.19, warnings for the label and taint from 1.20, errors from 1.24, and
/// everything at 1.25.
#[test]
fn example_trace_has_nothing_before_1_24() {
    let tmp = workdir(&[(example("trace.json"), "trace.json")]);
    let dir = tmp.path();
    let r = check(dir, "trace.json", "1.19", &[]);
    assert_eq!(r.code, 0, "stdout:\n{}stderr:\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    assert_eq!(r.stdout, "skel check: 40 objects in 16 events, target Kubernetes 1.19\nnothing found\n");
    assert_eq!(check_json(dir, "trace.json", "1.19", 0)["findings"], json!([]));

    // Warnings only: exit 0, unless asked to fail on them.
    let at_1_23 = check_json(dir, "trace.json", "1.23", 0);
    let master = ["label:node-role.kubernetes.io/master", "taint:node-role.kubernetes.io/master"];
    assert_eq!(ids(&at_1_23), master);
    assert!(findings(&at_1_23).iter().all(|f| f["severity"] == "warning"));
    assert_eq!(check(dir, "trace.json", "1.23", &["--fail-on", "warning"]).code, 1);
    let hidden = check(dir, "trace.json", "1.23", &["--min-severity", "error", "--format", "json"]);
    assert_eq!((hidden.code, parse_json(&hidden.stdout)["findings"].clone()), (0, json!([])));

    let at_1_24 = check_json(dir, "trace.json", "1.24", 1);
    assert_eq!(ids(&at_1_24), master);
    assert!(findings(&at_1_24).iter().all(|f| f["severity"] == "error"));
    let at_1_25 = check_json(dir, "trace.json", "1.25", 1);
    assert_eq!(
        ids(&at_1_25),
        ["removed-api:batch/v1beta1/CronJob", "removed-api:policy/v1beta1/PodDisruptionBudget", master[0], master[1]]
    );
    assert_eq!(removed_apis(&at_1_25), ["batch/v1beta1 CronJob", "policy/v1beta1 PodDisruptionBudget"]);
    assert_removed_api_counts(&at_1_25, &parse_json(&fs::read_to_string(dir.join("trace.json")).unwrap()));
}

/// `v1.25` and `1.25.3` are 1.25.
#[test]
fn target_version_forms() {
    let tmp = workdir(&[(example("trace.json"), "trace.json")]);
    let want = check_json(tmp.path(), "trace.json", "1.25", 1);
    for v in ["v1.25", "1.25.3"] {
        assert_eq!(check_json(tmp.path(), "trace.json", v, 1), want, "--target-version {v}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. A folder of manifests (tests/data/check/manifests)

fn manifests_dir() -> TempDir {
    workdir(&[(data("manifests"), "manifests")])
}

/// Every finding of the folder at 1.25, in the order of the removal table, then the label and
/// taint rules.
const FOLDER_AT_1_25: [&str; 10] = [
    "removed-api:extensions/v1beta1/DaemonSet",
    "removed-api:extensions/v1beta1/Ingress",
    "removed-api:rbac.authorization.k8s.io/v1beta1/ClusterRole",
    "removed-api:scheduling.k8s.io/v1beta1/PriorityClass",
    "removed-api:batch/v1beta1/CronJob",
    "removed-api:autoscaling/v2beta1/HorizontalPodAutoscaler",
    "removed-api:policy/v1beta1/PodDisruptionBudget",
    "removed-api:policy/v1beta1/PodSecurityPolicy",
    "label:node-role.kubernetes.io/master",
    "taint:node-role.kubernetes.io/master",
];

/// The finding ids, as `FOLDER_AT_1_25` lists them.
fn finding_names(report: &Value) -> Vec<String> {
    ids(report).into_iter().map(str::to_string).collect()
}

#[test]
fn manifests_folder_report() {
    let tmp = manifests_dir();
    let dir = tmp.path();
    let text = check(dir, "manifests", "1.25", &[]);
    assert_eq!(text.code, 1, "stderr:\n{}", text.stderr);
    assert_eq!(text.stderr, "");
    insta::assert_snapshot!("manifests_text", text.stdout);
    assert!(!text.stdout.contains("must-not-be-read"), "notes.txt is not a manifest file");

    let json = check(dir, "manifests", "1.25", &["--format", "json"]);
    assert_eq!(json.code, 1, "stderr:\n{}", json.stderr);
    insta::assert_snapshot!("manifests_json", json.stdout);
    let report = parse_json(&json.stdout);
    assert_eq!(finding_names(&report), FOLDER_AT_1_25);
    // 13 objects (psp 1, ingress 1, deployment 1, multi 4, list 3, hpa.json 2, pod.yml 1), one
    // event at time 0.
    assert_eq!((report["objects"].as_u64(), report["events"].as_u64()), (Some(13), Some(1)));
    for f in findings(&report) {
        assert_eq!(
            (f["events"].as_u64(), f["firstSeen"].as_i64(), f["lastSeen"].as_i64()),
            (Some(1), Some(0), Some(0))
        );
        let unfixable = f["kind"] == "PodSecurityPolicy";
        assert_eq!(f["fixable"], !unfixable, "{f}");
        assert_eq!(f["replacement"].is_null(), unfixable, "{f}");
    }
    let objects = |name: &str| {
        let i = FOLDER_AT_1_25.iter().position(|n| *n == name).unwrap();
        findings(&report)[i]["objects"].as_u64().unwrap()
    };
    assert_eq!(
        objects("label:node-role.kubernetes.io/master"),
        2,
        "the Deployment (nodeSelector, required and preferred affinity: one object) and the Pod"
    );
    assert_eq!(objects("taint:node-role.kubernetes.io/master"), 2, "the Deployment and the CronJob's jobs");
}

/// Single files: a multi-document YAML file, a `List`, a JSON array.
#[test]
fn manifests_files() {
    let tmp = manifests_dir();
    let dir = tmp.path();
    let multi = check_json(dir, "manifests/multi.yaml", "1.25", 1);
    assert_eq!(multi["objects"], 4, "four documents and an empty one");
    assert_eq!(
        finding_names(&multi),
        [
            "removed-api:extensions/v1beta1/DaemonSet",
            "removed-api:batch/v1beta1/CronJob",
            "removed-api:policy/v1beta1/PodDisruptionBudget",
            "taint:node-role.kubernetes.io/master",
        ]
    );
    let list = check_json(dir, "manifests/list.yaml", "1.25", 1);
    assert_eq!(list["objects"], 3, "the List's items, not the List");
    assert_eq!(
        removed_apis(&list),
        ["rbac.authorization.k8s.io/v1beta1 ClusterRole", "scheduling.k8s.io/v1beta1 PriorityClass"]
    );
    let array = check_json(dir, "manifests/nested/hpa.json", "1.25", 1);
    assert_eq!(array["objects"], 2, "the array's items");
    assert_eq!(removed_apis(&array), ["autoscaling/v2beta1 HorizontalPodAutoscaler"]);
}

#[test]
fn manifests_sarif() {
    let tmp = manifests_dir();
    let report = check_json(tmp.path(), "manifests", "1.25", 1);
    let r = check(tmp.path(), "manifests", "1.25", &["--format", "sarif"]);
    assert_eq!(r.code, 1, "stderr:\n{}", r.stderr);
    assert_eq!(r.stderr, "");
    let sarif = parse_json(&r.stdout);
    assert_eq!(sarif["version"], "2.1.0");
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "skel");
    let rule_ids: Vec<&str> = driver["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rule_ids, ids(&report), "one rule per finding");
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), findings(&report).len(), "one result per finding");
    for (result, finding) in results.iter().zip(findings(&report)) {
        assert_eq!(result["ruleId"], finding["id"]);
        assert_eq!(result["level"], finding["severity"]);
        let text = result["message"]["text"].as_str().unwrap();
        assert!(text.starts_with(finding["message"].as_str().unwrap()), "{text}");
        assert!(text.ends_with(&format!("e.g. {}", finding["example"].as_str().unwrap())), "{text}");
        assert_eq!(result["locations"], json!([{"physicalLocation": {"artifactLocation": {"uri": "manifests"}}}]));
    }
}

/// The fix script of the folder: a snapshot, and it compiles without a diagnostic. The
/// PodSecurityPolicy has no replacement: it appears in comments only.
#[test]
fn manifests_fix_script() {
    let tmp = manifests_dir();
    let dir = tmp.path();
    let text = check(dir, "manifests", "1.25", &[]);
    let r = check(dir, "manifests", "1.25", &["--fix", "fix.skel"]);
    assert_eq!(r.code, 1, "stderr:\n{}", r.stderr);
    assert_eq!(r.stdout, format!("{}wrote fix.skel\n", text.stdout));
    let script = fs::read_to_string(dir.join("fix.skel")).unwrap();
    insta::assert_snapshot!("manifests_fix", script);
    for line in script.lines().filter(|l| l.contains("PodSecurityPolicy")) {
        assert!(line.starts_with('#'), "only comments name the PodSecurityPolicy: {line}");
    }

    let compiled = run(skel(dir).args(["compile", "fix.skel"]));
    assert_eq!((compiled.code, compiled.stdout.as_str(), compiled.stderr.as_str()), (0, "", ""));

    // With --format json the script is written too, and stdout stays one JSON document.
    let r = check(dir, "manifests", "1.25", &["--format", "json", "--fix", "fix2.skel"]);
    assert_eq!(r.code, 1);
    parse_json(&r.stdout);
    assert_eq!(fs::read_to_string(dir.join("fix2.skel")).unwrap(), script);
}

/// The folder's fix applied to the same objects as a trace (`manifests-trace.json`): checked
/// again, only the PodSecurityPolicy (no mechanical fix) is left; the fields moved as v1 has them.
#[test]
fn manifests_fix_applied_to_their_trace() {
    let tmp = workdir(&[(data("manifests"), "manifests"), (data("manifests-trace.json"), "trace.json")]);
    let dir = tmp.path();
    let folder = check_json(dir, "manifests", "1.25", 1);
    let mut trace = check_json(dir, "trace.json", "1.25", 1);
    for f in trace["findings"].as_array_mut().unwrap() {
        assert_eq!((f["firstSeen"].as_i64(), f["lastSeen"].as_i64()), (Some(1_700_000_000), Some(1_700_000_000)));
        f["firstSeen"] = json!(0);
        f["lastSeen"] = json!(0);
    }
    assert_eq!(trace, folder, "the trace holds what the folder holds");

    let r = check(dir, "manifests", "1.25", &["--fix", "fix.skel"]);
    assert_eq!(r.code, 1);
    let applied = run(skel(dir).args(["apply", "fix.skel", "trace.json", "-o", "out.json", "-q"]));
    assert_eq!(applied.code, 0, "stderr:\n{}", applied.stderr);

    let again = check(dir, "out.json", "1.25", &[]);
    assert_eq!(again.code, 1, "the PodSecurityPolicy is still there:\n{}", again.stdout);
    let report = check_json(dir, "out.json", "1.25", 1);
    assert_eq!(finding_names(&report), ["removed-api:policy/v1beta1/PodSecurityPolicy"]);
    assert_eq!(report["findings"][0]["fixable"], false);
    assert_eq!(report["objects"], 13);

    let out = parse_json(&fs::read_to_string(dir.join("out.json")).unwrap());
    let objs = out["events"][0]["applied_objs"].as_array().unwrap();
    let find = |kind: &str| objs.iter().find(|o| o["kind"] == kind).unwrap();
    let ingress = find("Ingress");
    assert_eq!(ingress["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(
        ingress["spec"],
        json!({
            "rules": [{"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "backend": {"service": {"name": "storefront", "port": {"number": 80}}},
                 "pathType": "ImplementationSpecific"},
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "api", "port": {"name": "grpc"}}}},
            ]}}],
            "defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
        })
    );
    let pod = &find("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": ""}));
    assert_eq!(pod["tolerations"][0]["key"], "node-role.kubernetes.io/control-plane");
    assert_eq!(pod["tolerations"][1]["key"], "dedicated", "other tolerations are kept");
    let affinity = &pod["affinity"]["nodeAffinity"];
    assert_eq!(
        affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]
            ["key"],
        "node-role.kubernetes.io/control-plane"
    );
    let preferred = &affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["preference"]["matchExpressions"];
    assert_eq!(preferred[0]["key"], "node-role.kubernetes.io/control-plane");
    assert_eq!(preferred[1]["key"], "kubernetes.io/arch");
    let jobs = &find("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(jobs["tolerations"][0]["key"], "node-role.kubernetes.io/control-plane");
    assert_eq!(find("Pod")["spec"]["nodeSelector"], json!({"node-role.kubernetes.io/control-plane": ""}));
    assert_eq!(find("DaemonSet")["apiVersion"], "apps/v1");
}

/// Older targets find fewer: at 1.21 only what was removed by then (the DaemonSet, 1.16) as an
/// error, and the deprecated node label and taint as warnings; at 1.24 the label and taint are
/// errors, but the 1.25 removals are not there yet.
#[test]
fn manifests_at_older_targets() {
    let tmp = manifests_dir();
    let dir = tmp.path();
    let text = check(dir, "manifests", "1.21", &[]);
    assert_eq!(text.code, 1, "stderr:\n{}", text.stderr);
    insta::assert_snapshot!("manifests_1_21_text", text.stdout);
    let at_1_21 = check_json(dir, "manifests", "1.21", 1);
    assert_eq!(
        finding_names(&at_1_21),
        [
            "removed-api:extensions/v1beta1/DaemonSet",
            "label:node-role.kubernetes.io/master",
            "taint:node-role.kubernetes.io/master"
        ]
    );
    let severities: Vec<&str> = findings(&at_1_21).iter().map(|f| f["severity"].as_str().unwrap()).collect();
    assert_eq!(severities, ["error", "warning", "warning"]);

    let at_1_24 = check_json(dir, "manifests", "1.24", 1);
    assert_eq!(
        finding_names(&at_1_24),
        [
            "removed-api:extensions/v1beta1/DaemonSet",
            "removed-api:extensions/v1beta1/Ingress",
            "removed-api:rbac.authorization.k8s.io/v1beta1/ClusterRole",
            "removed-api:scheduling.k8s.io/v1beta1/PriorityClass",
            "label:node-role.kubernetes.io/master",
            "taint:node-role.kubernetes.io/master",
        ]
    );
    for report in [&at_1_21, &at_1_24] {
        assert_eq!(report["objects"], 13, "the same objects are read");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Usage and input errors: exit 2, nothing on stdout

/// Runs `skel check INPUT --target-version VERSION` in `dir` and checks the error contract: exit
/// 2, nothing on stdout, `code` (or any text) on stderr. Returns stderr.
fn assert_check_fails(dir: &Path, input: &str, version: &str, code: &str) -> String {
    let r = check(dir, input, version, &[]);
    assert_eq!(r.code, 2, "exit code; stdout:\n{}stderr:\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "", "no report");
    assert!(r.stderr.contains(code), "stderr names `{code}`:\n{}", r.stderr);
    r.stderr
}

#[test]
fn error_bad_target_version() {
    let tmp = workdir(&[(example("trace.json"), "trace.json")]);
    let stderr = assert_check_fails(tmp.path(), "trace.json", "x.y", "skel::usage::target_version");
    insta::assert_snapshot!("error_target_version", stderr);
    for bad in ["1", "1.x", "1.25.x", ""] {
        assert_check_fails(tmp.path(), "trace.json", bad, "skel::usage::target_version");
    }
}

#[test]
fn error_missing_input() {
    let tmp = tempfile::tempdir().unwrap();
    let stderr = assert_check_fails(tmp.path(), "missing.json", "1.25", "skel::io::read");
    insta::assert_snapshot!("error_missing_input", stderr);
    // A missing YAML file or folder: exit 2 too.
    for missing in ["missing.yaml", "missing/"] {
        assert_check_fails(tmp.path(), missing, "1.25", "no such file or folder");
    }
}

#[test]
fn error_no_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("empty.yaml"), "").unwrap();
    let stderr = assert_check_fails(tmp.path(), "empty.yaml", "1.25", "skel::upgrade::no_manifests");
    insta::assert_snapshot!("error_empty_yaml", stderr);
    // Only empty documents and comments; an empty folder.
    fs::write(tmp.path().join("comments.yaml"), "# nothing here\n---\n---\n").unwrap();
    assert_check_fails(tmp.path(), "comments.yaml", "1.25", "skel::upgrade::no_manifests");
    fs::create_dir(tmp.path().join("empty")).unwrap();
    assert_check_fails(tmp.path(), "empty", "1.25", "skel::upgrade::no_manifests");
}

#[test]
fn error_bad_yaml() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("bad.yaml"), "kind: [\n").unwrap();
    assert_check_fails(tmp.path(), "bad.yaml", "1.25", "skel::upgrade::bad_manifest");
}

/// The first two events hold a removed CronJob, but the trace is cut: no report, exit 2.
#[test]
fn error_truncated_trace() {
    let tmp = workdir(&[(data("truncated.json"), "truncated.json")]);
    let stderr = assert_check_fails(tmp.path(), "truncated.json", "1.25", "skel::trace::unexpected_eof");
    insta::assert_snapshot!("error_truncated_trace", stderr);
    // With --fix, no script is written either.
    let r = check(tmp.path(), "truncated.json", "1.25", &["--fix", "fix.skel"]);
    assert_eq!(r.code, 2);
    assert!(!tmp.path().join("fix.skel").exists(), "no fix script for a trace that could not be read");
}

// ---------------------------------------------------------------------------------------------
// Regressions

/// A JSON trace that fails before its first event (here: version 3) is a trace error, not a
/// manifest file (it has `events`): the removed CronJob inside is not silently missed.
#[test]
fn malformed_trace_is_not_a_manifest() {
    let tmp = workdir(&[(data("version3.json"), "version3.json")]);
    let stderr = assert_check_fails(tmp.path(), "version3.json", "1.25", "skel::trace::unsupported_version");
    assert!(stderr.contains("unsupported trace version `3`"), "{stderr}");
}

/// At 1.32 the fix follows the replacements to one the target serves: FlowSchema `v1beta1`
/// goes to `v1`, not to `v1beta3`, which 1.32 removed too.
#[test]
fn fix_at_1_32_reaches_a_served_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let trace = json!({
        "version": 2,
        "config": {"trackedObjects": {}},
        "events": [{"ts": 10, "applied_objs": [
            {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta1", "kind": "FlowSchema", "metadata": {"name": "fs"}},
        ], "deleted_objs": []}],
        "index": {},
        "pod_lifecycles": {},
    });
    fs::write(dir.join("trace.json"), trace.to_string()).unwrap();
    let r = check(dir, "trace.json", "1.32", &["--fix", "fix.skel"]);
    assert_eq!(r.code, 1, "stderr:\n{}", r.stderr);
    let applied = run(skel(dir).args(["apply", "fix.skel", "trace.json", "-o", "out.json", "-q"]));
    assert_eq!(applied.code, 0, "stderr:\n{}", applied.stderr);
    let again = check(dir, "out.json", "1.32", &[]);
    assert_eq!(again.code, 0, "every finding had a mechanical fix:\n{}", again.stdout);
}

/// The fix of a trace whose config tracks and whose lifecycles name `batch/v1beta1.CronJob`:
/// `skel apply` keeps SimKube's meaning and leaves both, and `skel check` still reports the kind
/// (named by the trace only); with `--follow-api-versions` they move with the CronJobs.
#[test]
fn follow_api_versions_moves_config_and_lifecycles() {
    let Some(src) = shared_trace("gen-s404-e40.sktrace") else { return };
    let tmp = workdir(&[(src, "t.sktrace")]);
    let dir = tmp.path();
    assert_eq!(check(dir, "t.sktrace", "1.25", &["--fix", "fix.skel"]).code, 1);
    let script = fs::read_to_string(dir.join("fix.skel")).unwrap();
    assert!(script.contains("--follow-api-versions"), "the script says how to apply it:\n{script}");
    let as_json = |out: &str| {
        let back = run(skel(dir).args(["apply", "-", out, "--format", "json", "-q"]).write_stdin(""));
        parse_json(&back.stdout)
    };
    let owners = |trace: &Value| -> Vec<String> {
        let mut gvks: Vec<String> =
            trace["pod_lifecycles"].as_array().unwrap().iter().map(|e| e[0][0].as_str().unwrap().to_string()).collect();
        gvks.dedup();
        gvks
    };

    assert_eq!(run(skel(dir).args(["apply", "fix.skel", "t.sktrace", "-o", "plain.sktrace", "-q"])).code, 0);
    let plain = as_json("plain.sktrace");
    assert!(plain["config"]["trackedObjects"].get("batch/v1beta1.CronJob").is_some());
    assert!(owners(&plain).contains(&"batch/v1beta1.CronJob".to_string()));
    let report = check_json(dir, "plain.sktrace", "1.25", 1);
    assert_eq!(ids(&report), ["removed-api:batch/v1beta1/CronJob"]);
    let f = &findings(&report)[0];
    assert_eq!((f["objects"].as_u64(), f["firstSeen"].is_null()), (Some(0), true));
    assert_eq!(
        f["values"],
        json!(["config.trackedObjects batch/v1beta1.CronJob", "pod_lifecycles batch/v1beta1.CronJob"])
    );

    let args = ["apply", "fix.skel", "t.sktrace", "-o", "moved.sktrace", "-q", "--follow-api-versions"];
    assert_eq!(run(skel(dir).args(args)).code, 0);
    let moved = as_json("moved.sktrace");
    assert!(moved["config"]["trackedObjects"].get("batch/v1beta1.CronJob").is_none());
    assert!(moved["config"]["trackedObjects"].get("batch/v1.CronJob").is_some());
    assert!(owners(&moved).contains(&"batch/v1.CronJob".to_string()));
    assert!(!owners(&moved).contains(&"batch/v1beta1.CronJob".to_string()));
    assert_eq!(check_json(dir, "moved.sktrace", "1.25", 0)["findings"], json!([]));
}

/// Every shared trace at several targets: after `--fix` and `skel apply --follow-api-versions`,
/// no finding that was fixable is left, and nothing new appears.
#[test]
fn shared_traces_round_trip_at_every_target() {
    let dir = root().join("../shared/traces");
    if !dir.is_dir() {
        shared_missing(&dir);
        return;
    }
    let mut names: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let tmp = workdir(&[(dir.join(&name), &name)]);
        let ext = Path::new(&name).extension().unwrap().to_str().unwrap().to_string();
        for version in ["1.22", "1.25", "1.29", "1.36"] {
            let before = check(tmp.path(), &name, version, &["--format", "json", "--fix", "fix.skel"]);
            let before = parse_json(&before.stdout);
            let out = format!("out.{ext}");
            let args = ["apply", "fix.skel", name.as_str(), "-o", &out, "-q", "--follow-api-versions"];
            let applied = run(skel(tmp.path()).args(args));
            assert_eq!(applied.code, 0, "{name} at {version}: {}", applied.stderr);
            let after = check(tmp.path(), &out, version, &["--format", "json"]);
            let after = parse_json(&after.stdout);
            let unfixable: Vec<&str> =
                findings(&before).iter().filter(|f| f["fixable"] == false).map(|f| f["id"].as_str().unwrap()).collect();
            assert_eq!(ids(&after), unfixable, "{name} at {version}: what is left is what had no fix");
        }
    }
}

/// What `--fix` writes passes `skel fmt --check` (it is written through `skel fmt`'s formatter)
/// and compiles, for every removed API of the removal table at once (the longest statements:
/// field moves before the apiVersion) and for the hazard fixtures, at every target version.
#[test]
fn fix_scripts_are_canonical_at_every_target() {
    let table = root().join("../shared/k8s-api-removals.yaml");
    if !table.exists() {
        shared_missing(&table);
        return;
    }
    let text = fs::read_to_string(&table).unwrap();
    let removals: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let manifests: Vec<String> = removals["removals"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| {
            let (group, version, kind) =
                (r["group"].as_str().unwrap(), r["version"].as_str().unwrap(), r["kind"].as_str().unwrap());
            let api = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
            let name = kind.to_lowercase();
            format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: team\nspec: {{}}\n")
        })
        .collect();
    assert!(manifests.len() > 40, "the table lists the removals");
    let tmp = workdir(&[(root().join("tests/data/check/hazards"), "hazards")]);
    let dir = tmp.path();
    fs::write(dir.join("removed.yaml"), manifests.join("---\n")).unwrap();
    let mut scripts = 0;
    for input in ["removed.yaml", "hazards"] {
        for minor in 16..=35 {
            let version = format!("1.{minor}");
            let r = check(dir, input, &version, &["--fix", "fix.skel", "--format", "json"]);
            assert!(r.code <= 1, "{input} at {version}:\n{}", r.stderr);
            let script = fs::read_to_string(dir.join("fix.skel")).unwrap();
            let fmt = run(skel(dir).args(["fmt", "--check", "fix.skel"]));
            assert_eq!(
                (fmt.code, fmt.stderr.as_str()),
                (0, ""),
                "{input} at {version}: `skel fmt --check` on the fix script\n{script}"
            );
            let compiled = run(skel(dir).args(["compile", "fix.skel"]));
            assert_eq!(compiled.code, 0, "{input} at {version}:\n{}\n{script}", compiled.stderr);
            scripts += usize::from(script.lines().any(|l| !l.starts_with('#') && !l.is_empty()));
        }
    }
    assert!(scripts >= 30, "most targets have statements to write ({scripts})");
}
