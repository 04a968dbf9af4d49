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

/// The binary's `--help` for `args` (empty: `skel --help`), as docs/console blocks run it.
fn help_of(sub: Option<&str>) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skel"));
    cmd.args(sub).arg("--help").env("NO_COLOR", "1").env("COLUMNS", "100");
    let out = cmd.output().expect("skel runs");
    assert!(out.status.success(), "skel {sub:?} --help failed");
    String::from_utf8(out.stdout).expect("the help is UTF-8")
}

/// The subcommands `skel --help` lists (but `help`).
fn subcommands() -> Vec<String> {
    let top = help_of(None);
    let list = top.split("Commands:\n").nth(1).expect("skel --help lists its commands");
    list.lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// The ```console block of docs/cli.md that runs `$ skel [SUB] --help`: what it shows.
fn documented_help(cli: &str, sub: Option<&str>) -> Option<String> {
    let command = match sub {
        Some(s) => format!("$ skel {s} --help"),
        None => "$ skel --help".to_string(),
    };
    blocks(cli, "console").into_iter().find_map(|b| {
        let mut lines = b.lines();
        (lines.next() == Some(command.as_str())).then(|| lines.map(|l| format!("{}\n", l.trim_end())).collect())
    })
}

fn trimmed(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(0, |i| i + 1);
    lines[..end].iter().map(|l| format!("{l}\n")).collect()
}

/// docs/cli.md documents `skel --help` and every subcommand's `--help` (exit codes included) in a
/// console block, and each block is what the binary prints. (tests/docs_console.rs runs them
/// too; this test is the one that finds a subcommand without its block.)
#[test]
fn cli_md_shows_every_commands_help() {
    let cli = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    let subs = subcommands();
    assert!(subs.len() >= 7, "skel --help lists its commands: {subs:?}");
    let mut problems = Vec::new();
    for sub in std::iter::once(None).chain(subs.iter().map(|s| Some(s.as_str()))) {
        let binary = trimmed(&help_of(sub));
        match documented_help(&cli, sub) {
            None => problems.push(format!("docs/cli.md has no `$ skel {} --help` block", sub.unwrap_or(""))),
            Some(doc) if trimmed(&doc) != binary => problems.push(format!(
                "docs/cli.md's `skel {} --help` differs from the binary's:\n--- the doc\n{}--- the binary\n{binary}",
                sub.unwrap_or(""),
                trimmed(&doc)
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The "Exit codes: ..." a section of docs/cli.md says in its prose is what the command's
/// `--help` says, word for word (docs/cli.md once gave `skel run` exit 2 for input errors while
/// the binary exits 1).
#[test]
fn cli_md_exit_codes_in_prose_are_the_helps() {
    let cli = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    // The sentence that starts at "Exit codes:" and ends at the first ". " (or the end).
    let sentence = |text: &str| -> Option<String> {
        let from = text.find("Exit codes:")?;
        let rest = words(&text[from..]);
        Some(rest.find(". ").map_or(rest.clone(), |end| rest[..=end].to_string()))
    };
    let mut checked = 0;
    for section in cli.split("\n## skel ").skip(1) {
        let sub = section.split_whitespace().next().unwrap();
        // The prose: the section without its code blocks.
        let mut prose = String::new();
        let mut in_block = false;
        for line in section.lines() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
            } else if !in_block {
                prose.push_str(line);
                prose.push('\n');
            }
        }
        let Some(said) = sentence(&prose) else { continue };
        let help = help_of(Some(sub));
        let helps = sentence(&help).unwrap_or_else(|| panic!("`skel {sub} --help` gives no exit codes"));
        assert_eq!(said, helps, "docs/cli.md's skel {sub} section, against its --help");
        checked += 1;
    }
    assert!(checked >= 1, "no section of docs/cli.md restates its exit codes");
}
