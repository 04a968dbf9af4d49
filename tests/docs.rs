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
            if let Err(r) = skel::compile(&block) {
                panic!("{}: block does not compile:\n{block}\n{:?}", file.display(), r.diagnostics);
            }
            count += 1;
        }
        for block in blocks(&text, "skel-error") {
            assert!(skel::compile(&block).is_err(), "{}: block should fail:\n{block}", file.display());
            count += 1;
        }
    }
    assert!(count > 0, "no skel blocks found in the docs");
}

/// The lines of the first Markdown table after the first HTML comment of `text` that holds
/// `needle` (empty when there is none).
fn table_after_comment<'t>(text: &'t str, needle: &str) -> Vec<&'t str> {
    let mut from = 0;
    while let Some(open) = text[from..].find("<!--").map(|i| from + i) {
        let close = text[open..].find("-->").map_or(text.len(), |i| open + i + 3);
        if text[open..close].contains(needle) {
            let rest = text[close..].lines();
            return rest.skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
        }
        from = close;
    }
    Vec::new()
}

/// The command table of docs/language.md is skel-grammar's registry, row for row.
#[test]
fn the_command_table_in_the_guide_is_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let table = table_after_comment(&text, "registry.rs");
    let expected = skel_grammar::registry::markdown_table();
    assert_eq!(table, expected.lines().collect::<Vec<_>>(), "{}: the command table", path.display());
}

/// The removal table of docs/upgrade-check.md is the data `skel check` uses (the rows of
/// `skel/data/apis.yaml` with a `removed_in`), row for row: the first Markdown table after the
/// comment that names the data file.
#[test]
fn the_removal_table_in_the_docs_is_the_data() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/upgrade-check.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let table = table_after_comment(&text, "apis.yaml");
    assert!(!table.is_empty(), "{}: no table after a comment naming apis.yaml", path.display());
    let cell = |c: &str| c.trim().trim_matches('`').to_string();
    let rows: Vec<(String, String, String)> = table
        .into_iter()
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').collect();
            (cell(cells.first().unwrap_or(&"")), cell(cells.get(1).unwrap_or(&"")), cell(cells.get(2).unwrap_or(&"")))
        })
        .collect();
    let data: Vec<(String, String, String)> =
        skel::upgrade::removals().iter().map(|r| (r.removed_in.clone(), r.api_version(), r.kind.clone())).collect();
    assert_eq!(rows, data, "regenerate the table of {} from skel/data/apis.yaml", path.display());
}

/// The rule catalogue of docs/upgrade-check.md is what `skel check --list-rules` prints
/// (`skel::upgrade::rule_catalogue()`), line for line: the Markdown table after the comment that
/// names `skel check --list-rules`.
#[test]
fn the_rule_catalogue_in_the_docs_is_the_data() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/upgrade-check.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let table = table_after_comment(&text, "skel check --list-rules");
    assert!(!table.is_empty(), "{}: no table after a comment naming `skel check --list-rules`", path.display());
    let catalogue = skel::upgrade::rule_catalogue();
    let expected: Vec<&str> = catalogue.lines().collect();
    for (n, (got, want)) in table.iter().zip(&expected).enumerate() {
        assert_eq!(
            got,
            want,
            "{}: line {} of the rule table differs from `skel check --list-rules`; regenerate the table: \
             replace it with the output of `cargo run -q -- check --list-rules`",
            path.display(),
            n + 1
        );
    }
    assert_eq!(
        table.len(),
        expected.len(),
        "{}: the rule table has {} lines, `skel check --list-rules` prints {}; regenerate the table: replace it \
         with the output of `cargo run -q -- check --list-rules`",
        path.display(),
        table.len(),
        expected.len()
    );
}
