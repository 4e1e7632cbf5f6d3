//! A consumer of one partition that keeps its position across calls.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::format::FetchedRecords;
use crate::log::{ReadBound, WaitForOffset};

use super::topic::Partition;

/// Where a [`Reader`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The log start offset.
    Earliest,
    /// The log end offset: only records appended from now on.
    Latest,
    /// A given offset.
    Offset(u64),
    /// The first record with a timestamp at or after this (milliseconds);
    /// the log end when every record is older.
    Timestamp(i64),
}

/// Default bytes fetched per poll.
pub const DEFAULT_FETCH_BYTES: usize = 1 << 20;

/// A consumer of one partition. Each poll returns the records after the
/// previous poll's; [`Reader::poll_wait`] and [`Reader::wait`] tail the log.
///
/// # Examples
///
/// ```
/// use annals::{Record, StartAt, Store, StoreConfig, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), StoreConfig::default())?;
/// let topic = store.create_topic("events", TopicConfig::with_partitions(1))?;
/// let partition = topic.partition(0)?;
/// let mut reader = partition.reader(StartAt::Earliest);
/// partition.append(&[Record::new("a"), Record::new("b")])?;
/// let got: Vec<_> = reader.poll()?.records().map(|r| r.offset).collect();
/// assert_eq!(got, [0, 1]);
/// assert_eq!(reader.position(), 2);
/// assert!(reader.poll()?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Reader {
    partition: Partition,
    position: u64,
    max_bytes: usize,
    bound: ReadBound,
}

impl Reader {
    pub(super) fn new(partition: Partition, start: StartAt) -> Self {
        let position = match start {
            StartAt::Earliest => partition.log_start_offset(),
            StartAt::Latest => partition.log_end_offset(),
            StartAt::Offset(o) => o,
            StartAt::Timestamp(ts) => match partition.offset_for_timestamp(ts) {
                Ok(Some(offset)) => offset,
                Ok(None) => partition.log_end_offset(),
                // A damaged batch on the way: start at the log start, so the
                // first poll that reaches it reports the corruption.
                Err(_) => partition.log_start_offset(),
            },
        };
        Reader { partition, position, max_bytes: DEFAULT_FETCH_BYTES, bound: ReadBound::LogEnd }
    }

    /// Bytes to fetch per poll (at least one batch is always returned).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Reads only records below the partition's high watermark (those a
    /// replication layer marked committed); polls at it return nothing.
    pub fn committed_only(mut self) -> Self {
        self.bound = ReadBound::HighWatermark;
        self
    }

    /// Reads only records below the partition's durable offset (fsynced:
    /// a power cut cannot take them back); polls at it return nothing
    /// until an fsync covers more.
    pub fn durable_only(mut self) -> Self {
        self.bound = ReadBound::Durable;
        self
    }

    /// How far this reader reads.
    pub fn bound(&self) -> ReadBound {
        self.bound
    }

    /// The offset the next poll reads from.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Moves the position.
    pub fn seek(&mut self, offset: u64) {
        self.position = offset;
    }

    /// The partition read.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Records from the position on (empty at the log end), advancing past
    /// them.
    ///
    /// # Errors
    /// [`crate::Error::OffsetOutOfRange`] when the position is outside the
    /// log (seek to recover); [`crate::Error::Corruption`]; [`crate::Error::Io`].
    pub fn poll(&mut self) -> Result<FetchedRecords> {
        let fetched = self.partition.read(self.position, self.max_bytes, self.bound)?;
        if let Some(next) = fetched.next_offset() {
            self.position = next;
        }
        Ok(fetched)
    }

    /// Like [`Reader::poll`], but at the bound waits up to `timeout` for it
    /// to move first (an append, or for a committed or durable reader the
    /// high watermark or an fsync past the position's batch).
    ///
    /// # Errors
    /// As [`Reader::poll`].
    pub fn poll_wait(&mut self, timeout: Duration) -> Result<FetchedRecords> {
        let fetched = self.poll()?;
        if !fetched.is_empty() {
            return Ok(fetched);
        }
        // The position's batch may straddle the bound: wait for it to move
        // past where it is now. Bounded by the deadline.
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let target = self.position.max(self.partition.bound_offset(self.bound));
            if !self.partition.wait_for(target, self.bound, left) {
                return Ok(FetchedRecords::default());
            }
            let fetched = self.poll()?;
            if !fetched.is_empty() {
                return Ok(fetched);
            }
        }
    }

    /// A future resolving once the bound is past the position; then
    /// [`Reader::poll`] returns a record, unless the position's batch
    /// still straddles the bound (wait again from there).
    pub fn wait(&self) -> WaitForOffset {
        self.partition.wait_for_async(self.position, self.bound)
    }
}
