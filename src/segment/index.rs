//! The sparse offset index of one segment, memory-mapped.
//!
//! Format of `{base_offset:020}.index`: a flat array of 8-byte entries,
//! little-endian, no header:
//! `{ relative_offset: u32 | position: u32 }` where `relative_offset` is a
//! batch's base offset minus the segment's base offset and `position` the
//! byte position of that batch in the `.log` file. Entries are strictly
//! increasing in both fields. One entry is added per `index_interval_bytes`
//! of log data; the first batch (position 0) needs none.
//!
//! Stored as an `EntryFile` (preallocated, trimmed at seal; see
//! `entry_file.rs`). The index is derived data: recovery rebuilds it from
//! the log, and it is never trusted over the log.

use std::path::Path;

use byteorder::{ByteOrder, LittleEndian as LE};

use super::entry_file::{EntryFile, LazyCheck};
use crate::error::Result;
use crate::io::FileSystem;

/// Bytes per index entry.
pub const INDEX_ENTRY_BYTES: usize = 8;
const _: () = assert!(INDEX_ENTRY_BYTES == 4 + 4);

/// An index entry: the batch at byte `position` of the log file starts at
/// `offset` (absolute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The batch's base offset.
    pub offset: u64,
    /// Its byte position in the `.log` file.
    pub position: u64,
}

/// What [`OffsetIndex::lookup_span`] finds: the entry a scan starts from,
/// and the position of the next entry (the batch holding the offset ends
/// at or before it), if there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSpan {
    /// Where the scan starts.
    pub entry: IndexEntry,
    /// The next entry's position.
    pub next_position: Option<u64>,
}

/// The offset index of one segment.
#[derive(Debug)]
pub struct OffsetIndex {
    file: EntryFile<INDEX_ENTRY_BYTES>,
    base_offset: u64,
    /// A full check deferred to the first lookup (see [`OffsetIndex::defer_check`]).
    lazy: LazyCheck,
}

impl OffsetIndex {
    /// Opens (or creates) the index at `path` with room for `capacity`
    /// entries (0 = exactly its current entries, for a sealed segment); see
    /// `EntryFile::open` for how a damaged length is handled. Call
    /// [`OffsetIndex::sanity_check`] before trusting the entries.
    pub fn open(
        fs: &dyn FileSystem,
        path: &Path,
        base_offset: u64,
        capacity: usize,
        entries_bound: usize,
    ) -> Result<Self> {
        Ok(OffsetIndex {
            file: EntryFile::open(fs, path, capacity, entries_bound)?,
            base_offset,
            lazy: LazyCheck::default(),
        })
    }

    /// Trims the file to its entries (sealing or clean close).
    pub fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }

    /// Grows the file back to `capacity` entries so appends can add entries.
    pub fn reserve(&mut self, capacity: usize) -> Result<()> {
        self.file.reserve(capacity)
    }

    /// Makes the entries durable.
    pub fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.file.len()
    }

    /// True when no entry can be added.
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    fn entry(&self, i: usize) -> (u32, u32) {
        let b = self.file.get(i);
        (LE::read_u32(b), LE::read_u32(&b[4..]))
    }

    /// The last entry.
    pub fn last_entry(&self) -> Option<IndexEntry> {
        self.entries().checked_sub(1).map(|i| self.absolute(self.entry(i)))
    }

    fn absolute(&self, (rel, pos): (u32, u32)) -> IndexEntry {
        // Base offsets are at most OFFSET_MAX (i64::MAX), checked when the
        // file name was parsed: adding a u32 cannot overflow.
        IndexEntry { offset: self.base_offset + u64::from(rel), position: u64::from(pos) }
    }

    fn segment_start(&self) -> IndexEntry {
        IndexEntry { offset: self.base_offset, position: 0 }
    }

    /// The entry with the largest offset `<= offset`, or the segment start
    /// `(base_offset, 0)`: where a scan for `offset` begins.
    pub fn lookup(&self, offset: u64) -> IndexEntry {
        self.lookup_span(offset).entry
    }

    /// [`OffsetIndex::lookup`], and the position of the next entry if there
    /// is one. That entry starts a batch above `offset`, so the batch
    /// holding `offset` ends at or before it: one read of the span covers it.
    pub fn lookup_span(&self, offset: u64) -> IndexSpan {
        if !self.lazy.passed(|n, bytes| self.check_entries(n.min(self.entries()), bytes).is_ok()) {
            // Entries that failed their check: scan from the segment start.
            return IndexSpan { entry: self.segment_start(), next_position: None };
        }
        let Some(rel) = offset.checked_sub(self.base_offset) else {
            return IndexSpan { entry: self.segment_start(), next_position: self.first_position() };
        };
        let rel = u32::try_from(rel).unwrap_or(u32::MAX);
        // Binary search for the first entry with relative offset > rel.
        let (mut lo, mut hi) = (0usize, self.entries());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 <= rel {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let next_position = (lo < self.entries()).then(|| u64::from(self.entry(lo).1));
        match lo.checked_sub(1) {
            Some(i) => IndexSpan { entry: self.absolute(self.entry(i)), next_position },
            None => IndexSpan { entry: self.segment_start(), next_position },
        }
    }

    fn first_position(&self) -> Option<u64> {
        (self.entries() > 0).then(|| u64::from(self.entry(0).1))
    }

    /// Adds an entry for the batch at `position` starting at `offset`.
    /// Position 0 needs no entry (a lookup with no entry starts there).
    /// Entries not above the last one are ignored (a rescan may revisit the
    /// batch of the last entry); so is an entry for a full index (lookups
    /// then scan further, which is correct, only slower).
    pub fn append(&mut self, offset: u64, position: u64) {
        let (Some(rel), Ok(pos)) = (offset.checked_sub(self.base_offset), u32::try_from(position)) else {
            return;
        };
        let Ok(rel) = u32::try_from(rel) else { return };
        if pos == 0 {
            return;
        }
        if let Some(last) = self.entries().checked_sub(1).map(|i| self.entry(i)) {
            if rel <= last.0 || pos <= last.1 {
                return;
            }
        }
        let mut entry = [0u8; INDEX_ENTRY_BYTES];
        LE::write_u32(&mut entry, rel);
        LE::write_u32(&mut entry[4..], pos);
        self.file.push(&entry);
    }

    /// Drops every entry whose position is `>= position`.
    pub fn truncate_to_position(&mut self, position: u64) {
        let keep = self.entries_before(|(_, pos)| u64::from(pos) >= position);
        self.file.truncate(keep);
    }

    /// The number of leading entries before the first one `past` holds for
    /// (entries increase, so `past` flips once).
    fn entries_before(&self, past: impl Fn((u32, u32)) -> bool) -> usize {
        let (mut lo, mut hi) = (0usize, self.entries());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if past(self.entry(mid)) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.file.truncate(0);
        self.lazy.clear();
    }

    /// Checks that entries increase strictly and point inside a log of
    /// `log_bytes`; returns a reason when they do not.
    pub fn sanity_check(&self, log_bytes: u64) -> Result<(), &'static str> {
        self.check_entries(self.entries(), log_bytes)
    }

    /// The O(1) part of [`OffsetIndex::sanity_check`]: the same rules on
    /// the first and last entries only. Pair it with [`OffsetIndex::defer_check`].
    pub fn quick_check(&self, log_bytes: u64) -> Result<(), &'static str> {
        let last = self.entries().checked_sub(1);
        let ends = last.into_iter().flat_map(|l| std::iter::once(0).chain((l > 0).then_some(l)));
        self.check(ends, log_bytes)
    }

    /// Defers the full check of the current entries (against a log of
    /// `log_bytes`) to the first lookup; if it fails then, lookups scan
    /// from the segment start instead of trusting the entries.
    pub fn defer_check(&mut self, log_bytes: u64) {
        self.lazy.defer(self.entries(), log_bytes);
    }

    fn check_entries(&self, entries: usize, log_bytes: u64) -> Result<(), &'static str> {
        self.check(0..entries, log_bytes)
    }

    /// Checks the entries at `indexes` (ascending): each inside the log,
    /// the first not at position 0, each above the one checked before.
    fn check(&self, indexes: impl Iterator<Item = usize>, log_bytes: u64) -> Result<(), &'static str> {
        let mut prev: Option<(u32, u32)> = None;
        for i in indexes {
            let e = self.entry(i);
            if u64::from(e.1) >= log_bytes {
                return Err("entry points past the end of the log");
            }
            if let Some(p) = prev {
                if e.0 <= p.0 || e.1 <= p.1 {
                    return Err("entries not strictly increasing");
                }
            } else if e.1 == 0 {
                return Err("entry at position 0");
            }
            prev = Some(e);
        }
        Ok(())
    }

    /// The index file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFileSystem;

    fn open(dir: &Path, capacity: usize) -> OffsetIndex {
        OffsetIndex::open(&StdFileSystem, &dir.join("i.index"), 1000, capacity, 1 << 20).unwrap()
    }

    #[test]
    fn lookup_finds_the_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = open(dir.path(), 16);
        assert_eq!(
            index.lookup(1500),
            IndexEntry { offset: 1000, position: 0 },
            "empty index starts at the segment start"
        );
        index.append(1000, 0); // the segment start needs no entry
        assert_eq!(index.entries(), 0);
        for (rel, pos) in [(10, 100), (20, 250), (35, 400)] {
            index.append(1000 + rel, pos);
        }
        assert_eq!(index.lookup(999), IndexEntry { offset: 1000, position: 0 });
        assert_eq!(index.lookup(1009), IndexEntry { offset: 1000, position: 0 });
        assert_eq!(index.lookup(1010), IndexEntry { offset: 1010, position: 100 });
        assert_eq!(index.lookup(1034), IndexEntry { offset: 1020, position: 250 });
        assert_eq!(index.lookup(u64::MAX), IndexEntry { offset: 1035, position: 400 });
        // The span to the next entry bounds the batch holding the offset.
        assert_eq!(
            index.lookup_span(999),
            IndexSpan { entry: IndexEntry { offset: 1000, position: 0 }, next_position: Some(100) }
        );
        assert_eq!(
            index.lookup_span(1009),
            IndexSpan { entry: IndexEntry { offset: 1000, position: 0 }, next_position: Some(100) }
        );
        assert_eq!(
            index.lookup_span(1010),
            IndexSpan { entry: IndexEntry { offset: 1010, position: 100 }, next_position: Some(250) }
        );
        assert_eq!(
            index.lookup_span(1034),
            IndexSpan { entry: IndexEntry { offset: 1020, position: 250 }, next_position: Some(400) }
        );
        assert_eq!(
            index.lookup_span(1035),
            IndexSpan { entry: IndexEntry { offset: 1035, position: 400 }, next_position: None }
        );
    }

    #[test]
    fn append_keeps_entries_strictly_increasing_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = open(dir.path(), 2);
        index.append(1010, 100);
        index.append(1010, 200); // same offset: ignored
        index.append(1005, 300); // going back: ignored
        index.append(1020, 50); // position going back: ignored
        assert_eq!(index.entries(), 1);
        index.append(1020, 200);
        assert!(index.is_full());
        index.append(1030, 300); // full: ignored, lookups just walk further
        assert_eq!(index.entries(), 2);
        assert_eq!(index.last_entry(), Some(IndexEntry { offset: 1020, position: 200 }));
    }

    #[test]
    fn trim_and_reopen_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = open(dir.path(), 100);
        assert_eq!(std::fs::metadata(dir.path().join("i.index")).unwrap().len(), 800, "preallocated");
        index.append(1001, 10);
        index.append(1002, 20);
        index.trim().unwrap();
        index.sync().unwrap();
        drop(index);
        assert_eq!(std::fs::metadata(dir.path().join("i.index")).unwrap().len(), 16);
        let index = open(dir.path(), 0);
        assert_eq!(index.entries(), 2);
        assert_eq!(index.sanity_check(21), Ok(()));
        assert!(index.sanity_check(20).is_err(), "entry at the log end points past it");
    }

    #[test]
    fn truncate_drops_entries_at_and_past_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = open(dir.path(), 10);
        for i in 1..=5u64 {
            index.append(1000 + i, i * 100);
        }
        index.truncate_to_position(300);
        assert_eq!(index.last_entry(), Some(IndexEntry { offset: 1002, position: 200 }));
        index.clear();
        assert_eq!(index.entries(), 0);
    }

    #[test]
    fn oversized_or_unsorted_files_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        std::fs::write(&path, vec![0xAB; 8 * 1000]).unwrap();
        let index = OffsetIndex::open(&StdFileSystem, &path, 0, 0, 10).unwrap();
        assert_eq!(index.entries(), 0, "more entries than the log could need: ignored");
        let mut unsorted = Vec::new();
        for (rel, pos) in [(5u32, 50u32), (3, 60)] {
            unsorted.extend(rel.to_le_bytes());
            unsorted.extend(pos.to_le_bytes());
        }
        std::fs::write(&path, unsorted).unwrap();
        let index = OffsetIndex::open(&StdFileSystem, &path, 0, 0, 10).unwrap();
        assert_eq!(index.entries(), 2);
        assert!(index.sanity_check(1000).is_err());
    }

    #[test]
    fn a_deferred_check_catches_a_bad_middle_entry_at_the_first_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        let mut bytes = Vec::new();
        // The middle entry goes backwards; first and last look fine.
        for (rel, pos) in [(10u32, 100u32), (40, 50), (30, 400)] {
            bytes.extend(rel.to_le_bytes());
            bytes.extend(pos.to_le_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut index = OffsetIndex::open(&StdFileSystem, &path, 1000, 0, 10).unwrap();
        assert!(index.quick_check(1000).is_ok(), "only first and last are read");
        index.defer_check(1000);
        assert_eq!(
            index.lookup_span(1035),
            IndexSpan { entry: IndexEntry { offset: 1000, position: 0 }, next_position: None },
            "untrusted: scan from the start"
        );
        assert_eq!(index.lookup(1031), IndexEntry { offset: 1000, position: 0 });

        let mut sound = Vec::new();
        for (rel, pos) in [(10u32, 100u32), (20, 250), (30, 400)] {
            sound.extend(rel.to_le_bytes());
            sound.extend(pos.to_le_bytes());
        }
        std::fs::write(&path, &sound).unwrap();
        let mut index = OffsetIndex::open(&StdFileSystem, &path, 1000, 0, 10).unwrap();
        index.defer_check(1000);
        assert_eq!(
            index.lookup_span(1025),
            IndexSpan { entry: IndexEntry { offset: 1020, position: 250 }, next_position: Some(400) },
            "checked once, then trusted"
        );
        index.defer_check(300); // an entry past a 300-byte log
        assert_eq!(index.lookup(1035), IndexEntry { offset: 1000, position: 0 });

        std::fs::write(&path, &sound[..8]).unwrap();
        let index = OffsetIndex::open(&StdFileSystem, &path, 1000, 0, 10).unwrap();
        assert!(index.quick_check(1000).is_ok(), "one entry is its own first and last");
        assert!(index.quick_check(100).is_err(), "and must lie inside the log");
    }
}
