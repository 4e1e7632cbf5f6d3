//! What can go wrong under openraft, beyond the log's own [`Error`].

use std::fmt;
use std::path::PathBuf;

use crate::error::Error;

/// Why a [`LogStore`](super::LogStore) call failed. openraft sees it as the
/// source of a `StorageError`.
#[derive(Debug)]
#[non_exhaustive]
pub enum RaftStoreError {
    /// The partition log (or a state file's I/O) failed.
    Log(Error),
    /// A record in the log is not an entry this store wrote: its value does
    /// not decode, or the entry's index is not the record's offset.
    InvalidEntry {
        /// The record's offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A state file (vote, committed, purged) exists but does not decode:
    /// it is not guessed at, since a lost vote could let a node vote twice.
    InvalidState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Appended entries do not continue the log (a hole, or an index the
    /// log already has: truncate first).
    NonContiguous {
        /// The index the log needs next.
        expected: u64,
        /// The entry's index.
        found: u64,
    },
    /// A term above `i32::MAX`: terms are stored as the batch's leader
    /// epoch, a 32-bit field in the batch format.
    TermTooLarge {
        /// The term.
        term: u64,
    },
}

impl fmt::Display for RaftStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The log's error is `source()`, not repeated here.
            RaftStoreError::Log(_) => write!(f, "raft log storage failed"),
            RaftStoreError::InvalidEntry { offset, reason } => {
                write!(f, "record at offset {offset} is not a raft entry: {reason}")
            }
            RaftStoreError::InvalidState { path, reason } => {
                write!(f, "invalid raft state file {}: {reason}", path.display())
            }
            RaftStoreError::NonContiguous { expected, found } => {
                write!(f, "entry {found} does not continue the log, which needs entry {expected} next")
            }
            RaftStoreError::TermTooLarge { term } => {
                write!(f, "term {term} is over {} (stored as a 32-bit leader epoch)", i32::MAX)
            }
        }
    }
}

impl std::error::Error for RaftStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RaftStoreError::Log(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for RaftStoreError {
    fn from(e: Error) -> Self {
        RaftStoreError::Log(e)
    }
}
