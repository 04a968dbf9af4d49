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
    let reporter = cli::report::Reporter::stderr();
    match cli::run(args, &reporter) {
        Ok(()) => ExitCode::SUCCESS,
        // The edge: a failure's report is rendered here, once.
        Err(failed) => {
            if let Some(report) = &failed.report {
                reporter.report(report);
            }
            ExitCode::from(failed.exit.code())
        }
    }
}
