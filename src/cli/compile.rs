//! `skel compile`: check a script, or print one stage of the compiler's output.

use super::{files, report, CompileArgs, Emit, Failed};

pub fn run(args: CompileArgs) -> Result<(), Failed> {
    let (name, src) = files::read_script(&args.script)?;
    let compiled = skel::compile_in(&src, args.opt_level(), files::script_folder(&args.script));
    let failed = compiled.has_errors();
    let source = report::Source::new(&name, &src);
    for d in compiled.diagnostics {
        source.emit(&d);
    }
    if failed {
        return Err(Failed::Error);
    }
    match args.emit {
        None => {}
        Some(Emit::Ast) => print!("{}", skel::ast_to_string(&compiled.ast)),
        Some(Emit::Ir) => print!("{}", compiled.ir.display()),
        Some(Emit::Bytecode) => print!("{}", compiled.program.disassemble()),
    }
    Ok(())
}
