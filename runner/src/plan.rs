//! What one trace object becomes on the cluster: its target namespace and name, and the
//! manifest to apply (server-managed fields stripped, pods sent to virtual nodes). Pure: no I/O.

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

/// Where each kind keeps its pod template's spec.
fn pod_spec_path(gvk: &Gvk) -> Option<&'static [&'static str]> {
    match (gvk.group(), gvk.kind.as_str()) {
        ("", "Pod") => Some(&["spec"]),
        ("", "ReplicationController" | "PodTemplate") => Some(&["spec", "template", "spec"]),
        ("apps" | "extensions", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            Some(&["spec", "template", "spec"])
        }
        ("batch", "Job") => Some(&["spec", "template", "spec"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
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
/// removed, name and namespace set to the target, a bare pod's `spec.nodeName` removed (the
/// trace's nodes do not exist here), and every pod template given the virtual-node selector and
/// toleration.
pub fn manifest(obj: Value, gvk: &Gvk, target: &Target, naming: &Naming) -> Value {
    let mut out = obj;
    let Some(map) = out.as_object_mut() else { return out };
    map.remove("status");
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
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
    if let Some(path) = pod_spec_path(gvk) {
        if let Some(spec) = object_at(&mut out, path) {
            if gvk.kind == "Pod" {
                spec.remove("nodeName");
            }
            to_virtual_nodes(spec);
        }
    }
    out
}

/// The object at `path`, when every step is an object.
fn object_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object_mut()?.get_mut(*key)?;
    }
    cur.as_object_mut()
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
        let m = manifest(obj.clone(), &res.gvk, &t, &naming());
        assert_eq!(
            m,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "virtual-shop", "labels": {"a": "b"}},
                "spec": {"template": {"spec": {
                    "nodeSelector": {"disk": "ssd", "type": "virtual"}, "containers": [],
                    "tolerations": [{"key": "kwok-provider", "operator": "Exists", "effect": "NoSchedule"}]}}}
            })
        );
        // Applying the prepared manifest again changes nothing.
        assert_eq!(manifest(m.clone(), &res.gvk, &t, &naming()), m);
    }

    #[test]
    fn cronjob_template_and_bare_pod() {
        let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        let res = Resource::new("batch/v1", "CronJob", "cronjobs", true);
        let t = target(&cj, &res, &naming()).unwrap();
        assert_eq!(t.namespace.as_deref(), Some("virtual-default"));
        let m = manifest(cj, &res.gvk, &t, &naming());
        assert_eq!(m["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nodeSelector"]["type"], "virtual");

        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
            "spec": {"nodeName": "ip-10-0-0-1", "tolerations": [{"key": "kwok-provider", "operator": "Exists", "effect": "NoSchedule"}]}});
        let res = Resource::new("v1", "Pod", "pods", true);
        let t = target(&pod, &res, &naming()).unwrap();
        let m = manifest(pod, &res.gvk, &t, &naming());
        assert!(m["spec"].get("nodeName").is_none());
        assert_eq!(m["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn namespaces_are_renamed_and_labelled_cluster_objects_are_not_moved() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let res = crate::api::namespaces();
        let t = target(&ns, &res, &naming()).unwrap();
        assert_eq!(t, Target { namespace: None, name: "virtual-shop".into() });
        let m = manifest(ns, &res.gvk, &t, &naming());
        assert_eq!(m["metadata"]["labels"]["skel/run"], "r1");

        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "r", "namespace": "stray"}});
        let res = Resource::new("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", false);
        let t = target(&role, &res, &naming()).unwrap();
        assert_eq!(t.namespace, None);
        assert!(manifest(role, &res.gvk, &t, &naming())["metadata"].get("namespace").is_none());
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
