//! What a replication layer needs of a partition log: appending batches
//! whose offsets a leader assigned, and the leader-epoch queries a follower
//! uses to find where its log diverges (Kafka's KIP-101).

use std::sync::atomic::Ordering;

use crate::error::{AppendError, Corruption, Error, Result};
use crate::format::{peek_batch_len, EncodeError};
use crate::segment::cursor::{BatchCursor, Check, Step};

use super::epochs::EpochCache;
use super::partition::PartitionLog;
use super::pipeline::Checked;
use super::producers::ProducerStates;
use super::types::{AppendInfo, Completion};
use super::watermark::FOLLOWS_LOG_END;

impl PartitionLog {
    /// Appends batches as a leader wrote them, offsets and leader epochs
    /// kept: `batches` holds whole batches in the on-disk format (what
    /// [`FetchedRecords::bytes`](crate::FetchedRecords::bytes) returns on
    /// the leader). The first must start at the log end offset and each
    /// must continue the one before; each is fully checked (CRC, framing,
    /// every record) before anything is written. Returns the offsets of
    /// all of them, after applying the durability policy.
    ///
    /// # Errors
    /// [`crate::AppendError::InvalidBatch`] (nothing written); [`crate::AppendError::NonContiguousBatch`]
    /// (nothing written); [`crate::AppendError::Encode`] (too large); [`crate::AppendError::StaleLeaderEpoch`]
    /// for a batch whose epoch is below the log's latest (the batches before
    /// it stay appended); [`Error::Closed`]; [`Error::Io`].
    pub fn append_replica(&self, batches: &[u8]) -> Result<AppendInfo> {
        // Check everything first, outside the writer lock: a bad batch
        // anywhere writes nothing. The batches walk as a segment's do, each
        // continuing the one before; the pipeline checks that the first
        // continues the log.
        let mut headers = Vec::new();
        let mut source: &[u8] = batches;
        let mut cursor = BatchCursor::new(0, None, batches.len() as u64, Check::Whole);
        // Bounded by the buffer: each step advances by a batch or returns.
        loop {
            let at = cursor.position() as usize;
            let rest = &batches[at.min(batches.len())..];
            let len = peek_batch_len(rest).map_or(rest.len(), |l| l as usize);
            if len > self.config.max_batch_bytes {
                return Err(EncodeError::BatchTooLarge { size: len, max: self.config.max_batch_bytes }.into());
            }
            match cursor.step(&mut source)? {
                Step::End => break,
                Step::Batch(b) => headers.push(b.header),
                Step::Damaged(Corruption::OffsetMismatch { expected, found }) => {
                    return Err(Error::Append(AppendError::NonContiguousBatch { expected, found }));
                }
                Step::Damaged(Corruption::Batch(error)) => {
                    let problem = crate::format::BatchProblem::Corrupt(error);
                    return Err(Error::Append(AppendError::InvalidBatch {
                        batch: headers.len(),
                        position: at,
                        problem,
                    }));
                }
                Step::Damaged(other) => return Err(Error::corruption(&self.dir, at as u64, other)),
            }
        }
        let written = self.append_checked(Checked::Placed { bytes: batches }, &mut headers)?;
        self.complete(written, Completion::Policy)
    }

    /// Drops every record and starts the log over, empty, at `offset`
    /// (Kafka's `truncateFullyAndStartAt`): for a follower whose log ends
    /// below the leader's log start, or a consensus layer installing a
    /// snapshot that covers more than this log holds. The log start and end
    /// offsets become `offset`, the leader-epoch cache and producer state
    /// are cleared, and a set high watermark becomes `offset`.
    ///
    /// Crash-safe: after a crash anywhere inside, the log reopens either as
    /// it was or empty at its old log start (every record cut), or empty
    /// at `offset`; never with records below `offset` but not others.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] below the log end offset (cut with
    /// [`PartitionLog::truncate_to`] first: offsets below the end are
    /// never reused here); [`Error::Closed`]; [`Error::Poisoned`];
    /// [`Error::Io`].
    pub fn truncate_fully_and_start_at(&self, offset: u64) -> Result<()> {
        self.counters.changed();
        let mut writer = self.writable()?;
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset < end || offset > crate::segment::OFFSET_MAX {
            return Err(Error::OffsetOutOfRange { offset, log_start_offset: start, log_end_offset: end });
        }
        let _no_readers = self.segments.exclude_readers(&writer);
        // ORDER: first every record is cut (the crash-safe truncation: the
        // epochs and producers of the cut records go with them), then the
        // cache is emptied (an empty log holds no epoch: open drops any left
        // behind), then the log start moves up, durably, before the empty
        // segment at `offset` replaces the old one (a crash between the two
        // reopens through the same restart).
        let result = (|| {
            self.truncate_locked(&mut writer, start)?;
            if writer.epochs != EpochCache::default() {
                writer.epochs = EpochCache::default();
                writer.epochs.write(&*self.fs, &self.dir)?;
            }
            if offset > start {
                self.raise_log_start(&mut writer, offset)?;
                self.restart_at(&mut writer, offset)?;
                writer.producers = ProducerStates::default();
                writer.producers.write(&*self.fs, &self.dir, offset)?;
            }
            Ok(())
        })();
        result.map_err(|e| self.write_failed(e))?;
        let _ = self
            .high_watermark
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |hw| (hw != FOLLOWS_LOG_END).then_some(offset));
        self.cleaned_to.fetch_max(offset, Ordering::SeqCst);
        drop(writer);
        // Waiters for offsets below the new end can give up waiting.
        self.notify_appended();
        Ok(())
    }

    /// Idempotent producers whose state the log keeps (see
    /// `LogConfig::producer_id_expiration_ms`).
    pub fn producer_count(&self) -> usize {
        self.writer.lock().producers.len()
    }

    /// The latest leader epoch in the log (`None`: no batch carried one).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.writer.lock().epochs.latest()
    }

    /// Kafka's `OffsetsForLeaderEpoch`: the largest epoch at or below
    /// `epoch` that this log has, and the offset after its last record (the
    /// first offset of the next epoch; the log end offset for the latest
    /// epoch). A follower whose latest epoch is `epoch` truncates to the
    /// returned offset (if below its own end) before fetching: the records
    /// after it were never the leader's. For an epoch below the first one,
    /// `epoch` and the first epoch's start offset; `None` when the log has
    /// no epoch at or above `epoch`.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        let writer = self.writer.lock(); // a consistent (epochs, end) pair
        writer.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader-epoch cache: `(epoch, first offset)` pairs, oldest first.
    pub fn leader_epochs(&self) -> Vec<(i32, u64)> {
        self.writer.lock().epochs.entries().to_vec()
    }
}
