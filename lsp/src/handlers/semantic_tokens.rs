use lsp_types::{SemanticTokens, SemanticTokensParams, SemanticTokensResult};

use super::{Context, Failure};
use crate::engine;

pub fn semantic_tokens(ctx: &Context, p: SemanticTokensParams) -> Result<Option<SemanticTokensResult>, Failure> {
    let data = engine::semantic_tokens(ctx.doc(&p.text_document.uri)?);
    Ok(Some(SemanticTokensResult::Tokens(SemanticTokens { result_id: None, data })))
}
