//! `skel completions SHELL` and `skel man [--out DIR]`: the shell completion scripts
//! (clap_complete) and the man pages (clap_mangen), both generated from the real command line
//! (`Cli::command()`), so they cannot fall behind a flag.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use miette::Diagnostic;
use thiserror::Error;

use super::files;
use super::{Cli, Failed};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  skel completions bash > ~/.local/share/bash-completion/completions/skel
  skel completions zsh > ~/.zfunc/_skel   # with `fpath+=(~/.zfunc)` before `compinit` in ~/.zshrc
  skel completions fish > ~/.config/fish/completions/skel.fish

See docs/cli.md for PowerShell and elvish.")]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  skel man | man -l -                      # read skel(1) now
  skel man --out ~/.cargo/share/man/man1   # install them beside ~/.cargo/bin; then `man skel-apply`")]
pub struct ManArgs {
    /// Write `skel.1` and one page per subcommand (`skel-apply.1`, ...) into this folder (made if
    /// missing); without it, print `skel.1` to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Error, Diagnostic)]
enum ManError {
    #[error("cannot write the man pages into `{path}`: {reason}")]
    #[diagnostic(
        code(skel::io::write),
        help("`--out` names a folder (it is made if missing), e.g. `--out man/`; no page was written")
    )]
    NotAFolder { path: String, reason: String },
    #[error("cannot make the folder `{path}`: {reason}")]
    #[diagnostic(code(skel::io::write), help("check that its parent folder is writable; no page was written"))]
    MakeFolder { path: String, reason: String },
}

/// The completion script for `shell`, for the binary named `skel`.
pub fn completion_script(shell: Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "skel", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn completions(args: CompletionsArgs) -> Result<(), Failed> {
    files::write_text(None, &completion_script(args.shell))
}

/// The man pages, in order: `skel.1` first, then each subcommand's (`skel-apply.1`, ...), as
/// (file name, roff text). The `help` subcommand has no page: `skel help X` is `skel X --help`.
pub fn man_pages() -> Vec<(String, String)> {
    let mut pages = Vec::new();
    collect(&built(), &mut pages);
    pages
}

/// The command line the pages are of.
fn built() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn collect(cmd: &clap::Command, pages: &mut Vec<(String, String)>) {
    pages.extend(page(cmd));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages);
    }
}

/// One command's page: its file name and roff text.
fn page(cmd: &clap::Command) -> Option<(String, String)> {
    // Every page's footer names the program and its version (`skel 0.1.0`), not the subcommand.
    let man = clap_mangen::Man::new(cmd.clone()).source(format!("skel {}", env!("CARGO_PKG_VERSION")));
    let mut roff = Vec::new();
    // Rendering into memory cannot fail.
    render(&man, cmd, &mut roff).ok()?;
    Some((man.get_filename(), String::from_utf8_lossy(&roff).into_owned()))
}

/// A page as `Man::render` writes it, but for the text after the options (`after_help`: the
/// examples and exit codes), which keeps its lines (roff would fill them into a paragraph,
/// running the examples together) under EXAMPLES (or NOTES, when it has no examples).
fn render(man: &clap_mangen::Man, cmd: &clap::Command, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    if let Some(after) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        let text = after.to_string();
        let (heading, body) = match text.split_once('\n') {
            Some((first, rest)) if first.starts_with("Example") => ("EXAMPLES", rest),
            _ => ("NOTES", text.as_str()),
        };
        let mut roff = clap_mangen::roff::Roff::new();
        roff.control("SH", [heading]).control("nf", []);
        for line in body.lines() {
            roff.text([clap_mangen::roff::roman(line)]);
        }
        roff.control("fi", []);
        roff.to_writer(w)?;
    }
    if cmd.get_version().or_else(|| cmd.get_long_version()).is_some() {
        man.render_version_section(w)?;
    }
    if cmd.get_author().is_some() {
        man.render_authors_section(w)?;
    }
    Ok(())
}

pub fn man(args: ManArgs) -> Result<(), Failed> {
    let Some(dir) = args.out else {
        // skel(1) alone: the subcommands' pages are not rendered.
        let text = page(&built()).map_or_else(String::new, |(_, text)| text);
        return files::write_text(None, &text);
    };
    let pages = man_pages();
    make_folder(&dir)?;
    for (name, text) in &pages {
        files::write_text(Some(&dir.join(name)), text)?;
    }
    let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!("skel: {} man pages written to {}: {}", pages.len(), dir.display(), names.join(" "));
    Ok(())
}

fn make_folder(dir: &Path) -> Result<(), Failed> {
    let path = dir.display().to_string();
    // The folder, or the nearest of its parents that exists, must be a folder.
    if let Some(file) = dir.ancestors().find(|a| !a.as_os_str().is_empty() && std::fs::metadata(a).is_ok()) {
        if std::fs::metadata(file).is_ok_and(|m| m.is_dir()) {
            if file == dir {
                return Ok(());
            }
        } else {
            let reason = if file == dir {
                "it is a file, not a folder".to_string()
            } else {
                format!("`{}` is a file, not a folder", file.display())
            };
            return Err(Failed::error(ManError::NotAFolder { path, reason }));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Failed::error(ManError::MakeFolder { path, reason: files::reason(&e) }))
}
