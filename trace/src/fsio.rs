//! Reading a whole file, bounded: never more than a limit (a script that is `/dev/zero` or a
//! 2 GB sparse file is refused, not read until memory runs out), and never waiting without a
//! word on something that is not a regular file (opening a FIFO waits for a process to write
//! to it).
//!
//! Every whole-file read of the tools goes through here: scripts, `insert(file(...))` files,
//! `--node-template`, the manifest files of `skel check`. Traces are streamed, not read whole:
//! [`open_trace`] is the one way to open one (`skel apply`, `check`, `run`, the REPL's `:load`;
//! the language server should use it too, with `Special::Refuse`).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use crate::Format;

/// The most a script, an `insert(..., file(...))` file or a `--node-template` may hold: files a
/// person writes.
pub const SOURCE_LIMIT: u64 = 64 << 20;

/// The most a file of Kubernetes manifests (YAML or JSON) read by `skel check` may hold: it is
/// read and parsed whole (a trace is streamed, and has no limit).
pub const MANIFEST_LIMIT: u64 = 256 << 20;

/// How long opening a FIFO may take before `Special::Read`'s `waiting` is called.
const OPEN_PATIENCE: Duration = Duration::from_secs(1);

/// Why a file could not be read.
#[derive(Debug)]
pub enum FileReadError {
    /// It holds more than the limit; `size` when known before reading (a regular file).
    TooLarge {
        size: Option<u64>,
        limit: u64,
    },
    /// A folder, a FIFO, a device or a socket where a regular file is needed.
    NotRegular {
        kind: &'static str,
    },
    Io(io::Error),
}

impl fmt::Display for FileReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileReadError::TooLarge { size: Some(size), limit } => {
                write!(f, "it is {}, more than the limit of {}", human_size(*size), human_size(*limit))
            }
            FileReadError::TooLarge { size: None, limit } => {
                write!(f, "it holds more than the limit of {}", human_size(*limit))
            }
            FileReadError::NotRegular { kind } => write!(f, "it is {kind}, not a regular file"),
            FileReadError::Io(e) => {
                let text = e.to_string();
                f.write_str(text.find(" (os error").map_or(text.as_str(), |i| &text[..i]))
            }
        }
    }
}

impl std::error::Error for FileReadError {}

/// What to do with a path that names something other than a regular file.
#[derive(Clone, Copy)]
pub enum Special<'a> {
    /// Refuse it (`FileReadError::NotRegular`) without opening it: for files found indirectly
    /// (a folder's entries, `insert(file(...))`), which nobody is about to write into.
    Refuse,
    /// Read it: a FIFO, `/dev/stdin` or a process substitution named on the command line has a
    /// writer (or is about to). `waiting` is called once if opening it takes more than a second
    /// (a FIFO no process writes to yet), so the wait is not silent.
    Read { waiting: &'a dyn Fn() },
}

/// What a file is, in words, for messages: `a folder`, `a named pipe (FIFO)`, ...
pub fn kind_name(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Opens a file to read. A folder is always refused; see `Special` for the rest.
pub fn open(path: &Path, special: Special<'_>) -> Result<File, FileReadError> {
    let meta = std::fs::metadata(path).map_err(FileReadError::Io)?;
    if meta.is_file() {
        return File::open(path).map_err(FileReadError::Io);
    }
    if meta.is_dir() {
        return Err(FileReadError::NotRegular { kind: "a folder" });
    }
    match special {
        Special::Refuse => Err(FileReadError::NotRegular { kind: kind_name(meta.file_type()) }),
        Special::Read { waiting } => open_patiently(path, waiting),
    }
}

/// Opens in a helper thread, so that a wait for a FIFO's writer can be announced.
fn open_patiently(path: &Path, waiting: &dyn Fn()) -> Result<File, FileReadError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("open".into())
        .spawn(move || {
            let _ = tx.send(File::open(owned));
        })
        .map_err(FileReadError::Io)?;
    let opened = match rx.recv_timeout(OPEN_PATIENCE) {
        Ok(opened) => opened,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            waiting();
            rx.recv().unwrap_or_else(|_| Err(io::Error::other("the file could not be opened")))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::other("the file could not be opened")),
    };
    opened.map_err(FileReadError::Io)
}

/// Where a trace is read from.
pub enum TraceSource<'a> {
    /// Standard input (`-` on the command line).
    Stdin,
    /// A file; `special` says what to do when it is not a regular file.
    File { path: &'a Path, special: Special<'a> },
    /// A stream from elsewhere (an object in a store): `name` gives the format by its extension,
    /// `len` is its size when known.
    Stream { reader: Box<dyn Read + Send>, name: &'a Path, len: Option<u64> },
}

/// An opened trace, its format decided, ready to stream (`read_trace`, `Trace::read`).
pub struct TraceInput {
    pub reader: Box<dyn BufRead + Send>,
    pub format: Format,
    /// The size in bytes of a regular file (for progress, or to tell a trace cut by a limit).
    pub len: Option<u64>,
    /// The regular file itself (another handle to it), to read its bytes again where they are
    /// (`read_at`; the REPL keeps a trace's events there, not in memory).
    pub file: Option<File>,
}

/// Opens a trace, the one way every tool does (the command line, the REPL, and the language
/// server, which passes `Special::Refuse` and bounds the reader itself): a file as `open`
/// opens it, stdin, or a stream the caller opened (an object store's). Its format is `forced`,
/// else the file's (or the stream's name's) extension's, else sniffed from its first bytes
/// (`Format::of_file`). An error is `open`'s, or `Io` when the first bytes
/// cannot be read.
pub fn open_trace(source: TraceSource<'_>, forced: Option<Format>) -> Result<TraceInput, FileReadError> {
    let (mut reader, len, file, path): (Box<dyn BufRead + Send>, _, _, _) = match source {
        TraceSource::Stdin => (Box::new(BufReader::with_capacity(1 << 16, io::stdin())), None, None, None),
        TraceSource::File { path, special } => {
            let file = open(path, special)?;
            let len = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            let again = len.and_then(|_| file.try_clone().ok());
            (Box::new(BufReader::with_capacity(1 << 16, file)), len, again, Some(path))
        }
        TraceSource::Stream { reader, name, len } => {
            (Box::new(BufReader::with_capacity(1 << 16, reader)), len, None, Some(name))
        }
    };
    let format = match forced.or_else(|| path.and_then(Format::from_extension)) {
        Some(format) => format,
        None => Format::sniff(reader.fill_buf().map_err(FileReadError::Io)?),
    };
    Ok(TraceInput { reader, format, len, file })
}

/// Reads a whole file, at most `limit` bytes (a regular file larger than that is refused before
/// any of it is read).
pub fn read_limited(path: &Path, limit: u64, special: Special<'_>) -> Result<Vec<u8>, FileReadError> {
    let file = open(path, special)?;
    let size = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    if let Some(size) = size.filter(|s| *s > limit) {
        return Err(FileReadError::TooLarge { size: Some(size), limit });
    }
    read_to_limit(file, limit, size)
}

/// Reads a stream to its end, at most `limit` bytes. `size_hint` reserves memory up front.
pub fn read_to_limit(input: impl Read, limit: u64, size_hint: Option<u64>) -> Result<Vec<u8>, FileReadError> {
    let mut bytes = Vec::with_capacity(size_hint.map_or(0, |s| s.min(limit) as usize));
    // One byte past the limit tells "exactly the limit" from "more".
    input.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(FileReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(FileReadError::TooLarge { size: None, limit });
    }
    Ok(bytes)
}

/// `64 MiB`, `2.0 GiB`, `512 bytes`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} byte{}", if n == 1 { "" } else { "s" });
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("TiB");
    if value.fract() == 0.0 {
        format!("{value:.0} {name}")
    } else {
        format!("{value:.1} {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_within_the_limit_is_read() {
        let dir = tempdir();
        let path = dir.join("a.skel");
        std::fs::write(&path, "delete(*);").unwrap();
        assert_eq!(read_limited(&path, 10, Special::Refuse).unwrap(), b"delete(*);");
        let err = read_limited(&path, 9, Special::Refuse).unwrap_err();
        assert_eq!(err.to_string(), "it is 10 bytes, more than the limit of 9 bytes");
    }

    #[test]
    fn a_sparse_file_is_refused_by_its_size_before_reading() {
        let dir = tempdir();
        let path = dir.join("big.skel");
        let f = File::create(&path).unwrap();
        f.set_len(2 << 30).unwrap();
        let err = read_limited(&path, SOURCE_LIMIT, Special::Refuse).unwrap_err();
        assert_eq!(err.to_string(), "it is 2 GiB, more than the limit of 64 MiB");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_device_stops_at_the_limit() {
        let waiting = || {};
        let err = read_limited(Path::new("/dev/zero"), 1 << 20, Special::Read { waiting: &waiting }).unwrap_err();
        assert_eq!(err.to_string(), "it holds more than the limit of 1 MiB");
        let err = read_limited(Path::new("/dev/zero"), 1 << 20, Special::Refuse).unwrap_err();
        assert_eq!(err.to_string(), "it is a device, not a regular file");
    }

    #[test]
    fn a_folder_is_not_read() {
        let dir = tempdir();
        let waiting = || {};
        let err = read_limited(&dir, 10, Special::Read { waiting: &waiting }).unwrap_err();
        assert_eq!(err.to_string(), "it is a folder, not a regular file");
    }

    #[test]
    fn a_stream_is_read_to_the_limit() {
        assert_eq!(read_to_limit(&b"abc"[..], 3, None).unwrap(), b"abc");
        assert!(matches!(read_to_limit(&b"abcd"[..], 3, None), Err(FileReadError::TooLarge { size: None, limit: 3 })));
    }

    #[test]
    fn a_trace_format_is_forced_else_from_the_extension_else_sniffed() {
        let dir = tempdir();
        let (json, bare) = (dir.join("t.json"), dir.join("t"));
        std::fs::write(&json, [0x80]).unwrap();
        std::fs::write(&bare, [b' ', 0x80]).unwrap();
        let open = |path: &Path, forced| {
            let input = open_trace(TraceSource::File { path, special: Special::Refuse }, forced).unwrap();
            (input.format, input.len)
        };
        assert_eq!(open(&json, None), (Format::Json, Some(1)));
        assert_eq!(open(&bare, None), (Format::Msgpack, Some(2)));
        assert_eq!(open(&bare, Some(Format::Json)), (Format::Json, Some(2)));
        // What was sniffed is still there to read.
        let mut input = open_trace(TraceSource::File { path: &bare, special: Special::Refuse }, None).unwrap();
        let mut bytes = Vec::new();
        input.reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, [b' ', 0x80]);
    }

    #[test]
    fn a_stream_is_opened_as_a_file_is_but_has_no_file() {
        let open = |bytes: &'static [u8], name: &str| {
            let source = TraceSource::Stream { reader: Box::new(bytes), name: Path::new(name), len: Some(2) };
            open_trace(source, None).unwrap()
        };
        let json = open(&[0x80], "s3://bucket/t.json");
        assert_eq!((json.format, json.len, json.file.is_none()), (Format::Json, Some(2), true));
        let mut sniffed = open(&[b' ', 0x80], "s3://bucket/t");
        assert_eq!(sniffed.format, Format::Msgpack);
        let mut bytes = Vec::new();
        sniffed.reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, [b' ', 0x80]);
    }

    #[test]
    fn a_trace_that_is_not_a_file_is_refused_as_read_limited_refuses_it() {
        let dir = tempdir();
        let err = open_trace(TraceSource::File { path: &dir, special: Special::Refuse }, None).err().unwrap();
        assert_eq!(err.to_string(), "it is a folder, not a regular file");
        let missing = dir.join("missing.json");
        let err = open_trace(TraceSource::File { path: &missing, special: Special::Refuse }, None).err().unwrap();
        assert!(matches!(err, FileReadError::Io(e) if e.kind() == io::ErrorKind::NotFound));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(64 << 20), "64 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }

    /// A fresh folder under the system's temp folder, removed at the end of the test (this
    /// crate has no tempfile dependency).
    struct TempDir(std::path::PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "skel-fsio-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
