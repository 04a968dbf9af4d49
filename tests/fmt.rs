//! `skel fmt`: the formatter keeps what every script means (the same bytecode, spans aside, and
//! the same diagnostics), and the subcommand as a user runs it: in place, `--check`, stdin,
//! scripts that do not parse, files that cannot be read.
//!
//! The style rules themselves are tested in `grammar/tests/format.rs`.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{run, skel};

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A script that is not in the canonical style, and the same script formatted.
const MESSY: &str = "  # Get the trace ready for 1.25.\n\n\n\
modify( kind==\"CronJob\"&&apiVersion==\"batch/v1beta1\" ,apiVersion=\"batch/v1\" );   # moved in 1.21\n\
remove(status);remove($x:=spec.template.spec.containers[*].env[*]|exists($x.valueFrom.secretKeyRef)\n\
       && $x.name != \"KEEP\" && $x.name != \"ALSO_KEEP\",   # keep these two\n   $x);\n";
const TIDY: &str = "remove(status);\nremove(metadata.annotations.*);\n";

/// A temp folder holding `files` (name, text).
fn workdir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(tmp.path().join(name), text).unwrap();
    }
    tmp
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap()
}

/// The folder's entries, sorted (to see that no temp file is left behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    names.sort();
    names
}

fn skel_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            skel_files_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "skel") {
            out.push(p);
        }
    }
}

/// Every SKEL script file of the repository and the conformance corpus.
fn script_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples", "tests/data", "skel/tests", "../shared/conformance"] {
        skel_files_under(&root().join(dir), &mut files);
    }
    files
}

/// What a compiled script says: its diagnostics (code and message) and, when it compiles, its
/// bytecode optimized and not, without spans.
fn meaning(src: &str, base: Option<&Path>) -> String {
    let mut out = String::new();
    for level in [skel::OptLevel::Full, skel::OptLevel::None] {
        let compiled = skel::compile_with(src, level, &skel::Folder::new(base));
        let diagnostics = match &compiled {
            Ok(c) => &c.warnings,
            Err(r) => &r.diagnostics,
        };
        for d in diagnostics {
            let code = miette::Diagnostic::code(d).map(|c| c.to_string()).unwrap_or_default();
            out.push_str(&format!("{code}: {d}\n"));
        }
        if let Ok(compiled) = &compiled {
            out.push_str(&compiled.program.disassemble_without_spans());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. The meaning is kept

#[test]
fn formatting_keeps_the_bytecode_and_the_diagnostics_of_every_script() {
    let mut checked = 0;
    let mut compiled = 0;
    let mut seen = std::collections::HashSet::new();
    for path in script_files() {
        let Ok(src) = fs::read_to_string(&path) else { continue };
        if !seen.insert(src.clone()) {
            continue;
        }
        let Ok(formatted) = skel_grammar::format(&src) else { continue };
        let base = path.parent();
        let before = meaning(&src, base);
        let after = meaning(&formatted, base);
        assert_eq!(after, before, "{}:\n--- formatted:\n{formatted}", path.display());
        checked += 1;
        compiled += usize::from(skel::compile_with(&src, skel::OptLevel::Full, &skel::Folder::new(base)).is_ok());
    }
    eprintln!("{checked} scripts formatted, {compiled} of them compile: same bytecode and diagnostics");
    assert!(checked >= 80 && compiled >= 60, "{checked} scripts, {compiled} compile");
}

#[test]
fn spans_are_removed_from_the_disassembly_only() {
    let program = skel::compile("modify(@t >= 5s, x = 1);").expect("compiles").program;
    let (with, without) = (program.disassemble(), program.disassemble_without_spans());
    let span = format!(" @{}", program.stmts[0].span);
    assert!(with.contains(&span), "{with}");
    assert_eq!(without, with.replace(&span, ""));
    assert!(without.contains("time >= start+5s"), "{without}");
}

// ---------------------------------------------------------------------------------------------
// 2. In place

#[test]
fn rewrites_scripts_in_place_and_prints_nothing() {
    let tmp = workdir(&[("messy.skel", MESSY), ("tidy.skel", TIDY)]);
    let r = run(skel(tmp.path()).args(["fmt", "messy.skel", "tidy.skel"]));
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let formatted = read(tmp.path(), "messy.skel");
    insta::assert_snapshot!("messy_formatted", formatted);
    assert_eq!(formatted, skel_grammar::format(MESSY).unwrap());
    assert_eq!(read(tmp.path(), "tidy.skel"), TIDY);
    assert_eq!(listing(tmp.path()), ["messy.skel", "tidy.skel"], "no temp file left");
    // Formatted once, formatted for good.
    let r = run(skel(tmp.path()).args(["fmt", "--check", "messy.skel", "tidy.skel"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[cfg(unix)]
#[test]
fn a_formatted_script_is_not_written() {
    use std::os::unix::fs::MetadataExt;
    let tmp = workdir(&[("tidy.skel", TIDY)]);
    let before = fs::metadata(tmp.path().join("tidy.skel")).unwrap();
    let r = run(skel(tmp.path()).args(["fmt", "tidy.skel"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let after = fs::metadata(tmp.path().join("tidy.skel")).unwrap();
    // A rewrite renames a new file over the old one: another inode.
    assert_eq!(after.ino(), before.ino(), "the file was replaced");
    assert_eq!(after.mtime_nsec(), before.mtime_nsec());
}

#[cfg(unix)]
#[test]
fn a_rewritten_script_keeps_its_permissions_and_links() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = workdir(&[("messy.skel", MESSY)]);
    let script = tmp.path().join("messy.skel");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir(tmp.path().join("links")).unwrap();
    std::os::unix::fs::symlink("../messy.skel", tmp.path().join("links/link.skel")).unwrap();
    let r = run(skel(tmp.path()).args(["fmt", "links/link.skel"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let link = fs::symlink_metadata(tmp.path().join("links/link.skel")).unwrap();
    assert!(link.file_type().is_symlink(), "the link is still a link");
    assert_eq!(
        read(tmp.path(), "messy.skel"),
        skel_grammar::format(MESSY).unwrap(),
        "the file it points to is formatted"
    );
    assert_eq!(fs::metadata(&script).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(listing(tmp.path()), ["links", "messy.skel"]);
    assert_eq!(listing(&tmp.path().join("links")), ["link.skel"]);
}

// ---------------------------------------------------------------------------------------------
// 3. --check

#[test]
fn check_names_the_scripts_that_would_change_and_writes_nothing() {
    let tmp = workdir(&[("messy.skel", MESSY), ("tidy.skel", TIDY), ("crlf.skel", "remove(status);\r\n")]);
    let r = run(skel(tmp.path()).args(["fmt", "--check", "messy.skel", "tidy.skel", "crlf.skel"]));
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "would reformat messy.skel\nwould reformat crlf.skel\n");
    assert_eq!(read(tmp.path(), "messy.skel"), MESSY);
    assert_eq!(read(tmp.path(), "crlf.skel"), "remove(status);\r\n");
    assert_eq!(listing(tmp.path()), ["crlf.skel", "messy.skel", "tidy.skel"]);

    let r = run(skel(tmp.path()).args(["fmt", "--check", "tidy.skel"]));
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn check_passes_on_the_formatted_examples() {
    let r = run(skel(root()).args(["fmt", "--check", "examples/migrate.skel", "examples/sanitize.skel"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

// ---------------------------------------------------------------------------------------------
// 4. stdin

#[test]
fn stdin_is_formatted_to_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(skel(tmp.path()).args(["fmt", "-"]).write_stdin(MESSY));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(r.stdout, skel_grammar::format(MESSY).unwrap());
    // Formatted or not, stdin always goes to stdout.
    let r = run(skel(tmp.path()).args(["fmt", "-"]).write_stdin(TIDY));
    assert_eq!((r.code, r.stdout.as_str()), (0, TIDY));
    assert!(listing(tmp.path()).is_empty());

    let r = run(skel(tmp.path()).args(["fmt", "--check", "-"]).write_stdin(MESSY));
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (1, "", "would reformat <stdin>\n"));
    let r = run(skel(tmp.path()).args(["fmt", "--check", "-"]).write_stdin(TIDY));
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

// ---------------------------------------------------------------------------------------------
// 4b. Folders: every `.skel` file under one, as `skel check` walks folders

/// A folder of scripts: messy ones at the top and in a subfolder, a tidy one, a file that is
/// not a script (not touched), and a nested empty folder.
fn folder_of_scripts() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scripts");
    fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
    fs::write(dir.join("b.skel"), MESSY).unwrap();
    fs::write(dir.join("a.skel"), TIDY).unwrap();
    fs::write(dir.join("nested/deeper/c.skel"), "remove( status ) ;\n").unwrap();
    fs::write(dir.join("nested/notes.txt"), "remove( status ) ;\n").unwrap();
    tmp
}

#[test]
fn check_on_a_folder_names_every_script_under_it_in_order() {
    let tmp = folder_of_scripts();
    let r = run(skel(tmp.path()).args(["fmt", "--check", "scripts"]));
    assert_eq!(r.code, 1, "stderr:\n{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "would reformat scripts/b.skel\nwould reformat scripts/nested/deeper/c.skel\n");
    assert_eq!(read(&tmp.path().join("scripts"), "b.skel"), MESSY, "--check writes nothing");

    // A folder and a file together, and `./`: the same walk.
    let r = run(skel(tmp.path().join("scripts").as_path()).args(["fmt", "--check", "./nested", "a.skel"]));
    assert_eq!((r.code, r.stderr.as_str()), (1, "would reformat ./nested/deeper/c.skel\n"));
}

#[test]
fn a_folder_is_formatted_in_place() {
    let tmp = folder_of_scripts();
    let dir = tmp.path().join("scripts");
    let r = run(skel(tmp.path()).args(["fmt", "scripts"]));
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    assert_eq!(read(&dir, "b.skel"), skel_grammar::format(MESSY).unwrap());
    assert_eq!(read(&dir, "a.skel"), TIDY);
    assert_eq!(read(&dir, "nested/deeper/c.skel"), "remove(status);\n");
    assert_eq!(read(&dir, "nested/notes.txt"), "remove( status ) ;\n", "only .skel files are scripts");
    assert_eq!(listing(&dir.join("nested/deeper")), ["c.skel"], "no temp file is left");

    let r = run(skel(tmp.path()).args(["fmt", "--check", "scripts"]));
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn a_folder_with_a_broken_script_formats_the_others() {
    let tmp = folder_of_scripts();
    let dir = tmp.path().join("scripts");
    fs::write(dir.join("nested/broken.skel"), "modify(kind == , x = 1);\n").unwrap();
    let r = run(skel(tmp.path()).args(["fmt", "scripts"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("scripts/nested/broken.skel:1:"), "{}", r.stderr);
    assert_eq!(read(&dir, "b.skel"), skel_grammar::format(MESSY).unwrap());
    assert_eq!(read(&dir, "nested/deeper/c.skel"), "remove(status);\n");
    assert_eq!(read(&dir, "nested/broken.skel"), "modify(kind == , x = 1);\n");
}

#[test]
fn a_folder_without_scripts_is_an_error() {
    let tmp = folder_of_scripts();
    let r = run(skel(tmp.path()).args(["fmt", "--check", "scripts/empty"]));
    assert_eq!((r.code, r.stdout.as_str()), (1, ""));
    insta::assert_snapshot!("folder_without_scripts", r.stderr);
}

/// What a folder holds but is not a regular file, and a link back up, are skipped with a
/// warning (as `skel check DIR` does); every script is still taken once.
#[cfg(unix)]
#[test]
fn a_folder_walk_skips_fifos_and_loops() {
    let tmp = folder_of_scripts();
    let dir = tmp.path().join("scripts");
    std::os::unix::fs::symlink("..", dir.join("nested/up")).unwrap();
    std::os::unix::fs::symlink("b.skel", dir.join("link.skel")).unwrap();
    let fifo = std::process::Command::new("mkfifo").arg(dir.join("nested/pipe.skel")).status();
    if !fifo.is_ok_and(|s| s.success()) {
        // Past the test harness's capture, so that it shows.
        let _ = writeln!(std::io::stderr(), "SKIPPED a_folder_walk_skips_fifos_and_loops: mkfifo failed");
        return;
    }
    let r = run(skel(tmp.path()).args(["fmt", "--check", "scripts"]));
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("folder_walk_warnings", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// 5. Errors: exit 1, the file left as it was, the other files still done

#[test]
fn a_script_that_does_not_parse_is_reported_and_left_alone() {
    let bad = "remove(status) remove(spec);\ndelete(*);;\n";
    let tmp = workdir(&[("bad.skel", bad), ("messy.skel", MESSY)]);
    let r = run(skel(tmp.path()).args(["fmt", "bad.skel", "messy.skel"]));
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    insta::assert_snapshot!("parse_errors", r.stderr);
    assert_eq!(read(tmp.path(), "bad.skel"), bad);
    assert_eq!(read(tmp.path(), "messy.skel"), skel_grammar::format(MESSY).unwrap(), "the good script is formatted");

    let r = run(skel(tmp.path()).args(["fmt", "--check", "bad.skel"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("skel::parse::syntax") && !r.stderr.contains("would reformat"), "{}", r.stderr);
}

#[test]
fn a_script_that_does_not_check_is_still_formatted() {
    // Formatting needs a script that parses, not one that compiles.
    let tmp = workdir(&[("undefined.skel", "remove( $x.foo );")]);
    let r = run(skel(tmp.path()).args(["fmt", "undefined.skel"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(read(tmp.path(), "undefined.skel"), "remove($x.foo);\n");
}

#[test]
fn unreadable_scripts_are_reported() {
    let tmp = workdir(&[("messy.skel", MESSY)]);
    fs::write(tmp.path().join("latin1.skel"), b"# caf\xe9\nremove(status);\n").unwrap();
    let r = run(skel(tmp.path()).args(["fmt", "missing.skel", "latin1.skel", "messy.skel"]));
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("unreadable", r.stderr);
    assert_eq!(read(tmp.path(), "messy.skel"), skel_grammar::format(MESSY).unwrap());
    assert_eq!(listing(tmp.path()), ["latin1.skel", "messy.skel"]);
}

#[cfg(unix)]
#[test]
fn a_script_that_cannot_be_written_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("messy.skel"), MESSY).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes anywhere: nothing to test then.
    let writable = fs::write(dir.join("probe"), "").is_ok();
    if !writable {
        let r = run(skel(tmp.path()).args(["fmt", "ro/messy.skel"]));
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("skel::io::write"), "{}", r.stderr);
        assert_eq!(read(&dir, "messy.skel"), MESSY);
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(skel(tmp.path()).args(["fmt"]));
    assert_eq!(r.code, 2, "a file is required:\n{}", r.stderr);
    let r = run(skel(tmp.path()).args(["fmt", "-", "-"]).write_stdin(TIDY));
    assert_eq!((r.code, r.stdout.as_str()), (2, ""));
    insta::assert_snapshot!("stdin_twice", r.stderr);
}

#[test]
fn help_text() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(skel(tmp.path()).args(["fmt", "--help"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    insta::assert_snapshot!("help_fmt", r.stdout);
}

/// The example scripts are in the canonical style (what a newcomer copies should be).
#[test]
fn the_examples_are_formatted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts: Vec<String> = fs::read_dir(dir.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "skel"))
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 3, "{scripts:?}");
    let r = run(skel(dir).arg("fmt").arg("--check").args(&scripts));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "run `skel fmt examples/*.skel`");
}
