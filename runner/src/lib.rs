//! skel-runner: replays a SimKube trace onto a Kubernetes (KWOK) cluster. The [`Cluster`] trait
//! is what a run writes to: [`KubeCluster`] (kube-rs over HTTP) or [`DryRun`] (nothing written,
//! discovery from the built-in table). [`replay`] checks first (preflight: kinds, namespaces,
//! permissions, KWOK's pod [`stages`]), then replays, then cleans up.

pub mod api;
pub mod builtin;
mod cluster;
mod dry;
pub mod lifecycle;
pub mod plan;
pub mod preflight;
mod replay;
pub mod stages;
pub mod time;

pub use cluster::{
    block_on, Access, Applied, Cluster, ClusterError, Connection, Deleted, Failure, KubeCluster, PodUpdate, Retry,
    FIELD_MANAGER,
};
pub use dry::DryRun;
pub use replay::{
    replay, CleanupReport, Ending, LifecycleOutcome, ObjectFailure, Observer, Outcome, Phase, Progress, Quiet,
    ReplayError, ReplaySummary, RunOptions, Speed, StageReport, StageStatus, Step, Survey, Verb, CLEANUP_WAIT,
};
pub use tokio::sync::mpsc;
