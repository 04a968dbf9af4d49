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

/// Judges named cases against a list of known bugs (name, why): a listed case may fail (it is
/// reported, not failed) and must (one that passes now fails the suite: take it off the list);
/// every listed name must be a case; any other failure fails the suite.
#[allow(dead_code)]
pub fn judge(results: Vec<(String, Result<(), String>)>, known_bugs: &[(&str, &str)]) {
    for (bug, _) in known_bugs {
        assert!(results.iter().any(|(n, _)| n == bug), "KNOWN_BUGS names `{bug}`, which is not a case");
    }
    let (mut failures, mut known) = (Vec::new(), Vec::new());
    for (name, result) in &results {
        let bug = known_bugs.iter().find(|(n, _)| n == name).map(|(_, why)| *why);
        match (result, bug) {
            (Ok(()), None) => {}
            (Ok(()), Some(_)) => failures.push(format!("== {name}: passes now; take it off KNOWN_BUGS")),
            (Err(e), None) => failures.push(format!("== {name}\n{e}")),
            (Err(e), Some(why)) => known.push(format!("== {name} (known bug: {why})\n{e}")),
        }
    }
    if !known.is_empty() {
        eprintln!("{} known bug(s), not failing the suite:\n{}\n", known.len(), known.join("\n\n"));
    }
    let n = results.len();
    assert!(failures.is_empty(), "{} of {n} case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}
