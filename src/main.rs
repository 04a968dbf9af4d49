//! The `skel` command line: parses arguments, runs a subcommand, maps failures to exit codes
//! (0 success, 1 script or trace error, 2 usage error, 128 + the signal when one stopped it:
//! 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::report::install_hook();
    cli::signals::install();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cli::Failed::Error) => ExitCode::from(1),
        Err(cli::Failed::Usage) => ExitCode::from(2),
        Err(cli::Failed::Interrupted) => ExitCode::from(130),
    }
}
