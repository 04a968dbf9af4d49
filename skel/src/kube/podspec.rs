//! Where a pod template lives in an object: a Pod's own `metadata` and `spec`, a workload's
//! `spec.template`, a CronJob's `spec.jobTemplate.spec.template`, a PodTemplate's `template`,
//! and the places a trace's config names (`podSpecTemplatePaths` of a tracked kind).

use serde_json::Value;

/// One place of a pod template: the SKEL paths of its metadata and its spec, and the kind whose
/// objects have it there (`None`: any object with that path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlace {
    pub kind: Option<String>,
    /// JSON keys from the object to the template (the object holding `metadata` and `spec`).
    keys: Vec<String>,
    /// `spec.template.metadata`
    pub meta: String,
    /// `spec.template.spec`
    pub spec: String,
    /// The kind test followed by ` && ` and by `, ` (empty without a kind), made once: fix
    /// statements are written per object.
    and: String,
    where_: String,
}

impl PodPlace {
    fn new(kind: Option<&str>, keys: &[&str]) -> PodPlace {
        let mut prefix = String::new();
        for key in keys {
            let segment = path_segment(key);
            if !prefix.is_empty() && !segment.starts_with('[') {
                prefix.push('.');
            }
            prefix.push_str(&segment);
        }
        let prefix = if prefix.is_empty() { prefix } else { prefix + "." };
        PodPlace {
            kind: kind.map(str::to_string),
            keys: keys.iter().map(|k| (*k).to_string()).collect(),
            meta: format!("{prefix}metadata"),
            spec: format!("{prefix}spec"),
            and: kind.map(|k| format!("kind == {k:?} && ")).unwrap_or_default(),
            where_: kind.map(|k| format!("kind == {k:?}, ")).unwrap_or_default(),
        }
    }

    /// The template object of `obj` at this place, if `obj` has one there.
    fn template<'a>(&self, obj: &'a Value) -> Option<&'a Value> {
        if self.kind.as_deref().is_some_and(|k| obj.get("kind").and_then(Value::as_str) != Some(k)) {
            return None;
        }
        let mut at = obj;
        for key in &self.keys {
            at = match at {
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => at.get(key)?,
            };
        }
        at.get("spec").filter(|s| s.is_object()).map(|_| at)
    }

    /// The kind test of the place followed by ` && `, or nothing.
    pub fn and(&self) -> &str {
        &self.and
    }

    /// The kind test of the place followed by `, ` (a selector argument), or nothing.
    pub fn where_(&self) -> &str {
        &self.where_
    }

    /// A statement template of the hazard data for this place: `{spec}`, `{meta}`, `{and}` and
    /// `{where}` replaced.
    pub fn expand(&self, template: &str) -> String {
        template
            .replace("{spec}", &self.spec)
            .replace("{meta}", &self.meta)
            .replace("{and}", &self.and)
            .replace("{where}", &self.where_)
    }
}

/// A JSON key as a SKEL path segment: bare when it is a plain name, `[N]` for an index, quoted
/// otherwise.
fn path_segment(key: &str) -> String {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        key.to_string()
    } else if !key.is_empty() && key.chars().all(|c| c.is_ascii_digit()) {
        format!("[{key}]")
    } else {
        format!("{key:?}")
    }
}

/// Every place a pod template can be, for one trace.
#[derive(Debug, Clone)]
pub struct PodPlaces {
    places: Vec<PodPlace>,
}

impl Default for PodPlaces {
    fn default() -> Self {
        PodPlaces {
            places: vec![
                PodPlace::new(Some("Pod"), &[]),
                PodPlace::new(None, &["spec", "template"]),
                PodPlace::new(None, &["spec", "jobTemplate", "spec", "template"]),
                PodPlace::new(Some("PodTemplate"), &["template"]),
            ],
        }
    }
}

impl PodPlaces {
    /// Adds the place a trace's config names for a tracked kind (`group/version.Kind`, and a JSON
    /// pointer such as `/spec/template`), unless a built-in place already covers it.
    pub fn add_config_path(&mut self, gvk: &str, pointer: &str) {
        let kind = gvk.rsplit_once('.').map_or(gvk, |(_, k)| k);
        let keys: Vec<String> = pointer.split('/').skip(1).map(|k| k.replace("~1", "/").replace("~0", "~")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let covered = self.places.iter().any(|p| p.keys == keys && p.kind.as_deref().is_none_or(|k| k == kind));
        if !covered && !pointer.is_empty() {
            self.places.push(PodPlace::new(Some(kind), &keys));
        }
    }

    /// The JSON keys from an object to each place's template (an index written as digits).
    pub fn keys(&self) -> impl Iterator<Item = &[String]> {
        self.places.iter().map(|p| p.keys.as_slice())
    }

    /// The SKEL paths of the pod specs, place by place.
    pub fn specs(&self) -> impl Iterator<Item = &str> {
        self.places.iter().map(|p| p.spec.as_str())
    }

    /// The pod templates of `obj`: each place it has one, with the template object (the one that
    /// holds `metadata` and `spec`).
    pub fn of<'p, 'a>(&'p self, obj: &'a Value) -> impl Iterator<Item = (&'p PodPlace, &'a Value)> + use<'p, 'a> {
        self.places.iter().filter_map(move |p| p.template(obj).map(|t| (p, t)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_place_is_found() {
        let places = PodPlaces::default();
        let found = |obj: Value| places.of(&obj).map(|(p, _)| p.spec.clone()).collect::<Vec<_>>();
        assert_eq!(found(json!({"kind": "Pod", "spec": {}})), ["spec"]);
        assert_eq!(found(json!({"kind": "Service", "spec": {}})), Vec::<String>::new());
        assert_eq!(found(json!({"kind": "Deployment", "spec": {"template": {"spec": {}}}})), ["spec.template.spec"]);
        assert_eq!(
            found(json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}})),
            ["spec.jobTemplate.spec.template.spec"]
        );
        assert_eq!(found(json!({"kind": "PodTemplate", "template": {"spec": {}}})), ["template.spec"]);
    }

    #[test]
    fn config_paths_add_places() {
        let mut places = PodPlaces::default();
        places.add_config_path("apps/v1.Deployment", "/spec/template");
        places.add_config_path("example.com/v1.Runner", "/spec/pod-template");
        places.add_config_path("example.com/v1.Fleet", "/spec/groups/0/template");
        assert_eq!(places.places.len(), 6);
        let runner =
            json!({"kind": "Runner", "spec": {"pod-template": {"metadata": {}, "spec": {"nodeSelector": {}}}}});
        let (place, template) = places.of(&runner).next().unwrap();
        assert_eq!(place.spec, "spec.\"pod-template\".spec");
        assert!(template.get("metadata").is_some());
        assert_eq!(
            place.expand("remove({where}{spec}.x);"),
            "remove(kind == \"Runner\", spec.\"pod-template\".spec.x);"
        );
        let fleet = json!({"kind": "Fleet", "spec": {"groups": [{"template": {"spec": {}}}]}});
        assert_eq!(places.of(&fleet).next().unwrap().0.spec, "spec.groups[0].template.spec");
    }
}
