//! `skel run` end to end: the real binary against an in-process fake API server (through
//! kube-rs over HTTP), dry runs against the built-in table, and usage errors.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../runner/tests/fake_api/mod.rs"]
mod fake_api;

use std::path::{Path, PathBuf};

use common::{run, skel, Run};
use fake_api::{FakeApi, Fault, Options};
use serde_json::{json, Value};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A small trace: a namespace-less Deployment and a ConfigMap, then a Pod and the ConfigMap's
/// deletion a minute later.
fn write_trace(dir: &Path) -> PathBuf {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}});
    let trace = json!({
        "version": 2,
        "config": {"trackedObjects": {}},
        "events": [
            {"ts": 1000, "applied_objs": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                 "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
                cm.clone()], "deleted_objs": []},
            {"ts": 1060, "applied_objs": [
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}, "spec": {"containers": []}}],
             "deleted_objs": [cm]}
        ],
        "index": {},
        "pod_lifecycles": {}
    });
    let path = dir.join("trace.json");
    std::fs::write(&path, serde_json::to_string_pretty(&trace).unwrap()).unwrap();
    path
}

fn cluster(dir: &Path, version: &str) -> (FakeApi, PathBuf) {
    let api = FakeApi::start(version);
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    (api, kubeconfig)
}

#[test]
fn replays_onto_a_cluster_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    let (api, kubeconfig) = cluster(dir.path(), "1.25");
    let r = run(skel(dir.path())
        .args(["run", "trace.json", "--speed", "max", "--virtual-nodes", "1"])
        .arg("--kubeconfig")
        .arg(&kubeconfig));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("skel run: replaying onto Kubernetes 1.25 at http://127.0.0.1:"), "{}", r.stderr);
    assert!(r.stderr.contains("skel run: 2/2 events (00:01:00 of trace, at full speed)"), "{}", r.stderr);
    assert!(
        r.stderr.contains("3 applied (3 created), 1 deleted, 0 failed; deleted 2 namespaces and 1 virtual node"),
        "{}",
        r.stderr
    );
    assert!(api.objects().is_empty(), "{:?}", api.objects().keys());
}

#[test]
fn keep_leaves_the_objects_and_a_script_rewrites_them_first() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    std::fs::write(dir.path().join("s.skel"), "modify(kind == \"Deployment\", spec.replicas = 3);\n").unwrap();
    let (api, kubeconfig) = cluster(dir.path(), "1.25");
    let r = run(skel(dir.path())
        .args(["run", "trace.json", "--speed", "max", "--keep", "--script", "s.skel", "--namespace-prefix", "sim-"])
        .arg("--kubeconfig")
        .arg(&kubeconfig));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objects = api.objects();
    let keys: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "/api/v1/namespaces/sim-default",
            "/api/v1/namespaces/sim-shop",
            "/api/v1/namespaces/sim-shop/pods/p",
            "/apis/apps/v1/namespaces/sim-default/deployments/web"
        ]
    );
    assert_eq!(objects["/apis/apps/v1/namespaces/sim-default/deployments/web"]["spec"]["replicas"], 3);
    assert!(r.stderr.contains("; kept 2 namespaces"), "{}", r.stderr);
}

#[test]
fn failures_are_listed_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    let (api, kubeconfig) = cluster(dir.path(), "1.25");
    api.fault("PATCH", "/deployments/web", 1, Fault::Status { code: 422, reason: "Invalid", retry_after: None });
    let r = run(skel(dir.path()).args(["run", "trace.json", "--speed", "max"]).arg("--kubeconfig").arg(&kubeconfig));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let url = api.url();
    let stderr: String = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("skel run:"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(&url, "http://FAKE");
    insta::assert_snapshot!(stderr);
}

#[test]
fn preflight_refusal_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (api, kubeconfig) = cluster(dir.path(), "1.25");
    let r = run(skel(dir.path()).arg("run").arg(examples().join("trace.json")).arg("--kubeconfig").arg(&kubeconfig));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("skel::run::unserved"), "{}", r.stderr);
    assert!(r.stderr.contains("batch/v1beta1 CronJob (5 objects): removed in 1.25, use batch/v1"), "{}", r.stderr);
    assert!(api.request_lines().iter().all(|l| l.starts_with("GET ")), "{:?}", api.request_lines());
}

#[test]
fn an_unreachable_cluster() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    let (_api, kubeconfig) = cluster(dir.path(), "1.25");
    let r = run(skel(dir.path())
        .args(["run", "trace.json", "--context", "down", "--timeout", "2s"])
        .arg("--kubeconfig")
        .arg(&kubeconfig));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("skel::run::unreachable"), "{}", r.stderr);
    assert!(r.stderr.contains("cannot reach the cluster at http://127.0.0.1:1"), "{}", r.stderr);
    let r = run(skel(dir.path()).args(["run", "trace.json", "--context", "nope"]).arg("--kubeconfig").arg(&kubeconfig));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("skel::run::kubeconfig"), "{}", r.stderr);
    assert!(r.stderr.contains("--context"), "{}", r.stderr);
}

#[test]
fn dry_run_prints_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fix.skel");
    std::fs::write(
        &script,
        "modify(kind == \"CronJob\" && apiVersion == \"batch/v1beta1\", apiVersion = \"batch/v1\");\n\
         modify(kind == \"PodDisruptionBudget\" && apiVersion == \"policy/v1beta1\", apiVersion = \"policy/v1\");\n\
         modify(metadata.namespace == \"data.pipeline\", metadata.namespace = \"data-pipeline\");\n",
    )
    .unwrap();
    let r = run(skel(dir.path())
        .arg("run")
        .arg(examples().join("trace.json"))
        .args(["--dry-run", "--server-version", "1.25", "--virtual-nodes", "1", "--until", "3m10s", "--script"])
        .arg(&script));
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);

    // Without the script, 1.25 serves neither.
    let r = run_trace(dir.path(), &examples().join("trace.json"), &["--dry-run", "--server-version", "1.25"]);
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("dry_run_unserved", r.stderr);
    // 1.24 serves both, but `data.pipeline` is not a namespace name a cluster accepts.
    let dry = |script: Option<&Path>| {
        let mut cmd = skel(dir.path());
        cmd.arg("run").arg(examples().join("trace.json")).args(["--dry-run", "--server-version", "1.24", "-q"]);
        if let Some(s) = script {
            cmd.arg("--script").arg(s);
        }
        run(&mut cmd)
    };
    let r = dry(None);
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("dry_run_bad_namespace", r.stderr);
    std::fs::write(
        &script,
        "modify(metadata.namespace == \"data.pipeline\", metadata.namespace = \"data-pipeline\");\n",
    )
    .unwrap();
    let r = dry(Some(&script));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    std::fs::write(dir.path().join("pod.yaml"), "kind: Pod\n").unwrap();
    let cases: &[&[&str]] = &[
        &["run", "-", "--dry-run"],
        &["run", "trace.json", "--dry-run", "--namespace-prefix", "Sim_"],
        &["run", "trace.json", "--dry-run", "--from", "5m", "--until", "1m"],
        &["run", "trace.json", "--dry-run", "--server-version", "1.99"],
        &["run", "trace.json", "--dry-run", "--jobs", "0"],
        &["run", "trace.json", "--dry-run", "--virtual-nodes", "1", "--node-template", "pod.yaml"],
        &["run", "trace.json", "--dry-run", "--virtual-nodes", "0", "--node-template", "pod.yaml"],
        &["run", "trace.json", "--dry-run", "--namespace-prefix", ""],
        &["run", "trace.json", "--server-version", "1.25"],
        &["run", "trace.json", "--dry-run", "--speed", "fast"],
        &["run", "trace.json", "--dry-run", "--from", "5d"],
        &["run", "trace.json", "--format", "json"],
    ];
    let mut out = String::new();
    for args in cases {
        let r = run(skel(dir.path()).args(*args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        out.push_str(&format!("$ skel {}\n{}\n", args.join(" "), r.stderr));
    }
    insta::assert_snapshot!(out);
}

/// A node template is YAML as every other file skel reads: a byte-order mark before it is
/// skipped, and flow nesting far past serde_yaml's limit is refused at once.
#[test]
fn node_templates_read_as_every_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    let dry_run = |template: &str| {
        let args = ["run", "trace.json", "--dry-run", "--virtual-nodes", "1", "--node-template", template];
        run(skel(dir.path()).args(args))
    };
    std::fs::write(dir.path().join("bom.yaml"), "\u{feff}kind: Node\nmetadata:\n  labels: {tier: sim}\n").unwrap();
    let r = dry_run("bom.yaml");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let deep = format!("kind: Node\nspec: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    std::fs::write(dir.path().join("deep.yaml"), deep).unwrap();
    let r = dry_run("deep.yaml");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("deep.yaml"), "{}", r.stderr);
}

#[test]
fn a_bad_script_stops_before_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    std::fs::write(dir.path().join("bad.skel"), "modify(kind == , x = 1);\n").unwrap();
    let (api, kubeconfig) = cluster(dir.path(), "1.25");
    let r =
        run(skel(dir.path()).args(["run", "trace.json", "--script", "bad.skel"]).arg("--kubeconfig").arg(&kubeconfig));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.skel:1:"), "{}", r.stderr);
    assert!(api.request_lines().is_empty());
}

#[test]
fn ctrl_c_stops_the_replay_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let trace = json!({
        "version": 2, "config": {"trackedObjects": {}}, "index": {}, "pod_lifecycles": {},
        "events": [
            {"ts": 0, "applied_objs": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}], "deleted_objs": []},
            {"ts": 3600, "applied_objs": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}], "deleted_objs": []}
        ]
    });
    std::fs::write(dir.path().join("trace.json"), trace.to_string()).unwrap();
    let (api, kubeconfig) = cluster(dir.path(), "1.25");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skel"));
    cmd.current_dir(dir.path())
        .args(["run", "trace.json", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Wait for the first event to be applied: the replay is then waiting an hour for the next.
    let applied = "/api/v1/namespaces/virtual-default/configmaps/a";
    assert!(
        api.wait_until(std::time::Duration::from_secs(20), |o| o.contains_key(applied)),
        "{applied} was not applied"
    );
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopping after the requests in flight"), "{stderr}");
    assert!(stderr.contains("1/2 events, interrupted"), "{stderr}");
    assert!(api.objects().is_empty(), "the clean-up ran: {:?}", api.objects().keys());
}

#[test]
fn a_delete_of_what_is_not_there_is_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "never-applied"}});
    let trace = json!({
        "version": 2, "config": {"trackedObjects": {}}, "index": {}, "pod_lifecycles": {},
        "events": [{"ts": 0, "applied_objs": [], "deleted_objs": [cm]}]
    });
    std::fs::write(dir.path().join("trace.json"), trace.to_string()).unwrap();
    let (_api, kubeconfig) = cluster(dir.path(), "1.25");
    let r = run(skel(dir.path()).args(["run", "trace.json", "--speed", "max"]).arg("--kubeconfig").arg(&kubeconfig));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("0 applied (0 created), 1 deleted (1 already gone), 0 failed"), "{}", r.stderr);
}

/// `skel run TRACE ARGS...` in `dir`.
fn run_trace(dir: &Path, trace: &Path, args: &[&str]) -> Run {
    run(skel(dir).arg("run").arg(trace).args(args))
}

fn shared_trace(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces").join(name)
}

/// The plan's lines with the run's own file names left out (the summary goes to stderr).
#[test]
fn dry_run_shows_the_pods_lifecycles_at_the_asked_speed() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_trace(dir.path(), &shared_trace("ex-cronjob.sktrace"), &["--dry-run", "--speed", "10"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Three Finished runs of 30 s: 3 s each at --speed 10, though a dry run does not wait.
    assert!(
        r.stdout.contains(
            "#   batch/v1.CronJob default/hello-simkube: 3 pods, each completes after 30s (3s at --speed 10)\n"
        ),
        "{}",
        r.stdout
    );
    insta::assert_snapshot!("dry_run_cronjob_lifecycles", r.stdout);
    // At the default speed the recorded time is the run time.
    let r = run_trace(dir.path(), &shared_trace("ex-cronjob.sktrace"), &["--dry-run", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("3 pods, each completes after 30s\n"), "{}", r.stdout);
    assert_eq!(r.stderr, "");

    let r = run_trace(dir.path(), &shared_trace("ex-bare-pods.sktrace"), &["--dry-run", "--speed", "max"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("# pod lifecycles (4 owners)\n"), "{}", r.stdout);
    assert!(r.stdout.contains("v1.Pod testing/bare-pod-1781282630: 1 pod, keeps running\n"), "{}", r.stdout);
    insta::assert_snapshot!("dry_run_bare_pods_lifecycles", r.stdout);
    // A trace without lifecycles has no such heading.
    write_trace(dir.path());
    let r = run(skel(dir.path()).args(["run", "trace.json", "--dry-run", "-q"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("# plan for Kubernetes 1.35: 2 events (nothing is sent)\n+00:00:00"), "{}", r.stdout);
}

fn json_of(text: &str) -> Value {
    let parsed = serde_json::from_str(text);
    assert!(parsed.is_ok(), "not one JSON document ({:?}):\n{text}", parsed.as_ref().err());
    parsed.unwrap()
}

#[test]
fn dry_run_json_is_the_whole_plan() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_trace(
        dir.path(),
        &shared_trace("ex-cronjob.sktrace"),
        &["--dry-run", "--format", "json", "--speed", "10", "--virtual-nodes", "2", "--server-version", "1.30"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan = json_of(&r.stdout);
    assert_eq!(plan["skel_run_plan"], 1);
    assert_eq!(plan["kubernetes"], "1.30");
    assert_eq!(plan["speed"], 10.0);
    assert_eq!(plan["trace"]["events"], 3);
    assert_eq!(plan["trace"]["duration_s"], 205);
    assert_eq!(plan["trace"]["first_ts"], 1743286823);
    assert_eq!(plan["namespaces"], json!(["virtual-default"]));
    assert_eq!(plan["virtual_nodes"], json!(["virtual-node-0", "virtual-node-1"]));
    assert_eq!(plan["preflight"]["passed"], true);
    assert_eq!(plan["preflight"]["error"], Value::Null);
    assert_eq!(
        plan["preflight"]["kinds"],
        json!([{"api_version": "batch/v1", "kind": "CronJob", "objects": 2, "served": true}])
    );
    assert_eq!(plan["preflight"]["permissions"]["checked"], false);
    let owners = plan["lifecycles"].as_array().unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["gvk"], "batch/v1.CronJob");
    assert_eq!(owners[0]["owner"], "default/hello-simkube");
    let pods = owners[0]["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 3);
    for (n, pod) in pods.iter().enumerate() {
        assert_eq!(pod["n"], n);
        assert_eq!(pod["lifecycle"], "Finished");
        assert_eq!(pod["recorded_s"], 30);
        assert_eq!(pod["runs_for"], "3s");
    }
    let steps: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!("{} {} {} {} {} own={}", s["phase"], s["offset_s"], s["verb"], s["kind"], s["target"], s["own"])
        })
        .collect();
    assert_eq!(
        steps,
        [
            r#""setup" 0.0 "apply" "Node" "virtual-node-0" own=true"#,
            r#""setup" 0.0 "apply" "Node" "virtual-node-1" own=true"#,
            r#""event" 0.0 "apply" "Namespace" "virtual-default" own=true"#,
            r#""event" 0.0 "apply" "CronJob" "virtual-default/hello-simkube" own=false"#,
            r#""event" 205.0 "delete" "CronJob" "virtual-default/hello-simkube" own=false"#,
            r#""cleanup" 205.0 "delete" "Node" "virtual-node-0" own=true"#,
            r#""cleanup" 205.0 "delete" "Node" "virtual-node-1" own=true"#,
            r#""cleanup" 205.0 "delete" "Namespace" "virtual-default" own=true"#,
        ]
    );
    // The bare pods: Finished ones run for their recorded time, the Running one never ends.
    let r = run_trace(dir.path(), &shared_trace("ex-bare-pods.sktrace"), &["--dry-run", "--format", "json", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan = json_of(&r.stdout);
    let runs: Vec<String> = plan["lifecycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["pods"][0]["lifecycle"], o["pods"][0]["runs_for"]))
        .collect();
    assert_eq!(runs, [r#""Finished" "12s""#, r#""Finished" "30s""#, r#""Finished" "30s""#, r#""Running" null"#]);
    assert_eq!(plan["namespaces"], json!(["virtual-testing"]));
}

#[test]
fn a_refused_dry_run_still_prints_its_json_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_trace(
        dir.path(),
        &examples().join("trace.json"),
        &["--dry-run", "--format", "json", "--server-version", "1.25"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("skel::run::unserved"), "{}", r.stderr);
    let plan = json_of(&r.stdout);
    let preflight = &plan["preflight"];
    assert_eq!(preflight["passed"], false);
    assert_eq!(preflight["error"]["code"], "skel::run::unserved");
    assert!(preflight["error"]["message"].as_str().unwrap().contains("batch/v1beta1 CronJob (5 objects)"));
    let unserved: Vec<&str> = preflight["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["served"] == false)
        .map(|k| k["api_version"].as_str().unwrap())
        .collect();
    assert_eq!(unserved, ["batch/v1beta1", "policy/v1beta1"]);
    // Discovery refused the run: the namespace names were not checked, and nothing is planned.
    assert_eq!(preflight["namespaces"]["checked"], false);
    assert_eq!(plan["steps"], json!([]));
    // 1.24 serves the kinds; `data.pipeline` is not a namespace name.
    let r = run_trace(
        dir.path(),
        &examples().join("trace.json"),
        &["--dry-run", "--format", "json", "--server-version", "1.24"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let preflight = json_of(&r.stdout)["preflight"].clone();
    assert_eq!(preflight["error"]["code"], "skel::run::bad_namespace");
    assert_eq!(preflight["namespaces"]["checked"], true);
    assert_eq!(preflight["namespaces"]["invalid"][0]["namespace"], "virtual-data.pipeline");
    assert_eq!(preflight["namespaces"]["invalid"][0]["suggestion"], "data-pipeline");
}

fn read_report(path: &Path) -> Value {
    json_of(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn a_dry_run_writes_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_trace(
        dir.path(),
        &shared_trace("ex-cronjob.sktrace"),
        &["--dry-run", "-q", "--virtual-nodes", "1", "--report", "out/report.json"],
    );
    // The report's folder must exist: said before anything is planned.
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("report.json"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let r = run_trace(
        dir.path(),
        &shared_trace("ex-cronjob.sktrace"),
        &["--dry-run", "-q", "--virtual-nodes", "1", "--report", "out/report.json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = read_report(&dir.path().join("out/report.json"));
    assert_eq!(report["skel_run_report"], 1);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["cluster"], "the built-in API table");
    assert_eq!(report["kubernetes"], "1.35");
    assert_eq!(report["ending"], "done");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["error"], Value::Null);
    assert_eq!(report["counts"]["events_replayed"], 3);
    assert_eq!(report["counts"]["applied"], 1);
    assert_eq!(report["counts"]["deleted"], 1);
    assert_eq!(report["setup"][0]["target"], "virtual-node-0");
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[1]["applied"], 1);
    assert_eq!(events[1]["objects"][1]["kind"], "CronJob");
    assert_eq!(events[1]["objects"][1]["outcome"], "created");
    assert_eq!(events[2]["offset_s"], 205.0);
    assert_eq!(events[2]["objects"][0]["outcome"], "deleted");
    // A dry run does not wait: nothing was due.
    assert_eq!(events[2]["due_s"], Value::Null);
    assert_eq!(report["drift"]["timed_events"], 0);
    assert_eq!(report["cleanup"]["deleted"], json!(["v1 Node virtual-node-0", "v1 Namespace virtual-default"]));
    assert_eq!(report["stages"]["status"], "dry_run");
    assert_eq!(report["cleanup"]["namespaces"], json!(["virtual-default"]));
    assert_eq!(report["cleanup"]["virtual_nodes"], json!(["virtual-node-0"]));
    // A refused plan writes its report too, with the error and exit code 1.
    let r = run_trace(
        dir.path(),
        &examples().join("trace.json"),
        &["--dry-run", "--server-version", "1.25", "--report", "refused.json"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = read_report(&dir.path().join("refused.json"));
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["error"]["code"], "skel::run::unserved");
    assert_eq!(report["kubernetes"], "1.25");
    assert_eq!(report["ending"], Value::Null);
    assert_eq!(report["events"], json!([]));
}

#[test]
fn a_run_writes_its_report_with_failures_and_timing() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path());
    let (api, kubeconfig) = cluster(dir.path(), "1.25");
    api.fault("PATCH", "/deployments/web", 1, Fault::Status { code: 422, reason: "Invalid", retry_after: None });
    // 60 s of trace at --speed 60: the second event is due a second in.
    let r = run(skel(dir.path())
        .args(["run", "trace.json", "--speed", "60", "--virtual-nodes", "1", "-q", "--report", "report.json"])
        .arg("--kubeconfig")
        .arg(&kubeconfig));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = read_report(&dir.path().join("report.json"));
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["cluster"], api.url());
    assert_eq!(report["kubernetes"], "1.25");
    assert_eq!(report["speed"], 60.0);
    assert_eq!(report["ending"], "done");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["error"]["code"], "skel::run::objects_failed");
    assert_eq!(report["counts"]["failed"], 1);
    assert_eq!(report["counts"]["applied"], 2);
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let failed: Vec<&Value> =
        events[0]["objects"].as_array().unwrap().iter().filter(|o| o["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["target"], "virtual-default/web");
    assert_eq!(failed[0]["error"]["code"], 422);
    assert_eq!(failed[0]["error"]["reason"], "Invalid");
    assert_eq!(failed[0]["error"]["message"], "fake fault: Invalid");
    assert_eq!(events[0]["failed"], 1);
    assert_eq!(report["failures"][0]["kind"], "Deployment");
    // The second event (a Pod applied, the ConfigMap deleted) was due 1 s after the first, and
    // was done then or a little after.
    assert_eq!(events[1]["applied"], 1);
    assert_eq!(events[1]["deleted"], 1);
    let due = events[1]["due_s"].as_f64().unwrap();
    let done = events[1]["done_s"].as_f64().unwrap();
    assert!((0.9..2.0).contains(&due), "{due}");
    assert!(done >= due - 0.01 && done < due + 5.0, "due {due}, done {done}");
    assert!((events[1]["late_s"].as_f64().unwrap() - (done - due)).abs() < 0.002, "{:#}", events[1]);
    assert_eq!(report["drift"]["timed_events"], 2);
    // The clean-up: the node and both namespaces.
    let cleaned: Vec<String> = report["cleanup"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {} {}", o["kind"], o["target"], o["outcome"]))
        .collect();
    assert_eq!(
        cleaned,
        [
            r#""Node" "virtual-node-0" "deleted""#,
            r#""Namespace" "virtual-default" "deleted""#,
            r#""Namespace" "virtual-shop" "deleted""#,
        ]
    );
    assert!(api.objects().is_empty());
}

/// A bare pod whose trace lifecycle is Finished: the report says it was given it and when it
/// completed. The test plays KWOK: it runs the pod, then completes it once it is labelled.
#[test]
fn a_run_report_lists_the_lifecycles_given_and_the_pods_completed() {
    let dir = tempfile::tempdir().unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later", "namespace": "shop"}});
    let trace = json!({
        "version": 2, "config": {"trackedObjects": {}}, "index": {},
        "pod_lifecycles": [[["v1.Pod", "shop/p"], {"1": [{"Finished": [100, 130]}]}]],
        "events": [
            {"ts": 100, "applied_objs": [pod], "deleted_objs": []},
            {"ts": 130, "applied_objs": [cm], "deleted_objs": []}
        ]
    });
    std::fs::write(dir.path().join("trace.json"), trace.to_string()).unwrap();
    let api = FakeApi::start_with("1.25", Options { kwok_stages: true, ..Options::default() });
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skel"));
    // 30 s of trace at --speed 10: 3 s for the test to run and complete the pod.
    cmd.current_dir(dir.path())
        .args(["run", "trace.json", "--speed", "10", "-q", "--install-stages", "--report", "report.json"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let wait = std::time::Duration::from_secs(20);
    let applied = api.wait_until(wait, |o| o.contains_key("/api/v1/namespaces/virtual-shop/pods/p"));
    if !applied {
        let _ = child.kill();
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        assert!(applied, "the pod was not applied: {stderr}");
    }
    api.set_pod_phase("virtual-shop", "p", "Running").unwrap();
    let labelled = api.wait_until(wait, |o| {
        o.get("/api/v1/namespaces/virtual-shop/pods/p")
            .is_some_and(|p| p["metadata"]["labels"]["simkube.io/kwok-stage-complete"] == "true")
    });
    assert!(labelled, "{:?}", api.pod("virtual-shop", "p"));
    api.set_pod_phase("virtual-shop", "p", "Succeeded").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = read_report(&dir.path().join("report.json"));
    let given = report["lifecycles"]["given"].as_array().unwrap();
    assert_eq!(given.len(), 1, "{report:#}");
    assert_eq!(given[0]["pod"], "virtual-shop/p");
    assert_eq!(given[0]["owner_kind"], "v1.Pod");
    assert_eq!(given[0]["owner"], "shop/p");
    assert_eq!(given[0]["n"], 0);
    assert_eq!(given[0]["lifecycle"], "Finished");
    assert_eq!(given[0]["runs_for"], "3s");
    let completed = report["lifecycles"]["completed"].as_array().unwrap();
    assert_eq!(completed.len(), 1, "{report:#}");
    assert_eq!(completed[0]["pod"], "virtual-shop/p");
    assert!(completed[0]["completed_at"].as_f64().unwrap() >= given[0]["started_at"].as_f64().unwrap());
    assert_eq!(report["exit_code"], 0);
    // --install-stages: skel's stages were installed for the run, and the clean-up deleted them.
    let installed = report["stages"]["installed"].as_array().unwrap();
    assert!(installed.contains(&json!("pod-complete")), "{:#}", report["stages"]);
    assert_eq!(&report["cleanup"]["stages_deleted"], &report["stages"]["installed"]);
    assert!(api.objects().keys().all(|k| !k.contains("/stages/")), "{:?}", api.objects().keys());
}

/// Without a kubeconfig (`KUBECONFIG` names a missing file, or none is set and the home folder
/// has none), outside a pod, `skel run` says where it looked and what to do, one line each, and
/// writes nothing; the client's in-cluster attempt is not mentioned.
#[test]
fn without_a_kubeconfig_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let missing = dir.path().join("missing.yaml");
    let cases = [(Some(missing.clone()), missing.clone()), (None, home.join(".kube/config"))];
    for (kubeconfig, looked_at) in cases {
        let mut cmd = skel(dir.path());
        cmd.arg("run").arg(&trace).env("HOME", &home).env_remove("KUBERNETES_SERVICE_HOST");
        match &kubeconfig {
            Some(path) => cmd.env("KUBECONFIG", path),
            None => cmd.env_remove("KUBECONFIG"),
        };
        let r = run(&mut cmd);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.stdout, "");
        // As rendered at 100 columns: a long temp path may wrap the first line (`│` goes on).
        let words = |s: &str| s.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
        let expected = format!(
            "skel::run::kubeconfig × cannot load the kubeconfig: there is none at `{}` help: pass `--kubeconfig \
             FILE`, or make a KWOK cluster: `kwokctl create cluster` (docs/run.md)",
            looked_at.display()
        );
        assert_eq!(words(&r.stderr), words(&expected), "KUBECONFIG {kubeconfig:?}:\n{}", r.stderr);
        if looked_at.as_os_str().len() < 40 {
            assert_eq!(
                r.stderr.lines().filter(|l| !l.is_empty()).count(),
                3,
                "the code, then one line each:\n{}",
                r.stderr
            );
        }
        assert!(!r.stderr.contains("in-cluster") && !r.stderr.contains("environment variable"), "{}", r.stderr);
    }
}
