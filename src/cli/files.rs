//! Files at the edge: reading scripts and traces (`-` is stdin), and writing output atomically
//! (a temp file beside the target, renamed into place only when everything succeeded).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use skel_trace::Format;
use thiserror::Error;

use super::{report, Failed};

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
    #[error("`--in-place` needs a trace file, not stdin")]
    #[diagnostic(code(skel::usage::in_place_stdin), help("use `-o FILE` or redirect stdout instead"))]
    InPlaceStdin,
    #[error("the script and the trace cannot both be read from stdin")]
    #[diagnostic(code(skel::usage::two_stdins), help("pass one of them as a file"))]
    TwoStdins,
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

/// Reads a script; returns its display name and text.
/// The folder `insert(..., file("x"))` paths are relative to: the script's (`None`, the working
/// directory, for a script on stdin or in it).
pub fn script_folder(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty() && path != Path::new("-"))
}

pub fn read_script(path: &Path) -> Result<(String, String), Failed> {
    let name = display(path);
    let mut bytes = Vec::new();
    let res = if path == Path::new("-") {
        io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    if let Err(source) = res {
        report::diagnostic(FileError::Read { help: read_help(&source), path: name, reason: reason(&source) });
        return Err(Failed::Error);
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok((name, s)),
        Err(_) => {
            report::diagnostic(FileError::NotUtf8 { path: name });
            Err(Failed::Error)
        }
    }
}

/// Whether the path names something that exists and is not a regular file or a folder: a
/// device or a pipe, which renaming a temp file over would destroy.
fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// The mode a new output gets: the target's own when it exists (`--in-place`, overwriting),
/// else 0666 less the umask, as any file the user creates.
fn target_permissions(target: &Path) -> Option<std::fs::Permissions> {
    match std::fs::metadata(target) {
        Ok(m) => Some(m.permissions()),
        Err(_) => default_permissions(),
    }
}

#[cfg(unix)]
fn default_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o666))
}

#[cfg(not(unix))]
fn default_permissions() -> Option<std::fs::Permissions> {
    None
}

/// An opened trace input, its format decided.
pub struct Input {
    pub reader: Box<dyn BufRead + Send>,
    pub format: Format,
    /// Size in bytes when known (for progress).
    pub len: Option<u64>,
}

pub fn open_trace(path: &Path, forced: Option<Format>) -> Result<Input, Failed> {
    let name = display(path);
    let fail = |source: io::Error| {
        report::diagnostic(FileError::Read { help: read_help(&source), path: name.clone(), reason: reason(&source) });
        Failed::Error
    };
    let (mut reader, len): (Box<dyn BufRead + Send>, Option<u64>) = if path == Path::new("-") {
        (Box::new(BufReader::with_capacity(1 << 16, io::stdin())), None)
    } else {
        let f = File::open(path).map_err(fail)?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, f)), len)
    };
    let format = match forced.or_else(|| Format::from_extension(path)) {
        Some(f) => f,
        None => Format::sniff(reader.fill_buf().map_err(fail)?),
    };
    Ok(Input { reader, format, len })
}

/// Where the output goes. Everything is written to a temp file first; `commit` moves it into
/// place (or copies it to stdout, a device or a pipe), so a failed run leaves no partial output
/// anywhere.
pub struct Output {
    target: Option<PathBuf>,
    temp: Temp,
}

enum Temp {
    Named(tempfile::NamedTempFile),
    Anonymous(File),
}

impl Output {
    pub fn create(target: Option<&Path>) -> Result<Output, Failed> {
        let fail = |path: String, source: io::Error| {
            report::diagnostic(FileError::Write { path, reason: reason(&source) });
            Failed::Error
        };
        match target {
            // A device or a pipe (`-o /dev/null`, a FIFO) is written into, not replaced: the
            // output waits in an anonymous temp file until `commit` copies it there.
            Some(p) if p != Path::new("-") && is_special(p) => {
                let f = tempfile::tempfile().map_err(|e| fail(display(p), e))?;
                Ok(Output { target: Some(p.to_path_buf()), temp: Temp::Anonymous(f) })
            }
            Some(p) if p != Path::new("-") => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                if !dir.is_dir() {
                    let reason = format!("the folder `{}` does not exist", dir.display());
                    report::diagnostic(FileError::Write { path: display(p), reason });
                    return Err(Failed::Error);
                }
                let mut builder = tempfile::Builder::new();
                builder.prefix(".skel-").suffix(".tmp");
                let existing = std::fs::metadata(p).ok().map(|m| m.permissions());
                if let Some(mode) = target_permissions(p) {
                    builder.permissions(mode);
                }
                let temp = builder.tempfile_in(&dir).map_err(|e| fail(display(p), e))?;
                if let Some(mode) = existing {
                    // The umask applied at creation; an overwritten file keeps its exact mode.
                    temp.as_file().set_permissions(mode).map_err(|e| fail(display(p), e))?;
                }
                Ok(Output { target: Some(p.to_path_buf()), temp: Temp::Named(temp) })
            }
            _ => {
                let f = tempfile::tempfile().map_err(|e| fail("<stdout>".into(), e))?;
                Ok(Output { target: None, temp: Temp::Anonymous(f) })
            }
        }
    }

    /// The file to write the trace into.
    pub fn file(&self) -> Result<File, Failed> {
        let f = match &self.temp {
            Temp::Named(t) => t.as_file().try_clone(),
            Temp::Anonymous(f) => f.try_clone(),
        };
        f.map_err(|source| {
            report::diagnostic(FileError::Write { path: self.name(), reason: reason(&source) });
            Failed::Error
        })
    }

    fn name(&self) -> String {
        self.target.as_deref().map_or("<stdout>".into(), display)
    }

    /// Moves the finished output into place.
    pub fn commit(self) -> Result<(), Failed> {
        let name = self.name();
        let fail = |source: io::Error| {
            report::diagnostic(FileError::Write { path: name.clone(), reason: reason(&source) });
            Failed::Error
        };
        match (self.temp, self.target) {
            (Temp::Named(t), Some(target)) => {
                t.as_file().sync_all().map_err(fail)?;
                t.persist(&target).map_err(|e| fail(e.error))?;
            }
            (temp, target) => {
                let mut f = match temp {
                    Temp::Anonymous(f) => f,
                    Temp::Named(t) => t.into_file(),
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
