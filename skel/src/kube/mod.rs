//! What skel knows about Kubernetes, in one place: versions, the API table (which
//! group/version/kinds each release serves and removed, `apis`), the upgrade hazards that are not
//! API removals (`hazards`), where a pod spec lives in an object (`podspec`), what the common
//! fields mean (`fields`, for the language server's hover and completion) and the fields SimKube
//! types strictly (`typed`, for the type checker and the VM). The tables are data with a source
//! per row (`skel/data/*.yaml`), read by `skel check`, `skel run` and the language server.
//! `shape` derives from them what `skel check` reads of a trace's manifests.

pub mod apis;
pub mod fields;
pub mod hazards;
pub mod podspec;
#[cfg(test)]
pub(crate) mod samples;
pub mod shape;
pub(crate) mod typed;

/// A Kubernetes minor version, `1.25`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    /// A version no release reaches: what a row without a (parsable) version compares as.
    pub const NEVER: KubeVersion = KubeVersion { major: u32::MAX, minor: u32::MAX };

    /// `1.25`, `v1.25` or `1.25.3` (the patch is ignored).
    pub fn parse(text: &str) -> Option<KubeVersion> {
        let t = text.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        if parts.next().is_some_and(|p| p.parse::<u32>().is_err()) || parts.next().is_some() {
            return None;
        }
        Some(KubeVersion { major, minor })
    }

    /// `1.N`.
    pub const fn v1(minor: u32) -> KubeVersion {
        KubeVersion { major: 1, minor }
    }
}

impl std::fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// An object's `apiVersion`: `group/version`, or `version` for the core group (`""`).
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(KubeVersion::parse("v1.25.3"), Some(KubeVersion::v1(25)));
        assert_eq!(KubeVersion::parse("1.9"), Some(KubeVersion::v1(9)));
        assert!(KubeVersion::parse("1.x").is_none() && KubeVersion::parse("125").is_none());
        assert!(KubeVersion::v1(9) < KubeVersion::v1(25));
        assert_eq!(api_version("", "v1"), "v1");
        assert_eq!(api_version("apps", "v1"), "apps/v1");
    }
}
