//! Upgrade hazards that are not API removals: node labels and taints Kubernetes no longer sets,
//! annotations and fields it ignores or drops, in-tree volume plugins, values its API server
//! rejects, and behaviour it no longer has. The rules are data (`skel/data/hazards.yaml`, a
//! source per row); `Rules::at` keeps those a target version has and `Rules::scan` finds them in
//! one object, each hit with the SKEL statements that rewrite it where a rewrite can.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::podspec::{PodPlace, PodPlaces};
use super::KubeVersion;

/// How a rule is found (the first part of its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Label,
    Taint,
    Annotation,
    Field,
    Volume,
    VolumeCsi,
    DeprecatedApi,
    Validation,
    Behaviour,
}

/// How bad a finding is: an error is what the target's API server rejects or what stops
/// working; a warning is deprecated but still served or honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One rule of `skel/data/hazards.yaml` (the file's header says what each field means).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hazard {
    pub id: String,
    pub family: Family,
    pub title: String,
    pub warn_from: Option<String>,
    pub error_from: Option<String>,
    pub instead: String,
    #[serde(default)]
    pub fix: Vec<String>,
    /// The first version for which the rewrite is right (before it, `--fix` writes none).
    pub fix_from: Option<String>,
    pub manual: Option<String>,
    pub sources: Vec<String>,
    pub key: Option<String>,
    pub replacement: Option<String>,
    #[serde(default)]
    pub on: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    pub path: Option<String>,
    pub volume: Option<String>,
    #[serde(default)]
    pub provisioners: Vec<String>,
    pub api_version: Option<String>,
    pub kind: Option<String>,
}

impl Hazard {
    /// The severity at `target`, or `None` before the rule applies.
    pub fn severity_at(&self, target: KubeVersion) -> Option<Severity> {
        let reached = |v: &Option<String>| v.as_deref().and_then(KubeVersion::parse).is_some_and(|v| v <= target);
        if reached(&self.error_from) {
            Some(Severity::Error)
        } else if reached(&self.warn_from) {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    /// The first version the rule applies to.
    pub fn from(&self) -> KubeVersion {
        [&self.warn_from, &self.error_from]
            .into_iter()
            .filter_map(|v| v.as_deref().and_then(KubeVersion::parse))
            .min()
            .unwrap_or(KubeVersion::NEVER)
    }

    /// Whether `--fix` writes statements that rewrite it (some only in part: see `manual`).
    pub fn fixable(&self) -> bool {
        match self.family {
            Family::Label | Family::Taint => self.replacement.is_some(),
            Family::Validation => [CRON_TZ, IP_CIDR].contains(&self.id.as_str()),
            Family::Behaviour => self.id == SA_TOKEN,
            _ => !self.fix.is_empty(),
        }
    }

    /// Whether the rewrite is right at `target` (see `fix_from`).
    pub fn fix_applies(&self, target: KubeVersion) -> bool {
        self.fix_from.as_deref().and_then(KubeVersion::parse).is_none_or(|v| v <= target)
    }

    /// The annotation key's prefix, for a key written `PREFIX/*`.
    fn prefix(&self) -> Option<&str> {
        self.key.as_deref().and_then(|k| k.strip_suffix('*'))
    }
}

const CRON_TZ: &str = "validation:CronJob.spec.schedule-timezone";
const IP_CIDR: &str = "validation:ip-cidr-strict";
const SA_TOKEN: &str = "behaviour:sa-token-secret-autogen";
const PSP: &str = "behaviour:psp-admission";
const DOCKER: &str = "behaviour:dockershim-socket";

#[derive(Deserialize)]
struct Table {
    hazards: Vec<Hazard>,
}

/// Every rule, in the data's order. An unreadable data file is an empty list here and a failed
/// unit test (`the_data_is_whole`).
pub fn hazards() -> &'static [Hazard] {
    static TABLE: OnceLock<Vec<Hazard>> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_yaml::from_str::<Table>(include_str!("../../data/hazards.yaml")).map(|t| t.hazards).unwrap_or_default()
    })
}

#[cfg(test)]
fn data_error() -> Option<String> {
    serde_yaml::from_str::<Table>(include_str!("../../data/hazards.yaml")).err().map(|e| e.to_string())
}

/// One hazard found in one object: the rule (an index into `hazards()`), the statements that
/// rewrite it there, and the values worth showing (a schedule, an address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub hazard: usize,
    pub fix: Vec<String>,
    pub values: Vec<String>,
}

/// A reference to a ServiceAccount token Secret: whether the input also holds that Secret is
/// known only at the end (`Rules::token_secret` and the caller's bookkeeping).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenRef {
    pub namespace: String,
    pub secret: String,
    pub service_account: String,
}

impl TokenRef {
    /// The statement that puts the Secret Kubernetes no longer creates into the trace.
    pub fn insert_statement(&self) -> String {
        let mut meta = serde_json::Map::new();
        meta.insert("name".into(), Value::from(self.secret.as_str()));
        if !self.namespace.is_empty() {
            meta.insert("namespace".into(), Value::from(self.namespace.as_str()));
        }
        meta.insert(
            "annotations".into(),
            serde_json::json!({"kubernetes.io/service-account.name": self.service_account}),
        );
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta,
            "type": "kubernetes.io/service-account-token"});
        let text = serde_json::to_string(&secret).unwrap_or_default();
        format!("insert(@t == 0s, {});", text.replace(",\"", ", \"").replace("\":", "\": "))
    }
}

/// The rules a target version has, arranged for lookup.
pub struct Rules {
    labels: HashMap<&'static str, usize>,
    taints: Vec<usize>,
    pod_annotations: Vec<usize>,
    kind_annotations: Vec<usize>,
    /// Field rules, with their path as a JSON pointer.
    fields: Vec<(usize, String)>,
    volumes: HashMap<&'static str, usize>,
    provisioners: HashMap<&'static str, usize>,
    deprecated: Vec<usize>,
    cron_tz: Option<usize>,
    ip_cidr: Option<usize>,
    sa_token: Option<usize>,
    psp: Option<usize>,
    docker: Option<usize>,
}

impl Rules {
    /// The rules that apply at `target` (a warning or an error there).
    pub fn at(target: KubeVersion) -> Rules {
        let mut r = Rules {
            labels: HashMap::new(),
            taints: Vec::new(),
            pod_annotations: Vec::new(),
            kind_annotations: Vec::new(),
            fields: Vec::new(),
            volumes: HashMap::new(),
            provisioners: HashMap::new(),
            deprecated: Vec::new(),
            cron_tz: None,
            ip_cidr: None,
            sa_token: None,
            psp: None,
            docker: None,
        };
        for (i, h) in hazards().iter().enumerate() {
            if h.severity_at(target).is_none() {
                continue;
            }
            match h.family {
                Family::Label => {
                    if let Some(k) = &h.key {
                        r.labels.insert(k, i);
                    }
                }
                Family::Taint => r.taints.push(i),
                Family::Annotation if h.on.iter().any(|o| o == "pod") => r.pod_annotations.push(i),
                Family::Annotation => r.kind_annotations.push(i),
                Family::Field => {
                    let pointer = h.path.as_deref().map(|p| format!("/{}", p.replace('.', "/"))).unwrap_or_default();
                    r.fields.push((i, pointer));
                }
                Family::Volume | Family::VolumeCsi => {
                    if let Some(v) = &h.volume {
                        r.volumes.insert(v, i);
                    }
                    for p in &h.provisioners {
                        r.provisioners.insert(p, i);
                    }
                }
                Family::DeprecatedApi => r.deprecated.push(i),
                Family::Validation | Family::Behaviour => {
                    let slot = match h.id.as_str() {
                        CRON_TZ => &mut r.cron_tz,
                        IP_CIDR => &mut r.ip_cidr,
                        SA_TOKEN => &mut r.sa_token,
                        PSP => &mut r.psp,
                        DOCKER => &mut r.docker,
                        _ => continue,
                    };
                    *slot = Some(i);
                }
            }
        }
        r
    }

    /// The rule index of the ServiceAccount token rule, when the target has it.
    pub fn sa_token_rule(&self) -> Option<usize> {
        self.sa_token
    }

    /// `namespace/name` of a ServiceAccount token Secret that `obj` is.
    pub fn token_secret(obj: &Value) -> Option<(String, String)> {
        if obj.get("kind").and_then(Value::as_str) != Some("Secret")
            || obj.get("type").and_then(Value::as_str) != Some("kubernetes.io/service-account-token")
        {
            return None;
        }
        let (ns, name) = ns_name(obj);
        Some((ns.to_string(), name?.to_string()))
    }

    /// The hazards of `obj` (deduplicated by rule), and the token Secrets it refers to.
    pub fn scan(&self, obj: &Value, places: &PodPlaces, hits: &mut Vec<Hit>, tokens: &mut Vec<TokenRef>) {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let mut out = Out { hits };
        for (place, template) in places.of(obj) {
            let spec = template.get("spec").unwrap_or(&Value::Null);
            self.pod_labels(place, spec, &mut out);
            self.tolerations(place, spec, &mut out);
            self.pod_annotations(place, template, &mut out);
            self.pod_volumes(spec, &mut out);
            if self.sa_token.is_some() {
                let (ns, _) = ns_name(obj);
                for secret in secret_names(spec) {
                    if let Some(sa) = token_owner(secret) {
                        tokens.push(TokenRef {
                            namespace: ns.to_string(),
                            secret: secret.to_string(),
                            service_account: sa.to_string(),
                        });
                    }
                }
            }
            if let Some(i) = self.ip_cidr {
                let mut found = Vec::new();
                reach(spec, "hostAliases[*].ip", place.spec.clone(), &mut found);
                for (path, v) in found {
                    if let Some(fixed) = v.as_str().and_then(|t| strict_fixed(t, false)) {
                        let text = v.as_str().unwrap_or_default();
                        let fix = format!("modify({}{path} == {text:?}, {path} = {fixed:?});", place.and());
                        out.hit(i, Some(fix), Some(format!("{path}: {text} -> {fixed}")));
                    }
                }
            }
            if let Some(i) = self.psp {
                if annotations(template).and_then(|a| a.get("kubernetes.io/psp")).is_some() {
                    out.hit(i, None, None);
                }
            }
        }
        match kind {
            "PersistentVolume" => {
                let spec = obj.get("spec").unwrap_or(&Value::Null);
                for (key, i) in &self.volumes {
                    if spec.get(*key).is_some() {
                        out.hit(*i, None, None);
                    }
                }
                let exprs = array(spec.pointer("/nodeAffinity/required/nodeSelectorTerms"))
                    .flat_map(|t| array(t.get("matchExpressions")));
                for e in exprs {
                    self.label_key(e.get("key"), &mut out, |k, r| {
                        format!("modify(kind == \"PersistentVolume\" && $e := spec.nodeAffinity.required.nodeSelectorTerms[*].matchExpressions[*] | $e.key == {k:?}, $e.key = {r:?});")
                    });
                }
            }
            "StorageClass" => {
                if let Some(i) = obj.get("provisioner").and_then(Value::as_str).and_then(|p| self.provisioners.get(p)) {
                    out.hit(*i, None, None);
                }
                let exprs = array(obj.get("allowedTopologies")).flat_map(|t| array(t.get("matchLabelExpressions")));
                for e in exprs {
                    self.label_key(e.get("key"), &mut out, |k, r| {
                        format!("modify(kind == \"StorageClass\" && $e := allowedTopologies[*].matchLabelExpressions[*] | $e.key == {k:?}, $e.key = {r:?});")
                    });
                }
            }
            "CronJob" => {
                if let (Some(i), Some(schedule)) = (self.cron_tz, obj.pointer("/spec/schedule").and_then(Value::as_str))
                {
                    if let Some((zone, rest)) = schedule_zone(schedule) {
                        let fix = [
                            format!("modify(kind == \"CronJob\" && spec.schedule == {schedule:?}, spec.timeZone = {zone:?});"),
                            format!("modify(kind == \"CronJob\" && spec.schedule == {schedule:?}, spec.schedule = {rest:?});"),
                        ];
                        out.hit_with(i, fix.to_vec(), vec![schedule.to_string()]);
                    }
                }
            }
            "ServiceAccount" if self.sa_token.is_some() => {
                let (ns, name) = ns_name(obj);
                for s in array(obj.get("secrets")) {
                    let Some(secret) = s.get("name").and_then(Value::as_str) else { continue };
                    if name.is_some_and(|n| token_owner(secret) == Some(n)) {
                        tokens.push(TokenRef {
                            namespace: ns.to_string(),
                            secret: secret.to_string(),
                            service_account: name.unwrap_or_default().to_string(),
                        });
                    }
                }
            }
            "ClusterRole" | "Role" => {
                if let Some(i) = self.psp {
                    let uses_psp = array(obj.get("rules")).any(|rule| {
                        // Named: a wildcard rule (cluster-admin) allows PSPs but does not rely on them.
                        let has = |field: &str, want: &[&str]| {
                            array(rule.get(field)).any(|v| v.as_str().is_some_and(|s| want.contains(&s)))
                        };
                        has("resources", &["podsecuritypolicies"]) && has("verbs", &["use", "*"])
                    });
                    if uses_psp {
                        out.hit(i, None, None);
                    }
                }
            }
            _ => {}
        }
        if let Some(i) = self.ip_cidr {
            let (values, fix) = strict_ip_values(kind, obj);
            if !values.is_empty() {
                out.hit_with(i, fix, values);
            }
        }
        let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        for &i in &self.deprecated {
            let h = &hazards()[i];
            if h.kind.as_deref() == Some(kind) && h.api_version.as_deref() == Some(api) {
                out.hit(i, None, None);
            }
        }
        for &i in &self.kind_annotations {
            let h = &hazards()[i];
            if h.on.iter().any(|k| k == kind) && has_annotation(h, annotations(obj)) {
                out.hit_with(i, h.fix.clone(), Vec::new());
            }
        }
        for (i, pointer) in &self.fields {
            let (i, h) = (*i, &hazards()[*i]);
            if h.kinds.iter().any(|k| k == "*" || k == kind) && obj.pointer(pointer).is_some() {
                out.hit_with(i, h.fix.clone(), Vec::new());
            }
        }
    }

    /// Node labels a pod spec selects or spreads by.
    fn pod_labels(&self, place: &PodPlace, spec: &Value, out: &mut Out) {
        if self.labels.is_empty() {
            return;
        }
        let (and, s) = (place.and(), &place.spec);
        if let Some(selector) = spec.get("nodeSelector").and_then(Value::as_object) {
            for key in selector.keys() {
                let w = place.where_();
                self.label_key(Some(&Value::from(key.as_str())), out, |k, r| {
                    format!("move({w}{s}.nodeSelector.{k:?} -> {s}.nodeSelector.{r:?});")
                });
            }
        }
        let node = spec.pointer("/affinity/nodeAffinity");
        let required =
            node.and_then(|n| n.pointer("/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"));
        let terms: Vec<&Value> = array(required).collect();
        let term_keys = |t: &Value| -> Vec<String> {
            array(t.get("matchExpressions")).filter_map(|e| e.get("key")?.as_str().map(str::to_string)).collect()
        };
        let keys: Vec<Vec<String>> = terms.iter().map(|t| term_keys(t)).collect();
        for (n, t) in terms.iter().enumerate() {
            for e in array(t.get("matchExpressions")) {
                // Terms are OR-ed: another term that selects the replacement keeps the pod placeable.
                let replaced_elsewhere =
                    e.get("key").and_then(Value::as_str).and_then(|k| self.labels.get(k)).is_some_and(|&i| {
                        let r = hazards()[i].replacement.as_deref().unwrap_or("");
                        keys.iter().enumerate().any(|(m, ks)| m != n && ks.iter().any(|k| k == r))
                    });
                if replaced_elsewhere {
                    continue;
                }
                self.label_key(e.get("key"), out, |k, r| {
                format!("modify({and}$e := {s}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[*].matchExpressions[*] | $e.key == {k:?}, $e.key = {r:?});")
                });
            }
        }
        let preferred = node.and_then(|n| n.get("preferredDuringSchedulingIgnoredDuringExecution"));
        for e in array(preferred).flat_map(|t| array(t.pointer("/preference/matchExpressions"))) {
            self.label_key(e.get("key"), out, |k, r| {
                format!("modify({and}$e := {s}.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[*].preference.matchExpressions[*] | $e.key == {k:?}, $e.key = {r:?});")
            });
        }
        for c in array(spec.get("topologySpreadConstraints")) {
            self.label_key(c.get("topologyKey"), out, |k, r| {
                format!("modify({and}$c := {s}.topologySpreadConstraints[*] | $c.topologyKey == {k:?}, $c.topologyKey = {r:?});")
            });
        }
        for affinity in ["podAffinity", "podAntiAffinity"] {
            let a = spec.get("affinity").and_then(|a| a.get(affinity));
            for t in array(a.and_then(|a| a.get("requiredDuringSchedulingIgnoredDuringExecution"))) {
                self.label_key(t.get("topologyKey"), out, |k, r| {
                    format!("modify({and}$t := {s}.affinity.{affinity}.requiredDuringSchedulingIgnoredDuringExecution[*] | $t.topologyKey == {k:?}, $t.topologyKey = {r:?});")
                });
            }
            for t in array(a.and_then(|a| a.get("preferredDuringSchedulingIgnoredDuringExecution"))) {
                self.label_key(t.pointer("/podAffinityTerm/topologyKey"), out, |k, r| {
                    format!("modify({and}$t := {s}.affinity.{affinity}.preferredDuringSchedulingIgnoredDuringExecution[*].podAffinityTerm | $t.topologyKey == {k:?}, $t.topologyKey = {r:?});")
                });
            }
        }
    }

    /// A hit when `key` is a label rule's key; `fix(key, replacement)` writes its statement.
    fn label_key(&self, key: Option<&Value>, out: &mut Out, fix: impl Fn(&str, &str) -> String) {
        let Some(key) = key.and_then(Value::as_str) else { return };
        if let Some(&i) = self.labels.get(key) {
            let statement = hazards()[i].replacement.as_deref().map(|r| fix(key, r));
            out.hit(i, statement, None);
        }
    }

    /// Tolerations of an old taint without one of its replacement (or of every taint).
    fn tolerations(&self, place: &PodPlace, spec: &Value, out: &mut Out) {
        let Some(tolerations) = spec.get("tolerations").and_then(Value::as_array).filter(|t| !t.is_empty()) else {
            return;
        };
        fn key(t: &Value) -> &str {
            t.get("key").and_then(Value::as_str).unwrap_or("")
        }
        let tolerates_all = tolerations
            .iter()
            .any(|t| key(t).is_empty() && t.get("operator").and_then(Value::as_str) == Some("Exists"));
        for &i in &self.taints {
            let h = &hazards()[i];
            let (Some(old), new) = (h.key.as_deref(), h.replacement.as_deref()) else { continue };
            let has_old = tolerations.iter().any(|t| key(t) == old);
            let has_new = new.is_some_and(|n| tolerations.iter().any(|t| key(t) == n));
            if has_old && !has_new && !tolerates_all {
                let fix = new.map(|n| {
                    format!(
                        "modify({}$t := {}.tolerations[*] | $t.key == {old:?}, $t.key = {n:?});",
                        place.and(),
                        place.spec
                    )
                });
                out.hit(i, fix, None);
            }
        }
    }

    fn pod_annotations(&self, place: &PodPlace, template: &Value, out: &mut Out) {
        let found = annotations(template);
        if found.is_none() {
            return;
        }
        for &i in &self.pod_annotations {
            let h = &hazards()[i];
            if has_annotation(h, found) {
                out.hit_with(i, h.fix.iter().map(|t| place.expand(t)).collect(), Vec::new());
            }
        }
    }

    fn pod_volumes(&self, spec: &Value, out: &mut Out) {
        if self.volumes.is_empty() && self.docker.is_none() {
            return;
        }
        for v in array(spec.get("volumes")).filter_map(Value::as_object) {
            for key in v.keys() {
                if let Some(&i) = self.volumes.get(key.as_str()) {
                    out.hit(i, None, None);
                }
            }
            let host = v.get("hostPath").and_then(|h| h.get("path")).and_then(Value::as_str);
            if let (Some(i), Some(path)) = (self.docker, host) {
                if DOCKER_SOCKETS.contains(&path.trim_end_matches('/')) {
                    out.hit(i, None, Some(path.to_string()));
                }
            }
        }
    }
}

/// The Secrets a pod spec names: secret volumes, projected secret sources, and the env and
/// envFrom of its (init) containers.
fn secret_names(spec: &Value) -> Vec<&str> {
    let mut names = Vec::new();
    for v in array(spec.get("volumes")) {
        names.extend(v.pointer("/secret/secretName").and_then(Value::as_str));
        let projected = array(v.pointer("/projected/sources")).filter_map(|s| s.pointer("/secret/name"));
        names.extend(projected.filter_map(Value::as_str));
    }
    let containers = array(spec.get("containers")).chain(array(spec.get("initContainers")));
    for c in containers {
        let env = array(c.get("env")).filter_map(|e| e.pointer("/valueFrom/secretKeyRef/name"));
        let env_from = array(c.get("envFrom")).filter_map(|e| e.pointer("/secretRef/name"));
        names.extend(env.chain(env_from).filter_map(Value::as_str));
    }
    names.dedup();
    names
}

/// Where Docker's socket is mounted from (dockershim's, and the Docker engine's).
const DOCKER_SOCKETS: [&str; 4] =
    ["/var/run/docker.sock", "/run/docker.sock", "/var/run/dockershim.sock", "/run/dockershim.sock"];

struct Out<'a> {
    hits: &'a mut Vec<Hit>,
}

impl Out<'_> {
    fn hit(&mut self, hazard: usize, fix: Option<String>, value: Option<String>) {
        self.hit_with(hazard, fix.into_iter().collect(), value.into_iter().collect());
    }

    /// Adds to the object's hit of the rule, if it has one (one hit per rule and object).
    fn hit_with(&mut self, hazard: usize, fix: Vec<String>, values: Vec<String>) {
        let hit = match self.hits.iter().position(|h| h.hazard == hazard) {
            Some(at) => &mut self.hits[at],
            None => {
                self.hits.push(Hit { hazard, fix: Vec::new(), values: Vec::new() });
                let last = self.hits.len() - 1;
                &mut self.hits[last]
            }
        };
        for f in fix {
            if !hit.fix.contains(&f) {
                hit.fix.push(f);
            }
        }
        for v in values {
            if !hit.values.contains(&v) {
                hit.values.push(v);
            }
        }
    }
}

fn array(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

fn annotations(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    obj.get("metadata").and_then(|m| m.get("annotations")).and_then(Value::as_object)
}

fn has_annotation(h: &Hazard, found: Option<&serde_json::Map<String, Value>>) -> bool {
    let Some(found) = found else { return false };
    match (h.prefix(), h.key.as_deref()) {
        (Some(prefix), _) => found.keys().any(|k| k.starts_with(prefix)),
        (None, Some(key)) => found.contains_key(key),
        (None, None) => false,
    }
}

fn ns_name(obj: &Value) -> (&str, Option<&str>) {
    let meta = obj.get("metadata");
    let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("");
    (ns, meta.and_then(|m| m.get("name")).and_then(Value::as_str))
}

/// The ServiceAccount of a legacy token Secret's name, `SA-token-xxxxx` (five characters of
/// the apiserver's random alphabet).
fn token_owner(secret: &str) -> Option<&str> {
    let (sa, suffix) = secret.rsplit_once("-token-")?;
    let random = suffix.len() == 5 && suffix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (random && !sa.is_empty()).then_some(sa)
}

/// `(zone, schedule)` of a `TZ=ZONE SCHEDULE` or `CRON_TZ=ZONE SCHEDULE` schedule.
fn schedule_zone(schedule: &str) -> Option<(&str, &str)> {
    let s = schedule.trim_start();
    let rest = s.strip_prefix("CRON_TZ=").or_else(|| s.strip_prefix("TZ="))?;
    let (zone, schedule) = rest.split_once(char::is_whitespace)?;
    Some((zone, schedule.trim()))
}

/// Where addresses (`false`) and CIDRs (`true`) are, by kind, as SKEL paths (`[*]`: each
/// element).
const IP_FIELDS: &[(&str, &str, bool)] = &[
    ("Service", "spec.clusterIP", false),
    ("Service", "spec.clusterIPs[*]", false),
    ("Service", "spec.loadBalancerIP", false),
    ("Service", "spec.externalIPs[*]", false),
    ("Service", "spec.loadBalancerSourceRanges[*]", true),
    ("NetworkPolicy", "spec.ingress[*].from[*].ipBlock.cidr", true),
    ("NetworkPolicy", "spec.ingress[*].from[*].ipBlock.except[*]", true),
    ("NetworkPolicy", "spec.egress[*].to[*].ipBlock.cidr", true),
    ("NetworkPolicy", "spec.egress[*].to[*].ipBlock.except[*]", true),
    ("Endpoints", "subsets[*].addresses[*].ip", false),
    ("Endpoints", "subsets[*].notReadyAddresses[*].ip", false),
    ("EndpointSlice", "endpoints[*].addresses[*]", false),
    ("Node", "spec.podCIDR", true),
    ("Node", "spec.podCIDRs[*]", true),
];

/// The values a SKEL path with `[*]` reaches, each with its path (`[*]` made `[N]`).
fn reach<'a>(v: &'a Value, pattern: &str, at: String, out: &mut Vec<(String, &'a Value)>) {
    let Some(first) = pattern.split('.').next().filter(|f| !f.is_empty()) else {
        out.push((at, v));
        return;
    };
    let rest = pattern[first.len()..].trim_start_matches('.');
    let sep = if at.is_empty() { "" } else { "." };
    match first.strip_suffix("[*]") {
        Some(key) => {
            for (i, item) in array(v.get(key)).enumerate() {
                reach(item, rest, format!("{at}{sep}{key}[{i}]"), out);
            }
        }
        None => {
            if let Some(next) = v.get(first) {
                reach(next, rest, format!("{at}{sep}{first}"), out);
            }
        }
    }
}

/// The addresses and CIDRs of `obj` that strict validation rejects, as `path: value -> fixed`,
/// and the statements that rewrite each one to what the lenient parser made of it.
fn strict_ip_values(kind: &str, obj: &Value) -> (Vec<String>, Vec<String>) {
    let (mut values, mut fix) = (Vec::new(), Vec::new());
    for (k, pattern, cidr) in IP_FIELDS {
        if *k != kind {
            continue;
        }
        let mut found = Vec::new();
        reach(obj, pattern, String::new(), &mut found);
        for (path, v) in found {
            let Some(text) = v.as_str() else { continue };
            if let Some(fixed) = strict_fixed(text, *cidr) {
                values.push(format!("{path}: {text} -> {fixed}"));
                fix.push(format!("modify(kind == {kind:?} && {path} == {text:?}, {path} = {fixed:?});"));
            }
        }
    }
    (values, fix)
}

/// What strict validation wants instead of `text`, if it rejects it: the IPv4 parts without
/// leading zeros (read as decimal, as the lenient parser read them), the CIDR's network
/// address. `None` when it is accepted, or not an address at all (the API server's other checks
/// are not ours).
fn strict_fixed(text: &str, cidr: bool) -> Option<String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) if cidr => (a, Some(p)),
        _ => (text, None),
    };
    let mut addr = addr.to_string();
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let numbers: Vec<String> = parts
            .iter()
            .map(|p| p.trim_start_matches('0'))
            .map(|p| if p.is_empty() { "0" } else { p }.to_string())
            .collect();
        addr = numbers.join(".");
    }
    let ip: IpAddr = addr.parse().ok()?;
    // `::ffff:1.2.3.4`: the lenient parser read an IPv4 address.
    if let (IpAddr::V6(v6), None) = (ip, prefix) {
        if let Some(v4) = v6.to_ipv4_mapped().filter(|_| addr.contains('.')) {
            return Some(v4.to_string());
        }
    }
    let fixed = match prefix.map(str::parse::<u32>) {
        None => addr,
        Some(Ok(bits)) => {
            let network = match ip {
                IpAddr::V4(v4) if bits <= 32 => {
                    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                    IpAddr::V4((u32::from(v4) & mask).into())
                }
                IpAddr::V6(v6) if bits <= 128 => {
                    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                    IpAddr::V6((u128::from(v6) & mask).into())
                }
                _ => return None,
            };
            format!("{network}/{bits}")
        }
        Some(Err(_)) => return None,
    };
    (fixed != text).then_some(fixed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_data_is_whole() {
        assert_eq!(data_error(), None);
        let all = hazards();
        assert!(all.len() > 40, "{}", all.len());
        let mut ids = std::collections::HashSet::new();
        for h in all {
            assert!(ids.insert(h.id.as_str()), "{} twice", h.id);
            assert!(!h.sources.is_empty() && !h.title.is_empty() && !h.instead.is_empty(), "{}", h.id);
            assert!(h.from() != KubeVersion::NEVER, "{}: no version", h.id);
            for v in [&h.warn_from, &h.error_from].into_iter().flatten() {
                assert!(KubeVersion::parse(v).is_some(), "{}: {v}", h.id);
            }
            let family = h.id.split(':').next().unwrap_or("");
            let expected = serde_yaml::to_string(&family).unwrap_or_default();
            assert!(matches!(serde_yaml::from_str::<Family>(&expected), Ok(f) if f == h.family), "{}: family", h.id);
            match h.family {
                Family::Label | Family::Taint => {
                    assert!(h.key.is_some() && h.id.ends_with(h.key.as_deref().unwrap_or("")), "{}", h.id)
                }
                Family::Annotation => assert!(
                    !h.on.is_empty() && h.id == format!("annotation:{}", h.key.as_deref().unwrap_or("")),
                    "{}",
                    h.id
                ),
                Family::Field => assert!(!h.kinds.is_empty() && h.path.is_some(), "{}", h.id),
                Family::Volume | Family::VolumeCsi => {
                    assert!(h.id.ends_with(h.volume.as_deref().unwrap_or("?")), "{}", h.id)
                }
                Family::DeprecatedApi => assert!(h.kind.is_some() && h.api_version.is_some(), "{}", h.id),
                Family::Validation | Family::Behaviour => {
                    assert!(
                        [CRON_TZ, IP_CIDR, SA_TOKEN, PSP, DOCKER].contains(&h.id.as_str()),
                        "{}: no code finds it",
                        h.id
                    )
                }
            }
            assert!(
                h.fixable() || h.manual.is_some() || matches!(h.family, Family::VolumeCsi | Family::Label),
                "{}: says neither how to fix nor what to do",
                h.id
            );
        }
    }

    fn ids(target: u32, obj: &Value) -> Vec<&'static str> {
        let mut hits = Vec::new();
        let mut tokens = Vec::new();
        Rules::at(KubeVersion::v1(target)).scan(obj, &PodPlaces::default(), &mut hits, &mut tokens);
        hits.iter().map(|h| hazards()[h.hazard].id.as_str()).collect()
    }

    #[test]
    fn severities_follow_the_versions() {
        let h = hazards().iter().find(|h| h.id == "label:node-role.kubernetes.io/master").unwrap();
        assert_eq!(h.severity_at(KubeVersion::v1(19)), None);
        assert_eq!(h.severity_at(KubeVersion::v1(20)), Some(Severity::Warning));
        assert_eq!(h.severity_at(KubeVersion::v1(24)), Some(Severity::Error));
    }

    #[test]
    fn ip_validation() {
        for ok in ["10.0.0.5", "0.0.0.0/0", "fd00::/8", "not-an-ip", "None", "10.0.0.0/33"] {
            assert_eq!(strict_fixed(ok, true), None, "{ok}");
        }
        assert_eq!(strict_fixed("10.0.0.0/8", false), None, "not a CIDR field");
        assert_eq!(strict_fixed("010.000.0.05", false).as_deref(), Some("10.0.0.5"));
        assert_eq!(strict_fixed("192.168.0.5/24", true).as_deref(), Some("192.168.0.0/24"));
        assert_eq!(strict_fixed("fd00::1/8", true).as_deref(), Some("fd00::/8"));
        assert_eq!(strict_fixed("010.1.2.3/8", true).as_deref(), Some("10.0.0.0/8"));
        assert_eq!(strict_fixed("::ffff:192.0.2.10", false).as_deref(), Some("192.0.2.10"));
        assert_eq!(strict_fixed("::ffff:c000:20a", false), None);
        let svc = json!({"kind": "Service", "spec": {"clusterIP": "10.0.0.1", "externalIPs": ["1.2.3.4", "01.2.3.4"]}});
        let (values, fix) = strict_ip_values("Service", &svc);
        assert_eq!(values, ["spec.externalIPs[1]: 01.2.3.4 -> 1.2.3.4"]);
        assert_eq!(
            fix,
            [r#"modify(kind == "Service" && spec.externalIPs[1] == "01.2.3.4", spec.externalIPs[1] = "1.2.3.4");"#]
        );
        let np = json!({"spec": {"ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.1.0.0/8", "except": ["10.1.2.3/16"]}}]}]}});
        let (values, _) = strict_ip_values("NetworkPolicy", &np);
        assert_eq!(
            values,
            [
                "spec.ingress[0].from[1].ipBlock.cidr: 10.1.0.0/8 -> 10.0.0.0/8",
                "spec.ingress[0].from[1].ipBlock.except[0]: 10.1.2.3/16 -> 10.1.0.0/16"
            ]
        );
    }

    #[test]
    fn names_and_schedules() {
        assert_eq!(token_owner("default-token-x7k2p"), Some("default"));
        assert_eq!(token_owner("my-app-token-abcde"), Some("my-app"));
        assert_eq!(token_owner("default-token"), None);
        assert_eq!(token_owner("api-token-ABCDE"), None);
        assert_eq!(schedule_zone("TZ=Europe/Paris 0 3 * * *"), Some(("Europe/Paris", "0 3 * * *")));
        assert_eq!(schedule_zone("CRON_TZ=UTC */5 * * * *"), Some(("UTC", "*/5 * * * *")));
        assert_eq!(schedule_zone("0 3 * * *"), None);
        let t = TokenRef { namespace: "ns".into(), secret: "web-token-abcde".into(), service_account: "web".into() };
        assert_eq!(
            t.insert_statement(),
            r#"insert(@t == 0s, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-token-abcde", "namespace": "ns", "annotations": {"kubernetes.io/service-account.name": "web"}}, "type": "kubernetes.io/service-account-token"});"#
        );
    }

    #[test]
    fn a_taint_tolerated_with_its_replacement_is_fine() {
        let pod = |tolerations: Value| json!({"kind": "Pod", "spec": {"tolerations": tolerations}});
        let master = json!({"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"});
        let cp = json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"});
        assert_eq!(ids(24, &pod(json!([master]))), ["taint:node-role.kubernetes.io/master"]);
        assert!(ids(24, &pod(json!([master, cp]))).is_empty());
        assert!(ids(24, &pod(json!([master, {"operator": "Exists"}]))).is_empty());
        assert!(ids(19, &pod(json!([master]))).is_empty());
    }
}
