//! What a terminal session shows while a long command runs (reading a trace, a statement, a
//! query over the whole trace): after half a second, a progress bar on stderr with what runs,
//! how far it got through the trace's bytes and for how long (a spinner when the size is not
//! known), cleared when it ends.

use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How long a command runs before the spinner shows.
const PATIENCE: Duration = Duration::from_millis(500);

/// How far a command got through the bytes it reads: a counter that whoever reads them adds
/// to, from where it stood when the command started, of `total`.
#[derive(Debug, Clone)]
pub struct Meter {
    counter: Arc<AtomicU64>,
    from: u64,
    total: Option<u64>,
}

impl Meter {
    pub fn new(counter: Arc<AtomicU64>, total: Option<u64>) -> Meter {
        let from = counter.load(Ordering::Relaxed);
        Meter { counter, from, total }
    }

    fn done(&self) -> u64 {
        let done = self.counter.load(Ordering::Relaxed).saturating_sub(self.from);
        self.total.map_or(done, |total| done.min(total))
    }
}

/// A reader that counts the bytes read through it (for a `Meter`).
pub struct Counted<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    pub fn new(inner: R, counter: Arc<AtomicU64>) -> Counted<R> {
        Counted { inner, counter }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.counter.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt);
    }
}

/// Runs `work`; when `show`, a progress bar (of `meter`'s bytes) says `what` runs while it
/// takes longer than [`PATIENCE`].
pub fn busy<T>(show: bool, what: &str, meter: Meter, work: impl FnOnce() -> T) -> T {
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
            let (bar, template) = match meter.total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {percent}% {elapsed}",
                ),
                None => (ProgressBar::new_spinner(), "{spinner} {msg} {binary_bytes} {elapsed}"),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("{what} (Ctrl-C stops it)"));
            bar.enable_steady_tick(Duration::from_millis(100));
            while !done.load(Ordering::Relaxed) {
                bar.set_position(meter.done());
                std::thread::sleep(Duration::from_millis(50));
            }
            bar.finish_and_clear();
        });
        let out = work();
        done.store(true, Ordering::Relaxed);
        out
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_work_runs_and_its_answer_comes_back() {
        let counter = Arc::new(AtomicU64::new(0));
        assert_eq!(busy(false, "nothing", Meter::new(Arc::clone(&counter), None), || 1 + 1), 2);
        // Shown: the bar draws to stderr only when it is a terminal (not in tests).
        let meter = Meter::new(Arc::clone(&counter), Some(10));
        let waited = busy(true, "a short wait", meter, || {
            std::thread::sleep(Duration::from_millis(600));
            7
        });
        assert_eq!(waited, 7);
    }

    #[test]
    fn a_meter_counts_what_was_read_through_it_since_it_started() {
        let counter = Arc::new(AtomicU64::new(5));
        let meter = Meter::new(Arc::clone(&counter), Some(8));
        let mut reader = Counted::new(&b"abcdefghij"[..], Arc::clone(&counter));
        let mut buf = [0; 3];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(meter.done(), 3);
        reader.fill_buf().unwrap();
        reader.consume(4);
        assert_eq!(meter.done(), 7);
        reader.consume(3);
        // Never past the total.
        assert_eq!(meter.done(), 8);
    }
}
