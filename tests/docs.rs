//! Every ```skel block in README.md and docs/*.md compiles without errors; every ```skel-error
//! block reports at least one error. The docs' examples cannot rot.

use std::path::Path;

fn blocks(text: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```") && trimmed.trim_start_matches('`').trim() == info => {
                current = Some(String::new())
            }
            Some(_) if trimmed.starts_with("```") => out.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

fn doc_files() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        files.extend(
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "md")),
        );
    }
    files.sort();
    files
}

#[test]
fn skel_blocks_compile() {
    let mut count = 0;
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for block in blocks(&text, "skel") {
            let compiled = skel::compile(&block);
            assert!(
                !compiled.has_errors(),
                "{}: block does not compile:\n{block}\n{:?}",
                file.display(),
                compiled.diagnostics
            );
            count += 1;
        }
        for block in blocks(&text, "skel-error") {
            assert!(skel::compile(&block).has_errors(), "{}: block should fail:\n{block}", file.display());
            count += 1;
        }
    }
    assert!(count > 0, "no skel blocks found in the docs");
}
