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
