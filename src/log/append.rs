//! Appending (Kafka's `UnifiedLog.append`): encode outside the writer
//! lock, stamp the base offset, check the producer, write, roll, then
//! apply the durability policy.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::Durability;
use crate::error::{Error, Result};
use crate::format::batch::compress_batch;
use crate::format::batch::set_base_offset;
use crate::format::validate::within_window;
use crate::format::{encode_batch, BatchHeader, BatchMeta, Codec, Record};
use crate::segment::LogSegment;

use super::checkpoint::LogPoint;
use super::partition::{PartitionLog, Writer};
use super::producers::Check;
use super::types::AppendInfo;

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
    /// [`Error::Encode`] (no records, a record or the batch too large, a
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
                return Err(Error::UnkeyedRecordInCompactedLog { index });
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
        ENCODE_BUFFER
            .with_borrow_mut(|buf| {
                buf.clear();
                let limits = self.config.encode_limits();
                let mut encoded = encode_batch(buf, 0, meta, records, now_ms, limits)?;
                // `compression.type`: the record API's batch is compressed
                // once encoded (its limits hold for the records inflated).
                if let Some(c) = self.config.compression().filter(|c| c.codec != Codec::None) {
                    compress_batch(buf, 0, &mut encoded, c)?;
                }
                let result = self.append_encoded(buf, encoded);
                if buf.capacity() > ENCODE_BUFFER_KEEP_BYTES {
                    *buf = Vec::new(); // do not pin a rare huge batch's memory per thread
                }
                result
            })
            .and_then(|info| self.make_durable(info))
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
                return Err(Error::InvalidTimestamp { index, timestamp_ms: ts, now_ms });
            }
        }
        Ok(())
    }

    /// Applies the durability policy to an append that was written.
    pub(super) fn make_durable(&self, info: AppendInfo) -> Result<AppendInfo> {
        match self.config.durability {
            Durability::None => {}
            Durability::Always => self.sync_to(info.last_offset + 1)?,
            Durability::Interval { flush_messages, flush_ms } => {
                let records = info.last_offset + 1 - info.first_offset;
                if self.syncer.note_appended(records, flush_messages, flush_ms) {
                    self.flush()?;
                }
            }
        }
        Ok(info)
    }

    /// Stamps the base offset on a batch encoded at 0 and writes it.
    fn append_encoded(&self, batch: &mut [u8], encoded: BatchHeader) -> Result<AppendInfo> {
        let mut writer = self.writable()?;
        let base = self.log_end_offset();
        // Offsets are Kafka's i64: the log end offset stays at most
        // OFFSET_MAX (i64::MAX).
        let end = base
            .checked_add(encoded.next_offset())
            .filter(|&end| end <= crate::segment::OFFSET_MAX)
            .ok_or(Error::OffsetOutOfRange {
                offset: base,
                log_start_offset: self.log_start_offset(),
                log_end_offset: base,
            })?;
        set_base_offset(batch, base);
        let header = BatchHeader { base_offset: base, ..encoded };
        debug_assert_eq!(header.next_offset(), end);
        if header.producer_id >= 0 {
            if let Check::Duplicate(info) = writer.producers.check(&header)? {
                return Ok(info); // a retry: already in the log at these offsets
            }
        }
        let info = self.write_batch_locked(&mut writer, batch, &header)?;
        drop(writer);
        self.notify_appended();
        Ok(info)
    }

    /// Writes one checked batch at the log end: notes its leader epoch
    /// (durably, before the batch, when it is a new one), rolls if needed,
    /// appends, publishes (the caller wakes waiters after releasing the
    /// writer lock).
    pub(super) fn write_batch_locked(
        &self,
        writer: &mut Writer,
        batch: &[u8],
        header: &BatchHeader,
    ) -> Result<AppendInfo> {
        self.write_batches_locked(writer, batch, std::slice::from_ref(header))
    }

    /// [`PartitionLog::write_batch_locked`] for checked batches back to
    /// back in `bytes`, contiguous from the log end: one write, into one
    /// segment (rolled first if they do not fit the active one).
    pub(super) fn write_batches_locked(
        &self,
        writer: &mut Writer,
        bytes: &[u8],
        headers: &[BatchHeader],
    ) -> Result<AppendInfo> {
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(crate::format::EncodeError::Empty.into());
        };
        for header in headers {
            if header.leader_epoch >= 0 && writer.epochs.latest() != Some(header.leader_epoch) {
                let mut next = writer.epochs.clone();
                if next.assign(header.leader_epoch, header.base_offset)? {
                    // ORDER: the epoch's entry is durable before its first batch.
                    next.write(&*self.fs, &self.dir).map_err(|e| self.write_failed(e))?;
                    writer.epochs = next;
                }
            }
        }
        let now_ms = self.clock.now_ms();
        let mut active = self.active();
        if active.needs_roll(bytes.len() as u64, last.last_offset(), &self.segment_config, now_ms) {
            active = self.roll_locked(writer).map_err(|e| self.write_failed(e))?;
        }
        active
            .append_batches(bytes, headers, &self.segment_config, now_ms)
            .map_err(|e| self.write_failed(e))?;
        self.log_end_offset.store(last.next_offset(), Ordering::SeqCst);
        self.counters.appended(last.next_offset() - first.base_offset, bytes.len() as u64);
        for header in headers.iter().filter(|h| h.producer_id >= 0) {
            writer.producers.update(header);
        }
        let max_timestamp_ms = headers.iter().map(|h| h.max_timestamp_ms).max().unwrap_or(-1);
        Ok(AppendInfo { first_offset: first.base_offset, last_offset: last.last_offset(), max_timestamp_ms })
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
        self.counters.fsync(|| active.seal())?;
        let segment = Arc::new(LogSegment::create(&*self.fs, &self.dir, base, &self.segment_config)?);
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        let mut map = (*self.snapshot()).clone();
        map.insert(base, segment.clone());
        *self.segments.write() = Arc::new(map);
        // Everything below the new segment is durable now.
        self.set_recovery_point(LogPoint { segment: base, position: 0, offset: base })?;
        // Recovery replays producer state only from here on.
        writer.producers.write(&*self.fs, &self.dir, base)?;
        self.counters.rolled();
        tracing::debug!(dir = %self.dir.display(), base_offset = base, "rolled a new segment");
        Ok(segment)
    }
}
