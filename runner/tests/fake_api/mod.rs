//! An in-process fake Kubernetes API server for tests.
//!
//! Speaks plain HTTP/1.1 (keep-alive, Content-Length or chunked request bodies) on
//! 127.0.0.1, with one accept thread and one thread per connection. Only std and
//! serde_json are used, so this file can be included from any test crate.
//!
//! Recorded paths are the request target exactly as received (percent-encoding untouched),
//! including the query string. Routing uses the target without the query.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};

/// The bearer token the server accepts (written into the kubeconfig by `write_kubeconfig`).
pub const TOKEN: &str = "fake-token";
/// `metadata.creationTimestamp` given to created objects.
pub const CREATION_TIMESTAMP: &str = "2026-01-01T00:00:00Z";

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 1 << 20;
/// Largest request body accepted.
const MAX_BODY: usize = 256 << 20;

const ALL_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];
const CREATE_ONLY: &[&str] = &["create"];

/// One served resource: (group, version, plural, singular, kind, namespaced, verbs, served for
/// minor versions `min..max`).
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
    Res { group, version, plural, singular, kind, namespaced, verbs: ALL_VERBS, min, max }
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
];

impl Res {
    fn served(&self, minor: u32) -> bool {
        self.min <= minor && minor < self.max
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

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    objects: BTreeMap<String, Value>,
    faults: Vec<FaultRule>,
    denied: Vec<(String, String)>,
    uid_counter: u64,
    rv_counter: u64,
    conns: HashMap<u64, TcpStream>,
    next_conn: u64,
}

struct Shared {
    minor: u32,
    port: u16,
    stop: AtomicBool,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake API server. Stops (best effort) on drop.
pub struct FakeApi {
    shared: Arc<Shared>,
}

impl FakeApi {
    /// Starts a server pretending to be Kubernetes `version` ("1.25", "v1.21", ...).
    pub fn start(version: &str) -> FakeApi {
        let minor = parse_minor(version);
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake_api: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("fake_api: local_addr").port();
        let shared =
            Arc::new(Shared { minor, port, stop: AtomicBool::new(false), state: Mutex::new(State::default()) });
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("fake-api-accept-{port}"))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("fake_api: spawn accept thread");
        FakeApi { shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// The minor version being served.
    pub fn minor(&self) -> u32 {
        self.shared.minor
    }

    /// Writes a kubeconfig with contexts `fake` (current, this server, namespace default) and
    /// `down` (http://127.0.0.1:1, nothing listens), both with user `fake` (token fake-token).
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
    /// `/api/v1/namespaces/NAME`).
    pub fn put_object(&self, path: &str, obj: Value) {
        self.shared.lock().objects.insert(path.to_string(), obj);
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
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
            serve_connection(stream, &conn_shared);
            conn_shared.lock().conns.remove(&id);
        });
        if spawned.is_err() {
            shared.lock().conns.remove(&id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
// ---------------------------------------------------------------------------------------------

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
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
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Reads one request; None on EOF, a broken connection or a malformed request.
fn read_request(conn: &mut Conn) -> Option<Request> {
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

    let mut req = Request { method, target, headers, body: Vec::new(), close: false };
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

fn serve_connection(stream: TcpStream, shared: &Arc<Shared>) {
    let mut conn = Conn { stream, buf: Vec::new() };
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(req) = read_request(&mut conn) else { break };
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

        let response = match fault {
            Some(Fault::Drop) => break,
            Some(Fault::Status { code, reason, retry_after }) => {
                let mut status = status_body(code, reason, &format!("fake fault: {reason}"));
                if let Some(secs) = retry_after {
                    status["details"] = json!({ "retryAfterSeconds": secs });
                }
                Response { code, body: status, retry_after }
            }
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                handle(shared, &req, body)
            }
            None => handle(shared, &req, body),
        };
        if write_response(&mut conn.stream, &response, req.close).is_err() || req.close {
            break;
        }
    }
    let _ = conn.stream.shutdown(Shutdown::Both);
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

fn write_response(stream: &mut TcpStream, resp: &Response, close: bool) -> std::io::Result<()> {
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

fn parse_object_path(path: &str) -> Option<ObjPath<'_>> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, resource, name) = match rest {
        [resource, name] => (None, *resource, *name),
        ["namespaces", ns, resource, name] => (Some(*ns), *resource, *name),
        _ => return None,
    };
    if [version, resource, name].iter().chain(namespace.iter()).any(|s| s.is_empty())
        || (segs[0] == "apis" && group.is_empty())
    {
        return None;
    }
    Some(ObjPath { group, version, namespace, resource, name })
}

fn find_res(minor: u32, group: &str, version: &str, plural: &str) -> Option<&'static Res> {
    TABLE.iter().find(|r| r.served(minor) && r.group == group && r.version == version && r.plural == plural)
}

fn group_version_served(minor: u32, group: &str, version: &str) -> bool {
    TABLE.iter().any(|r| r.served(minor) && r.group == group && r.version == version)
}

fn not_found(path: &str) -> Response {
    Response::error(404, "NotFound", &format!("the server could not find the requested resource ({path})"))
}

fn object_not_found(op: &ObjPath<'_>) -> Response {
    let what = if op.group.is_empty() { op.resource.to_string() } else { format!("{}.{}", op.resource, op.group) };
    Response::error(404, "NotFound", &format!("{what} \"{}\" not found", op.name))
}

fn handle(shared: &Shared, req: &Request, body: Option<Value>) -> Response {
    let authorized = req.header("authorization").is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        return Response::error(401, "Unauthorized", "Unauthorized");
    }
    let path = req.target.split('?').next().unwrap_or("");
    let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let minor = shared.minor;
    let method = req.method.to_ascii_uppercase();

    match (method.as_str(), path) {
        ("GET", "/version") => return Response::ok(200, version_info(minor)),
        ("GET", "/api") => {
            return Response::ok(
                200,
                json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        { "clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", shared.port) }
                    ],
                }),
            )
        }
        ("GET", "/apis") => return Response::ok(200, api_group_list(minor)),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
            return self_subject_access_review(shared, body)
        }
        _ => {}
    }

    if method == "GET" {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let gv = match segs.as_slice() {
            ["api", version] => Some(("", *version)),
            ["apis", group, version] => Some((*group, *version)),
            _ => None,
        };
        if let Some((group, version)) = gv {
            return match resource_list(minor, group, version) {
                Some(list) => Response::ok(200, list),
                None => not_found(path),
            };
        }
    }

    let Some(op) = parse_object_path(path) else { return not_found(path) };
    match method.as_str() {
        "GET" => match shared.lock().objects.get(path) {
            Some(obj) => Response::ok(200, obj.clone()),
            None => object_not_found(&op),
        },
        "DELETE" => {
            let mut st = shared.lock();
            if st.objects.remove(path).is_none() {
                return object_not_found(&op);
            }
            if op.group.is_empty() && op.namespace.is_none() && op.resource == "namespaces" {
                let marker = format!("/namespaces/{}/", op.name);
                st.objects.retain(|k, _| !k.contains(&marker));
            }
            Response::ok(
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}),
            )
        }
        "PATCH" => apply(shared, req, path, query, &op, body),
        _ => not_found(path),
    }
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

fn api_group_list(minor: u32) -> Value {
    // group -> versions in table order
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in TABLE.iter().filter(|r| r.served(minor) && !r.group.is_empty()) {
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

fn resource_list(minor: u32, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = TABLE
        .iter()
        .filter(|r| r.served(minor) && r.group == group && r.version == version)
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
    let Some(res) = find_res(shared.minor, op.group, op.version, op.resource) else {
        let gv = group_version(op.group, op.version);
        if group_version_served(shared.minor, op.group, op.version) {
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
    let Some(Value::Object(mut obj)) = body else {
        return Response::error(400, "BadRequest", "the body of the request was not a JSON object");
    };
    let want_api_version = res.group_version();
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version != want_api_version {
        return Response::error(
            400,
            "BadRequest",
            &format!("apiVersion {api_version:?} does not match the resource's {want_api_version:?}"),
        );
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != res.kind {
        return Response::error(
            400,
            "BadRequest",
            &format!("kind {kind:?} does not match the resource's {:?}", res.kind),
        );
    }
    let meta_str = |obj: &Map<String, Value>, key: &str| {
        obj.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str).map(str::to_string)
    };
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
    if let (Some(body_ns), Some(path_ns)) =
        (obj.get("metadata").and_then(|m| m.get("namespace")).filter(|v| !v.is_null()), op.namespace)
    {
        if body_ns.as_str() != Some(path_ns) {
            return Response::error(
                400,
                "BadRequest",
                &format!("the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({path_ns})"),
            );
        }
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
        if !st.objects.contains_key(&format!("/api/v1/namespaces/{ns}")) {
            return Response::error(404, "NotFound", &format!("namespaces \"{ns}\" not found"));
        }
    }
    let old = st.objects.get(path).cloned();
    let old_meta = |key: &str| old.as_ref().and_then(|o| o.get("metadata")).and_then(|m| m.get(key)).cloned();
    let uid = match old_meta("uid") {
        Some(uid) => uid,
        None => {
            st.uid_counter += 1;
            Value::String(format!("00000000-0000-4000-8000-{:012}", st.uid_counter))
        }
    };
    let created = old_meta("creationTimestamp").unwrap_or_else(|| Value::String(CREATION_TIMESTAMP.to_string()));
    st.rv_counter += 1;
    let rv = st.rv_counter.to_string();

    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj.insert("metadata".to_string(), json!({}));
    }
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        if let Some(ns) = op.namespace {
            meta.insert("namespace".to_string(), Value::String(ns.to_string()));
        }
        meta.insert("uid".to_string(), uid);
        meta.insert("resourceVersion".to_string(), Value::String(rv));
        meta.insert("creationTimestamp".to_string(), created);
    }
    let stored = Value::Object(obj);
    st.objects.insert(path.to_string(), stored.clone());
    Response::ok(if old.is_some() { 200 } else { 201 }, stored)
}
