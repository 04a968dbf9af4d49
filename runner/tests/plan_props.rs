//! Trace objects are untrusted input: whatever JSON an event holds, placing and preparing it
//! never panics, and a prepared manifest prepared again is unchanged.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use skel_runner::api::{Gvk, Resource};
use skel_runner::plan::{self, Naming};

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z.]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("spec".to_string()),
                        Just("template".to_string()),
                        Just("metadata".to_string()),
                        Just("name".to_string()),
                        Just("namespace".to_string()),
                        Just("jobTemplate".to_string()),
                        Just("nodeSelector".to_string()),
                        Just("tolerations".to_string()),
                        Just("status".to_string()),
                        "[a-z]{1,4}"
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn resources() -> Vec<Resource> {
    vec![
        Resource::new("v1", "Pod", "pods", true),
        Resource::new("apps/v1", "Deployment", "deployments", true),
        Resource::new("batch/v1", "CronJob", "cronjobs", true),
        Resource::new("v1", "Namespace", "namespaces", false),
        Resource::new("v1", "Node", "nodes", false),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_object_is_placed_or_refused_without_panic(obj in value(), template in value(), i in 0usize..3) {
        let naming = Naming { namespace_prefix: "virtual-".into(), run_id: "r".into() };
        for res in resources() {
            let gvk: &Gvk = &res.gvk;
            if let Ok(target) = plan::target(&obj, &res, &naming) {
                let once = plan::manifest(obj.clone(), gvk, &target, &naming, &plan::PodTemplates::default());
                let twice = plan::manifest(once.clone(), gvk, &target, &naming, &plan::PodTemplates::default());
                prop_assert_eq!(once, twice);
            }
        }
        let node = plan::virtual_node(i, Some(&template), &naming);
        prop_assert_eq!(&node["metadata"]["name"], &json!(format!("virtual-node-{i}")));
    }
}
