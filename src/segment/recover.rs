//! Opening an existing segment: recovery of its tail and its index.

use std::path::Path;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::format::BATCH_HEADER_BYTES;
use crate::io::{FileSystem, OpenMode};

use super::index::OffsetIndex;
use super::log_segment::{LogSegment, Recovery, SegmentRepair};
use super::scan::{scan, ScanStart};
use super::{index_file_name, log_file_name};

impl LogSegment {
    /// Opens an existing segment, validating its tail (or all of it, with
    /// [`Recovery::Crash`]) and cutting off a torn tail. An `active` segment's
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
        let sane = index.sanity_check(file_len).is_ok();
        let start = match recovery {
            Recovery::Durable => match index.last_entry().filter(|_| sane) {
                Some((offset, position)) => ScanStart { offset, position, durable_below: u64::MAX },
                None => ScanStart { offset: base_offset, position: 0, durable_below: u64::MAX },
            },
            // A recovery point past the end of the file is not ours to trust
            // (the file was cut): scan it all.
            Recovery::Crash { recovery_point: Some((position, offset)) } if sane && position <= file_len => {
                index.truncate_to_position(position);
                ScanStart { offset, position, durable_below: position }
            }
            // No usable index: rebuild it from the start, still reporting
            // damage below the recovery point.
            Recovery::Crash { recovery_point } => {
                let durable_below = recovery_point.filter(|&(p, _)| p <= file_len).map_or(0, |(p, _)| p);
                ScanStart { offset: base_offset, position: 0, durable_below }
            }
        };
        if start.position == 0 && index.entries() > 0 {
            repair.index_rebuilt = true;
            index.clear();
        }
        let interval = config.index_interval_bytes;
        let rescan = |index: &mut OffsetIndex, repair: &mut SegmentRepair| {
            repair.index_rebuilt = true;
            index.clear();
            let from_start =
                ScanStart { offset: base_offset, position: 0, durable_below: start.durable_below };
            scan(&*log, &log_path, file_len, from_start, index, interval)
        };
        // In a durable file, a scan that fails right at the index's last
        // entry means the index pointed at something that is not a batch:
        // distrust it, not the log.
        let index_start = recovery == Recovery::Durable && start.position > 0;
        let end = match scan(&*log, &log_path, file_len, start, &mut index, interval) {
            Ok(end) if !index_start || end.valid_bytes > start.position => end,
            Ok(_) => rescan(&mut index, &mut repair)?,
            Err(Error::Corruption { position, .. }) if index_start && position == start.position => {
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
        let segment = LogSegment::new(
            base_offset,
            log_path,
            log,
            index,
            end.valid_bytes,
            end.next_offset,
            end.bytes_since_index,
        );
        Ok((segment, repair))
    }
}
