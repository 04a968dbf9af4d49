//! skel-lsp: the SKEL language server (`skel lsp`), over stdio. Diagnostics, hover, completion,
//! go to definition, references, rename, formatting, semantic tokens and document symbols, all
//! from the compiler's own stages; field paths and their values from a trace when one is
//! configured (`skel.trace`, or a `# trace: FILE` comment at the top of a script).
//!
//! Three layers: the transport (`transport`: the protocol's framing), the protocol layer
//! (`server`: the main loop, documents, cancellation; `handlers`: one per request; `files`
//! and `traces`: what is read for the engine) and the engine (`engine`: every answer, from a
//! document's text and analysis and a trace's index, without I/O).

pub mod engine;
pub mod files;
mod handlers;
mod server;
pub mod text;
mod traces;
mod transport;

pub use server::{file_path, serve};
pub use traces::TRACE_LIMIT;
pub use transport::{serve_io, MAX_BODY, MAX_HEADER_LINE};

/// Serves on stdin and stdout until the client says `exit` (or its input ends). `Err` says
/// why the exit is not a clean one (`exit` without `shutdown`): the protocol's exit code 1.
pub fn run_stdio() -> Result<(), String> {
    serve_io(std::io::stdin(), std::io::stdout())
}
