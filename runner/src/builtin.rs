//! The built-in table of which Kubernetes API resources (group/version/kind) each Kubernetes 1.16–1.35
//! serves, which `skel run --dry-run --server-version` uses in place of a cluster's discovery. Sources:
//! the deprecation guide (kubernetes.io/docs/reference/using-api/deprecation-guide/), release notes and
//! KEPs, checked against the per-version API specs that Arnavion/k8s-openapi generates from
//! kubernetes/kubernetes `api/openapi-spec` (1.33–1.37 are in the k8s-openapi 0.29 this workspace uses).
//! Every removal also in `skel/data/api-removals.yaml` must agree with it; the tests at the bottom check.
//!
//! What the table leaves out: alpha APIs and beta APIs that are off by default (beta APIs added from 1.24
//! on, KEP-3136), except the few that the removal data names and their replacements; `resource.k8s.io`
//! (dynamic resource allocation); subresource-only kinds (`Scale`, `Eviction`, `TokenRequest`); config
//! file types that are not REST resources (`audit.k8s.io`, `kubescheduler.config.k8s.io`, ...).

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
}

impl BuiltinApi {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        skel::upgrade::api_version(self.group, self.version)
    }

    /// Whether Kubernetes 1.`minor` serves it (when enabled; see [`BuiltinApi::on_by_default`]).
    pub fn served_at(&self, minor: u32) -> bool {
        self.added <= minor && self.removed.is_none_or(|removed| minor < removed)
    }

    /// Whether a cluster serves it without `--runtime-config`: false for the alpha APIs in the table and
    /// for the beta APIs added from 1.24 on that are still off by default (KEP-3136).
    pub fn on_by_default(&self) -> bool {
        !(self.version.contains("alpha") || OFF_BY_DEFAULT_BETAS.contains(&(self.group, self.version, self.kind)))
    }
}

/// Beta entries in the table that a cluster serves only when enabled (beta APIs added from 1.24 on).
const OFF_BY_DEFAULT_BETAS: &[(&str, &str, &str)] = &[
    ("certificates.k8s.io", "v1beta1", "ClusterTrustBundle"),
    ("networking.k8s.io", "v1beta1", "IPAddress"),
    ("networking.k8s.io", "v1beta1", "ServiceCIDR"),
    ("storage.k8s.io", "v1beta1", "VolumeAttributesClass"),
    ("storagemigration.k8s.io", "v1beta1", "StorageVersionMigration"),
];

/// The oldest minor version the table knows.
pub const OLDEST: u32 = 16;
/// The newest minor version the table knows.
pub const NEWEST: u32 = 35;

const NS: bool = true;
const CLUSTER: bool = false;

const fn api(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    added: u32,
    removed: Option<u32>,
) -> BuiltinApi {
    BuiltinApi { group, version, kind, plural, namespaced, added, removed }
}

/// Every resource the table knows, by group.
pub const APIS: &[BuiltinApi] = &[
    // ---- core ----
    api("", "v1", "Binding", "bindings", NS, 0, None),
    api("", "v1", "ComponentStatus", "componentstatuses", CLUSTER, 0, None),
    api("", "v1", "ConfigMap", "configmaps", NS, 0, None),
    api("", "v1", "Endpoints", "endpoints", NS, 0, None),
    api("", "v1", "Event", "events", NS, 0, None),
    api("", "v1", "LimitRange", "limitranges", NS, 0, None),
    api("", "v1", "Namespace", "namespaces", CLUSTER, 0, None),
    api("", "v1", "Node", "nodes", CLUSTER, 0, None),
    api("", "v1", "PersistentVolume", "persistentvolumes", CLUSTER, 0, None),
    api("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", NS, 0, None),
    api("", "v1", "Pod", "pods", NS, 0, None),
    api("", "v1", "PodTemplate", "podtemplates", NS, 0, None),
    api("", "v1", "ReplicationController", "replicationcontrollers", NS, 0, None),
    api("", "v1", "ResourceQuota", "resourcequotas", NS, 0, None),
    api("", "v1", "Secret", "secrets", NS, 0, None),
    api("", "v1", "Service", "services", NS, 0, None),
    api("", "v1", "ServiceAccount", "serviceaccounts", NS, 0, None),
    // ---- apps ----
    api("apps", "v1", "ControllerRevision", "controllerrevisions", NS, 0, None),
    api("apps", "v1", "DaemonSet", "daemonsets", NS, 0, None),
    api("apps", "v1", "Deployment", "deployments", NS, 0, None),
    api("apps", "v1", "ReplicaSet", "replicasets", NS, 0, None),
    api("apps", "v1", "StatefulSet", "statefulsets", NS, 0, None),
    api("apps", "v1beta1", "ControllerRevision", "controllerrevisions", NS, 0, Some(16)),
    api("apps", "v1beta1", "Deployment", "deployments", NS, 0, Some(16)),
    api("apps", "v1beta1", "StatefulSet", "statefulsets", NS, 0, Some(16)),
    api("apps", "v1beta2", "ControllerRevision", "controllerrevisions", NS, 0, Some(16)),
    api("apps", "v1beta2", "DaemonSet", "daemonsets", NS, 0, Some(16)),
    api("apps", "v1beta2", "Deployment", "deployments", NS, 0, Some(16)),
    api("apps", "v1beta2", "ReplicaSet", "replicasets", NS, 0, Some(16)),
    api("apps", "v1beta2", "StatefulSet", "statefulsets", NS, 0, Some(16)),
    // ---- extensions ----
    api("extensions", "v1beta1", "DaemonSet", "daemonsets", NS, 0, Some(16)),
    api("extensions", "v1beta1", "Deployment", "deployments", NS, 0, Some(16)),
    api("extensions", "v1beta1", "Ingress", "ingresses", NS, 0, Some(22)),
    api("extensions", "v1beta1", "NetworkPolicy", "networkpolicies", NS, 0, Some(16)),
    api("extensions", "v1beta1", "PodSecurityPolicy", "podsecuritypolicies", CLUSTER, 0, Some(16)),
    api("extensions", "v1beta1", "ReplicaSet", "replicasets", NS, 0, Some(16)),
    // ---- batch ----
    api("batch", "v1", "CronJob", "cronjobs", NS, 21, None),
    api("batch", "v1", "Job", "jobs", NS, 0, None),
    api("batch", "v1beta1", "CronJob", "cronjobs", NS, 0, Some(25)),
    // ---- networking.k8s.io ----
    api("networking.k8s.io", "v1", "IPAddress", "ipaddresses", CLUSTER, 33, None),
    api("networking.k8s.io", "v1", "Ingress", "ingresses", NS, 19, None),
    api("networking.k8s.io", "v1", "IngressClass", "ingressclasses", CLUSTER, 19, None),
    api("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", NS, 0, None),
    api("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", CLUSTER, 33, None),
    api("networking.k8s.io", "v1beta1", "IPAddress", "ipaddresses", CLUSTER, 31, Some(37)),
    api("networking.k8s.io", "v1beta1", "Ingress", "ingresses", NS, 0, Some(22)),
    api("networking.k8s.io", "v1beta1", "IngressClass", "ingressclasses", CLUSTER, 18, Some(22)),
    api("networking.k8s.io", "v1beta1", "ServiceCIDR", "servicecidrs", CLUSTER, 31, Some(37)),
    // ---- policy ----
    api("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", NS, 21, None),
    api("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets", NS, 0, Some(25)),
    api("policy", "v1beta1", "PodSecurityPolicy", "podsecuritypolicies", CLUSTER, 0, Some(25)),
    // ---- rbac.authorization.k8s.io ----
    api("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", CLUSTER, 0, None),
    api("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", CLUSTER, 0, None),
    api("rbac.authorization.k8s.io", "v1", "Role", "roles", NS, 0, None),
    api("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", NS, 0, None),
    api("rbac.authorization.k8s.io", "v1beta1", "ClusterRole", "clusterroles", CLUSTER, 0, Some(22)),
    api("rbac.authorization.k8s.io", "v1beta1", "ClusterRoleBinding", "clusterrolebindings", CLUSTER, 0, Some(22)),
    api("rbac.authorization.k8s.io", "v1beta1", "Role", "roles", NS, 0, Some(22)),
    api("rbac.authorization.k8s.io", "v1beta1", "RoleBinding", "rolebindings", NS, 0, Some(22)),
    // ---- storage.k8s.io ----
    api("storage.k8s.io", "v1", "CSIDriver", "csidrivers", CLUSTER, 18, None),
    api("storage.k8s.io", "v1", "CSINode", "csinodes", CLUSTER, 17, None),
    api("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities", NS, 24, None),
    api("storage.k8s.io", "v1", "StorageClass", "storageclasses", CLUSTER, 0, None),
    api("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", CLUSTER, 0, None),
    api("storage.k8s.io", "v1", "VolumeAttributesClass", "volumeattributesclasses", CLUSTER, 34, None),
    api("storage.k8s.io", "v1beta1", "CSIDriver", "csidrivers", CLUSTER, 0, Some(22)),
    api("storage.k8s.io", "v1beta1", "CSINode", "csinodes", CLUSTER, 0, Some(22)),
    api("storage.k8s.io", "v1beta1", "CSIStorageCapacity", "csistoragecapacities", NS, 21, Some(27)),
    api("storage.k8s.io", "v1beta1", "StorageClass", "storageclasses", CLUSTER, 0, Some(22)),
    api("storage.k8s.io", "v1beta1", "VolumeAttachment", "volumeattachments", CLUSTER, 0, Some(22)),
    api("storage.k8s.io", "v1beta1", "VolumeAttributesClass", "volumeattributesclasses", CLUSTER, 31, Some(37)),
    api("storage.k8s.io", "v1alpha1", "VolumeAttributesClass", "volumeattributesclasses", CLUSTER, 29, Some(35)),
    // ---- storagemigration.k8s.io ----
    api("storagemigration.k8s.io", "v1beta1", "StorageVersionMigration", "storageversionmigrations", CLUSTER, 35, None),
    api(
        "storagemigration.k8s.io",
        "v1alpha1",
        "StorageVersionMigration",
        "storageversionmigrations",
        CLUSTER,
        30,
        Some(35),
    ),
    // ---- admissionregistration.k8s.io ----
    api(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        CLUSTER,
        16,
        None,
    ),
    api(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        CLUSTER,
        30,
        None,
    ),
    api(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        CLUSTER,
        30,
        None,
    ),
    api(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        CLUSTER,
        16,
        None,
    ),
    api(
        "admissionregistration.k8s.io",
        "v1beta1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        CLUSTER,
        0,
        Some(22),
    ),
    api(
        "admissionregistration.k8s.io",
        "v1beta1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        CLUSTER,
        0,
        Some(22),
    ),
    api(
        "admissionregistration.k8s.io",
        "v1alpha1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        CLUSTER,
        26,
        Some(33),
    ),
    api(
        "admissionregistration.k8s.io",
        "v1alpha1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        CLUSTER,
        26,
        Some(33),
    ),
    // ---- apiextensions.k8s.io, apiregistration.k8s.io ----
    api("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", CLUSTER, 16, None),
    api(
        "apiextensions.k8s.io",
        "v1beta1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        CLUSTER,
        0,
        Some(22),
    ),
    api("apiregistration.k8s.io", "v1", "APIService", "apiservices", CLUSTER, 0, None),
    api("apiregistration.k8s.io", "v1beta1", "APIService", "apiservices", CLUSTER, 0, Some(22)),
    // ---- autoscaling ----
    api("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NS, 0, None),
    api("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NS, 23, None),
    api("autoscaling", "v2beta1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NS, 0, Some(25)),
    api("autoscaling", "v2beta2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NS, 0, Some(26)),
    // ---- coordination.k8s.io, discovery.k8s.io, events.k8s.io ----
    api("coordination.k8s.io", "v1", "Lease", "leases", NS, 0, None),
    api("coordination.k8s.io", "v1beta1", "Lease", "leases", NS, 0, Some(22)),
    api("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", NS, 21, None),
    api("discovery.k8s.io", "v1beta1", "EndpointSlice", "endpointslices", NS, 17, Some(25)),
    api("events.k8s.io", "v1", "Event", "events", NS, 19, None),
    api("events.k8s.io", "v1beta1", "Event", "events", NS, 0, Some(25)),
    // ---- node.k8s.io, scheduling.k8s.io ----
    api("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", CLUSTER, 20, None),
    api("node.k8s.io", "v1beta1", "RuntimeClass", "runtimeclasses", CLUSTER, 0, Some(25)),
    api("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", CLUSTER, 0, None),
    api("scheduling.k8s.io", "v1beta1", "PriorityClass", "priorityclasses", CLUSTER, 0, Some(22)),
    // ---- certificates.k8s.io ----
    api("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", CLUSTER, 19, None),
    api(
        "certificates.k8s.io",
        "v1beta1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        CLUSTER,
        0,
        Some(22),
    ),
    api("certificates.k8s.io", "v1beta1", "ClusterTrustBundle", "clustertrustbundles", CLUSTER, 33, None),
    api("certificates.k8s.io", "v1alpha1", "ClusterTrustBundle", "clustertrustbundles", CLUSTER, 27, Some(37)),
    // ---- flowcontrol.apiserver.k8s.io ----
    api("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", CLUSTER, 29, None),
    api(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        CLUSTER,
        29,
        None,
    ),
    api("flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema", "flowschemas", CLUSTER, 26, Some(32)),
    api(
        "flowcontrol.apiserver.k8s.io",
        "v1beta3",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        CLUSTER,
        26,
        Some(32),
    ),
    api("flowcontrol.apiserver.k8s.io", "v1beta2", "FlowSchema", "flowschemas", CLUSTER, 23, Some(29)),
    api(
        "flowcontrol.apiserver.k8s.io",
        "v1beta2",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        CLUSTER,
        23,
        Some(29),
    ),
    api("flowcontrol.apiserver.k8s.io", "v1beta1", "FlowSchema", "flowschemas", CLUSTER, 20, Some(26)),
    api(
        "flowcontrol.apiserver.k8s.io",
        "v1beta1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        CLUSTER,
        20,
        Some(26),
    ),
    // ---- authentication.k8s.io, authorization.k8s.io (create-only review kinds) ----
    api("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", CLUSTER, 28, None),
    api("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", CLUSTER, 0, None),
    api("authentication.k8s.io", "v1beta1", "TokenReview", "tokenreviews", CLUSTER, 0, Some(22)),
    api("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", NS, 0, None),
    api("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", CLUSTER, 0, None),
    api("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", CLUSTER, 0, None),
    api("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", CLUSTER, 0, None),
    api("authorization.k8s.io", "v1beta1", "LocalSubjectAccessReview", "localsubjectaccessreviews", NS, 0, Some(22)),
    api("authorization.k8s.io", "v1beta1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", CLUSTER, 0, Some(22)),
    api("authorization.k8s.io", "v1beta1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", CLUSTER, 0, Some(22)),
    api("authorization.k8s.io", "v1beta1", "SubjectAccessReview", "subjectaccessreviews", CLUSTER, 0, Some(22)),
];

/// The resources Kubernetes 1.`minor` serves (alpha and off-by-default beta entries included; see
/// [`BuiltinApi::on_by_default`]).
pub fn served_at(minor: u32) -> impl Iterator<Item = &'static BuiltinApi> {
    APIS.iter().filter(move |api| api.served_at(minor))
}

/// The entry for (`apiVersion` — `group/version`, or `v1` for core — and `kind`), whichever versions
/// serve it.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static BuiltinApi> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    APIS.iter().find(|api| api.group == group && api.version == version && api.kind == kind)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Groups in the removal data that are config-file types, not REST resources a cluster serves.
    const CONFIG_GROUPS: &[&str] = &["audit.k8s.io"];
    /// Groups the table leaves out on purpose: `resource.k8s.io` (dynamic resource allocation).
    const LEFT_OUT_GROUPS: &[&str] = &["resource.k8s.io"];
    /// Removals in the data that the table leaves out on purpose, (group, version, kind):
    const LEFT_OUT: &[(&str, &str, &str)] = &[
        // apps/v1beta1 never served ReplicaSet (it had Deployment, StatefulSet and ControllerRevision;
        // ReplicaSet came to apps in v1beta2); the deprecation guide lists it anyway.
        ("apps", "v1beta1", "ReplicaSet"),
        // Alpha, off by default, and the data's removal versions (1.17 and 1.22) disagree with the API
        // specs, which still hold scheduling.k8s.io/v1alpha1 and rbac.authorization.k8s.io/v1alpha1 in
        // 1.22 and drop them in 1.23.
        ("scheduling.k8s.io", "v1alpha1", "PriorityClass"),
        ("rbac.authorization.k8s.io", "v1alpha1", "ClusterRole"),
    ];
    /// Entries with a removal version that the data does not list, and why.
    const NOT_IN_DATA: &[(&str, &str, &str)] = &[
        // Removed with the rest of apps/v1beta1 and apps/v1beta2 in 1.16.
        ("apps", "v1beta1", "ControllerRevision"),
        ("apps", "v1beta2", "ControllerRevision"),
        // Removed with the rest of authorization.k8s.io/v1beta1 in 1.22 (the deprecation guide lists it).
        ("authorization.k8s.io", "v1beta1", "SelfSubjectRulesReview"),
        // Named only in the notes of the ValidatingAdmissionPolicy row.
        ("admissionregistration.k8s.io", "v1alpha1", "ValidatingAdmissionPolicyBinding"),
    ];

    fn minor(version: &str) -> u32 {
        let minor = version.strip_prefix("1.").and_then(|m| m.parse().ok());
        minor.unwrap_or_else(|| panic!("removed_in {version:?} is not 1.N"))
    }

    fn rest_removals() -> impl Iterator<Item = &'static skel::upgrade::Removal> {
        skel::upgrade::removals()
            .iter()
            .filter(|r| !CONFIG_GROUPS.contains(&r.group.as_str()) && !LEFT_OUT_GROUPS.contains(&r.group.as_str()))
    }

    #[test]
    fn removals_agree_with_the_data() {
        assert!(rest_removals().count() > 40, "the removal data did not load");
        for r in rest_removals() {
            let key = (r.group.as_str(), r.version.as_str(), r.kind.as_str());
            let entry = lookup(&r.api_version(), &r.kind);
            if LEFT_OUT.contains(&key) {
                assert_eq!(entry, None, "{key:?} is listed as left out but is in the table");
                continue;
            }
            let entry = entry.unwrap_or_else(|| panic!("{key:?} (removed in {}) is not in the table", r.removed_in));
            assert_eq!(entry.removed, Some(minor(&r.removed_in)), "{key:?}: removal version");
            assert!(entry.added < minor(&r.removed_in), "{key:?}: added after its removal");
        }
    }

    #[test]
    fn removals_in_the_table_are_in_the_data() {
        let data: HashSet<_> =
            skel::upgrade::removals().iter().map(|r| (r.group.as_str(), r.version.as_str(), r.kind.as_str())).collect();
        for api in APIS.iter().filter(|a| a.removed.is_some()) {
            let key = (api.group, api.version, api.kind);
            assert!(
                data.contains(&key) != NOT_IN_DATA.contains(&key),
                "{key:?}: in the data and in NOT_IN_DATA, or in neither"
            );
        }
    }

    #[test]
    fn replacements_are_served_when_the_old_version_goes() {
        for r in rest_removals() {
            let Some(replacement) = &r.replacement else { continue };
            let at = minor(&r.removed_in);
            let api = lookup(replacement, &r.kind)
                .unwrap_or_else(|| panic!("replacement {replacement} {} is not in the table", r.kind));
            assert!(api.served_at(at), "{replacement} {} is not served at 1.{at}", r.kind);
        }
    }

    #[test]
    fn plurals_are_lowercase_and_entries_unique() {
        let mut seen = HashSet::new();
        for api in APIS {
            assert_eq!(api.plural, api.plural.to_ascii_lowercase(), "{api:?}");
            assert!(api.plural.ends_with('s'), "{api:?}");
            assert!(seen.insert((api.group, api.version, api.kind)), "duplicate {api:?}");
            assert!(api.removed.is_none_or(|removed| api.added < removed), "{api:?}");
        }
        // One kind has one plural and one scope, whatever its version.
        for a in APIS {
            for b in APIS.iter().filter(|b| b.group == a.group && b.kind == a.kind) {
                assert_eq!((a.plural, a.namespaced), (b.plural, b.namespaced), "{a:?} vs {b:?}");
            }
        }
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
            assert!(served_at(minor).any(|a| a.kind == "FlowSchema") || minor < 20, "1.{minor}");
            // Some HorizontalPodAutoscaler version with metrics (v2beta2, then v2) is served throughout.
            assert!(served_at(minor).any(|a| a.kind == "HorizontalPodAutoscaler" && a.version.starts_with("v2")));
        }
        assert!(lookup("extensions/v1beta1", "Deployment").is_some_and(|a| !a.served_at(OLDEST)));
        assert_eq!(lookup("v1alpha1", "Pod"), None);
        assert!(!lookup("storage.k8s.io/v1alpha1", "VolumeAttributesClass").is_some_and(BuiltinApi::on_by_default));
        assert!(lookup("networking.k8s.io/v1beta1", "IPAddress").is_some_and(|a| !a.on_by_default()));
        assert!(lookup("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema").is_some_and(BuiltinApi::on_by_default));
        assert!(lookup("networking.k8s.io/v1beta1", "Ingress").is_some_and(BuiltinApi::on_by_default));
        for (group, version, kind) in OFF_BY_DEFAULT_BETAS {
            let api = lookup(&format!("{group}/{version}"), kind).expect("off-by-default entry in the table");
            assert!(api.added >= 24, "{api:?}");
        }
    }
}
