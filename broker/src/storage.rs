//! What the data path (Produce and Fetch) asks of storage, behind one
//! small trait: the store's partitions, or the benchmark's discarding sink
//! (`sink.rs`, built only with `--cfg discard_sink`). The broker picks one
//! when it starts; no handler branches on which.

use annals::{AppendInfo, Completion, Partition, ProduceMeta, ReadBound, WaitForOffset, Written};
use bytes::Bytes;

/// A producer's batches written by the data path, their durability not
/// yet applied: [`DataPath::complete`] acknowledges them.
#[must_use = "an append is acknowledged only once completed"]
pub(crate) enum Appended {
    /// In the partition's log.
    #[cfg_attr(discard_sink, allow(dead_code, reason = "the benchmark build serves its sink"))]
    Written(Written),
    /// Counted and dropped by the benchmark's sink.
    #[cfg_attr(not(discard_sink), allow(dead_code, reason = "only the benchmark build's sink discards"))]
    Discarded(AppendInfo),
}

impl Appended {
    /// Where the batches landed.
    pub(crate) fn info(&self) -> &AppendInfo {
        match self {
            Appended::Written(w) => w.info(),
            Appended::Discarded(info) => info,
        }
    }
}

/// One partition's data, as Produce and Fetch use it.
pub(crate) trait DataPath: Send + Sync {
    /// Writes a producer's batches (validated and stamped by the engine's
    /// pass-through append), in the order of the calls.
    fn append(&self, partition: &Partition, batches: &[u8], meta: ProduceMeta) -> annals::Result<Appended>;
    /// Completes an append: its partition's durability policy, and with
    /// [`Completion::Durable`] an fsync (group commit).
    fn complete(
        &self,
        partition: &Partition,
        appended: Appended,
        completion: Completion,
    ) -> annals::Result<AppendInfo>;
    /// The log start offset, the high watermark and the log end offset.
    fn offsets(&self, partition: &Partition) -> (u64, u64, u64);
    /// Why the partition is offline, if it is (a poisoned log).
    fn offline(&self, partition: &Partition) -> Option<annals::Error>;
    /// Whole batches from the one holding `offset`, up to about
    /// `max_bytes` (the first whatever its size), below the high
    /// watermark: their bytes and the offset after them.
    fn read(
        &self,
        partition: &Partition,
        offset: u64,
        max_bytes: usize,
    ) -> annals::Result<(Bytes, Option<u64>)>;
    /// A future resolving once the high watermark passes `offset`; `None`
    /// when nothing will move it.
    fn wait(&self, partition: &Partition, offset: u64) -> Option<WaitForOffset>;
}

/// The store: every call goes to the partition's log.
#[cfg_attr(discard_sink, allow(dead_code, reason = "the benchmark build serves its sink"))]
pub(crate) struct Stored;

impl DataPath for Stored {
    fn append(&self, partition: &Partition, batches: &[u8], meta: ProduceMeta) -> annals::Result<Appended> {
        // The append stamps offsets and the epoch in place.
        let mut batches = batches.to_vec();
        partition.append_batches_written(&mut batches, meta).map(Appended::Written)
    }

    fn complete(
        &self,
        partition: &Partition,
        appended: Appended,
        completion: Completion,
    ) -> annals::Result<AppendInfo> {
        match appended {
            Appended::Written(written) => partition.complete(written, completion),
            Appended::Discarded(info) => Ok(info),
        }
    }

    fn offsets(&self, partition: &Partition) -> (u64, u64, u64) {
        // ORDER: the high watermark before the log end (never above it).
        let (start, high_watermark) = (partition.log_start_offset(), partition.high_watermark());
        (start, high_watermark, partition.log_end_offset())
    }

    fn offline(&self, partition: &Partition) -> Option<annals::Error> {
        partition.poisoned()
    }

    fn read(
        &self,
        partition: &Partition,
        offset: u64,
        max_bytes: usize,
    ) -> annals::Result<(Bytes, Option<u64>)> {
        let fetched = partition.read(offset, max_bytes, ReadBound::HighWatermark)?;
        Ok((fetched.bytes().clone(), fetched.next_offset()))
    }

    fn wait(&self, partition: &Partition, offset: u64) -> Option<WaitForOffset> {
        Some(partition.wait_for_async(offset, ReadBound::HighWatermark))
    }
}
