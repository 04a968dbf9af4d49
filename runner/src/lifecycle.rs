//! Pod lifecycles: the replay's pods live as the trace recorded its pods living, as SimKube's
//! replay makes them. The trace's `pod_lifecycles` section says, per owner (`batch/v1.CronJob`,
//! `default/hello-simkube`), what each of its pods did: never started (`Empty`), ran without end
//! (`Running`), or ran from `start` to `end` (`Finished`). The n-th pod of an owner takes entry
//! `n % len` of the owner's list (SimKube does not compare pod-spec hashes for the kinds it knows;
//! skel compares them for none).
//!
//! skel does it from outside the cluster, without SimKube's in-cluster webhook: every pod
//! template of the replay carries its owner (`plan::OWNER_KIND_ANNOTATION`,
//! `plan::OWNER_NAME_ANNOTATION`) and the run's label; the replay watches the run's pods, and
//! when one is `Running`, the [`Driver`] gives it its owner's next lifecycle. A `Finished` one
//! becomes SimKube's label `simkube.io/kwok-stage-complete: "true"` and the annotation
//! `simkube.io/kwok-stage-complete-time` (how long the pod runs, `(end - start) / --speed`, as a
//! Go duration, which KWOK's `durationFrom` reads), merge-patched onto the pod: a KWOK `Stage`
//! that selects the label (SimKube's `pod-complete`, or skel's `--install-stages`) completes the
//! pod after that long. `Running` and `Empty` lifecycles never complete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{json, Value};
use skel_trace::{PodLifecycle, PodLifecycles};

use crate::plan::{OWNER_KIND_ANNOTATION, OWNER_NAME_ANNOTATION};
use crate::replay::Speed;

/// The label SimKube's `pod-complete` stage selects.
pub const STAGE_COMPLETE_LABEL: &str = "simkube.io/kwok-stage-complete";
/// When the pod completes: read by the stage's `delay.durationFrom`.
pub const STAGE_COMPLETE_TIME_ANNOTATION: &str = "simkube.io/kwok-stage-complete-time";

/// An owner as the trace names it: `group/version.Kind` and `namespace/name`.
pub type Owner = (String, String);

/// Per owner, the lifecycles its pods take in turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycles {
    owners: BTreeMap<Owner, Vec<PodLifecycle>>,
}

impl Lifecycles {
    /// From the trace's section: each owner's list (of its first pod-spec hash, in the
    /// section's canonical order, when it has several).
    pub fn new(section: &PodLifecycles) -> Lifecycles {
        let owners = section
            .entries()
            .iter()
            .filter_map(|e| {
                let list = e.pods.iter().map(|(_, l)| l).find(|l| !l.is_empty())?;
                Some(((e.gvk.clone(), e.ns_name.clone()), list.clone()))
            })
            .collect();
        Lifecycles { owners }
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Each owner and its pods' lifecycles, in order.
    pub fn owners(&self) -> impl Iterator<Item = (&Owner, &[PodLifecycle])> {
        self.owners.iter().map(|(o, l)| (o, l.as_slice()))
    }

    fn get(&self, owner: &Owner) -> Option<&[PodLifecycle]> {
        self.owners.get(owner).map(Vec::as_slice)
    }
}

/// How long a pod with this lifecycle runs at `speed` before it completes; `None`: it never
/// completes.
pub fn run_time(lifecycle: &PodLifecycle, speed: Speed) -> Option<Duration> {
    match *lifecycle {
        PodLifecycle::Finished(start, end) => {
            let secs = end.saturating_sub(start).max(0) as f64;
            Some(match speed {
                Speed::Max => Duration::ZERO,
                Speed::Times(x) => Duration::from_secs_f64(secs / x),
            })
        }
        PodLifecycle::Running(_) | PodLifecycle::Empty => None,
    }
}

/// A duration as Go writes one (`30s`, `1m30s`, `2.5s`, `0s`), which KWOK's `durationFrom` reads.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    match frac {
        0 => out.push_str(&format!("{s}s")),
        _ => out.push_str(&format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))),
    }
    out
}

/// One line per owner for the dry-run plan: `batch/v1.CronJob default/hello-simkube: 3 pods,
/// each completes after 30s (3s at --speed 10)`.
pub fn describe(owner: &Owner, lifecycles: &[PodLifecycle], speed: Speed) -> String {
    let mut finished: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut running, mut empty) = (0, 0);
    for l in lifecycles {
        match *l {
            PodLifecycle::Finished(start, end) => *finished.entry(end.abs_diff(start)).or_default() += 1,
            PodLifecycle::Running(_) => running += 1,
            PodLifecycle::Empty => empty += 1,
        }
    }
    let total = lifecycles.len();
    let pods = |n: usize| if n == 1 { "1 pod".to_string() } else { format!("{n} pods") };
    // What `n` of the pods do: said of each when all do it, else counted.
    let say = |n: usize, one: &str, many: &str| match (n == total, n == 1) {
        (true, true) => one.to_string(),
        (true, false) => format!("each {one}"),
        (false, true) => format!("1 {one}"),
        (false, false) => format!("{n} {many}"),
    };
    let mut parts = Vec::new();
    for (secs, n) in &finished {
        let recorded = go_duration(Duration::from_secs(*secs));
        let at = match speed {
            Speed::Times(1.0) => String::new(),
            Speed::Times(x) => format!(" ({} at --speed {x})", go_duration(Duration::from_secs_f64(*secs as f64 / x))),
            Speed::Max => " (at once at --speed max)".to_string(),
        };
        parts.push(say(*n, &format!("completes after {recorded}{at}"), &format!("complete after {recorded}{at}")));
    }
    if running > 0 {
        parts.push(say(running, "keeps running", "keep running"));
    }
    if empty > 0 {
        parts.push(say(empty, "never starts", "never start"));
    }
    format!("{} {}: {}, {}", owner.0, owner.1, pods(lifecycles.len()), parts.join("; "))
}

/// A pod of the replay as the watch saw it last: what the [`Driver`] reads of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodState {
    pub namespace: String,
    pub name: String,
    pub phase: Option<String>,
    /// Its owner in the trace ([`OWNER_KIND_ANNOTATION`], [`OWNER_NAME_ANNOTATION`]), when it
    /// carries both annotations.
    pub owner: Option<Owner>,
    /// It carries [`STAGE_COMPLETE_LABEL`] already.
    pub completing: bool,
}

impl PodState {
    /// From a pod as the API server sends it.
    pub fn from_value(pod: &Value) -> Option<PodState> {
        let meta = pod.get("metadata")?;
        let text = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_str).map(str::to_string);
        let annotation = |k: &str| text(meta.get("annotations"), k);
        Some(PodState {
            namespace: text(Some(meta), "namespace").unwrap_or_default(),
            name: text(Some(meta), "name")?,
            phase: text(pod.get("status"), "phase"),
            owner: annotation(OWNER_KIND_ANNOTATION).zip(annotation(OWNER_NAME_ANNOTATION)),
            completing: meta.get("labels").and_then(|l| l.get(STAGE_COMPLETE_LABEL)).is_some(),
        })
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What the replay did about one pod's lifecycle (the run report's `lifecycles`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Given {
    /// The pod, `namespace/name` on the cluster.
    pub pod: String,
    /// Its owner in the trace: `group/version.Kind`, `namespace/name`.
    pub owner_kind: String,
    pub owner: String,
    /// Which of the owner's pods it is (from 0): it took lifecycle `n % len`.
    pub n: usize,
    /// `Finished`, `Running` or `Empty`, as recorded.
    pub lifecycle: String,
    /// How long it runs before it completes (`Finished` only), at the replay's speed.
    pub runs_for: Option<String>,
    /// When it was seen running (seconds since the Unix epoch).
    pub started_at: f64,
    /// When it should complete, and when it was seen complete (seconds since the Unix epoch).
    pub completes_at: Option<f64>,
    pub completed_at: Option<f64>,
}

/// Gives the replay's pods their lifecycles, one pod update at a time (pure: the caller
/// watches and patches).
#[derive(Debug)]
pub struct Driver {
    lifecycles: Lifecycles,
    speed: Speed,
    /// Pods given to each owner so far.
    counts: HashMap<Owner, usize>,
    /// Pods already given a lifecycle (`namespace/name`), at their index in `given`.
    seen: HashMap<String, usize>,
    /// Pods that ran without an owner the trace knows (counted once).
    unknown: HashSet<String>,
    pub given: Vec<Given>,
}

impl Driver {
    pub fn new(lifecycles: Lifecycles, speed: Speed) -> Driver {
        Driver {
            lifecycles,
            speed,
            counts: HashMap::new(),
            seen: HashMap::new(),
            unknown: HashSet::new(),
            given: Vec::new(),
        }
    }

    /// Whether the trace has any lifecycle to give.
    pub fn has_lifecycles(&self) -> bool {
        !self.lifecycles.is_empty()
    }

    /// Pods seen running whose owner has no lifecycles in the trace.
    pub fn without_lifecycle(&self) -> usize {
        self.unknown.len()
    }

    /// What to do about a pod as it is now (at `now`): the merge patch that gives it its
    /// lifecycle, when it is running for the first time and its lifecycle completes.
    pub fn on_pod(&mut self, pod: &PodState, now: SystemTime) -> Option<Value> {
        let key = pod.key();
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        if let Some(&i) = self.seen.get(&key) {
            if pod.phase.as_deref() == Some("Succeeded") {
                if let Some(g) = self.given.get_mut(i) {
                    g.completed_at.get_or_insert(secs(now));
                }
            }
            return None;
        }
        if pod.phase.as_deref() != Some("Running") || pod.completing {
            return None;
        }
        let Some((owner, list)) =
            pod.owner.as_ref().and_then(|o| Some((o, self.lifecycles.get(o).filter(|l| !l.is_empty())?)))
        else {
            self.unknown.insert(key);
            return None;
        };
        let count = self.counts.entry(owner.clone()).or_default();
        let n = *count;
        *count += 1;
        let lifecycle = list[n % list.len()];
        let runs_for = run_time(&lifecycle, self.speed);
        let run_time = runs_for.map(go_duration);
        self.seen.insert(key.clone(), self.given.len());
        self.given.push(Given {
            pod: key,
            owner_kind: owner.0.clone(),
            owner: owner.1.clone(),
            n,
            lifecycle: match lifecycle {
                PodLifecycle::Finished(..) => "Finished",
                PodLifecycle::Running(_) => "Running",
                PodLifecycle::Empty => "Empty",
            }
            .into(),
            runs_for: run_time.clone(),
            started_at: secs(now),
            completes_at: runs_for.map(|d| secs(now + d)),
            completed_at: None,
        });
        Some(json!({"metadata": {
            "labels": {STAGE_COMPLETE_LABEL: "true"},
            "annotations": {STAGE_COMPLETE_TIME_ANNOTATION: run_time?},
        }}))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skel_trace::PodLifecycleEntry;

    fn section() -> PodLifecycles {
        PodLifecycles::new(vec![
            PodLifecycleEntry {
                gvk: "batch/v1.CronJob".into(),
                ns_name: "default/hello".into(),
                pods: vec![(7, vec![PodLifecycle::Finished(100, 130), PodLifecycle::Finished(160, 190)])],
            },
            PodLifecycleEntry {
                gvk: "v1.Pod".into(),
                ns_name: "testing/bare".into(),
                pods: vec![(1, vec![PodLifecycle::Running(5)])],
            },
        ])
    }

    fn pod(name: &str, owner: (&str, &str), phase: &str) -> PodState {
        PodState {
            namespace: "virtual-default".into(),
            name: name.into(),
            phase: Some(phase.into()),
            owner: Some((owner.0.into(), owner.1.into())),
            completing: false,
        }
    }

    #[test]
    fn a_pod_from_the_api_server_carries_its_owner_and_label() {
        let v = json!({"metadata": {"namespace": "virtual-default", "name": "a",
            "labels": {STAGE_COMPLETE_LABEL: "true"},
            "annotations": {OWNER_KIND_ANNOTATION: "batch/v1.CronJob", OWNER_NAME_ANNOTATION: "default/hello"}},
            "status": {"phase": "Running"}});
        let pod = PodState::from_value(&v).unwrap();
        assert_eq!(pod.owner, Some(("batch/v1.CronJob".into(), "default/hello".into())));
        assert!(pod.completing);
        assert_eq!(
            (pod.namespace.as_str(), pod.name.as_str(), pod.phase.as_deref()),
            ("virtual-default", "a", Some("Running"))
        );
        // One annotation of the two is no owner; a labelled pod is not given a lifecycle again.
        let half = json!({"metadata": {"name": "b", "annotations": {OWNER_KIND_ANNOTATION: "batch/v1.Job"}}});
        let half = PodState::from_value(&half).unwrap();
        assert_eq!((half.owner, half.completing), (None, false));
        let mut driver = Driver::new(Lifecycles::new(&section()), Speed::Max);
        assert_eq!(driver.on_pod(&pod, SystemTime::now()), None);
        assert!(driver.given.is_empty());
        // Without the label, the same pod is given its owner's first lifecycle.
        let fresh = PodState { completing: false, ..pod };
        assert!(driver.on_pod(&fresh, SystemTime::now()).is_some());
    }

    #[test]
    fn go_durations() {
        let d = |ms| go_duration(Duration::from_millis(ms));
        assert_eq!(d(0), "0s");
        assert_eq!(d(30_000), "30s");
        assert_eq!(d(3_000), "3s");
        assert_eq!(d(2_500), "2.5s");
        assert_eq!(d(90_000), "1m30s");
        assert_eq!(d(3_600_000), "1h0m0s");
        assert_eq!(d(3_723_050), "1h2m3.05s");
    }

    #[test]
    fn each_pod_of_an_owner_takes_the_next_lifecycle_at_the_replays_speed() {
        let mut driver = Driver::new(Lifecycles::new(&section()), Speed::Times(10.0));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let owner = ("batch/v1.CronJob", "default/hello");
        // Pending: nothing yet.
        assert_eq!(driver.on_pod(&pod("a", owner, "Pending"), t0), None);
        let patch = driver.on_pod(&pod("a", owner, "Running"), t0).unwrap();
        assert_eq!(patch["metadata"]["labels"][STAGE_COMPLETE_LABEL], "true");
        assert_eq!(patch["metadata"]["annotations"][STAGE_COMPLETE_TIME_ANNOTATION], "3s");
        // Seen once: not again.
        assert_eq!(driver.on_pod(&pod("a", owner, "Running"), t0), None);
        // The second and third pods take entries 1 and 0 (n % len).
        assert!(driver.on_pod(&pod("b", owner, "Running"), t0).is_some());
        assert!(driver.on_pod(&pod("c", owner, "Running"), t0).is_some());
        let ns: Vec<usize> = driver.given.iter().map(|g| g.n).collect();
        assert_eq!(ns, [0, 1, 2]);
        assert_eq!(driver.given[0].completes_at, Some(1003.0));
        // Completion is recorded when seen.
        driver.on_pod(&pod("a", owner, "Succeeded"), t0 + Duration::from_secs(4));
        assert_eq!(driver.given[0].completed_at, Some(1004.0));
    }

    #[test]
    fn running_and_unknown_owners_never_complete() {
        let mut driver = Driver::new(Lifecycles::new(&section()), Speed::Max);
        let now = SystemTime::now();
        assert_eq!(driver.on_pod(&pod("bare", ("v1.Pod", "testing/bare"), "Running"), now), None);
        assert_eq!(driver.given.len(), 1);
        assert_eq!(driver.given[0].lifecycle, "Running");
        assert_eq!(driver.given[0].completes_at, None);
        assert_eq!(driver.on_pod(&pod("x", ("apps/v1.Deployment", "default/web"), "Running"), now), None);
        let mut no_owner = pod("y", ("", ""), "Running");
        no_owner.owner = None;
        assert_eq!(driver.on_pod(&no_owner, now), None);
        assert_eq!(driver.without_lifecycle(), 2);
        // At --speed max a finished lifecycle completes at once.
        let patch = driver.on_pod(&pod("z", ("batch/v1.CronJob", "default/hello"), "Running"), now).unwrap();
        assert_eq!(patch["metadata"]["annotations"][STAGE_COMPLETE_TIME_ANNOTATION], "0s");
    }

    #[test]
    fn the_plan_says_what_each_owner_s_pods_do() {
        let l = Lifecycles::new(&section());
        let lines: Vec<String> = l.owners().map(|(o, ls)| describe(o, ls, Speed::Times(10.0))).collect();
        assert_eq!(
            lines,
            [
                "batch/v1.CronJob default/hello: 2 pods, each completes after 30s (3s at --speed 10)",
                "v1.Pod testing/bare: 1 pod, keeps running",
            ]
        );
        let one = [PodLifecycle::Finished(0, 12)];
        let owner = ("v1.Pod".to_string(), "t/p".to_string());
        assert_eq!(describe(&owner, &one, Speed::Times(1.0)), "v1.Pod t/p: 1 pod, completes after 12s");
        let mixed = [PodLifecycle::Finished(0, 12), PodLifecycle::Finished(0, 30), PodLifecycle::Empty];
        assert_eq!(
            describe(&owner, &mixed, Speed::Max),
            "v1.Pod t/p: 3 pods, 1 completes after 12s (at once at --speed max); 1 completes after 30s (at once at \
             --speed max); 1 never starts"
        );
    }
}
