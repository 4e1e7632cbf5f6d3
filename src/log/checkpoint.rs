//! The recovery point: how far a partition's log is known durable, so that
//! recovery after a crash checks only what came after it.
//!
//! File `recovery-point` in the partition directory (`format::kv`):
//!
//! ```text
//! annals-recovery-point 1
//! segment=<base offset of the segment>
//! position=<bytes of that segment known durable>
//! offset=<the offset those bytes end at>
//! crc32=...
//! ```
//!
//! ORDER: it is written (atomically: temp, fsync, rename, fsync directory)
//! only after the bytes and the index entries it covers were fsynced; at
//! roll, at truncation, at `flush()` and at clean close. A missing or invalid
//! file only costs a longer scan: the segment is then checked from its start.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::kv;
use crate::io::{read_small_file, write_file_atomic, FileSystem};

/// The checkpoint's file name.
pub const RECOVERY_POINT_FILE: &str = "recovery-point";
const HEADER: &str = "annals-recovery-point 1";

/// A point of the log: `position` bytes of segment `segment`, ending at
/// offset `offset` (the recovery point, and the synced extent). Ordered by
/// segment, then position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LogPoint {
    pub segment: u64,
    pub position: u64,
    pub offset: u64,
}

/// Reads the checkpoint; `None` when missing or invalid (never fatal).
pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Option<LogPoint> {
    let bytes = read_small_file(fs, &dir.join(RECOVERY_POINT_FILE), 4096).ok()?;
    let pairs = kv::decode(&bytes, HEADER).ok()?;
    let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).and_then(|(k, v)| kv::number(k, v).ok());
    Some(LogPoint { segment: get("segment")?, position: get("position")?, offset: get("offset")? })
}

/// Writes the checkpoint durably.
pub(crate) fn write(fs: &dyn FileSystem, dir: &Path, point: LogPoint) -> Result<()> {
    let bytes = kv::encode(
        HEADER,
        &[
            ("segment", point.segment.to_string()),
            ("position", point.position.to_string()),
            ("offset", point.offset.to_string()),
        ],
    );
    write_file_atomic(fs, dir, RECOVERY_POINT_FILE, &bytes)
        .map_err(Error::io("write recovery point", &dir.join(RECOVERY_POINT_FILE)))
}

/// The log start offset checkpoint's file name.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";
const LOG_START_HEADER: &str = "annals-log-start-offset 1";

/// The persisted log start offset (0 when missing or invalid: the first
/// segment's base offset then bounds it from below anyway).
pub(crate) fn read_log_start(fs: &dyn FileSystem, dir: &Path) -> u64 {
    read_offset_file(fs, dir, LOG_START_OFFSET_FILE, LOG_START_HEADER).unwrap_or(0)
}

/// Persists the log start offset (atomically, durably).
pub(crate) fn write_log_start(fs: &dyn FileSystem, dir: &Path, offset: u64) -> Result<()> {
    write_offset_file(fs, dir, LOG_START_OFFSET_FILE, LOG_START_HEADER, offset)
}

/// An `offset=` checkpoint file; `None` when missing or invalid.
fn read_offset_file(fs: &dyn FileSystem, dir: &Path, name: &str, header: &str) -> Option<u64> {
    let bytes = read_small_file(fs, &dir.join(name), 4096).ok()?;
    let pairs = kv::decode(&bytes, header).ok()?;
    let (k, v) = pairs.iter().find(|(k, _)| *k == "offset")?;
    kv::number(k, v).ok()
}

/// Writes an `offset=` checkpoint file atomically and durably.
fn write_offset_file(fs: &dyn FileSystem, dir: &Path, name: &str, header: &str, offset: u64) -> Result<()> {
    let bytes = kv::encode(header, &[("offset", offset.to_string())]);
    write_file_atomic(fs, dir, name, &bytes).map_err(Error::io("write checkpoint", &dir.join(name)))
}

/// The cleaner checkpoint's file name: the first offset not yet cleaned.
pub const CLEANER_OFFSET_FILE: &str = "cleaner-offset";
const CLEANER_HEADER: &str = "annals-cleaner-offset 1";

/// The persisted first dirty offset (0 when missing or invalid: everything
/// counts as dirty, which only costs a longer clean).
pub(crate) fn read_cleaner_offset(fs: &dyn FileSystem, dir: &Path) -> u64 {
    read_offset_file(fs, dir, CLEANER_OFFSET_FILE, CLEANER_HEADER).unwrap_or(0)
}

/// Persists the first dirty offset (atomically, durably).
pub(crate) fn write_cleaner_offset(fs: &dyn FileSystem, dir: &Path, offset: u64) -> Result<()> {
    write_offset_file(fs, dir, CLEANER_OFFSET_FILE, CLEANER_HEADER, offset)
}

/// The high watermark checkpoint's file name.
pub const HIGH_WATERMARK_FILE: &str = "high-watermark";
const HIGH_WATERMARK_HEADER: &str = "annals-high-watermark 1";

/// The persisted high watermark; `None` when no replication layer ever set
/// one (or the file is damaged: the high watermark then follows the log end
/// until it is set again, as for a log without replication).
pub(crate) fn read_high_watermark(fs: &dyn FileSystem, dir: &Path) -> Option<u64> {
    read_offset_file(fs, dir, HIGH_WATERMARK_FILE, HIGH_WATERMARK_HEADER)
}

/// Persists the high watermark (atomically, durably).
pub(crate) fn write_high_watermark(fs: &dyn FileSystem, dir: &Path, offset: u64) -> Result<()> {
    write_offset_file(fs, dir, HIGH_WATERMARK_FILE, HIGH_WATERMARK_HEADER, offset)
}
