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

use crate::error::{Error, Result};

use super::partition::PartitionLog;

/// The `high_watermark` field's value while nobody has set one.
pub(super) const FOLLOWS_LOG_END: u64 = u64::MAX;

impl PartitionLog {
    /// The high watermark: records below it are committed. The log end
    /// offset until a replication layer sets one; never above the durable
    /// offset under `LogConfig::durable_high_watermark`.
    pub fn high_watermark(&self) -> u64 {
        // ORDER: the durable offset before the log end, so that neither
        // bound is read above the other.
        let durable = if self.config.durable_high_watermark {
            // Never below the log start: nothing there to wait for.
            self.durable_offset().max(self.log_start_offset())
        } else {
            u64::MAX
        };
        self.high_watermark.load(Ordering::SeqCst).min(durable).min(self.log_end_offset())
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

    /// Persists the high watermark (atomically and durably), if one was set.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn checkpoint_high_watermark(&self) -> Result<()> {
        self.record_high_watermark(true)
    }

    /// Records the high watermark (if one was set) in the checkpoint sink;
    /// a store's table writes it to its file only with `persist` (close
    /// leaves that to the store).
    pub(super) fn record_high_watermark(&self, persist: bool) -> Result<()> {
        let hw = self.high_watermark.load(Ordering::SeqCst);
        if hw == FOLLOWS_LOG_END {
            return Ok(());
        }
        let sink = self.points.sink();
        sink.high_watermark(&*self.fs, &self.dir, hw.min(self.log_end_offset()), persist)
    }

    /// A truncation to `offset`: a set high watermark above it comes down
    /// to it, and so does its checkpoint, durably, before anything is
    /// appended after the cut (left above, it would after a crash call
    /// records of the new history committed).
    pub(super) fn lower_high_watermark(&self, offset: u64) -> Result<()> {
        let lowered = self.high_watermark.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |hw| {
            (hw != FOLLOWS_LOG_END && hw > offset).then_some(offset)
        });
        if lowered.is_err() {
            return Ok(());
        }
        let sink = self.points.sink();
        sink.high_watermark(&*self.fs, &self.dir, offset, true)
    }

    /// The high watermark as the cleaners see it: retention and compaction
    /// act only on segments wholly below it.
    pub(super) fn committed_end(&self) -> u64 {
        self.high_watermark()
    }
}
