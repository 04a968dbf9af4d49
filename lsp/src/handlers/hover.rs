use lsp_types::{Hover, HoverParams};

use super::{Context, Failure};
use crate::engine;

pub fn hover(ctx: &Context, p: HoverParams) -> Result<Option<Hover>, Failure> {
    let at = p.text_document_position_params;
    let doc = ctx.doc(&at.text_document.uri)?;
    let trace = ctx.trace();
    Ok(engine::hover(doc, at.position, trace.as_deref()))
}
