//! What a terminal session shows while a long command runs (reading a trace, a statement, a
//! query over the whole trace): after half a second, a spinner on stderr with what runs and for
//! how long, cleared when it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How long a command runs before the spinner shows.
const PATIENCE: Duration = Duration::from_millis(500);

/// Runs `work`; when `show`, a spinner says `what` runs while it takes longer than
/// [`PATIENCE`].
pub fn busy<T>(show: bool, what: &str, work: impl FnOnce() -> T) -> T {
    if !show {
        return work();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let started = Instant::now();
            while started.elapsed() < PATIENCE {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let spinner = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                spinner.set_style(style);
            }
            spinner.set_message(format!("{what} (Ctrl-C stops it)"));
            spinner.enable_steady_tick(Duration::from_millis(100));
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            spinner.finish_and_clear();
        });
        let out = work();
        done.store(true, Ordering::Relaxed);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_runs_and_its_answer_comes_back() {
        assert_eq!(busy(false, "nothing", || 1 + 1), 2);
        // Shown: the spinner draws to stderr only when it is a terminal (not in tests).
        let waited = busy(true, "a short wait", || {
            std::thread::sleep(Duration::from_millis(600));
            7
        });
        assert_eq!(waited, 7);
    }
}
