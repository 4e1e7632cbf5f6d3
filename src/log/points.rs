//! The log's durable points and the calls that move them.
//!
//! - The **recovery point** (`checkpoint.rs`): log bytes *and* index
//!   entries below it are durable, so recovery scans only after it. Moved by
//!   roll, truncation, `flush()` and close.
//! - The **synced extent** (`extent.rs`): log bytes below it are durable,
//!   so recovery refuses damage there instead of cutting it. Moved by the
//!   same calls, and by group commit (`Durability::Always` appends and
//!   `sync()`) once `synced_extent_interval_bytes` more bytes were synced:
//!   one extra small fsync per interval, not per group.
//!
//! Both are written only after the bytes they cover were fsynced. A
//! truncation first lowers the extent below what it cuts, and counts
//! itself, so that a flush or group fsync that read its point before the
//! truncation writes neither point afterwards.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Result;
use crate::segment::{LogSegment, Recovery, SegmentPoint, TimeEntry};

use super::checkpoint::LogPoint;
use super::durability::Syncer;
use super::extent::{ExtentFile, Loaded};
use super::partition::{PartitionLog, Writer};
use super::sink::CheckpointSink;

/// How the log's appends become durable and what says so after a crash:
/// group commit and poisoning (`Syncer`, `durability.rs`) and the
/// checkpoints (Kafka's `recoveryPoint`, its checkpoint files and
/// `LogDirFailureChannel`). Only this file reaches their fields.
#[derive(Debug)]
pub(super) struct DurablePoints {
    syncer: Syncer,
    /// Lock order: `writer`, then this.
    checkpoints: Mutex<Checkpoints>,
}

/// The recovery point and the synced extent.
#[derive(Debug)]
struct Checkpoints {
    /// The last recovery point written.
    recovery_point: Option<LogPoint>,
    /// The synced-extent file and the last extent written to it.
    extent: ExtentFile,
    /// Truncations so far.
    truncations: u64,
    /// Where the recovery point, log start, cleaner offset and high
    /// watermark are kept (see `sink.rs`).
    sink: CheckpointSink,
    /// Whether they were read from a partition's own files that a store's
    /// table now replaces (removed once the table is persisted).
    legacy: bool,
}

impl DurablePoints {
    /// The points an open loaded, with every offset below `synced` known
    /// durable: the log end after a clean close, nothing after an unclean
    /// stop (the recovered bytes may sit only in the page cache).
    pub(super) fn new(
        recovery_point: Option<LogPoint>,
        extent: ExtentFile,
        sink: CheckpointSink,
        legacy: bool,
        synced: u64,
    ) -> DurablePoints {
        DurablePoints {
            syncer: Syncer::new(synced),
            checkpoints: Mutex::new(Checkpoints { recovery_point, extent, truncations: 0, sink, legacy }),
        }
    }

    /// Group commit and poisoning.
    pub(super) fn syncer(&self) -> &Syncer {
        &self.syncer
    }

    /// Where the checkpoints are kept.
    pub(super) fn sink(&self) -> CheckpointSink {
        self.checkpoints.lock().sink.clone()
    }

    /// Whether the checkpoints are a row that a store writes.
    pub(super) fn in_stores_table(&self) -> bool {
        self.checkpoints.lock().sink.is_stores_row()
    }

    /// Truncations so far (the cleaner refuses to swap across one).
    pub(super) fn truncations(&self) -> u64 {
        self.checkpoints.lock().truncations
    }
}

/// Whether a point (and what it is written with) is fsynced as it is
/// written, or left to one `sync_all` of the caller: a store's close writes
/// every partition's seal and points `Deferred`, then syncs the file system
/// once before anything relies on them (the clean-shutdown markers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncMode {
    Now,
    Deferred,
}

/// The point after the last batch of `segment`.
pub(crate) fn end_point(segment: &LogSegment) -> LogPoint {
    LogPoint { segment: segment.base_offset(), position: segment.size_bytes(), offset: segment.next_offset() }
}

/// What recovery (and `verify`) may assume about segment `i` of `bases`:
/// a sealed one was fsynced whole up to the next one's base offset; the
/// active one too after a clean close (up to the synced extent's offset,
/// which close wrote); after an unclean stop, see [`crash_recovery`].
pub(crate) fn segment_recovery(
    bases: &[u64],
    i: usize,
    clean: bool,
    recovery_point: Option<LogPoint>,
    synced: Loaded,
) -> Recovery {
    let base = bases[i];
    match bases.get(i + 1) {
        Some(&next_base) => Recovery::Durable { end_offset: Some(next_base) },
        None if clean => Recovery::Durable {
            end_offset: match synced {
                Loaded::Valid(e) if e.segment == base => Some(e.offset),
                _ => None,
            },
        },
        None => crash_recovery(base, recovery_point, synced),
    }
}

/// What recovery of the active segment `base` may assume after an unclean
/// stop: the recovery point if it is in this segment, and how far the
/// segment is known fsynced. An extent in an older segment vouches for
/// nothing here (a roll came after it). One in a later segment vouches for
/// bytes that are gone (an extent is lowered before any cut), so all of
/// this segment and more is vouched for, and recovery refuses at its end.
/// Without the file (a log older than it), the recovery point is what is
/// known fsynced; with a damaged file, nothing is known.
pub(crate) fn crash_recovery(base: u64, recovery_point: Option<LogPoint>, synced: Loaded) -> Recovery {
    let point = |p: LogPoint| SegmentPoint { position: p.position, offset: p.offset };
    let recovery_point = recovery_point.filter(|p| p.segment == base).map(point);
    if crate::mutation::on(crate::mutation::Mutation::CutAtFirstBadBatch) {
        return Recovery::Crash {
            recovery_point,
            synced: Some(recovery_point.unwrap_or(SegmentPoint { position: 0, offset: base })),
        };
    }
    let nothing = SegmentPoint { position: 0, offset: base };
    let synced = match synced {
        Loaded::Valid(e) if e.segment == base => Some(point(e)),
        Loaded::Valid(e) if e.segment < base => Some(nothing),
        Loaded::Valid(e) => Some(SegmentPoint { position: u64::MAX, offset: e.offset }),
        Loaded::Missing => Some(recovery_point.unwrap_or(nothing)),
        Loaded::Damaged => None,
    };
    Recovery::Crash { recovery_point, synced }
}

impl PartitionLog {
    /// Makes every batch appended so far durable, whatever the policy: one
    /// group fsync of the active segment's log file (shared with concurrent
    /// callers; sealed segments were fsynced when they rolled), as an
    /// append under `Durability::Always` does. Unlike [`PartitionLog::flush`]
    /// it neither syncs the index nor moves the recovery point, so it
    /// usually costs one fsync; it moves the synced extent as group commit
    /// does (every `synced_extent_interval_bytes`), and a crash later
    /// rescans more of the active segment.
    ///
    /// # Errors
    /// [`crate::Error::Closed`] once the log is closed (its close made
    /// everything durable); [`crate::Error::Poisoned`] (this failure
    /// poisons too); [`crate::Error::Io`].
    pub fn sync(&self) -> Result<()> {
        self.points.syncer.check_open(&self.dir)?;
        self.sync_to(self.log_end_offset())
    }

    /// Makes every batch appended so far durable, whatever the policy, and
    /// moves the recovery point and the synced extent up to it: one group
    /// fsync of the active segment (sealed segments were fsynced when they
    /// rolled), an fsync of its index, and both checkpoints, so recovery
    /// after a crash starts scanning there and refuses damage below it.
    ///
    /// # Errors
    /// [`crate::Error::Closed`] once the log is closed (its close made
    /// everything durable); [`crate::Error::Poisoned`] (this failure
    /// poisons too); [`crate::Error::Io`].
    pub fn flush(&self) -> Result<()> {
        self.points.syncer.check_open(&self.dir)?;
        self.flush_points()
    }

    /// [`PartitionLog::flush`] past the closed check: an append's
    /// durability step under the interval policy.
    pub(super) fn flush_points(&self) -> Result<()> {
        self.points.syncer.check(&self.dir)?;
        self.counters.flushing();
        // Snapshot what this flush will cover, then fsync it, then record it.
        let (active, point, truncations, covering) = self.point_now();
        self.sync_to(point.offset)?;
        // The index entries below the point become durable with it, with
        // the time entry covering them while `active` is still the active
        // segment (a roll in between sealed it with its own).
        let covering = covering.filter(|_| Arc::ptr_eq(&self.active(), &active));
        self.counters.fsync(|| active.sync(covering)).map_err(|e| self.write_failed(e))?;
        let mut c = self.points.checkpoints.lock();
        if c.truncations != truncations {
            return Ok(());
        }
        if c.recovery_point.is_none_or(|last| last < point) {
            c.sink.recovery_point(&*self.fs, &self.dir, point, false).map_err(|e| self.write_failed(e))?;
            c.recovery_point = Some(point);
        }
        if point > c.extent.last() {
            c.extent.write(point).map_err(|e| self.write_failed(e))?;
        }
        Ok(())
    }

    /// The active segment, the point after its last batch (consistent: no
    /// append is half published under the writer lock), the truncation
    /// count, and the time-index entry covering the segment to that point.
    fn point_now(&self) -> (Arc<LogSegment>, LogPoint, u64, Option<TimeEntry>) {
        let writer = self.writer.lock();
        let active = self.active();
        let point = end_point(&active);
        (active, point, self.points.checkpoints.lock().truncations, writer.indexing.time_entry())
    }

    /// What a group fsync starting now covers, without the writer lock
    /// (producers hold it to append; a group fsync must not queue behind
    /// them). The log end offset is read first: the batch ending there is
    /// then published in its segment, so the size read after it covers
    /// it. The offset recorded may be below the one the size ends at (a
    /// later batch published in between), never above. A roll in between
    /// fsynced the batches below the new segment.
    fn synced_point_now(&self) -> (std::sync::Arc<LogSegment>, LogPoint, u64) {
        let truncations = self.points.checkpoints.lock().truncations;
        let end = self.log_end_offset();
        let active = self.active();
        let offset = end.clamp(active.base_offset(), active.next_offset());
        let point = LogPoint { segment: active.base_offset(), position: active.size_bytes(), offset };
        (active, point, truncations)
    }

    /// Group commit: returns once offsets below `target` (or the log end,
    /// if a truncation cut below it) are durable.
    pub(super) fn sync_to(&self, target: u64) -> Result<()> {
        self.group_sync(target, None)
    }

    /// An append's group commit (`Durability::Always`): as
    /// [`PartitionLog::sync_to`], an fsync it starts first gathering the
    /// appends of the producers the last one released (see `durability.rs`).
    pub(super) fn sync_appended(&self, target: u64) -> Result<()> {
        self.group_sync(target, Some(std::time::Duration::from_micros(self.config.commit_delay_us)))
    }

    fn group_sync(&self, target: u64, gather: Option<std::time::Duration>) -> Result<()> {
        let flush = || {
            let (active, point, truncations) = self.synced_point_now();
            // A roll since then fsynced `active` as it sealed it.
            self.counters.fsync(|| active.sync_log())?;
            let mut c = self.points.checkpoints.lock();
            if c.truncations != truncations {
                // A truncation cut below `point`: this fsync vouches for
                // nothing more (the caller's next round syncs again).
                return Ok(0);
            }
            let last = c.extent.last();
            let lag = if point.segment == last.segment {
                point.position.saturating_sub(last.position)
            } else {
                point.position
            };
            if point > last && lag >= self.config.synced_extent_interval_bytes {
                // ORDER: after the fsync of the bytes it covers, before the
                // appends waiting on this fsync are acknowledged.
                c.extent.write(point)?;
            }
            // Every offset below it is in bytes this fsync (or a roll's)
            // covered.
            Ok(point.offset)
        };
        // What it waits for: `target`, or the log end if a truncation cut
        // below it (asked at each pass; waiting for offsets that are gone
        // would fsync until later appends passed them).
        let target = || target.min(self.log_end_offset());
        let synced = match gather {
            Some(max_delay) => self.points.syncer.sync_appended(&self.dir, target, max_delay, flush),
            None => self.points.syncer.sync_to(&self.dir, target, flush),
        };
        // Durable-only readers wait for this, not for appends.
        self.notify_appended();
        synced
    }

    /// Records `point` as the recovery point, and raises the synced extent
    /// to it. Writer only (roll, truncation, close, restart: the bytes it
    /// covers are already durable): `writer` is the proof. A point below
    /// the last one (a truncation, a restart) is durable before this
    /// returns, whatever the sink (see `sink.rs`).
    pub(super) fn set_recovery_point(&self, writer: &Writer, point: LogPoint, mode: SyncMode) -> Result<()> {
        let mut c = self.points.checkpoints.lock();
        let lowered = c.recovery_point.is_some_and(|last| point < last);
        c.sink.recovery_point(&*self.fs, &self.dir, point, lowered)?;
        c.recovery_point = Some(point);
        drop(c);
        self.raise_extent(writer, point, mode)
    }

    /// Raises the synced extent to `point` if it is below, its bytes being
    /// durable (or, `Deferred`, made durable with it). Writer only.
    pub(super) fn raise_extent(&self, _writer: &Writer, point: LogPoint, mode: SyncMode) -> Result<()> {
        let mut c = self.points.checkpoints.lock();
        if point > c.extent.last() {
            c.extent.write_as(point, mode)?;
        }
        Ok(())
    }

    /// Before a truncation cuts bytes: counts it, and lowers the synced
    /// extent durably to `to` (at or below the first byte cut) if it is
    /// above. Writer only.
    ///
    /// ORDER: lowered before the cut, or a crash after the cut would leave
    /// an extent vouching for bytes that are gone, and recovery would
    /// refuse the log.
    pub(super) fn lower_extent(&self, _writer: &Writer, to: LogPoint) -> Result<()> {
        let mut c = self.points.checkpoints.lock();
        c.truncations += 1;
        if to < c.extent.last() {
            c.extent.write(to)?;
        }
        Ok(())
    }

    /// Removes the partition's own checkpoint files once a store's table
    /// holds what they held (the store persisted it).
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    pub(crate) fn remove_legacy_checkpoints(&self) -> Result<()> {
        let mut c = self.points.checkpoints.lock();
        if std::mem::take(&mut c.legacy) {
            CheckpointSink::remove_legacy(&*self.fs, &self.dir)?;
        }
        Ok(())
    }
}
