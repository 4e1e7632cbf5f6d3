//! A memory-mapped file of fixed-size entries: the storage of the offset
//! and time indexes.
//!
//! An active segment's file grows (doubling, zeros past the last entry) up
//! to its capacity as entries are pushed, and is trimmed to its entries
//! when the segment is sealed or the log closes cleanly, so a trimmed file's length says how many entries it
//! has. Everything in it is derived data that recovery can rebuild.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{EmptyMapping, FileHandle, FileSystem, MappedBytes, Mapping, OpenMode};

/// `N`-byte entries in a mapped file.
#[derive(Debug)]
pub(crate) struct EntryFile<const N: usize> {
    path: PathBuf,
    file: Arc<dyn FileHandle>,
    /// Maps `[0, capacity * N)` of the file.
    map: Box<dyn Mapping>,
    entries: usize,
    /// Entries the file is sized and mapped for now.
    capacity: usize,
    /// Entries it may grow to: the file grows from `capacity` towards
    /// `limit` at each push that needs room (so opening or creating an
    /// active segment costs no resize, and an idle partition's index stays
    /// small).
    limit: usize,
}

impl<const N: usize> EntryFile<N> {
    /// Opens (or creates) the file, reads its entry count from its length,
    /// and maps it with room for `capacity` entries (0 = exactly its current
    /// entries). A partial last entry is dropped; a file claiming more than
    /// `entries_bound` entries is garbage and starts empty, so no on-disk
    /// length sizes a map beyond what the log justifies.
    pub(crate) fn open(
        fs: &dyn FileSystem,
        path: &Path,
        capacity: usize,
        entries_bound: usize,
    ) -> Result<Self> {
        let file = fs.open(path, OpenMode::Create).map_err(Error::io("open index", path))?;
        let len = file.size().map_err(Error::io("stat index", path))?;
        let mut entries = usize::try_from(len / N as u64).unwrap_or(usize::MAX);
        if entries > entries_bound.max(capacity) {
            entries = 0;
        }
        let mut f = EntryFile {
            path: path.to_path_buf(),
            file,
            map: Box::new(EmptyMapping),
            entries,
            capacity: 0,
            limit: capacity.max(entries),
        };
        if len == (entries * N) as u64 {
            // Already its entries' length: map it, no resize.
            f.map = f.map_file(entries * N)?;
            f.capacity = entries;
        } else {
            f.remap(entries)?;
        }
        Ok(f)
    }

    /// Maps `[0, bytes)` of the file, which is at least that long.
    #[expect(unsafe_code, reason = "mapping an index file")]
    fn map_file(&self, bytes: usize) -> Result<Box<dyn Mapping>> {
        // SAFETY (`FileHandle::map`'s contract):
        // - the file is `bytes` long or longer: `open` maps its length or
        //   less, `remap` and `seal` set the length first;
        // - nothing shrinks it while mapped: this type alone resizes it,
        //   and drops the mapping first (`remap`, `seal`);
        // - nothing else writes or maps it: an index file is opened by its
        //   one segment, and segments are made only inside the crate
        //   (`segment` is private) by a `PartitionLog`, which holds its
        //   directory's exclusive lock as long as it lives, so no other log
        //   or repair in any process opens the file. (A process ignoring
        //   the lock could fault us, as it could fault Kafka's indexes.)
        unsafe { self.file.map(bytes) }.map_err(Error::io("map index", &self.path))
    }

    /// Resizes the file to `capacity` entries and maps all of it.
    ///
    /// ORDER (mapping safety): the old mapping is dropped before the file
    /// changes length, so no mapping ever extends past the end of the file.
    fn remap(&mut self, capacity: usize) -> Result<()> {
        self.map = Box::new(EmptyMapping);
        // Until the new mapping is in place the file holds no usable entry:
        // if resizing or mapping fails (a full disk), it stays that way,
        // which is correct (lookups walk from the segment start) and makes
        // the segment roll instead of indexing into a missing mapping.
        let entries = std::mem::take(&mut self.entries);
        self.capacity = 0;
        let bytes = capacity * N;
        self.file.set_len(bytes as u64).map_err(Error::io("resize index", &self.path))?;
        self.map = self.map_file(bytes)?;
        self.capacity = capacity;
        self.entries = entries.min(capacity);
        Ok(())
    }

    /// Trims the file to its entries, then appends `last` (if any) as its
    /// final entry; it takes no more. The entry is written through the
    /// file, not a mapping: sealing is done once per segment, often on a
    /// file whose descriptor a `FilePool` closed, and mapping a file to
    /// write 12 bytes and unmapping it (a TLB shootdown) cost most of a
    /// store's close.
    ///
    /// ORDER (mapping safety, as in `remap`): the mapping is dropped, so
    /// its writes reach the file first and none extends past its end.
    pub(crate) fn seal(&mut self, last: Option<&[u8; N]>) -> Result<()> {
        if self.capacity == self.entries && last.is_none() {
            self.limit = self.entries;
            return Ok(()); // trimmed already
        }
        self.map = Box::new(EmptyMapping);
        // As in `remap`: no usable entry until the new mapping is made.
        let mut entries = std::mem::take(&mut self.entries);
        // The file is `capacity` entries long (`open`, `remap` and this
        // keep it so), so a write just past the entries extends it exactly
        // when nothing is reserved beyond them.
        let sized = std::mem::take(&mut self.capacity);
        self.limit = 0;
        if let Some(entry) = last {
            let at = (entries * N) as u64;
            self.file.write_all_at(entry, at).map_err(Error::io("write index", &self.path))?;
            entries += 1;
        }
        let len = entries * N;
        if sized.max(entries) != entries {
            self.file.set_len(len as u64).map_err(Error::io("resize index", &self.path))?;
        }
        self.map = self.map_file(len)?;
        (self.entries, self.capacity, self.limit) = (entries, entries, entries);
        Ok(())
    }

    /// Lets the file grow to `capacity` entries (at the first push that
    /// needs the room).
    pub(crate) fn reserve(&mut self, capacity: usize) {
        self.limit = self.limit.max(capacity);
    }

    /// Makes the entries durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.map.flush().map_err(Error::io("sync index", &self.path))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.limit
    }

    /// The entries, readable while the view lives; `None` when the
    /// mapping cannot be made (a pooled file that cannot be reopened or
    /// mapped now): callers then use no entry, which is correct for a
    /// derived index (lookups walk from the segment start).
    pub(crate) fn view(&self) -> Option<EntryView<'_, N>> {
        let bytes = self.map.bytes().ok()?;
        let entries = self.entries.min(bytes.len() / N);
        Some(EntryView { bytes, entries })
    }

    /// Appends an entry; false (and nothing written) when full or when
    /// the mapping cannot be made now (the index is lossy: a missing entry
    /// only makes lookups walk further).
    pub(crate) fn push(&mut self, entry: &[u8; N]) -> bool {
        if self.is_full() {
            return false;
        }
        // Grown geometrically (64 entries at least): a small segment keeps
        // a small index and mapping, a large one remaps O(log n) times.
        let grown = self.capacity.saturating_mul(2).max(64).min(self.limit);
        if self.entries >= self.capacity && self.remap(grown).is_err() {
            return false; // no room now (a full disk): the entry is skipped
        }
        let at = self.entries * N;
        let Ok(mut bytes) = self.map.bytes_mut() else { return false };
        let Some(slot) = bytes.get_mut(at..at + N) else { return false };
        slot.copy_from_slice(entry);
        drop(bytes);
        self.entries += 1;
        true
    }

    /// Keeps the first `n` entries and zeroes the dropped ones in the
    /// mapping, so the bytes past the entries stay zero: a later flush then
    /// writes zeros there, never an entry a truncation dropped (which an
    /// open after a crash, counting entries from the file's length, would
    /// take back as naming a batch that is gone or has changed).
    ///
    /// # Errors
    /// [`Error::Io`] when the mapping cannot be made now (a pooled file
    /// that cannot be reopened); the entries are dropped all the same.
    pub(crate) fn truncate(&mut self, n: usize) -> Result<()> {
        if n >= self.entries {
            return Ok(());
        }
        let dropped = n * N..self.entries * N;
        // First: whatever fails below, no dropped entry is used again.
        self.entries = n;
        let mut bytes = self.map.bytes_mut().map_err(Error::io("truncate index", &self.path))?;
        if let Some(stale) = bytes.get_mut(dropped) {
            stale.fill(0);
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The entries of an [`EntryFile`], read through its mapping.
pub(crate) struct EntryView<'a, const N: usize> {
    bytes: MappedBytes<'a>,
    entries: usize,
}

impl<const N: usize> EntryView<'_, N> {
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// Entry `i` (`i < len()`).
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        &self.bytes[i * N..(i + 1) * N]
    }
}

/// A full check of an index's entries deferred to its first lookup, so a
/// clean open does O(1) work per index (Kafka checks only an index's last
/// entry; this still checks all of them, once, before a lookup trusts
/// them). Covers the entries present when deferred, against a bound
/// known then; entries appended later come from this process's appends.
#[derive(Debug, Default)]
pub(super) struct LazyCheck {
    pending: Option<(usize, u64)>,
    result: std::sync::OnceLock<bool>,
}

impl LazyCheck {
    /// Defers a check of the first `entries` entries against `bound`.
    pub(super) fn defer(&mut self, entries: usize, bound: u64) {
        *self = LazyCheck { pending: Some((entries, bound)), result: std::sync::OnceLock::new() };
    }

    /// Nothing deferred (entries rebuilt, cleared, or checked at open).
    pub(super) fn clear(&mut self) {
        *self = LazyCheck::default();
    }

    /// Whether the entries may be trusted: runs `check(entries, bound)`
    /// the first time, then remembers its answer.
    pub(super) fn passed(&self, check: impl FnOnce(usize, u64) -> bool) -> bool {
        match self.pending {
            None => true,
            Some((entries, bound)) => *self.result.get_or_init(|| check(entries, bound)),
        }
    }
}
