//! Files at the edge: reading scripts and traces (`-` is stdin), and writing output atomically
//! (a temp file beside the target, renamed into place only when everything succeeded).
//!
//! Whole files (scripts) are read through `skel_trace::fsio`, bounded; traces are opened by its
//! front door, `fsio::open_trace`. A path named on the command line may be a FIFO or a process
//! substitution (`<(...)`): it is read, and a wait for its writer is announced. Output through a symbolic link lands in the file the link points
//! to, and the link stays.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use skel_trace::fsio::{self, Special, TraceInput, TraceSource};
use skel_trace::Format;
use thiserror::Error;

use super::{signals, Failed};

#[derive(Debug, Error, Diagnostic)]
pub enum FileError {
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(skel::io::read), help("{help}"))]
    Read { path: String, reason: String, help: String },
    #[error("cannot write `{path}`: {reason}")]
    #[diagnostic(code(skel::io::write), help("check that the folder exists and is writable; nothing was written"))]
    Write { path: String, reason: String },
    #[error("`{path}` is not UTF-8 text")]
    #[diagnostic(code(skel::io::not_utf8), help("SKEL scripts are UTF-8 text files"))]
    NotUtf8 { path: String },
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(skel::io::too_large), help("{help}"))]
    TooLarge { path: String, reason: String, help: String },
    #[error("cannot write `{path}`: {reason}")]
    #[diagnostic(
        code(skel::io::write),
        help("name a file to write in the folder, e.g. `out/trace.json` rather than `out/`; nothing was written")
    )]
    NotAFile { path: String, reason: String },
    #[error("`--in-place` needs a regular file: `{path}` is {kind}")]
    #[diagnostic(
        code(skel::usage::in_place_not_file),
        help("a pipe or a device cannot be replaced by its rewritten trace: use `-o FILE` or redirect stdout instead")
    )]
    InPlaceNotFile { path: String, kind: &'static str },
    #[error("`--in-place` needs a trace file, not stdin")]
    #[diagnostic(code(skel::usage::in_place_stdin), help("use `-o FILE` or redirect stdout instead"))]
    InPlaceStdin,
    #[error("the script and the trace cannot both be read from stdin")]
    #[diagnostic(code(skel::usage::two_stdins), help("pass one of them as a file"))]
    TwoStdins,
    /// A trace URL (`s3://...`) that could not be read or written.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Remote(#[from] super::remote::RemoteError),
}

/// A file error fails its command: a usage error (exit 2) where the arguments ask the
/// impossible, else exit 1.
impl From<FileError> for Failed {
    fn from(e: FileError) -> Failed {
        match e {
            FileError::InPlaceNotFile { .. } | FileError::InPlaceStdin | FileError::TwoStdins => Failed::usage(e),
            e => Failed::error(e),
        }
    }
}

/// The OS error's text without Rust's `(os error N)` suffix.
pub fn reason(e: &io::Error) -> String {
    let text = match e.kind() {
        io::ErrorKind::NotFound => "no such file or folder".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::IsADirectory => "it is a folder".to_string(),
        _ => e.to_string(),
    };
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn read_help(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "check the path; it is relative to the current folder".into(),
        io::ErrorKind::PermissionDenied => "check the file's permissions".into(),
        _ => "check that the path names a readable file".into(),
    }
}

pub fn display(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// The folder `insert(..., file("x"))` paths are relative to: the script's (`None`, the working
/// directory, for a script on stdin or in it).
pub fn script_folder(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty() && path != Path::new("-"))
}

/// Where the compiler reads the insert files of the script at `path` (read by `read_script`).
pub fn insert_files(path: &Path) -> skel::Folder {
    skel::Folder::new(script_folder(path))
}

/// Reads a script (`-`: stdin), bounded; returns its display name and text.
pub fn read_script(path: &Path) -> Result<(String, String), Failed> {
    let name = display(path);
    let res = if path == Path::new("-") {
        fsio::read_to_limit(io::stdin().lock(), fsio::SOURCE_LIMIT, None)
    } else {
        read_named(path, fsio::SOURCE_LIMIT)
    };
    let bytes = res.map_err(|e| read_failed(&name, e, "a script"))?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok((name, s)),
        Err(_) => Err(FileError::NotUtf8 { path: name }.into()),
    }
}

/// Reads a whole file the user named, at most `limit` bytes: a FIFO is read too, and a wait for
/// its writer announced.
pub fn read_named(path: &Path, limit: u64) -> Result<Vec<u8>, fsio::FileReadError> {
    fsio::read_limited(path, limit, Special::Read { waiting: &waiting_note(path) })
}

/// A small text file the user named, read whole and bounded (`--node-template`); `Err` is the
/// reason, for the caller's diagnostic.
pub fn read_text(path: &Path, limit: u64) -> Result<String, String> {
    let bytes = read_named(path, limit).map_err(|e| match e {
        fsio::FileReadError::Io(e) => reason(&e),
        e => e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".into())
}

/// The diagnostic for a file `fsio` could not read; `what` names the kind of file in the help of
/// one too large (`a script`).
pub fn read_failed(name: &str, e: fsio::FileReadError, what: &str) -> FileError {
    match e {
        fsio::FileReadError::Io(e) => FileError::Read { help: read_help(&e), path: name.into(), reason: reason(&e) },
        e @ fsio::FileReadError::TooLarge { limit, .. } => FileError::TooLarge {
            path: name.into(),
            reason: e.to_string(),
            help: format!("{what} may hold at most {} (docs/cli.md, \"Limits\")", fsio::human_size(limit)),
        },
        e @ fsio::FileReadError::NotRegular { .. } => FileError::Read {
            path: name.into(),
            reason: e.to_string(),
            help: "check that the path names a readable file".into(),
        },
    }
}

/// Says that opening `path` waits: it is a FIFO no process writes to yet.
fn waiting_note(path: &Path) -> impl Fn() + '_ {
    move || eprintln!("skel: waiting for a process to write to `{}` (a named pipe); Ctrl-C stops", display(path))
}

/// Refuses `--in-place` on what is not a regular file (a FIFO, a device), before it is opened:
/// it could not be replaced, and opening a FIFO would wait.
pub fn check_in_place(path: &Path) -> Result<(), Failed> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            Err(FileError::InPlaceNotFile { path: display(path), kind: fsio::kind_name(m.file_type()) }.into())
        }
        // A missing file is said by the reader.
        _ => Ok(()),
    }
}

/// Whether the path is this process's own stdout (`/dev/stdout`, `/proc/self/fd/1`, or the file
/// stdout is redirected to): the output is then written to stdout, as with `-`.
#[cfg(unix)]
fn is_own_stdout(meta: &std::fs::Metadata) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let stdout = io::stdout();
    let Ok(fd) = stdout.as_fd().try_clone_to_owned() else { return false };
    File::from(fd).metadata().is_ok_and(|own| (own.dev(), own.ino()) == (meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn is_own_stdout(_: &std::fs::Metadata) -> bool {
    false
}

/// The file a write to `path` lands in: symbolic links followed to their end. A link whose
/// file does not exist yet gives that file (the write creates it); a loop is an error.
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    // As many links as Linux follows.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) => dir.join(to),
                    None => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Whether the path ends with `/`: it names a folder.
fn ends_with_separator(path: &Path) -> bool {
    path.as_os_str().to_str().and_then(|s| s.chars().last()).is_some_and(std::path::is_separator)
}

/// An overwritten file's owner goes to its replacement where the process may give it (root may;
/// a user may keep a group they are in); otherwise the new file is the user's.
#[cfg(unix)]
fn keep_owner(file: &File, of: &std::fs::Metadata) {
    use std::os::unix::fs::{fchown, MetadataExt};
    let now = file.metadata().map(|m| (m.uid(), m.gid())).ok();
    if now == Some((of.uid(), of.gid())) {
        return;
    }
    if fchown(file, Some(of.uid()), Some(of.gid())).is_err() {
        let _ = fchown(file, None, Some(of.gid()));
    }
}

#[cfg(not(unix))]
fn keep_owner(_: &File, _: &std::fs::Metadata) {}

#[cfg(unix)]
fn default_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o666))
}

#[cfg(not(unix))]
fn default_permissions() -> Option<std::fs::Permissions> {
    None
}

/// Opens a trace the user named through the front door, `fsio::open_trace`: `-` is stdin; a
/// FIFO is read, and a wait for its writer announced.
pub fn open_trace(path: &Path, forced: Option<Format>) -> Result<TraceInput, FileError> {
    if path == Path::new("-") {
        return fsio::open_trace(TraceSource::Stdin, forced).map_err(|e| read_failed("<stdin>", e, "a trace"));
    }
    open_trace_file(path, forced)
}

/// Opens a trace file, as `open_trace` does, where `-` is a file's name (the REPL reads its
/// input from stdin). A URL (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`) is read from
/// its store, streamed (`remote`).
pub fn open_trace_file(path: &Path, forced: Option<Format>) -> Result<TraceInput, FileError> {
    let path = match super::remote::locate(path)? {
        super::remote::Location::Local(path) => path,
        super::remote::Location::Remote(remote) => {
            let (reader, len) = remote.open()?;
            let source = TraceSource::Stream { reader: Box::new(reader), name: Path::new(remote.key()), len };
            return fsio::open_trace(source, forced).map_err(|e| read_failed(remote.url(), e, "a trace"));
        }
    };
    let path = path.as_path();
    let waiting = waiting_note(path);
    let source = TraceSource::File { path, special: Special::Read { waiting: &waiting } };
    fsio::open_trace(source, forced).map_err(|e| read_failed(&display(path), e, "a trace"))
}

/// Where the output goes. Everything is written to a temp file first; `commit` moves it into
/// place (or copies it to stdout, a device or a pipe), so a failed run leaves no partial output
/// anywhere.
pub struct Output {
    /// Where the output goes (`None`: stdout). A file's is the file a symbolic link points to.
    target: Option<PathBuf>,
    /// The target as the user named it, for messages.
    name: String,
    temp: Temp,
}

enum Temp {
    /// Beside the target file, on the list of temp files a signal removes.
    Named(tempfile::NamedTempFile, signals::Registered),
    Anonymous(File),
}

impl Output {
    pub fn create(target: Option<&Path>) -> Result<Output, Failed> {
        let stdout = || {
            let name = "<stdout>".to_string();
            match tempfile::tempfile() {
                Ok(f) => Ok(Output { target: None, name, temp: Temp::Anonymous(f) }),
                Err(e) => Err(write_failed(name, &e)),
            }
        };
        let Some(path) = target.filter(|p| *p != Path::new("-")) else { return stdout() };
        let name = display(path);
        let not_a_file = |reason: String| Failed::from(FileError::NotAFile { path: display(path), reason });
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(not_a_file("it is a folder".into())),
            Ok(m) if is_own_stdout(&m) => return stdout(),
            // A device or a pipe (`-o /dev/null`, a FIFO) is written into, not replaced: the
            // output waits in an anonymous temp file until `commit` copies it there.
            Ok(m) if !m.is_file() => {
                let f = tempfile::tempfile().map_err(|e| write_failed(name.clone(), &e))?;
                return Ok(Output { target: Some(path.to_path_buf()), name, temp: Temp::Anonymous(f) });
            }
            Ok(_) => {}
            // Said below: the folder it would go in is missing, or is a file.
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {}
            Err(e) => return Err(write_failed(name, &e)),
        }
        if ends_with_separator(path) {
            return Err(not_a_file("it ends with `/`, so it names a folder, and there is no such folder".into()));
        }
        // Through a symbolic link, the file it points to is written, beside itself.
        let real = follow_links(path).map_err(|e| write_failed(name.clone(), &e))?;
        let dir = match real.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(write_failed_because(name, format!("`{}` is not a folder", dir.display()))),
            Err(_) => return Err(write_failed_because(name, format!("the folder `{}` does not exist", dir.display()))),
        }
        let mut builder = tempfile::Builder::new();
        builder.prefix(".skel-").suffix(".tmp");
        let existing = std::fs::metadata(&real).ok();
        // The mode a new output gets: the target's own when it exists (`--in-place`,
        // overwriting), else 0666 less the umask, as any file the user creates.
        if let Some(mode) = existing.as_ref().map(|m| m.permissions()).or_else(default_permissions) {
            builder.permissions(mode);
        }
        let temp = builder.tempfile_in(&dir).map_err(|e| write_failed(name.clone(), &e))?;
        let registered = signals::register(temp.path());
        if let Some(m) = &existing {
            // The owner first: changing it may clear the set-id bits of the mode.
            keep_owner(temp.as_file(), m);
            // The umask applied at creation; an overwritten file keeps its exact mode.
            temp.as_file().set_permissions(m.permissions()).map_err(|e| write_failed(name.clone(), &e))?;
        }
        Ok(Output { target: Some(real), name, temp: Temp::Named(temp, registered) })
    }

    /// Writes a whole output with `write`, then moves it into place (`target` as `create` takes
    /// it): nothing lands unless all of it was written.
    pub fn write(target: Option<&Path>, write: impl FnOnce(&mut File) -> Result<(), Failed>) -> Result<(), Failed> {
        let output = Output::create(target)?;
        let mut file = output.file()?;
        write(&mut file)?;
        drop(file);
        output.commit()
    }

    /// The file to write the trace into.
    pub fn file(&self) -> Result<File, Failed> {
        let f = match &self.temp {
            Temp::Named(t, _) => t.as_file().try_clone(),
            Temp::Anonymous(f) => f.try_clone(),
        };
        f.map_err(|source| write_failed(self.name.clone(), &source))
    }

    /// Moves the finished output into place.
    pub fn commit(self) -> Result<(), Failed> {
        let name = self.name;
        let fail = |source: io::Error| write_failed(name.clone(), &source);
        match (self.temp, self.target) {
            (Temp::Named(t, _registered), Some(target)) => {
                t.as_file().sync_all().map_err(fail)?;
                t.persist(&target).map_err(|e| fail(e.error))?;
            }
            (temp, target) => {
                let mut f = match temp {
                    Temp::Anonymous(f) => f,
                    Temp::Named(t, _) => t.into_file(),
                };
                f.rewind().map_err(fail)?;
                let mut sink: Box<dyn Write> = match &target {
                    Some(special) => Box::new(std::fs::OpenOptions::new().write(true).open(special).map_err(fail)?),
                    None => Box::new(io::stdout().lock()),
                };
                // A reader that stops early (`| head`) is not an error of ours.
                let copied = io::copy(&mut f, &mut sink).and_then(|_| sink.flush());
                match copied {
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    other => other.map_err(fail)?,
                }
            }
        }
        Ok(())
    }
}

/// Writes a text file atomically, through `Output` (`None` or `-`: stdout), as every command
/// writes one: `skel fmt`, `skel check --fix`, the REPL's `:save`.
pub fn write_text(target: Option<&Path>, text: &str) -> Result<(), Failed> {
    let name = target.filter(|p| *p != Path::new("-")).map_or_else(|| "<stdout>".to_string(), display);
    Output::write(target, |f| f.write_all(text.as_bytes()).and_then(|()| f.flush()).map_err(|e| write_failed(name, &e)))
}

/// A failed write (nothing was written).
fn write_failed(path: String, e: &io::Error) -> Failed {
    write_failed_because(path, reason(e))
}

fn write_failed_because(path: String, reason: String) -> Failed {
    FileError::Write { path, reason }.into()
}

/// The files under a folder whose extension is one of a list (`skel check`'s manifest files,
/// `skel fmt`'s scripts), its subfolders included, sorted. Symbolic links are followed, but each
/// folder and each file is taken once (by device and inode), so a link back up (`self -> .`) is
/// no loop and counts nothing twice. What is not a regular file (a FIFO, a device) and a link
/// back to a folder being read are skipped, each said through the caller's `skipped`.
pub struct Walk<'a> {
    extensions: &'a [&'a str],
    files: Vec<PathBuf>,
    /// The folders entered, and the files taken.
    seen: std::collections::HashSet<FileId>,
    /// The folders being read, from the top one down (a link to one of them is a loop).
    open: Vec<(FileId, PathBuf)>,
}

/// What a folder walk leaves out, for the command's own warning.
pub enum Skipped {
    /// `path` leads back to `to`, a folder being read.
    Loop { path: String, to: String },
    /// `path` is not a regular file (`kind`: a FIFO, a device, ...).
    NotAFile { path: String, kind: &'static str },
}

type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<FileId> {
    None
}

impl<'a> Walk<'a> {
    /// The files under `dir` with one of `extensions` (without the dot), in path order.
    pub fn files(dir: &Path, extensions: &'a [&'a str], mut skipped: impl FnMut(Skipped)) -> Vec<PathBuf> {
        let mut walk = Walk { extensions, files: Vec::new(), seen: std::collections::HashSet::new(), open: Vec::new() };
        walk.folder(dir, &mut skipped);
        walk.files.sort();
        walk.files
    }

    fn folder(&mut self, dir: &Path, skipped: &mut impl FnMut(Skipped)) {
        let id = std::fs::metadata(dir).ok().as_ref().and_then(file_id);
        if let Some(id) = id {
            if let Some((_, to)) = self.open.iter().find(|(open, _)| *open == id) {
                skipped(Skipped::Loop { path: display(dir), to: display(to) });
                return;
            }
            if !self.seen.insert(id) {
                return;
            }
            self.open.push((id, dir.to_path_buf()));
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        // In name order, so which of two paths to one file is taken does not vary.
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let meta = std::fs::metadata(&p);
            if meta.as_ref().is_ok_and(|m| m.is_dir()) {
                self.folder(&p, skipped);
                continue;
            }
            if !p.extension().and_then(|e| e.to_str()).is_some_and(|e| self.extensions.contains(&e)) {
                continue;
            }
            match meta {
                Ok(m) if m.is_file() => {
                    if file_id(&m).is_none_or(|id| self.seen.insert(id)) {
                        self.files.push(p);
                    }
                }
                Ok(m) => skipped(Skipped::NotAFile { path: display(&p), kind: fsio::kind_name(m.file_type()) }),
                // A broken link: reading it says why.
                Err(_) => self.files.push(p),
            }
        }
        if id.is_some() {
            self.open.pop();
        }
    }
}
