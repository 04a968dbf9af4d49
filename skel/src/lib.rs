//! skel: the SKEL compiler and VM. `parse` (from skel-grammar) -> `typecheck` -> IR -> `optimize`
//! -> `emit` -> verified bytecode -> `Vm::run` per manifest; `stream` runs a program over a
//! trace. `upgrade` is `skel check`'s upgrade checker (Kubernetes knowledge in `kube`). No I/O
//! here but through the trace crate's readers and writers and the [`Files`] a caller gives.

pub mod bytecode;
mod emit;
pub mod explore;
pub mod ir;
pub mod kube;
pub mod lazy;
pub mod node;
pub mod opt;
pub mod stream;
pub mod transform;
mod typecheck;
pub mod upgrade;
mod vm;

use miette::Diagnostic;
pub use skel_grammar::{ast, ast_to_string, parse, parse_path, ParseError};
use thiserror::Error;

pub use crate::bytecode::Program;
pub use crate::emit::emit;
pub use crate::kube::typed::TypedFieldError;
pub use crate::node::Node;
pub use crate::opt::{optimize, OptLevel};
pub use crate::typecheck::{typecheck, typecheck_with, TypeChecked, TypeError};
pub use crate::vm::{ObjectOutcome, Vm, VmError, VmErrorKind};

/// Any diagnostic found before the script runs.
#[derive(Debug, Clone, PartialEq, Error, Diagnostic)]
pub enum CompileError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Type(#[from] TypeError),
    #[error("the compiler produced invalid bytecode: {0}")]
    #[diagnostic(code(skel::internal::bytecode), help("this is a bug in skel; please report it with the script"))]
    Internal(String),
}

impl CompileError {
    pub fn is_error(&self) -> bool {
        match self {
            CompileError::Type(c) => c.is_error(),
            _ => true,
        }
    }
}

/// Where a script's `insert(..., file("x"))` manifests come from. The compiler does no I/O
/// of its own: the CLI reads a script's folder ([`Folder`]), the language server its cached
/// copies of the files.
pub trait Files {
    /// How a diagnostic names the file a script calls `path`.
    fn name(&self, path: &str) -> String;
    /// The file's text, or why it cannot be had (a reason that fits after "cannot be read: ").
    fn read(&self, path: &str) -> Result<String, String>;
}

/// Files read from a folder (the script's), or from the working directory: bounded
/// ([`skel_trace::fsio::SOURCE_LIMIT`]), and a FIFO or a device is refused rather than waited
/// on.
#[derive(Debug, Clone, Default)]
pub struct Folder(Option<std::path::PathBuf>);

impl Folder {
    /// Paths relative to `base`.
    pub fn new(base: Option<&std::path::Path>) -> Folder {
        Folder(base.map(std::path::Path::to_path_buf))
    }

    /// Paths relative to the working directory.
    pub fn current() -> Folder {
        Folder(None)
    }

    /// Where the file a script calls `path` is.
    pub fn path(&self, path: &str) -> std::path::PathBuf {
        self.0.as_ref().map_or_else(|| std::path::PathBuf::from(path), |b| b.join(path))
    }
}

impl Files for Folder {
    fn name(&self, path: &str) -> String {
        self.path(path).display().to_string()
    }

    fn read(&self, path: &str) -> Result<String, String> {
        use skel_trace::fsio;
        let bytes =
            fsio::read_limited(&self.path(path), fsio::SOURCE_LIMIT, fsio::Special::Refuse).map_err(|e| match e {
                fsio::FileReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => "no such file".to_string(),
                fsio::FileReadError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    "permission denied".to_string()
                }
                e => e.to_string(),
            })?;
        String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
    }
}

/// What the front of the compiler says about a script, without making a program: its syntax
/// tree, its typed IR and every diagnostic. The language server answers from this on every
/// keystroke.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub ast: ast::Script,
    /// The statements without errors, typed (not optimized).
    pub ir: ir::Script,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<CompileError>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(CompileError::is_error)
    }
}

/// Parses and checks a script (no optimizer, no bytecode).
pub fn analyze(src: &str, files: &dyn Files) -> Analysis {
    let parsed = parse(src);
    let checked = typecheck::typecheck_with(&parsed.script, files);
    let mut diagnostics: Vec<CompileError> = parsed.errors.into_iter().map(CompileError::Parse).collect();
    diagnostics.extend(checked.diagnostics.into_iter().map(CompileError::Type));
    for s in &checked.script.statements {
        if !opt::fold(&mut s.clone()) {
            diagnostics.push(CompileError::Type(TypeError::NeverMatches { span: s.span }));
        }
    }
    diagnostics.sort_by_key(|d| match d {
        CompileError::Parse(p) => p.span().start,
        CompileError::Type(c) => miette::Diagnostic::labels(c).and_then(|mut l| l.next()).map_or(0, |l| l.offset()),
        CompileError::Internal(_) => usize::MAX,
    });
    Analysis { ast: parsed.script, ir: checked.script, diagnostics }
}

/// A script compiled: every stage's output, and its warnings.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub ast: ast::Script,
    pub ir: ir::Script,
    /// The verified program.
    pub program: Program,
    /// Warnings, in source order (a compiled script has no errors).
    pub warnings: Vec<CompileError>,
}

/// A script that does not compile: its syntax tree (as far as it parsed) and every
/// diagnostic, errors and warnings, in source order; at least one is an error.
#[derive(Clone)]
pub struct Rejected {
    pub ast: ast::Script,
    pub diagnostics: Vec<CompileError>,
}

/// The diagnostics (a test's `expect` shows them, not the syntax tree).
impl std::fmt::Debug for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rejected").field("diagnostics", &self.diagnostics).finish_non_exhaustive()
    }
}

/// Compiles a script with every optimization, reading `insert(..., file("x"))` files from the
/// working directory.
pub fn compile(src: &str) -> Result<Compiled, Rejected> {
    compile_with(src, OptLevel::Full, &Folder::current())
}

/// Compiles a script at an optimization level, reading its insert files through `files`:
/// the program, or every diagnostic when one is an error (or the bytecode does not verify,
/// which is a bug in skel).
pub fn compile_with(src: &str, level: OptLevel, files: &dyn Files) -> Result<Compiled, Rejected> {
    let Analysis { ast, ir, mut diagnostics } = analyze(src, files);
    if diagnostics.iter().any(CompileError::is_error) {
        return Err(Rejected { ast, diagnostics });
    }
    let ir = optimize(ir, level);
    let mut program = emit(&ir);
    if level == OptLevel::Full {
        opt::share_prefixes(&mut program);
    }
    if let Err(e) = program.verify() {
        diagnostics.push(CompileError::Internal(e.to_string()));
        return Err(Rejected { ast, diagnostics });
    }
    Ok(Compiled { ast, ir, program, warnings: diagnostics })
}
