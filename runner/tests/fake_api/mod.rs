//! An in-process fake Kubernetes API server for tests.
//!
//! Speaks HTTP/1.1 (keep-alive, Content-Length or chunked request bodies) on 127.0.0.1, with
//! one accept thread and one thread per connection; HTTPS too when given a [`Tls`] acceptor
//! (`fake_api/tls.rs` makes one with a test CA). Only std and serde_json are used here, so
//! this file can be included from any test crate.
//!
//! What it serves: discovery (by Kubernetes minor version), get, list and watch (label and
//! field selectors, `resourceVersion`, `timeoutSeconds`), server-side apply, merge patch,
//! create (POST), update (PUT, with `resourceVersion` conflicts) and delete, with `Status`
//! bodies on errors as a real API server gives them. Every write bumps one global
//! `resourceVersion` and is logged as a watch event. Optionally KWOK's `Stage` resource and
//! namespaces that take time to go (`Terminating`).
//!
//! Recorded paths are the request target exactly as received (percent-encoding untouched),
//! including the query string. Routing uses the target without the query.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// The bearer token the server accepts (written into the kubeconfig by `write_kubeconfig`).
pub const TOKEN: &str = "fake-token";
/// `metadata.creationTimestamp` given to created objects.
pub const CREATION_TIMESTAMP: &str = "2026-01-01T00:00:00Z";
/// `metadata.deletionTimestamp` given to namespaces that are terminating.
pub const DELETION_TIMESTAMP: &str = "2026-01-01T00:00:01Z";
/// How long a watch lasts when the request gives no `timeoutSeconds`.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 1 << 20;
/// Largest request body accepted.
const MAX_BODY: usize = 256 << 20;

const ALL_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];
const CREATE_ONLY: &[&str] = &["create"];

/// One served resource: (group, version, plural, singular, kind, namespaced, verbs, served for
/// minor versions `min..max`, only with [`Options::kwok_stages`]).
struct Res {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    verbs: &'static [&'static str],
    min: u32,
    max: u32,
    kwok: bool,
}

const fn r(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    (min, max): (u32, u32),
) -> Res {
    Res { group, version, plural, singular, kind, namespaced, verbs: ALL_VERBS, min, max, kwok: false }
}
const NS: bool = true;
const CL: bool = false;
const ALWAYS: (u32, u32) = (0, u32::MAX);

/// `(min, max)`: served when `min <= N < max`.
const fn since(n: u32) -> (u32, u32) {
    (n, u32::MAX)
}
const fn before(n: u32) -> (u32, u32) {
    (0, n)
}

/// The served table. Within a group, the first served version is the preferred one.
#[rustfmt::skip]
const TABLE: &[Res] = &[
    r("", "v1", "namespaces", "namespace", "Namespace", CL, ALWAYS),
    r("", "v1", "nodes", "node", "Node", CL, ALWAYS),
    r("", "v1", "pods", "pod", "Pod", NS, ALWAYS),
    r("", "v1", "services", "service", "Service", NS, ALWAYS),
    r("", "v1", "configmaps", "configmap", "ConfigMap", NS, ALWAYS),
    r("", "v1", "secrets", "secret", "Secret", NS, ALWAYS),
    r("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", NS, ALWAYS),
    r("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", NS, ALWAYS),
    r("", "v1", "endpoints", "endpoints", "Endpoints", NS, ALWAYS),
    r("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", CL, ALWAYS),
    r("apps", "v1", "deployments", "deployment", "Deployment", NS, ALWAYS),
    r("apps", "v1", "replicasets", "replicaset", "ReplicaSet", NS, ALWAYS),
    r("apps", "v1", "statefulsets", "statefulset", "StatefulSet", NS, ALWAYS),
    r("apps", "v1", "daemonsets", "daemonset", "DaemonSet", NS, ALWAYS),
    r("batch", "v1", "jobs", "job", "Job", NS, ALWAYS),
    r("batch", "v1", "cronjobs", "cronjob", "CronJob", NS, since(21)),
    r("batch", "v1beta1", "cronjobs", "cronjob", "CronJob", NS, before(25)),
    r("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", NS, ALWAYS),
    r("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", NS, ALWAYS),
    r("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", CL, ALWAYS),
    r("networking.k8s.io", "v1beta1", "ingresses", "ingress", "Ingress", NS, before(22)),
    r("extensions", "v1beta1", "ingresses", "ingress", "Ingress", NS, before(22)),
    r("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", NS, since(21)),
    r("policy", "v1beta1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", NS, before(25)),
    r("policy", "v1beta1", "podsecuritypolicies", "podsecuritypolicy", "PodSecurityPolicy", CL, before(25)),
    r("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", NS, ALWAYS),
    r("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", NS, ALWAYS),
    r("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", CL, ALWAYS),
    r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", CL, ALWAYS),
    Res { verbs: CREATE_ONLY, ..r("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", CL, ALWAYS) },
    r("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", CL, ALWAYS),
    r("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", NS, since(23)),
    r("autoscaling", "v1", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", NS, ALWAYS),
    r("autoscaling", "v2beta2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", NS, before(26)),
    Res { kwok: true, ..r("kwok.x-k8s.io", "v1alpha1", "stages", "stage", "Stage", CL, ALWAYS) },
];

/// What is served: the minor version and the optional resources.
#[derive(Clone, Copy)]
struct Serve {
    minor: u32,
    kwok: bool,
}

impl Res {
    fn served(&self, sv: Serve) -> bool {
        self.min <= sv.minor && sv.minor < self.max && (!self.kwok || sv.kwok)
    }
    fn group_version(&self) -> String {
        group_version(self.group, self.version)
    }
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// A request as received (recorded once fully read, before it is answered).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The request target as received, with the query string.
    pub path: String,
    /// Header names lowercased, values as received, in order.
    pub headers: Vec<(String, String)>,
    /// None for an empty body; the parsed JSON otherwise; a JSON string holding the raw
    /// (lossy UTF-8) text when the body is not JSON.
    pub body: Option<Value>,
    /// The connection's client presented a certificate the server's CA signed (HTTPS only).
    pub client_certificate: bool,
}

impl Recorded {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with a Status error body. `retry_after` sets the `Retry-After` header and
    /// `details.retryAfterSeconds`.
    Status { code: u16, reason: &'static str, retry_after: Option<u64> },
    /// Wait, then answer normally.
    Delay(Duration),
    /// Read the request fully, then close the connection without answering.
    Drop,
}

struct FaultRule {
    method: String,
    path_contains: String,
    remaining: usize,
    action: Fault,
}

/// One change, as a watch reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The `resourceVersion` the change made.
    pub resource_version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object's URL path.
    pub path: String,
    /// The object after the change (before it, for `DELETED`, with the deletion's version).
    pub object: Value,
}

/// A byte stream a connection is served over: a `TcpStream`, or TLS over one.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// What an HTTPS server does with each accepted connection.
pub trait Tls: Send + Sync {
    /// Runs the server's side of the handshake. `Some((stream, client_certificate))` to serve
    /// HTTP over `stream`, `client_certificate` when the client authenticated with a
    /// certificate; `None` when the connection is done with (a failed handshake, or a plain
    /// HTTP request answered as the Kubernetes API server answers it).
    fn accept(&self, tcp: TcpStream) -> Option<(Box<dyn Stream>, bool)>;
}

/// How the server behaves beyond [`FakeApi::start`]'s defaults.
#[derive(Clone, Default)]
pub struct Options {
    /// Serve KWOK's `stages` (`kwok.x-k8s.io/v1alpha1`, kind `Stage`, cluster-scoped).
    pub kwok_stages: bool,
    /// A deleted namespace stays `Terminating` (with its objects) this long, then goes; `None`:
    /// it goes at once.
    pub namespace_termination: Option<Duration>,
    /// Serve HTTPS through this acceptor.
    pub tls: Option<Arc<dyn Tls>>,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    objects: BTreeMap<String, Value>,
    events: Vec<Event>,
    faults: Vec<FaultRule>,
    denied: Vec<(String, String)>,
    uid_counter: u64,
    rv_counter: u64,
    /// Namespaces deleted and still terminating: name -> when they go.
    terminating: BTreeMap<String, Instant>,
    conns: HashMap<u64, TcpStream>,
    next_conn: u64,
}

struct Shared {
    serve: Serve,
    port: u16,
    termination: Option<Duration>,
    tls: Option<Arc<dyn Tls>>,
    stop: AtomicBool,
    state: Mutex<State>,
    /// Notified on every change of the store (and on stop): wakes the watches.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake API server. Stops (best effort) on drop: open watches end, connections close.
pub struct FakeApi {
    shared: Arc<Shared>,
}

impl FakeApi {
    /// Starts a server pretending to be Kubernetes `version` ("1.25", "v1.21", ...), over plain
    /// HTTP, without the optional resources.
    pub fn start(version: &str) -> FakeApi {
        FakeApi::start_with(version, Options::default())
    }

    /// Starts a server pretending to be Kubernetes `version`, with `options`.
    pub fn start_with(version: &str, options: Options) -> FakeApi {
        let minor = parse_minor(version);
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake_api: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("fake_api: local_addr").port();
        let shared = Arc::new(Shared {
            serve: Serve { minor, kwok: options.kwok_stages },
            port,
            termination: options.namespace_termination,
            tls: options.tls,
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("fake-api-accept-{port}"))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("fake_api: spawn accept thread");
        if shared.termination.is_some() {
            let reaper_shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("fake-api-reaper-{port}"))
                .spawn(move || reap_loop(&reaper_shared))
                .expect("fake_api: spawn reaper thread");
        }
        FakeApi { shared }
    }

    /// `http://127.0.0.1:PORT`, or `https://` when serving TLS.
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.shared.port)
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The minor version being served.
    pub fn minor(&self) -> u32 {
        self.shared.serve.minor
    }

    /// Writes a kubeconfig with contexts `fake` (current, this server, namespace default) and
    /// `down` (http://127.0.0.1:1, nothing listens), both with user `fake` (token fake-token).
    /// For an HTTPS server's kubeconfigs (CA, client certificates), see `fake_api/tls.rs`.
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
- name: down
  cluster:
    server: http://127.0.0.1:1
users:
- name: fake
  user:
    token: {TOKEN}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
- name: down
  context:
    cluster: down
    user: fake
current-context: fake
preferences: {{}}
",
            url = self.url()
        );
        std::fs::write(path, text).expect("fake_api: write kubeconfig");
    }

    /// Every request received, in arrival order (faulted ones included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// `"METHOD /path?query"` for each request, in arrival order.
    pub fn request_lines(&self) -> Vec<String> {
        self.shared.lock().requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
    }

    /// The store, keyed by the object's URL path (no query).
    pub fn objects(&self) -> BTreeMap<String, Value> {
        self.shared.lock().objects.clone()
    }

    /// The object at this URL path, if stored.
    pub fn object(&self, path: &str) -> Option<Value> {
        self.shared.lock().objects.get(path).cloned()
    }

    /// Every change so far, oldest first (what a watch from `resourceVersion=1` would see,
    /// unfiltered).
    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.clone()
    }

    /// The current `resourceVersion` (that of the last change; 0 before any).
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv_counter
    }

    /// Adds a fault rule. The first rule whose method matches (`"*"` = any, case-insensitive)
    /// and whose `path_contains` is a substring of the request target (query included) and
    /// which has times left fires and counts down.
    pub fn fault(&self, method: &str, path_contains: &str, times: usize, action: Fault) {
        self.shared.lock().faults.push(FaultRule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            remaining: times,
            action,
        });
    }

    /// SelfSubjectAccessReviews for this verb + resource (plural, e.g. "deployments") answer
    /// `allowed: false`.
    pub fn deny(&self, verb: &str, resource: &str) {
        self.shared.lock().denied.push((verb.to_string(), resource.to_string()));
    }

    /// Stores `obj` under `path` as given (e.g. a pre-existing namespace at
    /// `/api/v1/namespaces/NAME`), but for `metadata.resourceVersion`, set to the next version
    /// when `metadata` is an object. Watches see it as `ADDED` (or `MODIFIED`).
    pub fn put_object(&self, path: &str, mut obj: Value) {
        let mut st = self.shared.lock();
        let rv = next_rv(&mut st);
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let kind = if st.objects.contains_key(path) { "MODIFIED" } else { "ADDED" };
        st.objects.insert(path.to_string(), obj.clone());
        push_event(&mut st, rv, kind, path, obj);
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Creates a pod as a controller would from its template: `Pending`, with these labels,
    /// annotations and `ownerReferences` (a JSON array, or `Value::Null` for none). Fails
    /// as the API server would when the namespace is missing or terminating, or the pod
    /// exists.
    pub fn create_pod(
        &self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        owner_references: Value,
    ) -> Result<Value, String> {
        let to_map = |pairs: &[(&str, &str)]| -> Map<String, Value> {
            pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
        };
        let mut meta = Map::new();
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(namespace));
        if !labels.is_empty() {
            meta.insert("labels".into(), Value::Object(to_map(labels)));
        }
        if !annotations.is_empty() {
            meta.insert("annotations".into(), Value::Object(to_map(annotations)));
        }
        if !owner_references.is_null() {
            meta.insert("ownerReferences".into(), owner_references);
        }
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": "fake"}]},
            "status": {"phase": "Pending"},
        });
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        let mut st = self.shared.lock();
        let created = match namespace_open(&st, namespace) {
            Err(resp) => Err(resp.body["message"].as_str().unwrap_or("refused").to_string()),
            Ok(()) if st.objects.contains_key(&path) => Err(format!("pods \"{name}\" already exists")),
            Ok(()) => Ok(store_new(&mut st, &path, Some(namespace), pod)),
        };
        drop(st);
        self.shared.changed.notify_all();
        created
    }

    /// Moves a pod to `phase` (`Running`, `Succeeded`, `Failed`, ...), as KWOK's stages do:
    /// `status.phase`, and `status.startTime` when it starts running. A watch sees `MODIFIED`.
    pub fn set_pod_phase(&self, namespace: &str, name: &str, phase: &str) -> Result<Value, String> {
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        let mut st = self.shared.lock();
        let Some(mut pod) = st.objects.get(&path).cloned() else {
            return Err(format!("pods \"{name}\" not found in namespace {namespace}"));
        };
        if !pod.get("status").is_some_and(Value::is_object) {
            pod["status"] = json!({});
        }
        pod["status"]["phase"] = json!(phase);
        if phase == "Running" && pod["status"].get("startTime").is_none() {
            pod["status"]["startTime"] = json!(CREATION_TIMESTAMP);
        }
        let stored = store_update(&mut st, &path, pod);
        drop(st);
        self.shared.changed.notify_all();
        Ok(stored)
    }

    /// Every pod stored, in path order (namespace, then name).
    pub fn pods(&self) -> Vec<Value> {
        let st = self.shared.lock();
        st.objects
            .iter()
            .filter(|(path, _)| parse_object_path(path).is_some_and(|op| op.group.is_empty() && op.resource == "pods"))
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// The pod `namespace/name`, if stored.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.object(&format!("/api/v1/namespaces/{namespace}/pods/{name}"))
    }

    /// Waits (polling every 10 ms, up to `timeout`) until `ready` holds of the store; true if
    /// it did.
    pub fn wait_until(&self, timeout: Duration, ready: impl Fn(&BTreeMap<String, Value>) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if ready(&st.objects) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).min(Duration::from_millis(10));
            st = self.shared.changed.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wake the accept thread so it sees the stop flag.
        let _ = TcpStream::connect_timeout(&([127, 0, 0, 1], self.shared.port).into(), Duration::from_millis(200));
        let conns: Vec<TcpStream> = self.shared.lock().conns.drain().map(|(_, s)| s).collect();
        for conn in conns {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn parse_minor(version: &str) -> u32 {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("");
    let minor: String = parts.next().unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
    assert!(major == "1", "fake_api: unsupported version {version:?} (want \"1.N\")");
    minor.parse().expect("fake_api: version must look like \"1.N\"")
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let id = {
            let mut st = shared.lock();
            let id = st.next_conn;
            st.next_conn += 1;
            if let Ok(clone) = stream.try_clone() {
                st.conns.insert(id, clone);
            }
            id
        };
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name(format!("fake-api-conn-{id}")).spawn(move || {
            let tcp = stream.try_clone().ok();
            match &conn_shared.tls {
                None => serve_connection(stream, false, &conn_shared),
                Some(tls) => {
                    if let Some((tls_stream, client_certificate)) = tls.accept(stream) {
                        serve_connection(tls_stream, client_certificate, &conn_shared);
                    }
                }
            }
            if let Some(tcp) = tcp {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            conn_shared.lock().conns.remove(&id);
        });
        if spawned.is_err() {
            shared.lock().conns.remove(&id);
        }
    }
}

/// Removes terminating namespaces (and their objects) once their time is up.
fn reap_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        let mut st = shared.lock();
        let now = Instant::now();
        let due: Vec<String> = st.terminating.iter().filter(|(_, at)| **at <= now).map(|(n, _)| n.clone()).collect();
        for ns in &due {
            st.terminating.remove(ns);
            remove_namespace(&mut st, ns);
        }
        let changed = !due.is_empty();
        drop(st);
        if changed {
            shared.changed.notify_all();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// The store: every write bumps the resourceVersion and logs an event
// ---------------------------------------------------------------------------------------------

fn next_rv(st: &mut State) -> u64 {
    st.rv_counter += 1;
    st.rv_counter
}

fn push_event(st: &mut State, rv: u64, kind: &'static str, path: &str, object: Value) {
    st.events.push(Event { resource_version: rv, kind, path: path.to_string(), object });
}

fn set_meta(obj: &mut Value, key: &str, value: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][key] = value;
}

/// Stores a new object: uid, creationTimestamp, namespace and resourceVersion set; `ADDED`.
fn store_new(st: &mut State, path: &str, namespace: Option<&str>, mut obj: Value) -> Value {
    st.uid_counter += 1;
    let uid = format!("00000000-0000-4000-8000-{:012}", st.uid_counter);
    let rv = next_rv(st);
    if let Some(ns) = namespace {
        set_meta(&mut obj, "namespace", json!(ns));
    }
    set_meta(&mut obj, "uid", json!(uid));
    set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
    set_meta(&mut obj, "creationTimestamp", json!(CREATION_TIMESTAMP));
    st.objects.insert(path.to_string(), obj.clone());
    push_event(st, rv, "ADDED", path, obj.clone());
    obj
}

/// Replaces a stored object, keeping its uid and creationTimestamp; `MODIFIED`. A change that
/// changes nothing keeps the resourceVersion and logs no event, as the API server does.
fn store_update(st: &mut State, path: &str, mut obj: Value) -> Value {
    let old = st.objects.get(path).cloned().unwrap_or(Value::Null);
    for key in ["uid", "creationTimestamp", "namespace", "deletionTimestamp"] {
        if let Some(v) = old.get("metadata").and_then(|m| m.get(key)) {
            set_meta(&mut obj, key, v.clone());
        }
    }
    let old_rv = old.get("metadata").and_then(|m| m.get("resourceVersion")).cloned().unwrap_or(Value::Null);
    set_meta(&mut obj, "resourceVersion", old_rv);
    if obj == old {
        return obj;
    }
    let rv = next_rv(st);
    set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
    st.objects.insert(path.to_string(), obj.clone());
    push_event(st, rv, "MODIFIED", path, obj.clone());
    obj
}

/// Removes a stored object; `DELETED` with the deletion's resourceVersion.
fn store_remove(st: &mut State, path: &str) -> Option<Value> {
    let mut obj = st.objects.remove(path)?;
    let rv = next_rv(st);
    set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
    push_event(st, rv, "DELETED", path, obj.clone());
    Some(obj)
}

/// Removes a namespace's objects, then the namespace.
fn remove_namespace(st: &mut State, ns: &str) {
    let marker = format!("/namespaces/{ns}/");
    let inside: Vec<String> = st.objects.keys().filter(|k| k.contains(&marker)).cloned().collect();
    for path in inside {
        store_remove(st, &path);
    }
    store_remove(st, &format!("/api/v1/namespaces/{ns}"));
}

/// Ok when objects may be created in `ns`; the API server's answer otherwise.
fn namespace_open(st: &State, ns: &str) -> Result<(), Response> {
    if !st.objects.contains_key(&format!("/api/v1/namespaces/{ns}")) {
        return Err(Response::error(404, "NotFound", &format!("namespaces \"{ns}\" not found")));
    }
    if st.terminating.contains_key(ns) {
        return Err(Response::error(
            403,
            "Forbidden",
            &format!("unable to create new content in namespace {ns} because it is being terminated"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
// ---------------------------------------------------------------------------------------------

struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Conn<S> {
    /// Reads more bytes into the buffer; false on EOF or error.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    /// Takes one CRLF (or LF) terminated line, without the terminator.
    fn read_line(&mut self, limit: usize) -> Option<Vec<u8>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(line);
            }
            if self.buf.len() > limit || !self.fill() {
                return None;
            }
        }
    }

    fn read_exact_bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
    client_certificate: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Reads one request; None on EOF, a broken connection or a malformed request.
fn read_request<S: Read + Write>(conn: &mut Conn<S>) -> Option<Request> {
    // A TLS handshake (record type 22) on the plain port: answered 400 as Go's net/http does,
    // which a TLS client reads as a record it does not understand.
    if conn.buf.is_empty() && !conn.fill() {
        return None;
    }
    if conn.buf.first() == Some(&0x16) {
        let _ = conn.stream.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request",
        );
        return None;
    }
    // Skip empty lines between requests (RFC 9112 §2.2).
    let request_line = loop {
        let line = conn.read_line(MAX_HEAD)?;
        if !line.is_empty() {
            break String::from_utf8_lossy(&line).into_owned();
        }
    };
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let mut target = parts.next()?.to_string();
    let http_version = parts.next().unwrap_or("HTTP/1.0").to_string();
    if let Some(rest) = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        target = match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        };
    }

    let mut headers = Vec::new();
    let mut head_len = request_line.len();
    loop {
        let line = conn.read_line(MAX_HEAD)?;
        if line.is_empty() {
            break;
        }
        head_len += line.len();
        if head_len > MAX_HEAD {
            return None;
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }

    let mut req = Request { method, target, headers, body: Vec::new(), close: false, client_certificate: false };
    let connection = req.header("connection").map(str::to_ascii_lowercase).unwrap_or_default();
    req.close = if http_version.eq_ignore_ascii_case("HTTP/1.0") {
        !connection.contains("keep-alive")
    } else {
        connection.split(',').any(|t| t.trim() == "close")
    };

    if req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }

    let chunked = req.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut body = Vec::new();
        loop {
            let size_line = conn.read_line(MAX_HEAD)?;
            let size_line = String::from_utf8_lossy(&size_line).into_owned();
            let size_hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    if conn.read_line(MAX_HEAD)?.is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() + size > MAX_BODY {
                return None;
            }
            body.extend(conn.read_exact_bytes(size)?);
            // The CRLF after the chunk data.
            conn.read_line(2)?;
        }
        req.body = body;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.trim().parse().ok()?;
        if len > MAX_BODY {
            return None;
        }
        req.body = conn.read_exact_bytes(len)?;
    }
    Some(req)
}

fn serve_connection<S: Read + Write>(stream: S, client_certificate: bool, shared: &Arc<Shared>) {
    let mut conn = Conn { stream, buf: Vec::new() };
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(mut req) = read_request(&mut conn) else { break };
        req.client_certificate = client_certificate;
        let body = if req.body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(
                serde_json::from_slice::<Value>(&req.body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&req.body).into_owned())),
            )
        };
        let recorded = Recorded {
            method: req.method.clone(),
            path: req.target.clone(),
            headers: req.headers.clone(),
            body: body.clone(),
            client_certificate,
        };
        let fault = {
            let mut st = shared.lock();
            st.requests.push(recorded);
            let rule = st.faults.iter_mut().find(|f| {
                f.remaining > 0
                    && (f.method == "*" || f.method.eq_ignore_ascii_case(&req.method))
                    && req.target.contains(f.path_contains.as_str())
            });
            rule.map(|f| {
                f.remaining -= 1;
                f.action.clone()
            })
        };

        let reply = match fault {
            Some(Fault::Drop) => break,
            Some(Fault::Status { code, reason, retry_after }) => {
                let mut status = status_body(code, reason, &format!("fake fault: {reason}"));
                if let Some(secs) = retry_after {
                    status["details"] = json!({ "retryAfterSeconds": secs });
                }
                Reply::Json(Response { code, body: status, retry_after })
            }
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                handle(shared, &req, body)
            }
            None => handle(shared, &req, body),
        };
        let written = match reply {
            Reply::Json(response) => {
                shared.changed.notify_all();
                write_response(&mut conn.stream, &response, req.close)
            }
            Reply::Watch(watch) => stream_watch(&mut conn.stream, shared, &watch, req.close),
        };
        if written.is_err() || req.close {
            break;
        }
    }
    let _ = conn.stream.flush();
}

enum Reply {
    Json(Response),
    Watch(Watch),
}

struct Response {
    code: u16,
    body: Value,
    retry_after: Option<u64>,
}

impl Response {
    fn ok(code: u16, body: Value) -> Response {
        Response { code, body, retry_after: None }
    }
    fn error(code: u16, reason: &str, message: &str) -> Response {
        Response::ok(code, status_body(code, reason, message))
    }
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn write_response(stream: &mut impl Write, resp: &Response, close: bool) -> std::io::Result<()> {
    let body = serde_json::to_vec(&resp.body).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        resp.code,
        reason_phrase(resp.code),
        body.len()
    );
    if let Some(secs) = resp.retry_after {
        out.push_str(&format!("Retry-After: {secs}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    stream.write_all(&bytes)?;
    stream.flush()
}

// ---------------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------------

/// A watch asked for: which collection, which objects, from when, until when.
struct Watch {
    coll: Collection,
    labels: Selector,
    fields: Selector,
    /// `None`: first an `ADDED` for each object there now.
    since: Option<u64>,
    timeout: Duration,
}

/// Sends the watch's events as chunked JSON lines until its timeout or the server's stop.
fn stream_watch(stream: &mut impl Write, shared: &Shared, watch: &Watch, close: bool) -> std::io::Result<()> {
    let deadline = Instant::now() + watch.timeout;
    let mut head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n".to_string();
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.flush()?;

    let matches = |path: &str, obj: &Value| {
        watch.coll.contains(path) && watch.labels.matches_labels(obj) && watch.fields.matches_fields(obj)
    };
    let mut st = shared.lock();
    let (mut sent, mut batch) = match watch.since {
        Some(rv) => (rv, Vec::new()),
        None => {
            let initial: Vec<Value> = st
                .objects
                .iter()
                .filter(|(path, obj)| matches(path, obj))
                .map(|(_, obj)| json!({"type": "ADDED", "object": obj}))
                .collect();
            (st.rv_counter, initial)
        }
    };
    loop {
        for e in st.events.iter().filter(|e| e.resource_version > sent) {
            if matches(&e.path, &e.object) {
                batch.push(json!({"type": e.kind, "object": e.object}));
            }
        }
        sent = sent.max(st.rv_counter);
        if !batch.is_empty() {
            drop(st);
            let mut out = Vec::new();
            for event in batch.drain(..) {
                let mut line = serde_json::to_vec(&event).unwrap_or_default();
                line.push(b'\n');
                out.extend_from_slice(format!("{:x}\r\n", line.len()).as_bytes());
                out.extend_from_slice(&line);
                out.extend_from_slice(b"\r\n");
            }
            stream.write_all(&out)?;
            stream.flush()?;
            st = shared.lock();
            continue;
        }
        let now = Instant::now();
        if shared.stop.load(Ordering::SeqCst) || now >= deadline {
            break;
        }
        let wait = (deadline - now).min(Duration::from_millis(100));
        st = shared.changed.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
    }
    drop(st);
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()
}

// ---------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
}

/// A label or field selector: terms that must all hold.
#[derive(Debug, Clone, Default)]
struct Selector(Vec<Term>);

impl Selector {
    /// Parses `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated (already percent-decoded).
    fn parse(text: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for raw in text.split(',') {
            let t = raw.trim();
            if t.is_empty() {
                continue;
            }
            let bad =
                |t: &str| -> bool { t.is_empty() || t.contains(|c: char| c.is_whitespace() || "=!(),".contains(c)) };
            let term = if let Some((k, v)) = t.split_once("!=") {
                Term::Ne(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = t.split_once("==") {
                Term::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = t.split_once('=') {
                Term::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some(k) = t.strip_prefix('!') {
                Term::Absent(k.trim().to_string())
            } else {
                Term::Exists(t.to_string())
            };
            let (key, value) = match &term {
                Term::Eq(k, v) | Term::Ne(k, v) => (k.as_str(), Some(v.as_str())),
                Term::Exists(k) | Term::Absent(k) => (k.as_str(), None),
            };
            if bad(key) || value.is_some_and(|v| v.contains(|c: char| c.is_whitespace() || "=!(),".contains(c))) {
                return Err(format!(
                    "unable to parse requirement: {t:?} (the fake API server knows k=v, k==v, k!=v, k and !k)"
                ));
            }
            terms.push(term);
        }
        Ok(Selector(terms))
    }

    fn holds(&self, value_of: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|term| match term {
            Term::Eq(k, v) => value_of(k).as_deref() == Some(v.as_str()),
            Term::Ne(k, v) => value_of(k).as_deref() != Some(v.as_str()),
            Term::Exists(k) => value_of(k).is_some(),
            Term::Absent(k) => value_of(k).is_none(),
        })
    }

    fn matches_labels(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        self.holds(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str).map(str::to_string))
    }

    /// Fields by dotted path (`metadata.name`, `status.phase`); a missing field is "".
    fn matches_fields(&self, obj: &Value) -> bool {
        self.holds(|k| {
            let mut cur = obj;
            for part in k.split('.') {
                match cur.get(part) {
                    Some(next) => cur = next,
                    None => return Some(String::new()),
                }
            }
            Some(match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        })
    }
}

/// Decodes `%XX` and `+` (a space) in a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query's parameters, decoded.
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

/// A parsed object path.
struct ObjPath<'a> {
    group: &'a str,
    version: &'a str,
    namespace: Option<&'a str>,
    resource: &'a str,
    name: &'a str,
}

/// Splits `/api/V/rest..` or `/apis/G/V/rest..` into (group, version, rest).
fn split_api_path(path: &str) -> Option<(&str, &str, Vec<&str>)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest.to_vec()),
        ["apis", group, version, rest @ ..] if !group.is_empty() => (*group, *version, rest.to_vec()),
        _ => return None,
    };
    if version.is_empty() || rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some((group, version, rest))
}

fn parse_object_path(path: &str) -> Option<ObjPath<'_>> {
    let (group, version, rest) = split_api_path(path)?;
    let (namespace, resource, name) = match rest.as_slice() {
        [resource, name] => (None, *resource, *name),
        ["namespaces", ns, resource, name] => (Some(*ns), *resource, *name),
        _ => return None,
    };
    Some(ObjPath { group, version, namespace, resource, name })
}

/// A collection: `/api/v1/pods` (all namespaces), `/api/v1/namespaces/NS/pods`, `/apis/G/V/..`.
#[derive(Debug, Clone)]
struct Collection {
    group: String,
    version: String,
    namespace: Option<String>,
    resource: String,
}

impl Collection {
    fn parse(path: &str) -> Option<Collection> {
        let (group, version, rest) = split_api_path(path)?;
        let (namespace, resource) = match rest.as_slice() {
            [resource] => (None, *resource),
            ["namespaces", ns, resource] => (Some(ns.to_string()), *resource),
            _ => return None,
        };
        Some(Collection {
            group: group.to_string(),
            version: version.to_string(),
            namespace,
            resource: resource.to_string(),
        })
    }

    /// Whether the object at `path` is in this collection.
    fn contains(&self, path: &str) -> bool {
        parse_object_path(path).is_some_and(|op| {
            op.group == self.group
                && op.version == self.version
                && op.resource == self.resource
                && self.namespace.as_deref().is_none_or(|ns| op.namespace == Some(ns))
        })
    }

    /// The URL path of the object `name` in it.
    fn object_path(&self, name: &str) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match &self.namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}/{name}", self.resource),
            None => format!("{base}/{}/{name}", self.resource),
        }
    }
}

fn find_res(sv: Serve, group: &str, version: &str, plural: &str) -> Option<&'static Res> {
    TABLE.iter().find(|r| r.served(sv) && r.group == group && r.version == version && r.plural == plural)
}

fn group_version_served(sv: Serve, group: &str, version: &str) -> bool {
    TABLE.iter().any(|r| r.served(sv) && r.group == group && r.version == version)
}

/// The served resource, or the API server's 404.
fn resolve(sv: Serve, path: &str, group: &str, version: &str, plural: &str) -> Result<&'static Res, Response> {
    find_res(sv, group, version, plural).ok_or_else(|| {
        if group_version_served(sv, group, version) {
            not_found(path)
        } else {
            let gv = group_version(group, version);
            Response::error(
                404,
                "NotFound",
                &format!("the server could not find the requested resource (group version {gv} not served)"),
            )
        }
    })
}

fn not_found(path: &str) -> Response {
    Response::error(404, "NotFound", &format!("the server could not find the requested resource ({path})"))
}

/// `pods` or `deployments.apps`, as Status messages name a resource.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn object_not_found(op: &ObjPath<'_>) -> Response {
    Response::error(404, "NotFound", &format!("{} \"{}\" not found", qualified(op.group, op.resource), op.name))
}

fn conflict(group: &str, resource: &str, name: &str) -> Response {
    Response::error(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes \
             to the latest version and try again",
            qualified(group, resource)
        ),
    )
}

fn meta_str(obj: &Value, key: &str) -> Option<String> {
    obj.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str).map(str::to_string)
}

/// Checks a written object's apiVersion and kind against the resource's.
fn check_type(res: &Res, obj: &Value) -> Result<(), Response> {
    let want_api_version = res.group_version();
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version != want_api_version {
        return Err(Response::error(
            400,
            "BadRequest",
            &format!("apiVersion {api_version:?} does not match the resource's {want_api_version:?}"),
        ));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != res.kind {
        return Err(Response::error(
            400,
            "BadRequest",
            &format!("kind {kind:?} does not match the resource's {:?}", res.kind),
        ));
    }
    Ok(())
}

/// Checks a written object's `metadata.namespace` (when given) against the URL's.
fn check_namespace(obj: &Value, path_ns: Option<&str>) -> Result<(), Response> {
    if let (Some(body_ns), Some(path_ns)) =
        (obj.get("metadata").and_then(|m| m.get("namespace")).filter(|v| !v.is_null()), path_ns)
    {
        if body_ns.as_str() != Some(path_ns) {
            return Err(Response::error(
                400,
                "BadRequest",
                &format!("the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({path_ns})"),
            ));
        }
    }
    Ok(())
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return Reply::Json(resp),
        }
    };
}

fn handle(shared: &Shared, req: &Request, body: Option<Value>) -> Reply {
    let token = req.header("authorization").is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !token && !req.client_certificate {
        return Reply::Json(Response::error(401, "Unauthorized", "Unauthorized"));
    }
    let path = req.target.split('?').next().unwrap_or("");
    let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let sv = shared.serve;
    let method = req.method.to_ascii_uppercase();

    match (method.as_str(), path) {
        ("GET", "/version") => return Reply::Json(Response::ok(200, version_info(sv.minor))),
        ("GET", "/api") => {
            return Reply::Json(Response::ok(
                200,
                json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        { "clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", shared.port) }
                    ],
                }),
            ))
        }
        ("GET", "/apis") => return Reply::Json(Response::ok(200, api_group_list(sv))),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
            return Reply::Json(self_subject_access_review(shared, body))
        }
        _ => {}
    }

    if let Some((group, version, rest)) = split_api_path(path) {
        if rest.is_empty() {
            if method != "GET" {
                return Reply::Json(not_found(path));
            }
            return Reply::Json(match resource_list(sv, group, version) {
                Some(list) => Response::ok(200, list),
                None => not_found(path),
            });
        }
    }

    if let Some(coll) = Collection::parse(path) {
        let res = tri!(resolve(sv, path, &coll.group, &coll.version, &coll.resource));
        if coll.namespace.is_some() && !res.namespaced {
            return Reply::Json(not_found(path));
        }
        let params = query_params(query);
        return match method.as_str() {
            "GET" => list_or_watch(shared, res, coll, &params),
            "POST" => Reply::Json(create(shared, res, &coll, body)),
            _ => Reply::Json(Response::error(
                405,
                "MethodNotAllowed",
                &format!("the server does not allow this method on the requested resource ({method} {path})"),
            )),
        };
    }

    let Some(op) = parse_object_path(path) else { return Reply::Json(not_found(path)) };
    let response = match method.as_str() {
        "GET" => match shared.lock().objects.get(path) {
            Some(obj) => Response::ok(200, obj.clone()),
            None => object_not_found(&op),
        },
        "DELETE" => delete(shared, path, &op),
        "PATCH" => {
            let content_type = req.header("content-type").unwrap_or("");
            let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            match mime.as_str() {
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    merge(shared, path, &op, body)
                }
                _ => apply(shared, req, path, query, &op, body),
            }
        }
        "PUT" => update(shared, path, &op, body),
        _ => Response::error(
            405,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({method} {path})"),
        ),
    };
    Reply::Json(response)
}

fn list_or_watch(shared: &Shared, res: &Res, coll: Collection, params: &[(String, String)]) -> Reply {
    let labels = tri!(Selector::parse(param(params, "labelSelector").unwrap_or("")).map_err(|m| Response::error(
        400,
        "BadRequest",
        &m
    )));
    let fields = tri!(Selector::parse(param(params, "fieldSelector").unwrap_or("")).map_err(|m| Response::error(
        400,
        "BadRequest",
        &m
    )));
    let watching = matches!(param(params, "watch"), Some("true" | "1"));
    if watching {
        let since = match param(params, "resourceVersion").unwrap_or("") {
            "" | "0" => None,
            rv => match rv.parse::<u64>() {
                Ok(rv) => Some(rv),
                Err(_) => {
                    return Reply::Json(Response::error(
                        400,
                        "BadRequest",
                        &format!("invalid resource version {rv:?}: not a number"),
                    ))
                }
            },
        };
        let timeout = param(params, "timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT);
        return Reply::Watch(Watch { coll, labels, fields, since, timeout });
    }
    let st = shared.lock();
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|(path, obj)| coll.contains(path) && labels.matches_labels(obj) && fields.matches_fields(obj))
        .map(|(_, obj)| obj.clone())
        .collect();
    Reply::Json(Response::ok(
        200,
        json!({
            "kind": format!("{}List", res.kind),
            "apiVersion": res.group_version(),
            "metadata": {"resourceVersion": st.rv_counter.to_string()},
            "items": items,
        }),
    ))
}

fn delete(shared: &Shared, path: &str, op: &ObjPath<'_>) -> Response {
    let mut st = shared.lock();
    let Some(obj) = st.objects.get(path).cloned() else { return object_not_found(op) };
    let is_namespace = op.group.is_empty() && op.namespace.is_none() && op.resource == "namespaces";
    if !is_namespace {
        store_remove(&mut st, path);
        return Response::ok(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}),
        );
    }
    match shared.termination {
        None => {
            remove_namespace(&mut st, op.name);
            Response::ok(
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}),
            )
        }
        Some(_) if st.terminating.contains_key(op.name) => Response::error(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on namespaces \"{}\": The system is ensuring all content is removed \
                 from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
                op.name
            ),
        ),
        Some(after) => {
            let mut ns = obj;
            set_meta(&mut ns, "deletionTimestamp", json!(DELETION_TIMESTAMP));
            if !ns.get("status").is_some_and(Value::is_object) {
                ns["status"] = json!({});
            }
            ns["status"]["phase"] = json!("Terminating");
            let stored = store_update(&mut st, path, ns);
            st.terminating.insert(op.name.to_string(), Instant::now() + after);
            Response::ok(200, stored)
        }
    }
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn merge(shared: &Shared, path: &str, op: &ObjPath<'_>, body: Option<Value>) -> Response {
    if let Err(resp) = resolve(shared.serve, path, op.group, op.version, op.resource) {
        return resp;
    }
    let Some(patch @ Value::Object(_)) = body else {
        return Response::error(400, "BadRequest", "the body of the request was not a JSON object");
    };
    let mut st = shared.lock();
    let Some(old) = st.objects.get(path).cloned() else { return object_not_found(op) };
    if let Some(want) = meta_str(&patch, "resourceVersion") {
        if Some(want) != meta_str(&old, "resourceVersion") {
            return conflict(op.group, op.resource, op.name);
        }
    }
    let mut new = old.clone();
    merge_patch(&mut new, &patch);
    for key in ["apiVersion", "kind"] {
        new[key] = old[key].clone();
    }
    set_meta(&mut new, "name", json!(op.name));
    Response::ok(200, store_update(&mut st, path, new))
}

fn create(shared: &Shared, res: &Res, coll: &Collection, body: Option<Value>) -> Response {
    let Some(mut obj @ Value::Object(_)) = body else {
        return Response::error(400, "BadRequest", "the body of the request was not a JSON object");
    };
    if let Err(resp) = check_type(res, &obj).and_then(|()| check_namespace(&obj, coll.namespace.as_deref())) {
        return resp;
    }
    if res.namespaced && coll.namespace.is_none() {
        return Response::error(
            405,
            "MethodNotAllowed",
            "create in all namespaces: POST to /namespaces/NS/... instead",
        );
    }
    let mut st = shared.lock();
    let name = match (meta_str(&obj, "name").filter(|n| !n.is_empty()), meta_str(&obj, "generateName")) {
        (Some(name), _) => name,
        (None, Some(prefix)) => {
            let name = format!("{prefix}{:05x}", st.uid_counter + 1);
            set_meta(&mut obj, "name", json!(name));
            name
        }
        (None, None) => {
            return Response::error(
                422,
                "Invalid",
                &format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    res.kind
                ),
            )
        }
    };
    if let Some(ns) = &coll.namespace {
        if let Err(resp) = namespace_open(&st, ns) {
            return resp;
        }
    }
    let path = coll.object_path(&name);
    if st.objects.contains_key(&path) {
        return Response::error(
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", qualified(res.group, res.plural)),
        );
    }
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.remove("resourceVersion");
    }
    Response::ok(201, store_new(&mut st, &path, coll.namespace.as_deref(), obj))
}

fn update(shared: &Shared, path: &str, op: &ObjPath<'_>, body: Option<Value>) -> Response {
    let res = match resolve(shared.serve, path, op.group, op.version, op.resource) {
        Ok(res) => res,
        Err(resp) => return resp,
    };
    let Some(obj @ Value::Object(_)) = body else {
        return Response::error(400, "BadRequest", "the body of the request was not a JSON object");
    };
    if let Err(resp) = check_type(res, &obj).and_then(|()| check_namespace(&obj, op.namespace)) {
        return resp;
    }
    if meta_str(&obj, "name").as_deref() != Some(op.name) {
        return Response::error(
            400,
            "BadRequest",
            &format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                meta_str(&obj, "name").unwrap_or_default(),
                op.name
            ),
        );
    }
    let mut st = shared.lock();
    let Some(old) = st.objects.get(path).cloned() else { return object_not_found(op) };
    if let Some(want) = meta_str(&obj, "resourceVersion") {
        if Some(want) != meta_str(&old, "resourceVersion") {
            return conflict(op.group, op.resource, op.name);
        }
    }
    Response::ok(200, store_update(&mut st, path, obj))
}

fn version_info(minor: u32) -> Value {
    json!({
        "major": "1",
        "minor": minor.to_string(),
        "gitVersion": format!("v1.{minor}.0"),
        "gitCommit": "fake",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_group_list(sv: Serve) -> Value {
    // group -> versions in table order
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in TABLE.iter().filter(|r| r.served(sv) && !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => groups.push((r.group, vec![r.version])),
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| {
            let vs: Vec<Value> =
                versions.iter().map(|v| json!({ "groupVersion": group_version(group, v), "version": v })).collect();
            let preferred = vs.first().cloned().unwrap_or(Value::Null);
            json!({ "name": group, "versions": vs, "preferredVersion": preferred })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

fn resource_list(sv: Serve, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = TABLE
        .iter()
        .filter(|r| r.served(sv) && r.group == group && r.version == version)
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": r.verbs,
            })
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

fn self_subject_access_review(shared: &Shared, body: Option<Value>) -> Response {
    let Some(Value::Object(mut obj)) = body else {
        return Response::error(400, "BadRequest", "the body of the request was not a JSON object");
    };
    let attr = |key: &str| {
        obj.get("spec")
            .and_then(|s| s.get("resourceAttributes"))
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (verb, resource) = (attr("verb"), attr("resource"));
    let denied = shared.lock().denied.iter().any(|(v, r)| *v == verb && *r == resource);
    let status = if denied { json!({"allowed": false, "reason": "denied by test"}) } else { json!({"allowed": true}) };
    obj.insert("status".to_string(), status);
    Response::ok(201, Value::Object(obj))
}

fn apply(shared: &Shared, req: &Request, path: &str, query: &str, op: &ObjPath<'_>, body: Option<Value>) -> Response {
    let Some(res) = find_res(shared.serve, op.group, op.version, op.resource) else {
        let gv = group_version(op.group, op.version);
        if group_version_served(shared.serve, op.group, op.version) {
            return Response::error(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            );
        }
        return Response::error(
            404,
            "NotFound",
            &format!("the server could not find the requested resource (group version {gv} not served)"),
        );
    };
    if res.namespaced != op.namespace.is_some() {
        return not_found(path);
    }
    let content_type = req.header("content-type").unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/apply-patch+yaml") {
        return Response::error(
            415,
            "UnsupportedMediaType",
            &format!("the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml (got {content_type:?})"),
        );
    }
    let Some(obj @ Value::Object(_)) = body else {
        return Response::error(400, "BadRequest", "the body of the request was not a JSON object");
    };
    if let Err(resp) = check_type(res, &obj) {
        return resp;
    }
    let name = meta_str(&obj, "name");
    if name.as_deref() != Some(op.name) {
        return Response::error(
            400,
            "BadRequest",
            &format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                name.unwrap_or_default(),
                op.name
            ),
        );
    }
    if let Err(resp) = check_namespace(&obj, op.namespace) {
        return resp;
    }
    let has_field_manager = query.split('&').any(|kv| kv.strip_prefix("fieldManager=").is_some_and(|v| !v.is_empty()));
    if !has_field_manager {
        return Response::error(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        );
    }

    let mut st = shared.lock();
    if let Some(ns) = op.namespace {
        if let Err(resp) = namespace_open(&st, ns) {
            return resp;
        }
    }
    if st.objects.contains_key(path) {
        Response::ok(200, store_update(&mut st, path, obj))
    } else {
        Response::ok(201, store_new(&mut st, path, op.namespace, obj))
    }
}
