//! The replay: preflight, virtual nodes, then the trace's events in order at trace timing
//! divided by the speed (objects applied and deleted concurrently within an event), then the
//! clean-up of what the run created.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::{self, StreamExt};
use indexmap::IndexMap;
use miette::Diagnostic;
use serde::Serialize;
use serde_json::Value;
use skel_trace::Event;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::api::{self, Gvk, Resource, Served};
use crate::cluster::{Access, Applied, Cluster, ClusterError, Deleted, Failure, PodUpdate};
use crate::lifecycle::{Driver, Given, Lifecycles};
use crate::plan::{self, Naming, Target};
use crate::preflight::{BadNamespace, BadNamespaces, Forbidden, Missing, NoStageApi, StagesUnfit, Unserved};
use crate::stages::{self, StageCheck};

/// How fast simulated time runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// No waits between events.
    Max,
    /// Trace seconds per wall-clock second (`2` replays twice as fast).
    Times(f64),
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub naming: Naming,
    pub speed: Speed,
    /// Seconds from the trace's first event: what comes before `from` is applied at once, as
    /// the state it leaves; what comes after `until` is not replayed.
    pub from: Option<f64>,
    pub until: Option<f64>,
    pub virtual_nodes: usize,
    pub node_template: Option<Value>,
    /// Leave the run's namespaces and virtual nodes on the cluster.
    pub keep: bool,
    /// Stop at the first object that fails.
    pub fail_fast: bool,
    /// Requests in flight at once within an event.
    pub jobs: usize,
    /// Where each kind keeps its pod templates (the trace's config, else the built-in kinds).
    pub templates: plan::PodTemplates,
    /// Install skel's KWOK pod stages for the run (replacing those of the same names); the
    /// clean-up puts the replaced ones back and deletes the others (unless `keep`).
    pub install_stages: bool,
    /// How long the clean-up waits for the namespaces it deleted to be gone ([`CLEANUP_WAIT`]).
    pub cleanup_wait: Duration,
}

/// How long the clean-up waits, by default, for the namespaces it deleted to be gone.
pub const CLEANUP_WAIT: Duration = Duration::from_secs(120);

/// What a first pass over the trace found: the kinds the preflight checks, and the extent.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub events: usize,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// Objects per kind, applied or deleted.
    pub kinds: BTreeMap<Gvk, u64>,
    /// Kinds some event deletes.
    pub deleted_kinds: BTreeSet<Gvk>,
    /// Per kind, the trace namespaces its objects name (`""` for none) and how many; for
    /// `Namespace` objects, their names.
    pub namespaces: BTreeMap<Gvk, BTreeMap<String, u64>>,
    /// The trace's config (its tracked kinds and their pod templates), when it has one.
    pub config: Option<skel_trace::Config>,
    /// What the trace recorded of its pods' lifecycles, per owner.
    pub lifecycles: skel_trace::PodLifecycles,
}

/// The survey is read in one pass over the trace: its sections and events.
impl skel_trace::TraceVisitor for Survey {
    type Error = std::convert::Infallible;

    fn section(&mut self, section: skel_trace::Section) -> Result<(), Self::Error> {
        match section {
            skel_trace::Section::Config(config) => self.config = Some(config),
            skel_trace::Section::PodLifecycles(lifecycles) => self.lifecycles = lifecycles,
            _ => {}
        }
        Ok(())
    }

    fn event(&mut self, _: usize, event: Event) -> Result<(), Self::Error> {
        self.add(&event);
        Ok(())
    }
}

impl Survey {
    pub fn add(&mut self, event: &Event) {
        self.events += 1;
        self.first_ts = Some(self.first_ts.map_or(event.ts, |t| t.min(event.ts)));
        self.last_ts = Some(self.last_ts.map_or(event.ts, |t| t.max(event.ts)));
        for obj in &event.applied_objs {
            if let Some(gvk) = Gvk::of(obj) {
                self.place(&gvk, obj);
                *self.kinds.entry(gvk).or_default() += 1;
            }
        }
        for obj in &event.deleted_objs {
            if let Some(gvk) = Gvk::of(obj) {
                *self.kinds.entry(gvk.clone()).or_default() += 1;
                self.deleted_kinds.insert(gvk);
            }
        }
    }

    fn place(&mut self, gvk: &Gvk, obj: &Value) {
        let field = if plan::is_namespace(gvk) { "name" } else { "namespace" };
        let ns = obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or("");
        let counts = self.namespaces.entry(gvk.clone()).or_default();
        match counts.get_mut(ns) {
            Some(n) => *n += 1,
            None => {
                counts.insert(ns.to_string(), 1);
            }
        }
    }

    /// The trace's length in seconds (its first and last `ts` may be any two times).
    pub fn duration(&self) -> u64 {
        match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => b.abs_diff(a),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Apply,
    Delete,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::Apply => "apply",
            Verb::Delete => "delete",
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied(Applied),
    Deleted(Deleted),
    Failed(Failure),
}

/// Why a step happens: an event of the trace, or the run's own set-up and clean-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Virtual nodes, before the first event.
    Setup,
    /// A namespace created for the objects of event `i`, or event `i`'s objects.
    Event(usize),
    /// The state the events before `--from` leave, applied at once.
    Catchup,
    Cleanup,
}

/// One request's worth of the replay, as observers see it.
#[derive(Debug, Clone)]
pub struct Step {
    pub phase: Phase,
    /// Seconds from the trace's first event.
    pub offset: f64,
    pub verb: Verb,
    /// The run's own object (a namespace made on demand, a virtual node, the clean-up).
    pub own: bool,
    pub gvk: Gvk,
    pub target: String,
    pub outcome: Outcome,
}

/// Counts so far, after each event. `applied` and `deleted` count the trace's objects;
/// `failed` counts every request that failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Events replayed so far (the catch-up counts its events).
    pub event: usize,
    pub events: usize,
    /// The simulated clock: seconds from the trace's first event.
    pub offset: f64,
    pub applied: u64,
    pub deleted: u64,
    pub failed: u64,
}

/// Sees the replay as it goes (progress display, the dry-run plan, tests).
pub trait Observer {
    fn step(&mut self, _step: &Step) {}
    fn progress(&mut self, _progress: &Progress) {}
    /// While waiting for the next event: the simulated clock, in seconds from the trace's start.
    fn waiting(&mut self, _clock: f64) {}
    /// Called once, when the preflight passed and the first write is about to happen.
    fn started(&mut self, _version: skel::upgrade::KubeVersion) {}
    /// While the clean-up waits for the namespaces it deleted to be gone: those still there
    /// (`Terminating`), and how long it has waited.
    fn cleaning(&mut self, _terminating: &[String], _waited: Duration) {}
}

/// An observer that sees nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// One object that failed.
#[derive(Debug, Clone)]
pub struct ObjectFailure {
    pub verb: Verb,
    pub gvk: Gvk,
    pub target: String,
    pub failure: Failure,
}

/// Why the replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every event was replayed.
    Done,
    /// Events after `--until` were left out.
    Until,
    Interrupted,
    FailFast,
}

#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub ending: Ending,
    pub progress: Progress,
    /// Events before `--from`, applied as one state.
    pub caught_up: usize,
    pub created: u64,
    /// Deletes of objects that were already gone.
    pub absent: u64,
    pub failures: Vec<ObjectFailure>,
    /// The namespaces the run created (and the clean-up deletes), in order.
    pub namespaces: Vec<String>,
    /// Virtual nodes the run created.
    pub nodes: usize,
    /// What the clean-up deleted (namespaces and nodes), unless `--keep`.
    pub cleaned_up: usize,
    /// What the run's pods were given of the trace's lifecycles.
    pub lifecycles: LifecycleOutcome,
    /// What the preflight found of the cluster's KWOK stages, and what the run installed.
    pub stages: StageReport,
    /// What the clean-up did.
    pub cleanup: CleanupReport,
    pub elapsed: Duration,
}

/// What the run found of the cluster's KWOK pod stages, and what it installed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageReport {
    pub status: StageStatus,
    /// The cluster's stages as the preflight found them (before any install).
    pub found: Option<StageCheck>,
    /// Why the replay's pods may not complete as the trace recorded, when it went on anyway.
    pub warning: Option<String>,
    /// Stages installed (`--install-stages`), by name.
    pub installed: Vec<String>,
    /// Of those, the ones that replaced a stage of the cluster (the clean-up puts it back).
    pub replaced: Vec<String>,
}

/// What the preflight could say of the cluster's KWOK stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not looked at: the trace gives its pods no lifecycles and no install was asked for.
    #[default]
    NotChecked,
    /// A dry run: a run would look at the cluster's stages (and install skel's, with
    /// `--install-stages`).
    DryRun,
    /// The cluster does not serve KWOK's Stage API: nothing completes the replay's pods on its
    /// label (a warning, in [`StageReport::warning`]).
    NoStageApi,
    /// The cluster's stages (skel's, once installed) complete the replay's pods as recorded.
    Ready,
}

/// What the clean-up did (nothing with `--keep`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CleanupReport {
    /// Whether it ran (not with `--keep`).
    pub ran: bool,
    /// What it deleted, `KIND-VERSION Kind name` (`v1 Namespace virtual-shop`), in order:
    /// virtual nodes, the cluster-scoped objects the run created, namespaces.
    pub deleted: Vec<String>,
    /// What it could not delete (the API's answers are in [`ReplaySummary::failures`]).
    pub failed: Vec<String>,
    /// Whether every namespace it deleted was gone before the wait ran out.
    pub finished: bool,
    /// The namespaces still there (`Terminating`) when the wait ran out.
    pub terminating: Vec<String>,
    /// Seconds it waited for the namespaces to go.
    pub waited_secs: f64,
    /// Stages the run replaced, put back as they were.
    pub stages_restored: Vec<String>,
    /// Stages the run installed where there was none, deleted.
    pub stages_deleted: Vec<String>,
}

/// What the replay did about its pods' lifecycles.
#[derive(Debug, Clone, Default)]
pub struct LifecycleOutcome {
    /// Each pod given a lifecycle, in the order they ran.
    pub given: Vec<Given>,
    /// Pods that ran whose owner has no lifecycle in the trace.
    pub without: usize,
    /// Pods whose lifecycle could not be set (the API's answer).
    pub failures: Vec<ObjectFailure>,
    /// What went wrong with the watch (it went on after each).
    pub troubles: Vec<String>,
}

/// Gives the run's pods their lifecycles as the watch sees them run, until the events are
/// replayed (`done` fires or its sender is dropped).
async fn drive<C: Cluster>(
    cluster: &C,
    watch: Option<mpsc::Receiver<PodUpdate>>,
    driver: &mut Driver,
    mut done: oneshot::Receiver<()>,
) -> LifecycleOutcome {
    let mut out = LifecycleOutcome::default();
    let Some(mut updates) = watch else { return out };
    loop {
        let update = tokio::select! {
            biased;
            _ = &mut done => break,
            update = updates.recv() => update,
        };
        match update {
            None => break,
            Some(PodUpdate::Pod(pod)) => {
                let Some(patch) = driver.on_pod(&pod, SystemTime::now()) else { continue };
                if let Err(failure) = cluster.patch_pod(&pod.namespace, &pod.name, &patch).await {
                    if out.failures.len() < FAILURES_KEPT {
                        let (verb, gvk) = (Verb::Apply, Gvk::new("v1", "Pod"));
                        out.failures.push(ObjectFailure {
                            verb,
                            gvk,
                            target: format!("{}/{}", pod.namespace, pod.name),
                            failure,
                        });
                    }
                }
            }
            Some(PodUpdate::Trouble(trouble)) => {
                if out.troubles.len() < FAILURES_KEPT && !out.troubles.contains(&trouble) {
                    out.troubles.push(trouble);
                }
            }
        }
    }
    out
}

/// Failures kept for the report; more are counted.
const FAILURES_KEPT: usize = 1000;

/// Why a replay could not start.
#[derive(Debug, Error, Diagnostic)]
pub enum ReplayError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Unserved(#[from] Unserved),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Forbidden(#[from] Forbidden),
    #[error(transparent)]
    #[diagnostic(transparent)]
    BadNamespaces(#[from] BadNamespaces),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Stages(#[from] StagesUnfit),
    #[error(transparent)]
    #[diagnostic(transparent)]
    NoStageApi(#[from] NoStageApi),
}

/// An object of an event, ready to send.
struct Op {
    verb: Verb,
    /// The run's own object (a namespace made on demand, the clean-up), not one of the trace.
    own: bool,
    resource: Arc<Resource>,
    target: Target,
    manifest: Value,
}

struct Replay<'a, C: Cluster> {
    cluster: &'a C,
    opts: &'a RunOptions,
    observer: &'a mut dyn Observer,
    served: Served,
    progress: Progress,
    created: u64,
    absent: u64,
    failures: Vec<ObjectFailure>,
    /// Namespaces this run created, in order: the clean-up deletes them.
    namespaces: Vec<String>,
    /// Namespaces known to exist (created by the run or already there).
    ready: HashSet<String>,
    /// Virtual nodes this run created.
    nodes: Vec<String>,
    /// Cluster-scoped objects of the trace this run created (not namespaces): the clean-up
    /// deletes those the trace did not delete.
    cluster_objects: Vec<(Arc<Resource>, String)>,
    /// Stages this run installed, each with the stage it replaced.
    installed: Vec<(String, Option<Value>)>,
    stage_report: StageReport,
}

/// Checks the cluster (version, discovery, permissions), then replays the events that come
/// through `events`. `survey` must describe the same events. Nothing is written when the
/// preflight fails. `stop` ends the replay between requests, after which the clean-up runs.
pub async fn replay<C: Cluster>(
    cluster: &C,
    survey: &Survey,
    mut events: mpsc::Receiver<Event>,
    opts: &RunOptions,
    stop: &AtomicBool,
    observer: &mut dyn Observer,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let version = cluster.version().await?;
    let lifecycles = Lifecycles::new(&survey.lifecycles);
    // The stages matter when the trace gives its pods lifecycles, or when asked to install
    // them; a dry run does not look (its table knows no KWOK).
    let stages_wanted = !lifecycles.is_empty() || opts.install_stages;
    let mut wanted: Vec<Gvk> = survey.kinds.keys().cloned().collect();
    wanted.push(api::namespaces().gvk);
    if opts.virtual_nodes > 0 {
        wanted.push(api::nodes().gvk);
    }
    if stages_wanted && cluster.reaches_cluster() {
        wanted.push(stages::gvk());
    }
    let served = cluster.discover(&wanted).await?;
    let missing: Vec<Missing> = survey
        .kinds
        .iter()
        .filter(|(gvk, _)| served.get(gvk).is_none())
        .map(|(gvk, &objects)| Missing { gvk: gvk.clone(), objects })
        .collect();
    if !missing.is_empty() {
        return Err(Unserved { cluster: cluster.describe(), version, missing }.into());
    }
    let bad = bad_namespaces(survey, &served, &opts.naming);
    if !bad.is_empty() {
        return Err(BadNamespaces { prefix: opts.naming.namespace_prefix.clone(), bad }.into());
    }
    if opts.install_stages && cluster.reaches_cluster() && served.get(&stages::gvk()).is_none() {
        return Err(NoStageApi { cluster: cluster.describe() }.into());
    }
    let denied = cluster.denied(&needs(survey, &served, opts)).await?;
    if !denied.is_empty() {
        return Err(Forbidden { cluster: cluster.describe(), denied }.into());
    }
    let (stage_report, existing_stages) = stage_preflight(cluster, survey, &lifecycles, &served, opts).await?;
    observer.started(version);

    let mut run = Replay {
        cluster,
        opts,
        observer,
        served,
        progress: Progress { events: survey.events, ..Progress::default() },
        created: 0,
        absent: 0,
        failures: Vec::new(),
        namespaces: Vec::new(),
        ready: HashSet::new(),
        nodes: Vec::new(),
        cluster_objects: Vec::new(),
        installed: Vec::new(),
        stage_report,
    };
    let mut ending = None;
    if opts.install_stages {
        ending = run.install_stages(&existing_stages).await;
    }
    if ending.is_none() {
        ending = run.virtual_nodes().await;
    }
    // The pods' lifecycles: the run's pods are watched while the events are replayed.
    let mut driver = Driver::new(lifecycles, opts.speed);
    let watch = match driver.has_lifecycles() && ending.is_none() {
        true => cluster.watch_pods(&format!("{}={}", plan::RUN_LABEL, opts.naming.run_id)),
        false => None,
    };
    let (events_done, done) = oneshot::channel();
    let replayed = async {
        let mut caught_up = 0;
        if ending.is_none() {
            (ending, caught_up) = run.events(survey, &mut events, stop).await;
        }
        // The watch may have ended already (or never started): nobody to tell.
        let _ = events_done.send(());
        caught_up
    };
    let (caught_up, lifecycles) = futures::join!(replayed, drive(cluster, watch, &mut driver, done));
    let lifecycles = LifecycleOutcome { without: driver.without_lifecycle(), given: driver.given, ..lifecycles };
    let nodes = run.nodes.len();
    let namespaces = run.namespaces.clone();
    let cleanup = if opts.keep { CleanupReport::default() } else { run.clean_up().await };
    Ok(ReplaySummary {
        ending: ending.unwrap_or(Ending::Done),
        progress: run.progress,
        caught_up,
        created: run.created,
        absent: run.absent,
        failures: run.failures,
        namespaces,
        nodes,
        cleaned_up: cleanup.deleted.len(),
        lifecycles,
        stages: run.stage_report,
        cleanup,
        elapsed: started.elapsed(),
    })
}

/// The preflight's look at the cluster's KWOK stages, when the trace gives its pods lifecycles
/// (or `--install-stages` was asked for): is there a stage that completes the pods the replay
/// labels, and none that completes them whatever their lifecycle? With `--install-stages`, the
/// stages as they will be once skel's replace those of their names. Returns what it found and
/// the cluster's stages (for the install to keep what it replaces).
async fn stage_preflight<C: Cluster>(
    cluster: &C,
    survey: &Survey,
    lifecycles: &Lifecycles,
    served: &Served,
    opts: &RunOptions,
) -> Result<(StageReport, Vec<Value>), ReplayError> {
    let mut report = StageReport::default();
    if lifecycles.is_empty() && !opts.install_stages {
        return Ok((report, Vec::new()));
    }
    if !cluster.reaches_cluster() {
        report.status = StageStatus::DryRun;
        return Ok((report, Vec::new()));
    }
    let finished: usize = lifecycles
        .owners()
        .flat_map(|(_, list)| list.iter())
        .filter(|l| matches!(l, skel_trace::PodLifecycle::Finished(..)))
        .count();
    let Some(resource) = served.get(&stages::gvk()) else {
        // `--install-stages` without the API was refused before; here the trace has lifecycles.
        report.status = StageStatus::NoStageApi;
        report.warning = Some(no_stage_api_warning(finished));
        return Ok((report, Vec::new()));
    };
    let existing = cluster.list_objects(&resource).await.map_err(|f| {
        let request = format!("GET {}", resource.collection_path(None));
        ReplayError::Cluster(cluster_error(&cluster.describe(), &request, f))
    })?;
    let found = stages::check(&existing);
    let after = match opts.install_stages {
        true => stages::check(&stages::after_install(&existing)),
        false => found.clone(),
    };
    // A stage that completes only Job pods matters to a trace with Jobs (or CronJobs).
    let jobs = survey.kinds.keys().any(|g| g.group() == "batch")
        || lifecycles.owners().any(|((kind, _), _)| kind.starts_with("batch/"));
    let strays: Vec<stages::Stray> = after.strays.into_iter().filter(|s| !s.jobs_only || jobs).collect();
    let no_completer = finished > 0 && after.completing.is_empty();
    if !lifecycles.is_empty() && (no_completer || !strays.is_empty()) {
        return Err(StagesUnfit {
            cluster: cluster.describe(),
            finished,
            no_completer,
            strays,
            installing: opts.install_stages,
        }
        .into());
    }
    report.status = StageStatus::Ready;
    report.found = Some(found);
    Ok((report, existing))
}

fn no_stage_api_warning(finished: usize) -> String {
    format!(
        "the cluster does not serve KWOK's Stage API (kwok.x-k8s.io/v1alpha1 stages), so no stage completes the \
         replay's pods on their `{}` label: {finished} recorded pod {} will end only if the cluster's own pods end \
         (a cluster without KWOK runs real containers). On a KWOK cluster created by kwokctl, recreate it with \
         `kwokctl create cluster --enable-crds=Stage` and run with `--install-stages`",
        crate::lifecycle::STAGE_COMPLETE_LABEL,
        if finished == 1 { "lifecycle" } else { "lifecycles" }
    )
}

/// A request of the preflight that failed, as the error that stops the run.
fn cluster_error(url: &str, request: &str, f: Failure) -> ClusterError {
    let url = url.to_string();
    match f.code {
        None => ClusterError::Unreachable { url, reason: f.message },
        Some(code @ (401 | 403)) => {
            ClusterError::Unauthorized { url, code, reason: format!("{}: {}", f.reason, f.message) }
        }
        Some(code) => ClusterError::BadAnswer {
            url,
            request: request.to_string(),
            reason: format!("{code} {}: {}", f.reason, f.message),
        },
    }
}

/// The namespaces the replay would create whose names the API server would refuse.
fn bad_namespaces(survey: &Survey, served: &Served, naming: &Naming) -> Vec<BadNamespace> {
    let mut bad: Vec<BadNamespace> = Vec::new();
    for (gvk, counts) in &survey.namespaces {
        let namespaced = served.get(gvk).is_some_and(|r| r.namespaced);
        if !namespaced && !plan::is_namespace(gvk) {
            continue;
        }
        for (ns, &objects) in counts {
            let trace_ns = if ns.is_empty() { "default" } else { ns.as_str() };
            let target = naming.namespace(trace_ns);
            let Some(problem) = plan::namespace_problem(&target) else { continue };
            let has_object = plan::is_namespace(gvk);
            match bad.iter_mut().find(|b| b.trace_namespace == trace_ns) {
                Some(b) => {
                    b.objects += objects;
                    b.has_object |= has_object;
                }
                None => bad.push(BadNamespace {
                    trace_namespace: trace_ns.to_string(),
                    target,
                    problem,
                    objects,
                    suggestion: plan::namespace_suggestion(trace_ns, naming.namespace_prefix.len()),
                    has_object,
                }),
            }
        }
    }
    bad
}

/// The verbs the run needs, per resource: server-side apply is `patch` (and `create` for new
/// objects); deletes of the trace and of the clean-up are `delete`.
fn needs(survey: &Survey, served: &Served, opts: &RunOptions) -> Vec<Access> {
    let mut out = Vec::new();
    let mut add = |verb: &'static str, resource: &Resource| {
        let access = Access { verb, resource: resource.clone() };
        if !out.contains(&access) {
            out.push(access);
        }
    };
    let namespaces = api::namespaces();
    for verb in ["create", "patch"] {
        add(verb, &namespaces);
    }
    if !opts.keep {
        add("delete", &namespaces);
    }
    if opts.virtual_nodes > 0 {
        add("create", &api::nodes());
        add("patch", &api::nodes());
        if !opts.keep {
            add("delete", &api::nodes());
        }
    }
    for gvk in survey.kinds.keys() {
        let Some(resource) = served.get(gvk) else { continue };
        add("create", &resource);
        add("patch", &resource);
        // The clean-up deletes the cluster-scoped objects the run created.
        if survey.deleted_kinds.contains(gvk) || (!resource.namespaced && !opts.keep) {
            add("delete", &resource);
        }
    }
    // The preflight lists the stages; `--install-stages` applies skel's, and the clean-up puts
    // back (patch) or deletes them.
    if let Some(stages) = served.get(&stages::gvk()) {
        add("list", &stages);
        if opts.install_stages {
            add("create", &stages);
            add("patch", &stages);
            if !opts.keep {
                add("delete", &stages);
            }
        }
    }
    out
}

/// An object's identity in the trace: kind, namespace, name.
type Key = (Gvk, Option<String>, String);

fn key(obj: &Value) -> Option<Key> {
    let gvk = Gvk::of(obj)?;
    let meta = obj.get("metadata")?;
    let name = meta.get("name")?.as_str()?.to_string();
    let ns = meta.get("namespace").and_then(Value::as_str).map(str::to_string);
    Some((gvk, ns, name))
}

/// What the events before `--from` leave: the last manifest of each object still there, in
/// the order they first appeared.
type State = IndexMap<Key, Value>;

/// Folds an event into the state before `--from`: applies replace, deletes remove.
fn fold(state: &mut State, event: Event) {
    for obj in event.applied_objs {
        if let Some(k) = key(&obj) {
            state.insert(k, obj);
        }
    }
    for obj in event.deleted_objs {
        if let Some(k) = key(&obj) {
            state.shift_remove(&k);
        }
    }
}

impl<C: Cluster> Replay<'_, C> {
    /// The events, in order at the trace's timing (the state before `--from` applied at once
    /// first): why they stopped early, if they did, and how many the catch-up applied.
    async fn events(
        &mut self,
        survey: &Survey,
        events: &mut mpsc::Receiver<Event>,
        stop: &AtomicBool,
    ) -> (Option<Ending>, usize) {
        let opts = self.opts;
        let mut ending = None;
        let mut caught_up = 0;
        let first = survey.first_ts.unwrap_or(0);
        let from = opts.from.unwrap_or(0.0).max(0.0);
        let mut state = State::new();
        // Whether the state before `from` has been applied.
        let mut caught = false;
        let mut clock = Instant::now();
        while let Some(event) = events.recv().await {
            if stop.load(Ordering::SeqCst) {
                ending = Some(Ending::Interrupted);
                break;
            }
            // `first` is the earliest `ts`; the distance from it may not fit in an `i64`.
            let offset = event.ts.abs_diff(first) as f64;
            if opts.until.is_some_and(|u| offset > u) {
                ending = Some(Ending::Until);
                break;
            }
            if offset < from {
                fold(&mut state, event);
                caught_up += 1;
                continue;
            }
            if caught_up > 0 && !caught {
                caught = true;
                ending = self.catch_up(std::mem::take(&mut state), caught_up, from).await;
                clock = Instant::now();
                if ending.is_some() {
                    break;
                }
            }
            if let Speed::Times(x) = opts.speed {
                let due = clock + Duration::from_secs_f64(((offset - from) / x).max(0.0));
                let simulated = |now: Instant| from + now.saturating_duration_since(clock).as_secs_f64() * x;
                if self.wait_until(due, stop, simulated).await {
                    ending = Some(Ending::Interrupted);
                    break;
                }
            }
            ending = self.event(self.progress.event, offset, event, stop).await;
            if ending.is_some() {
                break;
            }
        }
        if ending.is_none() && caught_up > 0 && !caught {
            ending = self.catch_up(state, caught_up, from).await;
        }
        (ending, caught_up)
    }

    /// Sleeps until `due`, looking at `stop` and showing the simulated clock every 100 ms; true
    /// when stopped.
    async fn wait_until(&mut self, due: Instant, stop: &AtomicBool, simulated: impl Fn(Instant) -> f64) -> bool {
        loop {
            if stop.load(Ordering::SeqCst) {
                return true;
            }
            let now = Instant::now();
            if now >= due {
                return false;
            }
            self.observer.waiting(simulated(now));
            tokio::time::sleep((due - now).min(Duration::from_millis(100))).await;
        }
    }

    /// Counts an outcome and shows it to the observer. The run's own objects (namespaces made
    /// on demand, virtual nodes, the clean-up) count only when they fail.
    fn record(&mut self, step: Step) {
        match &step.outcome {
            Outcome::Applied(a) if !step.own => {
                self.progress.applied += 1;
                if *a == Applied::Created {
                    self.created += 1;
                }
            }
            Outcome::Deleted(d) if !step.own => {
                self.progress.deleted += 1;
                if *d == Deleted::Absent {
                    self.absent += 1;
                }
            }
            Outcome::Failed(f) => {
                self.progress.failed += 1;
                if self.failures.len() < FAILURES_KEPT {
                    self.failures.push(ObjectFailure {
                        verb: step.verb,
                        gvk: step.gvk.clone(),
                        target: step.target.clone(),
                        failure: f.clone(),
                    });
                }
            }
            _ => {}
        }
        self.observer.step(&step);
    }

    fn failed_fast(&self) -> Option<Ending> {
        (self.opts.fail_fast && self.progress.failed > 0).then_some(Ending::FailFast)
    }

    /// Records one of the run's own set-up steps (a virtual node, a stage): whether to stop.
    fn set_up(&mut self, gvk: &Gvk, target: String, outcome: Outcome) -> Option<Ending> {
        let gvk = gvk.clone();
        self.record(Step { phase: Phase::Setup, offset: 0.0, verb: Verb::Apply, own: true, gvk, target, outcome });
        self.failed_fast()
    }

    /// Creates the virtual nodes; the clean-up deletes those this run created (not a node of
    /// the same name that was already there).
    async fn virtual_nodes(&mut self) -> Option<Ending> {
        let nodes = api::nodes();
        for i in 0..self.opts.virtual_nodes {
            let manifest = plan::virtual_node(i, self.opts.node_template.as_ref(), &self.opts.naming);
            let name = plan::virtual_node_name(&self.opts.naming, i);
            let outcome = match self.cluster.apply(&nodes, None, &name, &manifest).await {
                Ok(a) => {
                    if a == Applied::Created {
                        self.nodes.push(name.clone());
                    }
                    Outcome::Applied(a)
                }
                Err(f) => Outcome::Failed(f),
            };
            if let Some(end) = self.set_up(&nodes.gvk, name, outcome) {
                return Some(end);
            }
        }
        None
    }

    /// Turns a trace object into a request; an object that cannot be sent is a failure.
    fn op(&mut self, phase: Phase, offset: f64, verb: Verb, obj: Value) -> Option<Op> {
        let unnamed = |obj: &Value| obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?").to_string();
        let Some(gvk) = Gvk::of(&obj) else {
            let failure = Failure {
                code: None,
                reason: "Invalid".into(),
                message: "the object has no `apiVersion` and `kind` strings".into(),
                attempts: 0,
            };
            let gvk = Gvk::new("?", "?");
            let target = unnamed(&obj);
            self.record(Step { phase, offset, verb, own: false, gvk, target, outcome: Outcome::Failed(failure) });
            return None;
        };
        let resource = self.served.get(&gvk)?;
        match plan::target(&obj, &resource, &self.opts.naming) {
            Ok(target) => {
                let manifest = match verb {
                    Verb::Apply => plan::manifest(obj, &gvk, &target, &self.opts.naming, &self.opts.templates),
                    Verb::Delete => Value::Null,
                };
                Some(Op { verb, own: false, resource, target, manifest })
            }
            Err(message) => {
                let failure = Failure { code: None, reason: "Invalid".into(), message, attempts: 0 };
                let target = unnamed(&obj);
                self.record(Step { phase, offset, verb, own: false, gvk, target, outcome: Outcome::Failed(failure) });
                None
            }
        }
    }

    /// Makes sure the namespaces the objects go to exist (once per run).
    async fn namespaces_for(&mut self, phase: Phase, offset: f64, ops: &[Op]) {
        let mut wanted: Vec<String> = Vec::new();
        for op in ops {
            if let Some(ns) = &op.target.namespace {
                if !wanted.contains(ns) && !self.ready.contains(ns) {
                    wanted.push(ns.clone());
                }
            }
        }
        let ops = wanted
            .into_iter()
            .map(|ns| Op {
                verb: Verb::Apply,
                own: true,
                resource: api::namespaces().into(),
                manifest: self.opts.naming.namespace_manifest(&ns),
                target: Target { namespace: None, name: ns },
            })
            .collect();
        self.send(phase, offset, ops).await;
    }

    /// Sends the requests, `jobs` at a time, and records the outcomes in order. Two requests
    /// for one object never fly together: the second waits for the first. Returns each
    /// request's kind, target and outcome, in order.
    async fn send(&mut self, phase: Phase, offset: f64, ops: Vec<Op>) -> Vec<(Gvk, String, Outcome)> {
        let mut sent = Vec::new();
        for wave in waves(ops) {
            sent.extend(self.send_wave(phase, offset, wave).await);
        }
        sent
    }

    async fn send_wave(&mut self, phase: Phase, offset: f64, ops: Vec<Op>) -> Vec<(Gvk, String, Outcome)> {
        let cluster = self.cluster;
        let jobs = self.opts.jobs.max(1);
        let mut sent = Vec::new();
        let results: Vec<(Op, Outcome)> = stream::iter(ops)
            .map(|op| async move {
                let ns = op.target.namespace.as_deref();
                let outcome = match op.verb {
                    Verb::Apply => match cluster.apply(&op.resource, ns, &op.target.name, &op.manifest).await {
                        Ok(a) => Outcome::Applied(a),
                        Err(f) => Outcome::Failed(f),
                    },
                    Verb::Delete => match cluster.delete(&op.resource, ns, &op.target.name).await {
                        Ok(d) => Outcome::Deleted(d),
                        Err(f) => Outcome::Failed(f),
                    },
                };
                (op, outcome)
            })
            .buffered(jobs)
            .collect()
            .await;
        for (op, outcome) in results {
            if plan::is_namespace(&op.resource.gvk) {
                let name = &op.target.name;
                match &outcome {
                    Outcome::Applied(a) => {
                        self.ready.insert(name.clone());
                        if *a == Applied::Created && !self.namespaces.contains(name) {
                            self.namespaces.push(name.clone());
                        }
                    }
                    Outcome::Deleted(_) => {
                        self.ready.remove(name);
                        self.namespaces.retain(|n| n != name);
                    }
                    Outcome::Failed(_) => {}
                }
            } else if !op.own && !op.resource.namespaced {
                self.track_cluster_object(&op, &outcome);
            }
            let (verb, own, target) = (op.verb, op.own, op.target.display());
            sent.push((op.resource.gvk.clone(), target.clone(), outcome.clone()));
            self.record(Step { phase, offset, verb, own, gvk: op.resource.gvk.clone(), target, outcome });
        }
        sent
    }

    /// Keeps the cluster-scoped objects of the trace that this run created (and the trace has
    /// not deleted since), for the clean-up.
    fn track_cluster_object(&mut self, op: &Op, outcome: &Outcome) {
        let name = &op.target.name;
        let same = |(r, n): &(Arc<Resource>, String)| r.gvk == op.resource.gvk && n == name;
        match outcome {
            Outcome::Applied(Applied::Created) if !self.cluster_objects.iter().any(same) => {
                self.cluster_objects.push((op.resource.clone(), name.clone()));
            }
            Outcome::Deleted(_) => self.cluster_objects.retain(|o| !same(o)),
            _ => {}
        }
    }

    /// One event: its namespaces, then its applied objects, then its deleted ones.
    async fn event(&mut self, index: usize, offset: f64, event: Event, stop: &AtomicBool) -> Option<Ending> {
        let phase = Phase::Event(index);
        let applies: Vec<Op> =
            event.applied_objs.into_iter().filter_map(|o| self.op(phase, offset, Verb::Apply, o)).collect();
        let deletes: Vec<Op> =
            event.deleted_objs.into_iter().filter_map(|o| self.op(phase, offset, Verb::Delete, o)).collect();
        self.namespaces_for(phase, offset, &applies).await;
        self.send(phase, offset, applies).await;
        if stop.load(Ordering::SeqCst) {
            return Some(Ending::Interrupted);
        }
        self.send(phase, offset, deletes).await;
        self.progress.event += 1;
        self.progress.offset = offset;
        self.observer.progress(&self.progress);
        if stop.load(Ordering::SeqCst) {
            return Some(Ending::Interrupted);
        }
        self.failed_fast()
    }

    /// Applies the state the events before `--from` leave, as one step at `from`.
    async fn catch_up(&mut self, state: State, events: usize, from: f64) -> Option<Ending> {
        let ops: Vec<Op> =
            state.into_iter().filter_map(|(_, obj)| self.op(Phase::Catchup, from, Verb::Apply, obj)).collect();
        self.namespaces_for(Phase::Catchup, from, &ops).await;
        self.send(Phase::Catchup, from, ops).await;
        self.progress.event += events;
        self.progress.offset = from;
        self.observer.progress(&self.progress);
        self.failed_fast()
    }

    /// Installs skel's stages, each replacing the stage of its name (kept for the clean-up).
    async fn install_stages(&mut self, existing: &[Value]) -> Option<Ending> {
        let resource = stages::resource();
        for manifest in stages::ours() {
            let name = stages::name(&manifest).to_string();
            let previous = existing.iter().find(|s| stages::name(s) == name).map(stages::restorable);
            let outcome = match self.cluster.apply(&resource, None, &name, &manifest).await {
                Ok(a) => {
                    self.stage_report.installed.push(name.clone());
                    if previous.is_some() {
                        self.stage_report.replaced.push(name.clone());
                    }
                    self.installed.push((name.clone(), previous));
                    Outcome::Applied(a)
                }
                Err(f) => Outcome::Failed(f),
            };
            if let Some(end) = self.set_up(&resource.gvk, name, outcome) {
                return Some(end);
            }
        }
        None
    }

    /// Deletes the virtual nodes, the cluster-scoped objects and the namespaces this run
    /// created (their objects go with them), waits (up to `cleanup_wait`) until the namespaces
    /// are gone, then puts back the stages it replaced and deletes those it added.
    async fn clean_up(&mut self) -> CleanupReport {
        let mut report = CleanupReport { ran: true, ..CleanupReport::default() };
        let offset = self.progress.offset;
        let own = |resource: Arc<Resource>, name: String| Op {
            verb: Verb::Delete,
            own: true,
            resource,
            target: Target { namespace: None, name },
            manifest: Value::Null,
        };
        let nodes: Arc<Resource> = api::nodes().into();
        let mut ops: Vec<Op> = std::mem::take(&mut self.nodes).into_iter().map(|n| own(nodes.clone(), n)).collect();
        // Newest first: an object created later may name one created before.
        ops.extend(std::mem::take(&mut self.cluster_objects).into_iter().rev().map(|(r, n)| own(r, n)));
        let namespaces: Arc<Resource> = api::namespaces().into();
        ops.extend(self.namespaces.clone().into_iter().map(|n| own(namespaces.clone(), n)));
        let mut going = Vec::new();
        for (gvk, target, outcome) in self.send(Phase::Cleanup, offset, ops).await {
            let what = format!("{gvk} {target}");
            match outcome {
                Outcome::Deleted(d) => {
                    if d == Deleted::Deleted && plan::is_namespace(&gvk) {
                        going.push(target);
                    }
                    report.deleted.push(what);
                }
                _ => report.failed.push(what),
            }
        }
        let started = Instant::now();
        report.terminating = self.wait_gone(going).await;
        report.finished = report.terminating.is_empty();
        report.waited_secs = started.elapsed().as_secs_f64();
        self.put_back_stages(&mut report).await;
        report
    }

    /// Waits until the namespaces are gone (a GET answers 404), up to `cleanup_wait`, telling
    /// the observer every 250 ms; returns those still there. (A dry run's GET finds nothing: it
    /// does not wait.)
    async fn wait_gone(&mut self, mut left: Vec<String>) -> Vec<String> {
        let namespaces = api::namespaces();
        let started = Instant::now();
        let deadline = started + self.opts.cleanup_wait;
        loop {
            let mut still = Vec::new();
            for name in left {
                // A failed GET says nothing of the namespace: it counts as still there.
                if !matches!(self.cluster.get_object(&namespaces, None, &name).await, Ok(None)) {
                    still.push(name);
                }
            }
            left = still;
            let now = Instant::now();
            if left.is_empty() || now >= deadline {
                return left;
            }
            self.observer.cleaning(&left, now - started);
            tokio::time::sleep((deadline - now).min(Duration::from_millis(250))).await;
        }
    }

    /// Puts back the stages the run replaced, and deletes those it installed where there was
    /// none.
    async fn put_back_stages(&mut self, report: &mut CleanupReport) {
        let resource = stages::resource();
        let offset = self.progress.offset;
        for (name, previous) in std::mem::take(&mut self.installed) {
            let (verb, outcome) = match &previous {
                Some(stage) => match self.cluster.apply(&resource, None, &name, stage).await {
                    Ok(a) => {
                        report.stages_restored.push(name.clone());
                        (Verb::Apply, Outcome::Applied(a))
                    }
                    Err(f) => (Verb::Apply, Outcome::Failed(f)),
                },
                None => match self.cluster.delete(&resource, None, &name).await {
                    Ok(d) => {
                        report.stages_deleted.push(name.clone());
                        (Verb::Delete, Outcome::Deleted(d))
                    }
                    Err(f) => (Verb::Delete, Outcome::Failed(f)),
                },
            };
            if matches!(outcome, Outcome::Failed(_)) {
                report.failed.push(format!("{} {name}", resource.gvk));
            }
            let gvk = resource.gvk.clone();
            self.record(Step { phase: Phase::Cleanup, offset, verb, own: true, gvk, target: name, outcome });
        }
    }
}

/// Splits requests into waves that each touch an object at most once, keeping their order.
fn waves(ops: Vec<Op>) -> Vec<Vec<Op>> {
    let mut waves: Vec<Vec<Op>> = Vec::new();
    let mut seen: HashSet<(String, Option<String>, String)> = HashSet::new();
    for op in ops {
        let key = (op.resource.collection_path(None), op.target.namespace.clone(), op.target.name.clone());
        if !seen.insert(key.clone()) || waves.is_empty() {
            if !waves.is_empty() {
                seen.clear();
                seen.insert(key);
            }
            waves.push(Vec::new());
        }
        if let Some(last) = waves.last_mut() {
            last.push(op);
        }
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str) -> Op {
        Op {
            verb: Verb::Apply,
            own: false,
            resource: api::namespaces().into(),
            target: Target { namespace: None, name: name.into() },
            manifest: Value::Null,
        }
    }

    #[test]
    fn an_object_twice_in_an_event_waits_for_itself() {
        let names = |w: &Vec<Op>| w.iter().map(|o| o.target.name.clone()).collect::<Vec<_>>().join(",");
        let w = waves(vec![op("a"), op("b"), op("a"), op("c"), op("a")]);
        assert_eq!(w.iter().map(names).collect::<Vec<_>>(), ["a,b", "a,c", "a"]);
        assert!(waves(Vec::new()).is_empty());
    }
}
