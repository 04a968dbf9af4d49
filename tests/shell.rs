//! `skel completions SHELL` and `skel man`, run as a user would: the bash script is loaded into a
//! real `bash` and its completion function is called as bash's completion calls it; every
//! shell's script names every subcommand (and is syntax-checked by that shell where it is
//! installed); the man pages are rendered with `man -l` and `groff -man` (whichever are
//! installed) and hold each subcommand's every flag, as `skel SUB --help` lists them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{run, skel};

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "powershell", "elvish"];

/// The program `name` on PATH, if there is one.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The subcommands `skel --help` lists (the `help` pseudo-command included).
fn subcommands(dir: &Path) -> Vec<String> {
    let r = run(skel(dir).arg("--help"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<String> = section(&r.stdout, "Commands:")
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    for known in ["apply", "check", "run", "completions", "man", "help"] {
        assert!(names.iter().any(|n| n == known), "`skel --help` lists no `{known}`:\n{}", r.stdout);
    }
    names
}

/// The lines of a help text's section (`Options:`), up to the next blank line followed by a
/// line that is not indented.
fn section<'t>(text: &'t str, title: &str) -> Vec<&'t str> {
    let mut lines = text.lines().skip_while(|l| l.trim_end() != title).skip(1);
    let mut out = Vec::new();
    for l in lines.by_ref() {
        if !l.is_empty() && !l.starts_with(' ') {
            break;
        }
        out.push(l);
    }
    out
}

/// The long flags a help text's `Options:` lists: `--output` for `  -o, --output <OUTPUT>`.
fn help_flags(help: &str) -> BTreeSet<String> {
    section(help, "Options:")
        .iter()
        .filter(|l| l.starts_with("  ") && l.trim_start().starts_with('-') && l.len() - l.trim_start().len() <= 6)
        .filter_map(|l| l.split([' ', ',']).find(|w| w.starts_with("--")).map(str::to_string))
        .collect()
}

/// Calls the completion function `complete -p skel` names, in a `bash --norc` that sourced
/// `script`, once per command line (the cursor at its end); returns each line's COMPREPLY.
fn bash_complete(bash: &Path, script: &Path, lines: &[&str]) -> Vec<Vec<String>> {
    let mut program = format!(
        "source '{}' || exit 90\nspec=$(complete -p skel) || exit 91\nfn=${{spec#*-F }}; fn=${{fn%% *}}\n",
        script.display()
    );
    for line in lines {
        // COMP_WORDS as bash splits the line; a trailing space starts an empty word.
        let mut words: Vec<String> = line.split_whitespace().map(|w| format!("'{w}'")).collect();
        if line.ends_with(' ') {
            words.push("''".into());
        }
        let cword = words.len() - 1;
        let prev = if cword > 0 { words[cword - 1].clone() } else { "''".into() };
        program.push_str(&format!(
            "COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT={point}; COMPREPLY=()\n\
             \"$fn\" skel {cur} {prev}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"; echo '<end>'\n",
            words = words.join(" "),
            point = line.len(),
            cur = words[cword],
        ));
    }
    let out = Command::new(bash).args(["--norc", "--noprofile", "-c", &program]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "bash failed ({}):\n{stderr}\n{stdout}", out.status);
    let replies: Vec<Vec<String>> = stdout
        .split("<end>\n")
        .map(|r| r.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
        .take(lines.len())
        .collect();
    assert_eq!(replies.len(), lines.len(), "{stdout}");
    replies
}

/// Says on stderr, past the test harness's capture so that it shows, that a check is skipped.
fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

#[test]
fn bash_completes_subcommands_flags_and_values() {
    let Some(bash) = which("bash") else {
        skipped("bash is not installed, so its completion cannot be tried");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let r = run(skel(tmp.path()).args(["completions", "bash"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let script = tmp.path().join("skel.bash");
    std::fs::write(&script, &r.stdout).unwrap();

    let lines = [
        "skel a",
        "skel ",
        "skel c",
        "skel run --dr",
        "skel apply x.skel t.json --in",
        "skel check t.json --format ",
        "skel check t.json --target",
        "skel completions ",
        "skel completions p",
        "skel man --o",
        "skel fmt --ch",
    ];
    let replies = bash_complete(&bash, &script, &lines);
    let reply = |line: &str| -> BTreeSet<&str> {
        let i = lines.iter().position(|l| *l == line).unwrap();
        replies[i].iter().map(String::as_str).collect()
    };
    let set = |words: &[&'static str]| -> BTreeSet<&'static str> { words.iter().copied().collect() };

    assert_eq!(reply("skel a"), set(&["apply"]));
    let all = reply("skel ");
    for sub in subcommands(tmp.path()) {
        assert!(all.contains(sub.as_str()), "`skel <Tab>` does not offer `{sub}`: {all:?}");
    }
    assert!(all.contains("--help") && all.contains("--version"), "{all:?}");
    assert_eq!(reply("skel c"), set(&["check", "compile", "completions"]));
    assert_eq!(reply("skel run --dr"), set(&["--dry-run"]));
    assert_eq!(reply("skel apply x.skel t.json --in"), set(&["--in-place", "--input-format"]));
    assert_eq!(reply("skel check t.json --format "), set(&["text", "json", "sarif", "markdown"]));
    assert_eq!(reply("skel check t.json --target"), set(&["--target-version"]));
    assert!(reply("skel completions ").is_superset(&set(&SHELLS)), "{:?}", reply("skel completions "));
    assert_eq!(reply("skel completions p"), set(&["powershell"]));
    assert_eq!(reply("skel man --o"), set(&["--out"]));
    assert_eq!(reply("skel fmt --ch"), set(&["--check"]));
}

#[test]
fn every_shell_script_names_every_subcommand_and_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let subs = subcommands(tmp.path());
    for shell in SHELLS {
        let r = run(skel(tmp.path()).args(["completions", shell]));
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "skel completions {shell}");
        assert!(r.stdout.lines().count() > 20, "skel completions {shell} is almost empty:\n{}", r.stdout);
        for sub in &subs {
            assert!(r.stdout.contains(sub.as_str()), "skel completions {shell} never names `{sub}`");
        }
        // As each shell spells a long flag: `--dry-run`, or fish's `-l dry-run`.
        for flag in ["dry-run", "target-version", "in-place", "emit", "out", "virtual-nodes"] {
            assert!(r.stdout.contains(flag), "skel completions {shell} never names `--{flag}`");
        }
        // The shell itself parses the script, where it is installed.
        let check: Option<(&str, &[&str])> = match shell {
            "bash" => Some(("bash", &["-n"])),
            "zsh" => Some(("zsh", &["-n"])),
            "fish" => Some(("fish", &["--no-execute"])),
            _ => None,
        };
        if let Some((program, args)) = check {
            match which(program) {
                Some(path) => {
                    let file = tmp.path().join(format!("skel.{shell}"));
                    std::fs::write(&file, &r.stdout).unwrap();
                    let out = Command::new(path).args(args).arg(&file).output().unwrap();
                    assert!(
                        out.status.success() && out.stderr.is_empty(),
                        "{program} {args:?} rejects the script: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                None => skipped(&format!("{program} is not installed; its script is checked only for its names")),
            }
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_that_lists_the_shells() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(skel(tmp.path()).args(["completions", "tcsh"]));
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    insta::assert_snapshot!("unknown_shell", r.stderr);
}

/// Text as a terminal shows it: no overstriking (`X\bX` bold, `_\bX` underline) or SGR escapes,
/// and Unicode hyphens and minus signs back to `-`.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{8}' => {
                out.pop();
            }
            '\u{1b}' => {
                // CSI ... final byte
                if chars.peek() == Some(&'[') {
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\u{2010}' | '\u{2011}' | '\u{2212}' => out.push('-'),
            c => out.push(c),
        }
    }
    out
}

/// A man page renderer: its name, and the command that renders a page.
type Renderer = (&'static str, Box<dyn Fn(&Path) -> Command>);

/// The man page renderers installed: `man -l` and `groff -man -Tutf8`.
fn renderers() -> Vec<Renderer> {
    let mut found: Vec<Renderer> = Vec::new();
    if let Some(man) = which("man") {
        found.push((
            "man -l",
            Box::new(move |page: &Path| {
                let mut c = Command::new(&man);
                c.arg("-l").arg(page).env("MANWIDTH", "80").env("MANPAGER", "cat").env("PAGER", "cat");
                c.env_remove("MAN_KEEP_FORMATTING");
                c
            }),
        ));
    }
    if let Some(groff) = which("groff") {
        found.push((
            "groff -man",
            Box::new(move |page: &Path| {
                let mut c = Command::new(&groff);
                c.args(["-man", "-Tutf8", "-rLL=80n"]).arg(page);
                c
            }),
        ));
    }
    found
}

/// A rendered page's section: the lines under a heading (`OPTIONS`), up to the next heading.
fn page_section<'t>(page: &'t str, heading: &str) -> Vec<&'t str> {
    page.lines()
        .skip_while(|l| l.trim_end() != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// The long flags an OPTIONS section tags: `--output` for `       -o, --output <OUTPUT>`.
fn page_flags(options: &[&str]) -> BTreeSet<String> {
    options
        .iter()
        .filter(|l| l.len() - l.trim_start().len() <= 8 && l.trim_start().starts_with('-'))
        .filter_map(|l| l.split([' ', ',']).find(|w| w.starts_with("--")).map(str::to_string))
        .collect()
}

#[test]
fn man_pages_render_with_every_subcommand_and_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("share/man/man1");
    let r = run(skel(tmp.path()).args(["man", "--out", "share/man/man1"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.starts_with("skel: 10 man pages written to share/man/man1: skel.1 skel-apply.1"), "{}", r.stderr);

    let subs: Vec<String> = subcommands(tmp.path()).into_iter().filter(|s| s != "help").collect();
    let mut expected: BTreeSet<String> = subs.iter().map(|s| format!("skel-{s}.1")).collect();
    expected.insert("skel.1".into());
    let written: BTreeSet<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(written, expected, "one page for skel and one per subcommand, nothing else (no temp file)");

    // Without --out: skel.1 on stdout, the same bytes.
    let r = run(skel(tmp.path()).arg("man"));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(r.stdout, std::fs::read_to_string(out.join("skel.1")).unwrap());
    assert!(r.stdout.contains(".TH skel 1"), "{}", &r.stdout[..r.stdout.len().min(300)]);

    let renderers = renderers();
    if renderers.is_empty() {
        skipped("neither `man` nor `groff` is installed; the pages were written but not rendered");
        return;
    }
    for (renderer, command) in &renderers {
        let render = |file: &str| -> String {
            let o = command(&out.join(file)).output().unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success() && stderr.trim().is_empty(), "{renderer} {file}: {}\n{stderr}", o.status);
            plain(&String::from_utf8(o.stdout).unwrap())
        };
        let page = render("skel.1");
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS"] {
            assert!(page.lines().any(|l| l == heading), "{renderer}: skel.1 has no {heading}:\n{page}");
        }
        let name = page_section(&page, "NAME").join(" ");
        assert!(name.split_whitespace().collect::<Vec<_>>().starts_with(&["skel", "-", "Compile"]), "{name}");
        let listed = page_section(&page, "SUBCOMMANDS").join("\n");
        for sub in &subs {
            assert!(listed.contains(&format!("skel-{sub}(1)")), "{renderer}: skel.1 does not list skel-{sub}(1)");
        }

        let mut example_lines = 0;
        for sub in &subs {
            let file = format!("skel-{sub}.1");
            let page = render(&file);
            for heading in ["NAME", "SYNOPSIS", "OPTIONS"] {
                assert!(page.lines().any(|l| l == heading), "{renderer}: {file} has no {heading}:\n{page}");
            }
            let name: Vec<&str> =
                page_section(&page, "NAME").iter().flat_map(|l| l.split_whitespace()).take(2).collect();
            assert_eq!(name, [format!("skel-{sub}").as_str(), "-"], "{renderer}: {file}'s NAME");
            let synopsis = page_section(&page, "SYNOPSIS").join(" ");
            let words: Vec<&str> = synopsis.split_whitespace().collect();
            assert_eq!(words[..2], ["skel", sub.as_str()], "{renderer}: {file}'s SYNOPSIS: {synopsis}");

            let help = run(skel(tmp.path()).args([sub.as_str(), "--help"]));
            assert_eq!(help.code, 0);
            let want = help_flags(&help.stdout);
            assert!(want.contains("--help"), "{sub} --help lists no flags?\n{}", help.stdout);
            let got = page_flags(&page_section(&page, "OPTIONS"));
            assert_eq!(got, want, "{renderer}: the flags of {file}'s OPTIONS are not those of `skel {sub} --help`");

            // The examples keep their lines, as `--help` shows them (not filled into a paragraph).
            let examples = section(&help.stdout, "Examples:");
            let shown: BTreeSet<&str> = page_section(&page, "EXAMPLES").iter().map(|l| l.trim()).collect();
            for line in examples.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
                example_lines += 1;
                assert!(shown.contains(line), "{renderer}: {file}'s EXAMPLES has no line `{line}`:\n{page}");
            }
        }
        if *renderer == "man -l" {
            // Installed as docs/cli.md says (`share/man/man1` beside a `bin` folder on PATH),
            // `man skel-check` finds the page, with no MANPATH.
            std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
            let path = std::env::join_paths(
                std::iter::once(tmp.path().join("bin"))
                    .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
            )
            .unwrap();
            let o = Command::new(which("man").unwrap())
                .arg("skel-check")
                .env("PATH", path)
                .env_remove("MANPATH")
                .env("MANWIDTH", "80")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .output()
                .unwrap();
            let page = plain(&String::from_utf8_lossy(&o.stdout));
            assert!(
                o.status.success() && page.contains("skel check"),
                "man skel-check: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(example_lines >= 15, "{renderer}: only {example_lines} example lines found in the subcommands' help");
        eprintln!("{renderer}: {} pages rendered and checked, {example_lines} example lines", subs.len() + 1);
    }
}

#[test]
fn man_out_that_is_a_file_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("pages"), "mine").unwrap();
    let r = run(skel(tmp.path()).args(["man", "--out", "pages"]));
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("man_out_is_a_file", r.stderr);
    assert_eq!(std::fs::read_to_string(tmp.path().join("pages")).unwrap(), "mine");

    let r = run(skel(tmp.path()).args(["man", "--out", "pages/man1"]));
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("man_out_under_a_file", r.stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing was written");
}

/// A reader that goes away (`skel completions bash | head -1` on a long script) is not an error:
/// exit 0, no panic, nothing on stderr.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&["completions", "zsh"][..], &["man"][..]] {
        // A pipe whose reading end is closed before skel starts: every write fails (EPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_skel"))
            .args(args)
            .current_dir(tmp.path())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
