//! The fields SimKube round-trips through typed Kubernetes structs (`apiVersion`, `kind`,
//! `metadata` as `ObjectMeta`): after a statement changed them, they must still have the types
//! Kubernetes allows. Null and unknown `metadata` fields are dropped, as that round trip does.

use crate::node::{field, field_mut, Node};

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

fn found(v: &Node<'_>) -> String {
    let mut text = Vec::new();
    v.encode(&mut text, skel_trace::Format::Json).ok();
    let text = String::from_utf8_lossy(&text);
    if text.len() > 40 {
        format!("{}...", text.chars().take(37).collect::<String>())
    } else {
        text.into_owned()
    }
}

fn err(field: String, expected: &'static str, v: &Node<'_>) -> TypedFieldError {
    TypedFieldError { field, expected, found: found(v) }
}

/// Checks the typed fields (the program decodes them whole when it touches them).
pub fn validate(obj: &mut Node<'_>) -> Result<(), TypedFieldError> {
    let Node::Obj(top) = obj else { return Ok(()) };
    for key in ["apiVersion", "kind"] {
        if let Some(v) = field(top, key) {
            if !matches!(v, Node::Str(_)) {
                return Err(err(key.to_string(), "a string", v));
            }
        }
    }
    let Some(meta) = field_mut(top, "metadata") else { return Ok(()) };
    let Node::Obj(meta) = meta else { return Err(err("metadata".into(), "an object", meta)) };
    meta.retain(|(k, v)| !matches!(v, Node::Null) && META_FIELDS.iter().any(|(name, _)| name == k));
    for (name, ty) in META_FIELDS {
        let Some(v) = field(meta, name) else { continue };
        let field_name = format!("metadata.{name}");
        match (ty, v) {
            (Ty::Str, Node::Str(_)) | (Ty::List, Node::Arr(_)) => {}
            (Ty::Int, Node::Num(n)) if n.is_i64() => {}
            (Ty::Str, _) => return Err(err(field_name, "a string", v)),
            (Ty::Int, _) => return Err(err(field_name, "an integer", v)),
            (Ty::List, _) => return Err(err(field_name, "a list", v)),
            (Ty::StrList, Node::Arr(items)) => {
                if let Some((i, bad)) = items.iter().enumerate().find(|(_, x)| !matches!(x, Node::Str(_))) {
                    return Err(err(format!("{field_name}[{i}]"), "a string", bad));
                }
            }
            (Ty::StrList, _) => return Err(err(field_name, "a list of strings", v)),
            (Ty::StrMap, Node::Obj(m)) => {
                if let Some((k, bad)) = m.iter().find(|(_, x)| !matches!(x, Node::Str(_))) {
                    let mut path = field_name.clone();
                    path.push('.');
                    let _ = skel_grammar::ast::write_key(&mut path, k);
                    return Err(err(path, "a string", bad));
                }
            }
            (Ty::StrMap, _) => return Err(err(field_name, "a map of strings", v)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn validate(v: &mut serde_json::Value) -> Result<(), TypedFieldError> {
        let mut node = Node::from_value(v);
        let r = super::validate(&mut node);
        *v = node.to_value(skel_trace::Format::Json);
        r
    }

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
