//! The result of a read: whole batches, already checked, shared zero-copy.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::batch::{inflated_records, BatchHeader, Inflater, RecordIter};
use super::record::{RecordView, StoredRecord};

/// Whole batches returned by a read, CRC-checked when they were read.
///
/// The first batch may start before the requested offset (batches are not
/// split); [`FetchedRecords::records`] skips those records. Keys and values
/// borrow from one buffer: iterate [`RecordView`]s without any allocation, or
/// take [`StoredRecord`]s that share the buffer through `Bytes`.
///
/// [`FetchedRecords::bytes`] are the batches as stored, compressed ones
/// included. Iterating records inflates each compressed batch once, the
/// first time its records are asked for, into a buffer of its own that
/// the clones of this value share; an uncompressed batch's records are
/// read in place, as ever.
#[derive(Clone, Debug, Default)]
pub struct FetchedRecords {
    data: Bytes,
    from_offset: u64,
    /// The inflated records of compressed batches, by batch index: set on
    /// the first iteration that meets a compressed batch (a read of
    /// uncompressed batches allocates nothing for it), shared by clones
    /// made after.
    inflated: OnceLock<Arc<[OnceLock<Bytes>]>>,
}

impl FetchedRecords {
    /// Wraps `data`, which must hold whole batches that passed
    /// [`check_batch`](super::check_batch).
    pub(crate) fn new(data: Bytes, from_offset: u64) -> Self {
        FetchedRecords { data, from_offset, inflated: OnceLock::new() }
    }

    /// The same batches, with records below `offset` skipped.
    pub(crate) fn starting_at(self, offset: u64) -> Self {
        FetchedRecords { from_offset: offset, ..self }
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

    /// Records at or after the requested offset, borrowing from the buffer
    /// (a compressed batch's from its inflated records).
    pub fn records(&self) -> impl Iterator<Item = RecordView<'_>> + '_ {
        let from = self.from_offset;
        self.batch_records().flat_map(|(records, _)| records).filter(move |r| r.offset >= from)
    }

    /// Records at or after the requested offset, as owned values sharing the
    /// buffer.
    pub fn to_records(&self) -> Vec<StoredRecord> {
        let from = self.from_offset;
        self.batch_records()
            .flat_map(|(records, owner)| {
                records.filter(move |r| r.offset >= from).map(|r| r.to_stored(owner))
            })
            .collect()
    }

    /// Each batch's records from the requested offset on, and the buffer
    /// they borrow from. Records before the requested offset (in the first
    /// batch) are skipped by their length, not decoded.
    fn batch_records(&self) -> impl Iterator<Item = (RecordIter<'_>, &Bytes)> + '_ {
        let from = self.from_offset;
        self.batches().enumerate().map(move |(index, (h, b))| {
            let (mut records, owner) = self.records_of(index, h, b);
            if h.base_offset < from {
                records.skip_below(from);
            }
            (records, owner)
        })
    }

    /// The records of batch `index` (`batch`, its header `h`), inflated
    /// once if it is compressed. A batch that does not inflate (not
    /// reachable for a batch that passed `check_batch` and its CRC at
    /// read) yields no record.
    fn records_of<'s>(
        &'s self,
        index: usize,
        h: BatchHeader,
        batch: &'s [u8],
    ) -> (RecordIter<'s>, &'s Bytes) {
        if !h.is_compressed() {
            return (RecordIter::new(batch, h), &self.data);
        }
        let slots = self.inflated.get_or_init(|| self.batches().map(|_| OnceLock::new()).collect());
        let Some(slot) = slots.get(index) else { return (RecordIter::new(batch, h), &self.data) };
        let inflated = slot.get_or_init(|| match Inflater::default().inflate_owned(batch, h) {
            Ok(Some(records)) => Bytes::from(records),
            _ => Bytes::new(),
        });
        (inflated_records(inflated, h), inflated)
    }

    /// Whether any record at or after `offset` was returned. Reads only
    /// headers unless a batch was thinned by compaction: a batch holding a
    /// record for every offset of its range answers by its range alone.
    pub(crate) fn has_record_from(&self, offset: u64) -> bool {
        self.batches().enumerate().filter(|(_, (h, _))| h.last_offset() >= offset).any(|(index, (h, b))| {
            if u64::from(h.record_count) == u64::from(h.last_offset_delta) + 1 {
                return true;
            }
            self.records_of(index, h, b).0.any(|r| r.offset >= offset)
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
