//! One handler per request: each decodes its parameters, takes its document's snapshot (and
//! the trace index, for hover and completion), asks the engine, and encodes the answer.

mod completion;
mod definition;
mod document_symbols;
mod formatting;
mod hover;
mod references;
mod rename;
mod semantic_tokens;

use std::path::PathBuf;
use std::sync::Arc;

use lsp_server::ErrorCode;
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, PrepareRenameRequest, References,
    Rename, Request as _, SemanticTokensFullRequest,
};
use lsp_types::Uri;
use serde_json::Value;

use crate::engine::{Document, Refused, TraceIndex};
use crate::traces::Traces;

/// An open document as a request sees it: its analyzed text and the trace configured for it.
#[derive(Clone)]
pub struct Snapshot {
    pub doc: Arc<Document>,
    pub trace: Option<PathBuf>,
}

/// What a request is answered from: its document as it was when the request came, and the
/// traces.
pub struct Context {
    pub doc: Option<Snapshot>,
    pub traces: Arc<Traces>,
}

/// Why a request is not answered: the protocol's error code and message.
pub type Failure = (ErrorCode, String);

impl Context {
    fn doc(&self, uri: &Uri) -> Result<&Document, Failure> {
        self.doc.as_ref().map(|s| &*s.doc).ok_or((ErrorCode::InvalidParams, format!("`{}` is not open", uri.as_str())))
    }

    /// The index of the document's trace, waiting for it if it is being read.
    fn trace(&self) -> Option<Arc<TraceIndex>> {
        self.traces.get(self.doc.as_ref()?.trace.as_deref()?)
    }
}

impl From<Refused> for Failure {
    fn from(Refused(why): Refused) -> Failure {
        (ErrorCode::InvalidParams, why)
    }
}

/// Runs the handler of a request.
pub fn handle(ctx: &Context, method: &str, params: Value) -> Result<Value, Failure> {
    match method {
        HoverRequest::METHOD => reply(params, |p| hover::hover(ctx, p)),
        Completion::METHOD => reply(params, |p| completion::completion(ctx, p)),
        GotoDefinition::METHOD => reply(params, |p| definition::definition(ctx, p)),
        References::METHOD => reply(params, |p| references::references(ctx, p)),
        PrepareRenameRequest::METHOD => reply(params, |p| rename::prepare_rename(ctx, p)),
        Rename::METHOD => reply(params, |p| rename::rename(ctx, p)),
        Formatting::METHOD => reply(params, |p| formatting::formatting(ctx, p)),
        DocumentSymbolRequest::METHOD => reply(params, |p| document_symbols::document_symbols(ctx, p)),
        SemanticTokensFullRequest::METHOD => reply(params, |p| semantic_tokens::semantic_tokens(ctx, p)),
        _ => Err((ErrorCode::MethodNotFound, format!("skel lsp does not handle `{method}`"))),
    }
}

/// Decodes a request's parameters, runs its handler, encodes the answer.
fn reply<P: serde::de::DeserializeOwned, R: serde::Serialize>(
    params: Value,
    handler: impl FnOnce(P) -> Result<R, Failure>,
) -> Result<Value, Failure> {
    let p = serde_json::from_value(params).map_err(|e| (ErrorCode::InvalidParams, e.to_string()))?;
    serde_json::to_value(handler(p)?).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}
