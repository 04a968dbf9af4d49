use std::collections::HashMap;

use lsp_types::{PrepareRenameResponse, RenameParams, TextDocumentPositionParams, WorkspaceEdit};

use super::{Context, Failure};
use crate::engine;

pub fn prepare_rename(ctx: &Context, p: TextDocumentPositionParams) -> Result<Option<PrepareRenameResponse>, Failure> {
    let doc = ctx.doc(&p.text_document.uri)?;
    Ok(Some(PrepareRenameResponse::Range(engine::prepare_rename(doc, p.position)?)))
}

// `WorkspaceEdit` keys its changes by `Uri`, whose cached parts clippy takes for mutable
// state; a `Uri` never changes once parsed.
#[allow(clippy::mutable_key_type)]
pub fn rename(ctx: &Context, p: RenameParams) -> Result<Option<WorkspaceEdit>, Failure> {
    let at = p.text_document_position;
    let doc = ctx.doc(&at.text_document.uri)?;
    let edits = engine::rename(doc, at.position, &p.new_name)?;
    let changes = HashMap::from([(at.text_document.uri, edits)]);
    Ok(Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }))
}
