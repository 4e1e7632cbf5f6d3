//! A bounded cache of open files: a [`FileSystem`] over another one whose
//! handles open their file on demand and close it again when the pool needs
//! the descriptor for another file (Kafka keeps every segment's files open
//! and mapped, so its file-descriptor and `vm.max_map_count` needs grow with
//! the partition count; KAFKA-7283, Redpanda's open-file limiter).
//!
//! Each pooled handle ("entry") holds at most one descriptor of the inner
//! file system and at most one mapping (an index file's writable one, or a
//! log file's read mapping, which lives inside the inner handle). At most
//! `capacity` entries hold either at any moment, so the pool never has more
//! than `capacity` descriptors or `capacity` mappings. Which entry gives its
//! descriptor up is chosen by CLOCK (second chance): every access sets the
//! entry's referenced bit, the sweep clears it once before evicting.
//!
//! Closing an entry loses nothing: written bytes are in the page cache (a
//! later `fdatasync` through a new descriptor of the same file makes them
//! durable: Linux syncs the inode's dirty pages whichever descriptor wrote
//! them, and reports a writeback error to the first later `fsync` that has
//! not seen it), and an unmapped shared mapping's dirty pages stay with the
//! file. An entry in use (an operation running on it, a mapping guard held)
//! is never evicted: eviction only takes an entry's lock with `try_write`.
//!
//! A file removed, or replaced by a rename, while entries of it live would
//! make a reopen by path fail or open another file: before such a change
//! the pool detaches those entries (never reopened by path again). One
//! holding its descriptor keeps it, pinned, so readers keep reading the old
//! file as with plain open handles, while pins hold at most a quarter of
//! the pool;
//! past that, and for an entry already closed, its operations then fail
//! with `NotFound` (a log reader reads again from the current segments).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{FileHandle, FileLock, FileSystem, MappedBytes, MappedBytesMut, Mapping, OpenMode, SharedFs};

/// How long an open waits for a descriptor while every pooled one is in
/// use or pinned, before failing.
const ADMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`FileSystem`] whose open files share at most `capacity` descriptors
/// and mappings (see the module docs).
#[derive(Clone)]
pub struct FilePool {
    shared: Arc<Shared>,
}

/// What a [`FilePool`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// The most descriptors it may hold.
    pub capacity: usize,
    /// Descriptors held now.
    pub open_files: usize,
    /// The most held at once.
    pub peak_open_files: usize,
    /// Mappings held now.
    pub mappings: usize,
    /// Bytes mapped now (index mappings; a log file's read mapping is
    /// counted in `mappings` but sized by the inner file system).
    pub mapped_bytes: u64,
    /// Files opened (first opens and reopens).
    pub opens: u64,
    /// Descriptors closed to make room.
    pub evictions: u64,
}

struct Shared {
    inner: SharedFs,
    capacity: usize,
    /// Entries pinned by `Entry::detach`.
    pinned: AtomicUsize,
    open: AtomicUsize,
    peak: AtomicUsize,
    mappings: AtomicUsize,
    mapped_bytes: AtomicU64,
    opens: AtomicU64,
    evictions: AtomicU64,
    /// Entries holding a descriptor, in CLOCK order (dead ones are dropped
    /// as the hand passes).
    ring: Mutex<Ring>,
    /// Signalled when a descriptor is given back.
    freed: Condvar,
    /// Live entries by path, for removals and renames.
    by_path: Mutex<Paths>,
}

#[derive(Default)]
struct Ring {
    entries: Vec<Weak<Entry>>,
    hand: usize,
}

/// Live entries by path (an entry leaves when it is dropped).
#[derive(Default)]
struct Paths {
    map: HashMap<PathBuf, Vec<Weak<Entry>>>,
}

struct Entry {
    path: Mutex<PathBuf>,
    referenced: AtomicBool,
    state: RwLock<State>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct State {
    /// The inner handle; `Some` holds one of the pool's descriptors.
    file: Option<Arc<dyn FileHandle>>,
    /// The inner mapping (only while `file` is open).
    map: Option<Box<dyn Mapping>>,
    /// Bytes to map while a [`PooledMapping`] of this entry lives.
    map_len: Option<usize>,
    /// What `map_for_reads` asked for, applied again at each reopen.
    read_capacity: u64,
    /// Never evicted again (the path no longer names this file).
    pinned: bool,
    /// The path no longer names this file: never reopen it.
    detached: bool,
}

impl FilePool {
    /// A pool of at most `capacity` (at least 1) descriptors over `inner`.
    pub fn new(inner: SharedFs, capacity: usize) -> Self {
        let shared = Shared {
            inner,
            capacity: capacity.max(1),
            pinned: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            mappings: AtomicUsize::new(0),
            mapped_bytes: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            ring: Mutex::new(Ring::default()),
            freed: Condvar::new(),
            by_path: Mutex::new(Paths::default()),
        };
        FilePool { shared: Arc::new(shared) }
    }

    /// Counters and gauges (cheap: atomics only).
    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        PoolStats {
            capacity: s.capacity,
            open_files: s.open.load(Ordering::Relaxed),
            peak_open_files: s.peak.load(Ordering::Relaxed),
            mappings: s.mappings.load(Ordering::Relaxed),
            mapped_bytes: s.mapped_bytes.load(Ordering::Relaxed),
            opens: s.opens.load(Ordering::Relaxed),
            evictions: s.evictions.load(Ordering::Relaxed),
        }
    }

    /// Live entries for `path`, and for everything under it when `tree`.
    fn entries_at(&self, path: &Path, tree: bool) -> Vec<Arc<Entry>> {
        let paths = self.shared.by_path.lock();
        if !tree {
            return paths
                .map
                .get(path)
                .map_or_else(Vec::new, |v| v.iter().filter_map(Weak::upgrade).collect());
        }
        // A directory's removal (a deleted topic): rare, so a scan.
        let under = paths.map.iter().filter(|(p, _)| p.starts_with(path));
        under.flat_map(|(_, v)| v.iter().filter_map(Weak::upgrade)).collect()
    }

    /// Detaches every live entry of `path` (or under it) before the name
    /// stops naming that file (see `Entry::detach`).
    fn detach(&self, path: &Path, tree: bool) {
        for entry in self.entries_at(path, tree) {
            entry.detach();
        }
    }
}

impl fmt::Debug for FilePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilePool").field("inner", &self.shared.inner).field("stats", &self.stats()).finish()
    }
}

impl Shared {
    /// Takes one descriptor slot, evicting idle entries while the pool is
    /// full; waits (bounded) while every entry is busy or pinned. A victim's
    /// descriptor and mapping are closed outside the pool's lock, and its
    /// slot is given back only once they are (so the count of open
    /// descriptors never passes the capacity, not even for a moment).
    fn admit(&self) -> io::Result<()> {
        let deadline = Instant::now() + ADMIT_TIMEOUT;
        loop {
            let mut ring = self.ring.lock();
            let open = self.open.load(Ordering::Acquire);
            if open < self.capacity {
                self.open.store(open + 1, Ordering::Release);
                self.peak.fetch_max(open + 1, Ordering::Relaxed);
                return Ok(());
            }
            if let Some(victim) = self.evict_one(&mut ring) {
                drop(ring);
                drop(victim); // close(2) and munmap(2), without the lock
                self.release();
                continue;
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "all {} pooled file descriptors are in use or pinned (max_open_files)",
                    self.capacity
                )));
            }
            // Busy entries free no slot when they finish: poll.
            self.freed.wait_for(&mut ring, Duration::from_millis(1));
        }
    }

    /// Gives a descriptor slot back.
    fn release(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }

    /// One CLOCK sweep (two passes at most): takes the descriptor and
    /// mapping of the first idle, unreferenced, unpinned entry (its slot
    /// stays counted until the caller drops them). `None` when none could
    /// be taken.
    fn evict_one(&self, ring: &mut Ring) -> Option<Evicted> {
        let mut steps = 2 * ring.entries.len();
        while steps > 0 && !ring.entries.is_empty() {
            steps -= 1;
            if ring.hand >= ring.entries.len() {
                ring.hand = 0;
            }
            let Some(entry) = ring.entries[ring.hand].upgrade() else {
                ring.entries.swap_remove(ring.hand);
                continue;
            };
            // First pass: a referenced entry gets its second chance. Second
            // pass: taken whatever its bit, so entries touched again and
            // again (readers on two cores) cannot starve an open.
            let first_pass = steps >= ring.entries.len();
            if entry.referenced.swap(false, Ordering::Relaxed) && first_pass {
                ring.hand += 1;
                continue;
            }
            let Some(mut state) = entry.state.try_write() else {
                ring.hand += 1;
                continue;
            };
            if state.pinned {
                ring.hand += 1;
                continue;
            }
            ring.entries.swap_remove(ring.hand);
            if let Some(file) = state.file.take() {
                let map = state.take_map(self);
                self.evictions.fetch_add(1, Ordering::Relaxed);
                drop(state);
                return Some(Evicted { _map: map, _file: file, _entry: entry });
            }
            // Closed already (it failed to reopen, or was dropped).
        }
        None
    }

    fn track(&self, entry: &Arc<Entry>) {
        let mut ring = self.ring.lock();
        if ring.entries.len() > 2 * self.capacity {
            ring.entries.retain(|e| e.strong_count() > 0);
        }
        ring.entries.push(Arc::downgrade(entry));
    }
}

impl Entry {
    fn touch(&self) {
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }

    /// Drops the mapping and the descriptor (the caller holds the lock).
    fn close(&self, state: &mut State) {
        state.unmap(&self.shared);
        if state.file.take().is_some() {
            self.shared.release();
        }
    }

    /// The state with the file open (and mapped when `map` is set),
    /// reopening it if the pool closed it.
    fn open_state(self: &Arc<Self>, map: bool) -> io::Result<RwLockReadGuard<'_, State>> {
        {
            let state = self.state.read();
            if state.file.is_some() && (!map || state.map.is_some()) {
                self.touch();
                return Ok(state);
            }
        }
        // ORDER: reopened under the write lock, downgraded without a gap
        // in which the pool could evict it again.
        Ok(RwLockWriteGuard::downgrade(self.open_state_mut(map)?))
    }

    /// The state write-locked with the file open (and mapped when `map`).
    fn open_state_mut(self: &Arc<Self>, map: bool) -> io::Result<RwLockWriteGuard<'_, State>> {
        let mut state = self.state.write();
        self.reopen(&mut state)?;
        if map && state.map.is_none() {
            let len = state.map_len.ok_or_else(|| io::Error::other("mapping used after it was dropped"))?;
            let file = state.file.as_ref().ok_or_else(|| io::Error::other("pooled file closed"))?;
            // SAFETY: `map_len` is set only by `PooledHandle::map`, whose
            // caller promised its contract for the life of the mapping; the
            // reopened descriptor is that handle's only one.
            #[expect(unsafe_code, reason = "a pooled mapping, mapped again on access")]
            let mapped = unsafe { file.map(len)? };
            state.map = Some(mapped);
            self.shared.mappings.fetch_add(1, Ordering::Relaxed);
            self.shared.mapped_bytes.fetch_add(len as u64, Ordering::Relaxed);
        }
        self.touch();
        Ok(state)
    }

    fn reopen(self: &Arc<Self>, state: &mut State) -> io::Result<()> {
        if state.file.is_some() {
            return Ok(());
        }
        if state.detached {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "file removed while its descriptor was closed",
            ));
        }
        self.shared.admit()?;
        let path = self.path.lock().clone();
        match self.inner_open(&path) {
            Ok(file) => {
                if state.read_capacity > 0 {
                    // SAFETY: set only by `PooledHandle::map_for_reads`,
                    // whose caller's promise covers every descriptor the
                    // handle reopens.
                    #[expect(unsafe_code, reason = "a read mapping, restored at reopen")]
                    unsafe {
                        file.map_for_reads(state.read_capacity)
                    };
                }
                state.file = Some(file);
                self.shared.track(self);
                Ok(())
            }
            Err(e) => {
                self.shared.release();
                Err(e)
            }
        }
    }

    fn inner_open(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        self.shared.opens.fetch_add(1, Ordering::Relaxed);
        self.shared.inner.open(path, OpenMode::Existing)
    }

    /// The entry's path is about to stop naming its file: it is never
    /// reopened by that path again. An entry holding a descriptor keeps it
    /// (pinned, never evicted) while pins hold at most a quarter of the pool, so
    /// readers go on reading the old file; otherwise, and for an entry
    /// already closed, later operations fail with `NotFound` (a reader
    /// then reads again from the log's current segments). Nothing is
    /// reopened here: pins never wait for, or starve, other files.
    fn detach(self: &Arc<Self>) {
        let mut state = self.state.write();
        state.detached = true;
        if state.pinned || state.file.is_none() {
            return;
        }
        let pins = &self.shared.pinned;
        if pins.fetch_add(1, Ordering::AcqRel) < self.shared.capacity / 4 {
            state.pinned = true;
        } else {
            pins.fetch_sub(1, Ordering::AcqRel);
            self.close(&mut state);
        }
    }
}

/// What an eviction took from an entry, closed when dropped. The entry
/// is held too, so its own drop (which gives a slot back) cannot run
/// before the caller gives this one back.
struct Evicted {
    _map: Option<Box<dyn Mapping>>,
    _file: Arc<dyn FileHandle>,
    _entry: Arc<Entry>,
}

impl State {
    /// Takes the inner mapping out, if one is held (counted as gone).
    fn take_map(&mut self, shared: &Shared) -> Option<Box<dyn Mapping>> {
        let map = self.map.take()?;
        shared.mappings.fetch_sub(1, Ordering::Relaxed);
        shared.mapped_bytes.fetch_sub(self.map_len.unwrap_or(0) as u64, Ordering::Relaxed);
        Some(map)
    }

    /// Drops the inner mapping, if one is held.
    fn unmap(&mut self, shared: &Shared) {
        drop(self.take_map(shared));
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut state = std::mem::take(self.state.get_mut());
        if state.pinned {
            self.shared.pinned.fetch_sub(1, Ordering::AcqRel);
        }
        self.close(&mut state);
        // Its record by path goes with it, so the map holds live entries
        // only (a close reopening 10,000 markers grew it by 7 MiB).
        // ORDER (locks): this may run under the ring's lock (an eviction
        // scan holding the last reference), never under `by_path`'s.
        let path = std::mem::take(self.path.get_mut());
        let mut paths = self.shared.by_path.lock();
        if let Some(entries) = paths.map.get_mut(&path) {
            entries.retain(|e| e.strong_count() > 0);
            if entries.is_empty() {
                paths.map.remove(&path);
            }
        }
    }
}

impl FileSystem for FilePool {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.shared.inner.create_dir_all(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        self.shared.admit()?;
        self.shared.opens.fetch_add(1, Ordering::Relaxed);
        let file = match self.shared.inner.open(path, mode) {
            Ok(file) => file,
            Err(e) => {
                self.shared.release();
                return Err(e);
            }
        };
        let entry = Arc::new(Entry {
            path: Mutex::new(path.to_path_buf()),
            referenced: AtomicBool::new(true),
            state: RwLock::new(State { file: Some(file), ..State::default() }),
            shared: self.shared.clone(),
        });
        self.shared.track(&entry);
        let mut paths = self.shared.by_path.lock();
        paths.map.entry(path.to_path_buf()).or_default().push(Arc::downgrade(&entry));
        drop(paths);
        Ok(Arc::new(PooledFile { entry }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.detach(path, false);
        self.shared.inner.remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.detach(to, false);
        self.shared.inner.rename(from, to)?;
        // The file moves with its name: entries of `from` reopen by `to`.
        let moved = {
            let mut paths = self.shared.by_path.lock();
            paths.map.remove(from).unwrap_or_default()
        };
        let live: Vec<Arc<Entry>> = moved.iter().filter_map(Weak::upgrade).collect();
        for entry in &live {
            *entry.path.lock() = to.to_path_buf();
        }
        let mut paths = self.shared.by_path.lock();
        paths.map.entry(to.to_path_buf()).or_default().extend(live.iter().map(Arc::downgrade));
        drop(paths);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.shared.inner.list_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.shared.inner.sync_dir(dir)
    }

    fn sync_all(&self, dir: &Path) -> io::Result<()> {
        self.shared.inner.sync_all(dir)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.shared.inner.exists(path)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.detach(dir, true);
        self.shared.inner.remove_dir_all(dir)
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.shared.inner.lock_exclusive(path)
    }
}

/// A pooled file: its descriptor is opened on demand.
struct PooledFile {
    entry: Arc<Entry>,
}

impl fmt::Debug for PooledFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledFile").field("path", &*self.entry.path.lock()).finish()
    }
}

impl PooledFile {
    fn with<R>(&self, op: impl FnOnce(&dyn FileHandle) -> io::Result<R>) -> io::Result<R> {
        let state = self.entry.open_state(false)?;
        let file = state.file.as_ref().ok_or_else(|| io::Error::other("pooled file closed"))?;
        op(&**file)
    }
}

impl FileHandle for PooledFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.with(|f| f.read_at(buf, pos))
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.with(|f| f.write_all_at(buf, pos))
    }

    fn size(&self) -> io::Result<u64> {
        self.with(|f| f.size())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|f| f.set_len(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(|f| f.sync_data())
    }

    #[expect(unsafe_code, reason = "forwards the trait's contract to the pooled file")]
    unsafe fn map_for_reads(&self, capacity: u64) {
        let mut state = self.entry.state.write();
        state.read_capacity = capacity;
        if let Some(file) = &state.file {
            // SAFETY: the pooled descriptor is this handle's only one; the
            // caller's promise for this handle covers it.
            unsafe { file.map_for_reads(capacity) };
        }
    }

    fn read_exact_into(&self, buf: &mut Vec<u8>, pos: u64, len: usize) -> io::Result<()> {
        self.with(|f| f.read_exact_into(buf, pos, len))
    }

    // The inner file is mapped lazily (`Entry::open_state_mut`), under
    // this call's contract.
    #[expect(unsafe_code, reason = "the trait's contract for mappings")]
    unsafe fn map(&self, len: usize) -> io::Result<Box<dyn Mapping>> {
        let mut state = self.entry.open_state_mut(false)?;
        if state.map_len.is_some() {
            return Err(io::Error::other("a pooled file is mapped once at a time"));
        }
        // Mapped at the first access, not now (lookups may never come).
        state.map_len = Some(len);
        drop(state);
        Ok(Box::new(PooledMapping { entry: self.entry.clone() }))
    }
}

/// A pooled file's mapping: made at first access, let go with the file's
/// descriptor, made again at the next access.
struct PooledMapping {
    entry: Arc<Entry>,
}

impl fmt::Debug for PooledMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledMapping").field("path", &*self.entry.path.lock()).finish()
    }
}

impl Mapping for PooledMapping {
    fn bytes(&self) -> io::Result<MappedBytes<'_>> {
        let state = self.entry.open_state(true)?;
        RwLockReadGuard::try_map(state, |s| s.map.as_ref()?.bytes().ok()?.into_slice())
            .map(MappedBytes::guard)
            .map_err(|_| io::Error::other("pooled mapping not resident"))
    }

    fn bytes_mut(&mut self) -> io::Result<MappedBytesMut<'_>> {
        let state = self.entry.open_state_mut(true)?;
        RwLockWriteGuard::try_map(state, |s| s.map.as_mut()?.bytes_mut().ok()?.into_slice())
            .map(MappedBytesMut::guard)
            .map_err(|_| io::Error::other("pooled mapping not resident"))
    }

    fn flush(&self) -> io::Result<()> {
        let state = self.entry.open_state(false)?;
        match (&state.map, &state.file) {
            (Some(map), _) => map.flush(),
            // Unmapped since the last write: the dirty pages are the
            // file's, and syncing the file writes them.
            (None, Some(file)) => file.sync_data(),
            (None, None) => Err(io::Error::other("pooled file closed")),
        }
    }
}

impl Drop for PooledMapping {
    fn drop(&mut self) {
        let mut state = self.entry.state.write();
        state.unmap(&self.entry.shared);
        state.map_len = None;
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
