//! The result of a read: whole batches, already checked, shared zero-copy.

use bytes::Bytes;

use super::batch::{BatchHeader, RecordIter};
use super::record::{RecordView, StoredRecord};

/// Whole batches returned by a read, CRC-checked when they were read.
///
/// The first batch may start before the requested offset (batches are not
/// split); [`FetchedRecords::records`] skips those records. Keys and values
/// borrow from one buffer: iterate [`RecordView`]s without any allocation, or
/// take [`StoredRecord`]s that share the buffer through `Bytes`.
#[derive(Clone, Debug, Default)]
pub struct FetchedRecords {
    data: Bytes,
    from_offset: u64,
}

impl FetchedRecords {
    /// Wraps `data`, which must hold whole batches that passed
    /// [`check_batch`](super::check_batch).
    pub(crate) fn new(data: Bytes, from_offset: u64) -> Self {
        FetchedRecords { data, from_offset }
    }

    /// The same batches, with records below `offset` skipped.
    pub(crate) fn starting_at(self, offset: u64) -> Self {
        FetchedRecords { from_offset: offset, ..self }
    }

    /// The same, cut before the first batch that reaches `end_offset`
    /// (whole batches only).
    pub(crate) fn below(self, end_offset: u64) -> Self {
        let keep: usize = self
            .batches()
            .take_while(|(h, _)| h.last_offset() < end_offset)
            .map(|(h, _)| h.batch_len as usize)
            .sum();
        FetchedRecords { data: self.data.slice(..keep), ..self }
    }

    /// True when the read returned nothing (the offset was the log end).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The raw batches as stored: a Kafka record set (RecordBatch v2),
    /// which a broker puts in a Fetch response unchanged, and a follower
    /// hands to `append_replica`.
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }

    /// Headers and bytes of each batch.
    pub fn batches(&self) -> BatchIter<'_> {
        BatchIter { rest: &self.data }
    }

    /// Records at or after the requested offset, borrowing from the buffer.
    pub fn records(&self) -> impl Iterator<Item = RecordView<'_>> + '_ {
        let from = self.from_offset;
        self.batches()
            .flat_map(move |(h, b)| {
                // Records before the requested offset (in the first batch)
                // are skipped by their length, not decoded.
                let mut records = RecordIter::new(b, h);
                if h.base_offset < from {
                    records.skip_below(from);
                }
                records
            })
            .filter(move |r| r.offset >= from)
    }

    /// Records at or after the requested offset, as owned values sharing the
    /// buffer.
    pub fn to_records(&self) -> Vec<StoredRecord> {
        self.records().map(|r| r.to_stored(&self.data)).collect()
    }

    /// Whether any record at or after `offset` was returned. Reads only
    /// headers unless a batch was thinned by compaction: a batch holding a
    /// record for every offset of its range answers by its range alone.
    pub(crate) fn has_record_from(&self, offset: u64) -> bool {
        self.batches().filter(|(h, _)| h.last_offset() >= offset).any(|(h, b)| {
            if u64::from(h.record_count) == u64::from(h.last_offset_delta) + 1 {
                return true;
            }
            RecordIter::new(b, h).any(|r| r.offset >= offset)
        })
    }

    /// The offset after the last returned batch: where the next read goes.
    pub fn next_offset(&self) -> Option<u64> {
        self.batches().last().map(|(h, _)| h.next_offset())
    }
}

/// Iterator over the batches of a [`FetchedRecords`].
#[derive(Clone, Debug)]
pub struct BatchIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = (BatchHeader, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // Checked at read time; a failure here ends the iteration, never panics.
        let header = BatchHeader::parse(self.rest).ok()?;
        let batch = self.rest.get(..header.batch_len as usize)?;
        self.rest = &self.rest[batch.len()..];
        Some((header, batch))
    }
}
