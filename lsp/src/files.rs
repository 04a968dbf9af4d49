//! The insert files a script names (`insert(..., file("x.yaml"))`), for the compiler: read
//! as `skel::Folder` reads them (relative to the script's folder, bounded, a FIFO or a device
//! refused), and kept by path with the modification time and size they were read at, so a
//! keystroke reads again only a file that changed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use skel::{Files, Folder};

/// The files read so far (the main loop's: each keystroke is analyzed there).
#[derive(Default)]
pub struct InsertFiles {
    read: RefCell<HashMap<PathBuf, Read>>,
}

/// A file's text (or why it cannot be had) as of its modification time and size.
struct Read {
    stamp: (SystemTime, u64),
    text: Result<String, String>,
}

/// The files kept at most; past it, all are dropped (and read again when named).
const KEPT: usize = 1024;

impl InsertFiles {
    /// The files of a script in `folder` (`None`: the working directory).
    pub fn of<'a>(&'a self, folder: Option<&Path>) -> ScriptFiles<'a> {
        ScriptFiles { folder: Folder::new(folder), cache: self }
    }
}

/// The files one script names, through the cache.
pub struct ScriptFiles<'a> {
    folder: Folder,
    cache: &'a InsertFiles,
}

impl Files for ScriptFiles<'_> {
    fn name(&self, path: &str) -> String {
        self.folder.name(path)
    }

    fn read(&self, path: &str) -> Result<String, String> {
        let full = self.folder.path(path);
        // Only a regular file with a modification time is kept; anything else (missing, a
        // FIFO, a device) is asked of the folder each time, which says why it is refused.
        let stamp = std::fs::metadata(&full)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let Some(stamp) = stamp else { return self.folder.read(path) };
        if let Some(kept) = self.cache.read.borrow().get(&full).filter(|r| r.stamp == stamp) {
            return kept.text.clone();
        }
        let text = self.folder.read(path);
        let mut read = self.cache.read.borrow_mut();
        if read.len() >= KEPT {
            read.clear();
        }
        read.insert(full, Read { stamp, text: text.clone() });
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_again_only_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("skel-lsp-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pod.yaml");
        std::fs::write(&file, "kind: Pod\n").unwrap();
        let cache = InsertFiles::default();
        let files = cache.of(Some(&dir));
        assert_eq!(files.name("pod.yaml"), file.display().to_string());
        assert_eq!(files.read("pod.yaml").unwrap(), "kind: Pod\n");
        // Kept: the copy is what is read while the file's time and size stay.
        let stamp = cache.read.borrow()[&file].stamp;
        cache.read.borrow_mut().get_mut(&file).unwrap().text = Ok("kept".into());
        assert_eq!(files.read("pod.yaml").unwrap(), "kept");
        // Changed (its size differs): read again.
        std::fs::write(&file, "kind: Service\n").unwrap();
        assert_ne!(cache.read.borrow()[&file].stamp.1, std::fs::metadata(&file).unwrap().len());
        assert_eq!(files.read("pod.yaml").unwrap(), "kind: Service\n");
        assert_ne!(cache.read.borrow()[&file].stamp, stamp);
        // Missing: the folder's reason, nothing kept.
        assert_eq!(files.read("missing.yaml"), Err("no such file".into()));
        assert!(!cache.read.borrow().contains_key(&dir.join("missing.yaml")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
