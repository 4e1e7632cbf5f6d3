//! One segment: an append-only `{base_offset:020}.log` file of batches and
//! its sparse `{base_offset:020}.index`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::{Corruption, Error, Result};
use crate::format::{BatchHeader, FetchedRecords, BATCH_HEADER_BYTES};
use crate::io::{FileHandle, FileSystem, OpenMode};

use super::index::OffsetIndex;
use super::scan::{scan, ChunkReader, ScanStart};
use super::{index_file_name, log_file_name};

/// Extra bytes read past `max_bytes + index_interval_bytes`, so the batch
/// straddling the end of an index interval usually comes in the same read.
const READ_SLACK_BYTES: usize = 16 << 10;

/// Why a walk over batch headers stopped.
enum WalkError {
    /// The index entry it started from does not name the batch there.
    IndexMismatch,
    /// Damage or I/O.
    Failed(Error),
}

impl From<Error> for WalkError {
    fn from(e: Error) -> Self {
        WalkError::Failed(e)
    }
}

/// How much of an existing segment [`LogSegment::open`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Rebuild the index from the whole log file (after an unclean stop).
    Full,
    /// Trust a sane index and check only the batches after its last entry.
    FromIndex,
}

/// What opening a segment repaired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentRepair {
    /// Bytes of log data checked.
    pub bytes_scanned: u64,
    /// Bytes of torn tail cut off.
    pub bytes_truncated: u64,
    /// Whether the index had to be rebuilt from the log.
    pub index_rebuilt: bool,
}

/// A segment of a partition log.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: u64,
    log_path: PathBuf,
    log: Arc<dyn FileHandle>,
    index: OffsetIndex,
    /// Bytes of valid batches; the file is never read past this.
    size: u64,
    next_offset: u64,
    bytes_since_index: u64,
}

impl LogSegment {
    /// Creates an empty segment at `base_offset` in `dir`.
    ///
    /// A file of that name left by an interrupted roll holds no acknowledged
    /// data (the log end was below it), so it is emptied.
    pub fn create(fs: &dyn FileSystem, dir: &Path, base_offset: u64, config: &LogConfig) -> Result<Self> {
        let log_path = dir.join(log_file_name(base_offset));
        let log = fs.open(&log_path, OpenMode::Create).map_err(Error::io("create segment", &log_path))?;
        log.set_len(0).map_err(Error::io("create segment", &log_path))?;
        let index_path = dir.join(index_file_name(base_offset));
        let mut index = OffsetIndex::open(fs, &index_path, base_offset, config.index_entries_max(), 0)?;
        index.clear();
        Ok(LogSegment {
            base_offset,
            log_path,
            log,
            index,
            size: 0,
            next_offset: base_offset,
            bytes_since_index: 0,
        })
    }

    /// Opens an existing segment, validating its tail (or all of it, with
    /// [`Recovery::Full`]) and cutting off a torn tail. An `active` segment's
    /// index gets room for appends; a sealed one's stays trimmed.
    ///
    /// # Errors
    /// [`Error::Corruption`] when damaged bytes are followed by valid ones.
    pub fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: u64,
        config: &LogConfig,
        recovery: Recovery,
        active: bool,
    ) -> Result<(Self, SegmentRepair)> {
        let log_path = dir.join(log_file_name(base_offset));
        let log = fs.open(&log_path, OpenMode::Existing).map_err(Error::io("open segment", &log_path))?;
        let file_len = log.size().map_err(Error::io("stat segment", &log_path))?;
        let capacity = if active { config.index_entries_max() } else { 0 };
        let bound = usize::try_from(file_len / BATCH_HEADER_BYTES as u64 + 1).unwrap_or(usize::MAX);
        let index_path = dir.join(index_file_name(base_offset));
        let mut index = OffsetIndex::open(fs, &index_path, base_offset, capacity, bound)?;
        let mut repair = SegmentRepair::default();
        let trusted = recovery == Recovery::FromIndex && index.sanity_check(file_len).is_ok();
        let start = match index.last_entry().filter(|_| trusted) {
            Some((offset, position)) => ScanStart { offset, position },
            None => {
                repair.index_rebuilt = index.entries() > 0 || recovery == Recovery::Full;
                index.clear();
                ScanStart { offset: base_offset, position: 0 }
            }
        };
        let interval = config.index_interval_bytes;
        let rescan = |index: &mut OffsetIndex, repair: &mut SegmentRepair| {
            repair.index_rebuilt = true;
            index.clear();
            let from_start = ScanStart { offset: base_offset, position: 0 };
            scan(&*log, &log_path, file_len, from_start, index, interval)
        };
        // A scan that fails right at the index's last entry means the index
        // pointed at something that is not a batch: distrust it, not the log.
        let end = match scan(&*log, &log_path, file_len, start, &mut index, interval) {
            Ok(end) if start.position == 0 || end.valid_bytes > start.position => end,
            Ok(_) => rescan(&mut index, &mut repair)?,
            Err(Error::Corruption { position, .. }) if position == start.position && position > 0 => {
                rescan(&mut index, &mut repair)?
            }
            Err(e) => return Err(e),
        };
        repair.bytes_scanned = file_len - if repair.index_rebuilt { 0 } else { start.position };
        if end.torn.is_some() {
            // ORDER: the index never points past the log, so cut it first.
            index.truncate_to_position(end.valid_bytes);
            log.set_len(end.valid_bytes).map_err(Error::io("truncate torn tail", &log_path))?;
            repair.bytes_truncated = file_len - end.valid_bytes;
        }
        let segment = LogSegment {
            base_offset,
            log_path,
            log,
            index,
            size: end.valid_bytes,
            next_offset: end.next_offset,
            bytes_since_index: end.bytes_since_index,
        };
        Ok((segment, repair))
    }

    /// The first offset this segment can hold.
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// The offset after the last batch (the base offset when empty).
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Bytes of log data.
    pub fn size_bytes(&self) -> u64 {
        self.size
    }

    /// The log file's path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// True when no batch has been appended.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Whether a batch of `batch_bytes` ending at `last_offset` must go to a
    /// new segment instead: full by size, full index, or offsets beyond the
    /// 32-bit relative range. An empty segment takes any batch.
    pub fn needs_roll(&self, batch_bytes: u64, last_offset: u64, config: &LogConfig) -> bool {
        !self.is_empty()
            && (self.size + batch_bytes > config.segment_bytes
                || self.index.is_full()
                || last_offset - self.base_offset > u64::from(u32::MAX))
    }

    /// Appends one encoded, checked batch with a single positional write.
    ///
    /// On a write error nothing changes: bytes past `size` are never read and
    /// the next append overwrites them.
    pub fn append(&mut self, batch: &[u8], header: &BatchHeader, config: &LogConfig) -> Result<()> {
        debug_assert_eq!(header.base_offset, self.next_offset, "append must be contiguous");
        debug_assert_eq!(header.batch_len as usize, batch.len());
        self.log.write_all_at(batch, self.size).map_err(Error::io("append", &self.log_path))?;
        if self.bytes_since_index >= config.index_interval_bytes {
            self.index.append(header.base_offset, self.size);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += batch.len() as u64;
        self.size += batch.len() as u64;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Position and header of the batch holding `offset` (the first batch
    /// ending at or after it), or `None` when it is past this segment.
    fn find_batch(&self, offset: u64, reader: &mut ChunkReader<'_>) -> Result<Option<(u64, BatchHeader)>> {
        let (entry_offset, entry_pos) = self.index.lookup(offset);
        match self.walk_from(entry_pos, offset, reader, Some(entry_offset)) {
            // The index is derived data: if its entry does not point at the
            // batch it names, walk from the segment start instead.
            Err(WalkError::IndexMismatch) => match self.walk_from(0, offset, reader, None) {
                Ok(found) => Ok(found),
                Err(WalkError::Failed(e)) => Err(e),
                Err(WalkError::IndexMismatch) => unreachable!("no entry to mismatch"),
            },
            Err(WalkError::Failed(e)) => Err(e),
            Ok(found) => Ok(found),
        }
    }

    /// Walks batch headers from `pos` to the batch holding `offset`. When
    /// `expect_first` is set, the first header must start at that offset.
    fn walk_from(
        &self,
        mut pos: u64,
        offset: u64,
        reader: &mut ChunkReader<'_>,
        mut expect_first: Option<u64>,
    ) -> Result<Option<(u64, BatchHeader)>, WalkError> {
        // Bounded: each step advances by at least one header.
        while pos < self.size {
            let head = reader
                .get(pos, BATCH_HEADER_BYTES)?
                .ok_or_else(|| self.damaged(pos, crate::format::DecodeErrorKind::Truncated));
            let header = head.and_then(|h| {
                BatchHeader::parse(h)
                    .map_err(|e| Error::corruption(&self.log_path, pos, Corruption::Batch(e)))
            });
            let header = match (header, expect_first.take()) {
                (Ok(h), Some(first)) if h.base_offset != first => return Err(WalkError::IndexMismatch),
                (Err(_), Some(_)) if pos > 0 => return Err(WalkError::IndexMismatch),
                (h, _) => h?,
            };
            if header.last_offset() >= offset {
                return Ok(Some((pos, header)));
            }
            pos += u64::from(header.batch_len);
        }
        Ok(None)
    }

    fn damaged(&self, pos: u64, kind: crate::format::DecodeErrorKind) -> Error {
        Error::corruption(
            &self.log_path,
            pos,
            Corruption::Batch(crate::format::DecodeError { kind, position: 0 }),
        )
    }

    /// Reads whole batches from the one holding `offset`, up to `max_bytes`
    /// (but always the first batch whole), checking each batch's CRC.
    /// `None` when `offset` is past this segment.
    ///
    /// # Errors
    /// [`Error::Corruption`] when a batch fails its checks.
    pub fn read(&self, offset: u64, max_bytes: usize, config: &LogConfig) -> Result<Option<FetchedRecords>> {
        // One read usually serves both the index-to-target scan and the data:
        // the target lies within about one index interval of the entry.
        let window =
            max_bytes.saturating_add(config.index_interval_bytes as usize).saturating_add(READ_SLACK_BYTES);
        let mut reader = ChunkReader::with_chunk(&*self.log, &self.log_path, self.size, window);
        let Some((pos, first)) = self.find_batch(offset, &mut reader)? else {
            return Ok(None);
        };
        let want = (max_bytes as u64).max(u64::from(first.batch_len)).min(self.size - pos);
        let buf = reader.take(pos, want as usize)?;
        // Keep whole, valid batches; stop before one that does not fit.
        let (mut at, mut expected) = (0usize, first.base_offset);
        while let Some(len) = crate::format::peek_batch_len(&buf[at..]) {
            if len as usize > buf.len() - at {
                break;
            }
            let header = crate::format::batch::check_batch_crc(&buf[at..])
                .map_err(|e| Error::corruption(&self.log_path, pos + at as u64, Corruption::Batch(e)))?;
            if header.base_offset != expected {
                let detail = Corruption::OffsetMismatch { expected, found: header.base_offset };
                return Err(Error::corruption(&self.log_path, pos + at as u64, detail));
            }
            expected = header.next_offset();
            at += len as usize;
        }
        if at == 0 {
            // The batch holding `offset` claims to run past the segment's end.
            return Err(self.damaged(pos, crate::format::DecodeErrorKind::Truncated));
        }
        Ok(Some(FetchedRecords::new(buf.slice(..at), offset)))
    }

    /// Makes the log data and index durable.
    pub fn sync(&self) -> Result<()> {
        self.log.sync_data().map_err(Error::io("sync segment", &self.log_path))?;
        self.index.sync()
    }

    /// Seals the segment (on roll or clean close): trims the index to its
    /// entries, then syncs log and index.
    pub fn seal(&mut self) -> Result<()> {
        self.index.trim()?;
        self.sync()
    }

    /// Gives a (re)active segment room for index entries.
    pub fn activate(&mut self, config: &LogConfig) -> Result<()> {
        self.index.reserve(config.index_entries_max())
    }

    /// Removes the segment's files.
    pub fn delete(self, fs: &dyn FileSystem) -> Result<()> {
        let LogSegment { log_path, log, index, .. } = self;
        drop(log);
        index.delete(fs)?;
        fs.remove_file(&log_path).map_err(Error::io("remove segment", &log_path))
    }

    /// Drops every record at or above `offset`, keeping the records below it
    /// that share its batch (that batch is rewritten without them).
    pub fn truncate_to(&mut self, offset: u64, scratch: &mut Vec<u8>) -> Result<()> {
        if offset >= self.next_offset {
            return Ok(());
        }
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, self.size);
        let Some((pos, header)) = self.find_batch(offset, &mut reader)? else {
            return Ok(());
        };
        let mut new_size = pos;
        if header.base_offset < offset {
            scratch.clear();
            super::rewrite::prefix_batch(&mut reader, &self.log_path, pos, offset, scratch)?;
            // ORDER: cut later batches, overwrite the batch, cut its leftover
            // tail. A crash between the last two leaves a valid batch then
            // garbage with nothing valid after: recovery cuts the garbage.
            let batch_end = pos + u64::from(header.batch_len);
            self.log.set_len(batch_end).map_err(Error::io("truncate", &self.log_path))?;
            self.log.write_all_at(scratch, pos).map_err(Error::io("truncate", &self.log_path))?;
            new_size = pos + scratch.len() as u64;
        }
        // Entries at `pos` stay valid when the rewritten batch starts there.
        let keep_entry_at_pos = new_size > pos;
        self.index.truncate_to_position(if keep_entry_at_pos { pos + 1 } else { pos });
        self.log.set_len(new_size).map_err(Error::io("truncate", &self.log_path))?;
        // ORDER: make the new length durable now, or a crash could bring the
        // truncated batches back (they are still contiguous, so recovery
        // would accept them).
        self.log.sync_data().map_err(Error::io("sync after truncate", &self.log_path))?;
        self.size = new_size;
        self.next_offset = offset;
        self.bytes_since_index = new_size - self.index.last_entry().map_or(0, |(_, p)| p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_batch, BatchMeta, Record};
    use crate::io::StdFileSystem;

    fn append(segment: &mut LogSegment, n: usize, config: &LogConfig) {
        let records: Vec<_> = (0..n).map(|i| Record::new(vec![i as u8; 50]).timestamp_ms(1)).collect();
        let mut buf = Vec::new();
        let header = encode_batch(
            &mut buf,
            segment.next_offset(),
            BatchMeta::default(),
            &records,
            0,
            config.encode_limits(),
        )
        .unwrap();
        segment.append(&buf, &header, config).unwrap();
    }

    #[test]
    fn append_read_seal_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { index_interval_bytes: 100, ..LogConfig::default() };
        let mut segment = LogSegment::create(&StdFileSystem, dir.path(), 500, &config).unwrap();
        for n in 1..=10 {
            append(&mut segment, n, &config);
        }
        assert_eq!(segment.next_offset(), 555);
        let fetched = segment.read(520, 0, &config).unwrap().unwrap();
        let first = fetched.records().next().unwrap();
        assert_eq!(first.offset, 520);
        assert!(segment.read(555, 100, &config).unwrap().is_none(), "past the end");
        segment.seal().unwrap();
        let size = segment.size_bytes();
        drop(segment);
        let (segment, repair) =
            LogSegment::open(&StdFileSystem, dir.path(), 500, &config, Recovery::FromIndex, false).unwrap();
        assert_eq!((segment.size_bytes(), segment.next_offset()), (size, 555));
        assert!(!repair.index_rebuilt && repair.bytes_truncated == 0);
        assert!(repair.bytes_scanned < size / 2, "only the tail after the last entry");
    }

    #[test]
    fn needs_roll_by_size_and_relative_offset() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 1000, ..LogConfig::default() };
        let mut segment = LogSegment::create(&StdFileSystem, dir.path(), 0, &config).unwrap();
        assert!(!segment.needs_roll(5000, 0, &config), "an empty segment takes any batch");
        append(&mut segment, 5, &config);
        assert!(segment.needs_roll(1000, 10, &config));
        assert!(!segment.needs_roll(10, 10, &config));
        assert!(segment.needs_roll(10, u64::from(u32::MAX) + 1, &config));
    }
}
