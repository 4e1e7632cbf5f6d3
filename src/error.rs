//! The crate's error type: one umbrella enum, matched by variant, never by
//! string; what only one surface refuses is in that surface's enum
//! (`surface.rs`), the rest (I/O, damage, a closed or poisoned log, an
//! offset outside the log, a config out of bounds) is the umbrella's.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::format::{DecodeError, EncodeError};

mod surface;

pub use surface::{AdminError, AppendError, OpenError};

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in annals.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    Io {
        /// What the engine was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Stored bytes are damaged; nothing was repaired or dropped.
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte position in that file.
        position: u64,
        /// What is wrong.
        detail: Corruption,
    },
    /// A read or truncation asked for an offset outside the log.
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// The first offset in the log.
        log_start_offset: u64,
        /// The offset the next append gets.
        log_end_offset: u64,
    },
    /// The log or store was closed.
    Closed,
    /// An fsync or write failed earlier; the partition refuses appends and
    /// flushes until it is reopened (which runs recovery).
    Poisoned {
        /// The partition directory.
        dir: PathBuf,
        /// The first failure (a copy: see `Clone`); also
        /// [`std::error::Error::source`].
        cause: std::sync::Arc<Error>,
    },
    /// The disk is full. Nothing was acknowledged; the log is unchanged and
    /// appends work again once space is freed.
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// A configuration value out of bounds.
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A log or store that did not open (see [`OpenError`]).
    Open(OpenError),
    /// An append refused; nothing was written (see [`AppendError`]).
    Append(AppendError),
    /// A topic, partition or group call refused (see [`AdminError`]).
    Admin(AdminError),
}

/// What [`Error::Corruption`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// A batch failed to decode (bad CRC, bad length, bad record).
    Batch(DecodeError),
    /// A batch does not start at the offset the log expects there.
    OffsetMismatch {
        /// The offset expected.
        expected: u64,
        /// The base offset found.
        found: u64,
    },
    /// Damage recovery will not cut: the bytes were fsynced (so records
    /// there may have been acknowledged), or how far the log was fsynced is
    /// unknown. Nothing was changed; `PartitionLog::repair` (`annals
    /// repair`) cuts the log there, keeping the cut bytes in a quarantine
    /// file.
    SyncedData {
        /// What is wrong at the position.
        problem: Box<Corruption>,
        /// The first offset that cannot be vouched for (where the damage
        /// begins).
        first_offset: u64,
        /// The offset the fsynced bytes end at, when known: records in
        /// `first_offset..synced_end_offset` were made durable.
        synced_end_offset: Option<u64>,
    },
    /// A segment does not end where the next segment begins (a gap or an overlap).
    SegmentBoundary {
        /// The offset the segment ends at.
        next_offset: u64,
        /// The next segment's base offset.
        next_base_offset: u64,
    },
}

impl Error {
    pub(crate) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Io { op, path: path.to_path_buf(), source }
    }

    pub(crate) fn corruption(path: &Path, position: u64, detail: Corruption) -> Error {
        Error::Corruption { path: path.to_path_buf(), position, detail }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidConfig { field, reason: reason.into() }
    }

    /// The underlying OS error kind, for I/O errors.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// A copy of the same variant and fields. `io::Error` is not `Clone`: an
/// I/O error is rebuilt from its OS error code, or else its kind and
/// message. (What a poisoned partition keeps of its first failure.)
impl Clone for Error {
    fn clone(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io { op, path: path.clone(), source: copy_io(source) },
            Error::Corruption { path, position, detail } => {
                Error::Corruption { path: path.clone(), position: *position, detail: detail.clone() }
            }
            Error::OffsetOutOfRange { offset, log_start_offset, log_end_offset } => Error::OffsetOutOfRange {
                offset: *offset,
                log_start_offset: *log_start_offset,
                log_end_offset: *log_end_offset,
            },
            Error::Closed => Error::Closed,
            Error::Poisoned { dir, cause } => Error::Poisoned { dir: dir.clone(), cause: cause.clone() },
            Error::DiskFull { path } => Error::DiskFull { path: path.clone() },
            Error::InvalidConfig { field, reason } => Error::InvalidConfig { field, reason: reason.clone() },
            Error::Open(e) => Error::Open(e.clone()),
            Error::Append(e) => Error::Append(e.clone()),
            Error::Admin(e) => Error::Admin(e.clone()),
        }
    }
}

/// An `io::Error` again: the same OS error, or the same kind and message.
fn copy_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Error {
        Error::Append(AppendError::Encode(e))
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Batch(e) => write!(f, "{}", e.kind),
            Corruption::OffsetMismatch { expected, found } => {
                write!(f, "batch starts at offset {found}, expected {expected}")
            }
            Corruption::SyncedData { problem, first_offset, synced_end_offset } => {
                match synced_end_offset {
                    Some(end) => write!(
                        f,
                        "{problem}, in bytes that were fsynced: offsets {first_offset} to {end} were acknowledged"
                    )?,
                    None => write!(
                        f,
                        "{problem}, in bytes not provably unacknowledged: offsets from {first_offset} on"
                    )?,
                }
                write!(f, "; not cut (annals repair cuts it, keeping the bytes in a quarantine file)")
            }
            Corruption::SegmentBoundary { next_offset, next_base_offset } => write!(
                f,
                "segment ends at offset {next_offset}, but the next segment starts at {next_base_offset}"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The OS error is `source()`, not repeated here.
            Error::Io { op, path, .. } => write!(f, "{op} {}", path.display()),
            Error::Corruption { path, position, detail } => {
                write!(f, "corruption in {} at byte {position}: {detail}", path.display())
            }
            Error::OffsetOutOfRange { offset, log_start_offset, log_end_offset } => {
                write!(f, "offset {offset} out of range [{log_start_offset}, {log_end_offset}]")
            }
            Error::InvalidConfig { field, reason } => write!(f, "invalid config {field}: {reason}"),
            Error::Closed => write!(f, "closed"),
            Error::Poisoned { dir, .. } => {
                write!(f, "partition {} is poisoned by an earlier failure; reopen it", dir.display())
            }
            Error::DiskFull { path } => write!(f, "disk full writing {}", path.display()),
            // Transparent: each surface's message (and its source below).
            Error::Open(e) => write!(f, "{e}"),
            Error::Append(e) => write!(f, "{e}"),
            Error::Admin(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Poisoned { cause, .. } => Some(&**cause),
            // Transparent, as their messages are.
            Error::Open(e) => std::error::Error::source(e),
            Error::Append(e) => std::error::Error::source(e),
            Error::Admin(e) => std::error::Error::source(e),
            // A corruption's detail is part of its message.
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
