//! `--dry-run`: a [`Cluster`] that writes nothing and answers discovery from the built-in table
//! of what each Kubernetes version serves (`--server-version`).

use std::cell::RefCell;

use serde_json::Value;
use skel::upgrade::KubeVersion;

use crate::api::{Gvk, Resource, Served};
use crate::builtin;
use crate::cluster::{Access, Applied, Cluster, ClusterError, Deleted, Failure};

pub struct DryRun {
    version: KubeVersion,
    /// Kinds the table does not know (custom resources), assumed served and namespaced.
    assumed: RefCell<Vec<Gvk>>,
}

impl DryRun {
    pub fn new(version: KubeVersion) -> DryRun {
        DryRun { version, assumed: RefCell::new(Vec::new()) }
    }

    /// Kinds no Kubernetes version serves by itself: assumed to be custom resources.
    pub fn assumed(&self) -> Vec<Gvk> {
        self.assumed.borrow().clone()
    }
}

/// The plural Kubernetes would give a custom resource's kind.
fn guess_plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") || lower.ends_with("sh") {
        format!("{lower}es")
    } else if lower.ends_with('y') && !lower.ends_with("ay") && !lower.ends_with("ey") && !lower.ends_with("oy") {
        format!("{}ies", &lower[..lower.len() - 1])
    } else {
        format!("{lower}s")
    }
}

impl Cluster for DryRun {
    fn describe(&self) -> String {
        "the built-in API table".to_string()
    }

    async fn version(&self) -> Result<KubeVersion, ClusterError> {
        Ok(self.version)
    }

    async fn discover(&self, gvks: &[Gvk]) -> Result<Served, ClusterError> {
        let mut served = Served::default();
        for gvk in gvks {
            let known = builtin::apis().iter().any(|a| a.kind == gvk.kind && a.group == gvk.group());
            if let Some(api) = builtin::served_at(self.version.minor)
                .filter(|a| a.on_by_default())
                .find(|a| a.kind == gvk.kind && a.group == gvk.group() && a.version == gvk.version())
            {
                served.insert(Resource::new(&gvk.api_version, &gvk.kind, api.plural, api.namespaced));
            } else if !known && !builtin::apis().iter().any(|a| a.group == gvk.group()) {
                self.assumed.borrow_mut().push(gvk.clone());
                served.insert(Resource::new(&gvk.api_version, &gvk.kind, &guess_plural(&gvk.kind), true));
            }
        }
        Ok(served)
    }

    async fn denied(&self, _needs: &[Access]) -> Result<Vec<Access>, ClusterError> {
        Ok(Vec::new())
    }

    async fn apply(&self, _: &Resource, _: Option<&str>, _: &str, _: &Value) -> Result<Applied, Failure> {
        Ok(Applied::Created)
    }

    async fn delete(&self, _: &Resource, _: Option<&str>, _: &str) -> Result<Deleted, Failure> {
        Ok(Deleted::Deleted)
    }

    fn watch_pods(&self, _: &str) -> Option<tokio::sync::mpsc::Receiver<crate::cluster::PodUpdate>> {
        None
    }

    async fn patch_pod(&self, _: &str, _: &str, _: &Value) -> Result<(), Failure> {
        Ok(())
    }

    /// Nothing is there: a dry run does not look at a cluster.
    async fn list_objects(&self, _: &Resource) -> Result<Vec<Value>, Failure> {
        Ok(Vec::new())
    }

    async fn get_object(&self, _: &Resource, _: Option<&str>, _: &str) -> Result<Option<Value>, Failure> {
        Ok(None)
    }

    fn reaches_cluster(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(guess_plural("Widget"), "widgets");
        assert_eq!(guess_plural("Policy"), "policies");
        assert_eq!(guess_plural("Gateway"), "gateways");
        assert_eq!(guess_plural("Mailbox"), "mailboxes");
    }
}
