//! Signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP remove the temp files being written (so no
//! `.skel-XXXXXX.tmp` is left beside a target) and end the process with 128 + the signal's
//! number, as shells report a signal: 130, 143, 129.
//!
//! One thread receives the three signals for the whole process. A command that gives Ctrl-C a
//! meaning of its own (the REPL stops the running statement, `skel run` stops the replay)
//! installs it with `on_interrupt`; SIGTERM and SIGHUP still end the process.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

type Action = Box<dyn FnMut() + Send>;

/// The temp files being written: removed when a signal ends the process.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// What Ctrl-C does instead of ending the process.
static ON_INTERRUPT: Mutex<Option<Action>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the thread that receives SIGINT, SIGTERM and SIGHUP. Without it (it could not be
/// started), the signals keep their default action.
pub fn install() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else { return };
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            if signal == SIGINT {
                if let Some(action) = lock(&ON_INTERRUPT).as_mut() {
                    action();
                    continue;
                }
            }
            exit(128 + signal);
        }
    });
}

/// Gives Ctrl-C (SIGINT) a meaning of its own for the rest of the process; `exit(130)` from it
/// still removes the temp files.
pub fn on_interrupt(action: impl FnMut() + Send + 'static) {
    *lock(&ON_INTERRUPT) = Some(Box::new(action));
}

/// Removes the temp files being written and ends the process. The list stays locked, so no new
/// temp file is registered on the way out.
pub fn exit(code: i32) -> ! {
    let temps = lock(&TEMPS);
    for path in temps.iter() {
        let _ = std::fs::remove_file(path);
    }
    std::process::exit(code)
}

/// A temp file on the list while this lives (it is removed from the list when dropped).
#[derive(Debug)]
pub struct Registered(PathBuf);

/// Puts a temp file on the list of files a signal removes.
pub fn register(path: &Path) -> Registered {
    lock(&TEMPS).push(path.to_path_buf());
    Registered(path.to_path_buf())
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut temps = lock(&TEMPS);
        if let Some(i) = temps.iter().rposition(|p| *p == self.0) {
            temps.swap_remove(i);
        }
    }
}
