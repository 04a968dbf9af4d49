//! The API table: which group/version/kinds Kubernetes stopped serving, when, and what replaces
//! them (`skel/data/api-removals.yaml`, a source per row).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::{api_version, KubeVersion};

/// One group/version/kind that a Kubernetes version stopped serving.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Removal {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub removed_in: String,
    /// The apiVersion to use instead, if there is one.
    pub replacement: Option<String>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub sources: Vec<String>,
}

impl Removal {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    /// The first version that no longer serves it.
    pub fn removed(&self) -> KubeVersion {
        KubeVersion::parse(&self.removed_in).unwrap_or(KubeVersion::NEVER)
    }
}

#[derive(Default, Deserialize)]
struct Table {
    removals: Vec<Removal>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE
        .get_or_init(|| serde_yaml::from_str::<Table>(include_str!("../../data/api-removals.yaml")).unwrap_or_default())
}

/// The built-in table of removals.
pub fn removals() -> &'static [Removal] {
    &table().removals
}

/// The table's entries by (apiVersion, kind).
pub(crate) fn removal_index() -> &'static HashMap<(&'static str, &'static str), usize> {
    static INDEX: OnceLock<HashMap<(&'static str, &'static str), usize>> = OnceLock::new();
    static API_VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let names = API_VERSIONS.get_or_init(|| removals().iter().map(Removal::api_version).collect());
        removals().iter().zip(names).enumerate().map(|(i, (r, api))| ((api.as_str(), r.kind.as_str()), i)).collect()
    })
}

/// The table's entry for an object's `apiVersion` and `kind`, if that API was ever removed.
pub fn removal_of(api_version: &str, kind: &str) -> Option<&'static Removal> {
    removal_index().get(&(api_version, kind)).map(|&i| &removals()[i])
}

/// The apiVersion a removed API's objects become for `target`: its replacement, or that one's
/// if the target no longer serves it either, and so on; `None` when the chain ends without one.
pub fn served_replacement(r: &Removal, target: KubeVersion) -> Option<String> {
    let mut to = r.replacement.clone()?;
    for _ in 0..removals().len() {
        match removal_of(&to, &r.kind).filter(|n| n.removed() <= target) {
            Some(n) => to = n.replacement.clone()?,
            None => return Some(to),
        }
    }
    None
}

/// The one statement that migrates a removed API's objects for `target`: a new `apiVersion`, or
/// `delete` when no API the target serves replaces it. (Ingress fields move too: see `--fix`.)
pub fn migration_statement(r: &Removal, target: KubeVersion) -> String {
    match served_replacement(r, target) {
        Some(to) => {
            format!("modify(kind == {:?} && apiVersion == {:?}, apiVersion = {to:?});", r.kind, r.api_version())
        }
        None => format!("delete(kind == {:?} && apiVersion == {:?});", r.kind, r.api_version()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_whole() {
        let table = removals();
        assert!(table.len() > 50, "{}", table.len());
        for r in table {
            assert!(KubeVersion::parse(&r.removed_in).is_some(), "{r:?}");
            assert!(!r.kind.is_empty() && !r.version.is_empty() && !r.sources.is_empty(), "{r:?}");
        }
        assert!(table
            .iter()
            .any(|r| r.kind == "CronJob" && r.api_version() == "batch/v1beta1" && r.removed_in == "1.25"));
        assert_eq!(removal_index().len(), table.len(), "an apiVersion and kind appear twice");
    }
}
