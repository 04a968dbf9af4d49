//! skel-grammar: the SKEL grammar (`skel.pest`), the AST with spans, and parse diagnostics.
//! pest stops here: nothing outside this crate sees a pest `Pair` or `Rule`.

pub mod ast;
mod error;
pub mod lex;
mod lower;
mod print;
pub mod registry;

pub use error::ParseError;
pub use lower::{code_chars, parse, parse_path, Parsed, MAX_DEPTH};
pub use print::ast_to_string;
mod format;
pub use format::{format, FormatError};
