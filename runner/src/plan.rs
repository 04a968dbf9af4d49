//! What one trace object becomes on the cluster: its target namespace and name, and the
//! manifest to apply (server-managed fields stripped, pods sent to virtual nodes). Pure: no I/O.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::api::{Gvk, Resource};

/// The label every namespace and node this run creates carries, with the run's id.
pub const RUN_LABEL: &str = "skel/run";
/// The label and value that select virtual (KWOK) nodes.
pub const VIRTUAL_LABEL: (&str, &str) = ("type", "virtual");
/// The taint virtual nodes carry, and pods tolerate.
pub const VIRTUAL_TAINT: &str = "kwok-provider";

/// Metadata the API server owns: a manifest that carries them is refused or misapplied.
const SERVER_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "managedFields",
    "ownerReferences",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The annotations a pod template (and so each pod made from it) gets: the trace object that
/// owns the pod, as the trace's `pod_lifecycles` names it (`batch/v1.CronJob`,
/// `default/hello-simkube`). The replay gives the pod its lifecycle from them.
pub const OWNER_KIND_ANNOTATION: &str = "skel/owner-kind";
pub const OWNER_NAME_ANNOTATION: &str = "skel/owner-name";

/// Where each kind keeps its pod templates: JSON pointers to the template (`/spec/template`;
/// `""`: the object is a pod), as the trace's config says (`trackedObjects.*.podSpecTemplatePaths`,
/// for any kind, custom resources too), else as SimKube and Kubernetes' built-in kinds have them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodTemplates {
    /// Pointers per kind, from the trace's config (whose `group/version.Kind` keys it checked).
    configured: BTreeMap<Gvk, Vec<String>>,
}

impl PodTemplates {
    /// The templates the trace's config names (`None`: the built-in kinds only).
    pub fn new(config: Option<&skel_trace::Config>) -> PodTemplates {
        let configured = config
            .into_iter()
            .flat_map(|c| &c.tracked_objects)
            .filter_map(|(key, t)| {
                let (api_version, kind) = key.rsplit_once('.')?;
                Some((Gvk::new(api_version, kind), t.pod_spec_template_paths.clone()))
            })
            .collect();
        PodTemplates { configured }
    }

    /// Where `gvk`'s objects keep their pod templates (looked up per object: nothing copied).
    pub fn of<'a>(&'a self, gvk: &Gvk) -> impl Iterator<Item = &'a str> + 'a {
        let configured = self.configured.get(gvk);
        let builtin = match configured {
            Some(_) => None,
            None => builtin_template(gvk),
        };
        configured.into_iter().flatten().map(String::as_str).chain(builtin)
    }
}

/// Where SimKube and Kubernetes' built-in kinds keep their pod template.
fn builtin_template(gvk: &Gvk) -> Option<&'static str> {
    Some(match (gvk.group(), gvk.kind.as_str()) {
        ("", "Pod") => "",
        ("", "ReplicationController") => "/spec/template",
        ("", "PodTemplate") => "/template",
        ("apps" | "extensions", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => "/spec/template",
        ("batch", "Job") => "/spec/template",
        ("batch", "CronJob") => "/spec/jobTemplate/spec/template",
        _ => return None,
    })
}

/// How trace namespaces map onto the cluster's.
#[derive(Debug, Clone)]
pub struct Naming {
    /// Prepended to every namespace name: `virtual-` makes `default` into `virtual-default`.
    pub namespace_prefix: String,
    /// This run's id, the value of [`RUN_LABEL`].
    pub run_id: String,
}

impl Naming {
    pub fn namespace(&self, trace_namespace: &str) -> String {
        format!("{}{trace_namespace}", self.namespace_prefix)
    }

    /// The labels of what the run creates (namespaces, virtual nodes).
    pub fn labels(&self) -> Value {
        json!({ "app.kubernetes.io/managed-by": "skel", RUN_LABEL: self.run_id })
    }

    /// The manifest of a namespace this run creates on demand.
    pub fn namespace_manifest(&self, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": self.labels()}})
    }
}

/// Why a namespace name would be refused (a DNS label: at most 63 lowercase letters, digits and
/// `-`, starting and ending with a letter or digit), or `None`.
pub fn namespace_problem(name: &str) -> Option<String> {
    if name.len() > 63 {
        return Some(format!("{} characters, more than 63", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Some(format!("`{c}` is not allowed"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("it starts or ends with `-`".into());
    }
    None
}

/// A valid namespace name close to `name` (before the prefix, which takes `room` characters).
pub fn namespace_suggestion(name: &str, room: usize) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    out.truncate(63usize.saturating_sub(room).max(1));
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "ns".into()
    } else {
        trimmed.to_string()
    }
}

/// One object of the trace, placed on the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The namespace on the cluster (prefixed), for namespaced kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    /// `namespace/name`, or `name`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Where an object goes: namespaced kinds into the prefixed namespace (`default` when the
/// manifest has none), `Namespace` objects renamed with the prefix.
pub fn target(obj: &Value, resource: &Resource, naming: &Naming) -> Result<Target, String> {
    let meta = obj.get("metadata");
    let name = match meta.and_then(|m| m.get("name")) {
        Some(Value::String(n)) if !n.is_empty() => n.as_str(),
        Some(_) => return Err("`metadata.name` is not a non-empty string".into()),
        None => return Err("the object has no `metadata.name`".into()),
    };
    if is_namespace(&resource.gvk) {
        return Ok(Target { namespace: None, name: naming.namespace(name) });
    }
    let namespace = resource.namespaced.then(|| {
        let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).filter(|n| !n.is_empty());
        naming.namespace(ns.unwrap_or("default"))
    });
    Ok(Target { namespace, name: name.to_string() })
}

pub fn is_namespace(gvk: &Gvk) -> bool {
    gvk.api_version == "v1" && gvk.kind == "Namespace"
}

/// The manifest to server-side apply for a trace object: `status` and server-owned metadata
/// removed, name and namespace set to the target, and every pod template (`templates`) made
/// ready for the simulation: sent to the virtual nodes (their selector and toleration), a bare
/// pod's `spec.nodeName` removed (the trace's nodes do not exist here), and labelled with the
/// run and annotated with its owner in the trace (for the pods' lifecycles).
pub fn manifest(obj: Value, gvk: &Gvk, target: &Target, naming: &Naming, templates: &PodTemplates) -> Value {
    let mut out = obj;
    let Some(map) = out.as_object_mut() else { return out };
    map.remove("status");
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    // The owner as the trace names it, before the name and namespace change, for the pod
    // templates (an object without any needs none).
    // (A namespaced object without a namespace is in `default`, as `target` places it.)
    let owner = templates.of(gvk).next().is_some().then(|| {
        let field = |k: &str| meta.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
        let ns = field("namespace").or(target.namespace.as_ref().map(|_| "default")).unwrap_or("");
        format!("{ns}/{}", field("name").unwrap_or(""))
    });
    if let Some(meta) = meta.as_object_mut() {
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
        meta.insert("name".into(), Value::String(target.name.clone()));
        match &target.namespace {
            Some(ns) => meta.insert("namespace".into(), Value::String(ns.clone())),
            None => meta.remove("namespace"),
        };
        if is_namespace(gvk) {
            let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
            if let (Some(labels), Value::Object(ours)) = (labels.as_object_mut(), naming.labels()) {
                labels.extend(ours);
            }
        }
    }
    let owner = owner.unwrap_or_default();
    for pointer in templates.of(gvk) {
        let Some(mut template) = out.pointer_mut(pointer).and_then(Value::as_object_mut) else { continue };
        // A path to what holds the template (SimKube's `/spec` for a ReplicaSet): the template.
        if !template.contains_key("spec") && template.get("template").is_some_and(Value::is_object) {
            match template.get_mut("template").and_then(Value::as_object_mut) {
                Some(inner) => template = inner,
                None => continue,
            }
        }
        if let Some(meta) = object_entry(template, "metadata") {
            if let Some(labels) = object_entry(meta, "labels") {
                labels.insert(RUN_LABEL.into(), Value::String(naming.run_id.clone()));
            }
            if let Some(annotations) = object_entry(meta, "annotations") {
                // Kept when there (a manifest prepared already, whose namespace is the target's).
                annotations.entry(OWNER_KIND_ANNOTATION).or_insert_with(|| Value::String(gvk.trace_key()));
                annotations.entry(OWNER_NAME_ANNOTATION).or_insert_with(|| Value::String(owner.clone()));
            }
        }
        if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
            if pointer.is_empty() {
                spec.remove("nodeName");
            }
            to_virtual_nodes(spec);
        }
    }
    out
}

/// The object at `map[key]`, made one if it is missing or not an object.
fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

/// Adds `nodeSelector: {type: virtual}` and the `kwok-provider` toleration to a pod spec.
fn to_virtual_nodes(spec: &mut Map<String, Value>) {
    let selector = spec.entry("nodeSelector").or_insert_with(|| Value::Object(Map::new()));
    if !selector.is_object() {
        *selector = Value::Object(Map::new());
    }
    if let Some(selector) = selector.as_object_mut() {
        selector.insert(VIRTUAL_LABEL.0.into(), Value::String(VIRTUAL_LABEL.1.into()));
    }
    let toleration = json!({"key": VIRTUAL_TAINT, "operator": "Exists", "effect": "NoSchedule"});
    let tolerations = spec.entry("tolerations").or_insert_with(|| Value::Array(Vec::new()));
    if !tolerations.is_array() {
        *tolerations = Value::Array(Vec::new());
    }
    if let Some(list) = tolerations.as_array_mut() {
        if !list.contains(&toleration) {
            list.push(toleration);
        }
    }
}

/// Node size when `--node-template` gives none: a large machine, so that scheduling is limited
/// by what the trace asks for rather than by the fake nodes.
const DEFAULT_ALLOCATABLE: (&str, &str, &str) = ("32", "256Gi", "110");

/// The name of virtual node `i`: `{prefix}node-{i}`.
pub fn virtual_node_name(naming: &Naming, i: usize) -> String {
    format!("{}node-{i}", naming.namespace_prefix)
}

/// A KWOK node: the template's labels, annotations, taints and allocatable (when given), the
/// KWOK annotation, the `type: virtual` label, the `kwok-provider` taint and the run's labels.
pub fn virtual_node(i: usize, template: Option<&Value>, naming: &Naming) -> Value {
    let name = virtual_node_name(naming, i);
    let mut node = template.cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    let Some(map) = node.as_object_mut() else { return node };
    map.insert("apiVersion".into(), json!("v1"));
    map.insert("kind".into(), json!("Node"));
    let template_status = map.remove("status");
    let mut meta = match map.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for key in SERVER_METADATA {
        meta.remove(*key);
    }
    meta.remove("namespace");
    meta.insert("name".into(), json!(name));
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = annotations.as_object_mut() {
        a.insert("kwok.x-k8s.io/node".into(), json!("fake"));
        a.insert("node.alpha.kubernetes.io/ttl".into(), json!("0"));
    }
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert(VIRTUAL_LABEL.0.into(), json!(VIRTUAL_LABEL.1));
        l.insert("kubernetes.io/hostname".into(), json!(name));
        l.entry("kubernetes.io/os").or_insert_with(|| json!("linux"));
        l.entry("kubernetes.io/arch").or_insert_with(|| json!("amd64"));
        l.entry("node-role.kubernetes.io/agent").or_insert_with(|| json!(""));
        if let Value::Object(ours) = naming.labels() {
            l.extend(ours);
        }
    }
    map.insert("metadata".into(), Value::Object(meta));
    let spec = map.entry("spec").or_insert_with(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.remove("providerID");
        let taint = json!({"key": VIRTUAL_TAINT, "value": "true", "effect": "NoSchedule"});
        let taints = spec.entry("taints").or_insert_with(|| json!([]));
        if let Some(list) = taints.as_array_mut() {
            if !list.iter().any(|t| t.get("key") == Some(&json!(VIRTUAL_TAINT))) {
                list.push(taint);
            }
        }
    }
    let allocatable =
        template_status.as_ref().and_then(|s| s.get("allocatable")).filter(|a| a.is_object()).cloned().unwrap_or_else(
            || {
                let (cpu, memory, pods) = DEFAULT_ALLOCATABLE;
                json!({"cpu": cpu, "memory": memory, "pods": pods})
            },
        );
    let capacity = template_status
        .as_ref()
        .and_then(|s| s.get("capacity"))
        .filter(|c| c.is_object())
        .cloned()
        .unwrap_or_else(|| allocatable.clone());
    map.insert("status".into(), json!({"allocatable": allocatable, "capacity": capacity}));
    node
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn naming() -> Naming {
        Naming { namespace_prefix: "virtual-".into(), run_id: "r1".into() }
    }

    #[test]
    fn deployment_is_placed_stripped_and_sent_to_virtual_nodes() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "5",
                         "creationTimestamp": "t", "managedFields": [], "ownerReferences": [], "labels": {"a": "b"}},
            "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}, "containers": []}}},
            "status": {"replicas": 3}
        });
        let res = Resource::new("apps/v1", "Deployment", "deployments", true);
        let t = target(&obj, &res, &naming()).unwrap();
        assert_eq!(t.display(), "virtual-shop/web");
        let m = manifest(obj.clone(), &res.gvk, &t, &naming(), &PodTemplates::default());
        assert_eq!(
            m,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "virtual-shop", "labels": {"a": "b"}},
                "spec": {"template": {
                    "metadata": {"labels": {"skel/run": "r1"},
                                 "annotations": {"skel/owner-kind": "apps/v1.Deployment", "skel/owner-name": "shop/web"}},
                    "spec": {
                    "nodeSelector": {"disk": "ssd", "type": "virtual"}, "containers": [],
                    "tolerations": [{"key": "kwok-provider", "operator": "Exists", "effect": "NoSchedule"}]}}}
            })
        );
        // Applying the prepared manifest again changes nothing.
        assert_eq!(manifest(m.clone(), &res.gvk, &t, &naming(), &PodTemplates::default()), m);
    }

    #[test]
    fn cronjob_template_and_bare_pod() {
        let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        let res = Resource::new("batch/v1", "CronJob", "cronjobs", true);
        let t = target(&cj, &res, &naming()).unwrap();
        assert_eq!(t.namespace.as_deref(), Some("virtual-default"));
        let m = manifest(cj, &res.gvk, &t, &naming(), &PodTemplates::default());
        assert_eq!(m["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nodeSelector"]["type"], "virtual");

        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
            "spec": {"nodeName": "ip-10-0-0-1", "tolerations": [{"key": "kwok-provider", "operator": "Exists", "effect": "NoSchedule"}]}});
        let res = Resource::new("v1", "Pod", "pods", true);
        let t = target(&pod, &res, &naming()).unwrap();
        let m = manifest(pod, &res.gvk, &t, &naming(), &PodTemplates::default());
        assert!(m["spec"].get("nodeName").is_none());
        assert_eq!(m["spec"]["tolerations"].as_array().unwrap().len(), 1);
        // A bare pod is its own owner: the trace names its lifecycles after it.
        assert_eq!(m["metadata"]["annotations"]["skel/owner-kind"], "v1.Pod");
        assert_eq!(m["metadata"]["annotations"]["skel/owner-name"], "a/p");
        assert_eq!(m["metadata"]["labels"]["skel/run"], "r1");
        assert_eq!(m["metadata"]["namespace"], "virtual-a");
    }

    /// A custom resource's pods get the virtual nodes and the owner too, where the trace's
    /// config says its templates are; a configured path replaces the built-in one.
    #[test]
    fn pod_templates_come_from_the_trace_config() {
        let config = skel_trace::Config::from_json_value(&json!({"trackedObjects": {
            "example.com/v1.Batch": {"podSpecTemplatePaths": ["/spec/workers/template", "/spec/driver"]},
            "apps/v1.ReplicaSet": {}
        }}))
        .unwrap();
        let templates = PodTemplates::new(Some(&config));
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Batch", "metadata": {"name": "b", "namespace": "x"},
            "spec": {"workers": {"template": {"spec": {"containers": []}}}, "driver": {"spec": {}}}});
        let res = Resource::new("example.com/v1", "Batch", "batches", true);
        let t = target(&obj, &res, &naming()).unwrap();
        let m = manifest(obj, &res.gvk, &t, &naming(), &templates);
        for template in [&m["spec"]["workers"]["template"], &m["spec"]["driver"]] {
            assert_eq!(template["spec"]["nodeSelector"]["type"], "virtual", "{template}");
            assert_eq!(template["metadata"]["annotations"]["skel/owner-kind"], "example.com/v1.Batch");
            assert_eq!(template["metadata"]["annotations"]["skel/owner-name"], "x/b");
        }
        // Without the config the kind has no known templates: nothing is added.
        let plain = manifest(m.clone(), &res.gvk, &t, &naming(), &PodTemplates::default());
        assert_eq!(plain, m);
        // SimKube's path for a ReplicaSet is its `spec`, which holds the template.
        let rs = Gvk::new("apps/v1", "ReplicaSet");
        assert_eq!(templates.of(&rs).collect::<Vec<_>>(), ["/spec"]);
        assert_eq!(PodTemplates::default().of(&rs).collect::<Vec<_>>(), ["/spec/template"]);
        let obj = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
            "spec": {"template": {"spec": {"containers": []}}}});
        let res = Resource::new("apps/v1", "ReplicaSet", "replicasets", true);
        let t = target(&obj, &res, &naming()).unwrap();
        let m = manifest(obj, &res.gvk, &t, &naming(), &templates);
        assert_eq!(m["spec"]["template"]["spec"]["nodeSelector"]["type"], "virtual");
        assert_eq!(m["spec"]["template"]["metadata"]["annotations"]["skel/owner-name"], "default/r");
        assert!(m["spec"].get("metadata").is_none());
        assert_eq!(PodTemplates::default().of(&Gvk::new("v1", "PodTemplate")).collect::<Vec<_>>(), ["/template"]);
    }

    #[test]
    fn namespaces_are_renamed_and_labelled_cluster_objects_are_not_moved() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let res = crate::api::namespaces();
        let t = target(&ns, &res, &naming()).unwrap();
        assert_eq!(t, Target { namespace: None, name: "virtual-shop".into() });
        let m = manifest(ns, &res.gvk, &t, &naming(), &PodTemplates::default());
        assert_eq!(m["metadata"]["labels"]["skel/run"], "r1");

        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "r", "namespace": "stray"}});
        let res = Resource::new("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", false);
        let t = target(&role, &res, &naming()).unwrap();
        assert_eq!(t.namespace, None);
        assert!(manifest(role, &res.gvk, &t, &naming(), &PodTemplates::default())["metadata"]
            .get("namespace")
            .is_none());
    }

    #[test]
    fn namespace_names() {
        assert_eq!(namespace_problem("virtual-shop"), None);
        assert_eq!(namespace_problem("virtual-data.pipeline").unwrap(), "`.` is not allowed");
        assert_eq!(namespace_problem(&"a".repeat(64)).unwrap(), "64 characters, more than 63");
        assert!(namespace_problem("x-").is_some());
        assert_eq!(namespace_suggestion("data.pipeline", 8), "data-pipeline");
        assert_eq!(namespace_suggestion("Team_A", 8), "team-a");
        assert_eq!(namespace_suggestion(&"b".repeat(60), 8).len(), 55);
    }

    #[test]
    fn objects_without_a_name_are_refused() {
        let res = Resource::new("v1", "Pod", "pods", true);
        let e = target(&json!({"kind": "Pod", "metadata": {}}), &res, &naming()).unwrap_err();
        assert!(e.contains("metadata.name"), "{e}");
        let e = target(&json!({"kind": "Pod", "metadata": {"name": 3}}), &res, &naming()).unwrap_err();
        assert!(e.contains("not a non-empty string"), "{e}");
    }

    #[test]
    fn virtual_nodes_from_default_and_template() {
        let n = virtual_node(2, None, &naming());
        assert_eq!(n["metadata"]["name"], "virtual-node-2");
        assert_eq!(n["metadata"]["annotations"]["kwok.x-k8s.io/node"], "fake");
        assert_eq!(n["metadata"]["labels"]["type"], "virtual");
        assert_eq!(n["spec"]["taints"][0]["key"], "kwok-provider");
        assert_eq!(n["status"]["allocatable"]["pods"], "110");
        let tpl = json!({"metadata": {"name": "x", "uid": "u", "labels": {"zone": "a"}},
            "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "20"}}});
        let n = virtual_node(0, Some(&tpl), &naming());
        assert_eq!(n["metadata"]["name"], "virtual-node-0");
        assert!(n["metadata"].get("uid").is_none());
        assert_eq!(n["metadata"]["labels"]["zone"], "a");
        assert_eq!(n["status"]["allocatable"]["cpu"], "4");
        assert_eq!(n["status"]["capacity"]["cpu"], "4");
    }
}
