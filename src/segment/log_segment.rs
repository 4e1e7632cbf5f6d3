//! One segment: an append-only `{base_offset:020}.log` file of batches and
//! its sparse `{base_offset:020}.index`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::config::SegmentConfig;
use crate::error::{Error, Result};
use crate::format::BatchHeader;
use crate::io::{FileHandle, FileSystem, OpenMode};

use super::index::OffsetIndex;
use super::indexing::Indexing;
use super::quarantine::Quarantine;
use super::scan::ChunkReader;
use super::time_index::{TimeEntry, TimeIndex};
use super::write_buffer::WriteBuffer;
use super::{index_file_name, log_file_name, time_index_file_name};

/// A batch boundary in a segment: the first `position` bytes, ending at
/// offset `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPoint {
    /// Bytes from the start of the segment's log file.
    pub position: u64,
    /// The offset after the last batch in those bytes.
    pub offset: u64,
}

/// What [`LogSegment::open`] may assume about a segment's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The whole file was made durable (a sealed segment, or a clean
    /// close): trust a sane index, check the batches after its last entry,
    /// and refuse damage found before the segment's last record
    /// ([`crate::Corruption::SyncedData`]). Invalid bytes after it (at
    /// `end_offset`) hold no record and are cut into a quarantine file.
    Durable {
        /// The offset the segment's records end at, if known (a sealed
        /// segment's: the next segment's base offset).
        end_offset: Option<u64>,
    },
    /// The process stopped uncleanly. Bytes below `recovery_point`
    /// (durable, index entries included) are trusted and not scanned; with
    /// no recovery point the whole segment is scanned and its index
    /// rebuilt. Damage below `synced` (the synced extent) is refused; past
    /// it, the first invalid batch is where a crash cut the log, and it and
    /// everything after are cut (moved to a quarantine file first when
    /// valid batches follow the damage).
    Crash {
        /// The recovery point in this segment, if any.
        recovery_point: Option<SegmentPoint>,
        /// How far this segment is known fsynced; `None` when that is
        /// unknown (a damaged synced-extent file): damage past the recovery
        /// point is then refused too, never cut.
        synced: Option<SegmentPoint>,
    },
}

/// What a segment starts with when it is created or opened.
#[derive(Clone, Copy, Debug)]
pub(super) struct SegmentState {
    /// Bytes of valid batches.
    pub size: u64,
    /// The offset after its last batch.
    pub next_offset: u64,
    /// Where the indexing rule stands after its last batch.
    pub indexing: Indexing,
    /// What time-based roll counts from (-1: empty).
    pub roll_base_ms: i64,
}

impl SegmentState {
    /// A new, empty segment at `base_offset`.
    pub fn empty(base_offset: u64) -> Self {
        SegmentState { size: 0, next_offset: base_offset, indexing: Indexing::empty(), roll_base_ms: -1 }
    }
}

/// Whether a segment takes appends (the last one of a log) or is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentRole {
    /// The log's last segment: its indexes get room for appends.
    Active,
    /// Every other segment: never appended to again.
    Sealed,
}

/// What opening a segment repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentRepair {
    /// Bytes of log data checked.
    pub bytes_scanned: u64,
    /// Bytes of torn tail cut off.
    pub bytes_truncated: u64,
    /// The first offset cut with them, if any were.
    pub truncated_from_offset: Option<u64>,
    /// Whether the index had to be rebuilt from the log.
    pub index_rebuilt: bool,
    /// Where the cut bytes were kept, when valid batches followed the damage.
    pub quarantined: Option<Quarantine>,
}

impl SegmentRepair {
    /// Reports what recovery did to the segment at `log_path` as `tracing`
    /// events: a torn tail cut and a quarantine as warnings, a rebuilt
    /// index as information.
    pub(crate) fn trace(&self, log_path: &Path) {
        if self.bytes_truncated > 0 {
            tracing::warn!(
                segment = %log_path.display(),
                bytes = self.bytes_truncated,
                from_offset = self.truncated_from_offset,
                "torn tail cut"
            );
        }
        if let Some(q) = &self.quarantined {
            tracing::warn!(
                segment = %log_path.display(),
                quarantine = %q.path.display(),
                first_offset = q.first_offset,
                bytes = q.bytes,
                "damaged bytes quarantined"
            );
        }
        if self.index_rebuilt {
            tracing::info!(segment = %log_path.display(), "index rebuilt");
        }
    }
}

/// A segment of a partition log, shared between one writer and any number
/// of readers.
///
/// Only the partition's writer (holding its writer lock) calls the `&self`
/// methods that change the segment (`append`, `truncate_to`, `seal`,
/// `activate`). It publishes an append by storing `next_offset` and then
/// `size` with `Release` after the bytes are written (or buffered: a read
/// then writes the buffer out first, [`LogSegment::readable_size`]); readers
/// load `size` with `Acquire` and never read past it, so they never see a
/// partial batch.
#[derive(Debug)]
pub struct LogSegment {
    pub(super) base_offset: u64,
    pub(super) log_path: PathBuf,
    pub(super) log: Arc<dyn FileHandle>,
    /// Readers hold the read lock only for a lookup.
    pub(super) index: RwLock<OffsetIndex>,
    /// Bytes of valid batches; the file is never read past this.
    pub(super) size: AtomicU64,
    pub(super) next_offset: AtomicU64,
    /// The indexing rule's state as the segment was opened or created. The
    /// writer takes its own copy when the segment becomes active and
    /// passes it to each append ([`LogSegment::append_batches`]); this one
    /// never changes.
    opened_indexing: Indexing,
    /// Lock order: `index`, then `time_index`.
    pub(super) time_index: RwLock<TimeIndex>,
    /// Largest record timestamp (-1 while empty).
    pub(super) max_timestamp_ms: AtomicI64,
    /// Whether reads of the log file go through a mapping.
    maps_reads: AtomicBool,
    /// What time-based roll counts from: the first append's clock time, or
    /// for a segment opened from disk its first batch's timestamp (-1: empty).
    pub(super) roll_base_ms: AtomicI64,
    /// The write buffer (`LogConfig::write_buffer_bytes`), set when the
    /// segment is created, opened or made active again with one configured
    /// (it stays, empty and with its memory released, once sealed). Bytes
    /// below the size but past its `written()` are not in the file yet:
    /// every read and fsync goes through [`LogSegment::readable_size`] or
    /// [`LogSegment::write_buffered`] first.
    pub(super) buffer: OnceLock<Arc<WriteBuffer>>,
}

impl LogSegment {
    /// Creates an empty segment at `base_offset` in `dir`.
    ///
    /// A file of that name left by an interrupted roll holds no acknowledged
    /// data (the log end was below it), so it is emptied.
    pub fn create(fs: &dyn FileSystem, dir: &Path, base_offset: u64, config: &SegmentConfig) -> Result<Self> {
        let log_path = dir.join(log_file_name(base_offset));
        let log = fs.open(&log_path, OpenMode::Create).map_err(Error::io("create segment", &log_path))?;
        log.set_len(0).map_err(Error::io("create segment", &log_path))?;
        let capacity = config.index_entries_max;
        let mut index =
            OffsetIndex::open(fs, &dir.join(index_file_name(base_offset)), base_offset, capacity, 0)?;
        index.clear()?;
        // One spare time-index slot for the entry sealing adds.
        let mut times =
            TimeIndex::open(fs, &dir.join(time_index_file_name(base_offset)), base_offset, capacity + 1, 0)?;
        times.clear()?;
        let segment =
            LogSegment::new(base_offset, log_path, log, (index, times), SegmentState::empty(base_offset));
        if config.mmap_reads {
            segment.map_reads(config.segment_bytes);
        }
        segment.buffer_appends(config);
        Ok(segment)
    }

    pub(super) fn new(
        base_offset: u64,
        log_path: PathBuf,
        log: Arc<dyn FileHandle>,
        (index, time_index): (OffsetIndex, TimeIndex),
        state: SegmentState,
    ) -> Self {
        let SegmentState { size, next_offset, indexing, roll_base_ms } = state;
        LogSegment {
            base_offset,
            log_path,
            log,
            index: RwLock::new(index),
            size: AtomicU64::new(size),
            next_offset: AtomicU64::new(next_offset),
            opened_indexing: indexing,
            time_index: RwLock::new(time_index),
            max_timestamp_ms: AtomicI64::new(indexing.max_timestamp_ms),
            roll_base_ms: AtomicI64::new(roll_base_ms),
            maps_reads: AtomicBool::new(false),
            buffer: OnceLock::new(),
        }
    }

    /// Serves reads of the log file below `capacity` from a read-only
    /// mapping (see [`FileHandle::map_for_reads`]); sealing then narrows it
    /// to the sealed bytes.
    pub(super) fn map_reads(&self, capacity: u64) {
        self.maps_reads.store(true, Ordering::Relaxed);
        self.map_log_for_reads(capacity);
    }

    #[expect(unsafe_code, reason = "a read mapping of the segment's log file")]
    fn map_log_for_reads(&self, capacity: u64) {
        // SAFETY (`FileHandle::map_for_reads`'s contract): the log file
        // changes only through `self.log`: segments are made only inside
        // the crate (`segment` is private) by a `PartitionLog`, which holds
        // its directory's exclusive lock as long as it lives, so no other
        // log, repair or cleaner in any process opens this file; recovery
        // and truncation change it through this handle.
        unsafe { self.log.map_for_reads(capacity) }
    }

    /// The largest record timestamp (-1 while empty).
    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms.load(Ordering::Acquire)
    }

    /// The first offset this segment can hold.
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// The offset after the last batch (the base offset when empty).
    pub fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// Bytes of log data (some may still be in the write buffer).
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// The log file's path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Where the batch holding `offset` starts (the end of the segment
    /// when `offset` is past it): where a truncation to `offset` cuts or
    /// rewrites.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged batch on the way.
    pub fn batch_start(&self, offset: u64) -> Result<SegmentPoint> {
        let size = self.readable_size()?;
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, size);
        Ok(match self.find_batch(offset, size, &mut reader)? {
            Some(b) => SegmentPoint { position: b.position, offset: b.header.base_offset },
            None => SegmentPoint { position: size, offset: self.next_offset() },
        })
    }

    /// True when no batch has been appended.
    pub fn is_empty(&self) -> bool {
        self.size_bytes() == 0
    }

    /// Whether a batch of `batch_bytes` ending at `last_offset`, appended
    /// at clock time `now_ms`, must go to a new segment instead: full by
    /// size, a full index, offsets beyond the 31-bit relative range of
    /// Kafka's index entries (its `canConvertToRelativeOffset`), or
    /// older than `segment_ms`. An empty segment takes any batch.
    pub fn needs_roll(
        &self,
        batch_bytes: u64,
        last_offset: u64,
        config: &SegmentConfig,
        now_ms: i64,
    ) -> bool {
        let roll_base = self.roll_base_ms.load(Ordering::Relaxed);
        !self.is_empty()
            && (self.size_bytes() + batch_bytes > config.segment_bytes
                || self.index.read().is_full()
                || self.time_index.read().entries() >= config.index_entries_max
                || last_offset - self.base_offset > i32::MAX as u64
                || (roll_base >= 0 && now_ms.saturating_sub(roll_base) >= config.segment_ms))
    }

    /// Appends `bytes`, the encoded, checked batches `headers` describe
    /// back to back, with a single positional write (as Kafka appends a
    /// producer's record set), or into the write buffer when there is one.
    /// `indexing` is the writer's state of the indexing rule for this
    /// (active) segment: holding it `&mut` is what makes the caller the
    /// writer.
    ///
    /// On a failed write of these bytes nothing changes: bytes past `size`
    /// are never read and the next append overwrites them. A failed write
    /// of earlier, buffered bytes is an error that poisons the partition
    /// (`write_buffer::is_buffered_write`).
    pub(crate) fn append_batches(
        &self,
        indexing: &mut Indexing,
        bytes: &[u8],
        headers: &[BatchHeader],
        config: &SegmentConfig,
        now_ms: i64,
    ) -> Result<()> {
        let position = self.size_bytes();
        let Some(last) = headers.last() else { return Ok(()) };
        debug_assert_eq!(headers[0].base_offset, self.next_offset(), "append must be contiguous");
        debug_assert_eq!(headers.iter().map(|h| h.batch_len as usize).sum::<usize>(), bytes.len());
        match self.buffer.get() {
            Some(buffer) => buffer.append(bytes, position)?,
            None => self.log.write_all_at(bytes, position).map_err(Error::io("append", &self.log_path))?,
        }
        if position == 0 {
            self.roll_base_ms.store(now_ms, Ordering::Relaxed);
        }
        let mut at = position;
        for header in headers {
            if let Some(entries) = indexing.on_batch(at, header, config.index_interval_bytes) {
                self.add_entries(entries);
            }
            at += u64::from(header.batch_len);
        }
        self.max_timestamp_ms.store(indexing.max_timestamp_ms, Ordering::Release);
        // ORDER (publication): bytes written, index entries added, then the
        // next offset, then the size readers bound their reads by.
        self.next_offset.store(last.next_offset(), Ordering::Release);
        self.size.store(position + bytes.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Adds the entries the indexing rule gave a batch. Writer only.
    pub(super) fn add_entries(&self, entries: super::indexing::Entries) {
        self.index.write().append(entries.offset.offset, entries.offset.position);
        if let Some(t) = entries.time {
            self.time_index.write().append(t.timestamp_ms, t.offset);
        }
    }

    /// The indexing rule's state as the segment was opened or created: the
    /// writer's starting copy when this segment becomes the active one.
    pub(crate) fn opened_indexing(&self) -> Indexing {
        self.opened_indexing
    }

    /// Makes the log data durable (`fdatasync`); the index is derived data
    /// and recovery rebuilds it.
    pub fn sync_log(&self) -> Result<()> {
        self.write_buffered()?;
        self.log.sync_data().map_err(Error::io("sync segment", &self.log_path))
    }

    /// Makes the log data and both indexes durable, the time index with an
    /// entry covering the whole segment (so recovery from this point knows
    /// its largest timestamp). `covering` is that entry, from the writer's
    /// [`Indexing`] of this segment (`None`: no timestamp yet, or the
    /// caller no longer holds this segment's state).
    pub(crate) fn sync(&self, covering: Option<TimeEntry>) -> Result<()> {
        self.write_buffered()?;
        self.log.sync_data().map_err(Error::io("sync segment", &self.log_path))?;
        let index = self.index.read();
        let mut times = self.time_index.write();
        if let Some(t) = covering {
            times.append(t.timestamp_ms, t.offset);
        }
        index.sync()?;
        times.sync()
    }

    /// Seals the segment (on roll or clean close): trims the indexes to
    /// their entries, then syncs log and indexes. `indexing` is the
    /// writer's state of this (active) segment.
    pub(crate) fn seal(&self, indexing: &Indexing) -> Result<()> {
        self.seal_unsynced(indexing)?;
        self.sync(indexing.time_entry())
    }

    /// [`LogSegment::seal`] without the fsyncs, for a segment whose bytes
    /// are all durable already (nothing appended since it was last synced).
    pub(crate) fn seal_unsynced(&self, indexing: &Indexing) -> Result<()> {
        // A sealed segment's bytes are all in its file, and it holds no
        // buffer memory.
        self.write_buffered()?;
        if let Some(buffer) = self.buffer.get() {
            buffer.release();
        }
        if self.maps_reads.load(Ordering::Relaxed) {
            // Just the sealed bytes (an active segment maps up to
            // `segment_bytes`, more address space than it may ever fill).
            self.map_log_for_reads(self.size_bytes());
        }
        self.time_index.write().seal(indexing.time_entry())?;
        self.index.write().trim()
    }

    /// Gives a (re)active segment room for index entries.
    pub(crate) fn activate(&self, config: &SegmentConfig) {
        self.index.write().reserve(config.index_entries_max);
        self.time_index.write().reserve(config.index_entries_max + 1);
        self.buffer_appends(config);
    }

    /// Removes the segment's files. Readers still holding the segment keep
    /// reading the unlinked files through their open handles (log data is
    /// read, never mapped; an unlinked index stays mapped until dropped).
    pub(crate) fn delete(&self, fs: &dyn FileSystem) -> Result<()> {
        self.discard_buffered();
        let index_path = self.index.read().path().to_path_buf();
        let time_path = self.time_index.read().path().to_path_buf();
        fs.remove_file(&index_path).map_err(Error::io("remove index", &index_path))?;
        fs.remove_file(&time_path).map_err(Error::io("remove time index", &time_path))?;
        fs.remove_file(&self.log_path).map_err(Error::io("remove segment", &self.log_path))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::format::{encode_batch, BatchMeta, Record};
    use crate::io::StdFileSystem;

    pub(in crate::segment) fn append(
        segment: &LogSegment,
        indexing: &mut Indexing,
        n: usize,
        config: &SegmentConfig,
    ) {
        let records: Vec<_> = (0..n).map(|i| Record::new(vec![i as u8; 50]).timestamp_ms(1)).collect();
        let mut buf = Vec::new();
        let header = encode_batch(
            &mut buf,
            segment.next_offset(),
            BatchMeta::default(),
            &records,
            0,
            LogConfig::default().encode_limits(),
        )
        .unwrap();
        segment.append_batches(indexing, &buf, &[header], config, 0).unwrap();
    }

    #[test]
    fn append_read_seal_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { index_interval_bytes: 100, ..LogConfig::default() }.segment_config();
        let segment = LogSegment::create(&StdFileSystem, dir.path(), 500, &config).unwrap();
        let mut indexing = segment.opened_indexing();
        for n in 1..=10 {
            append(&segment, &mut indexing, n, &config);
        }
        assert_eq!(segment.next_offset(), 555);
        let fetched = segment.read(520, u64::MAX, 0, &config).unwrap().unwrap();
        let first = fetched.records().next().unwrap();
        assert_eq!(first.offset, 520);
        assert!(segment.read(555, u64::MAX, 100, &config).unwrap().is_none(), "past the end");
        segment.seal(&indexing).unwrap();
        let size = segment.size_bytes();
        drop(segment);
        let (segment, repair) = LogSegment::open(
            &StdFileSystem,
            dir.path(),
            500,
            &config,
            Recovery::Durable { end_offset: None },
            SegmentRole::Sealed,
        )
        .unwrap();
        assert_eq!((segment.size_bytes(), segment.next_offset()), (size, 555));
        assert!(!repair.index_rebuilt && repair.bytes_truncated == 0);
        assert!(repair.bytes_scanned < size / 2, "only the tail after the last entry");
    }

    #[test]
    fn needs_roll_by_size_and_relative_offset() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 1000, ..LogConfig::default() }.segment_config();
        let segment = LogSegment::create(&StdFileSystem, dir.path(), 0, &config).unwrap();
        assert!(!segment.needs_roll(5000, 0, &config, 0), "an empty segment takes any batch");
        append(&segment, &mut segment.opened_indexing(), 5, &config);
        assert!(segment.needs_roll(1000, 10, &config, 0));
        assert!(!segment.needs_roll(10, 10, &config, 0));
        assert!(segment.needs_roll(10, 10, &config, config.segment_ms), "old enough to roll by time");
        assert!(segment.needs_roll(10, i32::MAX as u64 + 1, &config, 0), "past a 31-bit relative offset");
        assert!(!segment.needs_roll(10, i32::MAX as u64, &config, 0));
    }
}
