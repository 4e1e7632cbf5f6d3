//! The high watermark: the offset below which a replication layer says
//! records are committed (replicated enough). Consumers may read only below
//! it, and retention and compaction never act at or above it, so nothing a
//! replica may still need to truncate is deleted or rewritten.
//!
//! A log nobody sets it on (no replication) has its high watermark at its
//! log end. Once set, it is kept in memory, never above the log end, lowered
//! by `truncate_to`, and persisted (`high-watermark`, `format::kv`, key
//! `offset`) by [`PartitionLog::checkpoint_high_watermark`] and at close, as
//! Kafka checkpoints it periodically rather than on every change: after a
//! crash it comes back at the last checkpoint (capped at the recovered log
//! end), possibly lower than last set, never higher.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::FetchedRecords;

use super::checkpoint;
use super::partition::PartitionLog;
use super::wait::WaitForOffset;

/// The `high_watermark` field's value while nobody has set one.
pub(super) const FOLLOWS_LOG_END: u64 = u64::MAX;

impl PartitionLog {
    /// The high watermark: records below it are committed. The log end
    /// offset until a replication layer sets one.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::SeqCst).min(self.log_end_offset())
    }

    /// Raises the high watermark to `offset` (a lower value changes
    /// nothing: only truncation lowers it). Returns the high watermark.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] past the log end offset; [`Error::Closed`].
    pub fn set_high_watermark(&self, offset: u64) -> Result<u64> {
        self.counters.changed();
        let writer = self.writable()?;
        let end = self.log_end_offset();
        if offset > end {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: end,
            });
        }
        let current = self.high_watermark.load(Ordering::SeqCst);
        let raised = current == FOLLOWS_LOG_END || offset > current;
        if raised {
            self.high_watermark.store(offset, Ordering::SeqCst);
        }
        drop(writer);
        if raised {
            // Committed-only readers wait for this, not for appends.
            self.notify_appended();
        }
        Ok(self.high_watermark())
    }

    /// Blocks until the high watermark is above `offset` (a committed read
    /// at `offset` can return a record once its batch is wholly below it)
    /// or `timeout` passes; returns whether it is.
    pub fn wait_for_committed(&self, offset: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.notifier.wait_until(deadline, || self.high_watermark() > offset)
    }

    /// A future resolving once the high watermark is above `offset`. Woken
    /// by high-watermark moves; runtime-agnostic.
    pub fn wait_for_committed_async(log: &Arc<PartitionLog>, offset: u64) -> WaitForOffset {
        WaitForOffset::new(log.clone(), offset, true)
    }

    /// Persists the high watermark (atomically and durably), if one was set.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn checkpoint_high_watermark(&self) -> Result<()> {
        let hw = self.high_watermark.load(Ordering::SeqCst);
        if hw == FOLLOWS_LOG_END {
            return Ok(());
        }
        checkpoint::write_high_watermark(&*self.fs, &self.dir, hw.min(self.log_end_offset()))
    }

    /// Like [`PartitionLog::read`], but only whole batches wholly below the
    /// high watermark: what a consumer may see of a replicated partition.
    /// Empty at the high watermark (and past it, up to the log end).
    ///
    /// # Errors
    /// As [`PartitionLog::read`].
    pub fn read_committed(&self, offset: u64, max_bytes: usize) -> Result<FetchedRecords> {
        let hw = self.high_watermark();
        if offset >= hw && offset <= self.log_end_offset() {
            return Ok(FetchedRecords::default());
        }
        Ok(self.read(offset, max_bytes)?.below(hw))
    }

    /// Like [`PartitionLog::read`], but only records below
    /// [`PartitionLog::durable_offset`] (whole batches): what a power cut
    /// cannot take back. A consumer that must never act on a record the
    /// log may lose reads this way; under `Durability::Always` it sees a
    /// record once its append is acknowledged. Reading at the durable
    /// offset (below the log end) returns nothing.
    ///
    /// # Errors
    /// As [`PartitionLog::read`].
    pub fn read_durable(&self, offset: u64, max_bytes: usize) -> Result<FetchedRecords> {
        let durable = self.durable_offset();
        if offset >= durable && offset <= self.log_end_offset() {
            return Ok(FetchedRecords::default());
        }
        Ok(self.read(offset, max_bytes)?.below(durable))
    }

    /// Blocks until the durable offset is above `offset` or `timeout`
    /// passes; returns whether it is.
    pub fn wait_for_durable(&self, offset: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.notifier.wait_until(deadline, || self.durable_offset() > offset)
    }

    /// The high watermark as the cleaners see it: retention and compaction
    /// act only on segments wholly below it.
    pub(super) fn committed_end(&self) -> u64 {
        self.high_watermark()
    }
}
