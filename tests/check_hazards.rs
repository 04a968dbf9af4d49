//! End-to-end tests of the upgrade-hazard rules of `skel check` (`skel/data/hazards.yaml`, and
//! the removed APIs of `skel/data/apis.yaml` where a fixture has one), on manifests
//! written as people ship them.
//!
//! The fixtures are `tests/data/check/hazards/*.yaml`, one theme a file; `expected.yaml` there
//! says, for each file and target version, which findings (id and severity) `skel check` must
//! report and how many objects each has. The expectations were worked out from the rules'
//! versions, not copied from the binary; where the binary disagrees today, `expected.yaml` lists
//! the deviation (a bug to fix) and the tests fail once it is fixed, so that the entry goes.
//!
//! Every test works in its own temp folder, with relative paths, as `tests/check.rs` does.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{run, skel, Run};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture folder.
fn fixtures() -> PathBuf {
    root().join("tests/data/check/hazards")
}

/// `expected.yaml`, read once.
fn expected() -> &'static Value {
    static EXPECTED: OnceLock<Value> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let text = fs::read_to_string(fixtures().join("expected.yaml")).unwrap();
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("expected.yaml: {e}"))
    })
}

fn versions() -> Vec<&'static str> {
    expected()["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

/// Every fixture file named in `expected.yaml`, in its order.
fn fixture_names() -> Vec<&'static str> {
    expected()["files"].as_object().unwrap().keys().map(String::as_str).collect()
}

fn file_expectation(file: &str) -> &'static Value {
    let e = &expected()["files"][file];
    assert!(e.is_object(), "{file} is not in expected.yaml");
    e
}

/// The deviations of `expected.yaml` for `file`.
fn deviations(file: &str) -> Vec<&'static Value> {
    expected()["deviations"].as_array().unwrap().iter().filter(|d| d["file"] == file).collect()
}

/// What the binary must report for `file` at `version`, deviations applied: `ID SEVERITY`
/// lines, sorted.
fn want_findings(file: &str, version: &str) -> Vec<String> {
    let listed = file_expectation(file)[version]
        .as_array()
        .unwrap_or_else(|| panic!("expected.yaml: {file} has no list for {version}"));
    let mut want: Vec<String> = listed.iter().map(|l| l.as_str().unwrap().to_string()).collect();
    for d in deviations(file) {
        let id = d["id"].as_str().unwrap();
        if let Some(reported) = d["reports"][version].as_str() {
            want.retain(|l| l.split(' ').next() != Some(id));
            if reported != "absent" {
                want.push(format!("{id} {reported}"));
            }
        }
    }
    want.sort();
    want
}

/// How many objects have each finding of `file`, deviations applied; `None` for an id a
/// deviation adds (its count is not checked).
fn want_count(file: &str, id: &str) -> Option<u64> {
    let deviation = deviations(file).into_iter().find(|d| d["id"] == id);
    if let Some(n) = deviation.and_then(|d| d["objects"].as_u64()) {
        return Some(n);
    }
    match file_expectation(file)["counts"][id].as_u64() {
        Some(n) => Some(n),
        None if deviation.is_some() => None,
        None => panic!("expected.yaml: {file} has no count for {id}"),
    }
}

/// A temp folder holding copies of the fixtures `names` (under `under/` when it is not empty).
fn workdir(names: &[&str], under: &str) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(under);
    fs::create_dir_all(&dir).unwrap();
    for name in names {
        fs::copy(fixtures().join(name), dir.join(name)).unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
    tmp
}

/// `skel check INPUT --target-version VERSION EXTRA...` in `dir`.
fn check(dir: &Path, input: &str, version: &str, extra: &[&str]) -> Run {
    run(skel(dir).args(["check", input, "--target-version", version]).args(extra))
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON: {e}\n{text}"))
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings is an array")
}

/// `ID SEVERITY` of each finding, sorted.
fn found(report: &Value) -> Vec<String> {
    let mut lines: Vec<String> = findings(report)
        .iter()
        .map(|f| format!("{} {}", f["id"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    lines.sort();
    lines
}

/// The JSON report of `input` at `version`, its exit code checked against its findings (1 with
/// an error, else 0), and stderr (warnings about documents that are not manifests).
fn check_json(dir: &Path, input: &str, version: &str) -> (Value, String) {
    let r = check(dir, input, version, &["--format", "json"]);
    let report = parse_json(&r.stdout);
    let errors = findings(&report).iter().filter(|f| f["severity"] == "error").count();
    assert_eq!(r.code, i32::from(errors > 0), "exit code of check {input} at {version}; stderr:\n{}", r.stderr);
    assert_eq!(report["target"], version);
    assert_eq!(report["errors"], errors);
    assert_eq!(report["warnings"], findings(&report).len() - errors);
    (report, r.stderr)
}

/// How many `not_a_manifest` warnings `stderr` holds.
fn not_a_manifest_warnings(stderr: &str) -> usize {
    stderr.matches("skel::upgrade::not_a_manifest").count()
}

/// Checks each of `files` at every version against `expected.yaml`.
fn expect_files(files: &[&str]) {
    let tmp = workdir(files, "");
    let dir = tmp.path();
    for file in files {
        let e = file_expectation(file);
        let warnings = e["warnings"].as_u64().unwrap_or(0) as usize;
        for version in versions() {
            let (report, stderr) = check_json(dir, file, version);
            assert_eq!(not_a_manifest_warnings(&stderr), warnings, "{file} at {version}; stderr:\n{stderr}");
            if warnings == 0 {
                assert_eq!(stderr, "", "{file} at {version}");
            }
            assert_eq!(report["objects"], e["objects"], "{file}: objects read");
            assert_eq!(report["events"], 1, "{file}: manifests are one event");
            let want = want_findings(file, version);
            let got = found(&report);
            let devs = deviations(file);
            assert_eq!(
                got,
                want,
                "{file} at {version}: findings (expected.yaml{})",
                if devs.is_empty() {
                    String::new()
                } else {
                    format!(", with its deviations: if the binary is right now, delete them: {devs:?}")
                }
            );
            for f in findings(&report) {
                let id = f["id"].as_str().unwrap();
                if let Some(n) = want_count(file, id) {
                    assert_eq!(f["objects"], n, "{file} at {version}: objects of {id}");
                }
                assert_eq!((f["events"].as_u64(), f["firstSeen"].as_i64()), (Some(1), Some(0)), "{file}: {id}");
                assert!(!f["sources"].as_array().unwrap().is_empty(), "{file}: {id} names its sources");
            }
        }
    }
}

/// The objects of a manifest file as `skel check` reads them, read here on their own: the
/// documents (the fixtures separate them by `---` lines), a typed list's items with the list's
/// kind without `List` and its apiVersion; what is not an object with a `kind` is left out.
fn manifest_objects(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in text.split("\n---\n") {
        let v: Value = serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        let kind = v["kind"].as_str().unwrap_or("").to_string();
        match (kind.strip_suffix("List"), v["items"].as_array()) {
            (Some(item_kind), Some(items)) => {
                for item in items {
                    let mut item = item.clone();
                    if item.get("kind").is_none() {
                        item["kind"] = json!(item_kind);
                        item["apiVersion"] = v["apiVersion"].clone();
                    }
                    out.push(item);
                }
            }
            _ if !kind.is_empty() => out.push(v),
            _ => {}
        }
    }
    out
}

/// A version-2 trace of one event at ts 0 holding `objects`.
fn trace_of(objects: Vec<Value>) -> Value {
    json!({
        "version": 2,
        "config": {"trackedObjects": {}},
        "events": [{"ts": 0, "applied_objs": objects, "deleted_objs": []}],
        "index": {},
        "pod_lifecycles": {},
    })
}

/// The rules of `hazards.yaml`, in its order.
fn hazards() -> Vec<Value> {
    let text = fs::read_to_string(root().join("skel/data/hazards.yaml")).unwrap();
    let data: Value = serde_yaml::from_str(&text).unwrap();
    data["hazards"].as_array().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// 1. The expectations themselves

/// `1.25` as a comparable pair.
fn minor(v: &str) -> (u32, u32) {
    let (major, minor) = v.split_once('.').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

/// The severity a rule has at `version` by its data (`warn_from`/`error_from`, or a removal's
/// `removed_in`), read here from the data files: `expected.yaml` must agree with it, so that a
/// change of the data shows up as a change of the expectations.
fn data_severity(id: &str, version: &str) -> Option<&'static str> {
    static DATA: OnceLock<(Value, Value)> = OnceLock::new();
    let (hazards, removals) = DATA.get_or_init(|| {
        let read = |name: &str| -> Value {
            serde_yaml::from_str(&fs::read_to_string(root().join("skel/data").join(name)).unwrap()).unwrap()
        };
        (read("hazards.yaml"), read("apis.yaml"))
    });
    let reached = |v: &Value| v.as_str().is_some_and(|v| minor(v) <= minor(version));
    if let Some(api) = id.strip_prefix("removed-api:") {
        let r = removals["apis"].as_array().unwrap().iter().filter(|r| r.get("removed_in").is_some()).find(|r| {
            let group = r["group"].as_str().unwrap();
            let version = r["version"].as_str().unwrap();
            let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
            format!("{api_version}/{}", r["kind"].as_str().unwrap()) == api
        });
        let r = r.unwrap_or_else(|| panic!("{id} is not a removal of apis.yaml"));
        return reached(&r["removed_in"]).then_some("error");
    }
    let h = hazards["hazards"].as_array().unwrap().iter().find(|h| h["id"] == id);
    let h = h.unwrap_or_else(|| panic!("{id} is not in hazards.yaml"));
    if reached(&h["error_from"]) {
        Some("error")
    } else if reached(&h["warn_from"]) {
        Some("warning")
    } else {
        None
    }
}

/// Every version list of `expected.yaml` is sorted, names only ids of the file's `counts`, and
/// gives each the severity its rule has at that version; every fixture is in it, and every file
/// it names is a fixture.
#[test]
fn expectations_follow_the_rules_data() {
    let mut on_disk: Vec<String> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "expected.yaml")
        .collect();
    on_disk.sort();
    let mut named: Vec<String> = fixture_names().iter().map(|n| n.to_string()).collect();
    named.sort();
    assert_eq!(named, on_disk, "expected.yaml names every fixture, and only those");

    for file in fixture_names() {
        let e = file_expectation(file);
        let counts: BTreeMap<String, u64> = e["counts"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect())
            .unwrap_or_default();
        let mut listed = BTreeSet::new();
        for version in versions() {
            let lines: Vec<&str> = e[version].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
            let mut sorted = lines.clone();
            sorted.sort();
            assert_eq!(lines, sorted, "{file} at {version}: sorted by id");
            for (id, n) in &counts {
                assert!(*n > 0, "{file}: {id}");
                let want = data_severity(id, version).map(|s| format!("{id} {s}"));
                let have = lines.iter().find(|l| l.split(' ').next() == Some(id.as_str()));
                assert_eq!(have.map(|l| l.to_string()), want, "{file} at {version}: {id} by the rules' data");
            }
            for line in lines {
                let (id, severity) = line.split_once(' ').unwrap();
                assert!(counts.contains_key(id), "{file}: {id} has no count");
                assert!(["error", "warning"].contains(&severity), "{file}: {line}");
                listed.insert(id.to_string());
            }
        }
        for id in counts.keys() {
            assert!(listed.contains(id), "{file}: {id} is counted but found at no version");
        }
    }
    for d in expected()["deviations"].as_array().unwrap() {
        let file = d["file"].as_str().unwrap();
        assert!(fixture_names().contains(&file), "deviation of an unknown file {file}");
        assert!(!d["why"].as_str().unwrap_or("").is_empty(), "every deviation says why: {d}");
        assert!(d["reports"].is_object() || d["objects"].is_u64(), "{d}");
    }
}

/// Every rule of `hazards.yaml` is found by at least one fixture (in `counts`, so at the
/// versions where it applies), and every rule found in pod templates in at least two objects
/// (the fixtures put them in two places: a workload, a CronJob, a Pod, a PodTemplate).
#[test]
fn every_rule_has_a_fixture() {
    let mut objects: BTreeMap<String, u64> = BTreeMap::new();
    for file in fixture_names() {
        if let Some(counts) = file_expectation(file)["counts"].as_object() {
            for (id, n) in counts {
                *objects.entry(id.clone()).or_default() += n.as_u64().unwrap();
            }
        }
    }
    for h in hazards() {
        let id = h["id"].as_str().unwrap();
        let in_pods = matches!(h["family"].as_str().unwrap(), "label" | "taint" | "volume" | "volume-csi")
            || h["on"].as_array().is_some_and(|on| on.contains(&json!("pod")))
            || id.starts_with("behaviour:");
        let n = objects.get(id).copied().unwrap_or(0);
        let least = if in_pods { 2 } else { 1 };
        assert!(n >= least, "{id}: found in {n} fixture objects, at least {least} wanted");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Each theme at each target version

/// The fixtures by theme: a test each.
const THEMES: [(&str, &[&str]); 13] = [
    ("control-plane", &["control-plane.yaml", "control-plane-or-terms.yaml", "control-plane-ok.yaml"]),
    ("node-labels", &["labels-os-arch.yaml", "labels-topology.yaml", "gce-addon-labels.yaml", "labels-ok.yaml"]),
    ("seccomp-apparmor", &["seccomp.yaml", "seccomp-localhost.yaml", "apparmor.yaml", "seccomp-ok.yaml"]),
    ("pod-annotations", &["pod-annotations.yaml"]),
    ("services", &["services.yaml", "ingress.yaml", "services-ok.yaml"]),
    (
        "volumes",
        &[
            "volumes.yaml",
            "persistent-volumes.yaml",
            "csi-migrated-volumes.yaml",
            "storage-class-annotation.yaml",
            "volumes-ok.yaml",
        ],
    ),
    ("cronjob-timezone", &["cronjob-timezone.yaml", "cronjob-timezone-ok.yaml"]),
    (
        "service-account-tokens",
        &["service-account-tokens.yaml", "service-account-tokens-env.yaml", "service-account-tokens-ok.yaml"],
    ),
    ("psp", &["psp.yaml", "psp-ok.yaml", "psp-wildcard-role.yaml"]),
    ("docker-socket", &["docker-socket.yaml", "docker-socket-ok.yaml"]),
    ("addresses", &["ip-cidr.yaml", "host-aliases.yaml", "ip-mapped-ipv6.yaml", "ip-cidr-ok.yaml"]),
    ("node-config-self-link", &["nodes.yaml", "exported-objects.yaml"]),
    ("reading", &["typed-lists.yaml", "stray-documents.yaml"]),
];

fn expect_theme(theme: &str) {
    let (_, files) = THEMES.iter().find(|(t, _)| *t == theme).unwrap();
    expect_files(files);
}

/// Every fixture is in one theme.
#[test]
fn every_fixture_has_a_theme() {
    let mut themed: Vec<&str> = THEMES.iter().flat_map(|(_, files)| files.iter().copied()).collect();
    themed.sort();
    let mut named = fixture_names();
    named.sort();
    assert_eq!(themed, named);
}

#[test]
fn control_plane_label_and_taint() {
    expect_theme("control-plane");
}

#[test]
fn node_labels() {
    expect_theme("node-labels");
}

#[test]
fn seccomp_and_apparmor() {
    expect_theme("seccomp-apparmor");
}

#[test]
fn pod_annotations() {
    expect_theme("pod-annotations");
}

#[test]
fn services_and_ingresses() {
    expect_theme("services");
}

#[test]
fn volumes() {
    expect_theme("volumes");
}

#[test]
fn cronjob_timezone() {
    expect_theme("cronjob-timezone");
}

#[test]
fn service_account_tokens() {
    expect_theme("service-account-tokens");
}

#[test]
fn pod_security_policy() {
    expect_theme("psp");
}

#[test]
fn docker_socket() {
    expect_theme("docker-socket");
}

#[test]
fn addresses() {
    expect_theme("addresses");
}

#[test]
fn node_config_and_self_link() {
    expect_theme("node-config-self-link");
}

#[test]
fn typed_lists_and_stray_documents() {
    expect_theme("reading");
}

// ---------------------------------------------------------------------------------------------
// 3. Exit codes and severities

/// Exit 1 with an error; 0 with only warnings, unless `--fail-on warning`; 0 with nothing.
#[test]
fn exit_codes_follow_the_severities() {
    let tmp = workdir(&["control-plane.yaml", "labels-os-arch.yaml", "labels-ok.yaml"], "");
    let dir = tmp.path();

    let errors = check(dir, "control-plane.yaml", "1.25", &[]);
    assert_eq!(errors.code, 1, "errors: exit 1\n{}{}", errors.stdout, errors.stderr);
    assert!(errors.stdout.contains("\nerrors (2)\n"), "{}", errors.stdout);
    let warned = check(dir, "control-plane.yaml", "1.22", &[]);
    assert_eq!(warned.code, 0, "the same objects at 1.22 are warnings: exit 0\n{}", warned.stdout);
    assert!(warned.stdout.contains("\nwarnings (2)\n") && !warned.stdout.contains("errors ("), "{}", warned.stdout);
    assert_eq!(check(dir, "control-plane.yaml", "1.22", &["--fail-on", "warning"]).code, 1);
    assert_eq!(check(dir, "control-plane.yaml", "1.25", &["--fail-on", "error"]).code, 1);

    let warnings = check(dir, "labels-os-arch.yaml", "1.36", &[]);
    assert_eq!(warnings.code, 0, "only warnings: exit 0\n{}", warnings.stdout);
    assert!(warnings
        .stdout
        .ends_with("3 findings (0 errors, 3 warnings), 3 with a mechanical fix (`--fix FILE.skel`)\n"));
    let failed = check(dir, "labels-os-arch.yaml", "1.36", &["--fail-on", "warning"]);
    assert_eq!(failed.code, 1, "only warnings, --fail-on warning: exit 1");
    assert_eq!(failed.stdout, warnings.stdout, "--fail-on changes the exit code only");

    let nothing = check(dir, "labels-ok.yaml", "1.36", &["--fail-on", "warning"]);
    assert_eq!(nothing.code, 0);
    assert_eq!(nothing.stdout, "skel check: 3 objects in 1 event, target Kubernetes 1.36\nnothing found\n");
}

/// `--min-severity error` leaves the warnings out of the JSON and text reports (and of the
/// exit code's reasons); the errors stay as they were.
#[test]
fn min_severity_error_hides_warnings() {
    let tmp = workdir(&["pod-annotations.yaml", "labels-os-arch.yaml"], "");
    let dir = tmp.path();
    let file = "pod-annotations.yaml";
    let warning = "annotation:kubectl.kubernetes.io/default-logs-container";

    let all = parse_json(&check(dir, file, "1.25", &["--format", "json"]).stdout);
    assert_eq!((all["errors"].as_u64(), all["warnings"].as_u64()), (Some(1), Some(1)));
    let r = check(dir, file, "1.25", &["--format", "json", "--min-severity", "error"]);
    assert_eq!(r.code, 1);
    let errors_only = parse_json(&r.stdout);
    assert_eq!(found(&errors_only), ["annotation:scheduler.alpha.kubernetes.io/critical-pod error"]);
    assert_eq!((errors_only["errors"].as_u64(), errors_only["warnings"].as_u64()), (Some(1), Some(0)));
    let error_finding = findings(&all).iter().find(|f| f["severity"] == "error").unwrap();
    assert_eq!(&findings(&errors_only)[0], error_finding, "the error is reported as without the option");

    let text = check(dir, file, "1.25", &[]);
    assert!(text.stdout.contains(warning) && text.stdout.contains("\nwarnings (1)\n"), "{}", text.stdout);
    let text = check(dir, file, "1.25", &["--min-severity", "error"]);
    assert_eq!(text.code, 1);
    assert!(!text.stdout.contains(warning) && !text.stdout.contains("warnings ("), "{}", text.stdout);
    assert!(text.stdout.contains("\nerrors (1)\n"), "{}", text.stdout);

    let r = check(dir, "labels-os-arch.yaml", "1.25", &["--format", "json", "--min-severity", "error"]);
    assert_eq!(r.code, 0, "only warnings, hidden: exit 0");
    assert_eq!(parse_json(&r.stdout)["findings"], json!([]));
    let r = check(dir, "labels-os-arch.yaml", "1.25", &["--min-severity", "warning"]);
    assert!(r.stdout.contains("\nwarnings (3)\n"), "warning is the default: {}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// 4. The fix, applied

/// Findings that a fix rewrites only in part (the hazard's `manual` note says so) and that stay
/// after it, with why: (file, id).
const PARTIAL_FIXES: [(&str, &str, &str); 1] = [(
    "seccomp-localhost.yaml",
    "annotation:seccomp.security.alpha.kubernetes.io/pod",
    "a `localhost/...` value: SKEL cannot cut the prefix off (the rule's manual note)",
)];

/// For every fixture at every version: the fixture's objects as a one-event trace report what
/// the file does; `--fix` writes a script in `skel fmt`'s style, which `skel apply` applies;
/// checked again, no finding that was `fixable` is left (but the partial ones above), nothing
/// new appears, and no object is lost.
#[test]
fn fixes_round_trip_on_every_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut partial_seen = BTreeSet::new();
    for file in fixture_names() {
        fs::copy(fixtures().join(file), dir.join(file)).unwrap();
        let objects = manifest_objects(&fs::read_to_string(dir.join(file)).unwrap());
        let n = objects.len();
        assert_eq!(n as u64, file_expectation(file)["objects"].as_u64().unwrap(), "{file}: objects");
        fs::write(dir.join("trace.json"), trace_of(objects).to_string()).unwrap();
        for version in versions() {
            let (from_file, _) = check_json(dir, file, version);
            let r = check(dir, "trace.json", version, &["--format", "json", "--fix", "fix.skel"]);
            assert_eq!(r.stderr, "", "{file} at {version}");
            let before = parse_json(&r.stdout);
            assert_eq!(before, from_file, "{file} at {version}: the trace reports what the file does");

            let script = fs::read_to_string(dir.join("fix.skel")).unwrap();
            assert!(script.starts_with(&format!("# Written by `skel check --target-version {version}`.")));
            let fmt = run(skel(dir).args(["fmt", "--check", "fix.skel"]));
            assert_eq!(
                fmt.code, 0,
                "{file} at {version}: the fix is in skel fmt's style\n{}{}",
                fmt.stdout, fmt.stderr
            );

            let applied = run(skel(dir).args(["apply", "fix.skel", "trace.json", "-o", "out.json", "-q"]));
            assert_eq!(applied.code, 0, "{file} at {version}: the fix applies\n{}\n{script}", applied.stderr);
            let (after, stderr) = check_json(dir, "out.json", version);
            assert_eq!(stderr, "");
            assert!(after["objects"].as_u64().unwrap() >= n as u64, "{file} at {version}: no object is lost");

            let before_ids: BTreeMap<&str, bool> = findings(&before)
                .iter()
                .map(|f| (f["id"].as_str().unwrap(), f["fixable"].as_bool().unwrap()))
                .collect();
            for f in findings(&after) {
                let id = f["id"].as_str().unwrap();
                match before_ids.get(id) {
                    None => panic!("{file} at {version}: the fix brings a new finding {id}\n{script}"),
                    Some(false) => {}
                    Some(true) => {
                        let partial = PARTIAL_FIXES.iter().any(|(pf, pid, _)| *pf == file && *pid == id);
                        assert!(partial, "{file} at {version}: {id} is fixable and still there\n{script}");
                        partial_seen.insert((file, id.to_string()));
                    }
                }
            }
        }
    }
    for (file, id, why) in PARTIAL_FIXES {
        assert!(
            partial_seen.contains(&(file, id.to_string())),
            "{file}: {id} ({why}) is fixed now: update PARTIAL_FIXES"
        );
    }
}

/// The statements of one fix, as they come out for the fixtures whose fix the round trip
/// cannot tell right from wrong by the findings alone.
#[test]
fn fixes_rewrite_to_the_replacements() {
    let tmp = workdir(&["cronjob-timezone.yaml", "service-account-tokens.yaml", "seccomp.yaml"], "");
    let dir = tmp.path();
    let fixed = |file: &str, version: &str| -> Vec<Value> {
        let objects = manifest_objects(&fs::read_to_string(dir.join(file)).unwrap());
        fs::write(dir.join("trace.json"), trace_of(objects).to_string()).unwrap();
        assert_eq!(check(dir, "trace.json", version, &["--fix", "fix.skel"]).code, 1);
        let applied = run(skel(dir).args(["apply", "fix.skel", "trace.json", "-o", "out.json", "-q"]));
        assert_eq!(applied.code, 0, "{}", applied.stderr);
        let out = parse_json(&fs::read_to_string(dir.join("out.json")).unwrap());
        out["events"][0]["applied_objs"].as_array().unwrap().clone()
    };

    let crons = fixed("cronjob-timezone.yaml", "1.29");
    let zones: Vec<(&str, &str, &str)> = crons
        .iter()
        .map(|c| {
            let spec = &c["spec"];
            (c["apiVersion"].as_str().unwrap(), spec["schedule"].as_str().unwrap(), spec["timeZone"].as_str().unwrap())
        })
        .collect();
    assert_eq!(zones, [("batch/v1", "0 3 * * *", "Europe/Paris"), ("batch/v1", "30 9 * * 1-5", "America/New_York")]);

    let objs = fixed("service-account-tokens.yaml", "1.25");
    let secrets: Vec<(&str, &str, &str)> = objs
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .map(|s| {
            let meta = &s["metadata"];
            assert_eq!(s["type"], "kubernetes.io/service-account-token");
            (
                meta["namespace"].as_str().unwrap(),
                meta["name"].as_str().unwrap(),
                meta["annotations"]["kubernetes.io/service-account.name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        secrets,
        [
            ("ci", "ci-deployer-token-7xk2p", "ci-deployer"),
            ("ci", "build-bot-token-q8z4m", "build-bot"),
            ("ci", "registry-admin-token-p2w6n", "registry-admin"),
        ],
        "one Secret per token referred to, however many refer to it"
    );

    let objs = fixed("seccomp.yaml", "1.27");
    let profile = |o: &Value| -> Value {
        let spec = match o["kind"].as_str().unwrap() {
            "Pod" => &o["spec"],
            "CronJob" => &o["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "PodTemplate" => &o["template"]["spec"],
            _ => &o["spec"]["template"]["spec"],
        };
        spec["securityContext"]["seccompProfile"].clone()
    };
    let profiles: Vec<Value> = objs.iter().map(profile).collect();
    assert_eq!(
        profiles,
        [
            json!({"type": "RuntimeDefault"}),
            json!({"type": "RuntimeDefault"}),
            json!({"type": "Unconfined"}),
            Value::Null,
            Value::Null
        ],
        "runtime/default and docker/default are RuntimeDefault, unconfined is Unconfined; the per-container annotations are left"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Reports and inputs

/// The Markdown summary of the Services at 1.36: errors first, each finding a row.
#[test]
fn markdown_report() {
    let tmp = workdir(&["services.yaml"], "");
    let r = check(tmp.path(), "services.yaml", "1.36", &["--format", "markdown"]);
    assert_eq!(r.code, 1, "stderr:\n{}", r.stderr);
    assert_eq!(r.stderr, "");
    let rows = r.stdout.lines().filter(|l| l.starts_with("| error") || l.starts_with("| warning")).count();
    assert_eq!(rows, want_findings("services.yaml", "1.36").len(), "a row per finding");
    insta::assert_snapshot!("services_1_36_markdown", r.stdout);
}

/// A typed list in a subfolder is read with the rest (its items count as objects), and the
/// whole fixture folder reports, at each version, what its files report one by one.
#[test]
fn folders_read_typed_lists_and_add_up() {
    let tmp = workdir(&["control-plane.yaml"], "manifests");
    fs::create_dir_all(tmp.path().join("manifests/lists")).unwrap();
    fs::copy(fixtures().join("typed-lists.yaml"), tmp.path().join("manifests/lists/typed-lists.yaml")).unwrap();
    let (report, stderr) = check_json(tmp.path(), "manifests", "1.25");
    assert_eq!(stderr, "");
    assert_eq!(report["objects"], 3 + 6, "the Deployment, CronJob and Pod, and the lists' six items");
    let mut want: Vec<String> = want_findings("control-plane.yaml", "1.25");
    want.extend(want_findings("typed-lists.yaml", "1.25"));
    want.sort();
    want.dedup();
    assert_eq!(found(&report), want);
    let master = findings(&report).iter().find(|f| f["id"] == "label:node-role.kubernetes.io/master").unwrap();
    assert_eq!(master["objects"], 3 + 1, "the DeploymentList's item counts with the others");
    let pdb = findings(&report).iter().find(|f| f["id"] == "removed-api:policy/v1beta1/PodDisruptionBudget").unwrap();
    assert_eq!((pdb["objects"].as_u64(), pdb["example"].as_str()), (Some(2), Some("data/zookeeper")));

    let all = workdir(&fixture_names(), "all");
    let total: u64 = fixture_names().iter().map(|f| file_expectation(f)["objects"].as_u64().unwrap()).sum();
    for version in versions() {
        let (report, stderr) = check_json(all.path(), "all", version);
        assert_eq!(not_a_manifest_warnings(&stderr), 2, "the stray documents; stderr:\n{stderr}");
        assert_eq!(report["objects"], total, "at {version}");
        let mut want: BTreeSet<String> = BTreeSet::new();
        // The sum of the files' counts, `None` where a deviation leaves one unknown.
        let mut counts: BTreeMap<String, Option<u64>> = BTreeMap::new();
        for file in fixture_names() {
            for line in want_findings(file, version) {
                let id = line.split(' ').next().unwrap().to_string();
                let n = want_count(file, &id);
                let sum = counts.entry(id).or_insert(Some(0));
                *sum = sum.zip(n).map(|(a, b)| a + b);
                want.insert(line);
            }
        }
        assert_eq!(found(&report), want.into_iter().collect::<Vec<_>>(), "the folder at {version}");
        for f in findings(&report) {
            let id = f["id"].as_str().unwrap();
            if let Some(Some(n)) = counts.get(id) {
                assert_eq!(f["objects"], *n, "the folder at {version}: {id}");
            }
        }
    }
}

/// A YAML document that is a bare string or number is not a manifest: a warning each on
/// stderr, the rest is checked, and the exit code is what the findings make it.
#[test]
fn documents_that_are_not_manifests_are_warnings() {
    let tmp = workdir(&["stray-documents.yaml", "control-plane.yaml"], "");
    let dir = tmp.path();
    let r = check(dir, "stray-documents.yaml", "1.25", &[]);
    assert_eq!(r.code, 0, "a warning does not fail the check\n{}", r.stderr);
    assert_eq!(r.stdout, "skel check: 1 object in 1 event, target Kubernetes 1.25\nnothing found\n");
    assert_eq!(not_a_manifest_warnings(&r.stderr), 2, "{}", r.stderr);
    assert!(r.stderr.contains("`stray-documents.yaml`: document 2: a string, not a manifest"), "{}", r.stderr);
    assert!(r.stderr.contains("`stray-documents.yaml`: document 3: a number, not a manifest"), "{}", r.stderr);

    // After a document with findings, the same warning, and the findings' exit code.
    let text = fs::read_to_string(dir.join("control-plane.yaml")).unwrap();
    fs::write(dir.join("mixed.yaml"), format!("{text}---\nplain text\n---\n- 7\n")).unwrap();
    let r = check(dir, "mixed.yaml", "1.25", &["--format", "json"]);
    assert_eq!(r.code, 1);
    assert_eq!(parse_json(&r.stdout)["objects"], 3);
    assert_eq!(not_a_manifest_warnings(&r.stderr), 2, "{}", r.stderr);
    assert!(r.stderr.contains("document 5, item 1: a number"), "{}", r.stderr);
}

/// A trace's config can name other places of pod templates (`podSpecTemplatePaths` of a
/// tracked kind): a custom resource's pod template there is checked, and fixed, as a
/// Deployment's is.
#[test]
fn config_pod_template_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let runner = json!({
        "apiVersion": "ci.example.com/v1",
        "kind": "RunnerSet",
        "metadata": {"name": "builders", "namespace": "ci"},
        "spec": {"replicas": 2, "runnerTemplate": {
            "metadata": {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}},
            "spec": {
                "nodeSelector": {"beta.kubernetes.io/os": "linux"},
                "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
                "containers": [{"name": "runner", "image": "ci/runner:2.0.0"}],
            },
        }},
    });
    let mut trace = trace_of(vec![runner]);
    trace["config"]["trackedObjects"] =
        json!({"ci.example.com/v1.RunnerSet": {"podSpecTemplatePaths": ["/spec/runnerTemplate"]}});
    fs::write(dir.join("trace.json"), trace.to_string()).unwrap();
    let (report, _) = check_json(dir, "trace.json", "1.25");
    assert_eq!(
        found(&report),
        [
            "annotation:seccomp.security.alpha.kubernetes.io/pod warning",
            "label:beta.kubernetes.io/os warning",
            "taint:node-role.kubernetes.io/master error",
        ]
    );
    // Without the config, the custom resource has no pod template skel knows of.
    trace["config"]["trackedObjects"] = json!({});
    fs::write(dir.join("plain.json"), trace.to_string()).unwrap();
    assert_eq!(check_json(dir, "plain.json", "1.25").0["findings"], json!([]));

    assert_eq!(check(dir, "trace.json", "1.25", &["--fix", "fix.skel"]).code, 1);
    let applied = run(skel(dir).args(["apply", "fix.skel", "trace.json", "-o", "out.json", "-q"]));
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(check_json(dir, "out.json", "1.25").0["findings"], json!([]));
    let out = parse_json(&fs::read_to_string(dir.join("out.json")).unwrap());
    let spec = &out["events"][0]["applied_objs"][0]["spec"]["runnerTemplate"]["spec"];
    assert_eq!(spec["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(spec["tolerations"][0]["key"], "node-role.kubernetes.io/control-plane");
    assert_eq!(spec["securityContext"]["seccompProfile"], json!({"type": "RuntimeDefault"}));
}
