//! `skel compile`: check a script, or print one stage of the compiler's output.

use super::report::{Report, Reporter};
use super::{files, CompileArgs, Emit, Failed};

pub fn run(args: CompileArgs, reporter: &Reporter) -> Result<(), Failed> {
    let (name, src) = files::read_script(&args.script)?;
    let mut compiled = match skel::compile_with(&src, args.opt_level(), &files::insert_files(&args.script)) {
        Ok(compiled) => compiled,
        Err(r) => return Err(Failed::script(name, src, r.diagnostics)),
    };
    if !compiled.warnings.is_empty() {
        reporter.report(&Report::script(name, src, std::mem::take(&mut compiled.warnings)));
    }
    match args.emit {
        None => {}
        Some(Emit::Ast) => print!("{}", skel::ast_to_string(&compiled.ast)),
        Some(Emit::Ir) => print!("{}", compiled.ir.display()),
        Some(Emit::Bytecode) => print!("{}", compiled.program.disassemble()),
    }
    Ok(())
}
