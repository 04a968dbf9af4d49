//! The API resources each Kubernetes 1.16–1.35 serves, which `skel run --dry-run --server-version`
//! uses in place of a cluster's discovery: the rows of skel's API table (`skel/data/apis.yaml`, read
//! by `skel::kube::apis`) that have a REST resource.
//!
//! What the table leaves out: alpha APIs and beta APIs that are off by default (beta APIs added from
//! 1.24 on, KEP-3136), except those that a removal row names and their replacements; subresource-only
//! kinds (`Scale`, `Eviction`, `TokenRequest`); config-file types (`audit.k8s.io`,
//! `kubescheduler.config.k8s.io`, ...). A group it holds, it holds whole: the dry run refuses a kind of
//! such a group that the table does not serve at the version, and takes a kind of any other group for a
//! custom resource.

use std::sync::OnceLock;

use skel::kube::apis::{self, Api};

/// One API resource and the minor versions (of Kubernetes 1.x) that serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinApi {
    /// `""` for the core group.
    pub group: &'static str,
    /// `v1`, `v1beta1`, ...
    pub version: &'static str,
    /// `Deployment`
    pub kind: &'static str,
    /// `deployments`
    pub plural: &'static str,
    pub namespaced: bool,
    /// The first minor version that serves it; `0` for "before 1.16".
    pub added: u32,
    /// The first minor version that no longer serves it.
    pub removed: Option<u32>,
    on_by_default: bool,
}

impl BuiltinApi {
    /// The resource of a row of the table; `None` for a config-file type.
    fn of(api: &'static Api) -> Option<BuiltinApi> {
        let rest = api.rest.as_ref()?;
        Some(BuiltinApi {
            group: &api.group,
            version: &api.version,
            kind: &api.kind,
            plural: &rest.plural,
            namespaced: rest.namespaced,
            added: api.added.map_or(0, |v| v.minor),
            removed: api.removed.map(|v| v.minor),
            on_by_default: api.on_by_default,
        })
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        skel::kube::api_version(self.group, self.version)
    }

    /// Whether Kubernetes 1.`minor` serves it (when enabled; see [`BuiltinApi::on_by_default`]).
    pub fn served_at(&self, minor: u32) -> bool {
        self.added <= minor && self.removed.is_none_or(|removed| minor < removed)
    }

    /// Whether a cluster serves it without `--runtime-config`: false for the alpha APIs in the table and
    /// for the beta APIs added from 1.24 on that are still off by default (KEP-3136).
    pub fn on_by_default(&self) -> bool {
        self.on_by_default
    }
}

/// The oldest minor version the table knows.
pub const OLDEST: u32 = apis::OLDEST.minor;
/// The newest minor version the table knows.
pub const NEWEST: u32 = apis::NEWEST.minor;

/// Every resource the table knows, in the data's order.
pub fn apis() -> &'static [BuiltinApi] {
    static APIS: OnceLock<Vec<BuiltinApi>> = OnceLock::new();
    APIS.get_or_init(|| apis::apis().iter().filter_map(BuiltinApi::of).collect())
}

/// The resources Kubernetes 1.`minor` serves (alpha and off-by-default beta entries included; see
/// [`BuiltinApi::on_by_default`]).
pub fn served_at(minor: u32) -> impl Iterator<Item = &'static BuiltinApi> {
    apis().iter().filter(move |api| api.served_at(minor))
}

/// The entry for (`apiVersion` — `group/version`, or `v1` for core — and `kind`), whichever versions
/// serve it.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static BuiltinApi> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    apis().iter().find(|api| api.group == group && api.version == version && api.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_of_the_data_is_in_the_table() {
        let rest = apis::apis().iter().filter(|a| a.rest.is_some()).count();
        assert!(rest > 150, "the API data did not load: {rest} resources");
        assert_eq!(apis().len(), rest);
        // Config-file types are not resources.
        assert!(apis::apis().iter().any(|a| a.api_version() == "audit.k8s.io/v1" && a.kind == "Policy"));
        assert_eq!(lookup("audit.k8s.io/v1", "Policy"), None);
    }

    #[test]
    fn cronjob_versions() {
        let served =
            |minor, api_version| served_at(minor).any(|a| a.api_version() == api_version && a.kind == "CronJob");
        assert!(!served(25, "batch/v1beta1"));
        assert!(served(25, "batch/v1"));
        assert!(served(21, "batch/v1beta1"));
        assert!(served(21, "batch/v1"));
        assert!(!served(20, "batch/v1"));
    }

    #[test]
    fn lookups() {
        let pod = lookup("v1", "Pod").expect("Pod");
        assert_eq!((pod.group, pod.plural, pod.namespaced), ("", "pods", true));
        let deployment = lookup("apps/v1", "Deployment").expect("Deployment");
        assert_eq!((deployment.group, deployment.version, deployment.plural), ("apps", "v1", "deployments"));
        assert_eq!(lookup("apps/v1", "Pod"), None);
        assert_eq!(lookup("extensions/v1beta1", "Ingress").and_then(|a| a.removed), Some(22));
        assert_eq!(lookup("example.com/v1", "Widget"), None);
        let slice = lookup("resource.k8s.io/v1", "ResourceSlice").expect("ResourceSlice");
        assert_eq!((slice.plural, slice.namespaced, slice.added), ("resourceslices", false, 34));
    }

    #[test]
    fn every_version_serves_the_basics() {
        for minor in OLDEST..=NEWEST {
            for (api_version, kind) in
                [("v1", "Pod"), ("apps/v1", "Deployment"), ("rbac.authorization.k8s.io/v1", "Role")]
            {
                assert!(lookup(api_version, kind).is_some_and(|a| a.served_at(minor)), "1.{minor} {kind}");
            }
            // Some FlowSchema version is served from 1.20 (flowcontrol v1beta1) on.
            assert!(served_at(minor).any(|a| a.kind == "FlowSchema" && a.on_by_default()) || minor < 20, "1.{minor}");
            // Some HorizontalPodAutoscaler version with metrics (v2beta2, then v2) is served throughout.
            assert!(served_at(minor).any(|a| a.kind == "HorizontalPodAutoscaler" && a.version.starts_with("v2")));
        }
        assert!(lookup("extensions/v1beta1", "Deployment").is_some_and(|a| !a.served_at(OLDEST)));
        assert_eq!(lookup("v1alpha1", "Pod"), None);
        assert!(!lookup("storage.k8s.io/v1alpha1", "VolumeAttributesClass").is_some_and(BuiltinApi::on_by_default));
        assert!(lookup("networking.k8s.io/v1beta1", "IPAddress").is_some_and(|a| !a.on_by_default()));
        assert!(lookup("resource.k8s.io/v1beta1", "ResourceClaim").is_some_and(|a| !a.on_by_default()));
        assert!(lookup("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema").is_some_and(BuiltinApi::on_by_default));
        assert!(lookup("networking.k8s.io/v1beta1", "Ingress").is_some_and(BuiltinApi::on_by_default));
    }
}
