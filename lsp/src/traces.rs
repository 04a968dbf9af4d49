//! Traces for hover and completion, indexed off the request threads: the main loop asks for
//! a document's trace when the document opens, when its `# trace:` comment changes and when
//! the `skel.trace` setting changes; one indexer thread reads each trace into a
//! [`TraceIndex`]. A request that needs a trace waits for the one reading under way (it never
//! reads one itself), and has it read again when its file changed since (its modification
//! time and size). Every trace a request needs that cannot be read is told to the editor
//! (`window/showMessage`), once per problem.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use lsp_server::{Message, Notification};
use lsp_types::notification::{Notification as _, ShowMessage};
use lsp_types::{MessageType, ShowMessageParams};
use skel::explore::KeyIndex;
use skel_trace::fsio::{self, kind_name, FileReadError, Special, TraceSource};

use crate::engine::TraceIndex;

/// The bytes of a trace read for hover and completion (256 MiB): the index holds what the
/// first ones hold.
pub const TRACE_LIMIT: u64 = 256 << 20;

/// The trace configured for a script: a `# trace: FILE` comment among the comments and blank
/// lines at its top (relative to the script's folder, `folder`), else the `skel.trace`
/// setting (relative to the workspace root).
pub fn trace_path(text: &str, folder: Option<&Path>, setting: Option<&Path>, root: Option<&Path>) -> Option<PathBuf> {
    let from_comment = text
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .find_map(|l| l.trim_start().trim_start_matches('#').trim().strip_prefix("trace:").map(str::trim))
        .filter(|f| !f.is_empty())
        .map(|f| folder.unwrap_or(Path::new(".")).join(f));
    from_comment.or_else(|| {
        let t = setting?;
        Some(if t.is_absolute() { t.to_path_buf() } else { root.unwrap_or(Path::new(".")).join(t) })
    })
}

/// What a trace's file was when it was looked at: its modification time and size, or why it
/// cannot be read without opening it (missing, or not a regular file).
type Stamp = Result<(Option<SystemTime>, u64), String>;

fn stamp(path: &Path) -> Stamp {
    let cannot = |why: FileReadError| format!("the trace {} cannot be read: {why}", path.display());
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok((meta.modified().ok(), meta.len())),
        Ok(meta) => Err(cannot(FileReadError::NotRegular { kind: kind_name(meta.file_type()) })),
        Err(e) => Err(cannot(FileReadError::Io(e))),
    }
}

/// A trace as indexed: its index (`None`: it cannot be read) and what to tell the editor of
/// it (why it cannot be read, or that it was cut).
#[derive(Clone)]
struct Indexed {
    index: Option<Arc<TraceIndex>>,
    problem: Option<(MessageType, String)>,
}

/// One trace: as last indexed (with what its file was then), and whether the indexer has it.
#[derive(Default)]
struct Slot {
    indexed: Option<(Stamp, Indexed)>,
    queued: bool,
}

/// The traces indexed and being indexed, shared by the main loop (which asks for them), the
/// request threads (which wait for them) and the indexer.
pub struct Traces {
    slots: Mutex<HashMap<PathBuf, Slot>>,
    /// Signalled when a trace is indexed.
    indexed: Condvar,
    /// To the indexer: the traces to read.
    queue: Sender<PathBuf>,
    /// To the main loop: what to tell the editor.
    out: Sender<Message>,
    /// The last problem told of each trace.
    told: Mutex<HashMap<PathBuf, String>>,
}

impl Traces {
    /// The traces, with their indexer thread (`stack`: its stack size), which ends when they
    /// are dropped. `out` takes the `window/showMessage` notifications.
    pub fn start(out: Sender<Message>, stack: usize) -> std::io::Result<Arc<Traces>> {
        let (queue, jobs) = crossbeam_channel::unbounded();
        let traces =
            Arc::new(Traces { slots: Mutex::default(), indexed: Condvar::new(), queue, out, told: Mutex::default() });
        let weak = Arc::downgrade(&traces);
        std::thread::Builder::new()
            .name("skel-lsp-indexer".into())
            .stack_size(stack)
            .spawn(move || index(&weak, &jobs))?;
        Ok(traces)
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<PathBuf, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Has a trace indexed ahead of the requests that will need it, unless it is queued
    /// already; it is read again only if its file changed. Nothing is told yet: a problem is
    /// told to the editor when a request needs the trace.
    pub fn want(&self, path: &Path) {
        let mut slots = self.slots();
        let slot = slots.entry(path.to_path_buf()).or_default();
        if !slot.queued {
            slot.queued = self.queue.send(path.to_path_buf()).is_ok();
        }
    }

    /// A trace's index as its file is now, for a request: waits for the indexer when it is
    /// reading the trace, or when the file changed since it was read. `None` when it cannot be
    /// read, which is told to the editor (once per problem).
    pub fn get(&self, path: &Path) -> Option<Arc<TraceIndex>> {
        let now = stamp(path);
        let mut slots = self.slots();
        let mut asked = false;
        let indexed = loop {
            let slot = slots.entry(path.to_path_buf()).or_default();
            if slot.queued {
                slots = self.indexed.wait(slots).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            match &slot.indexed {
                Some((then, indexed)) if asked || *then == now => break indexed.clone(),
                _ if asked => {
                    // The indexer is gone (it never is while the traces are kept).
                    let why = format!("the trace {} cannot be read: the indexer stopped", path.display());
                    break Indexed { index: None, problem: Some((MessageType::ERROR, why)) };
                }
                _ => {
                    slot.queued = self.queue.send(path.to_path_buf()).is_ok();
                    asked = true;
                }
            }
        };
        drop(slots);
        let mut told = self.told.lock().unwrap_or_else(PoisonError::into_inner);
        match indexed.problem {
            Some((typ, message)) if told.get(path) != Some(&message) => {
                told.insert(path.to_path_buf(), message.clone());
                eprintln!("skel lsp: {message}");
                let note = Notification::new(ShowMessage::METHOD.into(), ShowMessageParams { typ, message });
                let _ = self.out.send(note.into());
            }
            Some(_) => {}
            // Read: a problem it has later is told again.
            None => {
                told.remove(path);
            }
        }
        indexed.index
    }

    /// Indexes a trace (the indexer's part), unless its file is as when it was last indexed.
    fn index(&self, path: &Path) {
        let now = stamp(path);
        let same = self.slots().get(path).and_then(|s| s.indexed.as_ref()).is_some_and(|(then, _)| *then == now);
        let indexed = match &now {
            _ if same => None,
            Err(why) => Some(Indexed { index: None, problem: Some((MessageType::WARNING, why.clone())) }),
            Ok(_) => Some(read(path)),
        };
        let mut slots = self.slots();
        let slot = slots.entry(path.to_path_buf()).or_default();
        slot.queued = false;
        if let Some(indexed) = indexed {
            slot.indexed = Some((now, indexed));
        }
        drop(slots);
        self.indexed.notify_all();
    }
}

/// Reads a trace that is a regular file (a panic in the reader is a bug, told as such).
fn read(path: &Path) -> Indexed {
    let read = catch_unwind(AssertUnwindSafe(|| load_trace(path, TRACE_LIMIT)))
        .unwrap_or_else(|panic| Err(format!("{} (a bug in skel)", crate::server::panic_message(&*panic))));
    match read {
        Ok(index) => {
            let mib = TRACE_LIMIT >> 20;
            let problem = index.cut.then(|| {
                let message = format!(
                    "the trace {} is over {mib} MiB: hover and completion know its first {mib} MiB",
                    path.display()
                );
                (MessageType::INFO, message)
            });
            Indexed { index: Some(Arc::new(index)), problem }
        }
        Err(why) => {
            let message = format!("the trace {} cannot be read: {why}", path.display());
            Indexed { index: None, problem: Some((MessageType::WARNING, message)) }
        }
    }
}

/// The indexer: reads the traces asked for, one at a time, while the traces are kept.
fn index(traces: &Weak<Traces>, jobs: &Receiver<PathBuf>) {
    for path in jobs {
        let Some(traces) = traces.upgrade() else { return };
        traces.index(&path);
    }
}

/// Reads a trace as it streams by, into an index; the objects are not kept. At most `limit`
/// bytes are read: a longer trace is indexed as far as they go (`cut`).
fn load_trace(path: &Path, limit: u64) -> Result<TraceIndex, String> {
    // Through the trace front door: a FIFO, a device or a folder is refused without being
    // opened (opening a FIFO waits for a writer); the format as the CLI finds it.
    let input =
        fsio::open_trace(TraceSource::File { path, special: Special::Refuse }, None).map_err(|e| e.to_string())?;
    let cut = input.len.is_some_and(|len| len > limit);
    let mut reader = std::io::Read::take(input.reader, limit);
    let mut keys = KeyIndex::with_stats();
    let read = skel_trace::read_events(&mut reader, input.format, |_, event| {
        event.applied_objs.iter().chain(&event.deleted_objs).for_each(|o| keys.add(o));
        Ok::<(), std::convert::Infallible>(())
    });
    match read {
        // Where the limit cuts the trace, it does not parse: what came before is indexed.
        Err(_) if cut && reader.limit() == 0 => {}
        Err(e) => return Err(e.to_string()),
        Ok(()) => {}
    }
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(TraceIndex { name, keys, cut })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_comment_wins_over_the_setting() {
        let (folder, root) = (Path::new("/s"), Path::new("/root"));
        let at = |text: &str, setting: Option<&str>| {
            trace_path(text, Some(folder), setting.map(Path::new), Some(root)).map(|p| p.display().to_string())
        };
        assert_eq!(at("# about\n\n# trace: t.json\ndelete(kind == \"Pod\");\n", Some("u.json")).unwrap(), "/s/t.json");
        assert_eq!(at("delete(kind == \"Pod\");\n# trace: t.json\n", Some("u.json")).unwrap(), "/root/u.json");
        assert_eq!(at("# trace:\n", Some("/abs/u.json")).unwrap(), "/abs/u.json");
        assert_eq!(at("# trace: /abs/t.json\n", None).unwrap(), "/abs/t.json");
        assert_eq!(at("delete(kind == \"Pod\");\n", None), None);
        assert_eq!(trace_path("", None, Some(Path::new("u.json")), None).unwrap(), Path::new("./u.json"));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("skel-lsp-traces-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// What was told to the editor so far.
    fn told(out: &Receiver<Message>) -> Vec<String> {
        out.try_iter()
            .map(|m| match m {
                Message::Notification(n) => n.params["message"].as_str().unwrap().to_string(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Missing, a folder, not a trace: each is told once, and asked again says nothing new.
    #[test]
    fn every_trace_that_cannot_be_read_is_told_once() {
        let dir = scratch("told");
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "not json").unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let traces = Traces::start(tx, 1 << 20).unwrap();
        for path in [dir.join("missing.json"), dir.clone(), bad.clone()] {
            traces.want(&path);
            assert!(traces.get(&path).is_none());
            assert!(traces.get(&path).is_none());
            let said = told(&rx);
            assert_eq!(said.len(), 1, "{said:?}");
            assert!(said[0].starts_with(&format!("the trace {} cannot be read: ", path.display())), "{said:?}");
        }
        // Fixed, then broken again: read, then told again.
        std::fs::write(
            &bad,
            r#"{"version": 2, "config": {"trackedObjects": {}}, "events": [], "index": {}, "pod_lifecycles": {}}"#,
        )
        .unwrap();
        assert_eq!(traces.get(&bad).unwrap().keys.objects(), 0);
        std::fs::write(&bad, "not json either").unwrap();
        assert!(traces.get(&bad).is_none());
        assert_eq!(told(&rx).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_trace_is_indexed_once_until_its_file_changes() {
        let dir = scratch("changes");
        let path = dir.join("t.json");
        let trace = |pods: usize| {
            let events: Vec<String> = (0..pods)
                .map(|i| format!(r#"{{"ts": {i}, "applied_objs": [{{"kind": "Pod"}}], "deleted_objs": []}}"#))
                .collect();
            format!(
                r#"{{"version": 2, "config": {{"trackedObjects": {{}}}}, "events": [{}], "index": {{}}, "pod_lifecycles": {{}}}}"#,
                events.join(",")
            )
        };
        std::fs::write(&path, trace(2)).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let traces = Traces::start(tx, 1 << 20).unwrap();
        traces.want(&path);
        let first = traces.get(&path).unwrap();
        assert_eq!((first.name.as_str(), first.keys.objects(), first.cut), ("t.json", 2, false));
        assert!(Arc::ptr_eq(&first, &traces.get(&path).unwrap()), "not read again");
        std::fs::write(&path, trace(3)).unwrap();
        assert_eq!(traces.get(&path).unwrap().keys.objects(), 3);
        assert!(told(&rx).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
