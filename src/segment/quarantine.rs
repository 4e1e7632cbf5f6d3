//! Quarantine: bytes recovery or repair cut from a segment, kept beside it
//! instead of destroyed.
//!
//! File `{base_offset:020}.{position}.quarantine` in the partition
//! directory: the raw bytes that stood at `position` and after in segment
//! `base_offset`'s log file, exactly as they were (batches, damaged or not).
//! The engine never reads or deletes them; an operator inspects them
//! (`annals dump` reads them as a segment) and removes them.
//!
//! ORDER: the file is written, fsynced and its directory fsynced before the
//! segment is cut, so a crash in between leaves the bytes in both places
//! and the next open cuts again (rewriting the same file).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::{FileHandle, FileSystem, OpenMode};

/// Bytes copied per read.
const COPY_CHUNK_BYTES: u64 = 1 << 20;

/// `{base_offset:020}.{position}.quarantine`
pub fn quarantine_file_name(base_offset: u64, position: u64) -> String {
    format!("{base_offset:020}.{position}.quarantine")
}

/// Parses a quarantine file name into `(base_offset, position)`.
pub(crate) fn parse_quarantine_name(stem: &str, ext: &str) -> Option<(u64, u64)> {
    let position = ext.strip_suffix(".quarantine")?;
    if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, position.parse().ok()?))
}

/// Bytes cut from a segment and kept in a quarantine file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantine {
    /// The quarantine file.
    pub path: PathBuf,
    /// The segment log file they were cut from.
    pub segment: PathBuf,
    /// Where in it the cut began.
    pub position: u64,
    /// Bytes kept.
    pub bytes: u64,
    /// The first offset cut.
    pub first_offset: u64,
    /// The offset after the last batch known cut (from the valid batches
    /// found after the damage; offsets past it may have been cut too).
    pub end_offset: u64,
}

/// The part of a log file to cut: bytes `from..to`, beginning at offset
/// `first_offset`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cut {
    pub from: u64,
    pub to: u64,
    pub first_offset: u64,
}

/// Copies `cut` of the log file to its quarantine file, durably.
///
/// # Errors
/// [`Error::Io`].
pub(crate) fn quarantine(
    fs: &dyn FileSystem,
    dir: &Path,
    base_offset: u64,
    (log, log_path): (&dyn FileHandle, &Path),
    cut: Cut,
    end_offset: u64,
) -> Result<Quarantine> {
    let path = dir.join(quarantine_file_name(base_offset, cut.from));
    let out = fs.open(&path, OpenMode::Create).map_err(Error::io("create quarantine file", &path))?;
    out.set_len(0).map_err(Error::io("create quarantine file", &path))?;
    let mut buf = Vec::new();
    let mut at = cut.from;
    // Bounded: each step copies up to a chunk of a file of known length.
    while at < cut.to {
        let len = (cut.to - at).min(COPY_CHUNK_BYTES) as usize;
        buf.clear();
        log.read_exact_into(&mut buf, at, len).map_err(Error::io("read segment", log_path))?;
        out.write_all_at(&buf, at - cut.from).map_err(Error::io("write quarantine file", &path))?;
        at += len as u64;
    }
    out.sync_data().map_err(Error::io("sync quarantine file", &path))?;
    fs.sync_dir(dir).map_err(Error::io("sync directory", dir))?;
    Ok(Quarantine {
        path,
        segment: log_path.to_path_buf(),
        position: cut.from,
        bytes: cut.to - cut.from,
        first_offset: cut.first_offset,
        end_offset: end_offset.max(cut.first_offset),
    })
}
