//! `skel run`'s documents for scripts: the dry run's plan as JSON (`--dry-run --format json`)
//! and the run report (`--report FILE.json`). Both are built from what a [`Recorder`] saw of the
//! replay (each request's step, each event's progress, wall-clock times) and from the survey
//! and the summary. Their schemas are documented in docs/run.md; `PLAN_SCHEMA` and
//! `REPORT_SCHEMA` change when a field changes meaning or goes away.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};
use skel::upgrade::KubeVersion;
use skel_runner::lifecycle::{self, Lifecycles};
use skel_runner::preflight::Missing;
use skel_runner::{
    Applied, Deleted, Ending, Failure, ObjectFailure, Observer, Outcome, Phase, Progress, ReplayError, ReplaySummary,
    Speed, Step, Survey, Verb,
};
use skel_trace::PodLifecycle;

use super::report::Report;
use super::Failed;

/// The version of the JSON plan's schema (`skel_run_plan`).
pub const PLAN_SCHEMA: u32 = 1;
/// The version of the run report's schema (`skel_run_report`).
pub const REPORT_SCHEMA: u32 = 1;

/// When an event was due and when it was done, in seconds since the replay started (the
/// preflight passed).
#[derive(Debug, Clone, PartialEq)]
pub struct EventTiming {
    /// The event's index in the trace (from 0); for the catch-up, the number of events it
    /// folded.
    pub index: usize,
    pub catchup: bool,
    /// Seconds from the trace's first event.
    pub offset: f64,
    /// When the trace's timing at `--speed` says it should go (`None` at `--speed max`).
    pub due: Option<f64>,
    /// When its last request was answered.
    pub done: f64,
}

/// Sees the whole replay, for the JSON plan and the report: every step, and when each event
/// was due and done (the timing drift against the trace).
#[derive(Debug)]
pub struct Recorder {
    speed: Speed,
    /// `--from`: where the replay's clock starts in the trace.
    from: f64,
    /// When the preflight passed (`started`), on both clocks.
    start: Option<(Instant, SystemTime)>,
    /// The instant the replay's clock counts from: after the virtual nodes, and again after the
    /// catch-up, as the runner sets it.
    clock: Option<Instant>,
    pub version: Option<KubeVersion>,
    /// Where the run went (the cluster's URL, or the built-in table).
    pub cluster: Option<String>,
    pub steps: Vec<Step>,
    pub timings: Vec<EventTiming>,
    /// Events counted by the last progress.
    counted: usize,
    /// Whether a catch-up step came since the last progress.
    catching_up: bool,
}

impl Recorder {
    /// `speed` is the replay's (what the runner waits by), `from` is `--from`.
    pub fn new(speed: Speed, from: Option<f64>) -> Recorder {
        Recorder {
            speed,
            from: from.unwrap_or(0.0).max(0.0),
            start: None,
            clock: None,
            version: None,
            cluster: None,
            steps: Vec::new(),
            timings: Vec::new(),
            counted: 0,
            catching_up: false,
        }
    }

    fn since_start(&self, t: Instant) -> f64 {
        self.start.map_or(0.0, |(s, _)| t.saturating_duration_since(s).as_secs_f64())
    }

    /// The virtual nodes (setup steps), by name.
    fn virtual_nodes(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.phase == Phase::Setup && matches!(s.outcome, Outcome::Applied(_)))
            .map(|s| s.target.clone())
            .collect()
    }
}

impl Observer for Recorder {
    fn started(&mut self, version: KubeVersion) {
        let now = Instant::now();
        self.start = Some((now, SystemTime::now()));
        self.clock = Some(now);
        self.version = Some(version);
    }

    fn step(&mut self, step: &Step) {
        match step.phase {
            // The runner's clock starts once the virtual nodes are made.
            Phase::Setup => self.clock = Some(Instant::now()),
            Phase::Catchup => self.catching_up = true,
            Phase::Event(_) | Phase::Cleanup => {}
        }
        self.steps.push(step.clone());
    }

    fn progress(&mut self, p: &Progress) {
        let now = Instant::now();
        let counted = p.event.saturating_sub(self.counted);
        self.counted = p.event;
        // The catch-up's progress: its steps came, or it folded more than one event (an event
        // counts one). One folded event that left nothing to apply reads as an event.
        let catchup = std::mem::take(&mut self.catching_up) || counted > 1;
        let due = match (self.speed, self.clock) {
            (Speed::Times(x), Some(clock)) if !catchup && x > 0.0 => {
                Some(self.since_start(clock) + ((p.offset - self.from) / x).max(0.0))
            }
            _ => None,
        };
        let index = if catchup { counted } else { p.event.saturating_sub(1) };
        self.timings.push(EventTiming { index, catchup, offset: p.offset, due, done: self.since_start(now) });
        if catchup {
            // The runner restarts its clock after the catch-up.
            self.clock = Some(now);
        }
    }
}

/// Observes with two observers: what the user sees, and the recorder.
pub struct Tee<'a> {
    pub first: &'a mut dyn Observer,
    pub recorder: Option<&'a mut Recorder>,
}

impl Observer for Tee<'_> {
    fn step(&mut self, step: &Step) {
        self.first.step(step);
        if let Some(r) = self.recorder.as_deref_mut() {
            r.step(step);
        }
    }

    fn progress(&mut self, progress: &Progress) {
        self.first.progress(progress);
        if let Some(r) = self.recorder.as_deref_mut() {
            r.progress(progress);
        }
    }

    fn waiting(&mut self, clock: f64) {
        self.first.waiting(clock);
        if let Some(r) = self.recorder.as_deref_mut() {
            r.waiting(clock);
        }
    }

    fn started(&mut self, version: KubeVersion) {
        self.first.started(version);
        if let Some(r) = self.recorder.as_deref_mut() {
            r.started(version);
        }
    }

    fn cleaning(&mut self, terminating: &[String], waited: std::time::Duration) {
        self.first.cleaning(terminating, waited);
    }
}

/// The speed as JSON: a number, or `"max"`.
pub fn speed_json(speed: Speed) -> Value {
    match speed {
        Speed::Max => json!("max"),
        Speed::Times(x) => json!(x),
    }
}

/// Rounded to the millisecond, for reading.
fn secs(x: f64) -> Value {
    json!((x * 1000.0).round() / 1000.0)
}

/// The trace: its file, events and extent.
pub fn trace_json(name: &str, survey: &Survey) -> Value {
    json!({
        "file": name,
        "events": survey.events,
        "duration_s": survey.duration(),
        "first_ts": survey.first_ts,
        "last_ts": survey.last_ts,
    })
}

/// Per owner, the lifecycles the replay would give its pods, at `speed` (the user's, not the
/// dry run's).
pub fn lifecycles_json(survey: &Survey, speed: Speed) -> Value {
    let lifecycles = Lifecycles::new(&survey.lifecycles);
    let owners: Vec<Value> = lifecycles
        .owners()
        .map(|(owner, list)| {
            let pods: Vec<Value> = list
                .iter()
                .enumerate()
                .map(|(n, l)| {
                    let runs_for = lifecycle::run_time(l, speed).map(lifecycle::go_duration);
                    match *l {
                        PodLifecycle::Finished(start, end) => json!({
                            "n": n, "lifecycle": "Finished", "start": start, "end": end,
                            "recorded_s": end.abs_diff(start), "runs_for": runs_for,
                        }),
                        PodLifecycle::Running(start) => json!({
                            "n": n, "lifecycle": "Running", "start": start, "end": null,
                            "recorded_s": null, "runs_for": null,
                        }),
                        PodLifecycle::Empty => json!({
                            "n": n, "lifecycle": "Empty", "start": null, "end": null,
                            "recorded_s": null, "runs_for": null,
                        }),
                    }
                })
                .collect();
            json!({
                "gvk": owner.0,
                "owner": owner.1,
                "description": lifecycle::describe(owner, list, speed),
                "pods": pods,
            })
        })
        .collect();
    Value::Array(owners)
}

/// A failure's diagnostic: its code, message and help (the first, for a script's).
pub fn error_json(failed: &Failed) -> Value {
    let d: &dyn miette::Diagnostic = match &failed.report {
        Some(Report::Plain(d)) => d.as_ref(),
        Some(Report::Script { diagnostics, name, .. }) => match diagnostics.first() {
            Some(d) => {
                let mut v = diagnostic_json(d.as_ref());
                v["file"] = json!(name);
                return v;
            }
            None => return Value::Null,
        },
        None => return Value::Null,
    };
    diagnostic_json(d)
}

fn diagnostic_json(d: &dyn miette::Diagnostic) -> Value {
    json!({
        "code": d.code().map(|c| c.to_string()),
        "message": d.to_string(),
        "help": d.help().map(|h| h.to_string()),
    })
}

/// What the preflight checked and what passed, from the error it ended with (if any).
pub fn preflight_json(
    survey: &Survey,
    version: Option<KubeVersion>,
    summary: Option<&ReplaySummary>,
    error: Option<&ReplayError>,
    dry: bool,
) -> Value {
    let missing: &[Missing] = match error {
        Some(ReplayError::Unserved(u)) => &u.missing,
        _ => &[],
    };
    // Discovery runs after the version; the namespace names after discovery; the permissions
    // last (not in a dry run).
    let discovered = !matches!(error, Some(ReplayError::Cluster(_)));
    let named = discovered && !matches!(error, Some(ReplayError::Unserved(_)));
    let kinds: Vec<Value> = survey
        .kinds
        .iter()
        .map(|(gvk, objects)| {
            let served = discovered.then(|| !missing.iter().any(|m| &m.gvk == gvk));
            json!({"api_version": gvk.api_version, "kind": gvk.kind, "objects": objects, "served": served})
        })
        .collect();
    let invalid: Vec<Value> = match error {
        Some(ReplayError::BadNamespaces(b)) => b
            .bad
            .iter()
            .map(|b| {
                json!({
                    "trace_namespace": b.trace_namespace, "namespace": b.target, "problem": b.problem,
                    "objects": b.objects, "suggestion": b.suggestion,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let permissions = if dry {
        json!({"checked": false, "denied": []})
    } else {
        let denied: Vec<Value> = match error {
            Some(ReplayError::Forbidden(f)) => {
                f.denied.iter().map(|a| json!({"verb": a.verb, "resource": a.resource.rbac_name()})).collect()
            }
            _ => Vec::new(),
        };
        let checked = named && !matches!(error, Some(ReplayError::BadNamespaces(_)) | Some(ReplayError::NoStageApi(_)));
        json!({"checked": checked, "denied": denied})
    };
    json!({
        "passed": error.is_none(),
        "kubernetes": version.map(|v| v.to_string()),
        "kinds": kinds,
        "namespaces": {"checked": named, "invalid": invalid},
        "permissions": permissions,
        // What the run found of the cluster's KWOK stages (a dry run looks at none).
        "stages": summary.map(|s| serde_json::to_value(&s.stages).unwrap_or(Value::Null)),
        "error": error.map(|e| diagnostic_json(e)),
    })
}

fn phase_json(phase: Phase) -> (&'static str, Option<usize>) {
    match phase {
        Phase::Setup => ("setup", None),
        Phase::Event(i) => ("event", Some(i)),
        Phase::Catchup => ("catchup", None),
        Phase::Cleanup => ("cleanup", None),
    }
}

/// A step of the plan: when, what, where.
fn plan_step_json(s: &Step) -> Value {
    let (phase, event) = phase_json(s.phase);
    json!({
        "phase": phase,
        "event": event,
        "offset_s": secs(s.offset),
        "verb": s.verb.name(),
        "api_version": s.gvk.api_version,
        "kind": s.gvk.kind,
        "target": s.target,
        "own": s.own,
    })
}

pub fn failure_json(f: &Failure) -> Value {
    json!({"code": f.code, "reason": f.reason, "message": f.message, "attempts": f.attempts})
}

fn object_failure_json(f: &ObjectFailure) -> Value {
    json!({
        "verb": f.verb.name(), "api_version": f.gvk.api_version, "kind": f.gvk.kind, "target": f.target,
        "error": failure_json(&f.failure),
    })
}

/// A request of the run and its outcome.
fn object_json(s: &Step) -> Value {
    let outcome = match &s.outcome {
        Outcome::Applied(Applied::Created) => "created",
        Outcome::Applied(Applied::Updated) => "updated",
        Outcome::Deleted(Deleted::Deleted) => "deleted",
        Outcome::Deleted(Deleted::Absent) => "absent",
        Outcome::Failed(_) => "failed",
    };
    let mut v = json!({
        "verb": s.verb.name(),
        "api_version": s.gvk.api_version,
        "kind": s.gvk.kind,
        "target": s.target,
        "own": s.own,
        "outcome": outcome,
    });
    if let Outcome::Failed(f) = &s.outcome {
        v["error"] = failure_json(f);
    }
    v
}

/// What the dry run would do: everything a script needs to check a plan.
pub struct PlanFacts<'a> {
    pub trace: &'a str,
    pub survey: &'a Survey,
    /// The speed the user asked for.
    pub speed: Speed,
    pub namespace_prefix: &'a str,
    pub version: KubeVersion,
    pub recorder: &'a Recorder,
    pub summary: Option<&'a ReplaySummary>,
    pub error: Option<&'a ReplayError>,
    /// Kinds the table does not know, assumed namespaced custom resources.
    pub assumed: Vec<String>,
}

pub fn plan_json(f: &PlanFacts<'_>) -> Value {
    let steps: Vec<Value> = f.recorder.steps.iter().map(plan_step_json).collect();
    json!({
        "skel_run_plan": PLAN_SCHEMA,
        "kubernetes": f.version.to_string(),
        "trace": trace_json(f.trace, f.survey),
        "speed": speed_json(f.speed),
        "namespace_prefix": f.namespace_prefix,
        "preflight": preflight_json(f.survey, Some(f.version), f.summary, f.error, true),
        "assumed_custom_resources": f.assumed,
        "namespaces": f.summary.map_or_else(Vec::new, |s| s.namespaces.clone()),
        "virtual_nodes": f.recorder.virtual_nodes(),
        "lifecycles": lifecycles_json(f.survey, f.speed),
        "steps": steps,
    })
}

/// What a run did, for the report.
pub struct RunFacts<'a> {
    pub trace: &'a str,
    pub script: Option<&'a str>,
    pub dry_run: bool,
    pub run_id: &'a str,
    pub namespace_prefix: &'a str,
    pub speed: Speed,
    pub from: Option<f64>,
    pub until: Option<f64>,
    pub keep: bool,
    pub survey: Option<&'a Survey>,
    pub recorder: Option<&'a Recorder>,
    pub summary: Option<&'a ReplaySummary>,
    /// How the run ends: its exit code and its error.
    pub exit_code: u8,
    pub error: Value,
}

fn ending_json(e: Ending) -> &'static str {
    match e {
        Ending::Done => "done",
        Ending::Until => "until",
        Ending::Interrupted => "interrupted",
        Ending::FailFast => "fail_fast",
    }
}

/// Each event's requests and timing, in order; an event stopped part-way has no `done_s`.
fn events_json(recorder: &Recorder) -> Vec<Value> {
    #[derive(Default)]
    struct Entry<'s> {
        offset: f64,
        timing: Option<&'s EventTiming>,
        steps: Vec<&'s Step>,
    }
    let mut events: BTreeMap<usize, Entry<'_>> = BTreeMap::new();
    for t in recorder.timings.iter().filter(|t| !t.catchup) {
        let e = events.entry(t.index).or_default();
        e.offset = t.offset;
        e.timing = Some(t);
    }
    for s in &recorder.steps {
        if let Phase::Event(i) = s.phase {
            let e = events.entry(i).or_default();
            e.offset = s.offset;
            e.steps.push(s);
        }
    }
    events
        .into_iter()
        .map(|(index, e)| {
            let count = |verb: Verb| {
                e.steps.iter().filter(|s| !s.own && s.verb == verb && !matches!(s.outcome, Outcome::Failed(_))).count()
            };
            let failed = e.steps.iter().filter(|s| matches!(s.outcome, Outcome::Failed(_))).count();
            let due = e.timing.and_then(|t| t.due);
            let done = e.timing.map(|t| t.done);
            json!({
                "index": index,
                "offset_s": secs(e.offset),
                "due_s": due.map(secs),
                "done_s": done.map(secs),
                "late_s": due.zip(done).map(|(due, done)| secs(done - due)),
                "applied": count(Verb::Apply),
                "deleted": count(Verb::Delete),
                "failed": failed,
                "objects": e.steps.iter().map(|s| object_json(s)).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// How late the events were done against the trace's timing.
fn drift_json(recorder: &Recorder) -> Value {
    let late: Vec<f64> = recorder.timings.iter().filter_map(|t| t.due.map(|due| t.done - due)).collect();
    if late.is_empty() {
        return json!({"timed_events": 0, "max_late_s": null, "mean_late_s": null});
    }
    let max = late.iter().copied().fold(f64::MIN, f64::max);
    let mean = late.iter().sum::<f64>() / late.len() as f64;
    json!({"timed_events": late.len(), "max_late_s": secs(max), "mean_late_s": secs(mean)})
}

pub fn report_json(f: &RunFacts<'_>) -> Value {
    let summary = f.summary;
    let recorder = f.recorder;
    let steps_of = |phase: Phase| -> Vec<Value> {
        recorder.map_or_else(Vec::new, |r| r.steps.iter().filter(|s| s.phase == phase).map(object_json).collect())
    };
    let catchup = recorder.and_then(|r| r.timings.iter().find(|t| t.catchup)).map(|t| {
        json!({
            "events": t.index,
            "offset_s": secs(t.offset),
            "done_s": secs(t.done),
            "objects": steps_of(Phase::Catchup),
        })
    });
    let counts = summary.map(|s| {
        json!({
            "events": s.progress.events,
            "events_replayed": s.progress.event,
            "caught_up": s.caught_up,
            "applied": s.progress.applied,
            "created": s.created,
            "deleted": s.progress.deleted,
            "absent": s.absent,
            "failed": s.progress.failed,
        })
    });
    let cleanup = summary.map(|s| {
        let c = &s.cleanup;
        json!({
            "kept": f.keep,
            "ran": c.ran,
            "namespaces": s.namespaces,
            "virtual_nodes": recorder.map_or_else(Vec::new, Recorder::virtual_nodes),
            "deleted": c.deleted,
            "failed": c.failed,
            "finished": c.finished,
            "terminating": c.terminating,
            "waited_s": secs(c.waited_secs),
            "stages_restored": c.stages_restored,
            "stages_deleted": c.stages_deleted,
            "objects": steps_of(Phase::Cleanup),
        })
    });
    let lifecycles = summary.map(|s| {
        let l = &s.lifecycles;
        let completed: Vec<Value> = l
            .given
            .iter()
            .filter_map(|g| {
                let done = g.completed_at?;
                Some(json!({
                    "pod": g.pod, "owner_kind": g.owner_kind, "owner": g.owner,
                    "completes_at": g.completes_at, "completed_at": done,
                    "late_s": g.completes_at.map(|due| secs(done - due)),
                }))
            })
            .collect();
        json!({
            "given": serde_json::to_value(&l.given).unwrap_or(Value::Null),
            "completed": completed,
            "without_lifecycle": l.without,
            "failures": l.failures.iter().map(object_failure_json).collect::<Vec<_>>(),
            "watch_troubles": l.troubles,
        })
    });
    let started_at = recorder
        .and_then(|r| r.start)
        .and_then(|(_, wall)| wall.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| secs(d.as_secs_f64()));
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    put("skel_run_report", json!(REPORT_SCHEMA));
    put("trace", f.survey.map_or(json!({"file": f.trace}), |s| trace_json(f.trace, s)));
    put("script", json!(f.script));
    put("dry_run", json!(f.dry_run));
    put("cluster", json!(recorder.and_then(|r| r.cluster.clone())));
    put("kubernetes", json!(recorder.and_then(|r| r.version).map(|v| v.to_string())));
    put("run_id", json!(f.run_id));
    put("namespace_prefix", json!(f.namespace_prefix));
    put("speed", speed_json(f.speed));
    put("from_s", json!(f.from));
    put("until_s", json!(f.until));
    put("started_at", json!(started_at));
    put("elapsed_s", json!(summary.map(|s| secs(s.elapsed.as_secs_f64()))));
    put("ending", json!(summary.map(|s| ending_json(s.ending))));
    put("exit_code", json!(f.exit_code));
    put("error", f.error.clone());
    put("counts", json!(counts));
    put("setup", json!(steps_of(Phase::Setup)));
    put("catchup", json!(catchup));
    put("events", json!(recorder.map_or_else(Vec::new, events_json)));
    put("drift", recorder.map_or(Value::Null, drift_json));
    put("stages", json!(summary.map(|s| serde_json::to_value(&s.stages).unwrap_or(Value::Null))));
    put("cleanup", json!(cleanup));
    put("lifecycles", json!(lifecycles));
    put("failures", json!(summary.map_or_else(Vec::new, |s| s.failures.iter().map(object_failure_json).collect())));
    Value::Object(out)
}
