//! What the runner's integration tests set up alike: a fake API server with a kubeconfig in a
//! temporary folder and a `Connection` to it, the `RunOptions` of a test run, and a replay fed
//! from a list of events. Included with `mod common;` next to `mod fake_api;` (it uses that
//! module's `FakeApi`); each test file uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use skel_runner::plan::Naming;
use skel_runner::{
    block_on, mpsc, Cluster, Connection, KubeCluster, Observer, ReplayError, ReplaySummary, Retry, RunOptions, Speed,
    Survey,
};
use skel_trace::Event;

use crate::fake_api::FakeApi;

/// A started fake API server, the folder holding its kubeconfig (kept as long as the setup),
/// and a connection through that kubeconfig.
pub struct Setup {
    pub api: FakeApi,
    pub dir: tempfile::TempDir,
    pub connection: Connection,
}

/// Writes `api`'s kubeconfig into a new temporary folder and connects through it, each
/// request given `timeout` and retried as `retry` says.
pub fn setup(api: FakeApi, timeout: Duration, retry: Retry) -> Setup {
    let (dir, kubeconfig) = kubeconfig_path();
    api.write_kubeconfig(&kubeconfig);
    let connection = connection(&kubeconfig, timeout, retry);
    Setup { api, dir, connection }
}

/// A new temporary folder and the path of a kubeconfig in it (not written yet).
pub fn kubeconfig_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    (dir, kubeconfig)
}

/// A connection through `kubeconfig`'s current context.
pub fn connection(kubeconfig: &Path, timeout: Duration, retry: Retry) -> Connection {
    Connection { kubeconfig: Some(kubeconfig.to_path_buf()), context: None, timeout: Some(timeout), retry }
}

/// `attempts` tries with a short backoff (5 ms, at most 20 ms), so that retries do not slow
/// the tests.
pub fn quick_retry(attempts: u32) -> Retry {
    Retry { attempts, base: Duration::from_millis(5), cap: Duration::from_millis(20) }
}

/// A run named `run_id` into `virtual-` namespaces, at full speed, one job, no virtual node,
/// no stage installed, clean-up waiting at most 5 s; tests change what they need.
pub fn options(run_id: &str) -> RunOptions {
    RunOptions {
        naming: Naming { namespace_prefix: "virtual-".into(), run_id: run_id.into() },
        speed: Speed::Max,
        from: None,
        until: None,
        virtual_nodes: 0,
        node_template: None,
        keep: false,
        fail_fast: false,
        jobs: 1,
        templates: Default::default(),
        install_stages: false,
        cleanup_wait: Duration::from_secs(5),
    }
}

/// The survey of `events`, read as the trace reader would.
pub fn survey(events: &[Event]) -> Survey {
    let mut survey = Survey::default();
    events.iter().for_each(|e| survey.add(e));
    survey
}

/// Replays `events` on `cluster`, fed through a channel by a task of their own.
pub async fn replay<C: Cluster>(
    cluster: &C,
    survey: &Survey,
    events: Vec<Event>,
    opts: &RunOptions,
    stop: &AtomicBool,
    observer: &mut dyn Observer,
) -> Result<ReplaySummary, ReplayError> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        for e in events {
            if tx.send(e).await.is_err() {
                break;
            }
        }
    });
    skel_runner::replay(cluster, survey, rx, opts, stop, observer).await
}

/// Connects through `connection` and replays `events` there, on a runtime of its own.
pub fn run(
    connection: &Connection,
    survey: &Survey,
    events: Vec<Event>,
    opts: &RunOptions,
    stop: &AtomicBool,
    observer: &mut dyn Observer,
) -> Result<ReplaySummary, ReplayError> {
    block_on(async {
        let cluster = KubeCluster::connect(connection).await?;
        replay(&cluster, survey, events, opts, stop, observer).await
    })
    .unwrap()
}

/// The requests, one line each, queries left out (kube orders them as it likes).
pub fn lines(api: &FakeApi) -> Vec<String> {
    api.request_lines().into_iter().map(|l| l.split('?').next().unwrap_or_default().to_string()).collect()
}

/// The requests that write (neither reads nor access reviews).
pub fn writes(api: &FakeApi) -> Vec<String> {
    lines(api).into_iter().filter(|l| !l.starts_with("GET") && !l.starts_with("POST")).collect()
}

/// A diagnostic as a user sees it: miette's graphical report, 100 columns, without colours.
pub fn render(err: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, err)
        .unwrap();
    out
}
