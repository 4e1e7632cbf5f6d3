//! The sparse offset index of one segment, memory-mapped: Kafka's
//! `OffsetIndex` file.
//!
//! Format of `{base_offset:020}.index`: a flat array of 8-byte entries,
//! big-endian, no header: `{ relativeOffset: i32 | position: i32 }`. An
//! entry says the batch at byte `position` of the `.log` file **ends** at
//! offset `base_offset + relativeOffset` (its last offset, as Kafka's
//! entries do). Entries are strictly increasing in both fields; both are
//! non-negative 31-bit values (a segment rolls before a relative offset
//! would not fit). An entry is added after more than
//! `index.interval.bytes` of log since the last one (`indexing.rs`); the
//! first batch (position 0) needs none.
//!
//! A [`SparseIndex`] of [`IndexEntry`] (preallocated, trimmed at seal; see
//! `sparse_index.rs`). The index is derived data: recovery rebuilds it from
//! the log, and it is never trusted over the log.

use byteorder::{BigEndian as BE, ByteOrder};

use super::sparse_index::{SparseEntry, SparseIndex};

/// Bytes per index entry.
pub const INDEX_ENTRY_BYTES: usize = 8;
const _: () = assert!(INDEX_ENTRY_BYTES == 4 + 4);

/// An index entry: the batch at byte `position` of the log file ends at
/// `offset` (absolute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The batch's last offset.
    pub offset: u64,
    /// Its byte position in the `.log` file.
    pub position: u64,
}

impl SparseEntry for IndexEntry {
    const BYTES: usize = INDEX_ENTRY_BYTES;

    fn encode(self, base_offset: u64, out: &mut [u8]) -> bool {
        let rel = self.offset.checked_sub(base_offset).and_then(|r| i32::try_from(r).ok());
        // Position 0 needs no entry: a lookup with none starts there.
        let (Some(rel), Ok(pos)) = (rel, i32::try_from(self.position)) else { return false };
        if pos == 0 {
            return false;
        }
        BE::write_i32(&mut out[..4], rel);
        BE::write_i32(&mut out[4..8], pos);
        true
    }

    fn decode(bytes: &[u8], base_offset: u64) -> Self {
        // Base offsets are at most OFFSET_MAX (i64::MAX), checked when the
        // file name was parsed: adding a u32 cannot overflow. A negative
        // field reads as one above 2^31, which no sane entry holds (the
        // checks and lookups then distrust it).
        let offset = base_offset + u64::from(BE::read_u32(bytes));
        IndexEntry { offset, position: u64::from(BE::read_u32(&bytes[4..])) }
    }

    fn follows(self, prev: Self) -> bool {
        self.offset > prev.offset && self.position > prev.position
    }

    fn out_of_bounds(self, log_bytes: u64) -> Option<&'static str> {
        if self.position >= log_bytes {
            Some("entry points past the end of the log")
        } else if self.position == 0 {
            Some("entry at position 0")
        } else {
            None
        }
    }
}

/// What [`OffsetIndex::lookup_span`] finds: the entry a scan starts from,
/// and the next entry, if there is one (its batch ends at or past the
/// offset, so the batch holding the offset starts at or before it; often
/// it is that batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSpan {
    /// Where the scan starts.
    pub entry: IndexEntry,
    /// The next entry.
    pub next: Option<IndexEntry>,
}

/// The offset index of one segment.
pub type OffsetIndex = SparseIndex<IndexEntry, INDEX_ENTRY_BYTES>;

impl SparseIndex<IndexEntry, INDEX_ENTRY_BYTES> {
    /// The segment start: a scan from it expects no particular last offset
    /// (see [`OffsetIndex::is_segment_start`]).
    fn segment_start(&self) -> IndexEntry {
        IndexEntry { offset: self.base_offset(), position: 0 }
    }

    /// Whether `entry` is the segment start rather than a stored entry
    /// (stored entries never have position 0).
    pub fn is_segment_start(entry: IndexEntry) -> bool {
        entry.position == 0
    }

    /// The entry with the largest offset `<= offset`, or the segment start
    /// (position 0): where a scan for `offset` begins (Kafka's `lookup`;
    /// the batch there ends at or before `offset`, so the batch holding
    /// `offset` is it or one after it).
    #[cfg(test)]
    pub fn lookup(&self, offset: u64) -> IndexEntry {
        self.lookup_span(offset).entry
    }

    /// Kafka's `lookup` (the entry with the largest offset `<= offset`, or
    /// the segment start), and the position of the next entry if there
    /// is one. That entry's batch ends past `offset`, so the batch holding
    /// `offset` starts at or before it: a read of the span and a batch
    /// covers it.
    pub fn lookup_span(&self, offset: u64) -> IndexSpan {
        // The floor entry and the first one past `offset`. Entries that
        // failed their check, or cannot be read now: scan from the
        // segment start.
        let Some((floor, next)) = self.bracket(|e| e.offset > offset) else {
            return IndexSpan { entry: self.segment_start(), next: None };
        };
        IndexSpan { entry: floor.unwrap_or_else(|| self.segment_start()), next }
    }

    /// Adds an entry for the batch at `position` ending at `offset` (see
    /// the module docs of `sparse_index.rs` for what is ignored).
    pub(crate) fn append(&mut self, offset: u64, position: u64) {
        self.push(IndexEntry { offset, position });
    }

    /// Drops every entry whose position is `>= position`.
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> crate::error::Result<()> {
        let keep = self.count_before(|e| e.position >= position);
        self.keep(keep)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::io::StdFileSystem;

    fn at(offset: u64, position: u64) -> IndexEntry {
        IndexEntry { offset, position }
    }

    fn span(offset: u64, position: u64, next: Option<(u64, u64)>) -> IndexSpan {
        IndexSpan { entry: at(offset, position), next: next.map(|(o, p)| at(o, p)) }
    }

    fn open(dir: &Path, capacity: usize) -> OffsetIndex {
        OffsetIndex::open(&StdFileSystem, &dir.join("i.index"), 1000, capacity, 1 << 20).unwrap()
    }

    #[test]
    fn lookup_finds_the_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = open(dir.path(), 16);
        assert_eq!(index.lookup(1500), at(1000, 0), "empty index starts at the segment start");
        index.append(1000, 0); // the segment start needs no entry
        assert_eq!(index.entries(), 0);
        for (rel, pos) in [(10, 100), (20, 250), (35, 400)] {
            index.append(1000 + rel, pos);
        }
        assert_eq!(index.lookup(999), at(1000, 0));
        assert_eq!(index.lookup(1009), at(1000, 0));
        assert_eq!(index.lookup(1010), at(1010, 100));
        assert_eq!(index.lookup(1034), at(1020, 250));
        assert_eq!(index.lookup(u64::MAX), at(1035, 400));
        // The span to the next entry bounds the batch holding the offset.
        assert_eq!(index.lookup_span(999), span(1000, 0, Some((1010, 100))));
        assert_eq!(index.lookup_span(1009), span(1000, 0, Some((1010, 100))));
        assert_eq!(index.lookup_span(1010), span(1010, 100, Some((1020, 250))));
        assert_eq!(index.lookup_span(1034), span(1020, 250, Some((1035, 400))));
        assert_eq!(index.lookup_span(1035), span(1035, 400, None));
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
        assert_eq!(index.last_entry(), Some(at(1020, 200)));
    }

    #[test]
    fn trim_and_reopen_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = open(dir.path(), 100);
        assert_eq!(std::fs::metadata(dir.path().join("i.index")).unwrap().len(), 0, "grown on demand");
        index.append(1001, 10);
        assert_eq!(std::fs::metadata(dir.path().join("i.index")).unwrap().len(), 512, "64 entries first");
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
        index.truncate_to_position(300).unwrap();
        assert_eq!(index.last_entry(), Some(at(1002, 200)));
        index.clear().unwrap();
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
            unsorted.extend(rel.to_be_bytes());
            unsorted.extend(pos.to_be_bytes());
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
            bytes.extend(rel.to_be_bytes());
            bytes.extend(pos.to_be_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut index = OffsetIndex::open(&StdFileSystem, &path, 1000, 0, 10).unwrap();
        assert!(index.quick_check(1000).is_ok(), "only first and last are read");
        index.defer_check(1000);
        assert_eq!(index.lookup_span(1035), span(1000, 0, None), "untrusted: scan from the start");
        assert_eq!(index.lookup(1031), at(1000, 0));

        let mut sound = Vec::new();
        for (rel, pos) in [(10u32, 100u32), (20, 250), (30, 400)] {
            sound.extend(rel.to_be_bytes());
            sound.extend(pos.to_be_bytes());
        }
        std::fs::write(&path, &sound).unwrap();
        let mut index = OffsetIndex::open(&StdFileSystem, &path, 1000, 0, 10).unwrap();
        index.defer_check(1000);
        assert_eq!(index.lookup_span(1025), span(1020, 250, Some((1030, 400))), "checked once, then trusted");
        index.defer_check(300); // an entry past a 300-byte log
        assert_eq!(index.lookup(1035), at(1000, 0));

        std::fs::write(&path, &sound[..8]).unwrap();
        let index = OffsetIndex::open(&StdFileSystem, &path, 1000, 0, 10).unwrap();
        assert!(index.quick_check(1000).is_ok(), "one entry is its own first and last");
        assert!(index.quick_check(100).is_err(), "and must lie inside the log");
    }
}
