//! A file system that can hold one `sync_data` call open, or one write of
//! log data: the first fsync of a file (or the first write of a segment's
//! `.log` file) under an armed directory blocks until released, so a test
//! can see what other threads manage to do while it is in flight.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::io::{FileHandle, FileLock, FileSystem, Mapping, OpenMode, StdFileSystem};
use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct GateState {
    /// Fsyncs of files under this directory block (the first one only).
    armed: Option<PathBuf>,
    /// Writes of `.log` files are held instead of fsyncs.
    writes: bool,
    blocked: bool,
    released: bool,
    /// The held call fails with an I/O error once released.
    fail: bool,
    /// The next fsync of any file fails (not held).
    fail_next_sync: bool,
}

/// The real file system, with one fsync that can be held (see the module).
#[derive(Debug, Clone, Default)]
pub struct GatedFs {
    state: Arc<(Mutex<GateState>, Condvar)>,
}

impl GatedFs {
    /// The next fsync of a file under `dir` blocks until [`GatedFs::release`].
    pub fn arm(&self, dir: &Path) {
        let mut s = self.state.0.lock();
        *s = GateState { armed: Some(dir.to_path_buf()), ..GateState::default() };
    }

    /// The next write of a segment's log file under `dir` blocks until
    /// [`GatedFs::release`].
    pub fn arm_writes(&self, dir: &Path) {
        let mut s = self.state.0.lock();
        *s = GateState { armed: Some(dir.to_path_buf()), writes: true, ..GateState::default() };
    }

    /// Waits until an fsync is held (false after `timeout`).
    pub fn wait_blocked(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.0.lock();
        while !s.blocked {
            if self.state.1.wait_until(&mut s, deadline).timed_out() {
                return s.blocked;
            }
        }
        true
    }

    /// Whether the held fsync is still held.
    pub fn is_blocked(&self) -> bool {
        let s = self.state.0.lock();
        s.blocked && !s.released
    }

    /// Lets the held fsync (and any later one) through.
    pub fn release(&self) {
        self.release_with(false);
    }

    /// Lets the held call go on and fail with an I/O error (a disk that
    /// says no); later ones go through.
    pub fn release_failing(&self) {
        self.release_with(true);
    }

    /// The next fsync (of any file) fails with an I/O error, at once.
    pub fn fail_next_sync(&self) {
        self.state.0.lock().fail_next_sync = true;
    }

    fn release_with(&self, fail: bool) {
        let mut s = self.state.0.lock();
        s.released = true;
        s.fail = fail;
        s.armed = None;
        self.state.1.notify_all();
    }

    /// Holds the call if it is the armed one; its error, if it is to fail.
    fn hold_if_armed(&self, path: &Path, write: bool) -> io::Result<()> {
        let mut s = self.state.0.lock();
        let log_file = path.extension().is_some_and(|e| e == "log");
        if s.blocked
            || s.writes != write
            || (write && !log_file)
            || !s.armed.as_deref().is_some_and(|d| path.starts_with(d))
        {
            return Ok(());
        }
        s.blocked = true;
        self.state.1.notify_all();
        // Bounded: a test that forgets to release fails after a minute.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !s.released && !self.state.1.wait_until(&mut s, deadline).timed_out() {}
        match std::mem::take(&mut s.fail) {
            true => Err(io::Error::other("the gate failed this call")),
            false => Ok(()),
        }
    }
}

impl FileSystem for GatedFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let inner = StdFileSystem.open(path, mode)?;
        Ok(Arc::new(GatedFile { inner, path: path.to_path_buf(), fs: self.clone() }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFileSystem.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(dir)
    }
    fn sync_all(&self, dir: &Path) -> io::Result<()> {
        StdFileSystem.sync_all(dir)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        StdFileSystem.exists(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFileSystem.remove_dir_all(dir)
    }
    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        StdFileSystem.lock_exclusive(path)
    }
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn FileHandle>,
    path: PathBuf,
    fs: GatedFs,
}

impl FileHandle for GatedFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.fs.hold_if_armed(&self.path, true)?;
        self.inner.write_all_at(buf, pos)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fs.hold_if_armed(&self.path, false)?;
        if std::mem::take(&mut self.fs.state.0.lock().fail_next_sync) {
            return Err(io::Error::other("the gate failed this fsync"));
        }
        self.inner.sync_data()
    }
    unsafe fn map(&self, len: usize) -> io::Result<Box<dyn Mapping>> {
        // SAFETY: forwarded; the engine upholds the contract for this handle.
        unsafe { self.inner.map(len) }
    }
}
