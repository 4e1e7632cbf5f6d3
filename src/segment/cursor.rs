//! The one walk over a segment's batches. From a batch boundary, each step
//! reads the next batch (its header, or the whole batch checked), checks
//! that it starts at the offset the previous one ended at (base offsets
//! sit outside the CRC: a damaged one would misplace its records), and
//! advances. Recovery's scan, `verify`, reads, offset and timestamp
//! lookups, truncation, the cleaner and swap recovery all walk with it.

use crate::error::{Corruption, Result};
use crate::format::batch::{check_batch, check_batch_crc};
use crate::format::{peek_batch_len, BatchHeader, DecodeError, DecodeErrorKind, BATCH_HEADER_BYTES};

use super::index::{IndexEntry, OffsetIndex};
use super::scan::ChunkReader;

/// Bytes a cursor walks: a segment file through a [`ChunkReader`], or
/// batches already read into memory.
pub(crate) trait BatchSource {
    /// Bytes `[pos, pos + len)`, or `None` when they pass the end.
    fn bytes_at(&mut self, pos: u64, len: usize) -> Result<Option<&[u8]>>;
}

impl BatchSource for ChunkReader<'_> {
    fn bytes_at(&mut self, pos: u64, len: usize) -> Result<Option<&[u8]>> {
        self.get(pos, len)
    }
}

impl BatchSource for &[u8] {
    fn bytes_at(&mut self, pos: u64, len: usize) -> Result<Option<&[u8]>> {
        let start = usize::try_from(pos).unwrap_or(usize::MAX);
        Ok(self.get(start..).and_then(|rest| rest.get(..len)))
    }
}

/// How much of each batch a step checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// The header only (lookups: the data is checked when it is read).
    Header,
    /// The header and the CRC (reads).
    Crc,
    /// The header, the CRC and every record (recovery, verify, cleaner).
    Whole,
}

/// One batch the cursor stepped over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batch {
    /// Its byte position.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
}

/// What a step found.
#[derive(Debug)]
pub(crate) enum Step {
    /// A batch that passed its checks; the cursor is past it.
    Batch(Batch),
    /// The end of the walk (the cursor's bound).
    End,
    /// Damage at the cursor's position (it does not move).
    Damaged(Corruption),
}

/// A walk over batches (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchCursor {
    position: u64,
    /// The offset the next batch must start at (`None`: not known, for the
    /// first batch only).
    next_offset: Option<u64>,
    /// The last offset the first batch must end at (a walk from an index
    /// entry, which names its batch's last offset).
    first_last_offset: Option<u64>,
    /// Bytes past this are not walked (a reader's snapshot of the size).
    end: u64,
    check: Check,
}

impl BatchCursor {
    /// A walk from `position`, where a batch starting at `next_offset`
    /// (if known) must be, up to byte `end`.
    pub(crate) fn new(position: u64, next_offset: Option<u64>, end: u64, check: Check) -> Self {
        BatchCursor { position, next_offset, first_last_offset: None, end, check }
    }

    /// A walk from an offset-index `entry` of the segment at `base_offset`:
    /// the batch there ends at the entry's offset, or for the segment
    /// start (position 0) begins at the base offset.
    pub(crate) fn from_entry(entry: IndexEntry, base_offset: u64, end: u64, check: Check) -> Self {
        if OffsetIndex::is_segment_start(entry) {
            return BatchCursor::new(0, Some(base_offset), end, check);
        }
        BatchCursor {
            position: entry.position,
            next_offset: None,
            first_last_offset: Some(entry.offset),
            end,
            check,
        }
    }

    /// Where the next batch starts.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// The offset the next batch must start at, when known.
    pub(crate) fn next_offset(&self) -> Option<u64> {
        self.next_offset
    }

    /// The next batch, the end, or damage. Errors are I/O only.
    pub(crate) fn step(&mut self, source: &mut impl BatchSource) -> Result<Step> {
        if self.position >= self.end {
            return Ok(Step::End);
        }
        let truncated = || {
            Step::Damaged(Corruption::Batch(DecodeError { kind: DecodeErrorKind::Truncated, position: 0 }))
        };
        let remaining = self.end - self.position;
        let header = match self.check {
            Check::Header => {
                let Some(head) = source.bytes_at(self.position, BATCH_HEADER_BYTES)? else {
                    return Ok(truncated());
                };
                BatchHeader::parse(head)
            }
            Check::Crc | Check::Whole => {
                let head_len = BATCH_HEADER_BYTES.min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let Some(head) = source.bytes_at(self.position, head_len)? else {
                    return Ok(truncated());
                };
                let len = peek_batch_len(head).unwrap_or(0);
                // A batch that fits is checked whole below (which parses its
                // header); only one that does not is parsed here, so a
                // damaged header is told from a batch cut by the end.
                if u64::from(len) > remaining || (len as usize) < BATCH_HEADER_BYTES {
                    return Ok(match BatchHeader::parse(head) {
                        Err(e) => Step::Damaged(Corruption::Batch(e)),
                        // The header is whole but the batch runs past the end.
                        Ok(_) => truncated(),
                    });
                }
                let Some(batch) = source.bytes_at(self.position, len as usize)? else {
                    return Ok(truncated());
                };
                if self.check == Check::Crc {
                    check_batch_crc(batch)
                } else {
                    check_batch(batch)
                }
            }
        };
        let header = match header {
            Ok(h) => h,
            Err(e) => return Ok(Step::Damaged(Corruption::Batch(e))),
        };
        if let Some(expected) = self.next_offset.filter(|&e| e != header.base_offset) {
            return Ok(Step::Damaged(Corruption::OffsetMismatch { expected, found: header.base_offset }));
        }
        if let Some(expected) = self.first_last_offset.take().filter(|&e| e != header.last_offset()) {
            self.first_last_offset = Some(expected);
            return Ok(Step::Damaged(Corruption::OffsetMismatch { expected, found: header.last_offset() }));
        }
        let batch = Batch { position: self.position, header };
        self.position += u64::from(header.batch_len);
        self.next_offset = Some(header.next_offset());
        Ok(Step::Batch(batch))
    }

    /// [`BatchCursor::step`] with damage as [`crate::Error::Corruption`]
    /// at its position in `path`: `None` at the end.
    pub(crate) fn next_batch(
        &mut self,
        source: &mut impl BatchSource,
        path: &std::path::Path,
    ) -> Result<Option<Batch>> {
        match self.step(source)? {
            Step::Batch(b) => Ok(Some(b)),
            Step::End => Ok(None),
            Step::Damaged(problem) => Err(crate::Error::corruption(path, self.position, problem)),
        }
    }
}
