//! The real file system: `std::fs` plus `memmap2`. Unix only (positional
//! I/O through `FileExt`, directory fsync).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use memmap2::{MmapMut, MmapOptions};

use super::read_map::ReadMap;
use super::{EmptyMapping, FileHandle, FileLock, FileSystem, MappedBytes, MappedBytesMut, Mapping, OpenMode};

/// The soft limit on open files (`RLIMIT_NOFILE`) of this process, read
/// from `/proc/self/limits` (Linux); `None` where that cannot be read or
/// says "unlimited".
pub fn open_file_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFileSystem;

impl FileSystem for StdFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        match mode {
            OpenMode::CreateNew => options.create_new(true),
            OpenMode::Create => options.create(true),
            OpenMode::Existing => &mut options,
        };
        let file = options.open(path)?;
        Ok(Arc::new(StdFile { file, reads: ReadMap::new() }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            // Non-UTF-8 names are not ours: skip them rather than fail.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[expect(unsafe_code, reason = "syncfs(2) has no std wrapper; its contract is below")]
    fn sync_all(&self, dir: &Path) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let dir = File::open(dir)?;
        // SAFETY: `dir` is an open descriptor for the duration of the call;
        // syncfs reads no memory of ours.
        let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir_all(dir)
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        // flock(2): held per open file description, so a second open of the
        // same directory in this process conflicts too.
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Holds the locked file open; closing it releases the lock.
#[derive(Debug)]
struct StdLock {
    _file: File,
}

impl FileLock for StdLock {}

#[derive(Debug)]
struct StdFile {
    file: File,
    /// The known length, and the mapping reads may be copied from.
    reads: ReadMap,
}

impl FileHandle for StdFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.reads.read_at(&self.file, buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let result = self.file.write_all_at(buf, pos);
        if result.is_ok() {
            self.reads.wrote(pos + buf.len() as u64);
        } else if let Ok(m) = self.file.metadata() {
            // A failed write may still have extended the file.
            self.reads.wrote(m.len());
        }
        result
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.reads.set_len(&self.file, len)
    }

    // The read mapping's own `SAFETY:` argument is in `read_map::map`; its
    // premise (only this handle changes the file) is this fn's contract.
    #[expect(unsafe_code, reason = "the trait's contract for read mappings")]
    unsafe fn map_for_reads(&self, capacity: u64) {
        self.reads.enable(&self.file, capacity);
    }

    fn read_exact_into(&self, buf: &mut Vec<u8>, pos: u64, len: usize) -> io::Result<()> {
        if self.reads.extend_from(buf, pos, len) {
            return Ok(());
        }
        // Not mapped yet (or not covered): read (mapping it on the way).
        crate::io::read_exact_appending(self, buf, pos, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    #[expect(unsafe_code, reason = "mmap is the crate's one unsafe call; its contract is below")]
    unsafe fn map(&self, len: usize) -> io::Result<Box<dyn Mapping>> {
        if len == 0 {
            return Ok(Box::new(EmptyMapping));
        }
        // SAFETY: the caller upholds `FileHandle::map`'s contract: the file
        // is at least `len` long and nothing shrinks, writes or maps it
        // while this mapping lives (the engine's callers, in
        // `segment::entry_file`, map only index files of a segment whose
        // log holds its directory's exclusive lock, and drop the mapping
        // before resizing). The mapping never extends past `len`, so no
        // access can fault.
        let map = unsafe { MmapOptions::new().len(len).map_mut(&self.file)? };
        // Index pages are touched one at a time (appends fill them in
        // order, lookups binary-search): no readahead. Without this advice
        // the first fault on a preallocated index reads ahead (and zeroes)
        // up to the device's `read_ahead_kb` of holes: 8 MiB here, ~2.4 ms
        // on the append path once per index file and that much page cache.
        #[cfg(unix)]
        map.advise(memmap2::Advice::Random)?;
        Ok(Box::new(StdMapping { map }))
    }
}

#[derive(Debug)]
struct StdMapping {
    map: MmapMut,
}

impl Mapping for StdMapping {
    fn bytes(&self) -> io::Result<MappedBytes<'_>> {
        Ok(MappedBytes::slice(&self.map))
    }

    fn bytes_mut(&mut self) -> io::Result<MappedBytesMut<'_>> {
        Ok(MappedBytesMut::slice(&mut self.map))
    }

    fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::read_exact_at;

    #[test]
    fn positional_io_modes_and_directory_calls() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFileSystem;
        let path = dir.path().join("a");
        assert!(fs.open(&path, OpenMode::Existing).is_err(), "missing file");
        let file = fs.open(&path, OpenMode::CreateNew).unwrap();
        assert!(fs.open(&path, OpenMode::CreateNew).is_err(), "already exists");
        file.write_all_at(b"hello world", 0).unwrap();
        file.write_all_at(b"W", 6).unwrap();
        let mut buf = [0u8; 5];
        read_exact_at(&*file, &mut buf, 6).unwrap();
        assert_eq!(&buf, b"World");
        let mut past = [0u8; 4];
        let err = read_exact_at(&*file, &mut past, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        file.set_len(5).unwrap();
        file.sync_data().unwrap();
        assert_eq!(file.size().unwrap(), 5);
        fs.rename(&path, &dir.path().join("b")).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(fs.list_dir(dir.path()).unwrap(), ["b"]);
        assert!(!fs.exists(&path).unwrap());
        fs.remove_file(&dir.path().join("b")).unwrap();
        assert!(fs.list_dir(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn open_file_limit_is_read() {
        let limit = open_file_limit().expect("Linux has /proc/self/limits");
        assert!(limit >= 8, "{limit}");
    }

    #[test]
    fn exclusive_lock_conflicts_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFileSystem;
        let path = dir.path().join(".lock");
        let held = fs.lock_exclusive(&path).unwrap();
        let err = fs.lock_exclusive(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        fs.lock_exclusive(&path).unwrap();
    }

    #[test]
    fn atomic_write_replaces_and_small_read_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFileSystem;
        crate::io::write_file_atomic(&fs, dir.path(), "meta", b"one").unwrap();
        crate::io::write_file_atomic(&fs, dir.path(), "meta", b"two!").unwrap();
        assert_eq!(crate::io::read_small_file(&fs, &dir.path().join("meta"), 10).unwrap(), b"two!");
        assert!(crate::io::read_small_file(&fs, &dir.path().join("meta"), 3).is_err());
        assert_eq!(fs.list_dir(dir.path()).unwrap(), ["meta"], "no temp file left");
    }

    #[test]
    fn mapping_writes_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFileSystem;
        let file = fs.open(&dir.path().join("m"), OpenMode::Create).unwrap();
        // SAFETY: a file of this test's own temp directory, sized before it
        // is mapped; nothing else opens it.
        #[expect(unsafe_code, reason = "test mappings")]
        let (empty, mut map) = unsafe {
            let empty = file.map(0).unwrap();
            file.set_len(16).unwrap();
            (empty, file.map(16).unwrap())
        };
        assert!(empty.bytes().unwrap().is_empty(), "empty maps need no mmap");
        map.bytes_mut().unwrap()[3] = 7;
        map.flush().unwrap();
        let mut buf = [0u8; 1];
        read_exact_at(&*file, &mut buf, 3).unwrap();
        assert_eq!(buf[0], 7);
    }
}
