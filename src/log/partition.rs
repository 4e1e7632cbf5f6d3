//! One partition's log: the struct, its one write gate, reads and
//! accessors. Opening and recovery are in `open.rs`, appends and rolls in
//! `append.rs`, truncation in `truncate.rs`, flush points in `points.rs`,
//! close in `close.rs` (Kafka's `LocalLog` / `LogLoader` / `UnifiedLog`
//! seams).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use crate::clock::SharedClock;
use crate::config::{LogConfig, SegmentConfig};
use crate::error::{Error, Result};
use crate::format::FetchedRecords;
use crate::io::{FileLock, SharedFs};
use crate::segment::{Indexing, LogSegment};

use super::epochs::EpochCache;
use super::notify::Notifier;
use super::points::DurablePoints;
use super::producers::ProducerStates;
use super::segments::Segments;
use super::types::{ReadBound, RecoveryReport};
use super::wait::WaitForOffset;

/// The log of one partition, safe to share between threads (`Arc`).
///
/// One writer at a time appends, rolls or truncates (a mutex serializes
/// them, and holds everything only the writer changes); readers never take
/// that mutex. A reader snapshots the segment list, reads bytes below the
/// published size of a segment with positional reads, never past the log
/// end offset it loaded, and so never waits for an append nor sees a
/// partial or unfinished one. Only `truncate_to` excludes readers, while
/// it cuts bytes.
///
/// One handle per directory: the log holds the directory's lock
/// (`.lock`) while it lives, and a second open fails with
/// [`crate::OpenError::LogLocked`].
///
/// # Examples
///
/// ```
/// use annals::{LogConfig, PartitionLog, ReadBound, Record};
/// let dir = tempfile::tempdir()?;
/// let log = PartitionLog::open(dir.path(), LogConfig::default())?;
/// let info = log.append(&[Record::new("a"), Record::with_key("k", "b")])?;
/// assert_eq!((info.first_offset, info.last_offset), (0, 1));
/// let fetched = log.read(1, 1 << 20, ReadBound::LogEnd)?;
/// let records = fetched.to_records();
/// assert_eq!(records[0].value.as_deref(), Some(&b"b"[..]));
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PartitionLog {
    pub(super) fs: SharedFs,
    pub(super) clock: SharedClock,
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// What its segments need of `config`.
    pub(super) segment_config: SegmentConfig,
    /// Everything only the writer touches; reached through
    /// [`PartitionLog::writable`].
    pub(super) writer: Mutex<Writer>,
    /// Appends queued while another writes (see `combine.rs`).
    pub(super) combiner: super::combine::Combiner,
    /// The segments, the log start and end offsets (see `segments.rs`).
    pub(super) segments: Segments,
    pub(super) notifier: Notifier,
    /// One compaction at a time.
    pub(super) cleaner: Mutex<()>,
    /// The buffer producers' compressed batches inflate into to be
    /// validated (see `produce.rs`).
    pub(super) inflater: Mutex<crate::format::Inflater>,
    /// The first offset not yet cleaned (the cleaner checkpoint).
    pub(super) cleaned_to: AtomicU64,
    /// The earliest delete horizon the cleaner stamped in a sealed
    /// segment (`i64::MAX`: none; `cleaner::HORIZON_UNKNOWN` after open).
    pub(super) delete_horizon_ms: std::sync::atomic::AtomicI64,
    /// Group commit, poisoning, the recovery point and the synced extent
    /// (see `points.rs`).
    pub(super) points: DurablePoints,
    /// The high watermark, or `FOLLOWS_LOG_END` (see `watermark.rs`).
    pub(super) high_watermark: AtomicU64,
    pub(super) report: RecoveryReport,
    /// What it has done since it was opened (see `metrics.rs`).
    pub(super) counters: super::metrics::LogCounters,
    /// This handle's exclusive hold on `dir` (see `open.rs`): the premise
    /// of every mapping's `SAFETY:` comment. Dropped last.
    pub(super) _dir_lock: Arc<dyn FileLock>,
}

pub(super) use super::segments::SegmentMap;

/// State only the writer touches: behind the writer mutex, so holding the
/// guard is what "writer lock held" means.
#[derive(Debug)]
pub(super) struct Writer {
    /// Buffer for rewriting a batch during truncation.
    pub(super) scratch: Vec<u8>,
    /// Set by `close`; the gate refuses writes from then on.
    pub(super) closed: bool,
    /// Idempotent producers' recent batches (see `producers.rs`).
    pub(super) producers: ProducerStates,
    /// Leader epochs and their start offsets (KIP-101; see `epochs.rs`).
    pub(super) epochs: EpochCache,
    /// The active segment's writer half: where the indexing rule stands
    /// after its last batch (each append and seal takes it).
    pub(super) indexing: Indexing,
}

impl PartitionLog {
    /// The write gate: the writer's state, or why the log takes no writes
    /// ([`Error::Closed`], then [`Error::Poisoned`]). Every operation that
    /// changes the log (append, roll, truncation, retention, compaction's
    /// swap, the high watermark) passes through it.
    pub(super) fn writable(&self) -> Result<MutexGuard<'_, Writer>> {
        let writer = self.writer.lock();
        if writer.closed {
            return Err(Error::Closed);
        }
        self.points.syncer().check(&self.dir)?;
        Ok(writer)
    }

    /// Turns a failed write into the caller's error: a full disk changes
    /// nothing (bytes past the published size are never read and the next
    /// append overwrites them); any other I/O failure poisons the partition.
    /// Refusals (bad offsets, corruption found) change nothing either.
    pub(super) fn write_failed(&self, e: Error) -> Error {
        match e {
            // Acknowledged appends that never reached the file.
            e if crate::segment::is_buffered_write(&e) => self.poison(e),
            Error::Io { source, path, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                tracing::warn!(dir = %self.dir.display(), path = %path.display(), "disk full: the write was refused");
                Error::DiskFull { path }
            }
            e @ Error::Io { .. } => self.poison(e),
            e => e,
        }
    }

    /// For a failure that left memory and files out of step (whatever its
    /// kind): poisons the partition, so only a reopen (which reads the
    /// files) serves it again.
    pub(super) fn poison(&self, e: Error) -> Error {
        if self.points.syncer().poison(&e) {
            tracing::error!(dir = %self.dir.display(), error = %e, "partition poisoned: writes fail until it is reopened");
        }
        e
    }

    pub(super) fn snapshot(&self) -> Arc<SegmentMap> {
        self.segments.snapshot()
    }

    pub(super) fn active(&self) -> Arc<LogSegment> {
        self.segments.active()
    }

    /// Reads whole batches from the one holding `offset`, up to about
    /// `max_bytes` (at least one batch), each wholly below `bound`: the
    /// log end offset, the high watermark (what a consumer may see of a
    /// replicated partition) or the durable offset (what a power cut
    /// cannot take back; under `Durability::Always` a record is there once
    /// its append is acknowledged). Reading at the bound, or between it
    /// and the log end, returns nothing.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `[log_start_offset,
    /// log_end_offset]`; [`Error::Corruption`] for damaged bytes;
    /// [`Error::Io`] of writing the write buffer out (which poisons the log).
    pub fn read(&self, offset: u64, max_bytes: usize, bound: ReadBound) -> Result<FetchedRecords> {
        self.in_live_segments(|segments| self.read_in(segments, offset, max_bytes, bound))
    }

    /// The offset `bound` stands at now (never above the log end).
    pub fn bound_offset(&self, bound: ReadBound) -> u64 {
        match bound {
            ReadBound::LogEnd => self.log_end_offset(),
            ReadBound::HighWatermark => self.high_watermark(),
            ReadBound::Durable => self.durable_offset(),
        }
    }

    /// Runs `f` on the segments (under the truncation lock, read), again
    /// if it failed with an I/O error after a segment left the log: a
    /// segment deleted (retention) while `f` held it may fail to read when
    /// its file pool had closed its descriptor (see `io::FilePool`), and
    /// the segments now either hold what `f` looks for or put it out of
    /// range. Bounded: a retry only follows a deletion.
    pub(super) fn in_live_segments<R>(&self, f: impl Fn(&SegmentMap) -> Result<R>) -> Result<R> {
        let mut tries = 0;
        loop {
            let no_truncation = self.segments.readers();
            let segments = self.snapshot();
            match f(&segments) {
                Err(Error::Io { .. }) if tries < 3 && self.removed_since(&segments) => {
                    drop(no_truncation);
                    tries += 1;
                }
                // A read that wrote the buffer out and failed poisons, as an
                // append would.
                Err(e) if crate::segment::is_buffered_write(&e) => return Err(self.poison(e)),
                result => return result,
            }
        }
    }

    /// Whether a segment of `segments` is no longer in the log.
    fn removed_since(&self, segments: &SegmentMap) -> bool {
        let now = self.snapshot();
        segments.iter().any(|(base, s)| !now.get(base).is_some_and(|n| Arc::ptr_eq(n, s)))
    }

    /// [`PartitionLog::read`] in `segments`; the caller holds the
    /// truncation lock (read). The bound goes down to the segment read,
    /// which keeps only batches wholly below it.
    fn read_in(
        &self,
        segments: &SegmentMap,
        offset: u64,
        max_bytes: usize,
        bound: ReadBound,
    ) -> Result<FetchedRecords> {
        // ORDER: the bound before the log end, so it is never above it.
        let end = self.bound_offset(bound);
        let log_end = if bound == ReadBound::LogEnd { end } else { self.log_end_offset() };
        check_range(offset, self.log_start_offset(), log_end)?;
        if offset >= end {
            return Ok(FetchedRecords::default());
        }
        // Compaction can leave batches with no record at or after `offset`:
        // read on until one has some, so a read below the end returns a
        // record. Bounded by the log end.
        let mut at = offset;
        let mut empty = FetchedRecords::default();
        while at < end {
            let from = segments.range(..=at).next_back().into_iter().chain(segments.range(at + 1..));
            let mut next = None;
            for (_, segment) in from {
                if let Some(fetched) = segment.read(at, end, max_bytes, &self.segment_config)? {
                    next = Some(fetched);
                    break;
                }
            }
            let Some(fetched) = next else { break };
            if fetched.has_record_from(offset) {
                return Ok(fetched.starting_at(offset));
            }
            at = fetched.next_offset().unwrap_or(end);
            empty = fetched;
        }
        Ok(empty)
    }

    /// Blocks until `bound` is above `offset` (a read at `offset` with that
    /// bound can return a record once its batch is wholly below it) or
    /// `timeout` passes; returns whether it is.
    pub fn wait_for(&self, offset: u64, bound: ReadBound, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.notifier.wait_until(deadline, || self.bound_offset(bound) > offset)
    }

    /// A future resolving once `bound` is above `offset`. Woken by appends,
    /// fsyncs and high-watermark moves; runtime-agnostic.
    pub fn wait_for_async(log: &Arc<PartitionLog>, offset: u64, bound: ReadBound) -> WaitForOffset {
        WaitForOffset::new(log.clone(), offset, bound)
    }

    /// Wakes readers waiting for new records (after the writer lock is
    /// released).
    pub(super) fn notify_appended(&self) {
        self.notifier.notify();
    }

    /// Why the log refuses writes, once a failed fsync or write poisoned
    /// it ([`Error::Poisoned`], with the first failure's cause); `None`
    /// while it takes writes. Only a reopen clears it. No I/O.
    pub fn poisoned(&self) -> Option<Error> {
        self.points.syncer().check(&self.dir).err()
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// This partition's metrics since it was opened.
    pub fn metrics(&self) -> super::metrics::PartitionMetrics {
        super::metrics::PartitionMetrics {
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
            durable_offset: self.durable_offset(),
            size_bytes: self.size_bytes(),
            segments: self.segment_count(),
            ..self.counters.snapshot()
        }
    }

    /// Offsets below this are known durable (fsynced).
    pub fn durable_offset(&self) -> u64 {
        self.points.syncer().synced_offset()
    }

    /// The first offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.segments.log_start_offset()
    }

    /// The offset the next append gets.
    pub fn log_end_offset(&self) -> u64 {
        self.segments.log_end_offset()
    }

    /// Bytes of log data in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.snapshot().values().map(|s| s.size_bytes()).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.snapshot().len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.snapshot().keys().copied().collect()
    }

    /// What the last open found and repaired.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.report.clone()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

pub(super) fn check_range(offset: u64, log_start_offset: u64, log_end_offset: u64) -> Result<()> {
    if offset < log_start_offset || offset > log_end_offset {
        return Err(Error::OffsetOutOfRange { offset, log_start_offset, log_end_offset });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_batch, BatchMeta, Record};

    /// Issue 16, defect 7: an append publishes its batch in the segment
    /// before it moves the partition's log end; a read in between returned
    /// the batch, and a tailing reader's position overtook the log end.
    #[test]
    fn regression_a_read_returned_a_batch_the_log_end_did_not_cover() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        log.append(&[Record::new("a")]).unwrap();
        // What an append does between publishing and moving the log end.
        let mut batch = Vec::new();
        let limits = log.config.encode_limits();
        let header =
            encode_batch(&mut batch, 1, BatchMeta::default(), &[Record::new("b")], 0, limits).unwrap();
        let mut writer = log.writer.lock();
        log.active().append_batches(&mut writer.indexing, &batch, &[header], &log.segment_config, 0).unwrap();
        drop(writer);
        let offsets: Vec<u64> = log
            .read(0, 1 << 20, crate::log::ReadBound::LogEnd)
            .unwrap()
            .records()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [0], "nothing at or past the log end offset the read checked");
        assert!(
            log.read(1, 1 << 20, crate::log::ReadBound::LogEnd).unwrap().is_empty(),
            "a read at the log end returns nothing"
        );
    }

    /// What a broker asks before advertising a partition: a failed fsync
    /// shows as `poisoned()`, without an append to find it.
    #[test]
    fn a_failed_fsync_shows_as_poisoned() {
        let fs = crate::io::sim::SimFs::new();
        let log = PartitionLog::open_with(
            "/p",
            LogConfig::default(),
            crate::log::OpenOptions::default().with_fs(Arc::new(fs.clone())),
        )
        .unwrap();
        log.append(&[Record::new("a")]).unwrap();
        assert!(log.poisoned().is_none());
        fs.fail_at(fs.op_count() + 1, std::io::ErrorKind::Other, false);
        assert!(log.flush().is_err());
        assert!(matches!(log.poisoned(), Some(Error::Poisoned { .. })));
        assert!(log.read(0, 1 << 20, crate::log::ReadBound::LogEnd).is_ok(), "reads go on");
    }
}
