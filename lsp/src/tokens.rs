//! Semantic tokens come from the language's one lexer, in skel-grammar.

pub use skel_grammar::lex::{lex, TYPES};
