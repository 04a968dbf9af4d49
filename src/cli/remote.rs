//! Traces in object stores: a trace argument may be a URL, as SimKube's driver takes one —
//! `s3://bucket/key`, `gs://bucket/key`, `az://container/key` (and object_store's other Azure
//! forms), `http(s)://host/path` and `file:///path` — read and written through the
//! `object_store` crate. Credentials and endpoints come from the environment, as each provider's
//! own builder reads it (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, ...; `GOOGLE_APPLICATION_CREDENTIALS`, ...; `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY`, ...).
//!
//! Reading streams the object: its body, bridged to a blocking `Read` on a small runtime, is
//! what `fsio::open_trace` reads. Writing (`skel apply -o s3://...`) is a multipart upload, the
//! trace streamed out in parts as it is written; the upload is completed only when the whole
//! trace was written, and aborted otherwise (an error, Ctrl-C), so a failed run leaves no object
//! and no pending upload behind.
//!
//! A path that exists locally is a path, whatever it looks like; `file://` URLs are paths.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use miette::Diagnostic;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, MultipartId, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload, RetryConfig,
};
use thiserror::Error;
use url::Url;

/// The schemes read here, for messages.
const SCHEMES: &str = "s3://, gs://, az://, http(s):// or file://";

/// Each part of an upload but the last (S3 wants at least 5 MiB).
const PART: usize = 8 << 20;

/// Parts uploaded at once.
const CONCURRENCY: usize = 4;

/// Why a trace URL could not be read or written. Each says what to check.
#[derive(Debug, Error, Diagnostic)]
pub enum RemoteError {
    #[error("`{url}`: skel does not read `{scheme}://` URLs")]
    #[diagnostic(code(skel::remote::scheme), help("a trace is a local path, or a URL: {SCHEMES}"))]
    Scheme { url: String, scheme: String },
    #[error("`{url}` is not a URL skel can use: {reason}")]
    #[diagnostic(code(skel::remote::url), help("{help}"))]
    Url { url: String, reason: String, help: String },
    #[error("cannot {action} `{url}`: access denied ({reason})")]
    #[diagnostic(code(skel::remote::denied), help("{help}"))]
    Denied { url: String, action: &'static str, reason: String, help: String },
    #[error("cannot {action} `{url}`: the {container} `{bucket}` does not exist")]
    #[diagnostic(code(skel::remote::no_bucket), help("{help}"))]
    NoBucket { url: String, action: &'static str, container: &'static str, bucket: String, help: String },
    #[error("cannot read `{url}`: no such object")]
    #[diagnostic(code(skel::remote::not_found), help("{help}"))]
    NotFound { url: String, help: String },
    #[error("cannot {action} `{url}`: {endpoint} cannot be reached ({reason})")]
    #[diagnostic(code(skel::remote::unreachable), help("{help}"))]
    Unreachable { url: String, action: &'static str, endpoint: String, reason: String, help: String },
    #[error("cannot {action} `{url}`: {reason}")]
    #[diagnostic(code(skel::remote::failed), help("{help}"))]
    Failed { url: String, action: &'static str, reason: String, help: String },
}

/// A URL's store: its kind, the store, the same for uploads (none for http(s)), its endpoint.
type Stores = (Provider, Arc<dyn ObjectStore>, Option<Arc<dyn MultipartStore>>, String);

/// Where a trace argument points.
pub enum Location {
    /// A local path (`file://` URLs become one).
    Local(PathBuf),
    /// An object in a store.
    Remote(Remote),
}

/// Which kind of store, for the help of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    S3,
    Gcs,
    Azure,
    Http,
}

impl Provider {
    fn credentials(self) -> &'static str {
        match self {
            Provider::S3 => {
                "check the credentials skel read from the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (and AWS_SESSION_TOKEN for temporary ones), or the role of the machine or pod; and that they \
                 may read and write this bucket"
            }
            Provider::Gcs => {
                "check the credentials skel read from the environment: GOOGLE_APPLICATION_CREDENTIALS (or \
                 GOOGLE_SERVICE_ACCOUNT), or the machine's service account; and its roles on this bucket"
            }
            Provider::Azure => {
                "check the credentials skel read from the environment: AZURE_STORAGE_ACCOUNT_NAME with \
                 AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN (or AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, \
                 AZURE_TENANT_ID); and their rights on this container"
            }
            Provider::Http => "the server refused the request: an http(s):// URL is read without credentials",
        }
    }

    fn endpoint_help(self) -> &'static str {
        match self {
            Provider::S3 => {
                "check AWS_ENDPOINT_URL (for an S3-compatible server: its address, e.g. http://127.0.0.1:9000) and \
                 AWS_REGION, and that the network reaches it"
            }
            Provider::Gcs => "check the network, and GOOGLE_CLOUD_STORAGE_URL if it is set",
            Provider::Azure => "check AZURE_STORAGE_ACCOUNT_NAME (and AZURE_ENDPOINT if set), and the network",
            Provider::Http => "check the URL's host and port, and that the server is running",
        }
    }

    fn container(self) -> &'static str {
        if self == Provider::Azure {
            "container"
        } else {
            "bucket"
        }
    }
}

/// An object in a store, ready to read or write.
pub struct Remote {
    names: Names,
    store: Arc<dyn ObjectStore>,
    /// For uploads (an http(s) store has none).
    multipart: Option<Arc<dyn MultipartStore>>,
    path: ObjectPath,
}

/// Whether an argument is a URL (`scheme://...`) rather than a path: a path that exists is a
/// path whatever its name.
pub fn is_url(arg: &Path) -> bool {
    scheme_of(arg).is_some() && std::fs::symlink_metadata(arg).is_err()
}

fn scheme_of(arg: &Path) -> Option<&str> {
    let text = arg.to_str()?;
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some(scheme)
}

/// Where `arg` points: a local path (as given, or a `file://` URL's), or an object.
pub fn locate(arg: &Path) -> Result<Location, RemoteError> {
    if !is_url(arg) {
        return Ok(Location::Local(arg.to_path_buf()));
    }
    let text = arg.to_str().unwrap_or_default().to_string();
    let scheme = scheme_of(arg).unwrap_or_default().to_ascii_lowercase();
    let bad = |reason: String, help: &str| RemoteError::Url { url: text.clone(), reason, help: help.into() };
    let url = Url::parse(&text)
        .map_err(|e| bad(e.to_string(), "write it as scheme://bucket/key, e.g. s3://traces/run-1.json"))?;
    if scheme == "file" {
        return match url.to_file_path() {
            Ok(path) => Ok(Location::Local(path)),
            Err(()) => Err(bad(
                "a file:// URL names a file on this machine".into(),
                "write it as file:///absolute/path (three slashes), or give the path itself",
            )),
        };
    }
    let known = ["s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https"];
    if !known.contains(&scheme.as_str()) {
        return Err(RemoteError::Scheme { url: text, scheme });
    }
    let (kind, path) = ObjectStoreScheme::parse(&url)
        .map_err(|e| bad(e.to_string(), "write it as scheme://bucket/key, e.g. s3://traces/run-1.json"))?;
    if path.as_ref().is_empty() {
        return Err(bad(
            "it names no object".into(),
            "name the trace's key after the bucket, e.g. s3://traces/run-1.json (a whole bucket is not read)",
        ));
    }
    let retry = RetryConfig { max_retries: 4, retry_timeout: Duration::from_secs(30), ..Default::default() };
    // A whole request may take long (a large trace read slowly by a busy rewrite); a body that
    // stalls is retried from where it stopped.
    let options = ClientOptions::new().with_allow_http(true).with_timeout(Duration::from_secs(300));
    let host = url.host_str().unwrap_or_default().to_string();
    let failed = |e: object_store::Error| {
        bad(short(&e.to_string()), "check the URL and the environment variables of its provider")
    };
    // A cloud store's builder: the environment's settings, then the URL's.
    macro_rules! from_env {
        ($builder:ty) => {
            <$builder>::from_env().with_url(text.as_str()).with_client_options(options).with_retry(retry)
        };
    }
    let (provider, store, multipart, endpoint): Stores = match kind {
        ObjectStoreScheme::AmazonS3 => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let builder = from_env!(AmazonS3Builder);
            let endpoint =
                builder.get_config_value(&AmazonS3ConfigKey::Endpoint).unwrap_or_else(|| "Amazon S3".to_string());
            let s3 = Arc::new(builder.build().map_err(failed)?);
            (Provider::S3, s3.clone(), Some(s3), endpoint)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let gcs = Arc::new(from_env!(object_store::gcp::GoogleCloudStorageBuilder).build().map_err(failed)?);
            (Provider::Gcs, gcs.clone(), Some(gcs), "Google Cloud Storage".to_string())
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let azure = Arc::new(from_env!(object_store::azure::MicrosoftAzureBuilder).build().map_err(failed)?);
            (Provider::Azure, azure.clone(), Some(azure), "Azure Blob Storage".to_string())
        }
        ObjectStoreScheme::Http => {
            let origin = url.origin().ascii_serialization();
            let builder = object_store::http::HttpBuilder::new()
                .with_url(origin.as_str())
                .with_client_options(options)
                .with_retry(retry);
            (Provider::Http, Arc::new(builder.build().map_err(failed)?), None, origin)
        }
        _ => return Err(RemoteError::Scheme { url: text, scheme }),
    };
    let bucket = match provider {
        // `https://account.blob.core.windows.net/container/key`: the first segment.
        Provider::Azure if matches!(scheme.as_str(), "https" | "abfs" | "abfss") => {
            url.path().trim_start_matches('/').split('/').next().unwrap_or_default().to_string()
        }
        _ => host,
    };
    let names = Names { url: text, provider, bucket, endpoint };
    Ok(Location::Remote(Remote { names, store, multipart, path }))
}

/// The first line of an error's text, without the long XML body some stores send.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    let cut = line.find("<?xml").map_or(line, |i| &line[..i]).trim_end_matches([' ', ':']);
    cut.to_string()
}

/// What a diagnostic names: the URL, its store, bucket and endpoint.
#[derive(Clone)]
struct Names {
    /// The URL as the user wrote it.
    url: String,
    provider: Provider,
    /// The bucket (container, host).
    bucket: String,
    /// The endpoint requests go to.
    endpoint: String,
}

impl Names {
    /// The diagnostic for a failed request.
    fn error(&self, action: &'static str, e: &object_store::Error) -> RemoteError {
        let url = self.url.clone();
        let full = format!("{e} {:?}", e);
        let reason = short(&e.to_string());
        let no_bucket = ["NoSuchBucket", "ContainerNotFound", "The specified bucket does not exist"]
            .iter()
            .any(|s| full.contains(s));
        if no_bucket {
            let help = match self.provider {
                Provider::S3 => format!(
                    "check the bucket's name (`aws s3 ls` lists yours), and that AWS_REGION / AWS_ENDPOINT_URL ({}) \
                     point where it is",
                    self.endpoint
                ),
                Provider::Azure => "check the container's name, and AZURE_STORAGE_ACCOUNT_NAME".into(),
                _ => "check the bucket's name".into(),
            };
            let container = self.provider.container();
            return RemoteError::NoBucket { url, action, container, bucket: self.bucket.clone(), help };
        }
        let denied =
            matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
                || [
                    "AccessDenied",
                    "InvalidAccessKeyId",
                    "SignatureDoesNotMatch",
                    "AuthenticationFailed",
                    "403 Forbidden",
                ]
                .iter()
                .any(|s| full.contains(s));
        if denied {
            let reason = ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AuthenticationFailed"]
                .iter()
                .find(|s| full.contains(*s))
                .map_or(reason, |s| s.to_string());
            return RemoteError::Denied { url, action, reason, help: self.provider.credentials().into() };
        }
        if matches!(e, object_store::Error::NotFound { .. }) {
            let help = match self.provider {
                Provider::S3 => format!("check the key; `aws s3 ls s3://{}/` lists the bucket's objects", self.bucket),
                Provider::Gcs => {
                    format!("check the key; `gcloud storage ls gs://{}/` lists the bucket's objects", self.bucket)
                }
                Provider::Azure => "check the blob's name; `az storage blob list` lists the container's blobs".into(),
                Provider::Http => "check the URL's path".into(),
            };
            return RemoteError::NotFound { url, help };
        }
        let unreachable = ["error sending request", "connect", "dns error", "timed out", "Connection refused"]
            .iter()
            .any(|s| full.contains(s));
        if unreachable {
            let reason = ["Connection refused", "dns error", "timed out"]
                .iter()
                .find(|s| full.contains(*s))
                .map_or_else(|| "the request could not be sent".to_string(), |s| s.to_lowercase());
            return RemoteError::Unreachable {
                url,
                action,
                endpoint: self.endpoint.clone(),
                reason,
                help: self.provider.endpoint_help().into(),
            };
        }
        RemoteError::Failed { url, action, reason, help: self.provider.endpoint_help().into() }
    }
}

impl Remote {
    /// The URL as the user wrote it.
    pub fn url(&self) -> &str {
        &self.names.url
    }

    /// The object's key, for its extension (the trace's format).
    pub fn key(&self) -> &str {
        self.path.as_ref()
    }

    fn error(&self, action: &'static str, e: &object_store::Error) -> RemoteError {
        self.names.error(action, e)
    }

    /// Opens the object to stream it; its size when the store says it.
    pub fn open(&self) -> Result<(Download, Option<u64>), RemoteError> {
        let rt = runtime().map_err(|e| self.local_failure("read", &e))?;
        let got = rt.block_on(self.store.get(&self.path)).map_err(|e| self.error("read", &e))?;
        let len = Some(got.meta.size);
        let url = self.names.url.clone();
        let stream = got.into_stream();
        Ok((Download { rt, stream, chunk: Bytes::new(), url }, len))
    }

    fn local_failure(&self, action: &'static str, e: &io::Error) -> RemoteError {
        RemoteError::Failed {
            url: self.names.url.clone(),
            action,
            reason: e.to_string(),
            help: "the machine is short of threads or memory".into(),
        }
    }

    /// Downloads the object to a temp file (for a command that reads a trace twice), keeping
    /// its extension; the temp file is on the list a signal removes.
    pub fn download(&self) -> Result<(tempfile::NamedTempFile, super::signals::Registered), RemoteError> {
        let ext = Path::new(self.key()).extension().and_then(|e| e.to_str()).map(|e| format!(".{e}"));
        let temp = tempfile::Builder::new()
            .prefix("skel-download-")
            .suffix(ext.as_deref().unwrap_or(""))
            .tempfile()
            .map_err(|e| self.local_failure("read", &e))?;
        let registered = super::signals::register(temp.path());
        let (mut download, _) = self.open()?;
        let mut file = temp.as_file();
        io::copy(&mut download, &mut file).and_then(|_| file.flush()).map_err(|e| RemoteError::Failed {
            url: self.names.url.clone(),
            action: "read",
            reason: e.to_string(),
            help: "check the network and the space left in the temp folder (TMPDIR)".into(),
        })?;
        Ok((temp, registered))
    }

    /// Starts a multipart upload to the object; nothing is there until `Upload::finish`.
    pub fn upload(&self) -> Result<Upload, RemoteError> {
        let Some(store) = self.multipart.clone() else {
            return Err(RemoteError::Url {
                url: self.names.url.clone(),
                reason: "an http(s):// URL is read-only here".into(),
                help: "write the trace to a file or to an s3://, gs:// or az:// URL".into(),
            });
        };
        let rt = runtime().map_err(|e| self.local_failure("write", &e))?;
        let id = rt.block_on(store.create_multipart(&self.path)).map_err(|e| self.error("write", &e))?;
        let shared = Arc::new(Shared::default());
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let thread = {
            let (shared, path, id) = (shared.clone(), self.path.clone(), id.clone());
            std::thread::Builder::new()
                .name("upload".into())
                .spawn(move || {
                    let outcome = rt.block_on(drive(store, path, id, rx, &shared));
                    let mut state = lock(&shared.state);
                    state.done = true;
                    if let Err(e) = &outcome {
                        state.error.get_or_insert_with(|| e.to_string());
                    }
                    drop(state);
                    shared.changed.notify_all();
                    outcome
                })
                .map_err(|e| self.local_failure("write", &e))?
        };
        Ok(Upload {
            names: self.names.clone(),
            head: Vec::new(),
            tail: Vec::new(),
            pos: 0,
            len: 0,
            tx: Some(tx),
            shared,
            thread: Some(thread),
            failure: None,
        })
    }
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// An object's bytes as a blocking `Read`, on its own small runtime.
pub struct Download {
    rt: tokio::runtime::Runtime,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    url: String,
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    return Err(io::Error::other(format!("reading `{}` failed: {}", self.url, short(&e.to_string()))))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// What the uploading thread and the rest share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    abort: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// The upload thread has ended (the upload completed or was aborted).
    done: bool,
    /// Ctrl-C: the upload is being aborted and the process ends.
    interrupted: bool,
    /// Why the upload failed.
    error: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Msg {
    /// A part after the first, `PART` bytes.
    Part(Bytes),
    /// The end: the first part, and the last when there is one after it.
    Finish { head: Bytes, last: Option<Bytes> },
}

/// Uploads the parts as they come, `CONCURRENCY` at once; completes the upload at `Finish`, and
/// aborts it when the writer is dropped first, on Ctrl-C, or when a part fails.
async fn drive(
    store: Arc<dyn MultipartStore>,
    path: ObjectPath,
    id: MultipartId,
    mut rx: tokio::sync::mpsc::Receiver<Msg>,
    shared: &Shared,
) -> Result<bool, object_store::Error> {
    let work = async {
        let mut running = tokio::task::JoinSet::new();
        let mut parts: Vec<Option<PartId>> = vec![None];
        let put = |running: &mut tokio::task::JoinSet<_>, idx: usize, data: Bytes| {
            let (store, path, id) = (store.clone(), path.clone(), id.clone());
            running.spawn(async move { (idx, store.put_part(&path, &id, idx, PutPayload::from(data)).await) });
        };
        async fn collect(
            running: &mut tokio::task::JoinSet<(usize, object_store::Result<PartId>)>,
            parts: &mut [Option<PartId>],
        ) -> Result<(), object_store::Error> {
            if let Some(joined) = running.join_next().await {
                let (idx, part) = joined.map_err(|e| object_store::Error::JoinError { source: e })?;
                if let Some(slot) = parts.get_mut(idx) {
                    *slot = Some(part?);
                }
            }
            Ok(())
        }
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Part(data) => {
                    while running.len() >= CONCURRENCY {
                        collect(&mut running, &mut parts).await?;
                    }
                    parts.push(None);
                    put(&mut running, parts.len() - 1, data);
                }
                Msg::Finish { head, last } => {
                    put(&mut running, 0, head);
                    if let Some(last) = last {
                        parts.push(None);
                        put(&mut running, parts.len() - 1, last);
                    }
                    while !running.is_empty() {
                        collect(&mut running, &mut parts).await?;
                    }
                    let parts: Vec<PartId> = parts.into_iter().flatten().collect();
                    store.complete_multipart(&path, &id, parts).await?;
                    return Ok(true);
                }
            }
        }
        // The writer was dropped before the end.
        Ok(false)
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = shared.abort.notified() => Ok(false),
    };
    if !matches!(outcome, Ok(true)) {
        // Best effort: the store may be unreachable now; its own lifecycle rules are the rest.
        let _ = store.abort_multipart(&path, &id).await;
    }
    outcome
}

/// A trace being uploaded: a `Write` (and `Seek`, within the first part: a msgpack trace's
/// event count is patched there at the end). The first part is held until `finish`, the others
/// are uploaded as they fill. Dropped without `finish`, the upload is aborted and nothing is
/// left in the store.
pub struct Upload {
    names: Names,
    /// The first part, uploaded last.
    head: Vec<u8>,
    /// The part being filled after it.
    tail: Vec<u8>,
    pos: u64,
    len: u64,
    tx: Option<tokio::sync::mpsc::Sender<Msg>>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<Result<bool, object_store::Error>>>,
    /// The first failure, said again by `finish`.
    failure: Option<String>,
}

impl Upload {
    /// Ctrl-C aborts the upload (waiting a little for the store to hear it) and ends the
    /// process, as Ctrl-C would have.
    pub fn abort_on_interrupt(&self) {
        let shared = self.shared.clone();
        super::signals::on_interrupt(move || {
            lock(&shared.state).interrupted = true;
            shared.abort.notify_one();
            let state = lock(&shared.state);
            let _ = shared.changed.wait_timeout_while(state, Duration::from_secs(10), |s| !s.done);
            super::signals::exit(130);
        });
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.blocking_send(msg).is_ok());
        if sent {
            return Ok(());
        }
        if lock(&self.shared.state).interrupted {
            // Ctrl-C: the signal thread ends the process as soon as the upload is aborted.
            loop {
                std::thread::park();
            }
        }
        let why = lock(&self.shared.state).error.clone().unwrap_or_else(|| "the upload stopped".into());
        let why = short(&why);
        self.failure.get_or_insert_with(|| why.clone());
        Err(io::Error::other(why))
    }

    /// Uploads what is left and completes the upload: only now is the object there.
    pub fn finish(mut self) -> Result<(), RemoteError> {
        let head = Bytes::from(std::mem::take(&mut self.head));
        let last = (!self.tail.is_empty()).then(|| Bytes::from(std::mem::take(&mut self.tail)));
        let sent = self.send(Msg::Finish { head, last });
        self.tx = None;
        let outcome = self.thread.take().map(|t| t.join());
        match (sent, outcome) {
            (Ok(()), Some(Ok(Ok(true)))) => Ok(()),
            (_, Some(Ok(Err(e)))) => Err(self.names.error("write", &e)),
            _ => Err(RemoteError::Failed {
                url: self.names.url.clone(),
                action: "write",
                reason: self.failure.clone().unwrap_or_else(|| "the upload stopped".into()),
                help: "nothing was written; run it again".into(),
            }),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.tx = None;
            self.shared.abort.notify_one();
            let _ = thread.join();
        }
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos < self.len {
            // Rewriting what was written: only the first part is still here.
            let (start, end) = (self.pos as usize, self.pos as usize + buf.len());
            let Some(slot) = self.head.get_mut(start..end) else {
                return Err(io::Error::other("cannot rewrite a part already uploaded"));
            };
            slot.copy_from_slice(buf);
            self.pos += buf.len() as u64;
            return Ok(buf.len());
        }
        let mut rest = buf;
        if self.head.len() < PART {
            let n = rest.len().min(PART - self.head.len());
            self.head.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        while !rest.is_empty() {
            let n = rest.len().min(PART - self.tail.len());
            self.tail.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.tail.len() == PART {
                let part = Bytes::from(std::mem::replace(&mut self.tail, Vec::with_capacity(PART)));
                self.send(Msg::Part(part))?;
            }
        }
        self.pos += buf.len() as u64;
        self.len = self.pos;
        Ok(buf.len())
    }

    /// Parts go when they are full; the rest at `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Upload {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) if n <= self.len => {
                self.pos = n;
                Ok(n)
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "an upload cannot seek past its end")),
        }
    }
}
