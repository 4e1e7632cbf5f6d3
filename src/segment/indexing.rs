//! The one rule for when a segment's indexes get an entry, as Kafka's
//! `LogSegment.append` and `recover` apply it: after a batch is written
//! at a position, if more than `index.interval.bytes` of log were written
//! since the last entry, the offset index gets (the batch's **last**
//! offset, its position) and the time index (the largest timestamp so
//! far, the last offset of the batch that first reached it). Appends,
//! recovery's scan, truncation and the cleaner's segment writer all run
//! it, so a rebuilt index equals the one the appends made.

use crate::format::BatchHeader;

use super::index::IndexEntry;
use super::time_index::TimeEntry;

/// The running state of the rule over one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Indexing {
    /// Log bytes written since the last offset-index entry.
    pub bytes_since_index: u64,
    /// The largest record timestamp so far (-1: none).
    pub max_timestamp_ms: i64,
    /// The last offset of the batch that first reached it.
    pub offset_of_max_timestamp: u64,
}

/// The entries one batch adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entries {
    pub offset: IndexEntry,
    /// None while no batch had a timestamp (only empty batches).
    pub time: Option<TimeEntry>,
}

impl Indexing {
    /// The state of an empty segment.
    pub fn empty() -> Self {
        Indexing { bytes_since_index: 0, max_timestamp_ms: -1, offset_of_max_timestamp: 0 }
    }

    /// The state after the batches a time-index entry covers (a scan that
    /// resumes there: nothing written since an entry).
    pub fn resumed(last: Option<TimeEntry>) -> Self {
        match last {
            Some(e) => Indexing {
                bytes_since_index: 0,
                max_timestamp_ms: e.timestamp_ms,
                offset_of_max_timestamp: e.offset,
            },
            None => Indexing::empty(),
        }
    }

    /// Accounts for the batch `header` written at `position`; returns the
    /// index entries it gets, if any.
    pub fn on_batch(&mut self, position: u64, header: &BatchHeader, interval_bytes: u64) -> Option<Entries> {
        self.observe(header);
        let entries = (self.bytes_since_index > interval_bytes && position > 0).then(|| {
            self.bytes_since_index = 0;
            Entries { offset: IndexEntry { offset: header.last_offset(), position }, time: self.time_entry() }
        });
        self.bytes_since_index += u64::from(header.batch_len);
        entries
    }

    /// Accounts for the timestamps of a batch already indexed (a walk
    /// that rebuilds the state after a truncation).
    pub fn observe(&mut self, header: &BatchHeader) {
        if header.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = header.max_timestamp_ms;
            self.offset_of_max_timestamp = header.last_offset();
        }
    }

    /// The time-index entry that covers everything counted so far (what
    /// sealing and a flush add), if any batch had a timestamp.
    pub fn time_entry(&self) -> Option<TimeEntry> {
        (self.max_timestamp_ms >= 0).then_some(TimeEntry {
            timestamp_ms: self.max_timestamp_ms,
            offset: self.offset_of_max_timestamp,
        })
    }
}
