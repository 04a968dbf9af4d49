use lsp_types::{DocumentSymbolParams, DocumentSymbolResponse};

use super::{Context, Failure};
use crate::engine;

pub fn document_symbols(ctx: &Context, p: DocumentSymbolParams) -> Result<Option<DocumentSymbolResponse>, Failure> {
    Ok(Some(DocumentSymbolResponse::Nested(engine::symbols(ctx.doc(&p.text_document.uri)?))))
}
