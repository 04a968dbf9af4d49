//! The tracer config section: parsing, normalization (as SimKube's import does) and its JSON form.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::TraceError;

/// The normalized tracer config: `{"trackedObjects": {"<gvk>": {...}}}`, in input order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub tracked_objects: IndexMap<String, TrackedObjectConfig>,
}

/// How the tracer follows one kind of object. After normalization `pod_spec_template_paths` is
/// never empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackedObjectConfig {
    pub pod_spec_template_paths: Vec<String>,
    pub track_lifecycle: bool,
    pub skip_owned: bool,
}

/// The kinds SimKube knows the pod template paths of.
const KNOWN_PATHS: [(&str, &str); 7] = [
    ("batch/v1.CronJob", "/spec/jobTemplate/spec/template"),
    ("apps/v1.Deployment", "/spec/template"),
    ("apps/v1.DaemonSet", "/spec/template"),
    ("apps/v1.StatefulSet", "/spec/template"),
    ("batch/v1.Job", "/spec/template"),
    ("apps/v1.ReplicaSet", "/spec"),
    ("v1.Pod", ""),
];

/// The default pod template paths of a kind SimKube knows, or `None`.
pub fn default_pod_spec_template_paths(gvk: &str) -> Option<Vec<String>> {
    KNOWN_PATHS.iter().find(|(known, _)| *known == gvk).map(|(_, path)| vec![(*path).to_string()])
}

const FIELDS_HELP: &str = "each tracked kind takes only `podSpecTemplatePaths` (a list of strings), `trackLifecycle` and `skipOwned` (booleans)";

impl Config {
    /// Renames the tracked kind `from` (`group/version.Kind`) to `to`, in place; when `to` is
    /// tracked already, its settings stay and `from`'s go.
    pub fn rename_kind(&mut self, from: &str, to: &str) {
        let Some(at) = self.tracked_objects.get_index_of(from) else { return };
        if self.tracked_objects.contains_key(to) {
            self.tracked_objects.shift_remove_index(at);
            return;
        }
        let mut entries: Vec<(String, TrackedObjectConfig)> = self.tracked_objects.drain(..).collect();
        if let Some(entry) = entries.get_mut(at) {
            entry.0 = to.to_string();
        }
        self.tracked_objects = entries.into_iter().collect();
    }

    /// Reads and normalizes a `config` section.
    pub fn from_json_value(value: &Value) -> Result<Config, TraceError> {
        let top = value.as_object().ok_or_else(|| {
            TraceError::bad_config(
                format!("`config` must be an object, found {}", describe(value)),
                "write `config` as `{\"trackedObjects\": {\"<group/version.Kind>\": {...}}}`",
            )
        })?;
        if let Some(key) = top.keys().find(|k| *k != "trackedObjects") {
            return Err(TraceError::bad_config(
                format!("unknown field `{key}` in `config`"),
                "the tracer config has only `trackedObjects`",
            ));
        }
        let tracked = top.get("trackedObjects").ok_or_else(|| {
            TraceError::bad_config(
                "`config` has no `trackedObjects`",
                "write `config` as `{\"trackedObjects\": {\"<group/version.Kind>\": {...}}}`",
            )
        })?;
        let tracked = tracked.as_object().ok_or_else(|| {
            TraceError::bad_config(
                format!("`trackedObjects` must be an object, found {}", describe(tracked)),
                "`trackedObjects` maps `group/version.Kind` names to their settings",
            )
        })?;
        let mut tracked_objects = IndexMap::with_capacity(tracked.len());
        for (gvk, settings) in tracked {
            let cfg = tracked_object(gvk, settings)?;
            tracked_objects.insert(gvk.clone(), cfg);
        }
        Ok(Config { tracked_objects })
    }

    /// The normalized JSON form: paths always written, `trackLifecycle`/`skipOwned` only when true.
    pub fn to_json_value(&self) -> Value {
        let mut tracked = Map::with_capacity(self.tracked_objects.len());
        for (gvk, cfg) in &self.tracked_objects {
            let mut obj = Map::new();
            obj.insert("podSpecTemplatePaths".into(), Value::from(cfg.pod_spec_template_paths.clone()));
            if cfg.track_lifecycle {
                obj.insert("trackLifecycle".into(), Value::Bool(true));
            }
            if cfg.skip_owned {
                obj.insert("skipOwned".into(), Value::Bool(true));
            }
            tracked.insert(gvk.clone(), Value::Object(obj));
        }
        let mut top = Map::new();
        top.insert("trackedObjects".into(), Value::Object(tracked));
        Value::Object(top)
    }
}

fn tracked_object(gvk: &str, settings: &Value) -> Result<TrackedObjectConfig, TraceError> {
    if !is_gvk(gvk) {
        return Err(TraceError::bad_config(
            format!("`{gvk}` is not a `group/version.Kind` name"),
            "name tracked kinds like `apps/v1.Deployment`, or `v1.Pod` for the core group",
        ));
    }
    let obj = settings.as_object().ok_or_else(|| {
        TraceError::bad_config(
            format!("the settings of `{gvk}` must be an object, found {}", describe(settings)),
            FIELDS_HELP,
        )
    })?;
    let mut paths: Option<Vec<String>> = None;
    let mut single: Option<String> = None;
    let mut cfg = TrackedObjectConfig::default();
    for (key, value) in obj {
        match key.as_str() {
            "podSpecTemplatePaths" => paths = string_list(gvk, value)?,
            "podSpecTemplatePath" => match value {
                Value::Null => {}
                Value::String(s) => single = Some(s.clone()),
                other => {
                    return Err(TraceError::bad_config(
                        format!("`podSpecTemplatePath` of `{gvk}` must be a string, found {}", describe(other)),
                        "prefer `podSpecTemplatePaths`, a list of JSON pointers such as `[\"/spec/template\"]`",
                    ))
                }
            },
            "trackLifecycle" => cfg.track_lifecycle = boolean(gvk, key, value)?,
            "skipOwned" => cfg.skip_owned = boolean(gvk, key, value)?,
            other => {
                return Err(TraceError::bad_config(
                    format!("unknown field `{other}` in the settings of `{gvk}`"),
                    FIELDS_HELP,
                ))
            }
        }
    }
    let paths = match (paths, single) {
        (Some(_), Some(_)) => {
            return Err(TraceError::bad_config(
                format!("`{gvk}` has both `podSpecTemplatePaths` and `podSpecTemplatePath`"),
                "keep only `podSpecTemplatePaths` (`podSpecTemplatePath` is its deprecated one-path form)",
            ))
        }
        (Some(paths), None) => paths,
        (None, Some(path)) => vec![path],
        (None, None) => Vec::new(),
    };
    cfg.pod_spec_template_paths = match default_pod_spec_template_paths(gvk) {
        Some(defaults) if paths.is_empty() || paths == defaults => defaults,
        Some(defaults) => {
            return Err(TraceError::bad_config(
                format!(
                    "`{gvk}` has pod template paths {}, but its pod template is at {}",
                    show_paths(&paths),
                    show_paths(&defaults)
                ),
                format!("leave out `podSpecTemplatePaths` for `{gvk}` (or write {})", show_paths(&defaults)),
            ))
        }
        None if paths.is_empty() => {
            return Err(TraceError::bad_config(
                format!("`{gvk}` has no `podSpecTemplatePaths`"),
                format!(
                    "give `podSpecTemplatePaths` for `{gvk}`; only {} have default paths",
                    KNOWN_PATHS.iter().map(|(k, _)| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            ))
        }
        None => paths,
    };
    Ok(cfg)
}

fn string_list(gvk: &str, value: &Value) -> Result<Option<Vec<String>>, TraceError> {
    let bad = |found: String| {
        TraceError::bad_config(
            format!("`podSpecTemplatePaths` of `{gvk}` must be a list of strings, found {found}"),
            "write JSON pointers to the pod templates, such as `[\"/spec/template\"]`",
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(format!("an element that is {}", describe(other)))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(bad(describe(other))),
    }
}

fn boolean(gvk: &str, key: &str, value: &Value) -> Result<bool, TraceError> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(TraceError::bad_config(
            format!("`{key}` of `{gvk}` must be `true` or `false`, found {}", describe(other)),
            format!("write `\"{key}\": true` or leave it out"),
        )),
    }
}

/// `[group/]version.Kind`: a non-empty version and kind, no spaces.
fn is_gvk(s: &str) -> bool {
    let after_group = s.rsplit_once('/').map_or(s, |(group, rest)| if group.is_empty() { "" } else { rest });
    match after_group.split_once('.') {
        Some((version, kind)) => {
            !version.is_empty() && !kind.is_empty() && !kind.contains('.') && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn show_paths(paths: &[String]) -> String {
    let inner: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
    format!("`[{}]`", inner.join(", "))
}

/// A short description of a JSON value for messages (`a string`, `the number 3`, ...).
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) if n.is_f64() => format!("the number `{n}`"),
        Value::Number(n) => format!("the integer `{n}`"),
        Value::String(s) => format!("the string `\"{}\"`", crate::decode::shorten(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(v: Value) -> Result<Value, String> {
        Config::from_json_value(&v).map(|c| c.to_json_value()).map_err(|e| e.to_string())
    }

    #[test]
    fn renaming_a_kind_keeps_its_place_and_never_overwrites() {
        let mut c = Config::from_json_value(&json!({"trackedObjects": {
            "apps/v1.Deployment": {}, "batch/v1beta1.CronJob": {"trackLifecycle": true, "podSpecTemplatePaths": ["/spec/jobTemplate/spec/template"]},
            "v1.Pod": {}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        c.rename_kind("batch/v1beta1.CronJob", "batch/v1.CronJob");
        let keys: Vec<&str> = c.tracked_objects.keys().map(String::as_str).collect();
        assert_eq!(keys, ["apps/v1.Deployment", "batch/v1.CronJob", "v1.Pod"]);
        assert!(c.tracked_objects["batch/v1.CronJob"].track_lifecycle);
        c.rename_kind("apps/v1.Deployment", "v1.Pod");
        assert_eq!(c.tracked_objects.len(), 2, "an existing key keeps its settings; the old one goes");
        assert_eq!(c.tracked_objects.get_index(1).map(|(k, _)| k.as_str()), Some("v1.Pod"));
        c.rename_kind("absent.Kind", "other.Kind");
        assert_eq!(c.tracked_objects.len(), 2);
    }

    #[test]
    fn fills_defaults_and_drops_false_flags() {
        let got = norm(json!({"trackedObjects": {
            "apps/v1.Deployment": {},
            "batch/v1.CronJob": {"trackLifecycle": true, "podSpecTemplatePaths": []},
            "v1.Pod": {"podSpecTemplatePaths": null, "skipOwned": false, "trackLifecycle": false},
        }}));
        assert_eq!(
            got,
            Ok(json!({"trackedObjects": {
                "apps/v1.Deployment": {"podSpecTemplatePaths": ["/spec/template"]},
                "batch/v1.CronJob": {"podSpecTemplatePaths": ["/spec/jobTemplate/spec/template"], "trackLifecycle": true},
                "v1.Pod": {"podSpecTemplatePaths": [""]},
            }}))
        );
    }

    #[test]
    fn keeps_input_order() {
        let c = Config::from_json_value(&json!({"trackedObjects": {
            "v1.Pod": {}, "apps/v1.ReplicaSet": {}, "batch/v1.Job": {}
        }}));
        let keys: Vec<String> = c.map(|c| c.tracked_objects.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(keys, ["v1.Pod", "apps/v1.ReplicaSet", "batch/v1.Job"]);
    }

    #[test]
    fn deprecated_single_path() {
        let got = norm(json!({"trackedObjects": {
            "example.com/v1.Thing": {"podSpecTemplatePath": "/spec/pod", "skipOwned": true},
            "apps/v1.ReplicaSet": {"podSpecTemplatePath": "/spec"},
        }}));
        assert_eq!(
            got,
            Ok(json!({"trackedObjects": {
                "example.com/v1.Thing": {"podSpecTemplatePaths": ["/spec/pod"], "skipOwned": true},
                "apps/v1.ReplicaSet": {"podSpecTemplatePaths": ["/spec"]},
            }}))
        );
    }

    #[test]
    fn unknown_gvk_with_paths_is_kept() {
        let v = json!({"trackedObjects": {"batch.volcano.sh/v1alpha1.Job": {"podSpecTemplatePaths": ["/spec/tasks/*/template"]}}});
        assert_eq!(norm(v.clone()), Ok(v));
    }

    #[test]
    fn errors() {
        let cases = [
            (json!([]), "`config` must be an object, found a list"),
            (json!({}), "`config` has no `trackedObjects`"),
            (json!({"trackedObjects": {}, "x": 1}), "unknown field `x` in `config`"),
            (json!({"trackedObjects": 3}), "`trackedObjects` must be an object, found the integer `3`"),
            (json!({"trackedObjects": {"example.com/v1.Thing": {}}}), "`example.com/v1.Thing` has no `podSpecTemplatePaths`"),
            (json!({"trackedObjects": {"apps/v1.Deployment": {"podSpecTemplatePaths": ["/spec"]}}}), "`apps/v1.Deployment` has pod template paths `[\"/spec\"]`, but its pod template is at `[\"/spec/template\"]`"),
            (json!({"trackedObjects": {"v1.Pod": {"trackLifecycle": "yes"}}}), "`trackLifecycle` of `v1.Pod` must be `true` or `false`, found the string `\"yes\"`"),
            (json!({"trackedObjects": {"v1.Pod": {"skip": true}}}), "unknown field `skip` in the settings of `v1.Pod`"),
            (json!({"trackedObjects": {"v1.Pod": {"podSpecTemplatePaths": [1]}}}), "`podSpecTemplatePaths` of `v1.Pod` must be a list of strings, found an element that is the integer `1`"),
            (json!({"trackedObjects": {"v1.Pod": {"podSpecTemplatePaths": [""], "podSpecTemplatePath": ""}}}), "`v1.Pod` has both `podSpecTemplatePaths` and `podSpecTemplatePath`"),
            (json!({"trackedObjects": {"Pod": {"podSpecTemplatePaths": [""]}}}), "`Pod` is not a `group/version.Kind` name"),
            (json!({"trackedObjects": {"v1.Pod": null}}), "the settings of `v1.Pod` must be an object, found null"),
        ];
        for (input, msg) in cases {
            assert_eq!(norm(input), Err(format!("bad tracer config: {msg}")));
        }
    }

    #[test]
    fn gvk_shapes() {
        for ok in ["v1.Pod", "apps/v1.Deployment", "batch.volcano.sh/v1alpha1.Job"] {
            assert!(is_gvk(ok), "{ok}");
        }
        for bad in ["Pod", "v1.", ".Pod", "apps/v1", "/v1.Pod", "apps/v1.Deploy.ment", "v1.P od"] {
            assert!(!is_gvk(bad), "{bad}");
        }
    }
}
