//! [`LogStore`]: openraft's log storage (`RaftLogStorage`) on an annals
//! partition log, with the vote, committed and purged log ids persisted
//! beside it (`state.rs`).

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::LogConfig;
use crate::error::Error;
use crate::format::{BatchMeta, Record};
use crate::io::{create_dir_all_durable, SharedFs};
use crate::log::PartitionLog;

use super::codec;
use super::error::RaftStoreError;
use super::reader::{read_entries, read_error, LogReader};
use super::state::{self, COMMITTED, PURGED, VOTE};

/// The partition log's directory inside the store's directory.
pub const LOG_DIR: &str = "log";

/// Bytes a record adds to its value in a batch, at most (length, attributes,
/// timestamp and offset deltas, null key, value length, header count).
const RECORD_OVERHEAD_BYTES: usize = 32;
/// Log bytes appended between two recovery-point checkpoints.
const RECOVERY_POINT_BYTES: u64 = 64 << 20;

/// openraft's log storage on an annals partition: entry `i` is the record
/// at offset `i` (see `codec.rs`), and the vote and the committed and
/// purged log ids are files beside the log.
///
/// Every append is fsynced before openraft is told it is durable, whatever
/// `LogConfig::durability` says (one fsync per call; the recovery point
/// moves every 64 MiB); truncation and purging
/// are the log's crash-safe `truncate_to`, `delete_records_before` and
/// `truncate_fully_and_start_at`. The partition's high watermark follows
/// the committed log id, so `PartitionLog::read` with `ReadBound::HighWatermark` (or a
/// committed-only reader) sees only committed entries. Retention is turned
/// off (openraft decides what to purge) and a compacting cleanup policy is
/// refused.
///
/// The sync methods (`append_entries`, `truncate_since`, `purge_upto`,
/// `write_vote`, `write_committed`) are what the openraft traits call; they
/// are public for tests and for callers driving the store without openraft.
///
/// # Examples
///
/// ```
/// use annals::raft::{KvConfig, LogStore};
/// use annals::LogConfig;
/// use openraft::entry::RaftEntry;
/// use openraft::{CommittedLeaderId, Entry, LogId, Vote};
///
/// let dir = tempfile::tempdir()?;
/// let mut store = LogStore::<KvConfig>::open(dir.path(), LogConfig::default())?;
/// let id = |index| LogId::new(CommittedLeaderId::new(1, 7), index);
/// store.write_vote(&Vote::new(1, 7))?;
/// store.append_entries((0..3).map(|i| Entry::<KvConfig>::new_blank(id(i))))?;
/// store.purge_upto(id(0))?;
/// drop(store);
///
/// let store = LogStore::<KvConfig>::open(dir.path(), LogConfig::default())?;
/// assert_eq!(store.vote(), Some(&Vote::new(1, 7)));
/// assert_eq!(store.last_log_id()?, Some(id(2)));
/// assert_eq!(store.entries(0..10)?.len(), 2, "entry 0 was purged");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LogStore<C: RaftTypeConfig> {
    log: Arc<PartitionLog>,
    fs: SharedFs,
    dir: PathBuf,
    max_batch_bytes: usize,
    /// The log's size at the last flush (recovery point).
    flushed_bytes: u64,
    vote: Option<Vote<C::NodeId>>,
    committed: Option<LogId<C::NodeId>>,
    purged: Option<LogId<C::NodeId>>,
    /// This store's exclusive hold on `dir` (its vote and state files; the
    /// partition log inside locks its own directory too).
    _dir_lock: Arc<dyn crate::io::FileLock>,
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// Opens (creating if needed) the store in `dir` on the real file system.
    ///
    /// # Errors
    /// [`RaftStoreError::Log`] with [`Error::InvalidConfig`] for a
    /// compacting cleanup policy, or the log's open errors;
    /// [`RaftStoreError::InvalidState`] for a damaged state file.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self, RaftStoreError> {
        Self::open_with(dir, config, crate::log::OpenOptions::default())
    }

    /// Opens the store in `dir` through the options' file system, its log
    /// reading time from their clock (as [`PartitionLog::open_with`]).
    ///
    /// # Errors
    /// As [`LogStore::open`].
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: LogConfig,
        options: crate::log::OpenOptions,
    ) -> Result<Self, RaftStoreError> {
        let fs: SharedFs = options.fs().clone();
        if config.cleanup_policy.compacts() {
            let reason = "a raft log is never compacted (openraft purges it)";
            return Err(Error::InvalidConfig { field: "cleanup_policy", reason: reason.into() }.into());
        }
        let config = LogConfig { retention_ms: -1, retention_bytes: -1, ..config };
        let dir = dir.as_ref().to_path_buf();
        create_dir_all_durable(&*fs, &dir).map_err(Error::io("create raft directory", &dir))?;
        let (dir_lock, _) = crate::log::lock_log_dir(&*fs, &dir)?;
        state::remove_temps(&*fs, &dir, &state::LOG_STORE_FILES)?;
        let vote = state::read(&*fs, &dir, VOTE)?;
        let committed: Option<Option<LogId<C::NodeId>>> = state::read(&*fs, &dir, COMMITTED)?;
        let purged = state::read(&*fs, &dir, PURGED)?;
        let max_batch_bytes = config.max_batch_bytes;
        let log = Arc::new(PartitionLog::open_with(dir.join(LOG_DIR), config, options)?);
        let flushed_bytes = log.size_bytes();
        let store = LogStore {
            log,
            fs,
            dir,
            max_batch_bytes,
            flushed_bytes,
            vote,
            committed: committed.flatten(),
            purged,
            _dir_lock: dir_lock,
        };
        // A crash may have come between writing `purged` and deleting.
        store.apply_purge()?;
        if let Some(committed) = &store.committed {
            store.raise_high_watermark(committed.index)?;
        }
        Ok(store)
    }

    /// The partition log underneath (for committed-only reads, `verify`,
    /// metrics). Appending to it directly breaks the index = offset rule.
    pub fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    /// The last saved vote.
    pub fn vote(&self) -> Option<&Vote<C::NodeId>> {
        self.vote.as_ref()
    }

    /// The last saved committed log id.
    pub fn committed(&self) -> Option<&LogId<C::NodeId>> {
        self.committed.as_ref()
    }

    /// The last purged log id.
    pub fn last_purged_log_id(&self) -> Option<&LogId<C::NodeId>> {
        self.purged.as_ref()
    }

    /// The log id of the last entry in the log (not the purged one).
    ///
    /// # Errors
    /// [`RaftStoreError::Log`]; [`RaftStoreError::InvalidEntry`].
    pub fn last_log_id(&self) -> Result<Option<LogId<C::NodeId>>, RaftStoreError> {
        let end = self.log.log_end_offset();
        if end <= self.log.log_start_offset() {
            return Ok(None);
        }
        let last = read_entries::<C>(&self.log, end - 1..end)?;
        Ok(last.last().map(|e| e.get_log_id().clone()))
    }

    /// The entries with indexes in `range` that the log holds, in order.
    ///
    /// # Errors
    /// [`RaftStoreError::Log`]; [`RaftStoreError::InvalidEntry`].
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<C::Entry>, RaftStoreError> {
        read_entries::<C>(&self.log, range)
    }

    /// A reader for other threads (what openraft's replication tasks get).
    pub fn reader(&self) -> LogReader<C> {
        LogReader::new(self.log.clone())
    }

    /// Saves the vote, durably, before returning.
    ///
    /// # Errors
    /// [`RaftStoreError::Log`] (I/O).
    pub fn write_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), RaftStoreError> {
        state::write(&*self.fs, &self.dir, VOTE, vote)?;
        self.vote = Some(vote.clone());
        Ok(())
    }

    /// Saves the committed log id, durably, and raises the partition's high
    /// watermark to the entry after it.
    ///
    /// # Errors
    /// [`RaftStoreError::Log`] (I/O).
    pub fn write_committed(&mut self, committed: Option<LogId<C::NodeId>>) -> Result<(), RaftStoreError> {
        if committed == self.committed {
            return Ok(());
        }
        state::write(&*self.fs, &self.dir, COMMITTED, &committed)?;
        if let Some(id) = &committed {
            self.raise_high_watermark(id.index)?;
        }
        self.committed = committed;
        Ok(())
    }

    /// Appends `entries`, which must continue the log (the first one's
    /// index is the log end offset; an empty log may start at a higher
    /// one; entries at or below the last purged index are skipped, being
    /// in the snapshot already), durable on return.
    /// Consecutive entries of one term share a batch, whose leader epoch is
    /// the term.
    ///
    /// # Errors
    /// [`RaftStoreError::NonContiguous`] (the entries before it are written
    /// and durable, nothing from it on); [`RaftStoreError::TermTooLarge`]
    /// (nothing written); [`RaftStoreError::Log`]
    /// ([`crate::AppendError::Encode`] for an entry over `max_record_bytes`,
    /// I/O).
    pub fn append_entries(
        &mut self,
        entries: impl IntoIterator<Item = C::Entry>,
    ) -> Result<(), RaftStoreError> {
        let budget = self.max_batch_bytes.saturating_sub(crate::format::batch::BATCH_HEADER_BYTES);
        // Entries a purge covered are in the snapshot already: nothing to
        // write (openraft's suite appends such entries).
        let purged = self.purged.as_ref().map(|p| p.index);
        let mut entries =
            entries.into_iter().filter(|e| purged.is_none_or(|p| e.get_log_id().index > p)).peekable();
        // An empty log may begin at any index (openraft's suite appends
        // entry 1 first): it starts over there, as after a purge.
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        if let Some(first) = entries.peek().map(|e| e.get_log_id().index).filter(|&i| start == end && i > end)
        {
            self.log.truncate_fully_and_start_at(first)?;
        }
        // Every entry into one buffer (one allocation, not one per entry),
        // checked contiguous; the entries before a gap are still written.
        let (mut buf, mut encoded, mut gap) = (Vec::new(), Vec::new(), None);
        for (expected, entry) in (self.log.log_end_offset()..).zip(entries) {
            let id = entry.get_log_id();
            if id.index != expected {
                gap = Some(RaftStoreError::NonContiguous { expected, found: id.index });
                break;
            }
            // A term that does not fit an epoch is refused before anything
            // is written.
            let epoch = codec::epoch_of(id.leader_id.term)?;
            let at = buf.len();
            codec::encode_into(&entry, id.index, &mut buf)?;
            encoded.push((epoch, at..buf.len()));
        }
        let buf = Bytes::from(buf);
        // Batches: runs of one term, each within max_batch_bytes.
        let (mut batch, mut batch_epoch, mut batch_bytes) = (Vec::new(), 0, 0);
        for (epoch, range) in encoded {
            let size = range.len() + RECORD_OVERHEAD_BYTES;
            if !batch.is_empty() && (epoch != batch_epoch || batch_bytes + size > budget) {
                self.write_batch(&batch, batch_epoch)?;
                batch.clear();
                batch_bytes = 0;
            }
            batch_epoch = epoch;
            batch.push(Record::new(buf.slice(range)));
            batch_bytes += size;
        }
        self.write_batch(&batch, batch_epoch)?;
        self.make_durable()?;
        gap.map_or(Ok(()), Err)
    }

    /// One fsync makes the appended entries durable; the recovery point
    /// (an index fsync and a checkpoint: three more fsyncs) moves only every
    /// `RECOVERY_POINT_BYTES`, which bounds the scan after a crash.
    fn make_durable(&mut self) -> Result<(), RaftStoreError> {
        let size = self.log.size_bytes();
        if size.saturating_sub(self.flushed_bytes) >= RECOVERY_POINT_BYTES || size < self.flushed_bytes {
            self.log.flush()?;
            self.flushed_bytes = size;
        } else {
            self.log.sync()?;
        }
        Ok(())
    }

    /// Appends one batch of entries whose term is `epoch` (nothing for
    /// none).
    fn write_batch(&self, records: &[Record], epoch: i32) -> Result<(), RaftStoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let expected = self.log.log_end_offset();
        let meta = BatchMeta { leader_epoch: epoch, ..BatchMeta::default() };
        let info = self.log.append_with(records, meta)?;
        // Only this store appends; anything else broke the index = offset rule.
        if info.first_offset != expected {
            return Err(RaftStoreError::NonContiguous { expected, found: info.first_offset });
        }
        Ok(())
    }

    /// Removes the entries at `index` and after (raft's conflicting
    /// suffix). Nothing when the log ends at or before `index`.
    ///
    /// # Errors
    /// [`RaftStoreError::Log`]: [`Error::OffsetOutOfRange`] below the first
    /// entry still in the log (purged entries are committed: raft never
    /// truncates them), I/O.
    pub fn truncate_since(&mut self, index: u64) -> Result<(), RaftStoreError> {
        if index >= self.log.log_end_offset() {
            return Ok(());
        }
        self.log.truncate_to(index)?;
        Ok(())
    }

    /// Removes the entries up to and including `log_id` (raft purges what a
    /// snapshot covers), which may lie past the last entry: the log then
    /// starts over, empty, after it.
    ///
    /// ORDER: the purged log id is durable before any entry goes, so the
    /// last purged entry's term is never lost with it; a crash between the
    /// two is finished at the next open.
    ///
    /// # Errors
    /// [`RaftStoreError::Log`] (I/O).
    pub fn purge_upto(&mut self, log_id: LogId<C::NodeId>) -> Result<(), RaftStoreError> {
        if self.purged.as_ref().is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        state::write(&*self.fs, &self.dir, PURGED, &log_id)?;
        self.purged = Some(log_id);
        self.apply_purge()
    }

    /// Makes the log start right after the last purged entry.
    fn apply_purge(&self) -> Result<(), RaftStoreError> {
        let Some(purged) = &self.purged else { return Ok(()) };
        let next = purged.index.saturating_add(1);
        if next > self.log.log_end_offset() {
            self.log.truncate_fully_and_start_at(next)?;
        } else if next > self.log.log_start_offset() {
            // Raft purges only applied, hence committed, entries.
            self.log.set_high_watermark(next)?;
            self.log.delete_records_before(next)?;
        }
        Ok(())
    }

    /// Raises the partition's high watermark to the entry after `index`
    /// (capped at the log end: a follower may know a commit it lacks).
    fn raise_high_watermark(&self, index: u64) -> Result<(), RaftStoreError> {
        let hw = index.saturating_add(1).min(self.log.log_end_offset());
        self.log.set_high_watermark(hw)?;
        Ok(())
    }

    fn state(&self) -> Result<LogState<C>, RaftStoreError> {
        let last_purged_log_id = self.purged.clone();
        let last_log_id = self.last_log_id()?.or_else(|| last_purged_log_id.clone());
        Ok(LogState { last_purged_log_id, last_log_id })
    }
}

fn write_error<NID: openraft::NodeId>(e: RaftStoreError) -> StorageError<NID> {
    StorageIOError::write_logs(&e).into()
}

impl<C> RaftLogReader<C> for LogStore<C>
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

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        self.state().map_err(read_error)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write_vote(vote).map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.write_committed(committed).map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Flushed on return: the callback can be called right away.
        match self.append_entries(entries) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(write_error(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.truncate_since(log_id.index).map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.purge_upto(log_id).map_err(write_error)
    }
}
