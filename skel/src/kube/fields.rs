//! What the common Kubernetes fields mean (from the API reference), for hover and completion.
//! Paths are written as the key index writes them: `[*]` for every index. A pod spec's fields
//! are listed once, under `POD`, and found under every place a pod spec lives.

/// (path, description)
const FIELDS: &[(&str, &str)] = &[
    ("apiVersion", "The versioned schema of this object (`group/version`, or `v1` for the core group). Removed versions are what `skel check` reports."),
    ("kind", "The REST resource this object represents, in CamelCase (`Deployment`, `CronJob`)."),
    ("metadata", "Standard object metadata: name, namespace, labels, annotations, owner references."),
    ("metadata.name", "The object's name, unique within its namespace for its kind."),
    ("metadata.namespace", "The namespace the object lives in (empty for cluster-scoped kinds)."),
    ("metadata.labels", "Map of string keys and values used to organize and select objects (selectors match on them)."),
    ("metadata.annotations", "Map of string keys and values for arbitrary, non-identifying metadata."),
    ("metadata.uid", "Unique id the API server gave the object; not meaningful in another cluster."),
    ("metadata.resourceVersion", "Opaque version the API server uses for concurrency control; set by the server."),
    ("metadata.generation", "Sequence number of the desired state's generation; set by the server."),
    ("metadata.creationTimestamp", "When the object was created, set by the server (RFC 3339)."),
    ("metadata.deletionTimestamp", "When the object will be deleted, set by the server."),
    ("metadata.ownerReferences", "The objects this one depends on; garbage collection deletes it with its owner."),
    ("metadata.finalizers", "Conditions that must be cleared before the object is deleted."),
    ("metadata.managedFields", "Which field manager set which fields (server-side apply); set by the server."),
    ("spec", "The desired state of the object, defined by its kind."),
    ("status", "The most recently observed state of the object, written by controllers; usually removed before a replay."),
    ("spec.replicas", "Number of desired pods (Deployment, ReplicaSet, StatefulSet)."),
    ("spec.selector", "Label query over pods that should match the replica count; must match the template's labels."),
    ("spec.template", "The pod template: pods are created from it."),
    ("spec.template.metadata", "Metadata of the pods created from the template (labels the selector matches)."),
    ("spec.template.spec", "The pod spec of the pods created from the template."),
    ("spec.strategy", "How existing pods are replaced by new ones (Deployment)."),
    ("spec.schedule", "The schedule in Cron format (CronJob)."),
    ("spec.suspend", "Suspends subsequent executions (CronJob, Job)."),
    ("spec.concurrencyPolicy", "How to treat concurrent executions of a job: Allow, Forbid or Replace (CronJob)."),
    ("spec.jobTemplate", "The job that will be created when executing a CronJob."),
    ("spec.jobTemplate.spec", "The spec of the job a CronJob creates."),
    ("spec.jobTemplate.spec.template", "The pod template of the job a CronJob creates."),
    ("spec.backoffLimit", "Number of retries before marking a job failed (Job)."),
    ("spec.completions", "Desired number of successfully finished pods (Job)."),
    ("spec.parallelism", "Maximum number of pods the job should run at a time (Job)."),
    ("spec.serviceName", "The governing service of a StatefulSet."),
    ("spec.volumeClaimTemplates", "Claims that pods of a StatefulSet may reference."),
    ("spec.type", "How a Service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName."),
    ("spec.ports", "The ports a Service exposes."),
    ("spec.rules", "Host rules of an Ingress."),
    ("spec.ingressClassName", "The IngressClass that implements this Ingress."),
    ("spec.minAvailable", "Pods that must still be available after an eviction (PodDisruptionBudget)."),
    ("spec.maxUnavailable", "Pods that can be unavailable after an eviction (PodDisruptionBudget)."),
    ("data", "The configuration data (ConfigMap) or base64 secret data (Secret)."),
    ("POD.containers", "The containers of the pod; at least one."),
    ("POD.initContainers", "Containers run in order before the app containers start."),
    ("POD.containers[*].name", "The container's name, a DNS label unique in the pod."),
    ("POD.containers[*].image", "The container image name."),
    ("POD.containers[*].imagePullPolicy", "When to pull the image: Always, Never or IfNotPresent."),
    ("POD.containers[*].command", "The entrypoint array; not run in a shell."),
    ("POD.containers[*].args", "Arguments to the entrypoint."),
    ("POD.containers[*].env", "Environment variables to set in the container."),
    ("POD.containers[*].env[*].name", "The environment variable's name."),
    ("POD.containers[*].env[*].value", "The environment variable's value."),
    ("POD.containers[*].env[*].valueFrom", "Where the value comes from: a secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef."),
    ("POD.containers[*].env[*].valueFrom.secretKeyRef", "Takes the value from a key of a Secret (which a replay cluster does not have)."),
    ("POD.containers[*].env[*].valueFrom.configMapKeyRef", "Takes the value from a key of a ConfigMap."),
    ("POD.containers[*].envFrom", "Sources of environment variables: whole ConfigMaps (configMapRef) or Secrets (secretRef)."),
    ("POD.containers[*].resources", "Compute resources the container requires (requests) and may use (limits)."),
    ("POD.containers[*].resources.requests", "Minimum compute resources (cpu, memory) the scheduler reserves."),
    ("POD.containers[*].resources.limits", "Maximum compute resources the container may use."),
    ("POD.containers[*].ports", "Ports to expose from the container."),
    ("POD.containers[*].volumeMounts", "Volumes of the pod mounted into the container's filesystem."),
    ("POD.containers[*].volumeMounts[*].name", "Must match the name of one of the pod's volumes."),
    ("POD.containers[*].volumeMounts[*].mountPath", "Path in the container at which the volume is mounted."),
    ("POD.containers[*].livenessProbe", "Periodic probe of container liveness; the container restarts when it fails."),
    ("POD.containers[*].readinessProbe", "Periodic probe of container readiness; the pod leaves Service endpoints when it fails."),
    ("POD.containers[*].securityContext", "Security options the container runs with."),
    ("POD.volumes", "Volumes the pod's containers can mount."),
    ("POD.volumes[*].name", "The volume's name, referenced by volumeMounts."),
    ("POD.volumes[*].secret", "A volume filled from a Secret."),
    ("POD.volumes[*].configMap", "A volume filled from a ConfigMap."),
    ("POD.volumes[*].persistentVolumeClaim", "A volume backed by a PersistentVolumeClaim."),
    ("POD.volumes[*].emptyDir", "A temporary directory that shares the pod's lifetime."),
    ("POD.nodeSelector", "Labels a node must have for the pod to be scheduled on it. `node-role.kubernetes.io/master` was removed in Kubernetes 1.24."),
    ("POD.nodeName", "Schedules the pod onto this node directly, bypassing the scheduler."),
    ("POD.affinity", "Node affinity, pod affinity and pod anti-affinity scheduling constraints."),
    ("POD.tolerations", "Taints the pod tolerates. Control-plane nodes carry `node-role.kubernetes.io/control-plane` from Kubernetes 1.24 and no longer `node-role.kubernetes.io/master` from 1.25."),
    ("POD.serviceAccountName", "The service account the pod runs as."),
    ("POD.serviceAccount", "Deprecated alias of serviceAccountName."),
    ("POD.restartPolicy", "Restart policy for the pod's containers: Always, OnFailure or Never."),
    ("POD.priorityClassName", "The PriorityClass of the pod, which sets its scheduling priority."),
    ("POD.terminationGracePeriodSeconds", "Seconds the pod is given to terminate gracefully."),
    ("POD.dnsPolicy", "How the pod's DNS is set up."),
    ("POD.hostNetwork", "Use the host's network namespace."),
    ("POD.imagePullSecrets", "Secrets used to pull the pod's images."),
    ("POD.securityContext", "Pod-level security options."),
    ("POD.schedulerName", "The scheduler that schedules the pod."),
];

/// Where a pod spec lives, as key-index path prefixes (the built-in pod-template places; the
/// longer first, so `spec.template.spec.x` is not read as a Pod's `spec` field `template`).
fn pod_specs() -> Vec<String> {
    let mut specs: Vec<String> = super::podspec::PodPlaces::default().specs().map(str::to_string).collect();
    specs.sort_by_key(|s| std::cmp::Reverse(s.len()));
    specs
}

/// The description of a field, when it is a common one.
pub fn describe(path: &str) -> Option<&'static str> {
    if let Some((_, d)) = FIELDS.iter().find(|(p, _)| *p == path) {
        return Some(d);
    }
    pod_specs().iter().find_map(|prefix| {
        let rest = path.strip_prefix(prefix)?.strip_prefix('.')?;
        let pod = format!("POD.{rest}");
        FIELDS.iter().find(|(p, _)| *p == pod).map(|(_, d)| *d)
    })
}

/// The known keys right under a path (for completion), with their descriptions.
pub fn keys_under(path: &str) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    let mut add = |full: &'static str, under: &str, d: &'static str| {
        let rest =
            if under.is_empty() { Some(full) } else { full.strip_prefix(under).and_then(|r| r.strip_prefix('.')) };
        if let Some(key) = rest.filter(|r| !r.contains(['.', '['])) {
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, d));
            }
        }
    };
    for (p, d) in FIELDS {
        if let Some(pod) = p.strip_prefix("POD.") {
            for prefix in &pod_specs() {
                if let Some(rest) = path.strip_prefix(prefix) {
                    let under = rest.strip_prefix('.').unwrap_or(rest);
                    if rest.is_empty() || rest.starts_with('.') || rest.starts_with('[') {
                        add(pod, under, d);
                    }
                }
            }
        } else {
            add(p, path, d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_spec_fields_are_found_wherever_a_pod_spec_lives() {
        assert!(describe("spec.template.spec.containers[*].image").is_some_and(|d| d.contains("image")));
        assert!(describe("spec.jobTemplate.spec.template.spec.nodeSelector").is_some_and(|d| d.contains("1.24")));
        assert!(describe("spec.containers").is_some());
        assert!(describe("metadata.labels").is_some());
        assert_eq!(describe("spec.nothing.here"), None);
    }

    #[test]
    fn keys_under_a_path() {
        let top: Vec<&str> = keys_under("").iter().map(|(k, _)| *k).collect();
        assert!(top.contains(&"apiVersion") && top.contains(&"metadata") && !top.contains(&"name"));
        let meta: Vec<&str> = keys_under("metadata").iter().map(|(k, _)| *k).collect();
        assert!(meta.contains(&"labels") && meta.contains(&"namespace"));
        let pod: Vec<&str> = keys_under("spec.template.spec").iter().map(|(k, _)| *k).collect();
        assert!(pod.contains(&"containers") && pod.contains(&"tolerations"), "{pod:?}");
        let c: Vec<&str> = keys_under("spec.template.spec.containers[*]").iter().map(|(k, _)| *k).collect();
        assert!(c.contains(&"image") && c.contains(&"env"), "{c:?}");
    }
}
