use lsp_types::{DocumentFormattingParams, TextEdit};

use super::{Context, Failure};
use crate::engine;

pub fn formatting(ctx: &Context, p: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>, Failure> {
    Ok(engine::format(ctx.doc(&p.text_document.uri)?))
}
