//! What the end-to-end tests share.

use std::path::Path;

use assert_cmd::Command;

/// `skel` running in `dir`, without colour.
pub fn skel(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skel"));
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// What a run printed (as text) and its exit code.
#[allow(dead_code)] // not every test binary reads runs this way
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to its end; its output must be UTF-8.
#[allow(dead_code)]
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().expect("skel exited normally (not by a signal)"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}
