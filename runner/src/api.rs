//! Names of what a cluster serves: a trace object's group/version/kind ([`Gvk`]), the resource
//! that serves it ([`Resource`]: plural, scope, URL paths), and a cluster's answer ([`Served`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// An object's `apiVersion` and `kind`, as the trace names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    pub api_version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(api_version: &str, kind: &str) -> Gvk {
        Gvk { api_version: api_version.to_string(), kind: kind.to_string() }
    }

    /// The object's `apiVersion` and `kind`, when both are strings.
    pub fn of(obj: &Value) -> Option<Gvk> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        Some(Gvk::new(api_version, kind))
    }

    /// `group/version.Kind`, as a trace's config and `pod_lifecycles` name a kind.
    pub fn trace_key(&self) -> String {
        format!("{}.{}", self.api_version, self.kind)
    }

    /// `""` for the core group (`apiVersion: v1`).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    pub fn version(&self) -> &str {
        self.api_version.rsplit_once('/').map_or(self.api_version.as_str(), |(_, v)| v)
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)
    }
}

/// The API resource serving a kind: where its objects live and whether they are namespaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub gvk: Gvk,
    /// The resource name in URLs, `deployments`.
    pub plural: String,
    pub namespaced: bool,
}

impl Resource {
    pub fn new(api_version: &str, kind: &str, plural: &str, namespaced: bool) -> Resource {
        Resource { gvk: Gvk::new(api_version, kind), plural: plural.to_string(), namespaced }
    }

    /// `/api/v1` or `/apis/GROUP/VERSION`.
    fn prefix(&self) -> String {
        match self.gvk.group() {
            "" => format!("/api/{}", self.gvk.version()),
            g => format!("/apis/{g}/{}", self.gvk.version()),
        }
    }

    /// The collection's URL path: `/apis/apps/v1/namespaces/NS/deployments`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match (namespace, self.namespaced) {
            (Some(ns), true) => format!("{}/namespaces/{ns}/{}", self.prefix(), self.plural),
            _ => format!("{}/{}", self.prefix(), self.plural),
        }
    }

    /// `group/resource`, as RBAC names it (`apps/deployments`, `pods`).
    pub fn rbac_name(&self) -> String {
        match self.gvk.group() {
            "" => self.plural.clone(),
            g => format!("{g}/{}", self.plural),
        }
    }
}

/// The resources a cluster serves, for the kinds it was asked about (shared: every request
/// names its resource).
#[derive(Debug, Clone, Default)]
pub struct Served {
    resources: HashMap<Gvk, Arc<Resource>>,
}

impl Served {
    pub fn insert(&mut self, resource: Resource) {
        self.resources.insert(resource.gvk.clone(), Arc::new(resource));
    }

    pub fn get(&self, gvk: &Gvk) -> Option<Arc<Resource>> {
        self.resources.get(gvk).cloned()
    }
}

/// The `Namespace` resource, which every run uses.
pub fn namespaces() -> Resource {
    Resource::new("v1", "Namespace", "namespaces", false)
}

/// The `Node` resource, for virtual nodes.
pub fn nodes() -> Resource {
    Resource::new("v1", "Node", "nodes", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let d = Resource::new("apps/v1", "Deployment", "deployments", true);
        assert_eq!(d.collection_path(Some("ns")), "/apis/apps/v1/namespaces/ns/deployments");
        assert_eq!(d.rbac_name(), "apps/deployments");
        let n = namespaces();
        assert_eq!(n.collection_path(Some("ignored")), "/api/v1/namespaces");
        assert_eq!(Gvk::new("v1", "Pod").group(), "");
        assert_eq!(Gvk::new("batch/v1beta1", "CronJob").version(), "v1beta1");
    }
}
