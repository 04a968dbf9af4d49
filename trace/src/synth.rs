//! A seeded generator of realistic synthetic SimKube traces, for benchmarks and tests.
//!
//! Modeled on the shared `gen_trace.py` tool: Deployments, StatefulSets, DaemonSets, Jobs, CronJobs (on
//! `batch/v1beta1` and `batch/v1`), PodDisruptionBudgets, HorizontalPodAutoscalers, Ingresses
//! (`networking.k8s.io/v1beta1`), Services, ConfigMaps and bare Pods, with labels, annotations,
//! status blocks and pod specs that read secrets and config maps (`valueFrom.secretKeyRef`,
//! `configMapKeyRef`, `envFrom`, secret/configMap/emptyDir volumes and their mounts). Events
//! create, update and delete objects; `index` and `pod_lifecycles` follow the tracked objects.
//!
//! [`write_trace`] streams events through a [`TraceWriter`] until the output reaches about the
//! requested size, so memory stays bounded (at most [`MAX_LIVE`] live objects are kept) however
//! large the trace. The output depends only on the seed, the format and the target size, and the
//! events of a smaller trace are a prefix of those of a larger one with the same seed.

use std::collections::BTreeMap;
use std::io::{self, Seek, Write};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::{default_pod_spec_template_paths, Config, TrackedObjectConfig};
use crate::error::TraceError;
use crate::lifecycles::{PodLifecycle, PodLifecycleEntry, PodLifecycles};
use crate::model::{Event, Format, Section, TRACE_VERSION};
use crate::write::TraceWriter;

/// What [`write_trace`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynthStats {
    /// Events in the trace.
    pub events: u64,
    /// Objects in all events, applied and deleted.
    pub objects: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// The most objects alive at once; past it, each event deletes objects to get back under it.
pub const MAX_LIVE: usize = 5000;

/// The most `pod_lifecycles` entries a trace gets.
const MAX_LIFECYCLES: usize = 64;

/// The first event's time is a little after this (2024-02-29T21:18:05Z, as `gen_trace.py`).
const START_TS: i64 = 1_709_241_485;

/// The pod template path of CronJobs, which SimKube knows only for `batch/v1`.
const CRONJOB_TEMPLATE: &str = "/spec/jobTemplate/spec/template";

/// The kinds the tracer config tracks (and `index` lists); the first two track pod lifecycles.
const TRACKED: [&str; 6] = [
    "apps/v1.Deployment",
    "batch/v1.Job",
    "apps/v1.StatefulSet",
    "apps/v1.DaemonSet",
    "batch/v1.CronJob",
    "batch/v1beta1.CronJob",
];

/// Writes a synthetic trace of about `target_bytes` bytes (it stops at the first event that
/// reaches the target, counting an estimate of the `index` and `pod_lifecycles` that follow).
pub fn write_trace<W: Write + Seek>(
    mut out: W,
    format: Format,
    seed: u64,
    target_bytes: u64,
) -> Result<SynthStats, TraceError> {
    let start = out.stream_position().map_err(TraceError::write_io)?;
    let mut writer = TraceWriter::new(out, format);
    let version = Section::Version(TRACE_VERSION);
    let config = Section::Config(tracer_config());
    let mut estimate = encoded_len(&version.name(), format)? + encoded_len(&TRACE_VERSION, format)?;
    if let Section::Config(c) = &config {
        estimate += encoded_len(&c.to_json_value(), format)? + 40;
    }
    writer.section(&version)?;
    writer.section(&config)?;
    writer.begin_events()?;

    let mut gen = Gen::new(seed);
    let mut stats = SynthStats::default();
    while estimate + gen.tail_estimate() < target_bytes {
        let event = gen.event();
        estimate += encoded_len(&event, format)? + 1;
        stats.events += 1;
        stats.objects += (event.applied_objs.len() + event.deleted_objs.len()) as u64;
        writer.event(&event)?;
    }

    let (index, lifecycles) = gen.finish();
    writer.section(&Section::Index(index))?;
    writer.section(&Section::PodLifecycles(lifecycles))?;
    let mut out = writer.finish()?;
    let end = out.stream_position().map_err(TraceError::write_io)?;
    stats.bytes = end.saturating_sub(start);
    Ok(stats)
}

/// The tracer config: the tracked kinds with their default pod template paths.
fn tracer_config() -> Config {
    let tracked_objects = TRACKED
        .iter()
        .enumerate()
        .map(|(i, gvk)| {
            let paths = default_pod_spec_template_paths(gvk).unwrap_or_else(|| vec![CRONJOB_TEMPLATE.to_string()]);
            let cfg = TrackedObjectConfig { pod_spec_template_paths: paths, track_lifecycle: i < 2, skip_owned: false };
            ((*gvk).to_string(), cfg)
        })
        .collect();
    Config { tracked_objects }
}

/// How many bytes `value` takes in `format`.
fn encoded_len<T: Serialize + ?Sized>(value: &T, format: Format) -> Result<u64, TraceError> {
    let mut counter = ByteCounter(0);
    let res = match format {
        Format::Json => serde_json::to_writer(&mut counter, value).map_err(|e| e.to_string()),
        Format::Msgpack => rmp_serde::encode::write_named(&mut counter, value).map_err(|e| e.to_string()),
    };
    res.map_err(|message| TraceError::Encode { format, message })?;
    Ok(counter.0)
}

/// A writer that only counts.
struct ByteCounter(u64);

impl Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` of a unix time (the form Kubernetes timestamps take).
pub fn rfc3339(ts: i64) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// splitmix64: tiny, fast, and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    /// One element of a non-empty slice.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A hash as SimKube's index and pod lifecycles hold (63 bits, as `gen_trace.py`).
    fn hash(&mut self) -> u64 {
        self.next_u64() >> 1
    }

    fn uid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes objects

const NAMESPACES: [&str; 6] = ["default", "kube-system", "payments", "web-frontend", "data.pipeline", "monitoring"];
const APPS: [&str; 10] =
    ["nginx", "redis", "postgres", "kafka", "api-gateway", "worker", "billing", "search", "auth", "cache"];
const IMAGES: [&str; 8] = [
    "nginx:1.14.2",
    "redis:7.2",
    "postgres:15.4",
    "localhost:5000/foo:latest",
    "quay.io/acme/api:v2.3.1",
    "gcr.io/acme/worker@sha256:0f1e2d3c",
    "busybox:1.36",
    "ghcr.io/acme/search:2024.01",
];
const ARGS: [&[&str]; 3] = [&["PLACEHOLDER", "--foo", "--bar"], &["--port=8080"], &["doit", "-x", "-y"]];
const NODE_SELECTORS: [&[(&str, &str)]; 5] = [
    &[("node-role.kubernetes.io/master", "")],
    &[("kubernetes.io/os", "linux")],
    &[("simkube.dev/foo", "bar")],
    &[("topology.kubernetes.io/zone", "us-east-1a"), ("node.kubernetes.io/instance-type", "m5.large")],
    &[("kubernetes.io/arch", "amd64")],
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
    Ingress,
    Service,
    ConfigMap,
    Pod,
}

/// The kinds new objects have, with their weights.
const KINDS: [(Kind, usize); 11] = [
    (Kind::Deployment, 20),
    (Kind::StatefulSet, 8),
    (Kind::DaemonSet, 6),
    (Kind::Job, 8),
    (Kind::CronJob, 12),
    (Kind::PodDisruptionBudget, 5),
    (Kind::HorizontalPodAutoscaler, 5),
    (Kind::Ingress, 4),
    (Kind::Service, 8),
    (Kind::ConfigMap, 6),
    (Kind::Pod, 18),
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            Kind::Ingress => "Ingress",
            Kind::Service => "Service",
            Kind::ConfigMap => "ConfigMap",
            Kind::Pod => "Pod",
        }
    }
}

/// The object map of a `json!({...})` literal.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A live object: its `group/version.Kind`, `namespace/name` and latest manifest.
struct Live {
    gvk: String,
    ns_name: String,
    manifest: Value,
}

/// The generator's state: the clock, the live objects, and what `index` and `pod_lifecycles`
/// will say.
struct Gen {
    rng: Rng,
    ts: i64,
    counter: u64,
    live: Vec<Live>,
    index: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bytes the index's `"ns/name": hash` entries will take, roughly.
    index_bytes: u64,
    lifecycles: Vec<PodLifecycleEntry>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: Rng(seed),
            ts: START_TS,
            counter: 0,
            live: Vec::new(),
            index: BTreeMap::new(),
            index_bytes: 0,
            lifecycles: Vec::new(),
        }
    }

    /// About how many bytes `index` and `pod_lifecycles` would take now.
    fn tail_estimate(&self) -> u64 {
        64 + self.index_bytes + 30 * self.index.len() as u64 + 120 * self.lifecycles.len() as u64
    }

    fn finish(self) -> (Value, PodLifecycles) {
        let index = self
            .index
            .into_iter()
            .map(|(gvk, objects)| {
                let objects: Map<String, Value> = objects.into_iter().map(|(k, h)| (k, Value::from(h))).collect();
                (gvk, Value::Object(objects))
            })
            .collect();
        (Value::Object(index), PodLifecycles::new(self.lifecycles))
    }

    fn event(&mut self) -> Event {
        self.ts += *self.rng.pick(&[1, 2, 5, 10, 15, 30, 60, 120]);
        let mut event = Event { ts: self.ts, applied_objs: Vec::new(), deleted_objs: Vec::new() };
        if self.rng.chance(0.02) {
            return event;
        }
        for _ in 0..*self.rng.pick(&[1, 1, 1, 2, 2, 3, 4]) {
            let obj = if !self.live.is_empty() && self.rng.chance(0.35) { self.update() } else { self.create() };
            event.applied_objs.push(obj);
        }
        let mut deletes = usize::from(self.rng.chance(0.15));
        deletes = deletes.max(self.live.len().saturating_sub(MAX_LIVE));
        for _ in 0..deletes.min(self.live.len()) {
            let gone = self.live.swap_remove(self.rng.below(self.live.len()));
            if let Some(objects) = self.index.get_mut(&gone.gvk) {
                if objects.remove(&gone.ns_name).is_some() {
                    self.index_bytes = self.index_bytes.saturating_sub(index_entry_len(&gone.ns_name));
                }
            }
            event.deleted_objs.push(gone.manifest);
        }
        event
    }

    /// A new version of a live object: scaled, with a newer resource version and generation.
    fn update(&mut self) -> Value {
        let i = self.rng.below(self.live.len());
        let replicas = self.rng.range(0, 12);
        let bump = self.rng.range(1, 100);
        let Some(live) = self.live.get_mut(i) else { return Value::Null };
        let obj = &mut live.manifest;
        if let Some(r) = obj.pointer_mut("/spec/replicas") {
            *r = Value::from(replicas);
        }
        if let Some(rv) = obj.pointer_mut("/metadata/resourceVersion") {
            let old = rv.as_str().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
            *rv = Value::from((old + bump).to_string());
        }
        if let Some(generation) = obj.pointer_mut("/metadata/generation") {
            *generation = Value::from(generation.as_i64().unwrap_or(1) + 1);
        }
        obj.clone()
    }

    fn create(&mut self) -> Value {
        let total: usize = KINDS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(total);
        let mut kind = Kind::Pod;
        for (k, w) in KINDS {
            if roll < w {
                kind = k;
                break;
            }
            roll -= w;
        }
        let app = *self.rng.pick(&APPS);
        let ns = *self.rng.pick(&NAMESPACES);
        self.counter += 1;
        let name = if kind == Kind::Pod {
            let uid = self.rng.uid();
            format!("{app}-{}-{}", self.counter, uid.get(..5).unwrap_or_default())
        } else {
            format!("{app}-{}", self.counter)
        };
        let manifest = self.make(kind, &name, ns, app);
        let api_version = manifest.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let gvk = format!("{api_version}.{}", kind.name());
        let ns_name = format!("{ns}/{name}");
        if TRACKED.contains(&gvk.as_str()) {
            let hash = self.rng.hash();
            self.index_bytes += index_entry_len(&ns_name);
            self.index.entry(gvk.clone()).or_default().insert(ns_name.clone(), hash);
            let owns_pods = matches!(kind, Kind::Deployment | Kind::Job | Kind::CronJob);
            if owns_pods && self.lifecycles.len() < MAX_LIFECYCLES && self.rng.chance(0.5) {
                let pods = vec![(self.rng.hash(), self.pod_lifecycles())];
                self.lifecycles.push(PodLifecycleEntry { gvk: gvk.clone(), ns_name: ns_name.clone(), pods });
            }
        }
        self.live.push(Live { gvk, ns_name, manifest: manifest.clone() });
        manifest
    }

    fn pod_lifecycles(&mut self) -> Vec<PodLifecycle> {
        (0..self.rng.range(1, 3))
            .map(|_| {
                let start = self.ts + self.rng.range(0, 100);
                match self.rng.below(3) {
                    0 => PodLifecycle::Running(start),
                    1 => PodLifecycle::Finished(start, start + self.rng.range(1, 500)),
                    _ => PodLifecycle::Empty,
                }
            })
            .collect()
    }

    fn labels(&mut self, app: &str) -> Value {
        let r = &mut self.rng;
        let mut labels = object(json!({"app": app, "app.kubernetes.io/name": app}));
        if r.chance(0.6) {
            labels.insert("app.kubernetes.io/component".into(), json!(r.pick(&["frontend", "backend", "db", "queue"])));
        }
        if r.chance(0.3) {
            labels.insert("simkube.dev/foo".into(), json!(r.pick(&["bar", "baz"])));
        }
        if r.chance(0.2) {
            labels.insert("simkube.dev/key".into(), json!(r.pick(&["bar", "other"])));
        }
        if r.chance(0.2) {
            labels.insert("tier".into(), json!(r.pick(&["gold", "silver"])));
        }
        Value::Object(labels)
    }

    fn metadata(&mut self, name: &str, ns: &str, app: &str, kind: Kind) -> (Value, i64) {
        let uid = self.rng.uid();
        let resource_version = self.rng.range(1000, 999_999).to_string();
        let generation = self.rng.range(1, 12);
        let created = rfc3339(self.ts - self.rng.range(0, 86_400));
        let labels = self.labels(app);
        let mut md = object(json!({
            "name": name,
            "namespace": ns,
            "uid": uid,
            "resourceVersion": resource_version,
            "generation": generation,
            "creationTimestamp": created,
            "labels": labels,
        }));
        let r = &mut self.rng;
        let mut annotations = Map::new();
        if r.chance(0.5) {
            annotations.insert("deployment.kubernetes.io/revision".into(), json!(r.range(1, 9).to_string()));
        }
        if r.chance(0.3) {
            let applied = json!({"apiVersion": "v1", "kind": kind.name(), "metadata": {"name": name}});
            annotations.insert("kubectl.kubernetes.io/last-applied-configuration".into(), json!(applied.to_string()));
        }
        if r.chance(0.2) {
            annotations.insert("prometheus.io/scrape".into(), json!("true"));
        }
        if !annotations.is_empty() || r.chance(0.3) {
            md.insert("annotations".into(), Value::Object(annotations));
        }
        (Value::Object(md), generation)
    }

    fn container(&mut self, app: &str, idx: usize, secrets: &[String], cms: &[String], volumes: &[String]) -> Value {
        let r = &mut self.rng;
        let name = if idx == 0 { app.to_string() } else { format!("{app}-{idx}") };
        let mut c = object(json!({
            "name": name,
            "image": r.pick(&IMAGES),
            "imagePullPolicy": r.pick(&["IfNotPresent", "Always"]),
            "ports": [{"containerPort": r.pick(&[80, 443, 5432, 6379, 8080, 9090]), "protocol": "TCP"}],
            "resources": {
                "requests": {"cpu": r.pick(&["100m", "250m", "1"]), "memory": r.pick(&["64Mi", "256Mi", "1Gi"])},
                "limits": {"cpu": r.pick(&["500m", "2"]), "memory": r.pick(&["512Mi", "2Gi"])},
            },
        }));
        if r.chance(0.4) {
            c.insert("args".into(), json!(r.pick(&ARGS)));
        }
        let mut env = Vec::new();
        if r.chance(0.8) {
            env.push(json!({"name": "LOG_LEVEL", "value": r.pick(&["info", "debug"])}));
        }
        if !secrets.is_empty() && r.chance(0.7) {
            env.push(json!({"name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": r.pick(secrets), "key": "password"}}}));
        }
        if !cms.is_empty() && r.chance(0.6) {
            env.push(json!({"name": "CONFIG_MODE",
                "valueFrom": {"configMapKeyRef": {"name": r.pick(cms), "key": "mode", "optional": true}}}));
        }
        if r.chance(0.3) {
            env.push(json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}));
        }
        if !env.is_empty() {
            c.insert("env".into(), Value::Array(env));
        }
        let mut env_from = Vec::new();
        if !cms.is_empty() && r.chance(0.4) {
            env_from.push(json!({"configMapRef": {"name": r.pick(cms)}}));
        }
        if !secrets.is_empty() && r.chance(0.4) {
            env_from.push(json!({"secretRef": {"name": r.pick(secrets)}, "prefix": "SEC_"}));
        }
        if !env_from.is_empty() {
            c.insert("envFrom".into(), Value::Array(env_from));
        }
        let mut mounts = Vec::new();
        for v in volumes {
            if r.chance(0.75) {
                mounts.push(json!({"name": v, "mountPath": format!("/etc/{v}"), "readOnly": r.chance(0.5)}));
            }
        }
        if !mounts.is_empty() {
            c.insert("volumeMounts".into(), Value::Array(mounts));
        }
        Value::Object(c)
    }

    fn pod_spec(&mut self, app: &str) -> Map<String, Value> {
        let n_secrets = self.rng.below(3);
        let secrets: Vec<String> =
            [format!("{app}-secret"), format!("{app}-tls")].into_iter().take(n_secrets).collect();
        let n_cms = self.rng.below(3);
        let cms: Vec<String> = [format!("{app}-config"), "shared-config".into()].into_iter().take(n_cms).collect();
        let mut volumes = Vec::new();
        let mut volume_names = Vec::new();
        for s in &secrets {
            let name = format!("{}-vol", s.replace('-', ""));
            volumes.push(json!({"name": name, "secret": {"secretName": s, "defaultMode": 420}}));
            volume_names.push(name);
        }
        for c in &cms {
            let name = format!("{}-vol", c.replace('-', ""));
            volumes.push(json!({"name": name, "configMap": {"name": c}}));
            volume_names.push(name);
        }
        if self.rng.chance(0.5) {
            volumes.push(json!({"name": "scratch", "emptyDir": {}}));
            volume_names.push("scratch".into());
        }
        if self.rng.chance(0.2) {
            volumes.push(json!({"name": "data", "persistentVolumeClaim": {"claimName": format!("{app}-data")}}));
            volume_names.push("data".into());
        }
        let n_containers = *self.rng.pick(&[1, 1, 1, 2, 3]);
        let containers: Vec<Value> =
            (0..n_containers).map(|i| self.container(app, i, &secrets, &cms, &volume_names)).collect();
        let r = &mut self.rng;
        let mut spec = object(json!({
            "containers": containers,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "terminationGracePeriodSeconds": r.pick(&[30, 60]),
        }));
        if r.chance(0.3) {
            spec.insert(
                "initContainers".into(),
                json!([{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}]),
            );
        }
        if !volumes.is_empty() {
            spec.insert("volumes".into(), Value::Array(volumes));
        }
        if r.chance(0.5) {
            let selector: Map<String, Value> =
                r.pick(&NODE_SELECTORS).iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
            spec.insert("nodeSelector".into(), Value::Object(selector));
        }
        if r.chance(0.4) {
            let tolerations = [
                json!({"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}),
                json!({"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}),
                json!({"key": "simkube.dev/foo", "operator": "Equal", "value": "bar", "effect": "NoExecute", "tolerationSeconds": 300}),
                json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
            ];
            let n = r.range(1, 3) as usize;
            let first = r.below(tolerations.len());
            let chosen: Vec<Value> =
                (0..n).filter_map(|k| tolerations.get((first + k) % tolerations.len()).cloned()).collect();
            spec.insert("tolerations".into(), Value::Array(chosen));
        }
        if r.chance(0.5) {
            spec.insert("serviceAccountName".into(), json!(format!("{app}-sa")));
            if r.chance(0.5) {
                spec.insert("serviceAccount".into(), json!(format!("{app}-sa")));
            }
        }
        if r.chance(0.2) {
            spec.insert("priorityClassName".into(), json!("high-priority"));
        }
        spec
    }

    /// A pod template with the given restart policy.
    fn template(&mut self, app: &str, restart_policy: &str) -> Value {
        let mut spec = self.pod_spec(app);
        spec.insert("restartPolicy".into(), json!(restart_policy));
        json!({"metadata": {"creationTimestamp": null, "labels": {"app": app}}, "spec": spec})
    }

    fn make(&mut self, kind: Kind, name: &str, ns: &str, app: &str) -> Value {
        let (md, generation) = self.metadata(name, ns, app, kind);
        let k = kind.name();
        match kind {
            Kind::Deployment => {
                let replicas = self.rng.range(0, 10);
                let template = self.template(app, "Always");
                let ready = (replicas - self.rng.range(0, 2)).max(0);
                json!({"apiVersion": "apps/v1", "kind": k, "metadata": md, "spec": {
                    "replicas": replicas, "selector": {"matchLabels": {"app": app}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                    "template": template},
                    "status": {"replicas": replicas, "readyReplicas": ready, "observedGeneration": generation,
                        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}})
            }
            Kind::StatefulSet => {
                let replicas = self.rng.range(1, 5);
                let template = self.template(app, "Always");
                json!({"apiVersion": "apps/v1", "kind": k, "metadata": md, "spec": {
                    "replicas": replicas, "serviceName": app, "selector": {"matchLabels": {"app": app}},
                    "template": template,
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}]},
                    "status": {"replicas": 1, "currentRevision": format!("{name}-abc123")}})
            }
            Kind::DaemonSet => {
                let template = self.template(app, "Always");
                let r = &mut self.rng;
                json!({"apiVersion": "apps/v1", "kind": k, "metadata": md, "spec": {
                    "selector": {"matchLabels": {"app": app}}, "template": template,
                    "updateStrategy": {"type": r.pick(&["RollingUpdate", "OnDelete"])}},
                    "status": {"desiredNumberScheduled": r.range(1, 50), "numberReady": r.range(0, 50)}})
            }
            Kind::Job => {
                let template = self.template(app, "Never");
                let r = &mut self.rng;
                json!({"apiVersion": "batch/v1", "kind": k, "metadata": md, "spec": {
                    "backoffLimit": r.range(0, 6), "completions": r.range(1, 3), "parallelism": 1, "template": template},
                    "status": {"succeeded": r.range(0, 1), "startTime": rfc3339(self.ts)}})
            }
            Kind::CronJob => {
                let template = self.template(app, "OnFailure");
                let r = &mut self.rng;
                let api = r.pick(&["batch/v1beta1", "batch/v1beta1", "batch/v1"]);
                json!({"apiVersion": api, "kind": k, "metadata": md, "spec": {
                    "schedule": r.pick(&["*/5 * * * *", "0 * * * *", "@daily"]),
                    "concurrencyPolicy": r.pick(&["Allow", "Forbid"]), "successfulJobsHistoryLimit": 3,
                    "jobTemplate": {"spec": {"template": template}}},
                    "status": {"lastScheduleTime": rfc3339(self.ts - 300)}})
            }
            Kind::PodDisruptionBudget => json!({"apiVersion": "policy/v1beta1", "kind": k, "metadata": md, "spec": {
                "minAvailable": self.rng.range(1, 3), "selector": {"matchLabels": {"app": app}}},
                "status": {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 3}}),
            Kind::HorizontalPodAutoscaler => {
                let r = &mut self.rng;
                json!({"apiVersion": "autoscaling/v2beta2", "kind": k, "metadata": md, "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
                    "minReplicas": 1, "maxReplicas": r.range(3, 20),
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": r.pick(&[50, 70, 80])}}}]},
                    "status": {"currentReplicas": 2, "desiredReplicas": 2}})
            }
            Kind::Ingress => json!({"apiVersion": "networking.k8s.io/v1beta1", "kind": k, "metadata": md, "spec": {
                "rules": [{"host": format!("{app}.example.com"), "http": {"paths": [
                    {"path": "/", "backend": {"serviceName": app, "servicePort": 80}}]}}]},
                "status": {"loadBalancer": {}}}),
            Kind::Service => {
                let r = &mut self.rng;
                json!({"apiVersion": "v1", "kind": k, "metadata": md, "spec": {
                    "type": r.pick(&["ClusterIP", "NodePort", "LoadBalancer"]), "selector": {"app": app},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                    "clusterIP": format!("10.96.{}.{}", r.range(0, 255), r.range(1, 254))},
                    "status": {"loadBalancer": {}}})
            }
            Kind::ConfigMap => {
                let r = &mut self.rng;
                json!({"apiVersion": "v1", "kind": k, "metadata": md, "data": {
                    "mode": r.pick(&["prod", "staging"]), "app.properties": "a=1\nb=2\n",
                    "replicas": r.range(1, 9).to_string()}})
            }
            Kind::Pod => {
                let mut spec = self.pod_spec(app);
                let r = &mut self.rng;
                spec.insert("nodeName".into(), json!(format!("node-{}", r.range(1, 40))));
                let started = rfc3339(self.ts - r.range(0, 600));
                let statuses: Vec<Value> = spec
                    .get("containers")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| {
                        json!({"name": c.get("name"), "ready": true, "restartCount": r.range(0, 3),
                            "image": c.get("image"), "state": {"running": {"startedAt": started}}})
                    })
                    .collect();
                json!({"apiVersion": "v1", "kind": k, "metadata": md, "spec": spec, "status": {
                    "phase": r.pick(&["Running", "Pending", "Succeeded"]),
                    "podIP": format!("10.244.{}.{}", r.range(0, 255), r.range(1, 254)),
                    "startTime": started, "containerStatuses": statuses}})
            }
        }
    }
}

/// About how many bytes `"ns/name":<hash>,` takes in the index.
fn index_entry_len(ns_name: &str) -> u64 {
    ns_name.len() as u64 + 24
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::trace::Trace;
    use std::io::Cursor;

    fn synth(format: Format, seed: u64, target: u64) -> Result<(Vec<u8>, SynthStats), TraceError> {
        let mut out = Cursor::new(Vec::new());
        let stats = write_trace(&mut out, format, seed, target)?;
        Ok((out.into_inner(), stats))
    }

    fn objects(trace: &Trace) -> impl Iterator<Item = &Value> {
        trace.events.iter().flat_map(|e| e.applied_objs.iter().chain(&e.deleted_objs))
    }

    #[test]
    fn deterministic_for_a_seed() -> Result<(), TraceError> {
        for format in [Format::Json, Format::Msgpack] {
            let (a, sa) = synth(format, 7, 200_000)?;
            let (b, sb) = synth(format, 7, 200_000)?;
            let (c, _) = synth(format, 8, 200_000)?;
            assert_eq!(sa, sb);
            assert!(a == b, "{format}: same seed, different output");
            assert!(a != c, "{format}: different seeds, same output");
        }
        Ok(())
    }

    #[test]
    fn reads_back_in_both_formats() -> Result<(), TraceError> {
        let mut traces = Vec::new();
        for format in [Format::Json, Format::Msgpack] {
            let (bytes, stats) = synth(format, 1, 500_000)?;
            assert_eq!(stats.bytes, bytes.len() as u64);
            let trace = Trace::read(bytes.as_slice(), format)?;
            assert_eq!(trace.events.len() as u64, stats.events);
            assert_eq!(objects(&trace).count() as u64, stats.objects);
            assert_eq!(trace.config, tracer_config());
            assert!(!trace.pod_lifecycles.is_empty());
            assert!(trace.pod_lifecycles.len() <= MAX_LIFECYCLES);
            let indexed = trace.index.as_object().map_or(0, |kinds| kinds.len());
            assert!(indexed >= 5, "{format}: index has {indexed} kinds");
            // What Trace::read read, Trace::write writes back byte for byte.
            let again = trace.write(Cursor::new(Vec::new()), format)?.into_inner();
            assert!(again == bytes, "{format}: does not round-trip");
            traces.push(trace);
        }
        // JSON is bigger, so it stops earlier: its events are a prefix of the msgpack ones.
        if let [json, msgpack] = traces.as_slice() {
            assert!(json.events.len() < msgpack.events.len());
            assert_eq!(json.events.as_slice(), &msgpack.events[..json.events.len()]);
        }
        Ok(())
    }

    #[test]
    fn target_size_is_roughly_respected() -> Result<(), TraceError> {
        for format in [Format::Json, Format::Msgpack] {
            for target in [50_000u64, 1_000_000, 2_000_000] {
                let (_, stats) = synth(format, 3, target)?;
                let (lo, hi) = (target * 97 / 100, target * 103 / 100 + 20_000);
                assert!((lo..=hi).contains(&stats.bytes), "{format}: asked for {target}, got {}", stats.bytes);
            }
        }
        Ok(())
    }

    #[test]
    fn has_what_the_bench_scripts_look_for() -> Result<(), TraceError> {
        let (bytes, _) = synth(Format::Json, 1, 300_000)?;
        let trace = Trace::read(bytes.as_slice(), Format::Json)?;
        let str_at = |o: &Value, p: &str| o.pointer(p).and_then(Value::as_str).map(str::to_string);
        let count = |api: &str, kind: &str| {
            objects(&trace)
                .filter(|o| {
                    str_at(o, "/apiVersion").as_deref() == Some(api) && str_at(o, "/kind").as_deref() == Some(kind)
                })
                .count()
        };
        assert!(count("batch/v1beta1", "CronJob") > 0);
        assert!(count("batch/v1", "CronJob") > 0);
        assert!(count("networking.k8s.io/v1beta1", "Ingress") > 0);
        let text = String::from_utf8_lossy(&bytes);
        for needle in ["\"secretKeyRef\"", "\"configMapKeyRef\"", "\"envFrom\"", "\"emptyDir\"", "\"volumeMounts\""] {
            assert!(text.contains(needle), "no {needle}");
        }
        let with_secret_env = objects(&trace)
            .filter_map(|o| o.pointer("/spec/template/spec/containers").and_then(Value::as_array))
            .flatten()
            .filter_map(|c| c.get("env").and_then(Value::as_array))
            .flatten()
            .filter(|e| e.pointer("/valueFrom/secretKeyRef").is_some())
            .count();
        assert!(with_secret_env > 0);
        assert!(trace.events.iter().any(|e| !e.deleted_objs.is_empty()));
        Ok(())
    }

    #[test]
    fn live_objects_stay_bounded() {
        let mut gen = Gen::new(5);
        for _ in 0..(MAX_LIVE * 2) {
            gen.event();
        }
        assert!(gen.live.len() <= MAX_LIVE);
        let indexed: usize = gen.index.values().map(BTreeMap::len).sum();
        assert!(indexed <= gen.live.len());
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(START_TS), "2024-02-29T21:18:05Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
