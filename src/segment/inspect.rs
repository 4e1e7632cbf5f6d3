//! A read-only walk over one segment file for tools (`annals dump`): each
//! batch's position, header and bytes, and whether it passes its checks.
//! It goes through the one batch walk (`cursor.rs`) and changes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Corruption, Error, Result};
use crate::format::{check_batch, BatchHeader};
use crate::io::{FileHandle, FileSystem, OpenMode};

use super::cursor::{BatchCursor, Check, Step};
use super::scan::ChunkReader;
use super::{parse_file_name, SegmentFile};

/// One batch of a [`SegmentBatches`] walk.
#[derive(Debug)]
pub struct InspectedBatch<'a> {
    /// Its byte position in the file.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
    /// The whole batch.
    pub bytes: &'a [u8],
    /// Whether its CRC and records check (a batch that fails is still
    /// shown; the walk stops after it).
    pub check: std::result::Result<(), Corruption>,
}

/// The batches of one segment file, in order (see the module docs).
///
/// # Examples
///
/// ```
/// use annals::io::StdFileSystem;
/// use annals::inspect::{log_file_name, SegmentBatches};
/// use annals::{LogConfig, PartitionLog, Record};
/// let dir = tempfile::tempdir()?;
/// let log = PartitionLog::open(dir.path(), LogConfig::default())?;
/// log.append(&[Record::new("a"), Record::new("b")])?;
/// drop(log);
/// let mut batches = SegmentBatches::open(&StdFileSystem, &dir.path().join(log_file_name(0)))?;
/// let first = batches.next_batch()?.expect("one batch");
/// assert_eq!((first.header.base_offset, first.header.record_count), (0, 2));
/// assert!(first.check.is_ok());
/// assert!(batches.next_batch()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SegmentBatches {
    path: PathBuf,
    file: Arc<dyn FileHandle>,
    len: u64,
    cursor: BatchCursor,
    batch: Vec<u8>,
    stopped: bool,
}

impl SegmentBatches {
    /// Opens the segment file at `path` for reading. A file named as a
    /// segment (`{base_offset:020}.log`) must start at that offset.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn open(fs: &dyn FileSystem, path: &Path) -> Result<Self> {
        let file = fs.open(path, OpenMode::Existing).map_err(Error::io("open segment", path))?;
        let len = file.size().map_err(Error::io("stat segment", path))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let base = parse_file_name(&name).filter(|&(_, kind)| kind == SegmentFile::Log).map(|(b, _)| b);
        let cursor = BatchCursor::new(0, base, len, Check::Header);
        Ok(SegmentBatches { path: path.to_path_buf(), file, len, cursor, batch: Vec::new(), stopped: false })
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// The next batch; `None` at the end of the file (or after a batch that
    /// failed its check).
    ///
    /// # Errors
    /// [`Error::Corruption`] where the walk cannot go on (a damaged header,
    /// a batch passing the end of the file, a gap in the offsets);
    /// [`Error::Io`].
    pub fn next_batch(&mut self) -> Result<Option<InspectedBatch<'_>>> {
        if self.stopped {
            return Ok(None);
        }
        let position = self.cursor.position();
        // Headers first (reading each batch once more for its check), so a
        // batch that fails its CRC is still shown.
        let mut reader = ChunkReader::with_chunk(&*self.file, &self.path, self.len, 0);
        let header = match self.cursor.step(&mut reader)? {
            Step::End => return Ok(None),
            Step::Damaged(problem) => return Err(Error::corruption(&self.path, position, problem)),
            Step::Batch(b) => b.header,
        };
        if header.batch_len as usize > crate::config::MAX_BATCH_BYTES_LIMIT {
            // No on-disk length sizes an allocation past the largest batch.
            let too_long = crate::format::DecodeError {
                kind: crate::format::DecodeErrorKind::BadBatchLength(header.batch_len),
                position: 0,
            };
            return Err(Error::corruption(&self.path, position, Corruption::Batch(too_long)));
        }
        let Some(bytes) = reader.get(position, header.batch_len as usize)? else {
            let truncated =
                crate::format::DecodeError { kind: crate::format::DecodeErrorKind::Truncated, position: 0 };
            return Err(Error::corruption(&self.path, position, Corruption::Batch(truncated)));
        };
        self.batch.clear();
        self.batch.extend_from_slice(bytes);
        let check = check_batch(&self.batch).map(drop).map_err(Corruption::Batch);
        self.stopped = check.is_err();
        Ok(Some(InspectedBatch { position, header, bytes: &self.batch, check }))
    }
}
