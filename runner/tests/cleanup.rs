//! The clean-up against the fake API server: it waits (bounded, telling the observer) until the
//! namespaces it deleted are gone, so that the next run does not meet them `Terminating`, and
//! it deletes the cluster-scoped objects the run created (not those that were there before).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod fake_api;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{lines, quick_retry, Setup};
use fake_api::{FakeApi, Options};
use serde_json::{json, Value};
use skel_runner::{Observer, ReplaySummary, RunOptions};
use skel_trace::Event;

fn options() -> RunOptions {
    RunOptions { virtual_nodes: 1, jobs: 2, cleanup_wait: Duration::from_secs(10), ..common::options("cleanup") }
}

fn event(ts: i64, applied: Vec<Value>, deleted: Vec<Value>) -> Event {
    Event { ts, applied_objs: applied, deleted_objs: deleted }
}

fn config_map(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}})
}

fn cluster_role(name: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
}

fn binding(name: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"}, "subjects": []})
}

fn priority_class(name: &str) -> Value {
    json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": 1000})
}

fn setup(termination: Option<Duration>) -> Setup {
    let api = FakeApi::start_with("1.30", Options { namespace_termination: termination, ..Options::default() });
    common::setup(api, Duration::from_secs(2), quick_retry(3))
}

/// What the observer heard of the clean-up's wait.
#[derive(Default)]
struct Waits(Vec<(Vec<String>, Duration)>);
impl Observer for Waits {
    fn cleaning(&mut self, terminating: &[String], waited: Duration) {
        self.0.push((terminating.to_vec(), waited));
    }
}

fn run(s: &Setup, events: Vec<Event>, opts: &RunOptions, observer: &mut Waits) -> ReplaySummary {
    common::run(&s.connection, &common::survey(&events), events, opts, &AtomicBool::new(false), observer).unwrap()
}

fn trace() -> Vec<Event> {
    vec![event(0, vec![config_map("a", "one"), config_map("b", "two")], vec![])]
}

#[test]
fn the_clean_up_waits_until_its_namespaces_are_gone() {
    let s = setup(Some(Duration::from_millis(700)));
    let mut waits = Waits::default();
    let summary = run(&s, trace(), &options(), &mut waits);
    let c = &summary.cleanup;
    assert!(c.ran && c.finished && c.terminating.is_empty(), "{c:?}");
    assert!(c.waited_secs >= 0.5, "{c:?}");
    assert_eq!(c.deleted, ["v1 Node virtual-node-0", "v1 Namespace virtual-a", "v1 Namespace virtual-b"]);
    // Nothing is left, not even Terminating.
    assert!(s.api.objects().is_empty(), "{:?}", s.api.objects().keys());
    // The observer heard the wait, the namespaces still there each time.
    assert!(!waits.0.is_empty());
    assert_eq!(waits.0[0].0, ["virtual-a", "virtual-b"]);
    assert!(waits.0.windows(2).all(|w| w[0].1 <= w[1].1));
    // The wait asked after each namespace until it was gone (404).
    let l = lines(&s.api);
    let last_delete = l.iter().rposition(|l| l.starts_with("DELETE /api/v1/namespaces/")).unwrap();
    let gets = l[last_delete..].iter().filter(|l| *l == "GET /api/v1/namespaces/virtual-a").count();
    assert!(gets >= 2, "{l:?}");

    // A run right after meets no namespace Terminating: its objects are created.
    let again = run(&s, trace(), &options(), &mut Waits::default());
    assert_eq!(again.progress.failed, 0, "{:?}", again.failures);
    assert_eq!(again.created, 2);
    assert!(again.cleanup.finished);
}

#[test]
fn the_wait_is_bounded_and_says_what_was_left() {
    let s = setup(Some(Duration::from_secs(5)));
    let mut opts = options();
    opts.cleanup_wait = Duration::from_millis(300);
    let started = Instant::now();
    let summary = run(&s, trace(), &opts, &mut Waits::default());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let c = &summary.cleanup;
    assert!(!c.finished, "{c:?}");
    assert_eq!(c.terminating, ["virtual-a", "virtual-b"]);
    assert!(c.waited_secs >= 0.3 && c.waited_secs < 2.0, "{c:?}");
    // The deletes were accepted: they count as deleted, still going.
    assert_eq!(c.deleted.len(), 3);
    let ns = s.api.object("/api/v1/namespaces/virtual-a").unwrap();
    assert_eq!(ns["status"]["phase"], "Terminating");
}

#[test]
fn the_cluster_scoped_objects_the_run_created_are_deleted() {
    let s = setup(None);
    // Was there before: the run updates it, and leaves it.
    s.api.put_object("/apis/scheduling.k8s.io/v1/priorityclasses/high", priority_class("high"));
    let events = vec![
        event(
            0,
            vec![cluster_role("reader"), binding("read-all"), priority_class("high"), config_map("a", "x")],
            vec![],
        ),
        // The trace deletes one itself: the clean-up has nothing more to do with it.
        event(10, vec![priority_class("low")], vec![binding("read-all")]),
    ];
    let summary = run(&s, events.clone(), &options(), &mut Waits::default());
    assert_eq!(summary.progress.failed, 0, "{:?}", summary.failures);
    assert_eq!(
        summary.cleanup.deleted,
        [
            "v1 Node virtual-node-0",
            "scheduling.k8s.io/v1 PriorityClass low",
            "rbac.authorization.k8s.io/v1 ClusterRole reader",
            "v1 Namespace virtual-a"
        ]
    );
    assert_eq!(summary.cleaned_up, 4);
    let left: Vec<String> = s.api.objects().into_keys().collect();
    assert_eq!(left, ["/apis/scheduling.k8s.io/v1/priorityclasses/high"]);
    let deletes: Vec<String> = lines(&s.api).into_iter().filter(|l| l.starts_with("DELETE")).collect();
    assert_eq!(
        deletes.iter().filter(|l| l.contains("clusterrolebindings/read-all")).count(),
        1,
        "the trace's delete only: {deletes:?}"
    );

    // With --keep they stay.
    let s = setup(None);
    let mut opts = options();
    opts.keep = true;
    let summary = run(&s, events, &opts, &mut Waits::default());
    assert!(!summary.cleanup.ran && summary.cleanup.deleted.is_empty());
    assert!(s.api.object("/apis/rbac.authorization.k8s.io/v1/clusterroles/reader").is_some());
    assert!(s.api.object("/apis/scheduling.k8s.io/v1/priorityclasses/low").is_some());
}

#[test]
fn deleting_cluster_scoped_objects_needs_the_verb() {
    let s = setup(None);
    s.api.deny("delete", "clusterroles");
    let survey = common::survey(&[event(0, vec![cluster_role("reader")], vec![])]);
    // The preflight refuses before an event is read: none is sent.
    let err =
        common::run(&s.connection, &survey, Vec::new(), &options(), &AtomicBool::new(false), &mut Waits::default())
            .unwrap_err();
    assert!(err.to_string().contains("delete rbac.authorization.k8s.io/clusterroles"), "{err}");
}
