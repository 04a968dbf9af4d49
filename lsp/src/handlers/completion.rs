use lsp_types::{CompletionParams, CompletionResponse};

use super::{Context, Failure};
use crate::engine;

pub fn completion(ctx: &Context, p: CompletionParams) -> Result<Option<CompletionResponse>, Failure> {
    let at = p.text_document_position;
    let doc = ctx.doc(&at.text_document.uri)?;
    let trace = ctx.trace();
    Ok(Some(CompletionResponse::Array(engine::completion(doc, at.position, trace.as_deref()))))
}
