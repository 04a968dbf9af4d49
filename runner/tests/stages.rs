//! KWOK's pod stages against the fake API server (with its `Stage` resource): the preflight
//! refuses a cluster whose stages would not complete the replay's pods as the trace recorded
//! (KWOK's fast stages), passes one with SimKube's, warns on a cluster without the Stage API;
//! `install_stages` installs skel's stages and the clean-up puts the cluster's back.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod fake_api;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{lines, quick_retry, writes, Setup};
use fake_api::{FakeApi, Options};
use serde_json::{json, Value};
use skel::upgrade::KubeVersion;
use skel_runner::{
    block_on, stages, DryRun, Observer, Outcome, Phase, Quiet, ReplayError, ReplaySummary, RunOptions, StageStatus,
    Step, Survey,
};
use skel_trace::{Event, PodLifecycle, PodLifecycleEntry, PodLifecycles};

const STAGES: &str = "/apis/kwok.x-k8s.io/v1alpha1/stages";

fn options() -> RunOptions {
    common::options("stages")
}

/// A CronJob whose three runs each finished after 30 s, as ex-cronjob recorded.
fn trace() -> (Survey, Vec<Event>) {
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}});
    let events = vec![Event { ts: 0, applied_objs: vec![cron], deleted_objs: vec![] }];
    let mut survey = common::survey(&events);
    let runs = vec![PodLifecycle::Finished(0, 30), PodLifecycle::Finished(60, 90), PodLifecycle::Finished(120, 150)];
    survey.lifecycles = PodLifecycles::new(vec![PodLifecycleEntry {
        gvk: "batch/v1.CronJob".into(),
        ns_name: "default/hello".into(),
        pods: vec![(1, runs)],
    }]);
    (survey, events)
}

fn stage(name: &str, selector: Value, template: &str) -> Value {
    json!({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name},
        "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"}, "selector": {"matchExpressions": selector},
            "next": {"statusTemplate": template}}})
}

/// KWOK's "fast" pod stages, as `kwokctl` and `stage-fast.yaml` install them.
fn kwok_fast() -> Vec<Value> {
    vec![
        stage(
            "pod-ready",
            json!([{"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                   {"key": ".status.podIP", "operator": "DoesNotExist"}]),
            "phase: Running\n",
        ),
        stage(
            "pod-complete",
            json!([{"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                   {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                   {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]}]),
            "containerStatuses: []\nphase: Succeeded\n",
        ),
        json!({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": "pod-delete"},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                "selector": {"matchExpressions": [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}]},
                "next": {"delete": true, "finalizers": {"empty": true}}}}),
    ]
}

/// SimKube's `pod-complete`: only the labelled pods, after the annotation's time.
fn simkube_complete() -> Value {
    json!({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": "pod-complete"},
        "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [
                {"key": ".metadata.labels.\"simkube.io/kwok-stage-complete\"", "operator": "Exists"},
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Running"]}]},
            "delay": {"durationFrom": {"expressionFrom": ".metadata.annotations.\"simkube.io/kwok-stage-complete-time\""}},
            "next": {"patches": [{"subresource": "status", "root": "status",
                "template": "containerStatuses: []\nphase: Succeeded\n"}]}}})
}

fn setup(kwok: bool, stages: Vec<Value>) -> Setup {
    let api = FakeApi::start_with("1.30", Options { kwok_stages: kwok, ..Options::default() });
    for s in stages {
        api.put_object(&format!("{STAGES}/{}", stages::name(&s)), s);
    }
    common::setup(api, Duration::from_secs(2), quick_retry(3))
}

fn run(s: &Setup, opts: &RunOptions) -> Result<ReplaySummary, ReplayError> {
    let (survey, events) = trace();
    common::run(&s.connection, &survey, events, opts, &AtomicBool::new(false), &mut Quiet)
}

/// The stages stored, by name.
fn stored(api: &FakeApi) -> Vec<(String, Value)> {
    api.objects()
        .into_iter()
        .filter(|(path, _)| path.starts_with(STAGES))
        .map(|(path, obj)| (path.rsplit('/').next().unwrap_or_default().to_string(), obj))
        .collect()
}

/// A stage without what the server adds, to compare with what was put there.
fn bare(stage: &Value) -> Value {
    let mut s = stage.clone();
    for key in ["uid", "resourceVersion", "creationTimestamp"] {
        s["metadata"].as_object_mut().unwrap().remove(key);
    }
    s
}

/// The stages stored are `found`, as they were put there.
fn assert_stored_as(api: &FakeApi, found: &[Value]) {
    let now: Vec<Value> = stored(api).iter().map(|(_, v)| bare(v)).collect();
    let mut before = found.iter().map(bare).collect::<Vec<_>>();
    before.sort_by_key(|v| stages::name(v).to_string());
    assert_eq!(now, before);
}

fn render(err: &ReplayError, url: &str) -> String {
    common::render(err).replace(url, "http://FAKE")
}

#[test]
fn kwoks_fast_stages_are_refused_before_anything_is_written() {
    let s = setup(true, kwok_fast());
    let err = run(&s, &options()).unwrap_err();
    let ReplayError::Stages(unfit) = &err else { panic!("{err:?}") };
    assert!(unfit.no_completer && !unfit.installing);
    assert_eq!(unfit.finished, 3);
    assert_eq!(unfit.strays.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["pod-complete"]);
    insta::assert_snapshot!(render(&err, &s.api.url()));
    assert!(writes(&s.api).is_empty(), "{:?}", lines(&s.api));
    assert!(lines(&s.api).contains(&format!("GET {STAGES}")));
}

#[test]
fn a_stray_of_another_name_is_refused_even_when_installing() {
    let mut fast = kwok_fast();
    fast[1]["metadata"]["name"] = json!("job-complete");
    let s = setup(true, fast);
    let mut opts = options();
    opts.install_stages = true;
    let err = run(&s, &opts).unwrap_err();
    let ReplayError::Stages(unfit) = &err else { panic!("{err:?}") };
    // skel's pod-complete would be there; the other one would still complete Job pods.
    assert!(!unfit.no_completer && unfit.installing);
    insta::assert_snapshot!(render(&err, &s.api.url()));
    assert!(writes(&s.api).is_empty(), "{:?}", lines(&s.api));
}

#[test]
fn simkubes_stages_pass() {
    let mut found = kwok_fast();
    found[1] = simkube_complete();
    let s = setup(true, found.clone());
    let summary = run(&s, &options()).unwrap();
    assert_eq!(summary.stages.status, StageStatus::Ready);
    let check = summary.stages.found.clone().unwrap();
    assert_eq!(check.completing, ["pod-complete"]);
    assert_eq!(check.stages, ["pod-complete", "pod-delete", "pod-ready"]);
    assert!(check.strays.is_empty() && summary.stages.warning.is_none());
    // Nothing was done to the stages.
    assert!(!writes(&s.api).iter().any(|l| l.contains("/stages")), "{:?}", writes(&s.api));
    assert_stored_as(&s.api, &found);
}

#[test]
fn install_stages_installs_skels_and_the_clean_up_puts_the_cluster_s_back() {
    let mut found = kwok_fast();
    // A stage of the cluster that skel has nothing to do with stays as it is.
    found.push(json!({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": "node-heartbeat"},
        "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Node"}, "next": {"statusTemplate": "conditions: []"}}}));
    let s = setup(true, found.clone());
    let mut opts = options();
    opts.install_stages = true;
    let summary = run(&s, &opts).unwrap();
    assert_eq!(summary.progress.failed, 0, "{:?}", summary.failures);
    assert_eq!(summary.stages.status, StageStatus::Ready);
    assert_eq!(summary.stages.installed, ["pod-create", "pod-ready", "pod-complete", "pod-delete"]);
    assert_eq!(summary.stages.replaced, ["pod-ready", "pod-complete", "pod-delete"]);
    // What the preflight found is the cluster's, before the install.
    assert_eq!(summary.stages.found.as_ref().unwrap().strays[0].name, "pod-complete");
    assert_eq!(summary.cleanup.stages_restored, ["pod-ready", "pod-complete", "pod-delete"]);
    assert_eq!(summary.cleanup.stages_deleted, ["pod-create"]);

    // The installs come first (server-side applies by skel), the clean-up's last.
    let w = writes(&s.api);
    let stage_writes: Vec<&String> = w.iter().filter(|l| l.contains("/stages/")).collect();
    let expected: Vec<String> = [
        "PATCH pod-create",
        "PATCH pod-ready",
        "PATCH pod-complete",
        "PATCH pod-delete",
        "DELETE pod-create",
        "PATCH pod-ready",
        "PATCH pod-complete",
        "PATCH pod-delete",
    ]
    .iter()
    .map(|l| l.replace(' ', &format!(" {STAGES}/")))
    .collect();
    assert_eq!(stage_writes, expected.iter().collect::<Vec<_>>());
    assert!(w[..4].iter().all(|l| l.contains("/stages/")), "{w:?}");
    assert!(w[w.len() - 4..].iter().all(|l| l.contains("/stages/")), "{w:?}");
    for r in s.api.requests().iter().filter(|r| r.method == "PATCH" && r.path.contains("/stages/")) {
        assert_eq!(r.header("content-type"), Some("application/apply-patch+yaml"));
        assert!(r.path.contains("fieldManager=skel") && r.path.contains("force=true"), "{}", r.path);
    }
    // What the install sent is skel's stages.
    let sent: Vec<Value> = s
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/stages/"))
        .take(4)
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(sent, stages::ours());

    // The cluster's stages are back as they were.
    assert_stored_as(&s.api, &found);
}

#[test]
fn with_keep_skels_stages_stay() {
    let s = setup(true, kwok_fast());
    let mut opts = options();
    opts.install_stages = true;
    opts.keep = true;
    let summary = run(&s, &opts).unwrap();
    assert!(!summary.cleanup.ran);
    let now: Vec<(String, Value)> = stored(&s.api);
    assert_eq!(
        now.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["pod-complete", "pod-create", "pod-delete", "pod-ready"]
    );
    for (name, stage) in now {
        let ours = stages::ours().into_iter().find(|o| stages::name(o) == name).unwrap();
        assert_eq!(stage["spec"], ours["spec"], "{name}");
        assert_eq!(stage["metadata"]["labels"]["app.kubernetes.io/managed-by"], "skel");
    }
    // The stages now complete the replay's pods: a second run passes the preflight alone.
    let again = run(&s, &options()).unwrap();
    assert_eq!(again.stages.found.unwrap().completing, ["pod-complete"]);
}

#[test]
fn a_cluster_without_the_stage_api_is_a_warning_and_cannot_be_installed_to() {
    let s = setup(false, Vec::new());
    let summary = run(&s, &options()).unwrap();
    assert_eq!(summary.stages.status, StageStatus::NoStageApi);
    let warning = summary.stages.warning.unwrap();
    assert!(warning.contains("does not serve KWOK's Stage API") && warning.contains("3 recorded pod lifecycles"));
    assert!(!lines(&s.api).iter().any(|l| l.contains("kwok.x-k8s.io/v1alpha1/")), "no list of what is not there");

    let s = setup(false, Vec::new());
    let mut opts = options();
    opts.install_stages = true;
    let err = run(&s, &opts).unwrap_err();
    assert!(matches!(err, ReplayError::NoStageApi(_)), "{err:?}");
    insta::assert_snapshot!(render(&err, &s.api.url()));
    assert!(writes(&s.api).is_empty());
}

#[test]
fn the_permission_check_asks_for_the_stage_verbs() {
    let s = setup(true, vec![simkube_complete()]);
    s.api.deny("list", "stages");
    s.api.deny("delete", "stages");
    let mut opts = options();
    opts.install_stages = true;
    let err = run(&s, &opts).unwrap_err();
    let ReplayError::Forbidden(f) = &err else { panic!("{err:?}") };
    let denied: Vec<String> = f.denied.iter().map(|a| format!("{} {}", a.verb, a.resource.rbac_name())).collect();
    assert_eq!(denied, ["list kwok.x-k8s.io/stages", "delete kwok.x-k8s.io/stages"]);
    assert!(writes(&s.api).is_empty());
}

#[test]
fn a_trace_without_lifecycles_does_not_look_at_the_stages() {
    let s = setup(true, kwok_fast());
    let (_, events) = trace();
    let survey = common::survey(&events);
    let summary = common::run(&s.connection, &survey, events, &options(), &AtomicBool::new(false), &mut Quiet).unwrap();
    assert_eq!(summary.stages.status, StageStatus::NotChecked);
    assert!(!lines(&s.api).iter().any(|l| l.contains("kwok.x-k8s.io")), "{:?}", lines(&s.api));
}

/// The steps a run shows.
#[derive(Default)]
struct Steps(Vec<String>);
impl Observer for Steps {
    fn step(&mut self, step: &Step) {
        let phase = match step.phase {
            Phase::Setup => "setup",
            Phase::Cleanup => "cleanup",
            _ => "event",
        };
        let what = match &step.outcome {
            Outcome::Applied(_) => "apply",
            Outcome::Deleted(_) => "delete",
            Outcome::Failed(_) => "failed",
        };
        self.0.push(format!("{phase} {what} {} {}", step.gvk, step.target));
    }
}

#[test]
fn a_dry_run_says_what_it_would_check_and_install() {
    let (survey, events) = trace();
    let mut opts = options();
    opts.install_stages = true;
    let mut steps = Steps::default();
    let summary = block_on(async {
        let cluster = DryRun::new(KubeVersion { major: 1, minor: 30 });
        let summary = common::replay(&cluster, &survey, events, &opts, &AtomicBool::new(false), &mut steps).await;
        // The Stage kind is not taken for a custom resource of the trace.
        assert!(cluster.assumed().is_empty(), "{:?}", cluster.assumed());
        summary
    })
    .unwrap()
    .unwrap();
    assert_eq!(summary.stages.status, StageStatus::DryRun);
    assert_eq!(summary.stages.installed.len(), 4);
    let stage_steps: Vec<&String> = steps.0.iter().filter(|l| l.contains("Stage")).collect();
    assert_eq!(stage_steps.len(), 8, "{stage_steps:?}");
    assert_eq!(stage_steps[0], "setup apply kwok.x-k8s.io/v1alpha1 Stage pod-create");
    assert_eq!(stage_steps[7], "cleanup delete kwok.x-k8s.io/v1alpha1 Stage pod-delete");
    // Without the install, a dry run only says it would look.
    let (survey, events) = trace();
    let summary = block_on(async {
        let cluster = DryRun::new(KubeVersion { major: 1, minor: 30 });
        common::replay(&cluster, &survey, events, &options(), &AtomicBool::new(false), &mut Quiet).await
    })
    .unwrap()
    .unwrap();
    assert_eq!((summary.stages.status, summary.stages.installed.len()), (StageStatus::DryRun, 0));
}
