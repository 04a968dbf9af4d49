//! The cluster a run writes to, behind the [`Cluster`] trait: [`KubeCluster`] talks to a real API
//! server through kube-rs (discovery, SelfSubjectAccessReview, server-side apply, delete), with
//! retries; `--dry-run` uses [`crate::dry::DryRun`] instead.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::params::{DeleteParams, Patch, PatchParams};
use miette::Diagnostic;
use serde_json::{json, Value};
use thiserror::Error;

use crate::api::{Gvk, Resource, Served};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "skel";

/// Why a run could not start (or go on) against the cluster.
#[derive(Debug, Error, Diagnostic)]
pub enum ClusterError {
    #[error("cannot load the kubeconfig: {reason}")]
    #[diagnostic(code(skel::run::kubeconfig), help("{help}"))]
    Kubeconfig { reason: String, help: String },
    /// No answer from the cluster: `reason` is what [`transport_failure`] found (refused,
    /// timed out, closed, or TLS: a server certificate the kubeconfig's CA did not sign, a
    /// client certificate the server refused, a server that does not speak TLS), and the help
    /// follows from it.
    #[error("cannot reach the cluster at {url}: {reason}")]
    #[diagnostic(code(skel::run::unreachable), help("{}", unreachable_help(reason)))]
    Unreachable { url: String, reason: String },
    #[error("the cluster at {url} refused our credentials: {code} {reason}")]
    #[diagnostic(
        code(skel::run::unauthorized),
        help("check the user of this context in the kubeconfig (`kubectl config view --minify`)")
    )]
    Unauthorized { url: String, code: u16, reason: String },
    #[error("unexpected answer from the cluster to `{request}`: {reason}")]
    #[diagnostic(code(skel::run::bad_answer), help("is {url} a Kubernetes API server?"))]
    BadAnswer { url: String, request: String, reason: String },
}

/// Why one object could not be applied or deleted (after retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status, when the server answered.
    pub code: Option<u16>,
    /// The API status reason (`NotFound`, `Invalid`, ...), or what went wrong on the way.
    pub reason: String,
    pub message: String,
    pub attempts: u32,
}

/// What an apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// Nothing to delete (404): not a failure, the object is gone either way.
    Absent,
}

/// A permission the run needs: `verb` on `resource`, in all namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub verb: &'static str,
    pub resource: Resource,
}

/// What the runner needs from a cluster. The runner drives every future on one task, so they
/// need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Cluster {
    /// Where it is, for messages.
    fn describe(&self) -> String;
    /// The server's `major.minor`.
    async fn version(&self) -> Result<skel::upgrade::KubeVersion, ClusterError>;
    /// The resources serving the given kinds; a kind not served is left out.
    async fn discover(&self, gvks: &[Gvk]) -> Result<Served, ClusterError>;
    /// The permissions among `needs` that are not granted.
    async fn denied(&self, needs: &[Access]) -> Result<Vec<Access>, ClusterError>;
    async fn apply(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        manifest: &Value,
    ) -> Result<Applied, Failure>;
    async fn delete(&self, resource: &Resource, namespace: Option<&str>, name: &str) -> Result<Deleted, Failure>;
    /// The pods `label_selector` selects, as they change (each as it is after a change: first
    /// every one there is, then a watch), for as long as the receiver is kept; `None` when the
    /// cluster runs no pods (a dry run).
    fn watch_pods(&self, label_selector: &str) -> Option<tokio::sync::mpsc::Receiver<PodUpdate>>;
    /// Merge-patches a pod (`application/merge-patch+json`).
    async fn patch_pod(&self, namespace: &str, name: &str, patch: &Value) -> Result<(), Failure>;
    /// Every object of a resource (cluster-scoped, or in all namespaces), as JSON.
    async fn list_objects(&self, resource: &Resource) -> Result<Vec<Value>, Failure>;
    /// One object, as JSON; `None` when it is not there (404).
    async fn get_object(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, Failure>;
    /// Whether requests reach a cluster: false for a dry run, which has nothing to look at or
    /// wait for.
    fn reaches_cluster(&self) -> bool {
        true
    }
}

/// What a pod watch sees: a pod after a change, or a problem it met (it goes on after it,
/// listing again).
#[derive(Debug, Clone, PartialEq)]
pub enum PodUpdate {
    Pod(crate::lifecycle::PodState),
    Trouble(String),
}

/// When and how often to retry a request that failed in a way that may pass: 409, 429, 5xx,
/// timeouts and dropped connections.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first wait; each next one doubles, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry { attempts: 5, base: Duration::from_millis(250), cap: Duration::from_secs(8) }
    }
}

impl Retry {
    /// The wait before try `attempt + 1` (after `attempt` failed tries); a server's
    /// `Retry-After` wins, up to a minute.
    fn wait(&self, attempt: u32, retry_after: Option<u64>) -> Duration {
        if let Some(secs) = retry_after {
            return Duration::from_secs(secs.min(60));
        }
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// A kubeconfig file; by default `$KUBECONFIG`, `~/.kube/config` or the in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Per request (connect, read and write).
    pub timeout: Option<Duration>,
    pub retry: Retry,
}

/// A real cluster, through kube-rs.
pub struct KubeCluster {
    client: kube::Client,
    url: String,
    retry: Retry,
}

/// A request's answer: status and body.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl KubeCluster {
    pub async fn connect(c: &Connection) -> Result<KubeCluster, ClusterError> {
        let options = KubeConfigOptions { context: c.context.clone(), ..Default::default() };
        let loaded = match &c.kubeconfig {
            Some(path) => match Kubeconfig::read_from(path) {
                Ok(kc) => kube::Config::from_custom_kubeconfig(kc, &options).await.map_err(|e| kubeconfig_error(&e)),
                Err(e) => Err(kubeconfig_error(&e)),
            },
            None if c.context.is_some() => {
                kube::Config::from_kubeconfig(&options).await.map_err(|e| kubeconfig_error(&e))
            }
            None => kube::Config::infer().await.map_err(|e| no_kubeconfig(&e)),
        };
        let mut config = loaded?;
        // Retries are ours (which statuses, how often, in which order): kube's would hide them.
        config.default_retry = false;
        if let Some(t) = c.timeout {
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
            config.write_timeout = Some(t);
        }
        let url = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let client = kube::Client::try_from(config).map_err(|e| ClusterError::Kubeconfig {
            reason: chain(&e),
            help: "check the kubeconfig's TLS settings".into(),
        })?;
        Ok(KubeCluster { client, url, retry: c.retry })
    }

    /// Sends a request, retrying what may pass; `Err` is the last failure.
    async fn send<F>(&self, make: F, retry: Retry) -> Result<Answer, Failure>
    where
        F: Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = make().map_err(|e| Failure {
                code: None,
                reason: "BadRequest".into(),
                message: e.to_string(),
                attempts: attempt,
            })?;
            let (failure, retry_after) = match self.client.send(request.map(Body::from)).await {
                Ok(res) => {
                    let status = res.status();
                    let retry_after = res
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    match res.into_body().collect_bytes().await {
                        Ok(body) if status.is_success() => return Ok(Answer { status, body: body.to_vec() }),
                        Ok(body) => {
                            let f = status_failure(status, &body, attempt);
                            let retry_after = retry_after.or_else(|| status_retry_after(&body));
                            if !retryable(status) {
                                return Err(f);
                            }
                            (f, retry_after)
                        }
                        Err(e) => (transport_failure(&e, attempt), None),
                    }
                }
                Err(e) => (transport_failure(&e, attempt), None),
            };
            if attempt >= retry.attempts {
                return Err(failure);
            }
            tokio::time::sleep(retry.wait(attempt, retry_after)).await;
        }
    }

    /// A GET of discovery or version data, as JSON; 404 is `None`.
    async fn get(&self, path: &str, retry: Retry) -> Result<Option<Value>, ClusterError> {
        let make = || http::Request::get(path).body(Vec::new()).map_err(kube::core::request::Error::BuildRequest);
        match self.send(make, retry).await {
            Ok(a) => serde_json::from_slice(&a.body).map(Some).map_err(|e| ClusterError::BadAnswer {
                url: self.url.clone(),
                request: format!("GET {path}"),
                reason: format!("not JSON: {e}"),
            }),
            Err(f) if f.code == Some(404) => Ok(None),
            Err(f) => Err(self.error(&format!("GET {path}"), f)),
        }
    }

    fn error(&self, request: &str, f: Failure) -> ClusterError {
        match f.code {
            None => ClusterError::Unreachable { url: self.url.clone(), reason: f.message },
            Some(code @ (401 | 403)) => ClusterError::Unauthorized {
                url: self.url.clone(),
                code,
                reason: format!("{}: {}", f.reason, f.message),
            },
            Some(code) => ClusterError::BadAnswer {
                url: self.url.clone(),
                request: request.to_string(),
                reason: format!("{code} {}: {}", f.reason, f.message),
            },
        }
    }
}

impl Cluster for KubeCluster {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn version(&self) -> Result<skel::upgrade::KubeVersion, ClusterError> {
        let bad =
            |reason: String| ClusterError::BadAnswer { url: self.url.clone(), request: "GET /version".into(), reason };
        // The first request: a cluster that is not there should be said at once, not after
        // every backoff.
        let first = Retry { attempts: self.retry.attempts.min(2), ..self.retry };
        let info = self.get("/version", first).await?.ok_or_else(|| bad("404 Not Found".into()))?;
        let part = |key: &str| -> Option<u32> {
            let text = info.get(key)?.as_str()?;
            // Managed clusters say `27+`.
            text.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()
        };
        match (part("major"), part("minor")) {
            (Some(major), Some(minor)) => Ok(skel::upgrade::KubeVersion { major, minor }),
            _ => Err(bad(format!("no version in {info}"))),
        }
    }

    async fn discover(&self, gvks: &[Gvk]) -> Result<Served, ClusterError> {
        let mut served = Served::default();
        let core = self.get("/api", self.retry).await?.unwrap_or(Value::Null);
        let groups = self.get("/apis", self.retry).await?.unwrap_or(Value::Null);
        let offered = |gvk: &Gvk| -> bool {
            match gvk.group() {
                "" => core["versions"].as_array().is_some_and(|v| v.iter().any(|v| v == gvk.version())),
                g => groups["groups"].as_array().is_some_and(|gs| {
                    gs.iter().any(|grp| {
                        grp["name"] == g
                            && grp["versions"]
                                .as_array()
                                .is_some_and(|vs| vs.iter().any(|v| v["version"] == gvk.version()))
                    })
                }),
            }
        };
        let mut api_versions: Vec<&str> = gvks.iter().filter(|g| offered(g)).map(|g| g.api_version.as_str()).collect();
        api_versions.sort_unstable();
        api_versions.dedup();
        for api_version in api_versions {
            let path =
                if api_version.contains('/') { format!("/apis/{api_version}") } else { format!("/api/{api_version}") };
            let Some(list) = self.get(&path, self.retry).await? else { continue };
            for r in list["resources"].as_array().into_iter().flatten() {
                let (Some(name), Some(kind)) = (r["name"].as_str(), r["kind"].as_str()) else { continue };
                // `deployments/status` and the like are subresources.
                if name.contains('/') || !gvks.iter().any(|g| g.api_version == api_version && g.kind == kind) {
                    continue;
                }
                served.insert(Resource::new(api_version, kind, name, r["namespaced"].as_bool().unwrap_or(false)));
            }
        }
        Ok(served)
    }

    async fn denied(&self, needs: &[Access]) -> Result<Vec<Access>, ClusterError> {
        let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
        let mut denied = Vec::new();
        for need in needs {
            let review = json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {
                    "group": need.resource.gvk.group(), "resource": need.resource.plural, "verb": need.verb}}
            });
            let body = serde_json::to_vec(&review).unwrap_or_default();
            let make = || {
                http::Request::post(path)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .map_err(kube::core::request::Error::BuildRequest)
            };
            let answer = self.send(make, self.retry).await.map_err(|f| self.error(&format!("POST {path}"), f))?;
            let review: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if review["status"]["allowed"] != Value::Bool(true) {
                denied.push(need.clone());
            }
        }
        Ok(denied)
    }

    async fn apply(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        manifest: &Value,
    ) -> Result<Applied, Failure> {
        let request = kube::core::Request::new(resource.collection_path(namespace));
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let answer = self.send(|| request.patch(name, &params, &Patch::Apply(manifest)), self.retry).await?;
        Ok(if answer.status == StatusCode::CREATED { Applied::Created } else { Applied::Updated })
    }

    async fn delete(&self, resource: &Resource, namespace: Option<&str>, name: &str) -> Result<Deleted, Failure> {
        let request = kube::core::Request::new(resource.collection_path(namespace));
        let params = DeleteParams::background();
        match self.send(|| request.delete(name, &params), self.retry).await {
            Ok(_) => Ok(Deleted::Deleted),
            Err(f) if f.code == Some(404) => Ok(Deleted::Absent),
            Err(f) => Err(f),
        }
    }

    fn watch_pods(&self, label_selector: &str) -> Option<tokio::sync::mpsc::Receiver<PodUpdate>> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(watch_pods(self.client.clone(), label_selector.to_string(), tx));
        Some(rx)
    }

    async fn patch_pod(&self, namespace: &str, name: &str, patch: &Value) -> Result<(), Failure> {
        let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"));
        let params = PatchParams::default();
        self.send(|| request.patch(name, &params, &Patch::Merge(patch)), self.retry).await.map(|_| ())
    }

    async fn list_objects(&self, resource: &Resource) -> Result<Vec<Value>, Failure> {
        let request = kube::core::Request::new(resource.collection_path(None));
        let params = kube::core::params::ListParams::default();
        let answer = self.send(|| request.list(&params), self.retry).await?;
        let list = json_answer(&answer)?;
        Ok(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    async fn get_object(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, Failure> {
        let request = kube::core::Request::new(resource.collection_path(namespace));
        let params = kube::core::params::GetParams::default();
        match self.send(|| request.get(name, &params), self.retry).await {
            Ok(answer) => json_answer(&answer).map(Some),
            Err(f) if f.code == Some(404) => Ok(None),
            Err(f) => Err(f),
        }
    }
}

/// A successful answer's JSON body; one that is not JSON is a failure.
fn json_answer(answer: &Answer) -> Result<Value, Failure> {
    serde_json::from_slice(&answer.body).map_err(|e| Failure {
        code: Some(answer.status.as_u16()),
        reason: "BadAnswer".into(),
        message: format!("the answer is not JSON: {e}"),
        attempts: 1,
    })
}

/// Lists the pods `selector` selects, then watches them from there, sending each pod as it is
/// after a change; lists again when the watch ends or fails. Ends when nobody listens.
async fn watch_pods(client: kube::Client, selector: String, tx: tokio::sync::mpsc::Sender<PodUpdate>) {
    use futures::TryStreamExt;
    use kube::core::params::{ListParams, WatchParams};
    use kube::core::WatchEvent;
    let pods = kube::core::Request::new("/api/v1/pods");
    let send = |update: PodUpdate| {
        let tx = tx.clone();
        async move { tx.send(update).await.is_ok() }
    };
    let pod = |v: &Value| crate::lifecycle::PodState::from_value(v).map(PodUpdate::Pod);
    loop {
        let listed = match pods.list(&ListParams::default().labels(&selector)) {
            Ok(request) => client.request::<Value>(request).await.map_err(|e| chain(&e)),
            Err(e) => Err(e.to_string()),
        };
        let mut version = match listed {
            Ok(list) => {
                for item in list.get("items").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(update) = pod(item) {
                        if !send(update).await {
                            return;
                        }
                    }
                }
                list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0").to_string()
            }
            Err(reason) => {
                if !send(PodUpdate::Trouble(format!("listing the pods: {reason}"))).await {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Watch from the list's version until the watch ends (its timeout) or fails.
        loop {
            let params = WatchParams::default().labels(&selector).timeout(290);
            let events = match pods.watch(&params, &version) {
                Ok(request) => client.request_events::<Value>(request).await.map_err(|e| chain(&e)),
                Err(e) => Err(e.to_string()),
            };
            let mut events = match events {
                Ok(events) => std::pin::pin!(events),
                Err(reason) => {
                    if !send(PodUpdate::Trouble(format!("watching the pods: {reason}"))).await {
                        return;
                    }
                    break;
                }
            };
            let mut relist = false;
            loop {
                match events.try_next().await {
                    Ok(Some(WatchEvent::Added(v) | WatchEvent::Modified(v))) => {
                        if let Some(rv) = v.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                            version = rv.to_string();
                        }
                        if let Some(update) = pod(&v) {
                            if !send(update).await {
                                return;
                            }
                        }
                    }
                    Ok(Some(WatchEvent::Deleted(_))) => {}
                    Ok(Some(WatchEvent::Bookmark(b))) => version = b.metadata.resource_version,
                    // 410 Gone: the version is too old; list again.
                    Ok(Some(WatchEvent::Error(_))) => {
                        relist = true;
                        break;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if !send(PodUpdate::Trouble(format!("watching the pods: {}", chain(&e)))).await {
                            return;
                        }
                        relist = true;
                        break;
                    }
                }
            }
            if relist || tx.is_closed() {
                break;
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 409 | 429 | 500 | 502 | 503 | 504)
}

/// A failure from an API status body (`{"kind": "Status", "reason": .., "message": ..}`), or
/// from the status line when the body is not one.
fn status_failure(status: StatusCode, body: &[u8], attempts: u32) -> Failure {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let reason = parsed["reason"]
        .as_str()
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").replace(' ', ""));
    let message = parsed["message"].as_str().map(str::to_string).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            status.to_string()
        } else {
            text.chars().take(300).collect()
        }
    });
    Failure { code: Some(status.as_u16()), reason, message, attempts }
}

fn status_retry_after(body: &[u8]) -> Option<u64> {
    let parsed: Value = serde_json::from_slice(body).ok()?;
    parsed["details"]["retryAfterSeconds"].as_u64()
}

/// What `transport_failure` says of a server certificate that the kubeconfig's CA did not sign.
const UNTRUSTED_SERVER: &str = "the server's certificate is not trusted by the kubeconfig's certificate authority";
/// ... of a client certificate that the server's CA did not sign.
const REFUSED_CLIENT_CERTIFICATE: &str = "the server refused the kubeconfig's client certificate";
/// ... of an `https://` address where the server speaks plain HTTP.
const NOT_TLS: &str = "the server does not speak TLS (its answer is not a TLS record)";

fn transport_failure(e: &kube::Error, attempts: u32) -> Failure {
    let full = chain(e);
    let lower = full.to_ascii_lowercase();
    let timeout = lower.contains("timed out") || lower.contains("timeout") || lower.contains("deadline");
    // What rustls says, after its own words (`invalid peer certificate: UnknownIssuer`).
    let detail = |marker: &str| -> String {
        let at = lower.find(marker).unwrap_or(0);
        full.get(at..).unwrap_or_default().trim().to_string()
    };
    // The layers' names (`ServiceError: client error (Connect): ...`) say nothing to a user.
    let (reason, message) = if lower.contains("invalid peer certificate") {
        ("UntrustedCertificate", format!("{UNTRUSTED_SERVER} ({})", detail("invalid peer certificate")))
    } else if lower.contains("received fatal alert")
        && ["unknownca", "badcertificate", "certificaterequired", "certificateunknown", "decrypterror"]
            .iter()
            .any(|alert| lower.contains(alert))
    {
        ("ClientCertificateRefused", format!("{REFUSED_CLIENT_CERTIFICATE} ({})", detail("received fatal alert")))
    } else if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        ("NotTls", NOT_TLS.to_string())
    } else if lower.contains("connection refused") {
        ("ConnectionError", "connection refused".to_string())
    } else if timeout {
        ("Timeout", "no answer within the timeout (`--timeout`)".to_string())
    } else if lower.contains("incompletemessage") || lower.contains("connection closed") {
        ("ConnectionError", "the connection closed before an answer".to_string())
    } else {
        ("ConnectionError", full.trim_start_matches("ServiceError: ").to_string())
    };
    Failure { code: None, reason: reason.into(), message, attempts }
}

/// What to check when the cluster gave no answer, by what [`transport_failure`] found.
fn unreachable_help(reason: &str) -> &'static str {
    if reason.starts_with(UNTRUSTED_SERVER) {
        "the kubeconfig's cluster must name the certificate authority that signed the API server's certificate: \
         check its `certificate-authority-data` (or `certificate-authority` file) with `kubectl config view \
         --minify --raw`, and that the context (`--context`) is the one for this server"
    } else if reason.starts_with(REFUSED_CLIENT_CERTIFICATE) {
        "the kubeconfig's user must have a client certificate signed by a certificate authority the cluster \
         trusts: check its `client-certificate-data` and `client-key-data` (`kubectl config view --minify \
         --raw`), or that the context (`--context`) is the one for this server"
    } else if reason.starts_with(NOT_TLS) {
        "the server answers plain HTTP: if that is expected, write its address in the kubeconfig with `http://` \
         instead of `https://` (`kubectl config view --minify`); otherwise check the port and the context \
         (`--context`)"
    } else {
        "is the cluster running? `kwokctl get clusters` lists KWOK clusters and `kubectl cluster-info` checks the \
         current context; choose another with `--context`, or plan without a cluster with `--dry-run`"
    }
}

/// An error and its sources, `: `-separated, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Neither a kubeconfig nor a pod's service account: what to do, in a line. The in-cluster
/// attempt is named only inside a pod (`KUBERNETES_SERVICE_HOST` set), where it could have worked.
fn no_kubeconfig(e: &kube::config::InferConfigError) -> ClusterError {
    use kube::config::KubeconfigError as K;
    const HELP: &str = "pass `--kubeconfig FILE`, or make a KWOK cluster: `kwokctl create cluster` (docs/run.md)";
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return ClusterError::Kubeconfig { reason: chain(e), help: HELP.into() };
    }
    let kubeconfig = std::error::Error::source(e).and_then(|s| s.downcast_ref::<K>());
    let reason = match kubeconfig {
        Some(K::ReadConfig(io, path)) if io.kind() == std::io::ErrorKind::NotFound => {
            format!("there is none at `{}`", path.display())
        }
        Some(K::FindPath) => "no home folder to look for `.kube/config` in, and `KUBECONFIG` is not set".into(),
        Some(other) => return kubeconfig_error(other),
        None => chain(e),
    };
    ClusterError::Kubeconfig { reason, help: HELP.into() }
}

fn kubeconfig_error(e: &kube::config::KubeconfigError) -> ClusterError {
    use kube::config::KubeconfigError as K;
    if let K::LoadContext(name) = e {
        return ClusterError::Kubeconfig {
            reason: format!("it has no context `{name}`"),
            help:
                "list the contexts with `kubectl config get-contexts` and pass one with `--context`; KWOK names them \
                   `kwok-CLUSTER`"
                    .into(),
        };
    }
    let help = match e {
        K::LoadContext(_) | K::CurrentContextNotSet => {
            "list the contexts with `kubectl config get-contexts`; pass one with `--context`"
        }
        K::ReadConfig(..) | K::FindPath => "pass `--kubeconfig FILE` or set `KUBECONFIG`",
        _ => "check the kubeconfig with `kubectl config view`",
    };
    ClusterError::Kubeconfig { reason: chain(e), help: help.into() }
}

/// Runs a future to completion on a small runtime of its own, for callers that are not async.
pub fn block_on<F: Future>(f: F) -> std::io::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(rt.block_on(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_honour_retry_after() {
        let r = Retry { attempts: 5, base: Duration::from_millis(100), cap: Duration::from_millis(350) };
        assert_eq!(r.wait(1, None), Duration::from_millis(100));
        assert_eq!(r.wait(2, None), Duration::from_millis(200));
        assert_eq!(r.wait(3, None), Duration::from_millis(350));
        assert_eq!(r.wait(1, Some(2)), Duration::from_secs(2));
        assert_eq!(r.wait(1, Some(9999)), Duration::from_secs(60));
    }

    #[test]
    fn status_bodies_and_plain_text() {
        let body = br#"{"kind":"Status","reason":"NotFound","message":"namespaces \"x\" not found","code":404}"#;
        let f = status_failure(StatusCode::NOT_FOUND, body, 1);
        assert_eq!((f.code, f.reason.as_str()), (Some(404), "NotFound"));
        let f = status_failure(StatusCode::TOO_MANY_REQUESTS, b"Too many requests, please try again later.\n", 2);
        assert_eq!(f.reason, "TooManyRequests");
        assert_eq!(f.message, "Too many requests, please try again later.");
        assert_eq!(status_retry_after(br#"{"details":{"retryAfterSeconds":3}}"#), Some(3));
    }
}
