//! Read-only verification of a partition directory: each segment checked
//! (see `segment/verify.rs`), and the segments checked against each other
//! (each begins where the one before ends).

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::verify::{verify_segment, Problem, TailCut};

use super::extent::{self, Loaded, SYNCED_EXTENT_FILE};
use super::points::segment_recovery;
use crate::segment::{log_file_name, parse_file_name, SegmentFile};

/// What verifying a partition directory found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Batches checked.
    pub batches: u64,
    /// Records in them.
    pub records: u64,
    /// Bytes of log files.
    pub bytes: u64,
    /// Problems found, in file order (none: the partition is sound):
    /// damage the next open refuses to cut, damaged indexes, a damaged
    /// synced-extent file.
    pub problems: Vec<Problem>,
    /// Tails the next open will cut (a crash's torn writes, past the
    /// synced extent), each saying whether its bytes are kept in a
    /// quarantine file (then they may hold acknowledged records).
    pub tails: Vec<TailCut>,
}

impl VerifyReport {
    /// Adds `other`'s counts and problems to this one.
    pub fn absorb(&mut self, other: VerifyReport) {
        self.segments += other.segments;
        self.batches += other.batches;
        self.records += other.records;
        self.bytes += other.bytes;
        self.problems.extend(other.problems);
        self.tails.extend(other.tails);
    }

    /// Whether there is anything an operator should look at: a problem, or
    /// a tail the next open keeps in quarantine. A plain torn tail is not.
    pub fn needs_attention(&self) -> bool {
        !self.problems.is_empty() || self.tails.iter().any(|t| t.quarantine)
    }
}

/// Total bytes of the `.log` files in `dir` (to size a progress bar).
///
/// # Errors
/// [`Error::Io`] when `dir` cannot be listed.
pub fn log_bytes(fs: &dyn FileSystem, dir: &Path) -> Result<u64> {
    let mut total = 0;
    for base in segment_bases(fs, dir)? {
        let path = dir.join(log_file_name(base));
        let file = fs.open(&path, crate::io::OpenMode::Existing).map_err(Error::io("open segment", &path))?;
        total += file.size().map_err(Error::io("stat segment", &path))?;
    }
    Ok(total)
}

/// Base offsets of the `.log` files in `dir`, sorted.
pub(super) fn segment_bases(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
    let names = fs.list_dir(dir).map_err(Error::io("list partition", dir))?;
    let mut bases: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_file_name(n))
        .filter(|&(_, kind)| kind == SegmentFile::Log)
        .map(|(base, _)| base)
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Verifies every segment of the partition in `dir` without changing
/// anything; `progress` is called with log bytes checked.
///
/// # Errors
/// [`Error::Io`] when a file cannot be read at all (damage is reported in
/// [`VerifyReport::problems`], not as an error).
pub fn verify_partition(
    fs: &dyn FileSystem,
    dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport> {
    verify_from(fs, dir, super::checkpoint::read(fs, dir), progress)
}

/// [`verify_partition`] for partition `name` of the store in `data_dir`,
/// judged from the recovery point the store's checkpoint table holds for
/// it (or, without a row, its own file), as the store's next open would.
///
/// # Errors
/// As [`verify_partition`].
pub fn verify_store_partition(
    fs: &dyn FileSystem,
    data_dir: &Path,
    name: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport> {
    let dir = data_dir.join(name);
    let rows = super::table::read(fs, data_dir).unwrap_or_default();
    let recovery_point = match rows.get(name) {
        Some(row) => row.recovery_point,
        None => super::checkpoint::read(fs, &dir),
    };
    verify_from(fs, &dir, recovery_point, progress)
}

fn verify_from(
    fs: &dyn FileSystem,
    dir: &Path,
    recovery_point: Option<super::checkpoint::LogPoint>,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut expected: Option<u64> = None;
    // Judged as the next open would: clean or not, from the same points.
    let clean = super::open::closed_cleanly(fs, dir)?;
    let synced = extent::read(fs, dir)?;
    if synced == Loaded::Damaged {
        let detail =
            "damaged: how far the log was fsynced is unknown, so the next open refuses any damage".into();
        report.problems.push(Problem { path: dir.join(SYNCED_EXTENT_FILE), position: 0, detail });
    }
    let bases = segment_bases(fs, dir)?;
    for (i, &base) in bases.iter().enumerate() {
        if let Some(next) = expected.filter(|&n| n != base) {
            report.problems.push(Problem {
                path: dir.join(log_file_name(base)),
                position: 0,
                detail: format!("segment starts at offset {base}, but the one before ends at {next}"),
            });
        }
        let recovery = segment_recovery(&bases, i, clean, recovery_point, synced);
        let check = verify_segment(fs, dir, base, recovery, progress)?;
        report.segments += 1;
        report.batches += check.batches;
        report.records += check.records;
        report.bytes += check.bytes;
        // After damage the segment's real end is unknown: no continuity
        // check against the next one.
        expected = check.complete.then_some(check.next_offset);
        report.problems.extend(check.problems);
        report.tails.extend(check.tail);
    }
    Ok(report)
}
