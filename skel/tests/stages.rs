//! Each compiler stage's text form for representative scripts: one `.skel` file per case in
//! `tests/stages/`, one snapshot with the AST, the IR and the bytecode.

#[test]
fn stages() {
    insta::glob!("stages/*.skel", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let compiled = skel::compile(&src);
        assert!(!compiled.has_errors(), "{:?}", compiled.diagnostics);
        insta::assert_snapshot!(format!(
            "{src}\n---- ast\n{}---- ir\n{}---- bytecode\n{}",
            skel::ast_to_string(&compiled.ast),
            compiled.ir.display(),
            compiled.program.disassemble()
        ));
    });
}
