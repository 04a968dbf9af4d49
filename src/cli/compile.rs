//! `skel compile`: check a script, or print one stage of the compiler's output.

use super::{files, report, CompileArgs, Emit, Failed};

pub fn run(args: CompileArgs) -> Result<(), Failed> {
    let (name, src) = files::read_script(&args.script)?;
    let compiled = skel::compile_with(&src, args.opt_level(), &skel::Folder::new(files::script_folder(&args.script)));
    let diagnostics = match &compiled {
        Ok(c) => &c.warnings,
        Err(r) => &r.diagnostics,
    };
    let source = report::Source::new(&name, &src);
    for d in diagnostics {
        source.emit(d);
    }
    let compiled = compiled.map_err(|_| Failed::Error)?;
    match args.emit {
        None => {}
        Some(Emit::Ast) => print!("{}", skel::ast_to_string(&compiled.ast)),
        Some(Emit::Ir) => print!("{}", compiled.ir.display()),
        Some(Emit::Bytecode) => print!("{}", compiled.program.disassemble()),
    }
    Ok(())
}
