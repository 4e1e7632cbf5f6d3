//! The record API's append: records encoded into a batch outside the
//! writer lock, then the one pipeline (`pipeline.rs`); and rolling.

use std::sync::Arc;

use crate::error::{AppendError, Error, Result};
use crate::format::batch::compress_batch;
use crate::format::validate::within_window;
use crate::format::{encode_batch, BatchMeta, Codec, Record};
use crate::segment::LogSegment;

use super::checkpoint::LogPoint;
use super::partition::{PartitionLog, Writer};
use super::pipeline::{Checked, Completes};
use super::points::SyncMode;
use super::types::{AppendInfo, Completion};

thread_local! {
    /// Per-thread encode buffer: steady-state appends allocate nothing.
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An encode buffer grown past this is released after use.
const ENCODE_BUFFER_KEEP_BYTES: usize = 4 << 20;

impl PartitionLog {
    /// Appends `records` as one batch; returns the offsets assigned.
    ///
    /// # Errors
    /// [`crate::AppendError::Encode`] (no records, a record or the batch too large, a
    /// negative timestamp; nothing is
    /// written), [`Error::Closed`], or [`Error::Io`].
    pub fn append(&self, records: &[Record]) -> Result<AppendInfo> {
        self.append_with(records, BatchMeta::default())
    }

    /// Appends `records` with producer and leader-epoch fields.
    ///
    /// # Errors
    /// As [`PartitionLog::append`].
    pub fn append_with(&self, records: &[Record], meta: BatchMeta) -> Result<AppendInfo> {
        if self.config.cleanup_policy.compacts() {
            if let Some(index) = records.iter().position(|r| r.key.is_none()) {
                return Err(Error::Append(AppendError::UnkeyedRecordInCompactedLog { index }));
            }
        }
        let now_ms = self.clock.now_ms();
        let log_append_time = self.config.message_timestamp_type == crate::TimestampType::LogAppendTime;
        if !log_append_time {
            self.check_timestamps(records, now_ms)?;
        }
        let meta = BatchMeta { log_append_time, ..meta };
        // Encode outside the writer lock, at base offset 0: the base offset
        // sits outside the CRC precisely so it can be stamped afterwards.
        // Producers to one partition then serialize only on the write.
        ENCODE_BUFFER.with_borrow_mut(|buf| {
            buf.clear();
            let limits = self.config.encode_limits();
            let mut encoded = encode_batch(buf, 0, meta, records, now_ms, limits)?;
            // `compression.type`: the record API's batch is compressed
            // once encoded (its limits hold for the records inflated).
            if let Some(c) = self.config.compression().filter(|c| c.codec != Codec::None) {
                compress_batch(buf, 0, &mut encoded, c)?;
            }
            let result = self.append_checked(
                Checked::Stamp { bytes: buf, leader_epoch: None, completes: Completes::AtOnce },
                &mut [encoded],
            );
            let result = result.and_then(|written| self.complete(written, Completion::Policy));
            if buf.capacity() > ENCODE_BUFFER_KEEP_BYTES {
                *buf = Vec::new(); // do not pin a rare huge batch's memory per thread
            }
            result
        })
    }

    /// Kafka's `message.timestamp.before.max.ms` / `after.max.ms` for
    /// records appended through the record API.
    fn check_timestamps(&self, records: &[Record], now_ms: i64) -> Result<()> {
        let (before, after) =
            (self.config.message_timestamp_before_max_ms, self.config.message_timestamp_after_max_ms);
        if before == i64::MAX && after == i64::MAX {
            return Ok(());
        }
        for (index, r) in records.iter().enumerate() {
            let Some(ts) = r.timestamp_ms else { continue };
            if !within_window(ts, now_ms, before, after) {
                return Err(Error::Append(AppendError::InvalidTimestamp { index, timestamp_ms: ts, now_ms }));
            }
        }
        Ok(())
    }

    /// Writes the write buffer (`LogConfig::write_buffer_bytes`) to the
    /// segment file, without an fsync: what a process crash would lose is
    /// then in the page cache, as every append is without the buffer (a
    /// `BufWriter::flush`, where [`PartitionLog::flush`] is its `sync`).
    /// Does nothing without a buffer.
    ///
    /// # Errors
    /// [`Error::Io`] of the write (which poisons the log).
    pub fn write_buffered(&self) -> Result<()> {
        self.active().write_buffered().map_err(|e| self.write_failed(e))
    }

    /// Seals the active segment and starts a new one at the log end offset.
    /// Does nothing when the active segment is empty.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Io`].
    pub fn roll(&self) -> Result<()> {
        let mut writer = self.writable()?;
        self.roll_locked(&mut writer).map(drop).map_err(|e| self.write_failed(e))
    }

    /// Roll through the gate's writer; returns the (new) active segment.
    pub(super) fn roll_locked(&self, writer: &mut Writer) -> Result<Arc<LogSegment>> {
        let active = self.active();
        if active.is_empty() {
            return Ok(active);
        }
        let base = self.log_end_offset();
        // ORDER: seal (trim index, fsync log and index), create the new
        // segment's files, fsync the directory. Sealed segments are durable,
        // so recovery after a crash scans only the active one.
        self.counters.fsync(|| active.seal(&writer.indexing))?;
        let segment = Arc::new(LogSegment::create(&*self.fs, &self.dir, base, &self.segment_config)?);
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        let mut map = (*self.snapshot()).clone();
        map.insert(base, segment.clone());
        self.segments.replace(writer, map);
        writer.indexing = segment.opened_indexing();
        // Everything below the new segment is durable now.
        self.set_recovery_point(
            writer,
            LogPoint { segment: base, position: 0, offset: base },
            SyncMode::Now,
        )?;
        // Recovery replays producer state only from here on.
        writer.producers.write(&*self.fs, &self.dir, base)?;
        self.counters.rolled();
        tracing::debug!(dir = %self.dir.display(), base_offset = base, "rolled a new segment");
        Ok(segment)
    }
}
