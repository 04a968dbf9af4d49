//! The server: documents, requests and notifications, over an `lsp_server::Connection`.
//! Every answer comes from the compiler's own stages (parse, check) and the library's trace
//! queries; nothing here parses SKEL again.
//!
//! The main loop owns the documents and handles notifications in order (a `didChange` is
//! compiled and its diagnostics published before the next message is read). Each request is
//! answered on a thread of its own, on a snapshot of its document, so a slow request (reading
//! a large trace for a hover) holds up no other; `$/cancelRequest` answers a request still
//! running with -32800 at once, and its late answer is dropped. A panic in a handler is
//! caught and answered with -32603: the server stays up.

use std::collections::{HashMap, HashSet};
use std::io::BufRead as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    Cancel, DidChangeConfiguration, DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Exit,
    Notification as _, PublishDiagnostics, ShowMessage,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, Initialize, PrepareRenameRequest,
    References, Rename, Request as _, SemanticTokensFullRequest, Shutdown,
};
use lsp_types::{
    CancelParams, CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionResponse,
    CompletionTextEdit, Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DidChangeConfigurationParams,
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, DocumentFormattingParams,
    DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse, GotoDefinitionParams, GotoDefinitionResponse, Hover,
    HoverContents, HoverParams, HoverProviderCapability, InitializeParams, Location, MarkupContent, MarkupKind,
    MessageType, NumberOrString, OneOf, Position, PositionEncodingKind, PrepareRenameResponse,
    PublishDiagnosticsParams, Range, ReferenceParams, RenameOptions, RenameParams, SemanticToken, SemanticTokens,
    SemanticTokensFullOptions, SemanticTokensLegend, SemanticTokensOptions, SemanticTokensParams, SemanticTokensResult,
    SemanticTokensServerCapabilities, ServerCapabilities, ShowMessageParams, SymbolKind, TextDocumentPositionParams,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkDoneProgressOptions, WorkspaceEdit,
};
use miette::Diagnostic as _;
use serde_json::Value;
use skel::ast::{Script, Statement};
use skel::explore::{self, KeyIndex};
use skel::CompileError;
use skel_trace::fsio::{self, kind_name, FileReadError, Special};
use skel_trace::{Event, Format, Section, TraceVisitor};

use crate::analysis::{self, Item};
use crate::text::{Encoding, LineIndex};
use crate::tokens;
use skel::kube::fields as k8s;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The stack of the server's threads: compiling or formatting a script recurses into its
/// nesting, whatever thread the server is run on.
const STACK: usize = 64 << 20;

/// Requests running at once; one more is refused (-32803) until one ends.
const MAX_RUNNING: usize = 64;

/// The bytes of a trace read for hover and completion (256 MiB): the index holds what the
/// first ones hold.
pub const TRACE_LIMIT: u64 = 256 << 20;

/// Runs a server on a connection until `exit`: `Ok` after `shutdown` then `exit`; `Err` for
/// `exit` without `shutdown`, or a connection that ends before them (the protocol's exit code
/// 1).
pub fn serve(conn: &Connection) -> Result<(), Error> {
    std::thread::scope(|scope| {
        let main = std::thread::Builder::new()
            .name("skel-lsp".into())
            .stack_size(STACK)
            .spawn_scoped(scope, || Server::new(conn).run())?;
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
                    token_types: tokens::TYPES.iter().map(|t| (*t).into()).collect(),
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

struct Doc {
    text: String,
    lines: LineIndex,
    script: Script,
}

/// A trace read for hover and completion: the keys under each path, and how many objects have
/// each path with a few of its values (the objects themselves are not kept).
pub struct TraceInfo {
    pub name: String,
    keys: KeyIndex,
    /// Whether the trace is longer than what was read of it.
    cut: bool,
}

/// What every request thread shares: set by `initialize`.
#[derive(Default)]
struct Shared {
    encoding: Encoding,
    root: Option<PathBuf>,
    /// Traces read, by path: each slot is locked while its trace is read, so the requests that
    /// need it wait for one reading rather than each reading it.
    traces: Mutex<HashMap<PathBuf, Arc<Mutex<Option<Loaded>>>>>,
    /// The problems told to the editor (`window/showMessage`), each told once.
    told: Mutex<HashSet<String>>,
}

/// A trace as read at a modification time: its index (`None`: it could not be read).
struct Loaded {
    modified: Option<SystemTime>,
    info: Option<Arc<TraceInfo>>,
}

/// The main loop's state: the documents, the requests running, the protocol's stage.
struct Server<'c> {
    conn: &'c Connection,
    shared: Arc<Shared>,
    /// The `skel.trace` setting.
    trace_setting: Option<PathBuf>,
    /// Open documents, by URI.
    docs: HashMap<String, Arc<Doc>>,
    /// Requests running on their threads, not yet answered.
    running: HashSet<RequestId>,
    /// What request threads send back: their answers and notifications.
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
    fn new(conn: &'c Connection) -> Server<'c> {
        Server {
            conn,
            shared: Arc::default(),
            trace_setting: None,
            docs: HashMap::new(),
            running: HashSet::new(),
            results: crossbeam_channel::unbounded(),
            initialized: false,
            shut_down: false,
        }
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

    /// A request thread's answer (sent unless the request was cancelled meanwhile) or
    /// notification.
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
        let encoding = if utf8 { Encoding::Utf8 } else { Encoding::Utf16 };
        #[allow(deprecated)]
        let root = init.root_uri.as_ref().and_then(file_path);
        self.shared = Arc::new(Shared { encoding, root, ..Shared::default() });
        self.trace_setting = init.initialization_options.as_ref().and_then(trace_setting);
        self.initialized = true;
        let result = serde_json::json!({
            "capabilities": capabilities(encoding),
            "serverInfo": {"name": "skel", "version": env!("CARGO_PKG_VERSION")},
        });
        self.send(Response::new_ok(req.id, result))
    }

    /// Answers a request on a thread of its own, on a snapshot of its document.
    fn start(&mut self, req: Request) -> Result<(), Error> {
        let uri = req.params.get("textDocument").and_then(|t| t.get("uri")).and_then(Value::as_str);
        let job = Job {
            shared: Arc::clone(&self.shared),
            doc: uri.and_then(|u| self.docs.get(u)).cloned(),
            trace_setting: self.trace_setting.clone(),
            out: self.results.0.clone(),
        };
        let id = req.id.clone();
        let spawned = std::thread::Builder::new().name("skel-lsp-request".into()).stack_size(STACK).spawn(move || {
            let out = job.out.clone();
            let _ = out.send(job.answer(req).into());
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

    /// A document's new text: parse and check it, publish its diagnostics.
    fn update(&mut self, uri: Uri, text: String, version: Option<i32>) -> Result<(), Error> {
        let folder = file_path(&uri).and_then(|p| p.parent().map(Path::to_path_buf));
        let lines = LineIndex::new(&text, self.shared.encoding);
        let compiled = catch_unwind(AssertUnwindSafe(|| {
            let compiled = skel::analyze(&text, &skel::Folder::new(folder.as_deref()));
            let diagnostics = compiled.diagnostics.iter().map(|d| to_lsp(d, &text, &lines, &uri)).collect();
            (compiled.ast, diagnostics)
        }));
        // A panic in the compiler is a bug: said on the document, which keeps its text (for
        // tokens and formatting) without a syntax tree.
        let (script, diagnostics) = compiled.unwrap_or_else(|panic| {
            let message = format!("skel lsp failed on this script: {} (a bug in skel)", panic_message(&*panic));
            let d = Diagnostic {
                severity: Some(DiagnosticSeverity::ERROR),
                source: Some("skel".into()),
                message,
                ..Diagnostic::default()
            };
            (Script::default(), vec![d])
        });
        self.docs.insert(uri.as_str().to_string(), Arc::new(Doc { text, lines, script }));
        let params = PublishDiagnosticsParams { uri, diagnostics, version };
        self.send(Notification::new(PublishDiagnostics::METHOD.into(), params))
    }
}

/// What a panic says.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// A request's context on its thread: a snapshot of its document and of the settings.
struct Job {
    shared: Arc<Shared>,
    doc: Option<Arc<Doc>>,
    trace_setting: Option<PathBuf>,
    /// To the main loop: notifications for the editor (and the answer).
    out: Sender<Message>,
}

impl Job {
    /// The answer to a request; a panic in its handler is answered with -32603.
    fn answer(&self, req: Request) -> Response {
        let (id, method) = (req.id, req.method);
        let answered = catch_unwind(AssertUnwindSafe(|| self.handle(&method, req.params)));
        match answered {
            Ok(Ok(value)) => Response::new_ok(id, value),
            Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
            Err(panic) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                format!("skel lsp failed on `{method}`: {} (a bug in skel)", panic_message(&*panic)),
            ),
        }
    }

    fn handle(&self, method: &str, params: Value) -> Reply {
        match method {
            HoverRequest::METHOD => reply(params, |p| self.hover(p)),
            Completion::METHOD => reply(params, |p| self.completion(p)),
            GotoDefinition::METHOD => reply(params, |p| self.definition(p)),
            References::METHOD => reply(params, |p| self.references(p)),
            PrepareRenameRequest::METHOD => reply(params, |p| self.prepare_rename(p)),
            Rename::METHOD => reply(params, |p| self.rename(p)),
            Formatting::METHOD => reply(params, |p| self.format(p)),
            DocumentSymbolRequest::METHOD => reply(params, |p| self.symbols(p)),
            SemanticTokensFullRequest::METHOD => reply(params, |p| self.semantic_tokens(p)),
            _ => Err((ErrorCode::MethodNotFound, format!("skel lsp does not handle `{method}`"))),
        }
    }

    fn doc(&self, uri: &Uri) -> Result<&Doc, (ErrorCode, String)> {
        self.doc.as_deref().ok_or((ErrorCode::InvalidParams, format!("`{}` is not open", uri.as_str())))
    }

    /// The statement and item at a position.
    fn at(&self, p: &TextDocumentPositionParams) -> Result<(&Doc, usize, Option<&Statement>), (ErrorCode, String)> {
        let doc = self.doc(&p.text_document.uri)?;
        let offset = doc.lines.offset(&doc.text, p.position);
        Ok((doc, offset, analysis::statement_at(&doc.script, offset)))
    }

    fn range(&self, doc: &Doc, span: skel::ast::Span) -> Range {
        doc.lines.range(&doc.text, span.start, span.end)
    }

    /// Tells the editor of a problem (`window/showMessage`), once.
    fn tell(&self, typ: MessageType, message: String) {
        let new = self.shared.told.lock().unwrap_or_else(PoisonError::into_inner).insert(message.clone());
        if new {
            eprintln!("skel lsp: {message}");
            let _ =
                self.out.send(Notification::new(ShowMessage::METHOD.into(), ShowMessageParams { typ, message }).into());
        }
    }

    // ------------------------------------------------------------------ the trace

    /// The trace configured for a document: a `# trace: FILE` comment at its top (relative to
    /// the script's folder), else the `skel.trace` setting (relative to the workspace root).
    /// A trace that cannot be read, or is not a regular file (a FIFO would never end), is told
    /// to the editor; hover and completion go on without it.
    fn trace_for(&self, uri: &Uri) -> Option<Arc<TraceInfo>> {
        let doc = self.doc.as_deref()?;
        let folder = file_path(uri).and_then(|p| p.parent().map(Path::to_path_buf));
        let from_comment = doc
            .text
            .lines()
            .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            .find_map(|l| l.trim_start().trim_start_matches('#').trim().strip_prefix("trace:").map(str::trim))
            .filter(|f| !f.is_empty())
            .map(|f| folder.as_deref().unwrap_or(Path::new(".")).join(f));
        let path = from_comment.or_else(|| {
            let t = self.trace_setting.as_ref()?;
            let root = self.shared.root.as_deref().unwrap_or(Path::new("."));
            Some(if t.is_absolute() { t.clone() } else { root.join(t) })
        })?;
        let cannot = |why: FileReadError| format!("the trace {} cannot be read: {why}", path.display());
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(meta) => {
                self.tell(
                    MessageType::WARNING,
                    cannot(FileReadError::NotRegular { kind: kind_name(meta.file_type()) }),
                );
                return None;
            }
            Err(e) => {
                self.tell(MessageType::WARNING, cannot(FileReadError::Io(e)));
                return None;
            }
        };
        // Read again when the file changes; until then, not again (nor told again).
        let modified = meta.modified().ok();
        let slot = Arc::clone(
            self.shared.traces.lock().unwrap_or_else(PoisonError::into_inner).entry(path.clone()).or_default(),
        );
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(loaded) = slot.as_ref().filter(|l| l.modified == modified) {
            return loaded.info.clone();
        }
        let info = match load_trace(&path, TRACE_LIMIT) {
            Ok(info) => {
                if info.cut {
                    let mib = TRACE_LIMIT >> 20;
                    self.tell(
                        MessageType::INFO,
                        format!(
                            "the trace {} is over {mib} MiB: hover and completion know its first {mib} MiB",
                            path.display()
                        ),
                    );
                }
                Some(Arc::new(info))
            }
            Err(why) => {
                self.tell(MessageType::WARNING, format!("the trace {} cannot be read: {why}", path.display()));
                None
            }
        };
        *slot = Some(Loaded { modified, info: info.clone() });
        info
    }

    // ------------------------------------------------------------------ hover

    fn hover(&self, p: HoverParams) -> Result<Option<Hover>, (ErrorCode, String)> {
        let pos = &p.text_document_position_params;
        let uri = pos.text_document.uri.clone();
        let trace = self.trace_for(&uri);
        let (doc, offset, stmt) = self.at(pos)?;
        let Some(stmt) = stmt else { return Ok(None) };
        let Some(item) = analysis::item_at(stmt, offset) else { return Ok(None) };
        let (text, span) = match item {
            Item::Command(s) => (command_doc(s.command), s.command_span),
            Item::Time(span) => (
                "```skel\n@t\n```\nThe event's time, in seconds since the trace's first event; compare it with a \
                 duration (`@t > 5m`, `@t <= 1h`)."
                    .to_string(),
                span,
            ),
            Item::Var { ident, .. } => match analysis::binding(stmt, &ident.name) {
                Some((def, bound)) => {
                    let bound_text = doc.text.get(bound.span.start..bound.span.end).unwrap_or("");
                    let line = doc.lines.position(&doc.text, def.span.start).line + 1;
                    let text = format!(
                        "```skel\n{} := {bound_text}\n```\n`{}` stands for each value `{bound_text}` reaches in an \
                         object, one at a time; the statement acts on every value for which its tests hold \
                         (bound on line {line}).",
                        ident.name, ident.name
                    );
                    (text, ident.span)
                }
                None => (format!("`{}` is not bound in this statement.", ident.name), ident.span),
            },
            Item::Path(path) => {
                let upto = analysis::segments_upto(path, offset);
                let key = analysis::resolved_path(stmt, path, Some(upto));
                let shown = if key.is_empty() { "(the object)".to_string() } else { key.clone() };
                let mut text = format!("```skel\n{shown}\n```\n");
                match k8s::describe(&key) {
                    Some(d) => text.push_str(d),
                    None => text.push_str("A field path."),
                }
                if let Some(t) = &trace {
                    text.push_str("\n\n");
                    text.push_str(&path_stats(t, &key));
                }
                let seg_end = path.segments.get(upto.saturating_sub(1)).map_or(path.span.end, |s| s.span().end);
                (text, skel::ast::Span::new(path.span.start, seg_end))
            }
        };
        Ok(Some(Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
            range: Some(self.range(doc, span)),
        }))
    }

    // ------------------------------------------------------------------ completion

    fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>, (ErrorCode, String)> {
        let pos = &p.text_document_position;
        let uri = pos.text_document.uri.clone();
        let trace = self.trace_for(&uri);
        let doc = self.doc(&uri)?;
        let offset = doc.lines.offset(&doc.text, pos.position);
        let start = statement_start(&doc.text, offset);
        let text = doc.text.get(start..offset).unwrap_or("");
        let mut items = Vec::new();
        let Some(tok) = explore::token_start(text) else { return Ok(Some(CompletionResponse::Array(items))) };
        let token = &text[tok..];
        let at_start = text[..tok].trim().is_empty() || is_only_comments(&text[..tok]);
        let field = |label: String, detail: Option<&str>| CompletionItem {
            label,
            kind: Some(CompletionItemKind::FIELD),
            detail: detail.map(str::to_string),
            ..CompletionItem::default()
        };
        if let Some(var) = token.strip_prefix('$').filter(|v| !v.contains(['.', '['])) {
            for name in explore::variables(text).into_iter().filter(|n| n.starts_with(var)) {
                let bound = explore::binding(text, &name).unwrap_or_default();
                items.push(CompletionItem {
                    label: format!("${name}"),
                    kind: Some(CompletionItemKind::VARIABLE),
                    detail: Some(format!("${name} := {bound}")),
                    ..CompletionItem::default()
                });
            }
        } else if let Some((head, partial)) = explore::split_path(token) {
            let partial = partial.trim_start_matches('"');
            if let Some(under) = explore::resolve(text, head) {
                let mut seen: Vec<String> = Vec::new();
                if let Some(t) = &trace {
                    for (key, n) in t.keys.keys_under(&under).into_iter().filter(|(k, _)| k.starts_with(partial)) {
                        let mut item = field(format!("{head}{}", KeyIndex::source_key(key)), None);
                        item.detail = Some(format!("in {n} objects of {}", t.name));
                        item.sort_text = Some(format!("0{:>10}", u32::MAX - n));
                        item.filter_text = Some(item.label.clone());
                        seen.push(key.to_string());
                        items.push(item);
                    }
                }
                for (key, d) in k8s::keys_under(&under).into_iter().filter(|(k, _)| k.starts_with(partial)) {
                    if !seen.iter().any(|s| s == key) {
                        let mut item = field(format!("{head}{}", KeyIndex::source_key(key)), Some(d));
                        item.sort_text = Some(format!("1{key}"));
                        items.push(item);
                    }
                }
            }
        } else if at_start {
            for c in skel::ast::CommandName::ALL {
                if c.as_str().starts_with(token) {
                    items.push(CompletionItem {
                        label: c.as_str().to_string(),
                        kind: Some(CompletionItemKind::FUNCTION),
                        detail: Some(command_signature(c).to_string()),
                        insert_text: Some(format!("{c}(")),
                        ..CompletionItem::default()
                    });
                }
            }
        } else {
            for (word, detail) in [("exists(", "exists(PATH): the path reaches a value"), ("@t", "the event's time")] {
                if word.starts_with(token) {
                    items.push(CompletionItem {
                        label: word.trim_end_matches('(').to_string(),
                        kind: Some(CompletionItemKind::KEYWORD),
                        detail: Some(detail.to_string()),
                        insert_text: Some(word.to_string()),
                        ..CompletionItem::default()
                    });
                }
            }
            for name in
                explore::variables(text).into_iter().filter(|n| token.is_empty() || format!("${n}").starts_with(token))
            {
                items.push(CompletionItem {
                    label: format!("${name}"),
                    kind: Some(CompletionItemKind::VARIABLE),
                    ..CompletionItem::default()
                });
            }
            let mut seen: Vec<String> = Vec::new();
            if let Some(t) = &trace {
                for (key, n) in t.keys.keys_under("").into_iter().filter(|(k, _)| k.starts_with(token)) {
                    let mut item = field(KeyIndex::source_key(key), None);
                    item.detail = Some(format!("in {n} objects of {}", t.name));
                    seen.push(key.to_string());
                    items.push(item);
                }
            }
            for (key, d) in k8s::keys_under("").into_iter().filter(|(k, _)| k.starts_with(token)) {
                if !seen.iter().any(|s| s == key) {
                    items.push(field(key.to_string(), Some(d)));
                }
            }
        }
        // Each item replaces the whole word typed (a path with its dots, a `$variable`), not
        // just what the editor takes for a word.
        let range = doc.lines.range(&doc.text, start + tok, offset);
        for item in &mut items {
            let new_text = item.insert_text.take().unwrap_or_else(|| item.label.clone());
            item.filter_text.get_or_insert_with(|| item.label.clone());
            item.text_edit = Some(CompletionTextEdit::Edit(TextEdit { range, new_text }));
        }
        Ok(Some(CompletionResponse::Array(items)))
    }

    // ------------------------------------------------------------------ variables

    /// The variable under the cursor, in its statement.
    fn variable_at(&self, p: &TextDocumentPositionParams) -> Result<VariableAt<'_>, (ErrorCode, String)> {
        let (doc, offset, stmt) = self.at(p)?;
        let Some(stmt) = stmt else { return Ok(None) };
        match analysis::item_at(stmt, offset) {
            Some(Item::Var { ident, .. }) => Ok(Some((doc, stmt, ident.name.clone(), ident.span))),
            _ => Ok(None),
        }
    }

    fn definition(&self, p: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>, (ErrorCode, String)> {
        let pos = &p.text_document_position_params;
        let Some((doc, stmt, name, _)) = self.variable_at(pos)? else { return Ok(None) };
        let Some((def, _)) = analysis::binding(stmt, &name) else { return Ok(None) };
        let uri = pos.text_document.uri.clone();
        Ok(Some(GotoDefinitionResponse::Scalar(Location { uri, range: self.range(doc, def.span) })))
    }

    fn references(&self, p: ReferenceParams) -> Result<Option<Vec<Location>>, (ErrorCode, String)> {
        let pos = &p.text_document_position;
        let Some((doc, stmt, name, _)) = self.variable_at(pos)? else { return Ok(None) };
        let uri = &pos.text_document.uri;
        let found = analysis::occurrences(stmt, &name)
            .into_iter()
            .filter(|(_, def)| p.context.include_declaration || !def)
            .map(|(span, _)| Location { uri: uri.clone(), range: self.range(doc, span) })
            .collect();
        Ok(Some(found))
    }

    fn prepare_rename(
        &self,
        p: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>, (ErrorCode, String)> {
        match self.variable_at(&p)? {
            Some((doc, _, _, span)) => Ok(Some(PrepareRenameResponse::Range(self.range(doc, span)))),
            None => Err((ErrorCode::InvalidParams, "only a `$variable` can be renamed".into())),
        }
    }

    // `WorkspaceEdit` keys its changes by `Uri`, whose cached parts clippy takes for mutable
    // state; a `Uri` never changes once parsed.
    #[allow(clippy::mutable_key_type)]
    fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>, (ErrorCode, String)> {
        let pos = &p.text_document_position;
        let Some((doc, stmt, name, _)) = self.variable_at(pos)? else {
            return Err((ErrorCode::InvalidParams, "only a `$variable` can be renamed".into()));
        };
        let new = format!("${}", p.new_name.trim_start_matches('$'));
        let valid = new.len() > 1
            && new[1..].chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !new[1..].starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err((
                ErrorCode::InvalidParams,
                format!("`{new}` is not a variable name: `$` then letters, digits or `_`"),
            ));
        }
        if new != name && !analysis::occurrences(stmt, &new).is_empty() {
            return Err((ErrorCode::InvalidParams, format!("`{new}` is already a variable of this statement")));
        }
        let edits = analysis::occurrences(stmt, &name)
            .into_iter()
            .map(|(span, _)| TextEdit { range: self.range(doc, span), new_text: new.clone() })
            .collect();
        let changes = HashMap::from([(pos.text_document.uri.clone(), edits)]);
        Ok(Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }))
    }

    // ------------------------------------------------------------------ whole documents

    fn format(&self, p: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>, (ErrorCode, String)> {
        let doc = self.doc(&p.text_document.uri)?;
        // A script that does not parse is left as it is (its diagnostics say why).
        let Ok(formatted) = skel_grammar::format(&doc.text) else { return Ok(None) };
        if formatted == doc.text {
            return Ok(Some(Vec::new()));
        }
        let range = doc.lines.range(&doc.text, 0, doc.text.len());
        Ok(Some(vec![TextEdit { range, new_text: formatted }]))
    }

    fn symbols(&self, p: DocumentSymbolParams) -> Result<Option<DocumentSymbolResponse>, (ErrorCode, String)> {
        let doc = self.doc(&p.text_document.uri)?;
        let statements = &doc.script.statements;
        let symbols = statements
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let next = statements.get(i + 1).map_or(doc.text.len(), |n| n.span.start);
                let end = statement_end(&doc.text, s.span.end, next);
                #[allow(deprecated)]
                DocumentSymbol {
                    name: analysis::statement_name(&doc.text, s),
                    detail: Some(command_signature(s.command).to_string()),
                    kind: SymbolKind::FUNCTION,
                    tags: None,
                    deprecated: None,
                    range: self.range(doc, skel::ast::Span::new(s.span.start, end)),
                    selection_range: self.range(doc, s.command_span),
                    children: None,
                }
            })
            .collect();
        Ok(Some(DocumentSymbolResponse::Nested(symbols)))
    }

    fn semantic_tokens(&self, p: SemanticTokensParams) -> Result<Option<SemanticTokensResult>, (ErrorCode, String)> {
        let doc = self.doc(&p.text_document.uri)?;
        let mut data = Vec::new();
        let mut prev = Position::new(0, 0);
        for t in tokens::lex(&doc.text) {
            let start = doc.lines.position(&doc.text, t.start);
            let end = doc.lines.position(&doc.text, t.end);
            let delta_line = start.line - prev.line;
            let delta_start = if delta_line == 0 { start.character - prev.character } else { start.character };
            data.push(SemanticToken {
                delta_line,
                delta_start,
                length: end.character.saturating_sub(start.character),
                token_type: t.kind as u32,
                token_modifiers_bitset: 0,
            });
            prev = start;
        }
        Ok(Some(SemanticTokensResult::Tokens(SemanticTokens { result_id: None, data })))
    }
}

type Reply = Result<Value, (ErrorCode, String)>;

/// Decodes a request's parameters, runs its handler, encodes the answer.
fn reply<P: serde::de::DeserializeOwned, R: serde::Serialize>(
    params: Value,
    handler: impl FnOnce(P) -> Result<R, (ErrorCode, String)>,
) -> Reply {
    let p = serde_json::from_value(params).map_err(|e| (ErrorCode::InvalidParams, e.to_string()))?;
    serde_json::to_value(handler(p)?).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

/// The variable under a cursor: its document, statement, name and span.
type VariableAt<'d> = Option<(&'d Doc, &'d Statement, String, skel::ast::Span)>;

/// A compiler diagnostic as LSP sees it: the first label's range, the message with the
/// label and help, the code, and the other labels as related information.
fn to_lsp(d: &CompileError, text: &str, lines: &LineIndex, uri: &Uri) -> Diagnostic {
    let labels: Vec<miette::LabeledSpan> = d.labels().map(|l| l.collect()).unwrap_or_default();
    let range = labels.first().map_or(Range::default(), |l| lines.range(text, l.offset(), l.offset() + l.len()));
    let mut message = d.to_string();
    if let Some(label) = labels.first().and_then(|l| l.label()) {
        message.push_str(&format!(" ({label})"));
    }
    if let Some(help) = d.help() {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = labels
        .iter()
        .skip(1)
        .map(|l| DiagnosticRelatedInformation {
            location: Location { uri: uri.clone(), range: lines.range(text, l.offset(), l.offset() + l.len()) },
            message: l.label().unwrap_or("here").to_string(),
        })
        .collect();
    let severity = match d.severity() {
        Some(miette::Severity::Warning) => DiagnosticSeverity::WARNING,
        Some(miette::Severity::Advice) => DiagnosticSeverity::HINT,
        _ => DiagnosticSeverity::ERROR,
    };
    Diagnostic {
        range,
        severity: Some(severity),
        code: d.code().map(|c| NumberOrString::String(c.to_string())),
        source: Some("skel".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Diagnostic::default()
    }
}

fn command_signature(c: skel::ast::CommandName) -> &'static str {
    use skel::ast::CommandName::*;
    match c {
        Delete => "delete(SELECTOR)",
        Remove => "remove(SELECTOR, PATH)",
        Modify => "modify(SELECTOR, PATH = VALUE)",
        Move => "move(SELECTOR, FROM -> TO)",
        Copy => "copy(SELECTOR, FROM -> TO)",
        Insert => "insert(@t == TIME, {MANIFEST} | file(\"FILE.yaml\"))",
    }
}

fn command_doc(c: skel::ast::CommandName) -> String {
    use skel::ast::CommandName::*;
    let what = match c {
        Delete => "Drops every object the selector matches from the trace.",
        Remove => {
            "Removes the field (or the array items) the path reaches from every object the selector matches. \
                   `remove(PATH)` acts on every object."
        }
        Modify => {
            "Sets the field the path reaches, creating it if needed, in every object the selector matches. \
                   `modify(PATH = VALUE)` acts on every object."
        }
        Move => "Moves the value at FROM to TO (TO is replaced, FROM removed) in every object the selector matches.",
        Copy => "Copies the value at FROM to TO (TO is replaced) in every object the selector matches.",
        Insert => {
            "Adds an object to the trace at a time since its first event: into the event at that time, or a \
                   new event. The manifest is written inline or read from a YAML or JSON file."
        }
    };
    format!("```skel\n{}\n```\n{what}", command_signature(c))
}

/// How many objects of a trace have a path, and example values.
fn path_stats(t: &TraceInfo, key: &str) -> String {
    let total = t.keys.objects();
    let Some(stats) = t.keys.stats(key) else {
        return format!("**In {}**: no object of {total} has it.", t.name);
    };
    let mut out = format!("**In {}**: {} of {total} objects have it", t.name, stats.objects);
    if !stats.examples.is_empty() {
        out.push_str("; e.g. ");
        out.push_str(&stats.examples.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", "));
    }
    out.push('.');
    out
}

/// Reads a trace as it streams by, into an index; the objects are not kept. At most `limit`
/// bytes are read: a longer trace is indexed as far as they go (`cut`).
fn load_trace(path: &Path, limit: u64) -> Result<TraceInfo, String> {
    struct Indexer(KeyIndex);
    impl TraceVisitor for Indexer {
        type Error = std::convert::Infallible;
        fn section(&mut self, _: Section) -> Result<(), Self::Error> {
            Ok(())
        }
        fn event(&mut self, _: usize, event: Event) -> Result<(), Self::Error> {
            event.applied_objs.iter().chain(&event.deleted_objs).for_each(|o| self.0.add(o));
            Ok(())
        }
    }
    // A FIFO, a device or a folder is refused without being opened (opening a FIFO waits for
    // a writer).
    let file = fsio::open(path, Special::Refuse).map_err(|e| e.to_string())?;
    let cut = file.metadata().map_err(|e| FileReadError::Io(e).to_string())?.len() > limit;
    let mut file = std::io::BufReader::new(std::io::Read::take(file, limit));
    let format = Format::of_file(path, file.fill_buf().map_err(|e| e.to_string())?);
    let mut indexer = Indexer(KeyIndex::with_stats());
    match skel_trace::read_trace(&mut file, format, &mut indexer) {
        // Where the limit cuts the trace, it does not parse: what came before is indexed.
        Err(_) if cut && file.get_ref().limit() == 0 => {}
        Err(e) => return Err(e.to_string()),
        Ok(()) => {}
    }
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(TraceInfo { name, keys: indexer.0, cut })
}

/// Where the statement holding `offset` starts: after the last top-level `;` before it.
fn statement_start(text: &str, offset: usize) -> usize {
    let mut start = 0;
    explore::code_chars(text.get(..offset).unwrap_or(text), |i, c| {
        if c == ';' {
            start = i + 1;
        }
    });
    start
}

/// Just past the `;` that ends a statement whose command ends at `end`, looked for before
/// `next` (where the next statement starts: each stretch of text is read once).
fn statement_end(text: &str, end: usize, next: usize) -> usize {
    let mut semi = None;
    explore::code_chars(text.get(end..next.max(end)).unwrap_or(""), |i, c| {
        if c == ';' && semi.is_none() {
            semi = Some(end + i + 1);
        }
    });
    semi.unwrap_or(end)
}

fn is_only_comments(s: &str) -> bool {
    s.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}
