//! The fields SimKube round-trips through typed Kubernetes structs (`apiVersion`, `kind`,
//! `metadata` as `ObjectMeta`): after a statement changed them, they must still have the types
//! Kubernetes allows. Null and unknown `metadata` fields are dropped, as that round trip does.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedFieldError {
    /// The field, as a SKEL path (`metadata.labels.app`).
    pub field: String,
    pub expected: &'static str,
    pub found: String,
}

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    StrMap,
    StrList,
    List,
}

const META_FIELDS: [(&str, Ty); 15] = [
    ("annotations", Ty::StrMap),
    ("creationTimestamp", Ty::Str),
    ("deletionGracePeriodSeconds", Ty::Int),
    ("deletionTimestamp", Ty::Str),
    ("finalizers", Ty::StrList),
    ("generateName", Ty::Str),
    ("generation", Ty::Int),
    ("labels", Ty::StrMap),
    ("managedFields", Ty::List),
    ("name", Ty::Str),
    ("namespace", Ty::Str),
    ("ownerReferences", Ty::List),
    ("resourceVersion", Ty::Str),
    ("selfLink", Ty::Str),
    ("uid", Ty::Str),
];

fn found(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 40 {
        format!("{}...", text.chars().take(37).collect::<String>())
    } else {
        text
    }
}

fn err(field: String, expected: &'static str, v: &Value) -> TypedFieldError {
    TypedFieldError { field, expected, found: found(v) }
}

pub fn validate(obj: &mut Value) -> Result<(), TypedFieldError> {
    let Value::Object(top) = obj else { return Ok(()) };
    for key in ["apiVersion", "kind"] {
        if let Some(v) = top.get(key) {
            if !v.is_string() {
                return Err(err(key.to_string(), "a string", v));
            }
        }
    }
    let Some(meta) = top.get_mut("metadata") else { return Ok(()) };
    let Value::Object(meta) = meta else { return Err(err("metadata".into(), "an object", meta)) };
    meta.retain(|k, v| !v.is_null() && META_FIELDS.iter().any(|(name, _)| name == k));
    for (name, ty) in META_FIELDS {
        let Some(v) = meta.get(name) else { continue };
        let field = format!("metadata.{name}");
        match ty {
            Ty::Str if !v.is_string() => return Err(err(field, "a string", v)),
            Ty::Int if !(v.is_i64()) => return Err(err(field, "an integer", v)),
            Ty::List if !v.is_array() => return Err(err(field, "a list", v)),
            Ty::StrList => match v {
                Value::Array(items) => {
                    if let Some((i, bad)) = items.iter().enumerate().find(|(_, x)| !x.is_string()) {
                        return Err(err(format!("{field}[{i}]"), "a string", bad));
                    }
                }
                _ => return Err(err(field, "a list of strings", v)),
            },
            Ty::StrMap => match v {
                Value::Object(m) => {
                    if let Some((k, bad)) = m.iter().find(|(_, x)| !x.is_string()) {
                        let mut path = field.clone();
                        path.push('.');
                        let _ = skel_grammar::ast::write_key(&mut path, k);
                        return Err(err(path, "a string", bad));
                    }
                }
                _ => return Err(err(field, "a map of strings", v)),
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_must_be_string() {
        let mut o = json!({"metadata": {"labels": {"app": 5}}});
        let e = validate(&mut o).unwrap_err();
        assert_eq!(e.field, "metadata.labels.app");
        assert_eq!(e.found, "5");
    }

    #[test]
    fn quoted_label_key_in_field() {
        let mut o = json!({"metadata": {"labels": {"simkube.dev/x": true}}});
        assert_eq!(validate(&mut o).unwrap_err().field, "metadata.labels.\"simkube.dev/x\"");
    }

    #[test]
    fn null_and_unknown_metadata_fields_are_dropped() {
        let mut o = json!({"metadata": {"name": "a", "foo": 1, "namespace": null}, "spec": {"x": null}});
        validate(&mut o).unwrap();
        assert_eq!(o, json!({"metadata": {"name": "a"}, "spec": {"x": null}}));
    }

    #[test]
    fn api_version_must_be_string() {
        let mut o = json!({"apiVersion": 1});
        assert_eq!(validate(&mut o).unwrap_err().expected, "a string");
    }
}
