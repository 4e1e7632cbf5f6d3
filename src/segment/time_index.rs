//! The sparse time index of one segment, memory-mapped: Kafka's
//! `TimeIndex` file.
//!
//! Format of `{base_offset:020}.timeindex`: a flat array of 12-byte
//! entries, big-endian, no header: `{ timestamp: i64 | relativeOffset: i32 }`.
//! An entry `(t, o)` says: `t` is the largest timestamp of the segment's
//! records up to there, first reached by the batch whose last offset is
//! `base + o` (Kafka's `maxTimestampSoFar` and its shallow offset). So
//! every record at or below `base + o` has a timestamp of at most `t`,
//! which stays true when record timestamps are not monotonic. Both fields
//! strictly increase. An entry is added with each offset-index entry when
//! the largest timestamp grew (`indexing.rs`), and once more when the
//! segment is sealed or flushed, so the last entry covers the segment.
//!
//! A [`SparseIndex`] of [`TimeEntry`] (preallocated, trimmed at seal);
//! derived data, rebuilt by recovery.

use byteorder::{BigEndian as BE, ByteOrder};

use super::sparse_index::{SparseEntry, SparseIndex};

/// Bytes per time-index entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
const _: () = assert!(TIME_INDEX_ENTRY_BYTES == 8 + 4);

/// A time-index entry: every record at or below `offset` has a timestamp
/// of at most `timestamp_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    /// The largest timestamp up to `offset`.
    pub timestamp_ms: i64,
    /// The offset (absolute).
    pub offset: u64,
}

impl SparseEntry for TimeEntry {
    const BYTES: usize = TIME_INDEX_ENTRY_BYTES;

    fn encode(self, base_offset: u64, out: &mut [u8]) -> bool {
        let rel = self.offset.checked_sub(base_offset).and_then(|r| i32::try_from(r).ok());
        let Some(rel) = rel.filter(|_| self.timestamp_ms >= 0) else { return false };
        BE::write_i64(&mut out[..8], self.timestamp_ms);
        BE::write_i32(&mut out[8..12], rel);
        true
    }

    fn decode(bytes: &[u8], base_offset: u64) -> Self {
        // Base offsets are at most OFFSET_MAX: adding a u32 cannot overflow.
        TimeEntry {
            timestamp_ms: BE::read_i64(bytes),
            offset: base_offset + u64::from(BE::read_u32(&bytes[8..])),
        }
    }

    fn follows(self, prev: Self) -> bool {
        self.timestamp_ms > prev.timestamp_ms && self.offset > prev.offset
    }

    fn out_of_bounds(self, next_offset: u64) -> Option<&'static str> {
        (self.offset >= next_offset || self.timestamp_ms < 0).then_some("time index entry past the log")
    }
}

/// The time index of one segment.
pub type TimeIndex = SparseIndex<TimeEntry, TIME_INDEX_ENTRY_BYTES>;

impl SparseIndex<TimeEntry, TIME_INDEX_ENTRY_BYTES> {
    /// Records that every record up to `offset` has a timestamp of at most
    /// `max_timestamp_ms`. Ignored unless both grow past the last entry (or
    /// the index is full, or the offset is out of the 32-bit range).
    pub(crate) fn append(&mut self, max_timestamp_ms: i64, offset: u64) {
        self.push(TimeEntry { timestamp_ms: max_timestamp_ms, offset });
    }

    /// The offset a search for the first record with a timestamp of at
    /// least `target_ms` may start from: just after the last entry whose
    /// timestamp is below the target (everything up to it is older).
    pub fn lookup(&self, target_ms: i64) -> u64 {
        // Entries that failed their check or cannot be read now: scan it all.
        match self.bracket(|e| e.timestamp_ms >= target_ms) {
            Some((Some(older), _)) => older.offset + 1,
            _ => self.base_offset(),
        }
    }

    /// Drops every entry at or past `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: u64) -> crate::error::Result<()> {
        let keep = self.count_before(|e| e.offset >= offset);
        self.keep(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FileSystem, OpenMode, StdFileSystem};

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
        index.truncate_to_offset(112).unwrap();
        assert_eq!(index.last_entry(), Some(TimeEntry { timestamp_ms: 10, offset: 104 }));
        assert!(index.sanity_check(105).is_ok());
        assert!(index.sanity_check(104).is_err());
    }

    /// Sealing writes the covering entry through the file: on a file grown
    /// past its entries (trimmed), on one exactly its entries long
    /// (extended), and on one a pool of a single descriptor closed
    /// in between; each reopens with exactly its entries.
    #[test]
    fn seal_appends_the_covering_entry_and_trims() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::io::FilePool::new(std::sync::Arc::new(StdFileSystem), 1);
        let at = |ts, offset| TimeEntry { timestamp_ms: ts, offset };
        let fss: [(&str, &dyn FileSystem); 2] = [("std", &StdFileSystem), ("pool", &pool)];
        for (name, fs) in fss {
            let path = dir.path().join(name);
            let mut index = TimeIndex::open(fs, &path, 100, 100, 1000).unwrap();
            index.append(10, 104);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 12, "{name}: grown ahead");
            // Another file takes the pool's one descriptor.
            let _other = fs.open(&dir.path().join(format!("{name}.other")), OpenMode::Create).unwrap();
            index.seal(Some(at(20, 110))).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 24, "{name}: trimmed to two entries");
            assert!(index.is_full(), "{name}: sealed");
            index.seal(Some(at(20, 110))).unwrap(); // not after the last: nothing written
            index.sync().unwrap();
            assert_eq!(index.entries(), 2);
            assert_eq!(index.lookup(15), 105);
            drop(index);
            let mut index = TimeIndex::open(fs, &path, 100, 0, 1000).unwrap();
            assert_eq!((index.entries(), index.last_entry()), (2, Some(at(20, 110))), "{name}");
            index.reserve(4);
            index.seal(Some(at(30, 120))).unwrap(); // exactly its entries long: extended
            drop(index);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 36, "{name}");
            let index = TimeIndex::open(fs, &path, 100, 0, 1000).unwrap();
            assert_eq!(index.sanity_check(121), Ok(()), "{name}");
            assert_eq!(index.lookup(25), 111, "{name}");
        }
    }
}
