use lsp_types::{GotoDefinitionParams, GotoDefinitionResponse};

use super::{Context, Failure};
use crate::engine;

pub fn definition(ctx: &Context, p: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>, Failure> {
    let at = p.text_document_position_params;
    let doc = ctx.doc(&at.text_document.uri)?;
    Ok(engine::definition(doc, at.position).map(GotoDefinitionResponse::Scalar))
}
