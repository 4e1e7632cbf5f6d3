//! The sparse time index of one segment, memory-mapped.
//!
//! Format of `{base_offset:020}.timeindex`: a flat array of 12-byte entries,
//! little-endian, no header: `{ timestamp_ms: i64 | relative_offset: u32 }`.
//! An entry `(t, o)` says: every record at or below offset `base + o` has a
//! timestamp of at most `t` (the largest timestamp so far, not the
//! timestamp at `o`), so it stays correct when record timestamps are not
//! monotonic. Both fields strictly increase. An entry is added when an
//! offset-index entry is and the largest timestamp grew, and once more when
//! the segment is sealed or flushed, so the last entry covers the segment.
//!
//! Stored as an `EntryFile` (preallocated, trimmed at seal); derived data,
//! rebuilt by recovery.

use std::path::Path;

use byteorder::{ByteOrder, LittleEndian as LE};

use super::entry_file::{EntryFile, LazyCheck};
use crate::error::Result;
use crate::io::FileSystem;

/// Bytes per time-index entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
const _: () = assert!(TIME_INDEX_ENTRY_BYTES == 8 + 4);

/// The time index of one segment.
#[derive(Debug)]
pub struct TimeIndex {
    file: EntryFile<TIME_INDEX_ENTRY_BYTES>,
    base_offset: u64,
    /// A full check deferred to the first lookup (see [`TimeIndex::defer_check`]).
    lazy: LazyCheck,
}

impl TimeIndex {
    /// Opens (or creates) the time index at `path` (see [`super::OffsetIndex::open`]).
    pub fn open(
        fs: &dyn FileSystem,
        path: &Path,
        base_offset: u64,
        capacity: usize,
        entries_bound: usize,
    ) -> Result<Self> {
        Ok(TimeIndex {
            file: EntryFile::open(fs, path, capacity, entries_bound)?,
            base_offset,
            lazy: LazyCheck::default(),
        })
    }

    fn entry(&self, i: usize) -> (i64, u64) {
        let b = self.file.get(i);
        (LE::read_i64(b), self.base_offset + u64::from(LE::read_u32(&b[8..])))
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.file.len()
    }

    /// The last entry as `(timestamp_ms, offset)`.
    pub fn last_entry(&self) -> Option<(i64, u64)> {
        self.entries().checked_sub(1).map(|i| self.entry(i))
    }

    /// Records that every record up to `offset` has a timestamp of at most
    /// `max_timestamp_ms`. Ignored unless both grow past the last entry (or
    /// the index is full, or the offset is out of the 32-bit range).
    pub fn append(&mut self, max_timestamp_ms: i64, offset: u64) {
        let Some(rel) = offset.checked_sub(self.base_offset).and_then(|r| u32::try_from(r).ok()) else {
            return;
        };
        if self.last_entry().is_some_and(|(t, o)| max_timestamp_ms <= t || offset <= o)
            || max_timestamp_ms < 0
        {
            return;
        }
        let mut entry = [0u8; TIME_INDEX_ENTRY_BYTES];
        LE::write_i64(&mut entry, max_timestamp_ms);
        LE::write_u32(&mut entry[8..], rel);
        self.file.push(&entry);
    }

    /// The offset a search for the first record with a timestamp of at
    /// least `target_ms` may start from: just after the last entry whose
    /// timestamp is below the target (everything up to it is older).
    pub fn lookup(&self, target_ms: i64) -> u64 {
        if !self.lazy.passed(|n, next| self.check_entries(n.min(self.entries()), next).is_ok()) {
            return self.base_offset; // entries that failed their check: scan it all
        }
        let (mut lo, mut hi) = (0usize, self.entries());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 < target_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map_or(self.base_offset, |i| self.entry(i).1 + 1)
    }

    /// Drops every entry at or past `offset`.
    pub fn truncate_to_offset(&mut self, offset: u64) {
        let mut keep = self.entries();
        // Bounded by the entry count.
        while keep > 0 && self.entry(keep - 1).1 >= offset {
            keep -= 1;
        }
        self.file.truncate(keep);
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.file.truncate(0);
        self.lazy.clear();
    }

    /// Checks entries increase strictly and stay below `next_offset`.
    pub fn sanity_check(&self, next_offset: u64) -> Result<(), &'static str> {
        self.check_entries(self.entries(), next_offset)
    }

    /// The O(1) part of [`TimeIndex::sanity_check`]: the same rules on the
    /// first and last entries only.
    pub fn quick_check(&self, next_offset: u64) -> Result<(), &'static str> {
        let last = self.entries().checked_sub(1);
        let ends = last.into_iter().flat_map(|l| std::iter::once(0).chain((l > 0).then_some(l)));
        self.check(ends, next_offset)
    }

    /// Defers the full check of the current entries (against
    /// `next_offset`) to the first lookup; if it fails then, lookups scan
    /// the whole segment instead of trusting the entries.
    pub fn defer_check(&mut self, next_offset: u64) {
        self.lazy.defer(self.entries(), next_offset);
    }

    fn check_entries(&self, entries: usize, next_offset: u64) -> Result<(), &'static str> {
        self.check(0..entries, next_offset)
    }

    /// Checks the entries at `indexes` (ascending): each below
    /// `next_offset` with a timestamp >= 0, each above the one before.
    fn check(&self, indexes: impl Iterator<Item = usize>, next_offset: u64) -> Result<(), &'static str> {
        let mut prev: Option<(i64, u64)> = None;
        for i in indexes {
            let e = self.entry(i);
            if e.1 >= next_offset || e.0 < 0 {
                return Err("time index entry past the log");
            }
            if prev.is_some_and(|p| e.0 <= p.0 || e.1 <= p.1) {
                return Err("time index entries not strictly increasing");
            }
            prev = Some(e);
        }
        Ok(())
    }

    /// Trims the file to its entries.
    pub fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }

    /// Grows the file to `capacity` entries.
    pub fn reserve(&mut self, capacity: usize) -> Result<()> {
        self.file.reserve(capacity)
    }

    /// Makes the entries durable.
    pub fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFileSystem;

    #[test]
    fn lookup_starts_after_everything_older() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::open(&StdFileSystem, &dir.path().join("t"), 100, 8, 100).unwrap();
        assert_eq!(index.lookup(5), 100);
        index.append(10, 104);
        index.append(10, 108); // timestamp did not grow: ignored
        index.append(30, 112);
        index.append(20, 116); // went back: ignored
        index.append(40, 120);
        assert_eq!(index.entries(), 3);
        assert_eq!(index.lookup(5), 100, "nothing known older than 5");
        assert_eq!(index.lookup(10), 100, "entry (10, 104) may hold a record at exactly 10");
        assert_eq!(index.lookup(11), 105);
        assert_eq!(index.lookup(31), 113);
        assert_eq!(index.lookup(41), 121, "past everything: start after the last entry");
        index.truncate_to_offset(112);
        assert_eq!(index.last_entry(), Some((10, 104)));
        assert!(index.sanity_check(105).is_ok());
        assert!(index.sanity_check(104).is_err());
    }
}
