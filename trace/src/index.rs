//! Checks the `index` section's shape: `{"<gvk>": {"<ns>/<name>": <u64 hash>}}`.

use serde_json::Value;

use crate::config::describe;
use crate::error::TraceError;

const HELP: &str = "`index` maps `group/version.Kind` names to objects of `\"namespace/name\": <u64 hash>`";

/// Accepts the index SimKube writes; anything else would not survive a write as msgpack.
pub fn check_index(index: &Value) -> Result<(), TraceError> {
    let kinds =
        index.as_object().ok_or_else(|| TraceError::wrong_type("`index`", "an object", describe(index), HELP))?;
    for (gvk, objects) in kinds {
        let objects = objects.as_object().ok_or_else(|| {
            TraceError::wrong_type(format!("`index[\"{gvk}\"]`"), "an object", describe(objects), HELP)
        })?;
        for (name, hash) in objects {
            if hash.as_u64().is_none() {
                return Err(TraceError::wrong_type(
                    format!("`index[\"{gvk}\"][\"{name}\"]`"),
                    "an unsigned 64-bit integer (a hash)",
                    describe(hash),
                    HELP,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_simkube_index() {
        assert!(check_index(&json!({})).is_ok());
        assert!(check_index(&json!({"v1.Pod": {"a/b": u64::MAX, "a/c": 0}})).is_ok());
    }

    #[test]
    fn rejects_other_shapes() {
        let msg = |v: Value| check_index(&v).err().map(|e| e.to_string());
        assert_eq!(msg(json!([])), Some("`index` must be an object, found a list".into()));
        assert_eq!(
            msg(json!({"v1.Pod": 1})),
            Some("`index[\"v1.Pod\"]` must be an object, found the integer `1`".into())
        );
        assert_eq!(
            msg(json!({"v1.Pod": {"a/b": -1}})),
            Some(
                "`index[\"v1.Pod\"][\"a/b\"]` must be an unsigned 64-bit integer (a hash), found the integer `-1`"
                    .into()
            )
        );
    }
}
