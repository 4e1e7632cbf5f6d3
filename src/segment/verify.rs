//! Read-only verification of one segment's files: every batch whole and
//! CRC-valid, offsets continuous from the segment's base offset, every
//! offset-index entry naming the batch at its position, the time index's
//! entries increasing and each naming the largest timestamp up to the end
//! of a batch. Nothing is repaired or written (unlike opening a log, which
//! cuts torn tails and rebuilds indexes); damage in the log is judged by
//! the rule recovery applies (`scan::judge_damage`), so `verify` says what
//! the next open will do.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::{read_small_file, FileSystem, OpenMode};

use super::cursor::{Batch, BatchCursor, Check, Step};
use super::index::IndexEntry;
use super::index_check::{offset_entry_problem, stored_entries, time_entry_problem, BatchSummary};
use super::log_segment::Recovery;
use super::scan::{judge_damage, judge_end, ChunkReader};
use super::sparse_index::SparseEntry;
use super::time_index::TimeEntry;
use super::{index_file_name, log_file_name, time_index_file_name};

/// Index files larger than this are reported rather than read.
const INDEX_FILE_MAX_BYTES: u64 = 1 << 30;

/// One thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file it is in.
    pub path: PathBuf,
    /// Byte position in that file.
    pub position: u64,
    /// What is wrong.
    pub detail: String,
}

/// A tail the next open will cut: past the synced extent after an unclean
/// stop (a crash's torn write), or bytes after a durable segment's last
/// record. Not damage to acknowledged data unless `quarantine` says the
/// bytes are kept for a look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCut {
    /// The segment's log file.
    pub path: PathBuf,
    /// Where the cut begins.
    pub position: u64,
    /// Bytes cut.
    pub bytes: u64,
    /// The first offset cut.
    pub first_offset: u64,
    /// Whether the open moves the bytes to a quarantine file first: they
    /// are not a plain torn write (valid batches follow the damage, or a
    /// whole batch fails its CRC), so they may hold acknowledged records.
    pub quarantine: bool,
}

/// What verifying a segment found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentCheck {
    /// Batches checked.
    pub batches: u64,
    /// Records in them.
    pub records: u64,
    /// Bytes of the log file.
    pub bytes: u64,
    /// The offset after the last valid batch (the base offset if none).
    pub next_offset: u64,
    /// Whether the log was read to its end without damage (if not,
    /// `next_offset` is where the damage begins, not the segment's end).
    pub complete: bool,
    /// Problems found (none: the segment is sound): damage the next open
    /// refuses, and index damage.
    pub problems: Vec<Problem>,
    /// The tail the next open cuts, if any.
    pub tail: Option<TailCut>,
}

/// Checks the segment at `base_offset` in `dir`; `progress` is called with
/// log bytes checked as it goes. Stops reading the log at the first bad
/// batch (nothing after it can be placed) and judges it by the rule
/// recovery applies under `recovery` (see [`Recovery`]): a tail the next
/// open cuts, or damage it refuses. Still checks the indexes against the
/// batches before it.
///
/// # Errors
/// [`Error::Io`] when a file cannot be read at all.
pub fn verify_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    base_offset: u64,
    recovery: Recovery,
    progress: &mut dyn FnMut(u64),
) -> Result<SegmentCheck> {
    let log_path = dir.join(log_file_name(base_offset));
    let log = fs.open(&log_path, OpenMode::Existing).map_err(Error::io("open segment", &log_path))?;
    let len = log.size().map_err(Error::io("stat segment", &log_path))?;
    let mut reader = ChunkReader::new(&*log, &log_path, len);
    let mut check = SegmentCheck { bytes: len, next_offset: base_offset, ..SegmentCheck::default() };
    let mut batches: Vec<BatchSummary> = Vec::new();
    let mut max_ts = -1i64;
    let mut cursor = BatchCursor::new(0, Some(base_offset), len, Check::Whole);
    // Bounded: each step advances by one batch, or ends the walk.
    let damage = loop {
        match cursor.step(&mut reader)? {
            Step::Batch(Batch { position, header }) => {
                max_ts = max_ts.max(header.max_timestamp_ms);
                batches.push(BatchSummary {
                    position,
                    base_offset: header.base_offset,
                    last_offset: header.last_offset(),
                    max_timestamp_ms: header.max_timestamp_ms,
                    largest_so_far_ms: max_ts,
                });
                check.batches += 1;
                check.records += u64::from(header.record_count);
                check.next_offset = header.next_offset();
                progress(u64::from(header.batch_len));
            }
            Step::End => break None,
            Step::Damaged(problem) => break Some(problem),
        }
    };
    let pos = cursor.position();
    // The same rule as recovery: refused, or a tail to cut.
    let vouched = super::recover::vouched(recovery, len);
    let judged = match damage {
        Some(problem) => judge_damage(&mut reader, pos, check.next_offset, problem, vouched).map(Some),
        None => judge_end(&log_path, pos, check.next_offset, vouched).map(|()| None),
    };
    match judged {
        Ok(Some(tear)) => {
            let (first_offset, quarantine) = (check.next_offset, tear.quarantine);
            check.tail = Some(TailCut {
                path: log_path.clone(),
                position: pos,
                bytes: len - pos,
                first_offset,
                quarantine,
            });
        }
        Ok(None) => {}
        Err(Error::Corruption { path, position, detail }) => {
            check.problems.push(Problem { path, position, detail: detail.to_string() });
        }
        Err(e) => return Err(e),
    }
    // Past damage in the log nothing can be placed: index entries there
    // are not checked (the damage is already reported).
    let damaged = pos < len;
    check.complete = !damaged;
    let (end_pos, end_offset) = if damaged { (pos, check.next_offset) } else { (u64::MAX, u64::MAX) };
    let mut index_problems = Vec::new();
    check_offset_index(fs, dir, base_offset, &batches, end_pos, &mut index_problems)?;
    check_time_index(fs, dir, base_offset, &batches, end_offset, &mut index_problems)?;
    check.problems.extend(index_problems);
    Ok(check)
}

/// Reads an index file, or `None` (reported) when it is missing or huge.
fn read_index(fs: &dyn FileSystem, path: &Path, problems: &mut Vec<Problem>) -> Result<Option<Vec<u8>>> {
    if !fs.exists(path).map_err(Error::io("stat index", path))? {
        problems.push(Problem { path: path.to_path_buf(), position: 0, detail: "missing".into() });
        return Ok(None);
    }
    match read_small_file(fs, path, INDEX_FILE_MAX_BYTES) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            problems.push(Problem { path: path.to_path_buf(), position: 0, detail: e.to_string() });
            Ok(None)
        }
        Err(e) => Err(Error::io("read index", path)(e)),
    }
}

fn check_offset_index(
    fs: &dyn FileSystem,
    dir: &Path,
    base_offset: u64,
    batches: &[BatchSummary],
    end_pos: u64,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let path = dir.join(index_file_name(base_offset));
    let Some(bytes) = read_index(fs, &path, problems)? else { return Ok(()) };
    let mut previous: Option<IndexEntry> = None;
    for (at, e) in stored_entries::<IndexEntry>(&bytes, base_offset) {
        let bad = |detail: String| Problem { path: path.clone(), position: at, detail };
        if previous.is_some_and(|p| !e.follows(p)) {
            problems.push(bad(format!("entry ({}, {}) not above the one before", e.offset, e.position)));
            return Ok(());
        }
        previous = Some(e);
        if e.position >= end_pos {
            break;
        }
        problems.extend(offset_entry_problem(batches, e).map(bad));
    }
    Ok(())
}

fn check_time_index(
    fs: &dyn FileSystem,
    dir: &Path,
    base_offset: u64,
    batches: &[BatchSummary],
    end_offset: u64,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let path = dir.join(time_index_file_name(base_offset));
    let Some(bytes) = read_index(fs, &path, problems)? else { return Ok(()) };
    let mut previous: Option<TimeEntry> = None;
    for (at, e) in stored_entries::<TimeEntry>(&bytes, base_offset) {
        let bad = |detail: String| Problem { path: path.clone(), position: at, detail };
        if previous.is_some_and(|p| !e.follows(p)) {
            problems.push(bad(format!("entry ({}, {}) not above the one before", e.timestamp_ms, e.offset)));
            return Ok(());
        }
        previous = Some(e);
        if e.offset >= end_offset {
            break;
        }
        problems.extend(time_entry_problem(batches, e).map(bad));
    }
    Ok(())
}
