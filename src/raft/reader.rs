//! [`LogReader`]: entries read back from the partition, for openraft's
//! replication tasks and the store itself.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::{OptionalSend, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::log::PartitionLog;

use super::codec;
use super::error::RaftStoreError;

/// Bytes asked of one read while collecting entries.
const READ_BYTES: usize = 1 << 20;

/// Reads entries for openraft's replication tasks, beside the store.
#[derive(Debug)]
pub struct LogReader<C> {
    log: Arc<PartitionLog>,
    _types: PhantomData<C>,
}

impl<C> LogReader<C> {
    /// A reader over the partition log of a [`LogStore`](super::LogStore)
    /// (from [`LogStore::log`](super::LogStore::log)), e.g. for a consumer
    /// of committed entries outside openraft.
    pub fn new(log: Arc<PartitionLog>) -> Self {
        LogReader { log, _types: PhantomData }
    }
}

/// The entries with indexes in `range` that `log` holds, checked dense.
pub(super) fn read_entries<C>(
    log: &PartitionLog,
    range: impl RangeBounds<u64>,
) -> Result<Vec<C::Entry>, RaftStoreError>
where
    C: RaftTypeConfig,
    C::Entry: DeserializeOwned,
{
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    let mut at = start.max(log.log_start_offset());
    let end = end.min(log.log_end_offset());
    let mut entries = Vec::with_capacity(end.saturating_sub(at).min(4096) as usize);
    // Bounded: every pass takes at least one entry, moves `at` up to a
    // raised log start (which only rises, once per purge), or stops.
    while at < end {
        let fetched = match log.read(at, READ_BYTES, crate::log::ReadBound::LogEnd) {
            Ok(fetched) => fetched,
            // A purge or truncation since `at` was chosen: the answer is
            // the log as it is after it (a purge: read again from the new
            // first entry; a truncation: stop at the new end).
            Err(Error::OffsetOutOfRange { log_start_offset, log_end_offset, .. }) => {
                if at < log_start_offset {
                    entries.clear();
                    at = log_start_offset.max(start);
                    continue;
                }
                if at >= log_end_offset {
                    break;
                }
                return Err(Error::OffsetOutOfRange { offset: at, log_start_offset, log_end_offset }.into());
            }
            Err(e) => return Err(e.into()),
        };
        let before = at;
        for record in fetched.records().take_while(|r| r.offset < end) {
            if record.offset != at {
                let reason = format!("entry {at} is missing (a raft log has no gaps)");
                return Err(RaftStoreError::InvalidEntry { offset: record.offset, reason });
            }
            entries.push(codec::from_record::<C::NodeId, C::Entry>(&record)?);
            at += 1;
        }
        if at == before {
            break;
        }
    }
    Ok(entries)
}

impl<C> LogReader<C>
where
    C: RaftTypeConfig,
    C::Entry: DeserializeOwned,
{
    /// The entries with indexes in `range` that the log holds, in order
    /// (entries purged or truncated meanwhile are left out).
    ///
    /// # Errors
    /// [`RaftStoreError::Log`]; [`RaftStoreError::InvalidEntry`].
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<C::Entry>, RaftStoreError> {
        read_entries::<C>(&self.log, range)
    }
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader { log: self.log.clone(), _types: PhantomData }
    }
}

pub(super) fn read_error<NID: openraft::NodeId>(e: RaftStoreError) -> StorageError<NID> {
    StorageIOError::read_logs(&e).into()
}

impl<C> RaftLogReader<C> for LogReader<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_entries::<C>(&self.log, range).map_err(read_error)
    }
}
