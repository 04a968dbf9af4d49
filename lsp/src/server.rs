//! The server: documents, requests and notifications, over an `lsp_server::Connection`.
//! Every answer comes from the compiler's own stages (parse, check) and the library's trace
//! queries; nothing here parses SKEL again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeConfiguration, DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, PrepareRenameRequest, References,
    Rename, Request as _, SemanticTokensFullRequest,
};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionResponse, CompletionTextEdit,
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DidChangeConfigurationParams,
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, DocumentFormattingParams,
    DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse, GotoDefinitionParams, GotoDefinitionResponse, Hover,
    HoverContents, HoverParams, HoverProviderCapability, InitializeParams, Location, MarkupContent, MarkupKind,
    NumberOrString, OneOf, Position, PositionEncodingKind, PrepareRenameResponse, PublishDiagnosticsParams, Range,
    ReferenceParams, RenameOptions, RenameParams, SemanticToken, SemanticTokens, SemanticTokensFullOptions,
    SemanticTokensLegend, SemanticTokensOptions, SemanticTokensParams, SemanticTokensResult,
    SemanticTokensServerCapabilities, ServerCapabilities, SymbolKind, TextDocumentPositionParams,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkDoneProgressOptions, WorkspaceEdit,
};
use miette::Diagnostic as _;
use serde_json::Value;
use skel::ast::{Script, Statement};
use skel::explore::{self, KeyIndex};
use skel::{CompileError, OptLevel};
use skel_trace::{Event, Format, Section, TraceVisitor};

use crate::analysis::{self, Item};
use crate::text::{Encoding, LineIndex};
use crate::tokens;
use skel::kube::fields as k8s;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs a server on a connection until `shutdown` and `exit`.
pub fn serve(conn: &Connection) -> Result<(), Error> {
    let (id, params) = conn.initialize_start()?;
    let init: InitializeParams = serde_json::from_value(params)?;
    let utf8 = init
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref())
        .is_some_and(|e| e.contains(&PositionEncodingKind::UTF8));
    let encoding = if utf8 { Encoding::Utf8 } else { Encoding::Utf16 };
    let result = serde_json::json!({
        "capabilities": capabilities(encoding),
        "serverInfo": {"name": "skel", "version": env!("CARGO_PKG_VERSION")},
    });
    conn.initialize_finish(id, result)?;
    #[allow(deprecated)]
    let root = init.root_uri.as_ref().and_then(file_path);
    let mut server = Server {
        conn,
        encoding,
        docs: HashMap::new(),
        root,
        trace_setting: init.initialization_options.as_ref().and_then(trace_setting),
        traces: HashMap::new(),
    };
    for msg in &conn.receiver {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req)? {
                    return Ok(());
                }
                server.request(req)?;
            }
            Message::Notification(n) => server.notification(n)?,
            Message::Response(_) => {}
        }
    }
    Ok(())
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
}

struct Server<'c> {
    conn: &'c Connection,
    encoding: Encoding,
    docs: HashMap<Uri, Doc>,
    root: Option<PathBuf>,
    /// The `skel.trace` setting.
    trace_setting: Option<PathBuf>,
    /// Traces read, by path, with the modification time they were read at.
    traces: HashMap<PathBuf, (std::time::SystemTime, Rc<TraceInfo>)>,
}

impl Server<'_> {
    fn send(&self, msg: impl Into<Message>) -> Result<(), Error> {
        self.conn.sender.send(msg.into())?;
        Ok(())
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
                self.docs.remove(&p.text_document.uri);
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
            _ => {}
        }
        Ok(())
    }

    /// A document's new text: parse and check it, publish its diagnostics.
    fn update(&mut self, uri: Uri, text: String, version: Option<i32>) -> Result<(), Error> {
        let folder = file_path(&uri).and_then(|p| p.parent().map(Path::to_path_buf));
        let compiled = skel::compile_in(&text, OptLevel::Full, folder.as_deref());
        let lines = LineIndex::new(&text, self.encoding);
        let diagnostics = compiled.diagnostics.iter().map(|d| to_lsp(d, &text, &lines, &uri)).collect();
        self.docs.insert(uri.clone(), Doc { text, lines, script: compiled.ast });
        let params = PublishDiagnosticsParams { uri, diagnostics, version };
        self.send(Notification::new(PublishDiagnostics::METHOD.into(), params))
    }

    fn request(&mut self, req: Request) -> Result<(), Error> {
        let (id, params) = (req.id.clone(), req.params);
        let result = match req.method.as_str() {
            HoverRequest::METHOD => reply(params, |p| self.hover(p)),
            Completion::METHOD => reply(params, |p| self.completion(p)),
            GotoDefinition::METHOD => reply(params, |p| self.definition(p)),
            References::METHOD => reply(params, |p| self.references(p)),
            PrepareRenameRequest::METHOD => reply(params, |p| self.prepare_rename(p)),
            Rename::METHOD => reply(params, |p| self.rename(p)),
            Formatting::METHOD => reply(params, |p| self.format(p)),
            DocumentSymbolRequest::METHOD => reply(params, |p| self.symbols(p)),
            SemanticTokensFullRequest::METHOD => reply(params, |p| self.semantic_tokens(p)),
            _ => Err((ErrorCode::MethodNotFound, format!("skel lsp does not handle `{}`", req.method))),
        };
        let response = match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code as i32, message),
        };
        self.send(response)
    }

    fn doc(&self, uri: &Uri) -> Result<&Doc, (ErrorCode, String)> {
        self.docs.get(uri).ok_or((ErrorCode::InvalidParams, format!("`{}` is not open", uri.as_str())))
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

    // ------------------------------------------------------------------ the trace

    /// The trace configured for a document: a `# trace: FILE` comment at its top (relative to
    /// the script's folder), else the `skel.trace` setting (relative to the workspace root).
    fn trace_for(&mut self, uri: &Uri) -> Option<Rc<TraceInfo>> {
        let doc = self.docs.get(uri)?;
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
            Some(if t.is_absolute() { t.clone() } else { self.root.as_deref().unwrap_or(Path::new(".")).join(t) })
        })?;
        // Read again when the file changed; one that cannot be read is tried again next time.
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        if let Some((at, loaded)) = self.traces.get(&path) {
            if *at == modified {
                return Some(Rc::clone(loaded));
            }
        }
        let loaded = Rc::new(load_trace(&path)?);
        self.traces.insert(path, (modified, Rc::clone(&loaded)));
        Some(loaded)
    }

    // ------------------------------------------------------------------ hover

    fn hover(&mut self, p: HoverParams) -> Result<Option<Hover>, (ErrorCode, String)> {
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

    fn completion(&mut self, p: CompletionParams) -> Result<Option<CompletionResponse>, (ErrorCode, String)> {
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
        let symbols = doc
            .script
            .statements
            .iter()
            .map(|s| {
                #[allow(deprecated)]
                DocumentSymbol {
                    name: analysis::statement_name(&doc.text, s),
                    detail: Some(command_signature(s.command).to_string()),
                    kind: SymbolKind::FUNCTION,
                    tags: None,
                    deprecated: None,
                    range: self.range(doc, skel::ast::Span::new(s.span.start, statement_end(&doc.text, s.span.end))),
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

/// Reads a trace as it streams by, into an index; the objects are not kept, so a trace of any
/// size fits.
fn load_trace(path: &Path) -> Option<TraceInfo> {
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
    let mut file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let format = Format::of_file(path, std::io::BufRead::fill_buf(&mut file).ok()?);
    let mut indexer = Indexer(KeyIndex::with_stats());
    skel_trace::read_trace(file, format, &mut indexer).ok()?;
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Some(TraceInfo { name, keys: indexer.0 })
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

/// Just past the `;` that ends a statement whose command ends at `end`.
fn statement_end(text: &str, end: usize) -> usize {
    let mut semi = None;
    explore::code_chars(text.get(end..).unwrap_or(""), |i, c| {
        if c == ';' && semi.is_none() {
            semi = Some(end + i + 1);
        }
    });
    semi.unwrap_or(end)
}

fn is_only_comments(s: &str) -> bool {
    s.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}
