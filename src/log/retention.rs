//! Retention and time lookups: deleting old segments by time, size or a
//! raised log start offset, and finding the first offset at a timestamp.
//!
//! Retention only ever deletes whole sealed segments, oldest first, and
//! never the active one by time or size. ORDER: the new log start offset is
//! checkpointed (atomically, durably) first; then the segments leave the
//! segment map, so new reads cannot reach them; then their files are
//! removed and the directory fsynced. A crash in between leaves segments
//! below the log start, which the next open deletes. Readers that took a
//! snapshot before keep reading the unlinked files through their open
//! handles (log data is read, never mapped): they finish, or their next
//! read below the new log start gets `OffsetOutOfRange`.

use crate::error::{Error, Result};

use super::partition::{PartitionLog, Writer};
use super::types::RetentionReport;

impl PartitionLog {
    /// The earliest offset whose record has a timestamp at or after
    /// `timestamp_ms` (Kafka's ListOffsets), at or after the log start
    /// offset; `None` when every record is older. Correct when timestamps
    /// are not monotonic.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged batch on the way.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<u64>> {
        self.in_live_segments(|segments| {
            let start = self.log_start_offset();
            for segment in segments.values() {
                if let Some(offset) =
                    segment.offset_for_timestamp(timestamp_ms, start, &self.segment_config)?
                {
                    return Ok(Some(offset));
                }
            }
            Ok(None)
        })
    }

    /// The largest record timestamp from the log start on and the first
    /// offset whose record has it (Kafka's ListOffsets `MAX_TIMESTAMP`,
    /// KIP-734); `None` for a log with no record.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged batch on the way.
    pub fn max_timestamp(&self) -> Result<Option<(i64, u64)>> {
        let start = self.log_start_offset();
        let max =
            self.snapshot().values().filter(|s| s.next_offset() > start).map(|s| s.max_timestamp_ms()).max();
        match max {
            Some(ts) if ts >= 0 => Ok(self.offset_for_timestamp(ts)?.map(|offset| (ts, offset))),
            _ => Ok(None),
        }
    }

    /// Raises the log start offset to `offset` (Kafka's DeleteRecords):
    /// records below it can no longer be read, and segments wholly below it
    /// are deleted. A lower offset than the current log start changes
    /// nothing. Returns the log start offset.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] past the log end offset; [`Error::Closed`];
    /// [`Error::Poisoned`]; [`Error::Io`].
    pub fn delete_records_before(&self, offset: u64) -> Result<u64> {
        let mut writer = self.writable()?;
        // Not past the high watermark (the log end without replication):
        // records a replica may still lack are not deleted.
        let end = self.committed_end();
        if offset > end {
            let log_start_offset = self.log_start_offset();
            return Err(Error::OffsetOutOfRange { offset, log_start_offset, log_end_offset: end });
        }
        if offset <= self.log_start_offset() {
            return Ok(self.log_start_offset());
        }
        self.raise_log_start(&mut writer, offset)?;
        // The active segment goes too once everything in it is below the
        // log start: roll so there is an empty one to append to.
        let active = self.active();
        if !active.is_empty() && active.next_offset() <= offset {
            self.roll_locked(&mut writer).map_err(|e| self.write_failed(e))?;
        }
        self.delete_below_log_start(&writer)?;
        Ok(self.log_start_offset())
    }

    /// Deletes sealed segments oldest first while one of these holds: its
    /// largest timestamp is more than `retention_ms` before now, the
    /// partition would still be at least `retention_bytes` without it, or it
    /// lies wholly below the log start offset. Also forgets idempotent
    /// producers idle for `producer_id_expiration_ms`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn enforce_retention(&self) -> Result<RetentionReport> {
        let mut writer = match self.writable() {
            Err(Error::Closed) => return Ok(RetentionReport::default()),
            gate => gate?,
        };
        let now_ms = self.clock.now_ms();
        let producers_expired = writer.producers.expire(now_ms, self.config.producer_id_expiration_ms);
        let mut report = self.delete_retained_segments(&mut writer, now_ms)?;
        report.producers_expired = producers_expired;
        Ok(report)
    }

    /// The segment part of `enforce_retention`.
    fn delete_retained_segments(&self, writer: &mut Writer, now_ms: i64) -> Result<RetentionReport> {
        // A compact-only topic keeps its (compacted) history whatever its age
        // or size; only a raised log start deletes from it.
        let deletes = self.config.cleanup_policy.deletes();
        let retention_ms = if deletes { self.config.retention_ms } else { -1 };
        let retention_bytes = if deletes { self.config.retention_bytes } else { -1 };
        let segments = self.snapshot();
        let log_start = self.log_start_offset();
        let committed = self.committed_end();
        let mut remaining = segments.values().map(|s| s.size_bytes()).sum::<u64>();
        let mut new_start = None;
        // Bounded by the number of sealed segments (the active one is last).
        for segment in segments.values().take(segments.len().saturating_sub(1)) {
            let below_start = segment.next_offset() <= log_start;
            let expired =
                retention_ms >= 0 && now_ms.saturating_sub(segment.max_timestamp_ms()) > retention_ms;
            let oversized =
                retention_bytes >= 0 && remaining - segment.size_bytes() >= retention_bytes as u64;
            // Never a segment holding records at or above the high watermark.
            if !(below_start || expired || oversized) || segment.next_offset() > committed {
                break;
            }
            remaining -= segment.size_bytes();
            new_start = Some(segment.next_offset());
        }
        let Some(new_start) = new_start else {
            return Ok(RetentionReport::default());
        };
        if new_start > log_start {
            self.raise_log_start(writer, new_start)?;
        }
        self.delete_below_log_start(writer)
    }

    /// Persists and publishes a higher log start offset.
    pub(super) fn raise_log_start(&self, writer: &mut Writer, offset: u64) -> Result<()> {
        self.counters.changed();
        // ORDER: durable before any segment is deleted because of it, unless
        // a segment starts there (its base gives it back; see `sink.rs`).
        let at_segment_base = self.snapshot().contains_key(&offset);
        let sink = self.points.sink();
        sink.log_start(&*self.fs, &self.dir, offset, at_segment_base).map_err(|e| self.write_failed(e))?;
        self.segments.raise_log_start(writer, offset);
        // The epoch holding the new start now begins there (Kafka's
        // truncateFromStart); a crash before this write leaves an older
        // start, which only makes end_offset_for_epoch answer for records
        // already gone, as Kafka's cache may.
        if writer.epochs.truncate_from_start(offset) {
            writer.epochs.write(&*self.fs, &self.dir).map_err(|e| self.write_failed(e))?;
        }
        Ok(())
    }

    /// Removes the sealed segments wholly below the log start offset.
    fn delete_below_log_start(&self, writer: &Writer) -> Result<RetentionReport> {
        let log_start = self.segments.checkpointed_log_start();
        let mut map = (*self.snapshot()).clone();
        let last = map.keys().next_back().copied();
        let doomed: Vec<u64> = map
            .iter()
            .filter(|(&base, s)| Some(base) != last && s.next_offset() <= log_start)
            .map(|(&base, _)| base)
            .collect();
        if doomed.is_empty() {
            return Ok(RetentionReport::default());
        }
        let mut removed = Vec::with_capacity(doomed.len());
        for base in doomed {
            removed.extend(map.remove(&base));
        }
        self.segments.replace(writer, map);
        let mut report = RetentionReport::default();
        for segment in removed {
            report.segments_deleted += 1;
            report.bytes_deleted += segment.size_bytes();
            segment.delete(&*self.fs).map_err(|e| self.write_failed(e))?;
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| self.write_failed(Error::io("sync directory", &self.dir)(e)))?;
        self.counters.deleted(report.segments_deleted as u64, report.bytes_deleted);
        tracing::info!(
            dir = %self.dir.display(),
            segments = report.segments_deleted,
            bytes = report.bytes_deleted,
            log_start_offset = log_start,
            "deleted segments below the log start offset"
        );
        Ok(report)
    }

    /// At open: segments below a checkpointed log start are deleted (a crash
    /// interrupted retention), and a log whose end fell below its log start
    /// (data after the checkpoint was lost) starts over, empty, at the log
    /// start, so the log start never moves backwards.
    pub(super) fn apply_log_start_at_open(&self) -> Result<()> {
        let mut writer = self.writer.lock();
        let log_start = self.segments.checkpointed_log_start();
        if log_start > self.log_end_offset() {
            self.restart_at(&mut writer, log_start)?;
        }
        self.delete_below_log_start(&writer).map(drop)
    }
}
