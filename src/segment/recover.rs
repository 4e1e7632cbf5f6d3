//! Opening an existing segment: recovery of its tail and its indexes.

use std::path::Path;

use crate::config::SegmentConfig;
use crate::error::{Error, OpenError, Result};
use crate::format::{BatchHeader, BATCH_HEADER_BYTES};
use crate::io::{read_exact_at, FileHandle, FileSystem, OpenMode};

use super::index::{IndexEntry, OffsetIndex};
use super::indexing::Indexing;
use super::log_segment::{LogSegment, Recovery, SegmentRepair, SegmentRole, SegmentState};
use super::quarantine::{quarantine, Cut};
use super::scan::{scan, ScanEnd, ScanStart, Vouched};
use super::time_index::TimeIndex;
use super::{index_file_name, log_file_name, time_index_file_name};

impl LogSegment {
    /// Opens an existing segment, validating its tail (or all of it, with
    /// [`Recovery::Crash`]) and cutting off a torn tail. An active segment's
    /// indexes get room for appends; a sealed one's stay trimmed.
    ///
    /// # Errors
    /// [`Error::Corruption`] ([`crate::Corruption::SyncedData`]) for damage
    /// in bytes `recovery` vouches for (see [`Recovery`]); nothing is cut
    /// then. [`Error::Io`].
    pub fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        base_offset: u64,
        config: &SegmentConfig,
        recovery: Recovery,
        role: SegmentRole,
    ) -> Result<(Self, SegmentRepair)> {
        let active = role == SegmentRole::Active;
        let log_path = dir.join(log_file_name(base_offset));
        let log = fs.open(&log_path, OpenMode::Existing).map_err(Error::io("open segment", &log_path))?;
        let file_len = log.size().map_err(Error::io("stat segment", &log_path))?;
        refuse_pre_kafka_format(&*log, &log_path, file_len)?;
        let capacity = if active { config.index_entries_max } else { 0 };
        let bound = usize::try_from(file_len / BATCH_HEADER_BYTES as u64 + 2).unwrap_or(usize::MAX);
        let mut index =
            OffsetIndex::open(fs, &dir.join(index_file_name(base_offset)), base_offset, capacity, bound)?;
        let time_capacity = if active { capacity + 1 } else { 0 };
        let mut times = TimeIndex::open(
            fs,
            &dir.join(time_index_file_name(base_offset)),
            base_offset,
            time_capacity,
            bound,
        )?;
        let mut repair = SegmentRepair::default();
        // A durable segment's index gets the O(1) check now and the full one
        // at its first lookup, so a clean open does not read every entry
        // of every index (time independent of the log's size). After a
        // crash, indexes are checked whole before anything relies on them.
        let sane = match recovery {
            Recovery::Durable { .. } => {
                let quick = index.quick_check(file_len).is_ok();
                index.defer_check(file_len);
                quick
            }
            Recovery::Crash { .. } => index.sanity_check(file_len).is_ok(),
        };
        let vouched = vouched(recovery, file_len);
        let from_zero = || ScanStart {
            offset: base_offset,
            position: 0,
            vouched,
            indexing: Indexing::empty(),
            entry_last_offset: None,
        };
        let start = match recovery {
            Recovery::Durable { .. } => match index.last_entry().filter(|_| sane) {
                Some(IndexEntry { offset, position }) => {
                    // A durable segment's last time entry covers it whole
                    // (sealing and clean close add it); the scan only adds.
                    let indexing = Indexing::resumed(times.last_entry());
                    ScanStart { offset, position, vouched, indexing, entry_last_offset: Some(offset) }
                }
                None => from_zero(),
            },
            // A recovery point past the end of the file is not ours to trust
            // (the file was cut): scan it all.
            Recovery::Crash { recovery_point: Some(point), .. } if sane && point.position <= file_len => {
                index.truncate_to_position(point.position)?;
                times.truncate_to_offset(point.offset)?;
                let indexing = Indexing::resumed(times.last_entry());
                ScanStart {
                    offset: point.offset,
                    position: point.position,
                    vouched,
                    indexing,
                    entry_last_offset: None,
                }
            }
            // No usable index: rebuild it from the start, still refusing
            // damage to the vouched bytes.
            Recovery::Crash { .. } => from_zero(),
        };
        if start.position == 0 && index.entries() > 0 {
            repair.index_rebuilt = true; // an offset index we could not use
        }
        let interval = config.index_interval_bytes;
        let run = |from: ScanStart, index: &mut OffsetIndex, times: &mut TimeIndex| {
            if from.position == 0 {
                index.clear()?;
                times.clear()?;
            }
            scan(&*log, &log_path, file_len, from, index, times, interval)
        };
        // In a durable file, a scan that fails right at the index's last
        // entry, or indexes that disagree with the log, mean the indexes are
        // wrong, not the log: rebuild them from the start.
        let index_start = matches!(recovery, Recovery::Durable { .. }) && start.position > 0;
        let first = match run(start, &mut index, &mut times) {
            Err(Error::Corruption { position, .. }) if index_start && position == start.position => None,
            Err(e) => return Err(e),
            Ok(end) if index_start && end.valid_bytes == start.position => None,
            Ok(end) if !times_sane(&mut times, recovery, end.next_offset.max(base_offset + 1)) => None,
            Ok(end) => Some(end),
        };
        let end: ScanEnd = match first {
            Some(end) => end,
            None => {
                repair.index_rebuilt = true;
                run(from_zero(), &mut index, &mut times)?
            }
        };
        repair.bytes_scanned = file_len - if repair.index_rebuilt { 0 } else { start.position };
        if let Some(tear) = &end.torn {
            if tear.quarantine {
                // ORDER: this may not be a plain torn write: the bytes to be
                // cut are made durable in a quarantine file first, and the
                // report names it.
                let cut = Cut { from: end.valid_bytes, to: file_len, first_offset: end.next_offset };
                let end_offset = tear.end_offset.unwrap_or(end.next_offset);
                let q = quarantine(fs, dir, base_offset, (&*log, &log_path), cut, end_offset)?;
                repair.quarantined = Some(q);
            }
            // ORDER: the indexes never point past the log, so cut them first.
            index.truncate_to_position(end.valid_bytes)?;
            times.truncate_to_offset(end.next_offset)?;
            log.set_len(end.valid_bytes).map_err(Error::io("truncate torn tail", &log_path))?;
            // ORDER: the cut is made durable before anything is appended
            // after it. Otherwise a later crash could lose the cut but keep
            // a new batch written over its start, and the old batches after
            // it, contiguous with the new one, would come back as records.
            log.sync_data().map_err(Error::io("sync after truncating torn tail", &log_path))?;
            repair.bytes_truncated = file_len - end.valid_bytes;
            repair.truncated_from_offset = Some(end.next_offset);
        }
        if let Some(t) = end.indexing.time_entry().filter(|_| end.valid_bytes > 0) {
            // The last entry covers the whole segment (see time_index.rs).
            times.append(t.timestamp_ms, t.offset);
        }
        let roll_base_ms = first_timestamp(&*log, &log_path, end.valid_bytes)?;
        let segment = LogSegment::new(
            base_offset,
            log_path,
            log,
            (index, times),
            SegmentState {
                size: end.valid_bytes,
                next_offset: end.next_offset,
                indexing: end.indexing,
                roll_base_ms,
            },
        );
        if config.mmap_reads {
            // Of the sealed bytes, or for the active segment, of all it can
            // grow to.
            segment.map_reads(if active {
                end.valid_bytes.max(config.segment_bytes)
            } else {
                end.valid_bytes
            });
        }
        if active {
            segment.buffer_appends(config);
        }
        Ok((segment, repair))
    }
}

/// What `recovery` vouches for in a file of `file_len` bytes: all of a
/// durable file; after a crash, the synced extent or the recovery point,
/// whichever is further (both were written after the bytes they cover were
/// fsynced). A recovery point past the end of the file is stale (a
/// truncation cut below it); a synced extent past it is not (it is lowered
/// before any cut), so bytes it vouches for are missing, and refused.
pub(crate) fn vouched(recovery: Recovery, file_len: u64) -> Vouched {
    match recovery {
        Recovery::Durable { end_offset } => Vouched::Durable { end_offset },
        Recovery::Crash { recovery_point, synced } => {
            let point = recovery_point.filter(|p| p.position <= file_len);
            match synced {
                Some(s) => {
                    let best = point.filter(|p| p.position > s.position).unwrap_or(s);
                    Vouched::Crash { below: best.position, offset: best.offset }
                }
                None => Vouched::Unknown {
                    below: point.map_or(0, |p| p.position),
                    offset: point.map(|p| p.offset),
                },
            }
        }
    }
}

/// The time index's check: O(1) now and the full one at the first lookup
/// for a durable segment, the full one now after a crash.
fn times_sane(times: &mut TimeIndex, recovery: Recovery, next_offset: u64) -> bool {
    match recovery {
        Recovery::Durable { .. } => {
            times.defer_check(next_offset);
            times.quick_check(next_offset).is_ok()
        }
        Recovery::Crash { .. } => times.sanity_check(next_offset).is_ok(),
    }
}

/// Refuses a segment whose first batch is in the format annals wrote
/// before it stored Kafka's (`format::batch::pre_kafka_header`), confirmed
/// by that batch's own CRC, read in chunks (its length is not trusted for
/// an allocation).
fn refuse_pre_kafka_format(log: &dyn FileHandle, path: &Path, file_len: u64) -> Result<()> {
    const CHUNK_BYTES: u64 = 64 << 10;
    let mut head = [0u8; 64];
    if file_len < head.len() as u64 {
        return Ok(());
    }
    read_exact_at(log, &mut head, 0).map_err(Error::io("read segment", path))?;
    let Some((len, stored)) = crate::format::batch::pre_kafka_header(&head) else { return Ok(()) };
    if u64::from(len) > file_len {
        return Ok(());
    }
    let mut crc = crc32fast::Hasher::new();
    let mut chunk = vec![0u8; CHUNK_BYTES.min(u64::from(len)) as usize];
    let mut at = 16u64;
    // Bounded: each step reads at least one byte, up to the batch's end.
    while at < u64::from(len) {
        let n = (u64::from(len) - at).min(CHUNK_BYTES) as usize;
        read_exact_at(log, &mut chunk[..n], at).map_err(Error::io("read segment", path))?;
        crc.update(&chunk[..n]);
        at += n as u64;
    }
    if crc.finalize() == stored {
        return Err(Error::Open(OpenError::PreKafkaFormat { path: path.to_path_buf() }));
    }
    Ok(())
}

/// The first batch's first timestamp (what time-based roll counts from for
/// a segment opened from disk), or -1 for an empty segment.
fn first_timestamp(log: &dyn FileHandle, path: &Path, size: u64) -> Result<i64> {
    if size < BATCH_HEADER_BYTES as u64 {
        return Ok(-1);
    }
    let mut head = [0u8; BATCH_HEADER_BYTES];
    read_exact_at(log, &mut head, 0).map_err(Error::io("read segment", path))?;
    Ok(BatchHeader::parse(&head).map_or(-1, |h| h.base_timestamp_ms))
}
