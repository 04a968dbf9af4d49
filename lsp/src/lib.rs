//! skel-lsp: the SKEL language server (`skel lsp`), over stdio. Diagnostics, hover, completion,
//! go to definition, references, rename, formatting, semantic tokens and document symbols, all
//! from the compiler's own stages; field paths and their values from a trace when one is
//! configured (`skel.trace`, or a `# trace: FILE` comment at the top of a script).

pub mod analysis;
mod server;
pub mod text;
mod tokens;

pub use server::{file_path, serve};

/// Serves on stdin and stdout until the client says `exit`.
pub fn run_stdio() -> Result<(), String> {
    let (conn, io) = lsp_server::Connection::stdio();
    let served = serve(&conn).map_err(|e| e.to_string());
    drop(conn);
    io.join().map_err(|e| e.to_string())?;
    served
}
