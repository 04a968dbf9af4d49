//! `skel run` end to end: the real binary against an in-process fake API server (through
//! kube-rs over HTTP), dry runs against the built-in table, and usage errors.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../runner/tests/fake_api/mod.rs"]
mod fake_api;

use std::path::{Path, PathBuf};

use common::{run, skel};
use fake_api::{FakeApi, Fault};
use serde_json::json;

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
    let trace = write_trace(dir.path());
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
    let _ = trace;
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
    let r = run(skel(dir.path()).arg("run").arg(examples().join("trace.json")).args([
        "--dry-run",
        "--server-version",
        "1.25",
    ]));
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !api.objects().contains_key(applied) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(api.objects().contains_key(applied));
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
