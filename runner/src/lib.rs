//! skel-runner: replays a SimKube trace onto a Kubernetes (KWOK) cluster. The [`Cluster`] trait
//! is what a run writes to: [`KubeCluster`] (kube-rs over HTTP) or [`DryRun`] (nothing written,
//! discovery from the built-in table). [`replay`] checks first (preflight), then replays.

pub mod api;
pub mod builtin;
mod cluster;
mod dry;
pub mod lifecycle;
pub mod plan;
pub mod preflight;
mod replay;
pub mod time;

pub use cluster::{
    block_on, Access, Applied, Cluster, ClusterError, Connection, Deleted, Failure, KubeCluster, PodUpdate, Retry,
    FIELD_MANAGER,
};
pub use dry::DryRun;
pub use replay::{
    replay, Ending, LifecycleOutcome, ObjectFailure, Observer, Outcome, Phase, Progress, Quiet, ReplayError,
    ReplaySummary, RunOptions, Speed, Step, Survey, Verb,
};
pub use tokio::sync::mpsc;
