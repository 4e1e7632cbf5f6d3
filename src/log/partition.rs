//! One partition's log: an ordered set of segments with one active segment
//! at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Durability, LogConfig};
use crate::error::{Corruption, Error, Result};
use crate::format::batch::set_base_offset;
use crate::format::{encode_batch, BatchHeader, BatchMeta, FetchedRecords, Record};
use crate::io::{FileSystem, OpenMode, SharedFs, StdFileSystem};
use crate::segment::{parse_file_name, LogSegment, Quarantine, SegmentFile};

use super::checkpoint::{
    self, LogPoint, CLEANER_OFFSET_FILE, HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE,
};
use super::durability::Syncer;
use super::epochs::{EpochCache, ReadError as EpochReadError};
use super::extent::{self, ExtentFile, SYNCED_EXTENT_FILE};
use super::notify::Notifier;
use super::points::{end_point, segment_recovery, Checkpoints};
use super::producers::{Check, ProducerStates};
use super::wait::WaitForOffset;

thread_local! {
    /// Per-thread encode buffer: steady-state appends allocate nothing.
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An encode buffer grown past this is released after use.
const ENCODE_BUFFER_KEEP_BYTES: usize = 4 << 20;

/// Present in a partition directory only while the log is cleanly closed:
/// its presence lets the next open skip scanning the active segment.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean_shutdown";

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: u64,
    /// Offset of the last record appended.
    pub last_offset: u64,
    /// Largest timestamp in the batch.
    pub max_timestamp_ms: i64,
}

/// What opening the log found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The previous close was clean (nothing needed a full scan).
    pub clean_shutdown: bool,
    /// Segments opened.
    pub segments: usize,
    /// Bytes of log data validated while opening.
    pub bytes_scanned: u64,
    /// Bytes of torn tail cut off (past the synced extent: never bytes
    /// known fsynced).
    pub bytes_truncated: u64,
    /// The first offset cut with them, if any were.
    pub truncated_from_offset: Option<u64>,
    /// Segments whose index was rebuilt from the log.
    pub indexes_rebuilt: usize,
    /// Tails cut that were not plain torn writes (valid batches followed
    /// the damage, a whole batch failed its CRC, or bytes trailed a durable
    /// segment's last record): their bytes were moved to these quarantine
    /// files, not destroyed.
    pub quarantined: Vec<Quarantine>,
}

/// The log of one partition, safe to share between threads (`Arc`).
///
/// One writer at a time appends, rolls or truncates (a mutex serializes
/// them); readers never take that mutex. A reader snapshots the segment
/// list, reads bytes below the published size of a segment with positional
/// reads, and so never waits for an append nor sees a partial batch. Only
/// `truncate_to` excludes readers, while it cuts bytes.
///
/// # Examples
///
/// ```
/// use annals::{LogConfig, PartitionLog, Record};
/// let dir = tempfile::tempdir()?;
/// let log = PartitionLog::open(dir.path(), LogConfig::default())?;
/// let info = log.append(&[Record::new("a"), Record::with_key("k", "b")])?;
/// assert_eq!((info.first_offset, info.last_offset), (0, 1));
/// let fetched = log.read(1, 1 << 20)?;
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
    pub(super) writer: Mutex<Writer>,
    /// The checkpointed log start offset (raised by retention and
    /// `delete_records_before`, never lowered); the first segment's base
    /// offset bounds the log start from below too.
    pub(super) log_start_offset: AtomicU64,
    /// By base offset; never empty, the last one is active. Replaced whole
    /// (copy on write) by roll and truncation; readers clone the `Arc`.
    pub(super) segments: RwLock<Arc<SegmentMap>>,
    /// Published after a batch is fully written (`SeqCst`: see `notify`).
    log_end_offset: AtomicU64,
    /// Readers share it; `truncate_to` takes it alone, so no reader is inside
    /// a segment while its bytes are cut or rewritten.
    pub(super) truncation: RwLock<()>,
    notifier: Notifier,
    /// Group commit and poisoning.
    pub(super) syncer: Syncer,
    /// One compaction at a time.
    pub(super) cleaner: Mutex<()>,
    /// The first offset not yet cleaned (the cleaner checkpoint).
    pub(super) cleaned_to: AtomicU64,
    /// The recovery point and the synced extent (see `points.rs`).
    /// Lock order: `writer`, then this.
    pub(super) checkpoints: Mutex<Checkpoints>,
    /// The high watermark, or `FOLLOWS_LOG_END` (see `watermark.rs`).
    pub(super) high_watermark: AtomicU64,
    /// Idempotent producers' recent batches (see `producers.rs`). Changed
    /// only with the writer lock held. Lock order: `writer`, then this.
    pub(super) producers: Mutex<ProducerStates>,
    /// Leader epochs and their start offsets (KIP-101; see `epochs.rs`).
    /// Changed only with the writer lock held. Lock order: `writer`, then this.
    pub(super) epochs: Mutex<EpochCache>,
    report: RecoveryReport,
}

pub(super) type SegmentMap = BTreeMap<u64, Arc<LogSegment>>;

/// State only the writer touches.
#[derive(Debug)]
pub(super) struct Writer {
    /// Buffer for rewriting a batch during truncation.
    pub(super) scratch: Vec<u8>,
    pub(super) closed: bool,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir` on the real file system.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::Io`], or [`Error::Corruption`] when
    /// recovery finds damage it must not repair by truncation.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        Self::open_with(Arc::new(StdFileSystem), dir, config)
    }

    /// Opens the log in `dir` through `fs`.
    ///
    /// # Errors
    /// As [`PartitionLog::open`].
    pub fn open_with(fs: SharedFs, dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        Self::open_with_clock(fs, Arc::new(SystemClock), dir, config)
    }

    /// Opens the log in `dir` through `fs`, reading time from `clock`.
    ///
    /// # Errors
    /// As [`PartitionLog::open`].
    pub fn open_with_clock(
        fs: SharedFs,
        clock: SharedClock,
        dir: impl AsRef<Path>,
        config: LogConfig,
    ) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        crate::io::create_dir_all_durable(&*fs, &dir).map_err(Error::io("create log directory", &dir))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = fs.exists(&marker).map_err(Error::io("stat", &marker))?;
        // A compaction swap a crash interrupted is finished or undone first.
        crate::segment::clean::recover_swaps(&*fs, &dir)?;
        let bases = Self::list_segments(&*fs, &dir)?;
        let recovery_point = checkpoint::read(&*fs, &dir);
        let synced_extent = extent::read(&*fs, &dir)?;
        let mut report =
            RecoveryReport { clean_shutdown: clean, segments: bases.len(), ..Default::default() };
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            let recovery = segment_recovery(&bases, i, clean, recovery_point, synced_extent);
            let (segment, repair) = LogSegment::open(&*fs, &dir, base, &config, recovery, active)?;
            report.bytes_scanned += repair.bytes_scanned;
            report.bytes_truncated += repair.bytes_truncated;
            report.truncated_from_offset = report.truncated_from_offset.or(repair.truncated_from_offset);
            report.indexes_rebuilt += usize::from(repair.index_rebuilt);
            report.quarantined.extend(repair.quarantined);
            if let Some(&next_base) = bases.get(i + 1) {
                if segment.next_offset() != next_base {
                    let detail = Corruption::SegmentBoundary {
                        next_offset: segment.next_offset(),
                        next_base_offset: next_base,
                    };
                    return Err(Error::corruption(segment.log_path(), segment.size_bytes(), detail));
                }
            }
            segments.insert(base, Arc::new(segment));
        }
        // ORDER: the synced extent exists before a first segment does. When
        // it was missing or damaged it starts at what is known fsynced: all
        // of a cleanly closed log, else the recovery point.
        let fallback = match segments.values().next_back() {
            Some(active) if clean => end_point(active),
            Some(active) => recovery_point
                .filter(|p| p.segment == active.base_offset() && p.position <= active.size_bytes())
                .unwrap_or(LogPoint {
                    segment: active.base_offset(),
                    position: 0,
                    offset: active.base_offset(),
                }),
            None => LogPoint { segment: 0, position: 0, offset: 0 },
        };
        let extent_file = ExtentFile::open(&*fs, &dir, fallback)?;
        if segments.is_empty() {
            segments.insert(0, Arc::new(LogSegment::create(&*fs, &dir, 0, &config)?));
            fs.sync_dir(&dir).map_err(Error::io("sync directory", &dir))?;
        }
        if clean {
            // ORDER: the marker goes before any append, so a crash from here
            // on is seen as unclean.
            fs.remove_file(&marker).map_err(Error::io("remove clean-shutdown marker", &marker))?;
            fs.sync_dir(&dir).map_err(Error::io("sync directory", &dir))?;
        }
        let log_end_offset = segments.values().next_back().map_or(0, |s| s.next_offset());
        let high_watermark = checkpoint::read_high_watermark(&*fs, &dir)
            .map_or(super::watermark::FOLLOWS_LOG_END, |hw| hw.min(log_end_offset));
        let log_start_offset = checkpoint::read_log_start(&*fs, &dir);
        let epochs = load_epochs(&*fs, &dir, &segments, (log_start_offset, log_end_offset))?;
        let mut producers = load_producers(&*fs, &dir, &segments, log_end_offset)?;
        producers.expire(clock.now_ms(), config.producer_id_expiration_ms);
        let cleaned_to = checkpoint::read_cleaner_offset(&*fs, &dir);
        let log = PartitionLog {
            fs,
            clock,
            log_start_offset: AtomicU64::new(log_start_offset),
            dir,
            config,
            writer: Mutex::new(Writer { scratch: Vec::new(), closed: false }),
            segments: RwLock::new(Arc::new(segments)),
            log_end_offset: AtomicU64::new(log_end_offset),
            truncation: RwLock::new(()),
            notifier: Notifier::default(),
            // Nothing is known durable until the first flush (after an
            // unclean stop the recovered bytes may sit only in the page cache).
            syncer: Syncer::new(0),
            checkpoints: Mutex::new(Checkpoints { recovery_point, extent: extent_file, truncations: 0 }),
            cleaner: Mutex::new(()),
            cleaned_to: AtomicU64::new(cleaned_to),
            epochs: Mutex::new(epochs),
            producers: Mutex::new(producers),
            high_watermark: AtomicU64::new(high_watermark),
            report,
        };
        log.apply_log_start_at_open()?;
        Ok(log)
    }

    /// Base offsets of the segments in `dir`, sorted; removes index files
    /// whose log file is gone (an index is derived data). Any file the log
    /// does not write is an error: it is not ours to delete or ignore.
    fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
        let names = fs.list_dir(dir).map_err(Error::io("list log directory", dir))?;
        let checkpoints = [
            RECOVERY_POINT_FILE,
            LOG_START_OFFSET_FILE,
            CLEANER_OFFSET_FILE,
            super::LEADER_EPOCH_FILE,
            HIGH_WATERMARK_FILE,
            super::PRODUCER_SNAPSHOT_FILE,
            SYNCED_EXTENT_FILE,
        ];
        let temps: Vec<String> = checkpoints.iter().map(|c| format!("{c}.tmp")).collect();
        for tmp in temps.iter().filter(|t| names.contains(t)) {
            // An interrupted checkpoint write; the previous checkpoint stands.
            let path = dir.join(tmp);
            fs.remove_file(&path).map_err(Error::io("remove temp file", &path))?;
        }
        let ours = |n: &String| {
            parse_file_name(n).is_some()
                || *n == CLEAN_SHUTDOWN_FILE
                || checkpoints.contains(&n.as_str())
                || temps.contains(n)
        };
        if let Some(stray) = names.iter().find(|n| !ours(n)) {
            return Err(Error::UnexpectedFile { path: dir.join(stray) });
        }
        let parsed: Vec<(u64, SegmentFile)> = names.iter().filter_map(|n| parse_file_name(n)).collect();
        let mut logs: Vec<u64> = parsed.iter().filter(|p| p.1 == SegmentFile::Log).map(|p| p.0).collect();
        logs.sort_unstable();
        for &(base, kind) in &parsed {
            let has_log = logs.binary_search(&base).is_ok();
            match kind {
                SegmentFile::Index if !has_log => {
                    let path = dir.join(crate::segment::index_file_name(base));
                    fs.remove_file(&path).map_err(Error::io("remove orphan index", &path))?;
                }
                SegmentFile::TimeIndex if !has_log => {
                    let path = dir.join(crate::segment::time_index_file_name(base));
                    fs.remove_file(&path).map_err(Error::io("remove orphan time index", &path))?;
                }
                SegmentFile::Rewrite if !has_log => {
                    let path = dir.join(format!("{base:020}.rewrite"));
                    fs.remove_file(&path).map_err(Error::io("remove orphan rewrite", &path))?;
                }
                SegmentFile::Rewrite => {
                    crate::segment::finish_rewrite(fs, dir, base)?;
                }
                _ => {}
            }
        }
        Ok(logs)
    }

    /// Appends `records` as one batch; returns the offsets assigned.
    ///
    /// # Errors
    /// [`Error::EmptyBatch`], [`Error::RecordTooLarge`],
    /// [`Error::BatchTooLarge`], [`Error::InvalidTimestamp`] (nothing is
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
        // Encode outside the writer lock, at base offset 0: the base offset
        // sits outside the CRC precisely so it can be stamped afterwards.
        // Producers to one partition then serialize only on the write.
        ENCODE_BUFFER
            .with_borrow_mut(|buf| {
                buf.clear();
                let limits = self.config.encode_limits();
                let encoded = encode_batch(buf, 0, meta, records, self.clock.now_ms(), limits)?;
                let result = self.append_encoded(buf, encoded);
                if buf.capacity() > ENCODE_BUFFER_KEEP_BYTES {
                    *buf = Vec::new(); // do not pin a rare huge batch's memory per thread
                }
                result
            })
            .and_then(|info| self.make_durable(info))
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

    /// Turns a failed write into the caller's error: a full disk changes
    /// nothing (bytes past the published size are never read and the next
    /// append overwrites them); any other I/O failure poisons the partition.
    /// Refusals (bad offsets, corruption found) change nothing either.
    pub(super) fn write_failed(&self, e: Error) -> Error {
        match e {
            Error::Io { source, path, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                Error::DiskFull { path }
            }
            e @ Error::Io { .. } => {
                self.syncer.poison(&e);
                e
            }
            e => e,
        }
    }

    /// Stamps the base offset on a batch encoded at 0 and writes it.
    fn append_encoded(&self, batch: &mut [u8], encoded: BatchHeader) -> Result<AppendInfo> {
        let writer = self.writer.lock();
        if writer.closed {
            return Err(Error::Closed);
        }
        self.syncer.check(&self.dir)?;
        let base = self.log_end_offset();
        let end = base.checked_add(encoded.next_offset()).ok_or(Error::OffsetOutOfRange {
            offset: base,
            log_start_offset: self.log_start_offset(),
            log_end_offset: base,
        })?;
        set_base_offset(batch, base);
        let header = BatchHeader { base_offset: base, ..encoded };
        debug_assert_eq!(header.next_offset(), end);
        if header.producer_id >= 0 {
            if let Check::Duplicate(info) = self.producers.lock().check(&header)? {
                return Ok(info); // a retry: already in the log at these offsets
            }
        }
        let info = self.write_batch_locked(batch, &header)?;
        drop(writer);
        self.notify_appended();
        Ok(info)
    }

    /// Wakes readers waiting for new records (after the writer lock is
    /// released).
    pub(super) fn notify_appended(&self) {
        self.notifier.notify();
    }

    /// Writes one checked batch at the log end: notes its leader epoch
    /// (durably, before the batch, when it is a new one), rolls if needed,
    /// appends, publishes (the caller wakes waiters after releasing the
    /// writer lock). Writer lock held.
    pub(super) fn write_batch_locked(&self, batch: &[u8], header: &BatchHeader) -> Result<AppendInfo> {
        let (base, end) = (header.base_offset, header.next_offset());
        if header.leader_epoch >= 0 {
            let mut epochs = self.epochs.lock();
            if epochs.latest() != Some(header.leader_epoch) {
                let mut next = epochs.clone();
                if next.assign(header.leader_epoch, base)? {
                    // ORDER: the epoch's entry is durable before its first batch.
                    next.write(&*self.fs, &self.dir).map_err(|e| self.write_failed(e))?;
                    *epochs = next;
                }
            }
        }
        let now_ms = self.clock.now_ms();
        let mut active = self.active();
        if active.needs_roll(u64::from(header.batch_len), header.last_offset(), &self.config, now_ms) {
            active = self.roll_locked().map_err(|e| self.write_failed(e))?;
        }
        active.append(batch, header, &self.config, now_ms).map_err(|e| self.write_failed(e))?;
        self.log_end_offset.store(end, Ordering::SeqCst);
        if header.producer_id >= 0 {
            self.producers.lock().update(header);
        }
        Ok(AppendInfo { first_offset: base, last_offset: end - 1, max_timestamp_ms: header.max_timestamp_ms })
    }

    pub(super) fn snapshot(&self) -> Arc<SegmentMap> {
        self.segments.read().clone()
    }

    pub(super) fn active(&self) -> Arc<LogSegment> {
        self.segments.read().values().next_back().cloned().expect("a log always has a segment")
    }

    /// Seals the active segment and starts a new one at the log end offset.
    /// Does nothing when the active segment is empty.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Io`].
    pub fn roll(&self) -> Result<()> {
        let writer = self.writer.lock();
        if writer.closed {
            return Err(Error::Closed);
        }
        self.syncer.check(&self.dir)?;
        self.roll_locked().map(drop).map_err(|e| self.write_failed(e))
    }

    /// Roll with the writer lock held; returns the (new) active segment.
    pub(super) fn roll_locked(&self) -> Result<Arc<LogSegment>> {
        let active = self.active();
        if active.is_empty() {
            return Ok(active);
        }
        let base = self.log_end_offset();
        // ORDER: seal (trim index, fsync log and index), create the new
        // segment's files, fsync the directory. Sealed segments are durable,
        // so recovery after a crash scans only the active one.
        active.seal()?;
        let segment = Arc::new(LogSegment::create(&*self.fs, &self.dir, base, &self.config)?);
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        let mut map = (*self.snapshot()).clone();
        map.insert(base, segment.clone());
        *self.segments.write() = Arc::new(map);
        // Everything below the new segment is durable now.
        self.set_recovery_point(LogPoint { segment: base, position: 0, offset: base })?;
        // Recovery replays producer state only from here on.
        self.producers.lock().write(&*self.fs, &self.dir, base)?;
        Ok(segment)
    }

    /// Reads whole batches from the one holding `offset`, up to about
    /// `max_bytes` (at least one batch). Reading at the log end offset
    /// returns nothing.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `[log_start_offset,
    /// log_end_offset]`; [`Error::Corruption`] for damaged bytes.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<FetchedRecords> {
        let _no_truncation = self.truncation.read();
        let segments = self.snapshot();
        let end = self.log_end_offset();
        check_range(offset, self.log_start_offset(), end)?;
        if offset == end {
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
                if let Some(fetched) = segment.read(at, max_bytes, &self.config)? {
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

    /// Blocks until a record at `offset` can be read (the log end offset is
    /// above it) or `timeout` passes; returns whether it can.
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.notifier.wait_until(deadline, || self.log_end_offset() > offset)
    }

    /// A future resolving once a record at `offset` can be read. Woken by
    /// appends; runtime-agnostic.
    pub fn wait_for_async(log: &Arc<PartitionLog>, offset: u64) -> WaitForOffset {
        WaitForOffset::new(log.clone(), offset, false)
    }

    pub(super) fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Drops every record at or above `offset` (across segments); the log end
    /// offset becomes `offset`. Waits for in-flight reads to finish.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `[log_start_offset,
    /// log_end_offset]`; [`Error::Closed`]; [`Error::Io`].
    pub fn truncate_to(&self, offset: u64) -> Result<()> {
        let mut writer = self.writer.lock();
        if writer.closed {
            return Err(Error::Closed);
        }
        self.syncer.check(&self.dir)?;
        let _no_readers = self.truncation.write();
        self.truncate_locked(offset, &mut writer.scratch).map_err(|e| self.write_failed(e))
    }

    pub(super) fn truncate_locked(&self, offset: u64, scratch: &mut Vec<u8>) -> Result<()> {
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
        self.lower_extent(lowered)?;
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
            let segment = LogSegment::create(&*self.fs, &self.dir, offset, &self.config)?;
            map.insert(offset, Arc::new(segment));
        } else if let Some(active) = map.values().next_back() {
            active.truncate_to(&*self.fs, offset, scratch)?;
            active.activate(&self.config)?;
        }
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        let active = map.values().next_back().cloned().expect("a log always has a segment");
        // The cut is durable: the extent goes back up to the new end.
        self.raise_extent(end_point(&active))?;
        *self.segments.write() = Arc::new(map);
        self.log_end_offset.store(offset, Ordering::SeqCst);
        self.syncer.lower_synced_offset(offset);
        self.cleaned_to.fetch_min(offset, Ordering::SeqCst);
        // Producer state as of the new end: the snapshot (if it is not past
        // the cut) and the batches after it, replayed; then a snapshot here.
        {
            let mut producers = self.producers.lock();
            *producers = load_producers(&*self.fs, &self.dir, &self.snapshot(), offset)?;
            producers.expire(self.clock.now_ms(), self.config.producer_id_expiration_ms);
            producers.write(&*self.fs, &self.dir, offset)?;
        }
        // A set high watermark above the cut comes down to it.
        let _ = self.high_watermark.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |hw| {
            (hw != super::watermark::FOLLOWS_LOG_END && hw > offset).then_some(offset)
        });
        // Epochs that began at or past the cut are gone with it. (A crash
        // before this write is repaired at open, which drops entries at or
        // past the log end.)
        {
            let mut epochs = self.epochs.lock();
            if epochs.truncate_from_end(offset) {
                epochs.write(&*self.fs, &self.dir)?;
            }
        }
        // The cut was fsynced: the recovery point is the new end.
        self.set_recovery_point(end_point(&active))
    }

    pub(super) fn check_poisoned(&self) -> Result<()> {
        self.syncer.check(&self.dir)
    }

    /// Drops every segment and starts an empty one at `offset` (the log
    /// start moved past everything on disk). Writer lock held.
    ///
    /// ORDER: the old segments are deleted oldest first, then the new one
    /// is created: a crash in between leaves a contiguous suffix of the old
    /// log (or nothing), still below the durable log start, so the next
    /// open restarts the same way (never two segments with a gap between).
    /// Readers are excluded (open, or the truncation lock held).
    pub(super) fn restart_at(&self, offset: u64) -> Result<()> {
        let old = self.snapshot();
        // ORDER: the synced extent first comes below every segment that
        // may be active after a crash in here.
        let lowest = old.keys().next().map_or(offset, |&b| b.min(offset));
        self.lower_extent(LogPoint { segment: lowest, position: 0, offset: lowest })?;
        for s in old.values().filter(|s| s.base_offset() != offset) {
            s.delete(&*self.fs)?;
        }
        let segment = Arc::new(LogSegment::create(&*self.fs, &self.dir, offset, &self.config)?);
        let mut map = SegmentMap::new();
        map.insert(offset, segment);
        *self.segments.write() = Arc::new(map);
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        self.log_end_offset.store(offset, Ordering::SeqCst);
        self.set_recovery_point(LogPoint { segment: offset, position: 0, offset })
    }

    /// Offsets below this are known durable (fsynced).
    pub fn durable_offset(&self) -> u64 {
        self.syncer.synced_offset()
    }

    /// The first offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        let first_base = self.snapshot().keys().next().copied().unwrap_or(0);
        first_base.max(self.log_start_offset.load(Ordering::SeqCst)).min(self.log_end_offset())
    }

    /// The offset the next append gets.
    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset.load(Ordering::SeqCst)
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

    /// Closes cleanly: seals the active segment's index, syncs, and leaves
    /// the clean-shutdown marker so the next open skips the full scan. Later
    /// appends fail with [`Error::Closed`]; reads still work. Closing twice
    /// does nothing.
    ///
    /// # Errors
    /// [`Error::Io`]; the log is then left to be recovered at the next open.
    pub fn close(&self) -> Result<()> {
        let mut writer = self.writer.lock();
        if writer.closed {
            return Ok(());
        }
        writer.closed = true;
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        // A poisoned log must not claim a clean shutdown: its next open
        // has to run recovery.
        self.syncer.check(&self.dir)?;
        // ORDER: data and index durable, recovery point, the marker, then the
        // directory.
        let active = self.active();
        active.seal()?;
        self.set_recovery_point(end_point(&active))?;
        self.checkpoint_high_watermark()?;
        self.producers.lock().write(&*self.fs, &self.dir, active.next_offset())?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let file = self
            .fs
            .open(&marker, OpenMode::Create)
            .map_err(Error::io("write clean-shutdown marker", &marker))?;
        file.sync_data().map_err(Error::io("sync clean-shutdown marker", &marker))?;
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))
    }
}

fn check_range(offset: u64, log_start_offset: u64, log_end_offset: u64) -> Result<()> {
    if offset < log_start_offset || offset > log_end_offset {
        return Err(Error::OffsetOutOfRange { offset, log_start_offset, log_end_offset });
    }
    Ok(())
}

/// Producer state as of `log_end`: the snapshot if it is not past it, then
/// the producer fields of every batch after the snapshot, replayed (all of
/// them without a usable snapshot).
fn load_producers(
    fs: &dyn FileSystem,
    dir: &Path,
    segments: &SegmentMap,
    log_end: u64,
) -> Result<ProducerStates> {
    let (from, mut states) = match ProducerStates::read(fs, dir) {
        Some((offset, states)) if offset <= log_end => (offset, states),
        _ => (0, ProducerStates::default()),
    };
    for segment in segments.values().filter(|s| s.next_offset() > from && s.base_offset() < log_end) {
        segment.for_each_batch(|h, _| {
            if h.base_offset >= from && h.base_offset < log_end {
                states.update(h);
            }
            Ok(())
        })?;
    }
    Ok(states)
}

/// The leader-epoch cache at open: the checkpoint, rebuilt from the
/// batches' epochs if it is damaged, without entries at or past the log end
/// (an epoch whose first batch a crash lost), starting at the log start.
fn load_epochs(
    fs: &dyn FileSystem,
    dir: &Path,
    segments: &SegmentMap,
    (log_start, log_end): (u64, u64),
) -> Result<EpochCache> {
    let (mut cache, mut dirty) = match EpochCache::read(fs, dir) {
        Ok(cache) => (cache, false),
        Err(EpochReadError::Missing) => (EpochCache::default(), false),
        Err(EpochReadError::Damaged) => {
            let mut batches = Vec::new();
            for segment in segments.values() {
                segment.for_each_batch(|h, _| {
                    if batches.last().is_none_or(|&(e, _)| e != h.leader_epoch) {
                        batches.push((h.leader_epoch, h.base_offset));
                    }
                    Ok(())
                })?;
            }
            (EpochCache::rebuild(batches), true)
        }
    };
    dirty |= cache.truncate_from_end(log_end);
    dirty |= cache.truncate_from_start(log_start);
    // A log without records holds no epoch (a crash inside
    // `truncate_fully_and_start_at` may leave one behind).
    if log_start >= log_end && !cache.entries().is_empty() {
        cache = EpochCache::default();
        dirty = true;
    }
    if dirty {
        cache.write(fs, dir)?;
    }
    Ok(cache)
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        if !self.writer.get_mut().closed {
            // Best effort; on failure the next open recovers by scanning.
            let _ = self.shutdown();
        }
    }
}
