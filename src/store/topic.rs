//! Topic and partition handles: cheap to clone, `Send + Sync`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::error::{AdminError, Error, Result};
use crate::format::Record;
use crate::log::{AppendInfo, PartitionLog, ReadBound, WaitForOffset};

use super::metadata::TopicConfig;
use super::partitioner::partition_for_key;
use super::reader::{Reader, StartAt};

/// A topic: N partitions, each an independent log.
#[derive(Clone, Debug)]
pub struct Topic {
    inner: Arc<TopicInner>,
}

#[derive(Debug)]
pub(super) struct TopicInner {
    pub(super) name: String,
    pub(super) config: TopicConfig,
    /// Settings kept for the caller (see `Store::create_topic_with_passthrough`).
    pub(super) passthrough: BTreeMap<String, String>,
    pub(super) logs: Vec<PartitionSlot>,
    /// Where the next unkeyed batch goes (round robin, one partition per call).
    next_unkeyed: AtomicU32,
}

/// A partition as the store opened it: serving, or offline with the error
/// its open failed with (the other partitions still serve).
#[derive(Clone, Debug)]
pub(super) enum PartitionSlot {
    Online(Arc<PartitionLog>),
    Offline(Arc<Error>),
}

impl PartitionSlot {
    pub(super) fn online(&self) -> Option<&Arc<PartitionLog>> {
        match self {
            PartitionSlot::Online(log) => Some(log),
            PartitionSlot::Offline(_) => None,
        }
    }
}

/// Where part of a topic append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionAppend {
    /// The partition.
    pub partition: u32,
    /// The offsets assigned there.
    pub info: AppendInfo,
}

impl Topic {
    pub(super) fn new(
        name: String,
        config: TopicConfig,
        passthrough: BTreeMap<String, String>,
        logs: Vec<PartitionSlot>,
    ) -> Self {
        let inner = TopicInner { name, config, passthrough, logs, next_unkeyed: AtomicU32::new(0) };
        Topic { inner: Arc::new(inner) }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The topic's configuration.
    pub fn config(&self) -> &TopicConfig {
        &self.inner.config
    }

    /// The pass-through settings it was created with
    /// ([`crate::Store::create_topic_with_passthrough`]), by name; empty
    /// for a topic created without.
    pub fn passthrough_configs(&self) -> &BTreeMap<String, String> {
        &self.inner.passthrough
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> u32 {
        self.inner.config.partitions
    }

    /// A handle to one partition.
    ///
    /// # Errors
    /// [`crate::AdminError::PartitionOutOfRange`]; [`crate::AdminError::PartitionOffline`] for a
    /// partition whose open failed.
    pub fn partition(&self, partition: u32) -> Result<Partition> {
        let log = self.log(partition)?.clone();
        Ok(Partition { topic: self.inner.clone(), id: partition, log })
    }

    /// Handles to every partition that is online, in order.
    pub fn partitions(&self) -> Vec<Partition> {
        (0..self.partition_count()).filter_map(|id| self.partition(id).ok()).collect()
    }

    /// Partitions that are offline, with the error their open failed with.
    pub fn offline_partitions(&self) -> Vec<(u32, Arc<Error>)> {
        let slots = self.inner.logs.iter().enumerate();
        slots
            .filter_map(|(i, slot)| match slot {
                PartitionSlot::Offline(e) => Some((i as u32, e.clone())),
                PartitionSlot::Online(_) => None,
            })
            .collect()
    }

    fn log(&self, partition: u32) -> Result<&Arc<PartitionLog>> {
        let slot = self.inner.logs.get(partition as usize).ok_or_else(|| {
            Error::Admin(AdminError::PartitionOutOfRange {
                topic: self.inner.name.clone(),
                partition,
                partitions: self.partition_count(),
            })
        })?;
        match slot {
            PartitionSlot::Online(log) => Ok(log),
            PartitionSlot::Offline(cause) => Err(Error::Admin(AdminError::PartitionOffline {
                topic: self.inner.name.clone(),
                partition,
                cause: cause.clone(),
            })),
        }
    }

    /// The partition a record goes to: Kafka's default partitioner for a
    /// keyed record; `None` for an unkeyed one (see [`Topic::append`]).
    pub fn partition_for(&self, record: &Record) -> Option<u32> {
        record.key.as_ref().map(|k| partition_for_key(k, self.partition_count()))
    }

    /// Appends records, choosing partitions as Kafka's default partitioner
    /// does: a keyed record goes to `(murmur2(key) & 0x7fffffff) % partitions`;
    /// the unkeyed records of one call all go to one partition, chosen round
    /// robin from call to call (sticky per batch, so a batch stays one write).
    /// Records for one partition keep their order and form one batch.
    ///
    /// Partitions are appended in order; when one fails, those before it
    /// have been appended (as with any Kafka producer, a topic append is not
    /// atomic across partitions).
    ///
    /// # Errors
    /// As [`PartitionLog::append`]; [`crate::AppendError::Encode`] for no records.
    pub fn append(&self, records: &[Record]) -> Result<Vec<PartitionAppend>> {
        if records.is_empty() {
            return Err(crate::format::EncodeError::Empty.into());
        }
        let partitions = self.partition_count();
        let mut unkeyed = None;
        let mut groups: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
        for record in records {
            let p = self.partition_for(record).unwrap_or_else(|| {
                *unkeyed.get_or_insert_with(|| {
                    self.inner.next_unkeyed.fetch_add(1, Ordering::Relaxed) % partitions
                })
            });
            groups.entry(p).or_default().push(record.clone());
        }
        let mut appended = Vec::with_capacity(groups.len());
        for (partition, batch) in groups {
            let info = self.log(partition)?.append(&batch)?;
            appended.push(PartitionAppend { partition, info });
        }
        Ok(appended)
    }

    /// Appends records to one given partition, as one batch.
    ///
    /// # Errors
    /// [`crate::AdminError::PartitionOutOfRange`]; as [`PartitionLog::append`].
    pub fn append_to(&self, partition: u32, records: &[Record]) -> Result<AppendInfo> {
        self.log(partition)?.append(records)
    }

    /// Makes everything appended to this topic so far durable.
    ///
    /// # Errors
    /// The first error of flushing a partition (all are attempted).
    pub fn flush(&self) -> Result<()> {
        let mut first_error = None;
        for log in self.logs() {
            if let Err(e) = log.flush() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The online partitions' logs.
    pub(super) fn logs(&self) -> impl Iterator<Item = &Arc<PartitionLog>> {
        self.inner.logs.iter().filter_map(PartitionSlot::online)
    }

    /// Every partition's slot, in order.
    pub(super) fn slots(&self) -> &[PartitionSlot] {
        &self.inner.logs
    }
}

/// A handle to one partition of a topic.
#[derive(Clone, Debug)]
pub struct Partition {
    topic: Arc<TopicInner>,
    id: u32,
    log: Arc<PartitionLog>,
}

/// Everything a partition's log does ([`PartitionLog`]'s methods: append,
/// read, waits, truncation, flush, metrics) is a `Partition`'s too.
impl std::ops::Deref for Partition {
    type Target = PartitionLog;

    fn deref(&self) -> &PartitionLog {
        &self.log
    }
}

impl Partition {
    /// The partition number.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// A consumer positioned at `start` (a timestamp with no record at or
    /// after it positions at the log end).
    pub fn reader(&self, start: StartAt) -> Reader {
        Reader::new(self.clone(), start)
    }

    /// As [`PartitionLog::wait_for_async`].
    pub fn wait_for_async(&self, offset: u64, bound: ReadBound) -> WaitForOffset {
        PartitionLog::wait_for_async(&self.log, offset, bound)
    }
}
