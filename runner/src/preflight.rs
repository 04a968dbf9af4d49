//! Preflight: before anything is written, every kind the trace uses must be served, and every
//! verb the run needs must be allowed. Each refusal is one diagnostic that lists everything wrong.

use std::fmt::Write;

use miette::Diagnostic;
use skel::upgrade::{self, KubeVersion};
use thiserror::Error;

use crate::api::Gvk;
use crate::cluster::Access;
use crate::stages::Stray;

/// A kind the trace uses that the cluster does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub gvk: Gvk,
    pub objects: u64,
}

/// The cluster does not serve some kinds of the trace.
#[derive(Debug, Error, Diagnostic)]
#[error("{}", unserved_message(.cluster, .version, .missing))]
#[diagnostic(code(skel::run::unserved), help("{}", unserved_help(.version, .missing)))]
pub struct Unserved {
    /// Where: the cluster's URL, or the built-in table for a dry run.
    pub cluster: String,
    pub version: KubeVersion,
    pub missing: Vec<Missing>,
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn unserved_message(cluster: &str, version: &KubeVersion, missing: &[Missing]) -> String {
    let n = missing.len() as u64;
    let mut out = format!(
        "Kubernetes {version} ({cluster}) does not serve {} the trace uses; nothing was written\n",
        plural(n, "kind")
    );
    for m in missing {
        let used = plural(m.objects, "object");
        match upgrade::removal_of(&m.gvk.api_version, &m.gvk.kind) {
            Some(r) => {
                let instead = match upgrade::served_replacement(r, *version) {
                    Some(to) => format!("use {to}"),
                    None => "no replacement".to_string(),
                };
                let _ = writeln!(out, "  - {} ({used}): removed in {}, {instead}", m.gvk, r.removed_in);
                let _ = writeln!(out, "{}", indented(&upgrade::migration_statement(r, *version)));
            }
            None if m.gvk.api_version.contains(".k8s.io/") || !m.gvk.api_version.contains('.') => {
                let _ = writeln!(out, "  - {} ({used}): not served by this version", m.gvk);
            }
            None => {
                let _ = writeln!(
                    out,
                    "  - {} ({used}): not served; a custom resource needs its CustomResourceDefinition installed",
                    m.gvk
                );
            }
        }
    }
    out.trim_end().to_string()
}

/// A statement indented under its list item; one longer than a report line (100 columns, less
/// the frame) is broken after its selector (as `skel fmt` breaks it), so that it can be copied
/// whole from a terminal.
fn indented(statement: &str) -> String {
    const PAD: &str = "      ";
    match statement.split_once(", apiVersion = ") {
        Some((selector, rest)) if PAD.len() + statement.len() > 94 => {
            let command = selector.find('(').map_or(0, |i| i + 1);
            format!("{PAD}{selector},\n{PAD}{}apiVersion = {rest}", " ".repeat(command))
        }
        _ => format!("{PAD}{statement}"),
    }
}

fn unserved_help(version: &KubeVersion, missing: &[Missing]) -> String {
    let removed: Vec<_> = missing.iter().filter_map(|m| upgrade::removal_of(&m.gvk.api_version, &m.gvk.kind)).collect();
    if removed.is_empty() {
        return "install what serves these kinds (CustomResourceDefinitions, API services), or drop their objects \
                with a `--script` of `delete(...)` statements"
            .into();
    }
    let fields_move = removed.iter().any(|r| !r.notes.is_empty() && r.notes != "no notable changes");
    let mut help = "put the statements above in a script and replay with `--script FILE`".to_string();
    if fields_move {
        let _ = write!(
            help,
            "; some fields change too: `skel check TRACE --target-version {version} --fix fix.skel` writes the full migration"
        );
    }
    help
}

/// A trace namespace whose name on the cluster (with the prefix) is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadNamespace {
    pub trace_namespace: String,
    /// The name it would have on the cluster.
    pub target: String,
    pub problem: String,
    pub objects: u64,
    /// A valid trace namespace to rename it to.
    pub suggestion: String,
    /// Whether the trace has a `Namespace` object of that name (to rename too).
    pub has_object: bool,
}

/// Some namespaces the replay would create would be refused by the API server.
#[derive(Debug, Error, Diagnostic)]
#[error("{}", bad_namespaces_message(.bad))]
#[diagnostic(
    code(skel::run::bad_namespace),
    help(
        "namespace names are at most 63 lowercase letters, digits and `-`, with the prefix `{prefix}`; put the \
         statements above in a script and replay with `--script FILE`, or choose a shorter `--namespace-prefix`"
    )
)]
pub struct BadNamespaces {
    pub prefix: String,
    pub bad: Vec<BadNamespace>,
}

fn bad_namespaces_message(bad: &[BadNamespace]) -> String {
    let n = bad.len() as u64;
    let mut out = format!("{} of the trace would get an invalid name; nothing was written\n", plural(n, "namespace"));
    for b in bad {
        let (from, to) = (&b.trace_namespace, &b.suggestion);
        let _ = writeln!(out, "  - `{}` ({}): {}", b.target, plural(b.objects, "object"), b.problem);
        let _ = writeln!(out, "      modify(metadata.namespace == {from:?}, metadata.namespace = {to:?});");
        if b.has_object {
            let _ = writeln!(
                out,
                "      modify(kind == \"Namespace\" && metadata.name == {from:?}, metadata.name = {to:?});"
            );
        }
    }
    out.trim_end().to_string()
}

/// The cluster does not allow some verbs the run needs.
#[derive(Debug, Error, Diagnostic)]
#[error("{}", forbidden_message(.cluster, .denied))]
#[diagnostic(
    code(skel::run::forbidden),
    help(
        "grant these verbs to the kubeconfig's user (a KWOK cluster's admin context has them all), \
         or use another `--context`; `kubectl auth can-i VERB RESOURCE` checks one"
    )
)]
pub struct Forbidden {
    pub cluster: String,
    pub denied: Vec<Access>,
}

fn forbidden_message(cluster: &str, denied: &[Access]) -> String {
    let mut out = format!("the cluster at {cluster} does not allow what the replay needs; nothing was written\n");
    for a in denied {
        let scope = if a.resource.namespaced { " (in all namespaces)" } else { "" };
        let _ = writeln!(out, "  - {} {}{scope}", a.verb, a.resource.rbac_name());
    }
    out.trim_end().to_string()
}

/// The cluster's KWOK stages would not complete the replay's pods as the trace recorded them.
#[derive(Debug, Error, Diagnostic)]
#[error("{}", stages_message(.cluster, .finished, .no_completer, .strays))]
#[diagnostic(code(skel::run::stages), help("{}", stages_help(.installing, .strays)))]
pub struct StagesUnfit {
    pub cluster: String,
    /// How many lifecycles of the trace end (`Finished`): the pods that are to complete.
    pub finished: usize,
    /// No stage completes the pods labelled `simkube.io/kwok-stage-complete` (and the trace has
    /// pods that are to complete).
    pub no_completer: bool,
    /// Stages that complete pods the replay does not label (after the install, with
    /// `--install-stages`: those it does not replace).
    pub strays: Vec<Stray>,
    /// The run was asked to install skel's stages.
    pub installing: bool,
}

fn stages_message(cluster: &str, finished: &usize, no_completer: &bool, strays: &[Stray]) -> String {
    let mut out = format!(
        "the KWOK stages of the cluster at {cluster} would not give the replay's pods the lifecycles the trace \
         recorded; nothing was written\n"
    );
    if *no_completer {
        let _ = writeln!(
            out,
            "  - no Stage completes pods labelled `{}`:\n    {} of the trace would never end",
            crate::lifecycle::STAGE_COMPLETE_LABEL,
            plural(*finished as u64, "pod lifecycle")
        );
    }
    for s in strays {
        let _ = writeln!(out, "  - Stage `{}` completes {} at once, whatever the trace recorded", s.name, s.selects());
    }
    out.trim_end().to_string()
}

fn stages_help(installing: &bool, strays: &[Stray]) -> String {
    let others: Vec<&str> = strays.iter().filter(|s| !s.replaced_by_install).map(|s| s.name.as_str()).collect();
    let delete = match others.as_slice() {
        [] => String::new(),
        names => format!("delete {} first (`kubectl delete stage {}`)", stage_names(names), names.join(" ")),
    };
    if *installing {
        return format!(
            "`--install-stages` replaces only the stages named pod-create, pod-ready, pod-complete and pod-delete: \
             {delete}"
        );
    }
    let install = "run again with `skel run --install-stages ...`: skel installs SimKube-compatible pod stages \
                   (pod-create, pod-ready, pod-complete, pod-delete) for the run, replacing those of the same names, \
                   and its clean-up puts the old ones back; or install SimKube's stages (its config/kwok/pod-*.yml) \
                   with `kubectl apply -f`";
    match delete.is_empty() {
        true => install.to_string(),
        false => format!("{delete}; then {install}"),
    }
}

fn stage_names(names: &[&str]) -> String {
    match names {
        [one] => format!("the stage `{one}`"),
        _ => format!("the stages {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")),
    }
}

/// `--install-stages` on a cluster that does not serve KWOK's `Stage` API.
#[derive(Debug, Error, Diagnostic)]
#[error(
    "cannot install KWOK stages: the cluster at {cluster} does not serve KWOK's Stage API \
     (kwok.x-k8s.io/v1alpha1 stages); nothing was written"
)]
#[diagnostic(
    code(skel::run::no_stage_api),
    help(
        "KWOK serves Stage objects when its CRDs are installed: create the cluster with `kwokctl create cluster \
         --enable-crds=Stage`, or apply KWOK's kwok.yaml to a cluster. A cluster without KWOK runs real pods, which \
         end when their containers do: replay without the install there"
    )
)]
pub struct NoStageApi {
    pub cluster: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unserved_lists_each_kind_with_its_fix() {
        let e = Unserved {
            cluster: "http://127.0.0.1:1".into(),
            version: KubeVersion { major: 1, minor: 25 },
            missing: vec![
                Missing { gvk: Gvk::new("batch/v1beta1", "CronJob"), objects: 3 },
                Missing { gvk: Gvk::new("policy/v1beta1", "PodSecurityPolicy"), objects: 1 },
                Missing { gvk: Gvk::new("example.com/v1", "Widget"), objects: 2 },
            ],
        };
        let text = e.to_string();
        assert!(text.contains("batch/v1beta1 CronJob (3 objects): removed in 1.25, use batch/v1"), "{text}");
        assert!(
            text.contains(r#"modify(kind == "CronJob" && apiVersion == "batch/v1beta1", apiVersion = "batch/v1");"#),
            "{text}"
        );
        assert!(text.contains(r#"delete(kind == "PodSecurityPolicy" && apiVersion == "policy/v1beta1");"#), "{text}");
        assert!(text.contains("CustomResourceDefinition"), "{text}");
        let long = indented(
            r#"modify(kind == "PodDisruptionBudget" && apiVersion == "policy/v1beta1", apiVersion = "policy/v1");"#,
        );
        assert_eq!(
            long,
            "      modify(kind == \"PodDisruptionBudget\" && apiVersion == \"policy/v1beta1\",\n             apiVersion = \"policy/v1\");"
        );
        // Broken or not, it is SKEL that compiles.
        assert!(skel::compile(&long).is_ok());
    }
}
