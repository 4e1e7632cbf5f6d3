//! Opening a partition log (Kafka's `LogLoader`): the directory lock,
//! recovery of each segment, the checkpoints, producer and epoch state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::{SharedClock, SystemClock};
use crate::config::LogConfig;
use crate::error::{Corruption, Error, OpenError, Result};
use crate::io::{FileHandle, FileLock, FileSystem, SharedFs, StdFileSystem};
use crate::segment::{parse_file_name, LogSegment, SegmentFile, SegmentRole};

use super::checkpoint::{
    LogPoint, CLEANER_OFFSET_FILE, HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE,
};
use super::epochs::{EpochCache, ReadError as EpochReadError};
use super::extent::{self, ExtentFile, Loaded, SYNCED_EXTENT_FILE};
use super::notify::Notifier;
use super::partition::{PartitionLog, SegmentMap, Writer};
use super::points::{end_point, segment_recovery, DurablePoints};
use super::producers::ProducerStates;
use super::segments::Segments;
use super::sink::CheckpointSink;
use super::table::CheckpointTable;
use super::types::RecoveryReport;

/// Empty only while the log is cleanly closed: an empty marker lets the
/// next open skip scanning the active segment. An open log (or one that
/// stopped uncleanly) has it missing or one byte long: open extends it to
/// one byte (a hole) and a clean close truncates it again, so neither
/// creates an inode nor allocates a block (creating 10,000 inodes per close
/// was most of a store's close).
pub const CLEAN_SHUTDOWN_FILE: &str = "clean_shutdown";

/// Whether `dir`'s log was closed cleanly (its marker exists and is empty).
pub(crate) fn closed_cleanly(fs: &dyn FileSystem, dir: &Path) -> Result<bool> {
    Ok(open_marker(fs, dir)?.is_some_and(|(_, clean)| clean))
}

/// `dir`'s clean-shutdown marker, if it exists, and whether it says the
/// log was closed cleanly (it is empty).
fn open_marker(fs: &dyn FileSystem, dir: &Path) -> Result<Option<(Arc<dyn FileHandle>, bool)>> {
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    match fs.open(&marker, crate::io::OpenMode::Existing) {
        Ok(file) => {
            let clean = file.size().map_err(Error::io("stat", &marker))? == 0;
            Ok(Some((file, clean)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open clean-shutdown marker", &marker)(e)),
    }
}

/// Held (flock) by the one handle that has a partition directory open.
pub const LOG_LOCK_FILE: &str = ".lock";

/// Takes `dir`'s exclusive lock: one [`PartitionLog`] (or repair) per
/// partition directory, in this process or any other. A partition directory
/// of a store (its parent holds `topics/` and the store's `.lock`) is also
/// covered by the store's lock, which the store's own partitions share
/// instead of holding a descriptor each (see `store::layout`): it is taken
/// too, so an open store and a lone open of one of its partitions exclude
/// each other. Returns the lock, and the store's data directory when
/// `dir` is one of its partitions.
pub(crate) fn lock_log_dir(fs: &dyn FileSystem, dir: &Path) -> Result<(Arc<dyn FileLock>, Option<PathBuf>)> {
    let own = lock_own_dir(fs, dir)?;
    let Some(store) = dir.parent().filter(|p| is_store_dir(fs, p)) else { return Ok((Arc::from(own), None)) };
    let store_lock = store.join(LOG_LOCK_FILE);
    match fs.lock_exclusive(&store_lock) {
        Ok(lock) => Ok((Arc::new(Locks { _held: [own, lock] }), Some(store.to_path_buf()))),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(Error::Open(OpenError::LogLocked { dir: dir.to_path_buf() }))
        }
        Err(e) => Err(Error::io("lock data directory", &store_lock)(e)),
    }
}

/// Takes `dir`'s own lock only (its store's lock is the caller's).
pub(crate) fn lock_own_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn FileLock>> {
    let path = dir.join(LOG_LOCK_FILE);
    match fs.lock_exclusive(&path) {
        Ok(lock) => Ok(lock),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(Error::Open(OpenError::LogLocked { dir: dir.to_path_buf() }))
        }
        Err(e) => Err(Error::io("lock log directory", &path)(e)),
    }
}

/// The directory of topic metadata that makes a directory a store's (the
/// store layer names its layout; the log layer only has to recognise it).
pub(crate) const STORE_TOPICS_DIR: &str = "topics";

/// Whether `dir` is a store's data directory.
fn is_store_dir(fs: &dyn FileSystem, dir: &Path) -> bool {
    fs.exists(&dir.join(STORE_TOPICS_DIR)).unwrap_or(false)
        && fs.exists(&dir.join(LOG_LOCK_FILE)).unwrap_or(false)
}

/// Several locks held as one.
#[derive(Debug)]
struct Locks {
    _held: [Box<dyn FileLock>; 2],
}

impl FileLock for Locks {}

/// What a log or a store opens through: the file system and the clock.
/// The default is the real file system and the system clock.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use annals::{LogConfig, ManualClock, OpenOptions, PartitionLog};
/// let dir = tempfile::tempdir()?;
/// let clock = Arc::new(ManualClock::new(1_000));
/// let log = PartitionLog::open_with(dir.path(), LogConfig::default(), OpenOptions::default().with_clock(clock))?;
/// assert_eq!(log.log_end_offset(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    fs: SharedFs,
    clock: SharedClock,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { fs: Arc::new(StdFileSystem), clock: Arc::new(SystemClock) }
    }
}

impl OpenOptions {
    /// Through `fs` (a file pool, or a simulated file system in tests).
    pub fn with_fs(self, fs: SharedFs) -> Self {
        OpenOptions { fs, ..self }
    }

    /// Reading time from `clock` (append timestamps, time-based roll,
    /// retention).
    pub fn with_clock(self, clock: SharedClock) -> Self {
        OpenOptions { clock, ..self }
    }

    /// The file system.
    pub fn fs(&self) -> &SharedFs {
        &self.fs
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir` on the real file system.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::Io`], or [`Error::Corruption`] when
    /// recovery finds damage it must not repair by truncation.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        Self::open_with(dir, config, OpenOptions::default())
    }

    /// Opens the log in `dir` through the options' file system, reading
    /// time from their clock.
    ///
    /// # Errors
    /// As [`PartitionLog::open`].
    pub fn open_with(dir: impl AsRef<Path>, config: LogConfig, options: OpenOptions) -> Result<Self> {
        let OpenOptions { fs, clock } = options;
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        crate::io::create_dir_all_durable(&*fs, &dir).map_err(Error::io("create log directory", &dir))?;
        let (dir_lock, store) = lock_log_dir(&*fs, &dir)?;
        // A store's partition opened alone keeps its row of the store's
        // table, written through (no store writes it meanwhile, and the
        // store reads it when it opens next); any other log its own files.
        let sink = match store {
            Some(store) => {
                CheckpointSink::table_alone(Arc::new(CheckpointTable::open(fs.clone(), &store)), &dir)
            }
            None => CheckpointSink::Own,
        };
        let log = Self::open_locked(fs, clock, dir, config, (dir_lock, sink.clone()), true)?;
        // ORDER: the row that replaces a store partition's old files is
        // durable before they go.
        if sink.persist_alone()? {
            log.remove_legacy_checkpoints()?;
        }
        Ok(log)
    }

    /// Opens (creating if needed) the log in `dir` under a lock the caller
    /// took for it (a store's partitions share the store's), keeping its
    /// checkpoints in `table`.
    ///
    /// # Errors
    /// As [`PartitionLog::open`].
    pub(crate) fn open_claimed(
        fs: SharedFs,
        clock: SharedClock,
        dir: PathBuf,
        config: LogConfig,
        lock: Arc<dyn FileLock>,
        table: Arc<CheckpointTable>,
    ) -> Result<Self> {
        config.validate()?;
        crate::io::create_dir_all_durable(&*fs, &dir).map_err(Error::io("create log directory", &dir))?;
        let sink = CheckpointSink::table(table, &dir);
        // The store syncs every marker's removal at once (`Store::open`).
        Self::open_locked(fs, clock, dir, config, (lock, sink), false)
    }

    /// Opens the log in `dir`, whose lock the caller holds, with its
    /// checkpoints in `sink`. Without
    /// `sync_marker`, the caller makes the clean-shutdown marker's removal
    /// durable before anything is appended (one `sync_all` for a store).
    pub(super) fn open_locked(
        fs: SharedFs,
        clock: SharedClock,
        dir: PathBuf,
        config: LogConfig,
        (dir_lock, sink): (Arc<dyn FileLock>, CheckpointSink),
        sync_marker: bool,
    ) -> Result<Self> {
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        // A compaction swap a crash interrupted is finished or undone first.
        crate::segment::clean::recover_swaps(&*fs, &dir)?;
        let (bases, names) = Self::list_segments(&*fs, &dir)?;
        // The checkpoints are read through the listing: a missing one costs
        // no system call. Nothing else changes the directory meanwhile
        // (the caller holds its lock).
        let listed = crate::io::ListedDir::new(&*fs, &dir, names);
        let (marker_file, clean) = match open_marker(&listed, &dir)? {
            Some((file, clean)) => (Some(file), clean),
            None => (None, false),
        };
        let loaded = sink.load(&listed, &dir);
        let recovery_point = loaded.row.recovery_point;
        // Read once: for recovery here, and kept for writing below.
        let extent_read = extent::read_file(&listed, &dir)?;
        let synced_extent = extent_read.as_ref().map_or(Loaded::Missing, extent::ReadExtent::loaded);
        let mut report =
            RecoveryReport { clean_shutdown: clean, segments: bases.len(), ..Default::default() };
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            let recovery = segment_recovery(&bases, i, clean, recovery_point, synced_extent);
            let role = if active { SegmentRole::Active } else { SegmentRole::Sealed };
            let (segment, repair) =
                LogSegment::open(&*fs, &dir, base, &config.segment_config(), recovery, role)?;
            repair.trace(segment.log_path());
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
        let extent_file = ExtentFile::open_read(&*fs, &dir, extent_read, fallback)?;
        tracing::debug!(
            dir = %dir.display(),
            segments = bases.len(),
            clean_shutdown = clean,
            bytes_scanned = report.bytes_scanned,
            "segments found"
        );
        if segments.is_empty() {
            segments.insert(0, Arc::new(LogSegment::create(&*fs, &dir, 0, &config.segment_config())?));
            fs.sync_dir(&dir).map_err(Error::io("sync directory", &dir))?;
        }
        if let Some(file) = marker_file.filter(|_| clean) {
            // ORDER: the marker goes before any append, so a crash from here
            // on is seen as unclean.
            // A one-byte hole: no data block to allocate now or free at close.
            file.set_len(1).map_err(Error::io("mark log open", &marker))?;
            if sync_marker {
                file.sync_data().map_err(Error::io("sync clean-shutdown marker", &marker))?;
            }
        }
        let log_end_offset = segments.values().next_back().map_or(0, |s| s.next_offset());
        let high_watermark =
            loaded.row.high_watermark.map_or(super::watermark::FOLLOWS_LOG_END, |hw| hw.min(log_end_offset));
        let log_start_offset = loaded.row.log_start;
        let epochs = load_epochs(&listed, &dir, &segments, (log_start_offset, log_end_offset))?;
        let mut producers = load_producers(&listed, &dir, &segments, log_end_offset)?;
        producers.expire(clock.now_ms(), config.producer_id_expiration_ms);
        let cleaned_to = loaded.row.cleaner_offset;
        drop(listed);
        // The writer's copy of the active segment's indexing state.
        let indexing = segments.values().next_back().expect("a log always has a segment").opened_indexing();
        let log = PartitionLog {
            fs,
            clock,
            dir,
            segment_config: config.segment_config(),
            config,
            writer: Mutex::new(Writer { scratch: Vec::new(), closed: false, producers, epochs, indexing }),
            combiner: super::combine::Combiner::default(),
            segments: Segments::new(segments, log_start_offset, log_end_offset),
            notifier: Notifier::default(),
            points: DurablePoints::new(
                recovery_point,
                extent_file,
                sink,
                loaded.legacy,
                // After an unclean stop, what the recovery point vouches for.
                if clean {
                    log_end_offset
                } else {
                    recovery_point.map_or(0, |p| p.offset.min(log_end_offset))
                },
            ),
            cleaner: Mutex::new(()),
            inflater: Mutex::new(crate::format::Inflater::default()),
            cleaned_to: AtomicU64::new(cleaned_to),
            delete_horizon_ms: std::sync::atomic::AtomicI64::new(super::cleaner::HORIZON_UNKNOWN),
            high_watermark: AtomicU64::new(high_watermark),
            report,
            counters: super::metrics::LogCounters::default(),
            _dir_lock: dir_lock,
        };
        if !clean {
            // Recovered bytes may sit only in the page cache: the first
            // close makes them durable even if nothing is appended.
            log.counters.changed();
        }
        log.apply_log_start_at_open()?;
        Ok(log)
    }

    /// Base offsets of the segments in `dir`, sorted; removes index files
    /// whose log file is gone (an index is derived data). Any file the log
    /// does not write is an error: it is not ours to delete or ignore.
    /// Also returns the directory's entries, less the temp files removed.
    pub(super) fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<(Vec<u64>, Vec<String>)> {
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
        for tmp in names.iter().filter(|n| n.ends_with(".tmp")) {
            // An interrupted (or failed) checkpoint write: the previous
            // checkpoint stands, and a temp file is never the truth.
            let path = dir.join(tmp);
            fs.remove_file(&path).map_err(Error::io("remove temp file", &path))?;
        }
        let ours = |n: &String| {
            parse_file_name(n).is_some()
                || *n == CLEAN_SHUTDOWN_FILE
                || *n == LOG_LOCK_FILE
                || checkpoints.contains(&n.as_str())
                || n.ends_with(".tmp")
        };
        if let Some(stray) = names.iter().find(|n| !ours(n)) {
            return Err(Error::Open(OpenError::UnexpectedFile { path: dir.join(stray) }));
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
        let names = names.into_iter().filter(|n| !n.ends_with(".tmp")).collect();
        Ok((logs, names))
    }
}

/// Producer state as of `log_end`: the snapshot if it is not past it, then
/// the producer fields of every batch after the snapshot, replayed (all of
/// them without a usable snapshot).
pub(super) fn load_producers(
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
        segment.for_each_batch(|h, _, _| {
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
                segment.for_each_batch(|h, _, _| {
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
