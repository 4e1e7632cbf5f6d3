//! Scanning a segment's log file: validating batches, rebuilding the index,
//! and the one rule for what is found (`judge_damage`, shared with
//! `verify`): damage in bytes known fsynced is refused; past them, a tail
//! is cut, kept in a quarantine file unless it is a plain torn write.

use std::path::Path;

use crate::error::{Corruption, Error, Result};
use crate::format::{peek_batch_len, BatchHeader, DecodeError, DecodeErrorKind, BATCH_HEADER_BYTES};
use crate::io::FileHandle;

use super::cursor::{Batch, BatchCursor, Check, Step};
use super::index::{IndexEntry, OffsetIndex};
use super::indexing::Indexing;
use super::time_index::TimeIndex;

/// Bytes read per refill while scanning.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// Buffered positional reads over `[0, file_len)`.
pub(crate) struct ChunkReader<'a> {
    file: &'a dyn FileHandle,
    path: &'a Path,
    file_len: u64,
    buf: Vec<u8>,
    buf_pos: u64,
    chunk: usize,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(file: &'a dyn FileHandle, path: &'a Path, file_len: u64) -> Self {
        Self::with_chunk(file, path, file_len, SCAN_CHUNK_BYTES)
    }

    /// A reader that reads at least `chunk` bytes per refill.
    pub(crate) fn with_chunk(file: &'a dyn FileHandle, path: &'a Path, file_len: u64, chunk: usize) -> Self {
        ChunkReader { file, path, file_len, buf: Vec::new(), buf_pos: 0, chunk }
    }

    /// Bytes `[pos, pos + len)` as owned `Bytes`, reusing the buffer (no
    /// copy) when it holds them. `len` must not pass the end of the file.
    pub(crate) fn take(mut self, pos: u64, len: usize) -> Result<bytes::Bytes> {
        let buf_end = self.buf_pos + self.buf.len() as u64;
        let end = pos + len as u64;
        if (self.buf_pos..=buf_end).contains(&pos) && end > buf_end && end <= self.file_len {
            // Starts in the buffer: read only the missing tail after it.
            self.file
                .read_exact_into(&mut self.buf, buf_end, (end - buf_end) as usize)
                .map_err(Error::io("read log", self.path))?;
        } else if pos < self.buf_pos || end > buf_end {
            self.chunk = len;
            self.buf.clear();
            if self.get(pos, len)?.is_none() {
                // Past the end of the file: the caller's bound was wrong.
                let truncated = crate::format::DecodeError {
                    kind: crate::format::DecodeErrorKind::Truncated,
                    position: 0,
                };
                return Err(Error::corruption(self.path, pos, crate::error::Corruption::Batch(truncated)));
            }
        }
        let at = (pos - self.buf_pos) as usize;
        Ok(bytes::Bytes::from(std::mem::take(&mut self.buf)).slice(at..at + len))
    }

    /// The file length the reader was made with (nothing past it is read).
    pub(crate) fn len(&self) -> u64 {
        self.file_len
    }

    /// Bytes `[pos, pos + len)`, or `None` when they pass the end of the file.
    pub(crate) fn get(&mut self, pos: u64, len: usize) -> Result<Option<&[u8]>> {
        let Some(end) = pos.checked_add(len as u64).filter(|&e| e <= self.file_len) else {
            return Ok(None);
        };
        let buf_end = self.buf_pos + self.buf.len() as u64;
        if pos < self.buf_pos || end > buf_end {
            // `len` is bounded by the file length checked above.
            let want = (len.max(self.chunk) as u64).min(self.file_len - pos) as usize;
            self.buf.clear();
            if let Err(e) = self.file.read_exact_into(&mut self.buf, pos, want) {
                self.buf.clear(); // holds nothing valid
                return Err(Error::io("read log", self.path)(e));
            }
            self.buf_pos = pos;
        }
        let at = (pos - self.buf_pos) as usize;
        Ok(Some(&self.buf[at..at + len]))
    }
}

/// Where a scan starts: a batch boundary known to hold `offset`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanStart {
    pub position: u64,
    pub offset: u64,
    /// What is known fsynced.
    pub vouched: Vouched,
    /// The indexing rule's state at `position`.
    pub indexing: Indexing,
    /// The offset-index entry the scan starts at, if it starts at one:
    /// its batch must end where the entry says.
    pub entry_last_offset: Option<u64>,
}

/// What is known fsynced in a segment, and so what recovery may cut.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Vouched {
    /// The whole segment was fsynced (sealed, or cleanly closed), holding
    /// records up to `end_offset` when that is known. Damage before it is
    /// refused; invalid bytes after the batch that reaches it hold no
    /// record of the segment and are cut into a quarantine file.
    Durable {
        /// The offset the segment's records end at, if known.
        end_offset: Option<u64>,
    },
    /// After a crash: the first `below` bytes (ending at `offset`) were
    /// fsynced, and damage there is refused. At or past them the first
    /// invalid batch is a crash's torn tail: cut, into a quarantine file
    /// when valid batches follow it.
    Crash {
        /// Bytes known fsynced.
        below: u64,
        /// The offset they end at.
        offset: u64,
    },
    /// After a crash, with how far the segment was fsynced unknown: the
    /// first `below` bytes are (the recovery point), and no damage
    /// anywhere may be cut: recovery cannot prove a tail unacknowledged.
    Unknown {
        /// Bytes known fsynced.
        below: u64,
        /// The offset they end at, if any.
        offset: Option<u64>,
    },
}

/// What to do with damage past the vouched bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Past {
    /// A crash's torn tail.
    CrashTail,
    /// Bytes after the segment's last record.
    Trailing,
}

impl Vouched {
    /// Whether damage at `pos`, where the log continues at `next_offset`,
    /// lies past the vouched bytes, and how; `None`: refuse.
    fn past(self, pos: u64, next_offset: u64) -> Option<Past> {
        match self {
            Vouched::Durable { end_offset: Some(end) } if next_offset >= end => Some(Past::Trailing),
            Vouched::Crash { below, .. } if pos >= below => Some(Past::CrashTail),
            _ => None,
        }
    }

    /// Whether a file ending at `pos` (at offset `next_offset`) ends
    /// inside the vouched bytes.
    fn ends_early(self, pos: u64, next_offset: u64) -> bool {
        match self {
            Vouched::Durable { end_offset } => end_offset.is_some_and(|end| next_offset < end),
            Vouched::Crash { below, .. } | Vouched::Unknown { below, .. } => pos < below,
        }
    }

    /// The offset the fsynced records end at, when known, for damage at `pos`.
    fn synced_end_offset(self, pos: u64) -> Option<u64> {
        match self {
            Vouched::Durable { end_offset } => end_offset,
            Vouched::Crash { below, offset } if pos < below => Some(offset),
            Vouched::Unknown { below, offset } if pos < below => offset,
            _ => None,
        }
    }
}

/// Damage past the vouched bytes, to be cut.
#[derive(Debug)]
pub(crate) struct Tear {
    /// Whether the bytes go to a quarantine file before the cut: valid
    /// batches follow the damage (so it may not be a plain torn write), or
    /// they trail a durable segment's last record (no crash wrote them).
    pub quarantine: bool,
    /// The offset after the valid batches found past the damage, if any.
    pub end_offset: Option<u64>,
}

/// What a scan found.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Bytes of valid batches from the start of the file.
    pub valid_bytes: u64,
    /// Offset after the last valid batch.
    pub next_offset: u64,
    /// The indexing rule's state after the valid batches.
    pub indexing: Indexing,
    /// Set when invalid bytes follow `valid_bytes` past the vouched part: a
    /// crash's tail, to cut.
    pub torn: Option<Tear>,
}

/// Validates every batch from `start` to the end of the file, adding index
/// entries every `index_interval_bytes`.
///
/// Fails with [`Error::Corruption`] ([`Corruption::SyncedData`]) when an
/// invalid batch lies in the vouched part (see [`Vouched`]) or the file
/// ends inside it: that is damage to fsynced data, not a torn write. Past
/// the vouched part, a crash may have persisted later pages and not earlier
/// ones, so the first invalid batch ends the log there.
pub(crate) fn scan(
    file: &dyn FileHandle,
    path: &Path,
    file_len: u64,
    start: ScanStart,
    index: &mut OffsetIndex,
    time_index: &mut TimeIndex,
    index_interval_bytes: u64,
) -> Result<ScanEnd> {
    let mut reader = ChunkReader::new(file, path, file_len);
    let mut cursor = match start.entry_last_offset {
        Some(last) => {
            let entry = IndexEntry { offset: last, position: start.position };
            BatchCursor::from_entry(entry, start.offset, file_len, Check::Whole)
        }
        None => BatchCursor::new(start.position, Some(start.offset), file_len, Check::Whole),
    };
    let mut indexing = start.indexing;
    let vouched = start.vouched;
    // Bounded: every step advances by at least a header, or ends the scan.
    loop {
        let (pos, next_offset) = (cursor.position(), cursor.next_offset().unwrap_or(start.offset));
        match cursor.step(&mut reader)? {
            Step::Batch(Batch { position, header: h }) => {
                // A scan resumed at an index entry starts with nothing
                // written since it, so that entry's batch gets none again.
                if let Some(e) = indexing.on_batch(position, &h, index_interval_bytes) {
                    index.append(e.offset.offset, e.offset.position);
                    if let Some(t) = e.time {
                        time_index.append(t.timestamp_ms, t.offset);
                    }
                }
            }
            Step::Damaged(problem) => {
                let torn = Some(judge_damage(&mut reader, pos, next_offset, problem, vouched)?);
                return Ok(ScanEnd { valid_bytes: pos, next_offset, indexing, torn });
            }
            Step::End => {
                judge_end(path, pos, next_offset, vouched)?;
                return Ok(ScanEnd { valid_bytes: pos, next_offset, indexing, torn: None });
            }
        }
    }
}

/// The one rule for damage found at `pos` (where the log continues at
/// `next_offset`), shared by recovery and `verify`: refused
/// ([`Corruption::SyncedData`]) inside the vouched bytes, else a tail to
/// cut, kept in a quarantine file unless it is a plain torn write.
///
/// # Errors
/// The refusal; [`Error::Io`].
pub(crate) fn judge_damage(
    reader: &mut ChunkReader<'_>,
    pos: u64,
    next_offset: u64,
    problem: Corruption,
    vouched: Vouched,
) -> Result<Tear> {
    let Some(past) = vouched.past(pos, next_offset) else {
        return Err(refused(reader.path, pos, problem, next_offset, vouched));
    };
    // The offset after the valid batches past the damage, if any. (The
    // search may give up on a hostile file without proof of a valid
    // batch: then nothing is known past the damage.)
    let valid_after = match find_valid_batch_after(reader, pos, reader.file_len)? {
        Some(q) => Some(valid_run_end(reader, q)?.unwrap_or(next_offset)),
        None => None,
    };
    let quarantine = !crate::mutation::on(crate::mutation::Mutation::CutAtFirstBadBatch)
        && (past == Past::Trailing || valid_after.is_some() || !plain_torn_write(reader, pos, &problem)?);
    Ok(Tear { quarantine, end_offset: valid_after })
}

/// The rule for a file whose batches are all valid up to its end at `pos`:
/// refused if that is inside the vouched bytes (fsynced bytes are gone).
///
/// # Errors
/// The refusal.
pub(crate) fn judge_end(path: &Path, pos: u64, next_offset: u64, vouched: Vouched) -> Result<()> {
    if vouched.ends_early(pos, next_offset) {
        let problem = Corruption::Batch(DecodeError { kind: DecodeErrorKind::Truncated, position: 0 });
        return Err(refused(path, pos, problem, next_offset, vouched));
    }
    Ok(())
}

/// Whether the invalid bytes from `pos` to the end of the file look like
/// what a crash leaves of an append: zeros (the length reached the disk,
/// the data did not), or a prefix of a batch (the file ends inside it, and
/// the bytes are not a whole batch with a damaged length field). Anything
/// else (a whole batch failing its CRC, a bad header) may be bit rot in
/// acknowledged bytes the extent had not caught up with, so it is kept.
fn plain_torn_write(reader: &mut ChunkReader<'_>, pos: u64, problem: &Corruption) -> Result<bool> {
    /// Past this a tail is not read whole to look at it: kept.
    const LOOK_BYTES_MAX: u64 = 16 << 20;
    let len = reader.file_len - pos;
    if len > LOOK_BYTES_MAX {
        return Ok(false);
    }
    let Some(tail) = reader.get(pos, len as usize)? else { return Ok(false) };
    if tail.iter().all(|&b| b == 0) {
        return Ok(true);
    }
    let truncated = matches!(problem, Corruption::Batch(e) if e.kind == DecodeErrorKind::Truncated);
    Ok(truncated && !crate::format::batch::whole_but_for_length(tail))
}

fn refused(path: &Path, pos: u64, problem: Corruption, first_offset: u64, vouched: Vouched) -> Error {
    let synced_end_offset = vouched.synced_end_offset(pos);
    let detail = Corruption::SyncedData { problem: Box::new(problem), first_offset, synced_end_offset };
    Error::corruption(path, pos, detail)
}

/// The offset after the run of valid, contiguous batches starting at `pos`
/// (`None` if none starts there). Bounded by the file length.
fn valid_run_end(reader: &mut ChunkReader<'_>, pos: u64) -> Result<Option<u64>> {
    let mut cursor = BatchCursor::new(pos, None, reader.len(), Check::Whole);
    while let Step::Batch(_) = cursor.step(reader)? {}
    Ok(cursor.next_offset())
}

/// Reads and fully checks the batch at `pos`. The outer `Result` is I/O, the
/// inner one the batch's validity (a batch passing the end of the file is
/// `Truncated`).
pub(crate) fn read_batch(reader: &mut ChunkReader<'_>, pos: u64) -> Result<Result<BatchHeader, DecodeError>> {
    let mut one = BatchCursor::new(pos, None, reader.len(), Check::Whole);
    Ok(match one.step(reader)? {
        Step::Batch(b) => Ok(b.header),
        Step::Damaged(Corruption::Batch(e)) => Err(e),
        // No expected offset: a step finds the batch or damage to it.
        Step::End | Step::Damaged(_) => Err(DecodeError { kind: DecodeErrorKind::Truncated, position: 0 }),
    })
}

/// Looks for any CRC-valid batch starting after `pos`. Conservative: when the
/// search budget runs out, it answers as if one were found, so damage is
/// reported rather than truncated away.
fn find_valid_batch_after(reader: &mut ChunkReader<'_>, pos: u64, file_len: u64) -> Result<Option<u64>> {
    // CRC work allowed for the search: enough for any real file, bounded for
    // hostile ones (a file full of plausible headers would be quadratic).
    let mut budget = file_len.saturating_mul(8).max(64 << 20);
    let magic_at = crate::format::batch::MAGIC_AT;
    let mut q = pos + 1;
    while q + BATCH_HEADER_BYTES as u64 <= file_len {
        let Some(head) = reader.get(q, BATCH_HEADER_BYTES)? else { break };
        // Cheap filters before a CRC: magic byte and a header that parses.
        if head[magic_at] == crate::format::batch::MAGIC && BatchHeader::parse(head).is_ok() {
            let len = u64::from(peek_batch_len(head).unwrap_or(0));
            if q + len <= file_len {
                if budget < len {
                    return Ok(Some(q));
                }
                budget -= len;
                if let Ok(Ok(_)) = read_batch(reader, q) {
                    return Ok(Some(q));
                }
            }
        }
        q += 1;
    }
    Ok(None)
}
