//! The API table (`skel/data/apis.yaml`, a source per row): every group/version/kind that
//! Kubernetes 1.16 and later serves or served, from which release, and for those it stopped
//! serving, when and what replaces them. Two views of the one table: the removals (`skel check`,
//! `skel run`'s preflight) and the resources each release serves (`skel run --dry-run`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::{api_version, KubeVersion};

/// The data, built into the binary.
const DATA: &str = include_str!("../../data/apis.yaml");

/// The oldest release whose served resources the table lists in full.
pub const OLDEST: KubeVersion = KubeVersion::v1(16);
/// The newest release whose served resources the table lists in full (later removals are listed
/// as their release notes and lifecycle announce them).
pub const NEWEST: KubeVersion = KubeVersion::v1(35);

/// One group/version/kind of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// How it is served; `None` for a config-file type no server serves (`audit.k8s.io`).
    pub rest: Option<Rest>,
    /// The first release that serves it; `None` for one before 1.16.
    pub added: Option<KubeVersion>,
    /// The first release that no longer serves it.
    pub removed: Option<KubeVersion>,
    /// Whether a cluster serves it without `--runtime-config`: never an alpha API, nor a beta API
    /// added from 1.24 on that is still off by default (KEP-3136).
    pub on_by_default: bool,
    /// Where the data says it comes from.
    pub sources: Vec<String>,
}

/// A resource as the REST API serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rest {
    /// `deployments`
    pub plural: String,
    pub namespaced: bool,
}

impl Api {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    /// Whether Kubernetes `v` serves it when enabled (or, for a config-file type, reads it).
    pub fn served_at(&self, v: KubeVersion) -> bool {
        self.added.is_none_or(|added| added <= v) && self.removed.is_none_or(|removed| v < removed)
    }
}

/// One group/version/kind that a Kubernetes version stopped serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub removed_in: String,
    /// The apiVersion to use instead, if there is one.
    pub replacement: Option<String>,
    pub notes: String,
    /// SKEL statements that move the fields that changed, so that changing the apiVersion then
    /// gives a valid object of the replacement; they run before [`migration_statement`]'s.
    pub fields_fix: Option<String>,
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

/// A row of the data file, as written (its header says what each field means).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    group: String,
    version: String,
    kind: String,
    plural: Option<String>,
    namespaced: Option<bool>,
    added: Option<String>,
    removed_in: Option<String>,
    replacement: Option<String>,
    on_by_default: Option<bool>,
    #[serde(default)]
    notes: String,
    fields_fix: Option<String>,
    sources: Vec<String>,
}

#[derive(Default)]
struct Table {
    apis: Vec<Api>,
    /// By the version that removed them, then in the data's order.
    removals: Vec<Removal>,
}

impl Table {
    /// The table of a data file; an error names the row that is wrong.
    fn parse(text: &str) -> Result<Table, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            apis: Vec<Row>,
        }
        let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let mut table = Table::default();
        for row in file.apis {
            let name = format!("{} {}", api_version(&row.group, &row.version), row.kind);
            let version = |text: &Option<String>| match text {
                Some(t) => KubeVersion::parse(t).map(Some).ok_or_else(|| format!("{name}: {t:?} is not a version")),
                None => Ok(None),
            };
            let (added, removed) = (version(&row.added)?, version(&row.removed_in)?);
            let rest = match (row.plural, row.namespaced) {
                (Some(plural), Some(namespaced)) => Some(Rest { plural, namespaced }),
                (None, None) => None,
                _ => return Err(format!("{name}: `plural` and `namespaced` go together")),
            };
            if let Some(removed_in) = row.removed_in {
                table.removals.push(Removal {
                    group: row.group.clone(),
                    version: row.version.clone(),
                    kind: row.kind.clone(),
                    removed_in,
                    replacement: row.replacement,
                    notes: row.notes,
                    fields_fix: row.fields_fix,
                    sources: row.sources.clone(),
                });
            } else if row.replacement.is_some() || row.fields_fix.is_some() {
                return Err(format!("{name}: a `replacement` or `fields_fix` without `removed_in`"));
            }
            let alpha = row.version.contains("alpha");
            table.apis.push(Api {
                on_by_default: row.on_by_default.unwrap_or(!alpha),
                group: row.group,
                version: row.version,
                kind: row.kind,
                rest,
                added,
                removed,
                sources: row.sources,
            });
        }
        table.removals.sort_by_key(Removal::removed);
        Ok(table)
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    // The data is built in, and `tests::the_data_parses` fails on any fault in it; a build with a
    // faulty file would know no API rather than stop.
    TABLE.get_or_init(|| Table::parse(DATA).unwrap_or_default())
}

/// Every group/version/kind of the table, in the data's order.
pub fn apis() -> &'static [Api] {
    &table().apis
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
/// `delete` when no API the target serves replaces it. (Fields that move are the row's
/// `fields_fix`, which runs first.)
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
    use std::collections::HashSet;

    use serde_json::{json, Value};

    use super::*;

    fn v(text: &str) -> KubeVersion {
        KubeVersion::parse(text).unwrap()
    }

    fn api(api_version: &str, kind: &str) -> Option<&'static Api> {
        apis().iter().find(|a| a.api_version() == api_version && a.kind == kind)
    }

    /// A fault in the data file is an error here, not an empty table at run time.
    #[test]
    fn the_data_parses() {
        let table = Table::parse(DATA).unwrap_or_else(|e| panic!("skel/data/apis.yaml: {e}"));
        assert!(table.apis.len() > 150 && table.removals.len() > 80, "{} {}", table.apis.len(), table.removals.len());
        assert_eq!(apis().len(), table.apis.len());
        assert!(Table::parse(
            "apis:\n  - {group: apps, version: v1, kind: Deployment, plural: deployments, sources: []}"
        )
        .is_err_and(|e| e.contains("apps/v1 Deployment")));
        assert!(Table::parse("apis:\n  - {group: apps, version: v1, kind: Deployment, removed_in: soon, sources: []}")
            .is_err_and(|e| e.contains("\"soon\" is not a version")));
        assert!(Table::parse("apis:\n  - {group: apps, version: v1, kind: Deployment, plurl: x, sources: []}").is_err());
        assert!(Table::parse(
            "apis:\n  - {group: apps, version: v1, kind: Deployment, replacement: apps/v2, sources: []}"
        )
        .is_err_and(|e| e.contains("without `removed_in`")));
    }

    #[test]
    fn the_table_is_whole() {
        let table = removals();
        for r in table {
            assert_eq!(r.removed().to_string(), r.removed_in, "{r:?}: write the version as 1.N");
            assert!(!r.kind.is_empty() && !r.version.is_empty(), "{r:?}");
        }
        assert!(table
            .iter()
            .any(|r| r.kind == "CronJob" && r.api_version() == "batch/v1beta1" && r.removed_in == "1.25"));
        assert_eq!(removal_index().len(), table.len(), "an apiVersion and kind appear twice");
        assert!(table.windows(2).all(|w| w[0].removed() <= w[1].removed()), "removals are in version order");
        // apps/v1beta1 never had ReplicaSet (it came to apps in v1beta2), whatever the guides list.
        assert_eq!(removal_of("apps/v1beta1", "ReplicaSet"), None);
        for kind in ["DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice"] {
            let r = removal_of("resource.k8s.io/v1beta1", kind).unwrap();
            assert_eq!((r.removed_in.as_str(), r.replacement.as_deref()), ("1.38", Some("resource.k8s.io/v1")));
            assert!(removal_of("resource.k8s.io/v1alpha3", kind).is_some_and(|r| r.removed_in == "1.34"));
            assert!(removal_of("resource.k8s.io/v1beta2", kind).is_some_and(|r| r.removed_in == "1.39"));
        }
    }

    /// Every source a row names is one the header defines (`CHANGELOG-1.N` and
    /// `kubernetes/kubernetes#N` for any number N).
    #[test]
    fn every_row_names_its_sources() {
        let defined: HashSet<&str> = DATA
            .lines()
            .skip_while(|l| !l.starts_with("# Sources:"))
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("#   ")?.split_once(" : ").map(|(name, _)| name.trim()))
            .collect();
        assert!(defined.contains("api-spec") && defined.contains("CHANGELOG-1.N"), "{defined:?}");
        let numbered = |s: &str, prefix: &str| s.strip_prefix(prefix).is_some_and(|n| n.parse::<u32>().is_ok());
        for a in apis() {
            assert!(!a.sources.is_empty(), "{} {} names no source", a.api_version(), a.kind);
            for s in &a.sources {
                let known = defined.contains(s.as_str())
                    || numbered(s, "CHANGELOG-1.")
                    || numbered(s, "kubernetes/kubernetes#");
                assert!(known, "{} {}: source {s:?} is not in the header", a.api_version(), a.kind);
            }
        }
    }

    #[test]
    fn rows_are_unique_and_consistent() {
        let mut seen = HashSet::new();
        for a in apis() {
            let name = format!("{} {}", a.api_version(), a.kind);
            assert!(seen.insert((a.api_version(), &a.kind)), "{name} appears twice");
            assert!(a.added.is_none_or(|added| a.removed.is_none_or(|removed| added < removed)), "{name}");
            assert!(a.added.is_none_or(|added| added >= OLDEST), "{name}: leave out `added` for before 1.16");
            let alpha = a.version.contains("alpha");
            assert!(!(alpha && a.on_by_default), "{name}: an alpha API is never on by default");
            if !a.on_by_default && !alpha {
                // KEP-3136: only beta APIs added from 1.24 on are off by default.
                assert!(a.added.is_some_and(|added| added >= KubeVersion::v1(24)), "{name}");
            }
            if let Some(rest) = &a.rest {
                assert_eq!(rest.plural, rest.plural.to_ascii_lowercase(), "{name}");
                assert!(rest.plural.ends_with('s'), "{name}");
            }
        }
        // One kind has one plural and one scope, whatever its version.
        for a in apis() {
            for b in apis().iter().filter(|b| b.group == a.group && b.kind == a.kind) {
                assert_eq!(a.rest, b.rest, "{} {} vs {}", a.kind, a.version, b.version);
            }
        }
    }

    /// A replacement is served when the API it replaces goes, and following replacements (for any
    /// later target) ends at an API that target serves, or at a removal with no replacement.
    #[test]
    fn replacements_are_served_when_the_old_one_goes() {
        let targets: Vec<KubeVersion> = removals().iter().map(Removal::removed).collect();
        for r in removals() {
            let name = format!("{} {}", r.api_version(), r.kind);
            assert!(api(&r.api_version(), &r.kind).is_some_and(|a| a.removed == Some(r.removed())), "{name}");
            if let Some(to) = &r.replacement {
                let next = api(to, &r.kind).unwrap_or_else(|| panic!("{name}: replacement {to} is not in the table"));
                assert!(next.served_at(r.removed()), "{name}: {to} is not served in {}", r.removed_in);
            }
            for &target in targets.iter().filter(|&&t| t >= r.removed()) {
                match served_replacement(r, target) {
                    Some(to) => assert!(api(&to, &r.kind).is_some_and(|a| a.served_at(target)), "{name} at {target}"),
                    None => {
                        let mut link = r;
                        while let Some(to) = &link.replacement {
                            link = removal_of(to, &r.kind).unwrap_or_else(|| panic!("{name} at {target}: {to}"));
                        }
                    }
                }
            }
        }
        let claim = removal_of("resource.k8s.io/v1alpha3", "ResourceClaim").unwrap();
        assert_eq!(served_replacement(claim, v("1.40")).as_deref(), Some("resource.k8s.io/v1"));
        let psp = removal_of("extensions/v1beta1", "PodSecurityPolicy").unwrap();
        assert_eq!(served_replacement(psp, v("1.24")).as_deref(), Some("policy/v1beta1"));
        assert_eq!(served_replacement(psp, v("1.25")), None);
    }

    /// The statements of a row's `fields_fix`: one per line, comments aside.
    fn statements(fix: &str) -> impl Iterator<Item = &str> {
        fix.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    #[test]
    fn fields_fixes_compile_and_select_their_row() {
        let fixes: Vec<&Removal> = removals().iter().filter(|r| r.fields_fix.is_some()).collect();
        assert!(fixes.len() >= 12, "{}", fixes.len());
        for r in fixes {
            let fix = r.fields_fix.as_deref().unwrap_or_default();
            let guard = format!("(kind == {:?} && apiVersion == {:?}", r.kind, r.api_version());
            for statement in statements(fix) {
                let selects = ["move", "copy", "modify", "remove"]
                    .iter()
                    .any(|command| statement.strip_prefix(command).is_some_and(|rest| rest.starts_with(&guard)));
                assert!(selects && statement.ends_with(");"), "{} {}: {statement}", r.api_version(), r.kind);
            }
            let script = format!("{fix}{}\n", migration_statement(r, r.removed()));
            if let Err(rejected) = crate::compile(&script) {
                panic!("{rejected:?}\n{script}");
            }
        }
    }

    /// `r`'s migration (its `fields_fix`, then the new apiVersion) applied to `obj`.
    fn migrate(r: &Removal, mut obj: Value) -> Value {
        let script =
            format!("{}{}\n", r.fields_fix.as_deref().unwrap_or_default(), migration_statement(r, r.removed()));
        let compiled = crate::compile(&script).expect("compiles");
        crate::Vm::new(&compiled.program, 0).run_value(&mut obj, 0).unwrap();
        obj
    }

    #[test]
    fn resource_claim_requests_move_under_exactly() {
        let requests = json!([
            {"name": "gpu", "deviceClassName": "gpu.example.com", "selectors": [{"cel": {"expression": "true"}}],
             "allocationMode": "ExactCount", "count": 2, "adminAccess": false, "tolerations": [{"operator": "Exists"}]},
            {"name": "one", "deviceClassName": "nic.example.com"},
            {"name": "any", "firstAvailable": [{"name": "a", "deviceClassName": "x", "count": 2}]},
        ]);
        let want = json!([
            {"name": "gpu", "exactly": {"selectors": [{"cel": {"expression": "true"}}], "allocationMode": "ExactCount",
             "count": 2, "adminAccess": false, "tolerations": [{"operator": "Exists"}], "deviceClassName": "gpu.example.com"}},
            {"name": "one", "exactly": {"deviceClassName": "nic.example.com"}},
            {"name": "any", "firstAvailable": [{"name": "a", "deviceClassName": "x", "count": 2}]},
        ]);
        for version in ["v1beta1", "v1alpha3"] {
            let api = format!("resource.k8s.io/{version}");
            let claim = removal_of(&api, "ResourceClaim").unwrap();
            let got = migrate(
                claim,
                json!({"apiVersion": api, "kind": "ResourceClaim", "spec": {"devices": {"requests": requests}}}),
            );
            assert_eq!(
                got,
                json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                "spec": {"devices": {"requests": want}}}),
                "{api}"
            );
            let template = removal_of(&api, "ResourceClaimTemplate").unwrap();
            let got = migrate(
                template,
                json!({"apiVersion": api, "kind": "ResourceClaimTemplate",
                "spec": {"spec": {"devices": {"requests": requests}}}}),
            );
            assert_eq!(got["spec"]["spec"]["devices"]["requests"], want, "{api}");
        }
    }

    #[test]
    fn resource_slice_devices_leave_basic() {
        let slice = |api: &str, capacity: Value| {
            json!({"apiVersion": api, "kind": "ResourceSlice", "spec": {"driver": "d", "devices": [
                {"name": "gpu-0", "basic": {"attributes": {"model": {"string": "a100"}}, "capacity": {"memory": capacity}}},
                {"name": "gpu-1"},
                {"name": "gpu-2", "basic": {"nodeName": "n1", "unknown": 1}},
            ]}})
        };
        let want = json!([
            {"name": "gpu-0", "attributes": {"model": {"string": "a100"}}, "capacity": {"memory": {"value": "80Gi"}}},
            {"name": "gpu-1"},
            // A field v1 does not have stays where it was, for the server to refuse.
            {"name": "gpu-2", "basic": {"unknown": 1}, "nodeName": "n1"},
        ]);
        let r = removal_of("resource.k8s.io/v1beta1", "ResourceSlice").unwrap();
        let got = migrate(r, slice("resource.k8s.io/v1beta1", json!({"value": "80Gi"})));
        assert_eq!((&got["apiVersion"], &got["spec"]["devices"]), (&json!("resource.k8s.io/v1"), &want));
        // In v1alpha3 a capacity is a bare quantity.
        let r = removal_of("resource.k8s.io/v1alpha3", "ResourceSlice").unwrap();
        let got = migrate(r, slice("resource.k8s.io/v1alpha3", json!("80Gi")));
        assert_eq!((&got["apiVersion"], &got["spec"]["devices"]), (&json!("resource.k8s.io/v1"), &want));
    }

    #[test]
    fn other_fields_fixes() {
        let r = removal_of("node.k8s.io/v1alpha1", "RuntimeClass").unwrap();
        let got = migrate(
            r,
            json!({"apiVersion": "node.k8s.io/v1alpha1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
            "spec": {"runtimeHandler": "runsc", "overhead": {"podFixed": {"cpu": "250m"}}}}),
        );
        assert_eq!(
            got,
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
            "handler": "runsc", "overhead": {"podFixed": {"cpu": "250m"}}})
        );

        let r = removal_of("rbac.authorization.k8s.io/v1alpha1", "RoleBinding").unwrap();
        let got = migrate(
            r,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1alpha1", "kind": "RoleBinding",
            "subjects": [{"kind": "User", "apiVersion": "rbac.authorization.k8s.io/v1alpha1", "name": "jane"},
                         {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}}),
        );
        assert_eq!(
            got["subjects"],
            json!([{"kind": "User", "name": "jane"},
            {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}])
        );

        let r = removal_of("storagemigration.k8s.io/v1alpha1", "StorageVersionMigration").unwrap();
        let got = migrate(
            r,
            json!({"apiVersion": "storagemigration.k8s.io/v1alpha1", "kind": "StorageVersionMigration",
            "spec": {"resource": {"group": "apps", "version": "v1", "resource": "deployments"}, "continueToken": "x"}}),
        );
        assert_eq!(got["spec"], json!({"resource": {"group": "apps", "resource": "deployments"}}));
    }

    /// `skel check --fix` writes a removal's `fields_fix` (in the canonical style) before the
    /// statement that changes its apiVersion.
    #[test]
    fn fix_scripts_move_the_fields_first() {
        let target = KubeVersion::v1(40);
        let mut scanner = crate::upgrade::Scanner::new(target);
        let with_fields: Vec<&Removal> = removals().iter().filter(|r| r.fields_fix.is_some()).collect();
        assert!(
            with_fields.iter().any(|r| r.kind == "Ingress") && with_fields.iter().any(|r| r.kind == "ResourceClaim")
        );
        for r in &with_fields {
            scanner.object(0, 1, &json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": "x"}}));
        }
        let script = scanner.report().fix_script().expect("the formatter takes the fix script");
        for r in with_fields {
            let fields =
                r.fields_fix.as_deref().map(|f| skel_grammar::format(f.trim()).unwrap_or_default()).unwrap_or_default();
            let at = script
                .find(fields.trim())
                .unwrap_or_else(|| panic!("{} {}:\n{fields}\nis not in\n{script}", r.api_version(), r.kind));
            let moved = skel_grammar::format(&migration_statement(r, target)).unwrap_or_default();
            let after = script[at..].find(moved.trim());
            assert!(after.is_some(), "{} {}: the apiVersion changes after the fields", r.api_version(), r.kind);
        }
    }
}
