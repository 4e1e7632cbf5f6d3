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

/// A durable point of the log: `position` bytes of segment `segment`,
/// ending at offset `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RecoveryPoint {
    pub segment: u64,
    pub position: u64,
    pub offset: u64,
}

/// Reads the checkpoint; `None` when missing or invalid (never fatal).
pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Option<RecoveryPoint> {
    let bytes = read_small_file(fs, &dir.join(RECOVERY_POINT_FILE), 4096).ok()?;
    let pairs = kv::decode(&bytes, HEADER).ok()?;
    let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).and_then(|(k, v)| kv::number(k, v).ok());
    Some(RecoveryPoint { segment: get("segment")?, position: get("position")?, offset: get("offset")? })
}

/// Writes the checkpoint durably.
pub(crate) fn write(fs: &dyn FileSystem, dir: &Path, point: RecoveryPoint) -> Result<()> {
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
