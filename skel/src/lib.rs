//! skel: the SKEL compiler and VM. `parse` (from skel-grammar) -> `check` -> IR -> `emit` ->
//! verified bytecode -> `Vm::run` per manifest; `transform` streams a trace through a program.
//! No I/O here but through the trace crate's reader and writer traits.

pub mod bytecode;
mod check;
mod emit;
pub mod explore;
pub mod ir;
pub mod kube;
pub mod lazy;
pub mod node;
pub mod opt;
pub mod stream;
pub mod transform;
pub mod upgrade;
mod vm;

use miette::Diagnostic;
pub use skel_grammar::{ast, ast_to_string, parse, parse_path, ParseError};
use thiserror::Error;

pub use crate::bytecode::Program;
pub use crate::check::{check, CheckError, Checked};
pub use crate::emit::emit;
pub use crate::kube::typed::TypedFieldError;
pub use crate::node::Node;
pub use crate::opt::{optimize, OptLevel};
pub use crate::vm::{ObjectOutcome, Vm, VmError, VmErrorKind};

/// Any diagnostic found before the script runs.
#[derive(Debug, Clone, PartialEq, Error, Diagnostic)]
pub enum CompileError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Check(#[from] CheckError),
    #[error("the compiler produced invalid bytecode: {0}")]
    #[diagnostic(code(skel::internal::bytecode), help("this is a bug in skel; please report it with the script"))]
    Internal(String),
}

impl CompileError {
    pub fn is_error(&self) -> bool {
        match self {
            CompileError::Check(c) => c.is_error(),
            _ => true,
        }
    }
}

/// Every stage's output for one script.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub ast: ast::Script,
    pub ir: ir::Script,
    pub program: Program,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<CompileError>,
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(CompileError::is_error)
    }
}

/// Runs the whole pipeline with every optimization. The program is only meaningful when
/// `has_errors()` is false.
pub fn compile(src: &str) -> Compiled {
    compile_with(src, OptLevel::Full)
}

/// Runs the whole pipeline at the given optimization level.
pub fn compile_with(src: &str, level: OptLevel) -> Compiled {
    compile_in(src, level, None)
}

/// `compile_with` for a script in folder `base` (where `insert(..., file("x"))` looks).
pub fn compile_in(src: &str, level: OptLevel, base: Option<&std::path::Path>) -> Compiled {
    let parsed = parse(src);
    let checked = check::check_in(&parsed.script, base);
    let mut diagnostics: Vec<CompileError> = parsed.errors.into_iter().map(CompileError::Parse).collect();
    diagnostics.extend(checked.diagnostics.into_iter().map(CompileError::Check));
    for s in &checked.script.statements {
        if !opt::fold(&mut s.clone()) {
            diagnostics.push(CompileError::Check(CheckError::NeverMatches { span: s.span }));
        }
    }
    diagnostics.sort_by_key(|d| match d {
        CompileError::Parse(p) => p.span().start,
        CompileError::Check(c) => miette::Diagnostic::labels(c).and_then(|mut l| l.next()).map_or(0, |l| l.offset()),
        CompileError::Internal(_) => usize::MAX,
    });
    let ir = optimize(checked.script, level);
    let mut program = emit(&ir);
    if level == OptLevel::Full {
        opt::share_prefixes(&mut program);
    }
    if let Err(e) = program.verify() {
        diagnostics.push(CompileError::Internal(e.to_string()));
    }
    Compiled { ast: parsed.script, ir, program, diagnostics }
}
