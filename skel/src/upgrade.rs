//! `skel check`: what a trace uses that a target Kubernetes version no longer serves, and the
//! SKEL that migrates it. The removals are data (`skel/data/api-removals.yaml`, with sources);
//! a `Scanner` looks at every object once and a `Report` renders as text, JSON or SARIF.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};

pub use crate::kube::apis::{migration_statement, removal_of, removals, served_replacement, Removal};
use crate::kube::apis::removal_index;
pub use crate::kube::{api_version, KubeVersion};

#[derive(Default, Deserialize)]
struct Table {
    #[serde(default)]
    label_and_taint_changes: Vec<LabelChange>,
}

/// A node label or taint Kubernetes stopped setting (the data's `label_and_taint_changes`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LabelChange {
    /// `node-role.kubernetes.io/master`, or `KEY:EFFECT` for a taint.
    pub key: String,
    /// `label` or `taint`.
    #[serde(rename = "type")]
    pub kind: String,
    pub removed_in: String,
    pub replacement: String,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| serde_yaml::from_str::<Table>(include_str!("../data/api-removals.yaml")).unwrap_or_default())
}

/// The version from which the control-plane node `label` (or `taint`) is gone, from the data.
fn master_gone(kind: &str) -> KubeVersion {
    table()
        .label_and_taint_changes
        .iter()
        .find(|c| c.kind == kind && c.key.split(':').next() == Some(MASTER))
        .and_then(|c| KubeVersion::parse(&c.removed_in))
        .unwrap_or(KubeVersion { major: u32::MAX, minor: u32::MAX })
}

/// The control-plane node label and taint that Kubernetes renamed.
pub const MASTER: &str = "node-role.kubernetes.io/master";
pub const CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";

/// Where an object uses a thing the target version no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Usage {
    /// An apiVersion/kind the target does not serve (index into `removals()`).
    Api(usize),
    /// `node-role.kubernetes.io/master` in a nodeSelector (no node has it from 1.24).
    MasterNodeSelector,
    /// ... in a node affinity's match expressions.
    MasterNodeAffinity,
    /// A toleration of the `node-role.kubernetes.io/master` taint (not set from 1.25).
    MasterToleration,
}

/// What one kind of usage amounts to in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub usage: Usage,
    pub objects: u64,
    pub events: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    /// `namespace/name` (or `name`) of the first object seen.
    pub example: String,
    last_event: usize,
}

/// Looks at every object of a trace (or of a set of manifests) for what `target` does not have.
pub struct Scanner {
    target: KubeVersion,
    found: BTreeMap<Usage, Finding>,
    pub objects: u64,
    pub events: u64,
}

impl Scanner {
    pub fn new(target: KubeVersion) -> Scanner {
        Scanner { target, found: BTreeMap::new(), objects: 0, events: 0 }
    }

    /// Counts an event (call before its objects).
    pub fn event(&mut self) {
        self.events += 1;
    }

    /// Looks at one object of event `event` (0-based) at time `ts`.
    pub fn object(&mut self, event: usize, ts: i64, obj: &Value) {
        self.objects += 1;
        let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let mut usages = Vec::new();
        if let Some(&i) = removal_index().get(&(api, kind)) {
            if removals().get(i).is_some_and(|r| r.removed() <= self.target) {
                usages.push(Usage::Api(i));
            }
        }
        if self.target >= master_gone("label") {
            master_usages(obj, &mut usages, self.target >= master_gone("taint"));
        }
        for u in usages {
            let f = self.found.entry(u).or_insert_with(|| Finding {
                usage: u,
                objects: 0,
                events: 0,
                first_ts: ts,
                last_ts: ts,
                example: describe(obj),
                last_event: usize::MAX,
            });
            f.objects += 1;
            if f.last_event != event {
                f.events += 1;
                f.last_event = event;
            }
            f.first_ts = f.first_ts.min(ts);
            f.last_ts = f.last_ts.max(ts);
        }
    }

    pub fn report(self) -> Report {
        Report {
            target: self.target,
            objects: self.objects,
            events: self.events,
            findings: self.found.into_values().collect(),
        }
    }
}

/// `namespace/name`, or `name`, or `?`.
fn describe(obj: &Value) -> String {
    let meta = obj.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("?");
    match meta.and_then(|m| m.get("namespace")).and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// The pod specs of an object: a Pod's `spec`, a workload's `spec.template.spec`, a CronJob's
/// `spec.jobTemplate.spec.template.spec`.
fn pod_specs(obj: &Value) -> impl Iterator<Item = &Value> {
    ["/spec", "/spec/template/spec", "/spec/jobTemplate/spec/template/spec"].into_iter().filter_map(|p| obj.pointer(p))
}

fn master_usages(obj: &Value, out: &mut Vec<Usage>, taints: bool) {
    for spec in pod_specs(obj) {
        if spec.get("nodeSelector").and_then(|s| s.get(MASTER)).is_some() && !out.contains(&Usage::MasterNodeSelector) {
            out.push(Usage::MasterNodeSelector);
        }
        let terms = spec
            .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
            .and_then(Value::as_array);
        let preferred = spec
            .pointer("/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array);
        let exprs = terms
            .into_iter()
            .flatten()
            .chain(preferred.into_iter().flatten().filter_map(|p| p.get("preference")))
            .filter_map(|t| t.get("matchExpressions").and_then(Value::as_array))
            .flatten();
        if exprs.into_iter().any(|e| e.get("key").and_then(Value::as_str) == Some(MASTER))
            && !out.contains(&Usage::MasterNodeAffinity)
        {
            out.push(Usage::MasterNodeAffinity);
        }
        let tolerates = spec
            .get("tolerations")
            .and_then(Value::as_array)
            .is_some_and(|ts| ts.iter().any(|t| t.get("key").and_then(Value::as_str) == Some(MASTER)));
        if taints && tolerates && !out.contains(&Usage::MasterToleration) {
            out.push(Usage::MasterToleration);
        }
    }
}

/// What a trace uses that the target version does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: KubeVersion,
    pub objects: u64,
    pub events: u64,
    /// In the order of the removal table, then the label usages.
    pub findings: Vec<Finding>,
}

impl Finding {
    /// A stable identifier for the rule: `removed-api` or `master-node-label`/`master-taint`.
    pub fn rule(&self) -> &'static str {
        match self.usage {
            Usage::Api(_) => "removed-api",
            Usage::MasterNodeSelector | Usage::MasterNodeAffinity => "master-node-label",
            Usage::MasterToleration => "master-taint",
        }
    }

    pub fn removal(&self) -> Option<&'static Removal> {
        match self.usage {
            Usage::Api(i) => removals().get(i),
            _ => None,
        }
    }

    /// One line saying what it is.
    pub fn title(&self) -> String {
        match (self.usage, self.removal()) {
            (Usage::Api(_), Some(r)) => {
                format!("{} {} was removed in Kubernetes {}", r.api_version(), r.kind, r.removed_in)
            }
            (Usage::MasterNodeSelector, _) => {
                format!("a nodeSelector on `{MASTER}`, which nodes no longer carry (1.24)")
            }
            (Usage::MasterNodeAffinity, _) => {
                format!("a node affinity on `{MASTER}`, which nodes no longer carry (1.24)")
            }
            (Usage::MasterToleration, _) => format!("a toleration of the `{MASTER}` taint, no longer set (1.25)"),
            (Usage::Api(_), None) => "an API that was removed".to_string(),
        }
    }

    /// What to use instead.
    pub fn instead(&self) -> String {
        match (self.usage, self.removal()) {
            (Usage::Api(_), Some(r)) => match &r.replacement {
                Some(to) => format!("use {to}"),
                None => "no replacement API".to_string(),
            },
            // (`Report` says where a chain of replacements ends.)
            _ => format!("use `{CONTROL_PLANE}`"),
        }
    }

    /// Whether `--fix` can write SKEL that migrates it (for an API, to the version the target
    /// serves: following replacements that are themselves removed by then).
    pub fn fixable(&self, target: KubeVersion) -> bool {
        match self.removal() {
            Some(r) => served_replacement(r, target).is_some(),
            None => true,
        }
    }
}

/// `1 object`, `2 objects`.
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl Report {
    /// Findings at or below the target (all of them: the scanner keeps no others).
    pub fn has_findings(&self) -> bool {
        !self.findings.is_empty()
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "skel check: {} in {}, target Kubernetes {}",
            count(self.objects, "object"),
            count(self.events, "event"),
            self.target
        );
        if self.findings.is_empty() {
            out.push_str("nothing found: every object is served by the target version\n");
            return out;
        }
        for f in &self.findings {
            let _ = writeln!(out, "\n{}: {}", f.rule(), f.title());
            let instead = match f.removal().map(|r| (r, served_replacement(r, self.target))) {
                Some((r, Some(to))) if r.replacement.as_deref() != Some(&to) => {
                    format!("{}, then {to} (the target serves no earlier one)", f.instead())
                }
                _ => f.instead(),
            };
            let _ = writeln!(out, "  {instead}");
            let _ = writeln!(
                out,
                "  {} in {}, ts {}..{}, e.g. {}",
                count(f.objects, "object"),
                count(f.events, "event"),
                f.first_ts,
                f.last_ts,
                f.example
            );
            if let Some(r) = f.removal().filter(|r| !r.notes.is_empty()) {
                let _ = writeln!(out, "  note: {}", r.notes);
            }
            if !f.fixable(self.target) {
                out.push_str("  no mechanical fix: `--fix` lists it as a comment\n");
            }
        }
        let fixable = self.findings.iter().filter(|f| f.fixable(self.target)).count();
        let _ =
            writeln!(out, "\n{} findings, {fixable} with a mechanical fix (`--fix FILE.skel`)", self.findings.len());
        out
    }

    /// The stable JSON form (documented in docs/upgrade-check.md).
    pub fn json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let r = f.removal();
                json!({
                    "rule": f.rule(),
                    "kind": r.map(|r| r.kind.clone()),
                    "apiVersion": r.map(Removal::api_version),
                    "removedIn": r.map(|r| r.removed_in.clone()),
                    "replacement": match r { Some(r) => served_replacement(r, self.target), None => Some(CONTROL_PLANE.to_string()) },
                    "message": f.title(),
                    "objects": f.objects,
                    "events": f.events,
                    "firstSeen": f.first_ts,
                    "lastSeen": f.last_ts,
                    "example": f.example,
                    "fixable": f.fixable(self.target),
                })
            })
            .collect();
        json!({
            "target": self.target.to_string(),
            "objects": self.objects,
            "events": self.events,
            "findings": findings,
        })
    }

    /// SARIF 2.1.0, for code scanning UIs; each finding a result on the trace file.
    pub fn sarif(&self, trace: &str) -> Value {
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "ruleId": f.rule(),
                    "level": "error",
                    "message": {"text": format!("{}; {}: {} objects in {} events, e.g. {}", f.title(), f.instead(), f.objects, f.events, f.example)},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": trace}}}],
                })
            })
            .collect();
        json!({
            "version": "2.1.0",
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{
                "tool": {"driver": {
                    "name": "skel",
                    "informationUri": "https://github.com/acrlabs/simkube",
                    "rules": [
                        {"id": "removed-api", "shortDescription": {"text": "An API the target Kubernetes version no longer serves"}},
                        {"id": "master-node-label", "shortDescription": {"text": "The node-role.kubernetes.io/master node label, gone in 1.24"}},
                        {"id": "master-taint", "shortDescription": {"text": "The node-role.kubernetes.io/master taint, gone in 1.25"}},
                    ],
                }},
                "results": results,
            }],
        })
    }

    /// A SKEL script that migrates what can be migrated mechanically, a comment per statement
    /// saying why; what cannot is listed as comments.
    pub fn fix_script(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Written by `skel check --target-version {}`.", self.target);
        let _ =
            writeln!(out, "# Apply it with `skel apply THIS.skel TRACE -o OUT`; `skel check` on OUT should then find");
        let _ = writeln!(out, "# nothing with a mechanical fix.");
        for f in &self.findings {
            out.push('\n');
            match (f.usage, f.removal()) {
                (Usage::Api(_), Some(r)) if served_replacement(r, self.target).is_none() => {
                    let _ = writeln!(out, "# {}: {}.", f.title(), f.instead());
                    let _ = writeln!(out, "# No mechanical fix (no API the target serves replaces it): {}", r.notes);
                    let _ = writeln!(out, "# To drop these objects from the trace:");
                    let _ = writeln!(out, "# {}", migration_statement(r, self.target));
                }
                (Usage::Api(_), Some(r)) if r.kind == "Ingress" => {
                    let _ = writeln!(out, "# {} ({}): {}.", f.title(), count(f.objects, "object"), f.instead());
                    let _ = writeln!(out, "# The fields move too: {}", r.notes);
                    out.push_str(&ingress_fix(&r.api_version()));
                }
                (Usage::Api(_), Some(r)) => {
                    let _ = writeln!(out, "# {} ({}): {}.", f.title(), count(f.objects, "object"), f.instead());
                    if !r.notes.is_empty() {
                        let _ = writeln!(out, "# Check the fields: {}", r.notes);
                    }
                    let _ = writeln!(out, "{}", migration_statement(r, self.target));
                }
                (Usage::MasterNodeSelector, _) => {
                    let _ = writeln!(out, "# {} ({}): {}.", f.title(), count(f.objects, "object"), f.instead());
                    for spec in POD_SPECS {
                        let _ = writeln!(
                            out,
                            "move({spec}.nodeSelector.\"{MASTER}\" -> {spec}.nodeSelector.\"{CONTROL_PLANE}\");"
                        );
                    }
                }
                (Usage::MasterNodeAffinity, _) => {
                    let _ = writeln!(out, "# {} ({}): {}.", f.title(), count(f.objects, "object"), f.instead());
                    for spec in POD_SPECS {
                        for terms in [
                            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[*]",
                            "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[*].preference",
                        ] {
                            let _ = writeln!(
                                out,
                                "modify($e := {spec}.{terms}.matchExpressions[*] | $e.key == \"{MASTER}\", $e.key = \"{CONTROL_PLANE}\");"
                            );
                        }
                    }
                }
                (Usage::MasterToleration, _) => {
                    let _ = writeln!(out, "# {} ({}): {}.", f.title(), count(f.objects, "object"), f.instead());
                    for spec in POD_SPECS {
                        let _ = writeln!(
                            out,
                            "modify($t := {spec}.tolerations[*] | $t.key == \"{MASTER}\", $t.key = \"{CONTROL_PLANE}\");"
                        );
                    }
                }
                (Usage::Api(_), None) => {}
            }
        }
        out
    }
}

/// The manifests of a YAML text (several documents; JSON is YAML too); a `...List` object or an
/// array gives its items; values that are not objects with a `kind` are skipped.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, String> {
    fn flatten(v: Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
            Value::Object(mut m) if m.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) => {
                if let Some(Value::Array(items)) = m.remove("items") {
                    items.into_iter().for_each(|i| flatten(i, out));
                }
            }
            // A manifest says what it is.
            v @ Value::Object(_) if v.get("kind").is_some_and(Value::is_string) => out.push(v),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| e.to_string())?;
        flatten(v, &mut out);
    }
    Ok(out)
}

/// The pod specs of `pod_specs`, as SKEL paths.
const POD_SPECS: [&str; 3] = ["spec", "spec.template.spec", "spec.jobTemplate.spec.template.spec"];

/// The Ingress migration of `examples/ingress-v1.skel`, for one old apiVersion.
fn ingress_fix(api_version: &str) -> String {
    let guard = format!("kind == \"Ingress\" && apiVersion == {api_version:?}");
    let mut out = String::new();
    let _ = writeln!(out, "move({guard}, spec.backend -> spec.defaultBackend);");
    for (from, to, test) in [
        ("serviceName", "service.name", "exists($b.serviceName)"),
        ("servicePort", "service.port.number", "$b.servicePort >= 0"),
        ("servicePort", "service.port.name", "$b.servicePort >= \"\""),
    ] {
        let _ =
            writeln!(out, "move({guard} && $b := spec.rules[*].http.paths[*].backend | {test}, $b.{from} -> $b.{to});");
        let default_test = test.replace("$b", "spec.defaultBackend");
        let _ =
            writeln!(out, "move({guard} && {default_test}, spec.defaultBackend.{from} -> spec.defaultBackend.{to});");
    }
    let _ = writeln!(out, "# pathType is required in v1: keep the ones set, give the others the old default.");
    let _ = writeln!(
        out,
        "copy({guard} && $p := spec.rules[*].http.paths[*] | exists($p.pathType), $p.pathType -> $p.\"skel.dev/pathType\");"
    );
    let _ = writeln!(out, "modify({guard}, spec.rules[*].http.paths[*].pathType = \"ImplementationSpecific\");");
    let _ = writeln!(
        out,
        "move({guard} && $p := spec.rules[*].http.paths[*] | exists($p.\"skel.dev/pathType\"), $p.\"skel.dev/pathType\" -> $p.pathType);"
    );
    let _ = writeln!(out, "modify({guard}, apiVersion = \"networking.k8s.io/v1\");");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each target version finds: removals at or before it; the label from 1.24, the
    /// taint from 1.25; counts per object and per event.
    #[test]
    fn findings_depend_on_the_target() {
        let cron =
            json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "n"}});
        let pod = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "nodeSelector": {MASTER: ""}, "tolerations": [{"key": MASTER, "effect": "NoSchedule"}]}}}});
        let scan = |minor| {
            let mut s = Scanner::new(KubeVersion { major: 1, minor });
            s.event();
            s.object(0, 10, &cron);
            s.object(0, 10, &cron);
            s.event();
            s.object(1, 20, &pod);
            s.object(1, 20, &cron);
            s.report()
        };
        let rules = |r: &Report| r.findings.iter().map(Finding::rule).collect::<Vec<_>>();
        assert!(rules(&scan(23)).is_empty());
        assert_eq!(rules(&scan(24)), ["master-node-label"]);
        let r = scan(25);
        assert_eq!(rules(&r), ["removed-api", "master-node-label", "master-taint"]);
        let cron_finding = &r.findings[0];
        assert_eq!((cron_finding.objects, cron_finding.events), (3, 2));
        assert_eq!((cron_finding.first_ts, cron_finding.last_ts), (10, 20));
        assert_eq!(cron_finding.example, "n/c");
        assert_eq!((r.objects, r.events), (4, 2));
    }

    #[test]
    fn fixes_compile() {
        let mut s = Scanner::new(KubeVersion { major: 1, minor: 30 });
        for r in removals() {
            s.object(0, 1, &json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": "x"}}));
        }
        s.object(1, 2, &json!({"kind": "Pod", "spec": {"nodeSelector": {MASTER: ""}, "tolerations": [{"key": MASTER}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": MASTER}]}]}}}}}));
        let report = s.report();
        let script = report.fix_script();
        let compiled = crate::compile(&script);
        assert!(!compiled.has_errors(), "{:?}\n{script}", compiled.diagnostics);
        assert_eq!(report.findings.iter().filter(|f| f.rule() != "removed-api").count(), 3);
    }
}
