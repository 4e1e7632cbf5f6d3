//! One partition's log: an ordered set of segments with one active segment
//! at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LogConfig;
use crate::error::{Corruption, Error, Result};
use crate::format::{encode_batch, BatchMeta, FetchedRecords, Record};
use crate::io::{FileSystem, OpenMode, SharedFs, StdFileSystem};
use crate::segment::{parse_file_name, LogSegment, Recovery, SegmentFile};

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The previous close was clean (nothing needed a full scan).
    pub clean_shutdown: bool,
    /// Segments opened.
    pub segments: usize,
    /// Bytes of log data validated while opening.
    pub bytes_scanned: u64,
    /// Bytes of torn tail cut off.
    pub bytes_truncated: u64,
    /// Segments whose index was rebuilt from the log.
    pub indexes_rebuilt: usize,
}

/// The log of one partition.
///
/// # Examples
///
/// ```
/// use annals::{LogConfig, PartitionLog, Record};
/// let dir = tempfile::tempdir()?;
/// let mut log = PartitionLog::open(dir.path(), LogConfig::default())?;
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
    fs: SharedFs,
    dir: PathBuf,
    config: LogConfig,
    /// By base offset; never empty, the last one is active.
    segments: BTreeMap<u64, LogSegment>,
    log_end_offset: u64,
    /// Reused encode buffer: appends allocate nothing in steady state.
    scratch: Vec<u8>,
    report: RecoveryReport,
    closed: bool,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs.create_dir_all(&dir).map_err(Error::io("create log directory", &dir))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = fs.exists(&marker).map_err(Error::io("stat", &marker))?;
        let bases = Self::list_segments(&*fs, &dir)?;
        let mut report =
            RecoveryReport { clean_shutdown: clean, segments: bases.len(), ..Default::default() };
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            let recovery = if active && !clean { Recovery::Full } else { Recovery::FromIndex };
            let (segment, repair) = LogSegment::open(&*fs, &dir, base, &config, recovery, active)?;
            report.bytes_scanned += repair.bytes_scanned;
            report.bytes_truncated += repair.bytes_truncated;
            report.indexes_rebuilt += usize::from(repair.index_rebuilt);
            if let Some(&next_base) = bases.get(i + 1) {
                if segment.next_offset() != next_base {
                    let detail = Corruption::SegmentBoundary {
                        next_offset: segment.next_offset(),
                        next_base_offset: next_base,
                    };
                    return Err(Error::corruption(segment.log_path(), segment.size_bytes(), detail));
                }
            }
            segments.insert(base, segment);
        }
        if segments.is_empty() {
            segments.insert(0, LogSegment::create(&*fs, &dir, 0, &config)?);
            fs.sync_dir(&dir).map_err(Error::io("sync directory", &dir))?;
        }
        if clean {
            // ORDER: the marker goes before any append, so a crash from here
            // on is seen as unclean.
            fs.remove_file(&marker).map_err(Error::io("remove clean-shutdown marker", &marker))?;
            fs.sync_dir(&dir).map_err(Error::io("sync directory", &dir))?;
        }
        let log_end_offset = segments.values().next_back().map_or(0, LogSegment::next_offset);
        Ok(PartitionLog {
            fs,
            dir,
            config,
            segments,
            log_end_offset,
            scratch: Vec::new(),
            report,
            closed: false,
        })
    }

    /// Base offsets of the segments in `dir`, sorted; removes index files
    /// whose log file is gone (an index is derived data).
    fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
        let names = fs.list_dir(dir).map_err(Error::io("list log directory", dir))?;
        let parsed: Vec<(u64, SegmentFile)> = names.iter().filter_map(|n| parse_file_name(n)).collect();
        let mut logs: Vec<u64> = parsed.iter().filter(|p| p.1 == SegmentFile::Log).map(|p| p.0).collect();
        logs.sort_unstable();
        for &(base, kind) in &parsed {
            if kind == SegmentFile::Index && logs.binary_search(&base).is_err() {
                let path = dir.join(crate::segment::index_file_name(base));
                fs.remove_file(&path).map_err(Error::io("remove orphan index", &path))?;
            }
        }
        Ok(logs)
    }

    /// Appends `records` as one batch; returns the offsets assigned.
    ///
    /// # Errors
    /// [`Error::EmptyBatch`], [`Error::RecordTooLarge`],
    /// [`Error::BatchTooLarge`], [`Error::InvalidTimestamp`] (nothing is
    /// written), or [`Error::Io`].
    pub fn append(&mut self, records: &[Record]) -> Result<AppendInfo> {
        self.append_with(records, BatchMeta::default())
    }

    /// Appends `records` with producer and leader-epoch fields.
    ///
    /// # Errors
    /// As [`PartitionLog::append`].
    pub fn append_with(&mut self, records: &[Record], meta: BatchMeta) -> Result<AppendInfo> {
        let base = self.log_end_offset;
        self.scratch.clear();
        let limits = self.config.encode_limits();
        let header = encode_batch(&mut self.scratch, base, meta, records, now_ms(), limits)?;
        if self.active().needs_roll(u64::from(header.batch_len), header.last_offset(), &self.config) {
            self.roll()?;
        }
        let config = &self.config;
        let active = self.segments.values_mut().next_back().expect("a log always has a segment");
        active.append(&self.scratch, &header, config)?;
        self.log_end_offset = header.next_offset();
        Ok(AppendInfo {
            first_offset: base,
            last_offset: header.last_offset(),
            max_timestamp_ms: header.max_timestamp_ms,
        })
    }

    fn active(&self) -> &LogSegment {
        self.segments.values().next_back().expect("a log always has a segment")
    }

    /// Seals the active segment and starts a new one at the log end offset.
    /// Does nothing when the active segment is empty.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn roll(&mut self) -> Result<()> {
        let base = self.log_end_offset;
        let active = self.segments.values_mut().next_back().expect("a log always has a segment");
        if active.is_empty() {
            return Ok(());
        }
        // ORDER: seal (trim index, fsync log and index), create the new
        // segment's files, fsync the directory. Sealed segments are durable,
        // so recovery after a crash scans only the active one.
        active.seal()?;
        let segment = LogSegment::create(&*self.fs, &self.dir, base, &self.config)?;
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        self.segments.insert(base, segment);
        Ok(())
    }

    /// Reads whole batches from the one holding `offset`, up to about
    /// `max_bytes` (at least one batch). Reading at the log end offset
    /// returns nothing.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `[log_start_offset,
    /// log_end_offset]`; [`Error::Corruption`] for damaged bytes.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<FetchedRecords> {
        self.check_range(offset)?;
        if offset == self.log_end_offset {
            return Ok(FetchedRecords::default());
        }
        for (_, segment) in
            self.segments.range(..=offset).next_back().into_iter().chain(self.segments.range(offset + 1..))
        {
            if let Some(fetched) = segment.read(offset, max_bytes, &self.config)? {
                return Ok(fetched);
            }
        }
        Ok(FetchedRecords::default())
    }

    fn check_range(&self, offset: u64) -> Result<()> {
        if offset < self.log_start_offset() || offset > self.log_end_offset {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: self.log_end_offset,
            });
        }
        Ok(())
    }

    /// Drops every record at or above `offset` (across segments); the log end
    /// offset becomes `offset`.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `[log_start_offset,
    /// log_end_offset]`; [`Error::Io`].
    pub fn truncate_to(&mut self, offset: u64) -> Result<()> {
        self.check_range(offset)?;
        if offset == self.log_end_offset {
            return Ok(());
        }
        let doomed: Vec<u64> = self.segments.range(offset..).map(|(&b, _)| b).collect();
        let keep_first = doomed.len() == self.segments.len();
        for base in doomed.into_iter().rev() {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete(&*self.fs)?;
            }
        }
        if keep_first {
            // Everything went: start over, empty, at `offset`.
            let segment = LogSegment::create(&*self.fs, &self.dir, offset, &self.config)?;
            self.segments.insert(offset, segment);
        } else {
            let config = &self.config;
            let active = self.segments.values_mut().next_back().expect("a log always has a segment");
            active.truncate_to(offset, &mut self.scratch)?;
            active.activate(config)?;
        }
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        self.log_end_offset = offset;
        Ok(())
    }

    /// Makes every appended batch durable (fsync of the active segment).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn flush(&self) -> Result<()> {
        self.active().sync()
    }

    /// The first offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.segments.keys().next().copied().unwrap_or(0)
    }

    /// The offset the next append gets.
    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset
    }

    /// Bytes of log data in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size_bytes).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.segments.keys().copied().collect()
    }

    /// What the last open found and repaired.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.report
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Closes cleanly: seals the active segment's index, syncs, and leaves
    /// the clean-shutdown marker so the next open skips the full scan.
    ///
    /// # Errors
    /// [`Error::Io`]; the log is then left to be recovered at the next open.
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        // ORDER: data and index durable, then the marker, then the directory.
        let active = self.segments.values_mut().next_back().expect("a log always has a segment");
        active.seal()?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let file = self
            .fs
            .open(&marker, OpenMode::Create)
            .map_err(Error::io("write clean-shutdown marker", &marker))?;
        file.sync_data().map_err(Error::io("sync clean-shutdown marker", &marker))?;
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        if !self.closed {
            // Best effort; on failure the next open recovers by scanning.
            let _ = self.shutdown();
        }
    }
}
