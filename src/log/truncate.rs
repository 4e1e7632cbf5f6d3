//! Truncation (Kafka's `LocalLog.truncateTo`): the synced extent comes
//! down first, segments past the cut go, the one holding it is cut, and
//! producer and epoch state follow the new end.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::segment::LogSegment;

use super::checkpoint::LogPoint;
use super::open::load_producers;
use super::partition::{check_range, PartitionLog, SegmentMap, Writer};
use super::points::{end_point, SyncMode};

impl PartitionLog {
    /// Drops every record at or above `offset` (across segments); the log end
    /// offset becomes `offset`. Waits for in-flight reads to finish.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `[log_start_offset,
    /// log_end_offset]`; [`Error::Closed`]; [`Error::Io`].
    pub fn truncate_to(&self, offset: u64) -> Result<()> {
        self.counters.changed();
        let mut writer = self.writable()?;
        let _no_readers = self.segments.exclude_readers(&writer);
        self.truncate_locked(&mut writer, offset).map_err(|e| self.write_failed(e))
    }

    /// The truncation, through the gate's writer (readers excluded).
    pub(super) fn truncate_locked(&self, writer: &mut Writer, offset: u64) -> Result<()> {
        let segments = self.snapshot();
        let end = self.log_end_offset();
        check_range(offset, self.log_start_offset(), end)?;
        if offset == end {
            return Ok(());
        }
        // ORDER: the synced extent comes down to the cut first.
        let lowered = match segments.range(..offset).next_back() {
            Some((_, s)) => {
                let at = s.batch_start(offset)?;
                LogPoint { segment: s.base_offset(), position: at.position, offset: at.offset }
            }
            None => LogPoint { segment: offset, position: 0, offset },
        };
        self.lower_extent(writer, lowered)?;
        // ORDER: a set high watermark above the cut comes down to it, and
        // durably, before the cut (a lower one is always safe to keep).
        self.lower_high_watermark(offset)?;
        let mut map = (*segments).clone();
        let doomed: Vec<u64> = map.range(offset..).map(|(&b, _)| b).collect();
        let keep_none = doomed.len() == map.len();
        for base in doomed.into_iter().rev() {
            if let Some(segment) = map.remove(&base) {
                segment.delete(&*self.fs)?;
            }
        }
        if keep_none {
            // Everything went: start over, empty, at `offset`.
            let segment = LogSegment::create(&*self.fs, &self.dir, offset, &self.segment_config)?;
            writer.indexing = segment.opened_indexing();
            map.insert(offset, Arc::new(segment));
        } else if let Some(active) = map.values().next_back() {
            writer.indexing = active.truncate_to(&*self.fs, offset, &mut writer.scratch)?;
            active.activate(&self.segment_config);
        }
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        let active = map.values().next_back().cloned().expect("a log always has a segment");
        // The cut is durable: the extent goes back up to the new end.
        self.raise_extent(writer, end_point(&active), SyncMode::Now)?;
        self.segments.replace(writer, map);
        self.segments.publish_end(writer, offset);
        self.points.syncer().lower_synced_offset(offset);
        self.lower_cleaned_to(offset)?;
        // Producer state as of the new end: the snapshot (if it is not past
        // the cut) and the batches after it, replayed; then a snapshot here.
        writer.producers = load_producers(&*self.fs, &self.dir, &self.snapshot(), offset)?;
        writer.producers.expire(self.clock.now_ms(), self.config.producer_id_expiration_ms);
        writer.producers.write(&*self.fs, &self.dir, offset)?;
        // Epochs that began at or past the cut are gone with it. (A crash
        // before this write is repaired at open, which drops entries at or
        // past the log end.)
        if writer.epochs.truncate_from_end(offset) {
            writer.epochs.write(&*self.fs, &self.dir)?;
        }
        // The cut was fsynced: the recovery point is the new end.
        self.set_recovery_point(writer, end_point(&active), SyncMode::Now)
    }

    /// Drops every segment and starts an empty one at `offset` (the log
    /// start moved past everything on disk). Writer only (at open too).
    ///
    /// ORDER: the old segments are deleted oldest first, then the new one
    /// is created: a crash in between leaves a contiguous suffix of the old
    /// log (or nothing), still below the durable log start, so the next
    /// open restarts the same way (never two segments with a gap between).
    /// Readers are excluded (open, or the truncation lock held).
    pub(super) fn restart_at(&self, writer: &mut Writer, offset: u64) -> Result<()> {
        self.counters.changed();
        let old = self.snapshot();
        // ORDER: the synced extent first comes below every segment that
        // may be active after a crash in here.
        let lowest = old.keys().next().map_or(offset, |&b| b.min(offset));
        self.lower_extent(writer, LogPoint { segment: lowest, position: 0, offset: lowest })?;
        for s in old.values().filter(|s| s.base_offset() != offset) {
            s.delete(&*self.fs)?;
        }
        let segment = Arc::new(LogSegment::create(&*self.fs, &self.dir, offset, &self.segment_config)?);
        writer.indexing = segment.opened_indexing();
        let mut map = SegmentMap::new();
        map.insert(offset, segment);
        self.segments.replace(writer, map);
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        self.segments.publish_end(writer, offset);
        self.set_recovery_point(writer, LogPoint { segment: offset, position: 0, offset }, SyncMode::Now)
    }
}
