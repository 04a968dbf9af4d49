//! The protocol layer's main loop: the documents, requests and notifications, over an
//! `lsp_server::Connection`. It reads what the engine needs (a script's insert files, through
//! a cache; traces, through the indexer) and hands it in; every answer is the engine's
//! (`crate::engine`), through one handler per request (`crate::handlers`).
//!
//! The main loop owns the documents and handles notifications in order (a `didChange` is
//! analyzed, parse and check without making a program, and its diagnostics published before
//! the next message is read). Each request is answered on a thread of its own, on a snapshot
//! of its document, so a slow request (a hover waiting for a large trace to be indexed) holds
//! up no other; `$/cancelRequest` answers a request still running with -32800 at once, and its
//! late answer is dropped. A panic in a handler is caught and answered with -32603: the server
//! stays up.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    Cancel, DidChangeConfiguration, DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Exit,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{Initialize, Request as _, Shutdown};
use lsp_types::{
    CancelParams, CompletionOptions, DidChangeConfigurationParams, DidChangeTextDocumentParams,
    DidCloseTextDocumentParams, DidOpenTextDocumentParams, HoverProviderCapability, InitializeParams, NumberOrString,
    OneOf, PositionEncodingKind, PublishDiagnosticsParams, RenameOptions, SemanticTokensFullOptions,
    SemanticTokensLegend, SemanticTokensOptions, SemanticTokensServerCapabilities, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, Uri, WorkDoneProgressOptions,
};
use serde_json::Value;

use crate::engine::Document;
use crate::files::InsertFiles;
use crate::handlers::{self, Context, Snapshot};
use crate::text::Encoding;
use crate::traces::{trace_path, Traces};
use skel_grammar::lex;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The stack of the server's threads: analyzing or formatting a script recurses into its
/// nesting, whatever thread the server is run on.
const STACK: usize = 64 << 20;

/// Requests running at once; one more is refused (-32803) until one ends.
const MAX_RUNNING: usize = 64;

/// Runs a server on a connection until `exit`: `Ok` after `shutdown` then `exit`; `Err` for
/// `exit` without `shutdown`, or a connection that ends before them (the protocol's exit code
/// 1).
pub fn serve(conn: &Connection) -> Result<(), Error> {
    std::thread::scope(|scope| {
        let main = std::thread::Builder::new()
            .name("skel-lsp".into())
            .stack_size(STACK)
            .spawn_scoped(scope, || Server::new(conn)?.run())?;
        main.join().unwrap_or_else(|_| Err("the server's main loop panicked".into()))
    })
}

fn capabilities(encoding: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(match encoding {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }),
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "$".into(), "@".into()]),
            ..CompletionOptions::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: WorkDoneProgressOptions::default(),
        })),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: SemanticTokensLegend {
                    token_types: lex::TYPES.iter().map(|t| (*t).into()).collect(),
                    token_modifiers: Vec::new(),
                },
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                work_done_progress_options: WorkDoneProgressOptions::default(),
            },
        )),
        ..ServerCapabilities::default()
    }
}

/// `{"skel": {"trace": F}}` or `{"trace": F}`, as initialization options or settings.
fn trace_setting(v: &Value) -> Option<PathBuf> {
    let t = v.get("skel").and_then(|s| s.get("trace")).or_else(|| v.get("trace"))?;
    t.as_str().filter(|s| !s.is_empty()).map(PathBuf::from)
}

/// The path of a `file:` URI.
pub fn file_path(uri: &Uri) -> Option<PathBuf> {
    let rest = uri.as_str().strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(PathBuf::from)
}

/// The main loop's state: the documents, the requests running, the protocol's stage.
struct Server<'c> {
    conn: &'c Connection,
    /// Set by `initialize`.
    encoding: Encoding,
    /// The workspace root, set by `initialize`.
    root: Option<PathBuf>,
    /// The `skel.trace` setting.
    trace_setting: Option<PathBuf>,
    /// Open documents, by URI.
    docs: HashMap<String, Snapshot>,
    /// The insert files the documents name, as last read.
    files: InsertFiles,
    traces: Arc<Traces>,
    /// Requests running on their threads, not yet answered.
    running: HashSet<RequestId>,
    /// What request threads and the trace indexer send back: answers and notifications.
    results: (Sender<Message>, Receiver<Message>),
    initialized: bool,
    shut_down: bool,
}

/// Whether the main loop goes on after a message.
enum Step {
    Continue,
    Exit,
}

impl<'c> Server<'c> {
    fn new(conn: &'c Connection) -> Result<Server<'c>, Error> {
        let results = crossbeam_channel::unbounded();
        let traces = Traces::start(results.0.clone(), STACK)?;
        Ok(Server {
            conn,
            encoding: Encoding::default(),
            root: None,
            trace_setting: None,
            docs: HashMap::new(),
            files: InsertFiles::default(),
            traces,
            running: HashSet::new(),
            results,
            initialized: false,
            shut_down: false,
        })
    }

    fn run(mut self) -> Result<(), Error> {
        loop {
            crossbeam_channel::select! {
                recv(self.conn.receiver) -> msg => match msg {
                    Ok(msg) => {
                        if let Step::Exit = self.message(msg)? {
                            return if self.shut_down {
                                Ok(())
                            } else {
                                Err("the client sent `exit` without `shutdown` first".into())
                            };
                        }
                    }
                    Err(_) if self.shut_down => return Ok(()),
                    Err(_) => return Err("the client closed the connection without `shutdown` and `exit`".into()),
                },
                recv(self.results.1) -> msg => {
                    if let Ok(msg) = msg {
                        self.finished(msg)?;
                    }
                }
            }
        }
    }

    fn send(&self, msg: impl Into<Message>) -> Result<(), Error> {
        self.conn.sender.send(msg.into())?;
        Ok(())
    }

    fn message(&mut self, msg: Message) -> Result<Step, Error> {
        match msg {
            Message::Request(req) => self.request(req)?,
            Message::Notification(n) if n.method == Exit::METHOD => return Ok(Step::Exit),
            // Before `initialize` and after `shutdown`, notifications are dropped.
            Message::Notification(n) if self.initialized && !self.shut_down => self.notification(n)?,
            Message::Notification(_) | Message::Response(_) => {}
        }
        Ok(Step::Continue)
    }

    /// A request thread's answer (sent unless the request was cancelled meanwhile), or a
    /// notification (from a request thread or the trace indexer).
    fn finished(&mut self, msg: Message) -> Result<(), Error> {
        match msg {
            Message::Response(r) if !self.running.remove(&r.id) => Ok(()),
            msg => self.send(msg),
        }
    }

    fn request(&mut self, req: Request) -> Result<(), Error> {
        let refuse = |code: ErrorCode, message: String| Response::new_err(req.id.clone(), code as i32, message);
        let refused = if self.shut_down {
            refuse(ErrorCode::InvalidRequest, format!("`{}` after `shutdown`: only `exit` is accepted now", req.method))
        } else if req.method == Initialize::METHOD && self.initialized {
            refuse(ErrorCode::InvalidRequest, "the server is initialized already".into())
        } else if req.method == Initialize::METHOD {
            return self.initialize(req);
        } else if !self.initialized {
            refuse(ErrorCode::ServerNotInitialized, format!("`{}` before `initialize`", req.method))
        } else if req.method == Shutdown::METHOD {
            self.shut_down = true;
            Response::new_ok(req.id, Value::Null)
        } else if self.running.contains(&req.id) {
            refuse(ErrorCode::InvalidRequest, format!("request {} is running already", req.id))
        } else if self.running.len() >= MAX_RUNNING {
            refuse(ErrorCode::RequestFailed, format!("busy: {MAX_RUNNING} requests are running; ask again later"))
        } else {
            return self.start(req);
        };
        self.send(refused)
    }

    fn initialize(&mut self, req: Request) -> Result<(), Error> {
        let init: InitializeParams = match serde_json::from_value(req.params) {
            Ok(init) => init,
            Err(e) => return self.send(Response::new_err(req.id, ErrorCode::InvalidParams as i32, e.to_string())),
        };
        let utf8 = init
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref())
            .is_some_and(|e| e.contains(&PositionEncodingKind::UTF8));
        self.encoding = if utf8 { Encoding::Utf8 } else { Encoding::Utf16 };
        #[allow(deprecated)]
        let root = init.root_uri.as_ref().and_then(file_path);
        self.root = root;
        self.trace_setting = init.initialization_options.as_ref().and_then(trace_setting);
        self.initialized = true;
        let result = serde_json::json!({
            "capabilities": capabilities(self.encoding),
            "serverInfo": {"name": "skel", "version": env!("CARGO_PKG_VERSION")},
        });
        self.send(Response::new_ok(req.id, result))
    }

    /// Answers a request on a thread of its own, on a snapshot of its document.
    fn start(&mut self, req: Request) -> Result<(), Error> {
        let uri = req.params.get("textDocument").and_then(|t| t.get("uri")).and_then(Value::as_str);
        let ctx = Context { doc: uri.and_then(|u| self.docs.get(u)).cloned(), traces: Arc::clone(&self.traces) };
        let out = self.results.0.clone();
        let id = req.id.clone();
        let spawned = std::thread::Builder::new().name("skel-lsp-request".into()).stack_size(STACK).spawn(move || {
            let _ = out.send(answer(&ctx, req).into());
        });
        match spawned {
            Ok(_) => {
                self.running.insert(id);
                Ok(())
            }
            Err(e) => self.send(Response::new_err(
                id,
                ErrorCode::RequestFailed as i32,
                format!("cannot start a thread for the request: {e}"),
            )),
        }
    }

    fn notification(&mut self, n: Notification) -> Result<(), Error> {
        let method = n.method.clone();
        match self.notified(n) {
            // A notification has no answer: a malformed one is only logged.
            Err(e) if e.is::<serde_json::Error>() => {
                eprintln!("skel lsp: ignored `{method}`: {e}");
                Ok(())
            }
            other => other,
        }
    }

    fn notified(&mut self, n: Notification) -> Result<(), Error> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: DidOpenTextDocumentParams = serde_json::from_value(n.params)?;
                self.update(p.text_document.uri, p.text_document.text, Some(p.text_document.version))?;
            }
            DidChangeTextDocument::METHOD => {
                let p: DidChangeTextDocumentParams = serde_json::from_value(n.params)?;
                // Full sync: the last change holds the whole text.
                if let Some(change) = p.content_changes.into_iter().last() {
                    self.update(p.text_document.uri, change.text, Some(p.text_document.version))?;
                }
            }
            DidCloseTextDocument::METHOD => {
                let p: DidCloseTextDocumentParams = serde_json::from_value(n.params)?;
                self.docs.remove(p.text_document.uri.as_str());
                let params =
                    PublishDiagnosticsParams { uri: p.text_document.uri, diagnostics: Vec::new(), version: None };
                self.send(Notification::new(PublishDiagnostics::METHOD.into(), params))?;
            }
            DidChangeConfiguration::METHOD => {
                let p: DidChangeConfigurationParams = serde_json::from_value(n.params)?;
                let s = &p.settings;
                if s.get("skel").and_then(|k| k.get("trace")).or_else(|| s.get("trace")).is_some() {
                    self.trace_setting = trace_setting(s);
                    self.retrace();
                }
            }
            Cancel::METHOD => {
                let p: CancelParams = serde_json::from_value(n.params)?;
                let id = match p.id {
                    NumberOrString::Number(n) => RequestId::from(n),
                    NumberOrString::String(s) => RequestId::from(s),
                };
                if self.running.remove(&id) {
                    self.send(Response::new_err(id, ErrorCode::RequestCanceled as i32, "cancelled".into()))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A document's new text: analyze it (parse and check), publish its diagnostics, and have
    /// its trace indexed when it opens or its trace changes.
    fn update(&mut self, uri: Uri, text: String, version: Option<i32>) -> Result<(), Error> {
        let folder = folder(&uri);
        let trace = trace_path(&text, folder.as_deref(), self.trace_setting.as_deref(), self.root.as_deref());
        let analysis = catch_unwind(AssertUnwindSafe(|| skel::analyze(&text, &self.files.of(folder.as_deref()))));
        // A panic in the compiler is a bug: said on the document.
        let doc = match analysis {
            Ok(analysis) => Document::new(uri.clone(), text, self.encoding, analysis),
            Err(panic) => Document::failed(uri.clone(), text, self.encoding, &panic_message(&*panic)),
        };
        let diagnostics = doc.diagnostics().to_vec();
        if self.docs.get(uri.as_str()).is_none_or(|s| s.trace != trace) {
            if let Some(t) = &trace {
                self.traces.want(t);
            }
        }
        self.docs.insert(uri.as_str().to_string(), Snapshot { doc: Arc::new(doc), trace });
        let params = PublishDiagnosticsParams { uri, diagnostics, version };
        self.send(Notification::new(PublishDiagnostics::METHOD.into(), params))
    }

    /// The setting changed: each document whose trace it changed has that trace indexed.
    fn retrace(&mut self) {
        let (setting, root) = (self.trace_setting.as_deref(), self.root.as_deref());
        for snapshot in self.docs.values_mut() {
            let trace = trace_path(&snapshot.doc.text, folder(&snapshot.doc.uri).as_deref(), setting, root);
            if trace != snapshot.trace {
                if let Some(t) = &trace {
                    self.traces.want(t);
                }
                snapshot.trace = trace;
            }
        }
    }
}

/// The folder of a `file:` URI's file: where its `# trace:` and `file(..)` paths start.
fn folder(uri: &Uri) -> Option<PathBuf> {
    file_path(uri).and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The answer to a request; a panic in its handler is answered with -32603.
fn answer(ctx: &Context, req: Request) -> Response {
    let (id, method) = (req.id, req.method);
    match catch_unwind(AssertUnwindSafe(|| handlers::handle(ctx, &method, req.params))) {
        Ok(Ok(value)) => Response::new_ok(id, value),
        Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
        Err(panic) => Response::new_err(
            id,
            ErrorCode::InternalError as i32,
            format!("skel lsp failed on `{method}`: {} (a bug in skel)", panic_message(&*panic)),
        ),
    }
}

/// What a panic says.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
