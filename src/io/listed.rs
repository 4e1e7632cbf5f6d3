//! A directory's listing as a negative cache: opening a file of that
//! directory that was not listed fails with `NotFound` without a system
//! call. Opening a partition reads up to eight optional checkpoint files,
//! most of them missing in a young partition; at 10,000 partitions those
//! failed opens were a third of a store's open.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{FileHandle, FileLock, FileSystem, OpenMode};

/// `inner`, with `dir`'s listing known (see the module docs). Files the
/// view creates, renames or removes in `dir` keep the listing current;
/// changes made past it are the caller's to avoid while it is used.
#[derive(Debug)]
pub struct ListedDir<'a> {
    inner: &'a dyn FileSystem,
    dir: PathBuf,
    names: Mutex<HashSet<String>>,
}

impl<'a> ListedDir<'a> {
    /// A view of `inner` knowing that `dir` holds exactly `names`.
    pub fn new(inner: &'a dyn FileSystem, dir: &Path, names: impl IntoIterator<Item = String>) -> Self {
        ListedDir { inner, dir: dir.to_path_buf(), names: Mutex::new(names.into_iter().collect()) }
    }

    /// The name of `path` if it is directly in the listed directory.
    fn listed_name(&self, path: &Path) -> Option<String> {
        (path.parent() == Some(&*self.dir)).then(|| path.file_name()?.to_str().map(str::to_owned)).flatten()
    }
}

impl FileSystem for ListedDir<'_> {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let name = self.listed_name(path);
        if let (Some(name), OpenMode::Existing) = (&name, mode) {
            if !self.names.lock().contains(name) {
                return Err(io::ErrorKind::NotFound.into());
            }
        }
        let file = self.inner.open(path, mode)?;
        if let Some(name) = name {
            self.names.lock().insert(name);
        }
        Ok(file)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)?;
        if let Some(name) = self.listed_name(path) {
            self.names.lock().remove(&name);
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)?;
        let mut names = self.names.lock();
        if let Some(from) = self.listed_name(from) {
            names.remove(&from);
        }
        if let Some(to) = self.listed_name(to) {
            names.insert(to);
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }

    fn sync_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_all(dir)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        match self.listed_name(path) {
            Some(name) => Ok(self.names.lock().contains(&name)),
            None => self.inner.exists(path),
        }
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(dir)
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.inner.lock_exclusive(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFileSystem;

    #[test]
    fn unlisted_files_are_missing_and_changes_are_tracked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let view = ListedDir::new(&StdFileSystem, dir.path(), ["a".to_string()]);
        assert!(view.open(&dir.path().join("a"), OpenMode::Existing).is_ok());
        // Written behind the view's back: the view does not see it.
        std::fs::write(dir.path().join("b"), b"y").unwrap();
        let missing = view.open(&dir.path().join("b"), OpenMode::Existing).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        view.open(&dir.path().join("c"), OpenMode::Create).unwrap();
        assert!(view.exists(&dir.path().join("c")).unwrap());
        view.rename(&dir.path().join("c"), &dir.path().join("d")).unwrap();
        assert!(!view.exists(&dir.path().join("c")).unwrap());
        assert!(view.open(&dir.path().join("d"), OpenMode::Existing).is_ok());
        view.remove_file(&dir.path().join("d")).unwrap();
        assert!(!view.exists(&dir.path().join("d")).unwrap());
    }
}
