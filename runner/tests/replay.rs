//! The runner against an in-process fake API server, through the real client (kube-rs over
//! HTTP): exact request sequences, the objects stored, preflight refusals, retries and faults.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod fake_api;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{lines, quick_retry, writes, Setup};
use fake_api::{FakeApi, Fault};
use serde_json::{json, Value};
use skel_runner::{Ending, Observer, Progress, Quiet, ReplayError, ReplaySummary, RunOptions, Speed};
use skel_trace::Event;

fn event(ts: i64, applied: Vec<Value>, deleted: Vec<Value>) -> Event {
    Event { ts, applied_objs: applied, deleted_objs: deleted }
}

fn deployment(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": "trace-uid", "resourceVersion": "9"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"readyReplicas": 2}})
}

fn config_map(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}})
}

fn options() -> RunOptions {
    common::options("test-run")
}

fn setup(version: &str) -> Setup {
    common::setup(FakeApi::start(version), Duration::from_millis(400), quick_retry(4))
}

fn run_with(s: &Setup, events: Vec<Event>, opts: &RunOptions, stop: &AtomicBool) -> Result<ReplaySummary, ReplayError> {
    common::run(&s.connection, &common::survey(&events), events, opts, stop, &mut Quiet)
}

fn run(s: &Setup, events: Vec<Event>, opts: &RunOptions) -> Result<ReplaySummary, ReplayError> {
    run_with(s, events, opts, &AtomicBool::new(false))
}

fn trace() -> Vec<Event> {
    vec![
        event(100, vec![deployment("shop", "web"), config_map("default", "settings")], vec![]),
        event(
            160,
            vec![json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
                "spec": {"nodeName": "ip-10-1-2-3", "containers": []}})],
            vec![config_map("default", "settings")],
        ),
    ]
}

#[test]
fn replays_in_order_then_cleans_up() {
    let s = setup("1.25");
    let mut opts = options();
    opts.virtual_nodes = 2;
    let summary = run(&s, trace(), &opts).unwrap();
    assert_eq!(summary.ending, Ending::Done);
    assert_eq!((summary.progress.applied, summary.progress.deleted, summary.progress.failed), (3, 1, 0));
    insta::assert_snapshot!(lines(&s.api).join("\n"));
    let c = &summary.cleanup;
    assert_eq!(
        c.deleted,
        [
            "v1 Node virtual-node-0",
            "v1 Node virtual-node-1",
            "v1 Namespace virtual-shop",
            "v1 Namespace virtual-default"
        ]
    );
    assert!(c.ran && c.finished && c.terminating.is_empty() && c.failed.is_empty(), "{c:?}");
    assert_eq!(summary.cleaned_up, 4);
    // No lifecycles in the trace: the stages were not looked at.
    assert_eq!(summary.stages, skel_runner::StageReport::default());
    // Everything the run made is gone.
    assert_eq!(s.api.objects().keys().collect::<Vec<_>>(), Vec::<&String>::new());
    // Every apply is a server-side apply by `skel`, forced.
    for r in s.api.requests().iter().filter(|r| r.method == "PATCH") {
        assert_eq!(r.header("content-type"), Some("application/apply-patch+yaml"));
        assert!(r.path.contains("fieldManager=skel") && r.path.contains("force=true"), "{}", r.path);
    }
}

#[test]
fn the_clean_up_leaves_what_was_there_before() {
    let s = setup("1.25");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "virtual-shop"}});
    s.api.put_object("/api/v1/namespaces/virtual-shop", ns);
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "virtual-node-0"}});
    s.api.put_object("/api/v1/nodes/virtual-node-0", node);
    let mut opts = options();
    opts.virtual_nodes = 2;
    let summary = run(&s, trace(), &opts).unwrap();
    assert_eq!((summary.namespaces.clone(), summary.nodes), (vec!["virtual-default".to_string()], 1));
    let left: Vec<String> = s.api.objects().keys().cloned().collect();
    // The objects in the namespace that was there are the trace's: the run leaves them too.
    assert_eq!(
        left,
        [
            "/api/v1/namespaces/virtual-shop",
            "/api/v1/namespaces/virtual-shop/pods/p",
            "/api/v1/nodes/virtual-node-0",
            "/apis/apps/v1/namespaces/virtual-shop/deployments/web"
        ]
    );
}

#[test]
fn kept_objects_are_stripped_and_sent_to_virtual_nodes() {
    let s = setup("1.25");
    let mut opts = options();
    opts.keep = true;
    opts.virtual_nodes = 1;
    let summary = run(&s, trace(), &opts).unwrap();
    assert_eq!(summary.namespaces, vec!["virtual-shop", "virtual-default"]);
    assert_eq!(summary.cleaned_up, 0);
    assert_eq!(summary.cleanup, skel_runner::CleanupReport::default(), "--keep: no clean-up");
    let objects = s.api.objects();
    insta::assert_snapshot!(serde_json::to_string_pretty(&Value::Object(objects.into_iter().collect())).unwrap());
}

#[test]
fn preflight_refuses_unserved_kinds_before_writing() {
    let s = setup("1.25");
    let cron = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"}});
    let psp = json!({"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "p"}});
    let events = vec![event(0, vec![cron.clone(), deployment("a", "d"), psp], vec![]), event(5, vec![cron], vec![])];
    let err = run(&s, events, &options()).unwrap_err();
    let ReplayError::Unserved(unserved) = &err else { panic!("{err:?}") };
    assert_eq!(unserved.missing.len(), 2);
    insta::assert_snapshot!(err.to_string().replace(&s.api.url(), "http://FAKE"));
    assert!(writes(&s.api).is_empty(), "{:?}", lines(&s.api));
    assert!(!lines(&s.api).iter().any(|l| l.starts_with("POST")), "no access review before discovery passes");

    // The same trace is served by 1.21.
    let old = setup("1.21");
    let cron = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"}});
    let summary = run(&old, vec![event(0, vec![cron], vec![])], &options()).unwrap();
    assert_eq!(summary.progress.failed, 0);
}

#[test]
fn preflight_refuses_namespace_names_the_server_would_refuse() {
    let s = setup("1.25");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data.pipeline"}});
    let events = vec![event(0, vec![ns, config_map("data.pipeline", "a"), config_map("ok", "b")], vec![])];
    let mut opts = options();
    opts.naming.namespace_prefix = format!("{}-", "p".repeat(56));
    let err = run(&s, events, &opts).unwrap_err();
    assert!(matches!(err, ReplayError::BadNamespaces(_)), "{err:?}");
    insta::assert_snapshot!(err.to_string());
    assert!(writes(&s.api).is_empty());
}

#[test]
fn preflight_refuses_missing_permissions() {
    let s = setup("1.25");
    s.api.deny("patch", "deployments");
    s.api.deny("delete", "namespaces");
    let err = run(&s, trace(), &options()).unwrap_err();
    assert!(matches!(err, ReplayError::Forbidden(_)), "{err:?}");
    insta::assert_snapshot!(err.to_string().replace(&s.api.url(), "http://FAKE"));
    assert!(writes(&s.api).is_empty());
}

#[test]
fn an_unreachable_cluster_is_refused_at_once() {
    let mut s = setup("1.25");
    s.connection.context = Some("down".into());
    let err = run(&s, trace(), &options()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("cannot reach the cluster at http://127.0.0.1:1"), "{text}");
    assert!(s.api.request_lines().is_empty());
}

#[test]
fn transient_failures_are_retried() {
    let s = setup("1.25");
    let web = "/deployments/web";
    s.api.fault("PATCH", web, 1, Fault::Status { code: 409, reason: "Conflict", retry_after: None });
    s.api.fault("PATCH", web, 1, Fault::Status { code: 429, reason: "TooManyRequests", retry_after: Some(0) });
    s.api.fault("PATCH", web, 1, Fault::Status { code: 500, reason: "InternalError", retry_after: None });
    s.api.fault("PATCH", "/configmaps/settings", 1, Fault::Drop);
    s.api.fault("PATCH", "/pods/p", 1, Fault::Delay(Duration::from_millis(1500)));
    s.api.fault(
        "DELETE",
        "/configmaps/settings",
        1,
        Fault::Status { code: 503, reason: "ServiceUnavailable", retry_after: None },
    );
    let summary = run(&s, trace(), &options()).unwrap();
    assert_eq!(summary.progress.failed, 0, "{:?}", summary.failures);
    insta::assert_snapshot!(writes(&s.api).join("\n"));
}

#[test]
fn retry_after_is_honoured() {
    let s = setup("1.25");
    s.api.fault(
        "PATCH",
        "/deployments/web",
        1,
        Fault::Status { code: 429, reason: "TooManyRequests", retry_after: Some(1) },
    );
    let started = std::time::Instant::now();
    let summary = run(&s, trace(), &options()).unwrap();
    assert_eq!(summary.progress.failed, 0);
    // A lower bound only: the wait is the server's, not the backoff's 5 ms.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
fn lasting_failures_are_counted_not_fatal() {
    let s = setup("1.25");
    s.api.fault(
        "PATCH",
        "/deployments/web",
        100,
        Fault::Status { code: 500, reason: "InternalError", retry_after: None },
    );
    s.api.fault("PATCH", "/configmaps/settings", 1, Fault::Status { code: 422, reason: "Invalid", retry_after: None });
    let summary = run(&s, trace(), &options()).unwrap();
    assert_eq!(summary.ending, Ending::Done);
    assert_eq!(summary.progress.failed, 2);
    let f = &summary.failures;
    assert_eq!((f[0].target.as_str(), f[0].failure.code, f[0].failure.attempts), ("virtual-shop/web", Some(500), 4));
    assert_eq!(
        (f[1].target.as_str(), f[1].failure.reason.as_str(), f[1].failure.attempts),
        ("virtual-default/settings", "Invalid", 1)
    );
    // The second event still ran: the pod was applied.
    assert!(lines(&s.api).iter().any(|l| l == "PATCH /api/v1/namespaces/virtual-shop/pods/p"));

    let s = setup("1.25");
    s.api.fault(
        "PATCH",
        "/deployments/web",
        100,
        Fault::Status { code: 500, reason: "InternalError", retry_after: None },
    );
    let mut opts = options();
    opts.fail_fast = true;
    let summary = run(&s, trace(), &opts).unwrap();
    assert_eq!(summary.ending, Ending::FailFast);
    assert!(!lines(&s.api).iter().any(|l| l.contains("/pods/p")), "the second event must not run");
    assert!(s.api.objects().is_empty(), "the clean-up still ran");
}

#[test]
fn from_applies_the_earlier_state_at_once_and_until_stops() {
    let s = setup("1.25");
    let events = vec![
        event(0, vec![config_map("a", "one"), config_map("a", "two")], vec![]),
        event(10, vec![config_map("a", "three")], vec![config_map("a", "two")]),
        event(20, vec![config_map("a", "four")], vec![]),
        event(30, vec![config_map("a", "five")], vec![]),
    ];
    let mut opts = options();
    opts.from = Some(15.0);
    opts.until = Some(25.0);
    opts.keep = true;
    let summary = run(&s, events, &opts).unwrap();
    assert_eq!((summary.ending, summary.caught_up, summary.progress.event), (Ending::Until, 2, 3));
    let names: Vec<String> = s.api.objects().keys().filter(|k| k.contains("configmaps")).cloned().collect();
    insta::assert_snapshot!(format!("{}\n---\n{}", writes(&s.api).join("\n"), names.join("\n")));
}

#[test]
fn from_after_everything_was_deleted_still_counts_the_events() {
    let s = setup("1.25");
    let events = vec![
        event(0, vec![config_map("a", "one")], vec![]),
        event(10, vec![], vec![config_map("a", "one")]),
        event(20, vec![config_map("a", "two")], vec![]),
    ];
    let mut opts = options();
    opts.from = Some(15.0);
    opts.keep = true;
    let summary = run(&s, events, &opts).unwrap();
    assert_eq!((summary.ending, summary.caught_up, summary.progress.event), (Ending::Done, 2, 3));
    assert_eq!(
        writes(&s.api),
        ["PATCH /api/v1/namespaces/virtual-a", "PATCH /api/v1/namespaces/virtual-a/configmaps/two"]
    );
}

#[test]
fn stop_ends_a_long_wait_and_cleans_up() {
    let s = setup("1.25");
    let mut opts = options();
    opts.speed = Speed::Times(1.0);
    let events =
        vec![event(0, vec![config_map("a", "one")], vec![]), event(3600, vec![config_map("a", "two")], vec![])];
    // Stopped once the first event is done and the replay waits an hour for the next.
    struct StopWhenWaiting<'a> {
        stop: &'a AtomicBool,
        events_done: usize,
    }
    impl Observer for StopWhenWaiting<'_> {
        fn progress(&mut self, progress: &Progress) {
            self.events_done = progress.event;
        }
        fn waiting(&mut self, _clock: f64) {
            if self.events_done >= 1 {
                self.stop.store(true, Ordering::SeqCst);
            }
        }
    }
    let stop = AtomicBool::new(false);
    let mut observer = StopWhenWaiting { stop: &stop, events_done: 0 };
    let summary = common::run(&s.connection, &common::survey(&events), events, &opts, &stop, &mut observer).unwrap();
    assert_eq!(summary.ending, Ending::Interrupted);
    assert_eq!(summary.progress.event, 1);
    assert!(s.api.objects().is_empty(), "the clean-up ran");
}

#[test]
fn concurrent_requests_within_an_event() {
    let s = setup("1.25");
    let objs: Vec<Value> = (0..12).map(|i| config_map("a", &format!("cm-{i:02}"))).collect();
    let mut opts = options();
    opts.jobs = 4;
    opts.keep = true;
    let summary = run(&s, vec![event(0, objs, vec![])], &opts).unwrap();
    assert_eq!(summary.progress.applied, 12);
    let stored = s.api.objects().keys().filter(|k| k.contains("/configmaps/")).count();
    assert_eq!(stored, 12);
}

#[test]
fn bad_objects_fail_alone() {
    let s = setup("1.25");
    let events = vec![event(
        0,
        vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}), config_map("a", "ok")],
        vec![],
    )];
    let mut opts = options();
    opts.keep = true;
    let summary = run(&s, events, &opts).unwrap();
    assert_eq!(summary.progress.failed, 1);
    assert_eq!(summary.failures[0].failure.message, "the object has no `metadata.name`");
    assert!(s.api.objects().contains_key("/api/v1/namespaces/virtual-a/configmaps/ok"));
}
