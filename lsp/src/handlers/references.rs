use lsp_types::{Location, ReferenceParams};

use super::{Context, Failure};
use crate::engine;

pub fn references(ctx: &Context, p: ReferenceParams) -> Result<Option<Vec<Location>>, Failure> {
    let at = p.text_document_position;
    let doc = ctx.doc(&at.text_document.uri)?;
    Ok(engine::references(doc, at.position, p.context.include_declaration))
}
