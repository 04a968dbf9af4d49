//! Test objects: every hazard rule in every place it is looked for (the fix scripts' and the fast
//! path's tests use them).

use serde_json::Value;

use super::hazards::Hazard;

/// Objects that hold `h`'s hazard in every place a rule looks (pod specs of a Pod, a workload,
/// a CronJob-like template, the config-named places `Runner` and `Fleet` that the fast path's
/// tests configure, a PodTemplate; a PersistentVolume, a StorageClass, the kinds it names).
pub(crate) fn samples(h: &Hazard) -> Vec<Value> {
    use serde_json::json;

    let key = h.key.clone().unwrap_or_default().replace('*', "c");
    let spec = json!({"nodeSelector": {&key: ""}, "tolerations": [{"key": &key}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": &key}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [{"preference": {"matchExpressions": [{"key": &key}]}}]},
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": &key}]}},
            "topologySpreadConstraints": [{"topologyKey": &key}],
            "volumes": [{"name": "v", "secret": {"secretName": "a-token-abcde"}}, {"name": "w", h.volume.clone().unwrap_or_default(): {}},
                {"name": "d", "hostPath": {"path": "/var/run/docker.sock"}}],
            "hostAliases": [{"ip": "010.1.2.3"}],
            "containers": [{"name": "c", "image": "i", "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "b-token-fghij"}}}],
                "envFrom": [{"secretRef": {"name": "c-token-klmno"}}]}]});
    let meta =
        json!({"name": "x", "namespace": "ns", "annotations": {&key: "runtime/default", "kubernetes.io/psp": "p"}});
    let mut objs = Vec::new();
    for kind in h.on.iter().chain(&h.kinds).chain(&h.kind) {
        objs.push(json!({"apiVersion": h.api_version, "kind": kind, "metadata": meta, "spec": spec}));
    }
    if let Some(path) = &h.path {
        let mut obj = json!({"kind": h.kinds.iter().find(|k| *k != "*").map_or("ConfigMap", |k| k.as_str())});
        let mut at = &mut obj;
        for key in path.split('.') {
            at = &mut at[key];
        }
        *at = json!("x");
        objs.push(obj);
    }
    for p in &h.provisioners {
        objs.push(json!({"kind": "StorageClass", "provisioner": p, "allowedTopologies": [{"matchLabelExpressions": [{"key": &key}]}]}));
    }
    objs.push(json!({"kind": "PersistentVolume", "metadata": meta, "spec": {h.volume.clone().unwrap_or_default(): {},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": &key}]}]}}}}));
    objs.push(json!({"kind": "Pod", "metadata": meta, "spec": spec}));
    objs.push(json!({"kind": "Deployment", "metadata": meta, "spec": {"template": {"metadata": meta, "spec": spec}}}));
    objs.push(json!({"kind": "Widget", "metadata": meta, "spec": {"jobTemplate": {"spec": {"template": {"metadata": meta, "spec": spec}}}}}));
    objs.push(json!({"kind": "Runner", "metadata": meta, "spec": {"pod-template": {"metadata": meta, "spec": spec}}}));
    objs.push(json!({"kind": "Fleet", "metadata": meta, "spec": {"groups": [{"template": {"metadata": meta, "spec": spec}}], "a/b": {"spec": spec}}}));
    objs.push(json!({"kind": "PodTemplate", "metadata": meta, "template": {"metadata": meta, "spec": spec}}));
    objs
}
