//! Each compiler stage's text form for representative scripts: one `.skel` file per case in
//! `tests/stages/`, one snapshot with the AST, and the IR and bytecode before and after the
//! optimizer.

#[test]
fn stages() {
    insta::glob!("stages/*.skel", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let compiled = skel::compile(&src).expect("compiles");
        let unoptimized = skel::compile_with(&src, skel::OptLevel::None, &skel::Folder::current()).expect("compiles");
        insta::assert_snapshot!(format!(
            "{src}\n---- ast\n{}---- ir (--no-opt)\n{}---- ir\n{}---- bytecode (--no-opt)\n{}---- bytecode\n{}",
            skel::ast_to_string(&compiled.ast),
            unoptimized.ir.display(),
            compiled.ir.display(),
            unoptimized.program.disassemble(),
            compiled.program.disassemble()
        ));
    });
}
