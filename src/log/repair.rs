//! Explicit repair: cutting a partition at damage that recovery refuses to
//! cut on its own (damage to fsynced, possibly acknowledged, records).
//!
//! Each pass opens the log as recovery would. Where it refuses with
//! [`Error::Corruption`] in a segment's log file, the bytes from the damage
//! on (and every later segment, whole) go to quarantine files, and the log
//! is cut there. Passes repeat until the log opens.
//!
//! ORDER, for a cut at `position` of segment `base`:
//! 1. the quarantine files are written and fsynced (`segment/quarantine.rs`);
//! 2. the synced extent comes down to the cut, so no crash from here on
//!    leaves an extent that vouches for cut bytes (a recovery point past
//!    the cut is ignored at open, as after any truncation);
//! 3. later segments are removed, newest first (a prefix of the log stays);
//! 4. the segment is cut and fsynced, and the clean-shutdown marker
//!    removed, so the next open checks the cut segment and its indexes
//!    after the crash-recovery rules; the directory is fsynced.
//!
//! A crash anywhere leaves either the damage (the next repair cuts it
//! again) or the cut log.

use std::path::Path;
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::{Corruption, Error, Result};
use crate::io::{FileSystem, OpenMode, SharedFs};
use crate::segment::{
    index_file_name, log_file_name, parse_file_name, quarantine, time_index_file_name, Cut, Quarantine,
    SegmentFile,
};

use super::checkpoint::LogPoint;
use super::extent::ExtentFile;
use super::open::CLEAN_SHUTDOWN_FILE;
use super::partition::PartitionLog;
use super::verify::segment_bases;

/// The operator's statement that the records a repair cuts may be lost:
/// [`PartitionLog::repair`] takes it so that no call cuts acknowledged
/// records by accident (`annals repair --accept-data-loss`).
#[derive(Clone, Copy, Debug)]
pub struct AcceptDataLoss;

/// What a repair removed from the log.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// The damage each pass cut at (what open refused), in order.
    pub damage: Vec<Error>,
    /// Where the cut bytes were kept; each names the offsets it holds.
    pub quarantined: Vec<Quarantine>,
    /// The log end offset after the repair.
    pub log_end_offset: u64,
}

impl PartitionLog {
    /// Cuts the partition in `dir` at every place where opening it would
    /// refuse damage, keeping the cut bytes in quarantine files, until it
    /// opens; leaves it cleanly closed. A log that opens as it is is left
    /// alone (an empty report).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annals::{AcceptDataLoss, LogConfig, PartitionLog, Record};
    /// let dir = tempfile::tempdir()?;
    /// let log = PartitionLog::open(dir.path(), LogConfig::default())?;
    /// log.append(&[Record::new("a")])?;
    /// log.close()?;
    /// drop(log);
    /// let fs = Arc::new(annals::io::StdFileSystem);
    /// let report = PartitionLog::repair(fs, dir.path(), LogConfig::default(), AcceptDataLoss)?;
    /// assert!(report.quarantined.is_empty(), "nothing to repair");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Whatever opening the log fails with other than damage in a segment
    /// file; [`Error::Io`].
    pub fn repair(
        fs: SharedFs,
        dir: impl AsRef<Path>,
        config: LogConfig,
        _: AcceptDataLoss,
    ) -> Result<RepairReport> {
        let (lock, store) = super::open::lock_log_dir(&*fs, dir.as_ref())?;
        // A store's partition keeps its checkpoints in the store's table
        // (the store is closed: its lock is held), written once repaired.
        let table = store.map(|store| Arc::new(super::CheckpointTable::open(fs.clone(), &store)));
        let report = Self::repair_locked(fs, dir, config, lock, table.clone())?;
        if let Some(table) = table {
            table.persist()?;
        }
        Ok(report)
    }

    /// [`PartitionLog::repair`] under a lock the caller holds for `dir`
    /// (a store's repair holds the store's), with the checkpoints in
    /// `table` when it is a store's partition (the caller persists it).
    pub(crate) fn repair_locked(
        fs: SharedFs,
        dir: impl AsRef<Path>,
        config: LogConfig,
        dir_lock: Arc<dyn crate::io::FileLock>,
        table: Option<Arc<super::CheckpointTable>>,
    ) -> Result<RepairReport> {
        config.validate()?;
        let dir = dir.as_ref();
        // `dir_lock` is held across every pass: no log handle opens the
        // directory while repair cuts its files.
        let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
        let mut report = RepairReport::default();
        // Bounded: each pass removes bytes or lowers the synced extent, and
        // there are at most two passes per segment.
        let passes = 2 * segment_bases(&*fs, dir)?.len() + 2;
        let sink =
            table.map_or(super::sink::CheckpointSink::Own, |t| super::sink::CheckpointSink::table(t, dir));
        for _ in 0..passes {
            let (path, position, (first_offset, end_offset)) = match PartitionLog::open_locked(
                fs.clone(),
                clock.clone(),
                dir.to_path_buf(),
                config.clone(),
                (dir_lock.clone(), sink.clone()),
                true,
            ) {
                Ok(log) => {
                    report.log_end_offset = log.log_end_offset();
                    log.close()?;
                    return Ok(report);
                }
                Err(e @ Error::Corruption { .. }) => {
                    let Error::Corruption { path, position, detail } = &e else { unreachable!() };
                    let target = (path.clone(), *position, offsets(detail));
                    report.damage.push(e);
                    target
                }
                Err(e) => return Err(e),
            };
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let Some((base, SegmentFile::Log)) = parse_file_name(&name) else {
                return Err(report.damage.pop().expect("just pushed"));
            };
            if path.parent() != Some(dir) {
                return Err(report.damage.pop().expect("just pushed"));
            }
            let first = first_offset.unwrap_or(base);
            cut_at(&*fs, dir, base, position, (first, end_offset.unwrap_or(first)), &mut report)?;
        }
        Err(report.damage.pop().unwrap_or(Error::Closed))
    }
}

/// The first offset the damage makes unreadable, and the offset the
/// records known in the cut bytes end at, when the error says.
fn offsets(detail: &Corruption) -> (Option<u64>, Option<u64>) {
    match detail {
        Corruption::SyncedData { first_offset, synced_end_offset, .. } => {
            (Some(*first_offset), *synced_end_offset)
        }
        Corruption::OffsetMismatch { expected, .. } => (Some(*expected), None),
        Corruption::SegmentBoundary { next_offset, next_base_offset } => {
            (Some(*next_offset), Some(*next_base_offset))
        }
        _ => (None, None),
    }
}

/// Cuts segment `base` at `position` and removes every later segment,
/// keeping all the cut bytes in quarantine files (see the module's ORDER).
fn cut_at(
    fs: &dyn FileSystem,
    dir: &Path,
    base: u64,
    position: u64,
    (first_offset, end_offset): (u64, u64),
    report: &mut RepairReport,
) -> Result<()> {
    let bases = segment_bases(fs, dir)?;
    let later: Vec<u64> = bases.iter().copied().filter(|&b| b > base).collect();
    let mut doomed = vec![(base, position, first_offset)];
    doomed.extend(later.iter().map(|&b| (b, 0, b)));
    for (i, &(segment, from, first)) in doomed.iter().enumerate() {
        let path = dir.join(log_file_name(segment));
        let log = fs.open(&path, OpenMode::Existing).map_err(Error::io("open segment", &path))?;
        let len = log.size().map_err(Error::io("stat segment", &path))?;
        if from >= len {
            continue;
        }
        // A later segment ends where the next one begins; the damaged one
        // at least where the error says its records end.
        let end_offset = doomed.get(i + 1).map_or(first, |&(next, _, _)| next).max(if i == 0 {
            end_offset
        } else {
            first
        });
        let cut = Cut { from, to: len, first_offset: first };
        report.quarantined.push(quarantine(fs, dir, segment, (&*log, &path), cut, end_offset)?);
    }
    let lowered = LogPoint { segment: base, position, offset: first_offset };
    let mut extent = ExtentFile::open(fs, dir, lowered)?;
    if extent.last() > lowered {
        extent.write(lowered)?;
    }
    for &segment in later.iter().rev() {
        for name in [index_file_name(segment), time_index_file_name(segment), log_file_name(segment)] {
            let path = dir.join(name);
            if fs.exists(&path).map_err(Error::io("stat", &path))? {
                fs.remove_file(&path).map_err(Error::io("remove segment file", &path))?;
            }
        }
    }
    let path = dir.join(log_file_name(base));
    let log = fs.open(&path, OpenMode::Existing).map_err(Error::io("open segment", &path))?;
    if log.size().map_err(Error::io("stat segment", &path))? > position {
        log.set_len(position).map_err(Error::io("cut segment", &path))?;
        log.sync_data().map_err(Error::io("sync segment", &path))?;
    }
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    if fs.exists(&marker).map_err(Error::io("stat", &marker))? {
        fs.remove_file(&marker).map_err(Error::io("remove clean-shutdown marker", &marker))?;
    }
    fs.sync_dir(dir).map_err(Error::io("sync directory", dir))
}
