//! KWOK's pod stages: what a cluster needs so that the replay's pods live as the trace recorded.
//!
//! KWOK moves a pod through its life with `Stage` objects (`kwok.x-k8s.io/v1alpha1`, cluster
//! scoped). KWOK's default "fast" stages make every pod run at once and complete every Job's
//! pod as soon as it runs (`pod-complete`); SimKube replaces them with stages of the same names
//! whose `pod-complete` completes only the pods labelled `simkube.io/kwok-stage-complete`, after
//! the time in their `simkube.io/kwok-stage-complete-time` annotation (see [`crate::lifecycle`]).
//!
//! This module holds skel's own stages of those names ([`ours`], installed by
//! `--install-stages`) and the preflight's look at a cluster's stages ([`check`]): is there a
//! stage that completes the pods the replay labels, and one that completes pods whatever their
//! lifecycle?

use serde::Serialize;
use serde_json::Value;

use crate::api::{Gvk, Resource};
use crate::lifecycle::STAGE_COMPLETE_LABEL;

/// The `Stage` kind's API version.
pub const API_VERSION: &str = "kwok.x-k8s.io/v1alpha1";

/// skel's stages, in the order they are installed: each replaces the stage of its name.
const SOURCES: [(&str, &str); 4] = [
    ("pod-create", include_str!("stages/pod-create.yaml")),
    ("pod-ready", include_str!("stages/pod-ready.yaml")),
    ("pod-complete", include_str!("stages/pod-complete.yaml")),
    ("pod-delete", include_str!("stages/pod-delete.yaml")),
];

/// `kwok.x-k8s.io/v1alpha1 Stage`.
pub fn gvk() -> Gvk {
    Gvk::new(API_VERSION, "Stage")
}

/// The `stages` resource (cluster-scoped).
pub fn resource() -> Resource {
    Resource::new(API_VERSION, "Stage", "stages", false)
}

/// The names of skel's stages.
pub fn names() -> Vec<&'static str> {
    SOURCES.iter().map(|(name, _)| *name).collect()
}

/// skel's stages, as manifests to apply (a source that does not parse is left out; the tests
/// parse every one).
pub fn ours() -> Vec<Value> {
    SOURCES.iter().filter_map(|(_, text)| serde_yaml::from_str::<Value>(text).ok()).collect()
}

/// A stage's name (`""` when it has none).
pub fn name(stage: &Value) -> &str {
    stage.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// A stage as the cluster had it, ready to be applied again: its kind and the fields a user
/// wrote (the server's bookkeeping in `metadata` and the `status` left out).
pub fn restorable(stage: &Value) -> Value {
    let mut out = stage.clone();
    if let Some(obj) = out.as_object_mut() {
        // Items of a list carry no kind of their own.
        obj.insert("apiVersion".into(), Value::String(API_VERSION.into()));
        obj.insert("kind".into(), Value::String("Stage".into()));
        obj.remove("status");
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
        ] {
            meta.remove(key);
        }
    }
    out
}

/// The cluster's stages once skel's are installed: those of skel's names replaced.
pub fn after_install(existing: &[Value]) -> Vec<Value> {
    let ours = names();
    let mut out: Vec<Value> = existing.iter().filter(|s| !ours.contains(&name(s))).cloned().collect();
    out.extend(self::ours());
    out
}

/// A stage that completes pods the replay does not label: it ends pods whatever the trace
/// recorded of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stray {
    pub name: String,
    /// Only Job pods (KWOK's fast `pod-complete`), or every running pod.
    pub jobs_only: bool,
    /// Whether `--install-stages` replaces it (it has the name of one of skel's stages).
    pub replaced_by_install: bool,
}

impl Stray {
    /// What it completes, for messages.
    pub fn selects(&self) -> &'static str {
        if self.jobs_only {
            "every Job's pod"
        } else {
            "every running pod"
        }
    }
}

/// What the preflight found among a cluster's stages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StageCheck {
    /// Every stage (names), for the report.
    pub stages: Vec<String>,
    /// Stages that complete the pods labelled `simkube.io/kwok-stage-complete` (SimKube's
    /// `pod-complete`, or skel's).
    pub completing: Vec<String>,
    /// Stages that complete pods without that label.
    pub strays: Vec<Stray>,
}

/// Looks at a cluster's stages.
pub fn check(stages: &[Value]) -> StageCheck {
    let ours = names();
    let mut out = StageCheck::default();
    for stage in stages {
        let name = name(stage).to_string();
        out.stages.push(name.clone());
        if !for_pods(stage) || !completes(stage) {
            continue;
        }
        if selects_label(stage) {
            out.completing.push(name);
        } else {
            let replaced_by_install = ours.contains(&name.as_str());
            out.strays.push(Stray { name, jobs_only: selects_jobs(stage), replaced_by_install });
        }
    }
    out
}

/// Whether the stage is about pods (`resourceRef: {apiGroup: v1, kind: Pod}`).
fn for_pods(stage: &Value) -> bool {
    let Some(r) = stage.pointer("/spec/resourceRef") else { return false };
    let group = r.get("apiGroup").and_then(Value::as_str).unwrap_or("");
    r.get("kind").and_then(Value::as_str) == Some("Pod") && (group.is_empty() || group == "v1")
}

/// The templates a stage writes with: `next.statusTemplate` and `next.patches[].template`.
fn templates(stage: &Value) -> Vec<&str> {
    let Some(next) = stage.pointer("/spec/next") else { return Vec::new() };
    let mut out: Vec<&str> = next.get("statusTemplate").and_then(Value::as_str).into_iter().collect();
    for patch in next.get("patches").and_then(Value::as_array).into_iter().flatten() {
        out.extend(patch.get("template").and_then(Value::as_str));
    }
    out
}

/// Whether the stage sets `phase: Succeeded`.
fn completes(stage: &Value) -> bool {
    templates(stage).iter().flat_map(|t| t.lines()).any(|line| {
        let line = line.trim();
        line.strip_prefix("phase:").is_some_and(|v| v.trim().trim_matches(['"', '\'']) == "Succeeded")
    })
}

/// The selector's `matchExpressions`.
fn expressions(stage: &Value) -> &[Value] {
    stage.pointer("/spec/selector/matchExpressions").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Whether the stage selects only pods with the replay's label: `matchLabels` with it, or an
/// expression on `.metadata.labels` naming it that is `Exists` or `In` with `"true"`.
fn selects_label(stage: &Value) -> bool {
    let labels = stage.pointer("/spec/selector/matchLabels").and_then(Value::as_object);
    if labels.is_some_and(|l| l.contains_key(STAGE_COMPLETE_LABEL)) {
        return true;
    }
    expressions(stage).iter().any(|e| {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values = e.get("values").and_then(Value::as_array);
        key.contains(".metadata.labels")
            && key.contains(STAGE_COMPLETE_LABEL)
            && match e.get("operator").and_then(Value::as_str) {
                Some("Exists") => true,
                Some("In") => values.is_some_and(|v| v.iter().any(|v| v == "true")),
                _ => false,
            }
    })
}

/// Whether the stage selects only pods a Job owns (`.metadata.ownerReferences.[].kind In [Job]`).
fn selects_jobs(stage: &Value) -> bool {
    expressions(stage).iter().any(|e| {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        key.contains("ownerReferences")
            && e.get("operator").and_then(Value::as_str) == Some("In")
            && e.get("values").and_then(Value::as_array).is_some_and(|v| v.iter().all(|v| v == "Job"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// KWOK's fast `pod-complete`: every running Job pod succeeds at once.
    fn kwok_fast_complete() -> Value {
        json!({"apiVersion": API_VERSION, "kind": "Stage", "metadata": {"name": "pod-complete"},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                "selector": {"matchExpressions": [
                    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                    {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]}]},
                "next": {"statusTemplate": "containerStatuses: []\nphase: Succeeded\n"}}})
    }

    #[test]
    fn ours_parse_and_are_named_as_kwok_names_its_pod_stages() {
        let ours = ours();
        assert_eq!(ours.len(), 4);
        let found: Vec<&str> = ours.iter().map(name).collect();
        assert_eq!(found, ["pod-create", "pod-ready", "pod-complete", "pod-delete"]);
        for s in &ours {
            assert_eq!(Gvk::of(s), Some(gvk()));
            assert!(for_pods(s), "{s}");
        }
        // Only pod-complete completes, and only the labelled pods.
        let c = check(&ours);
        assert_eq!(c.completing, ["pod-complete"]);
        assert!(c.strays.is_empty(), "{:?}", c.strays);
        let complete = &ours[2];
        assert_eq!(
            complete.pointer("/spec/delay/durationFrom/expressionFrom").and_then(Value::as_str),
            Some(".metadata.annotations[\"simkube.io/kwok-stage-complete-time\"]")
        );
    }

    #[test]
    fn kwoks_fast_stage_is_a_stray_that_the_install_replaces() {
        let c = check(&[kwok_fast_complete()]);
        assert!(c.completing.is_empty());
        assert_eq!(c.strays, [Stray { name: "pod-complete".into(), jobs_only: true, replaced_by_install: true }]);
        let after = check(&after_install(&[kwok_fast_complete()]));
        assert_eq!((after.completing.len(), after.strays.len()), (1, 0));
        // Under another name it stays.
        let mut other = kwok_fast_complete();
        other["metadata"]["name"] = json!("job-complete");
        let after = check(&after_install(&[other]));
        assert_eq!(after.strays[0].name, "job-complete");
        assert!(!after.strays[0].replaced_by_install);
    }

    #[test]
    fn simkubes_stage_with_patches_and_quoted_label_counts() {
        let simkube = json!({"apiVersion": API_VERSION, "kind": "Stage", "metadata": {"name": "pod-complete"},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                "selector": {"matchExpressions": [
                    {"key": ".metadata.labels.\"simkube.io/kwok-stage-complete\"", "operator": "Exists"},
                    {"key": ".status.phase", "operator": "In", "values": ["Running"]}]},
                "next": {"patches": [{"subresource": "status", "root": "status",
                    "template": "containerStatuses: []\n  phase: Succeeded"}]}}});
        assert_eq!(check(&[simkube]).completing, ["pod-complete"]);
        // A stage that fails pods, or one for nodes, completes nothing.
        let failing = json!({"metadata": {"name": "x"}, "spec": {"resourceRef": {"kind": "Pod"},
            "next": {"statusTemplate": "phase: Failed"}}});
        let node = json!({"metadata": {"name": "n"}, "spec": {"resourceRef": {"kind": "Node"},
            "next": {"statusTemplate": "phase: Succeeded"}}});
        assert_eq!(check(&[failing, node]), StageCheck { stages: vec!["x".into(), "n".into()], ..Default::default() });
    }

    #[test]
    fn restorable_drops_the_servers_bookkeeping() {
        let stored = json!({"metadata": {"name": "pod-ready", "uid": "u", "resourceVersion": "7",
            "managedFields": [], "labels": {"a": "b"}}, "spec": {"x": 1}, "status": {}});
        assert_eq!(
            restorable(&stored),
            json!({"apiVersion": API_VERSION, "kind": "Stage", "metadata": {"name": "pod-ready", "labels": {"a": "b"}},
                "spec": {"x": 1}})
        );
    }
}
