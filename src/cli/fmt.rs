//! `skel fmt`: rewrite SKEL scripts in the canonical style (`skel_grammar::format`), or with
//! `--check` only say which ones are not in it (for CI). A folder stands for every `.skel` file
//! under it, found as `skel check` finds manifest files.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use skel_grammar::FormatError;
use thiserror::Error;

use super::files::{self, Skipped, Walk};
use super::report::Reporter;
use super::{Exit, Failed};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  skel fmt migrate.skel            # rewrite it in place (only if it changes)
  skel fmt --check scripts/        # CI: name the scripts not formatted; exit 1 if any
  cat migrate.skel | skel fmt -    # stdin to stdout

Exit codes: 0 success (with --check: every script is formatted), 1 a script would change
(--check), does not parse, or cannot be read or written (or a folder holds none), 2 usage error.")]
pub struct FmtArgs {
    /// The SKEL scripts to format, rewritten in place (a folder: each `.skel` file under it);
    /// `-` formats stdin to stdout.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write nothing; name each script that is not formatted (`would reformat FILE`) and exit 1
    /// if there is one.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Error, Diagnostic)]
enum FmtUsageError {
    #[error("`-` (stdin) is given more than once")]
    #[diagnostic(code(skel::usage::two_stdins), help("stdin can be read once: pass `-` once"))]
    StdinTwice,
}

/// What a folder given to `skel fmt` does not hold, or holds but is not read.
#[derive(Debug, Error, Diagnostic)]
enum FmtFolderError {
    #[error("`{path}` holds no SKEL script (no `.skel` file, in it or in its subfolders)")]
    #[diagnostic(
        code(skel::fmt::no_scripts),
        help("`skel fmt FOLDER` formats the `.skel` files under it; name a script or a folder that holds some")
    )]
    NoScripts { path: String },
    #[error("`{path}` is {kind}, not a regular file; it is not formatted")]
    #[diagnostic(
        code(skel::fmt::not_a_file),
        severity(Warning),
        help("only regular files of a folder are formatted; pass it by its own name to read it")
    )]
    NotAFile { path: String, kind: &'static str },
    #[error("`{path}` leads back to `{to}`, a folder already being read; it is not followed")]
    #[diagnostic(
        code(skel::fmt::folder_loop),
        severity(Warning),
        help("a symbolic link to a folder above it makes a loop; each folder and file is read once")
    )]
    FolderLoop { path: String, to: String },
}

pub fn run(args: FmtArgs, reporter: &Reporter) -> Result<(), Failed> {
    let stdin = Path::new("-");
    if args.files.iter().filter(|f| f.as_path() == stdin).count() > 1 {
        return Err(Failed::usage(FmtUsageError::StdinTwice));
    }
    // Every file is done (or checked) even after one failed, its failure said before the next
    // one's; the exit code says if any did.
    let mut result = Ok(());
    let mut said = |failed: Failed| {
        if let Some(report) = &failed.report {
            reporter.report(report);
        }
        result = Err(Failed::silent(failed.exit));
    };
    for path in &args.files {
        if path.as_path() == stdin || !path.is_dir() {
            if let Err(failed) = one(path, args.check) {
                said(failed);
            }
            continue;
        }
        let scripts = Walk::files(path, &["skel"], |skip| {
            reporter.diagnostic(match skip {
                Skipped::Loop { path, to } => FmtFolderError::FolderLoop { path, to },
                Skipped::NotAFile { path, kind } => FmtFolderError::NotAFile { path, kind },
            })
        });
        if scripts.is_empty() {
            said(Failed::error(FmtFolderError::NoScripts { path: files::display(path) }));
        }
        for script in &scripts {
            if let Err(failed) = one(script, args.check) {
                said(failed);
            }
        }
    }
    result
}

/// Formats or checks one script. `Err` when it failed or, with `--check`, would change.
fn one(path: &Path, check: bool) -> Result<(), Failed> {
    let (name, src) = files::read_script(path)?;
    let formatted = formatted(&name, &src)?;
    if check {
        if formatted != src {
            eprintln!("would reformat {name}");
            return Err(Failed::silent(Exit::Error));
        }
        return Ok(());
    }
    if path != Path::new("-") && formatted == src {
        return Ok(());
    }
    // Replaced atomically (a symbolic link is followed: the file it points to is rewritten and
    // the link stays); `-` goes to stdout.
    files::write_text(Some(path), &formatted)
}

/// `src` in the canonical style, or what keeps the formatter from taking it (about `name`).
pub(super) fn formatted(name: &str, src: &str) -> Result<String, Failed> {
    skel_grammar::format(src).map_err(|e| match e {
        FormatError::Parse(errors) => Failed::script(name, src, errors),
        e => Failed::script(name, src, [e]),
    })
}
