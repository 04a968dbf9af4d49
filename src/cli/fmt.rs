//! `skel fmt`: rewrite SKEL scripts in the canonical style (`skel_grammar::format`), or with
//! `--check` only say which ones are not in it (for CI).

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use skel_grammar::FormatError;
use thiserror::Error;

use super::files;
use super::report::Reporter;
use super::{Exit, Failed};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  skel fmt migrate.skel            # rewrite it in place (only if it changes)
  skel fmt --check scripts/*.skel  # CI: name the scripts not formatted; exit 1 if any
  cat migrate.skel | skel fmt -    # stdin to stdout

Exit codes: 0 success (with --check: every script is formatted), 1 a script would change
(--check), does not parse, or cannot be read or written, 2 usage error.")]
pub struct FmtArgs {
    /// The SKEL scripts to format, rewritten in place; `-` formats stdin to stdout.
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

pub fn run(args: FmtArgs, reporter: &Reporter) -> Result<(), Failed> {
    let stdin = Path::new("-");
    if args.files.iter().filter(|f| f.as_path() == stdin).count() > 1 {
        return Err(Failed::usage(FmtUsageError::StdinTwice));
    }
    // Every file is done (or checked) even after one failed, its failure said before the next
    // one's; the exit code says if any did.
    let mut result = Ok(());
    for path in &args.files {
        if let Err(failed) = one(path, args.check) {
            if let Some(report) = &failed.report {
                reporter.report(report);
            }
            result = Err(Failed::silent(failed.exit));
        }
    }
    result
}

/// Formats or checks one script. `Err` when it failed or, with `--check`, would change.
fn one(path: &Path, check: bool) -> Result<(), Failed> {
    let (name, src) = files::read_script(path)?;
    let formatted = match skel_grammar::format(&src) {
        Ok(f) => f,
        Err(FormatError::Parse(errors)) => return Err(Failed::script(name, src, errors)),
        Err(e) => return Err(Failed::script(name, src, [e])),
    };
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
