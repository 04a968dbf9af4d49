//! The replay's pods get the lifecycles SimKube recorded (`pod_lifecycles`), end to end against
//! the fake API server through the real client: the SimKube example traces `ex-cronjob` (three
//! runs of a CronJob that each finished after 30 s) and `ex-bare-pods` (bare pods, three
//! finished and one still running). The test plays the cluster's controllers: it makes the pods
//! a CronJob's Jobs would make, from the template the replay applied, and moves pods to Running.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod fake_api;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{quick_retry, Setup};
use fake_api::{FakeApi, Options};
use serde_json::Value;
use skel_runner::lifecycle::{STAGE_COMPLETE_LABEL, STAGE_COMPLETE_TIME_ANNOTATION};
use skel_runner::plan::{PodTemplates, OWNER_KIND_ANNOTATION, OWNER_NAME_ANNOTATION, RUN_LABEL};
use skel_runner::{Quiet, ReplaySummary, RunOptions, Speed, Survey};
use skel_trace::{Event, Format};

/// A SimKube trace of `../shared/traces`, read whole (its survey and its events), or `None`
/// when that folder is not there (a failure under CI, which reads it).
fn shared_trace(name: &str) -> Option<(Survey, Vec<Event>)> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces").join(name);
    if !path.exists() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: CI runs these tests on it (.ci/run)", path.display());
        // Past the test harness's capture, so that it shows.
        let _ = writeln!(std::io::stderr(), "SKIPPED: {} is not here", path.display());
        return None;
    }
    let bytes = std::fs::read(&path).unwrap();
    let mut survey = Survey::default();
    skel_trace::read_trace(bytes.as_slice(), Format::Msgpack, &mut survey).unwrap();
    let mut events = Vec::new();
    skel_trace::read_events(bytes.as_slice(), Format::Msgpack, |_, e| {
        events.push(e);
        Ok::<_, std::convert::Infallible>(())
    })
    .unwrap();
    Some((survey, events))
}

fn options(survey: &Survey, speed: f64) -> RunOptions {
    RunOptions {
        speed: Speed::Times(speed),
        jobs: 4,
        templates: PodTemplates::new(survey.config.as_ref()),
        // The fake server serves KWOK's Stage API with no stage: skel's are installed.
        install_stages: true,
        cleanup_wait: skel_runner::CLEANUP_WAIT,
        ..common::options("life")
    }
}

/// Replays `events` on a thread; returns the server and the replay's handle.
fn start(survey: Survey, events: Vec<Event>, opts: RunOptions) -> (FakeApi, std::thread::JoinHandle<ReplaySummary>) {
    let api = FakeApi::start_with("1.30", Options { kwok_stages: true, ..Options::default() });
    let Setup { api, dir, connection } = common::setup(api, Duration::from_secs(5), quick_retry(3));
    let handle = std::thread::spawn(move || {
        let _dir = dir;
        common::run(&connection, &survey, events, &opts, &AtomicBool::new(false), &mut Quiet).unwrap()
    });
    (api, handle)
}

fn text<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Waits until the pod carries the label a lifecycle sets; its completion-time annotation.
fn completion_time(api: &FakeApi, ns: &str, name: &str) -> Option<String> {
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let labelled = |objects: &std::collections::BTreeMap<String, Value>| {
        objects
            .get(&path)
            .is_some_and(|p| p.pointer(&format!("/metadata/labels/{}", esc(STAGE_COMPLETE_LABEL))).is_some())
    };
    if !api.wait_until(Duration::from_secs(10), labelled) {
        return None;
    }
    let pod = api.pod(ns, name)?;
    text(&pod, &format!("/metadata/annotations/{}", esc(STAGE_COMPLETE_TIME_ANNOTATION))).map(str::to_string)
}

/// A JSON pointer's escape of a key (`/` is `~1`).
fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[test]
fn a_cronjob_s_pods_complete_after_their_recorded_run_time_at_the_replay_s_speed() {
    let Some((survey, events)) = shared_trace("ex-cronjob.sktrace") else { return };
    // 205 s of trace at 50x: about 4 s; each run's 30 s become 0.6 s.
    let opts = options(&survey, 50.0);
    let (api, replay) = start(survey, events, opts);
    let cronjob = "/apis/batch/v1/namespaces/virtual-default/cronjobs/hello-simkube";
    assert!(api.wait_until(Duration::from_secs(10), |o| o.contains_key(cronjob)), "the CronJob was not applied");
    let template = api.object(cronjob).unwrap().pointer("/spec/jobTemplate/spec/template/metadata").cloned().unwrap();
    let labels: Vec<(&str, &str)> =
        template["labels"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    let annotations: Vec<(&str, &str)> =
        template["annotations"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    assert!(labels.contains(&(RUN_LABEL, "life")), "{labels:?}");
    assert!(annotations.contains(&(OWNER_KIND_ANNOTATION, "batch/v1.CronJob")), "{annotations:?}");
    assert!(annotations.contains(&(OWNER_NAME_ANNOTATION, "default/hello-simkube")), "{annotations:?}");
    // The Jobs' pods, as the controllers would make them from the template; Pending first.
    for run in 0..3 {
        let name = format!("hello-simkube-{run}");
        api.create_pod("virtual-default", &name, &labels, &annotations, Value::Null).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(api.pod("virtual-default", &name).unwrap()["metadata"]["labels"].get(STAGE_COMPLETE_LABEL), None);
        api.set_pod_phase("virtual-default", &name, "Running").unwrap();
        assert_eq!(completion_time(&api, "virtual-default", &name).as_deref(), Some("0.6s"), "{name}");
    }
    let summary = replay.join().unwrap();
    let given: Vec<(usize, &str, Option<&str>)> =
        summary.lifecycles.given.iter().map(|g| (g.n, g.lifecycle.as_str(), g.runs_for.as_deref())).collect();
    assert_eq!(given, [(0, "Finished", Some("0.6s")), (1, "Finished", Some("0.6s")), (2, "Finished", Some("0.6s"))]);
    assert!(summary.lifecycles.given.iter().all(|g| g.owner == "default/hello-simkube"));
    assert_eq!(summary.lifecycles.without, 0);
}

#[test]
fn bare_pods_complete_as_recorded_and_a_running_one_never_does() {
    let Some((mut survey, mut events)) = shared_trace("ex-bare-pods.sktrace") else { return };
    // The trace ends as its last pod starts: one more event, 100 s later, keeps the replay (and
    // its watch) going while the test makes that pod run.
    let last = events.last().unwrap().ts;
    let later = Event {
        ts: last + 100,
        applied_objs: vec![serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "later", "namespace": "testing"}})],
        deleted_objs: vec![],
    };
    survey.add(&later);
    events.push(later);
    // 262 s of trace at 100x.
    let opts = options(&survey, 100.0);
    let (api, replay) = start(survey, events, opts);
    // Each pod is one of the trace's objects: make it run once the replay applied it.
    let expected = [
        ("bare-pod-1781282449", Some("0.12s")),
        ("bare-pod-1781282509", Some("0.3s")),
        ("bare-pod-1781282570", Some("0.3s")),
        ("bare-pod-1781282630", None),
    ];
    for (name, runs_for) in expected {
        let path = format!("/api/v1/namespaces/virtual-testing/pods/{name}");
        assert!(api.wait_until(Duration::from_secs(10), |o| o.contains_key(&path)), "{name} was not applied");
        api.set_pod_phase("virtual-testing", name, "Running").unwrap();
        // A running lifecycle is never labelled to complete (checked below).
        if let Some(t) = runs_for {
            assert_eq!(completion_time(&api, "virtual-testing", name).as_deref(), Some(t), "{name}");
        }
    }
    let summary = replay.join().unwrap();
    // Only the finished ones were merge-patched.
    let patched: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.header("content-type").is_some_and(|c| c.contains("merge-patch")))
        .map(|r| r.path.split('?').next().and_then(|p| p.rsplit('/').next()).unwrap_or_default().to_string())
        .collect();
    assert_eq!(patched, ["bare-pod-1781282449", "bare-pod-1781282509", "bare-pod-1781282570"]);
    let given: Vec<(&str, &str)> =
        summary.lifecycles.given.iter().map(|g| (g.owner.as_str(), g.lifecycle.as_str())).collect();
    assert_eq!(
        given,
        [
            ("testing/bare-pod-1781282449", "Finished"),
            ("testing/bare-pod-1781282509", "Finished"),
            ("testing/bare-pod-1781282570", "Finished"),
            ("testing/bare-pod-1781282630", "Running"),
        ]
    );
    assert!(summary.lifecycles.failures.is_empty(), "{:?}", summary.lifecycles.failures);
}
