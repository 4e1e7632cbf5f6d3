//! The errors of each surface under the umbrella: opening, appending and
//! administering. (A read refuses nothing of its own: its errors are the
//! umbrella's shared ones, [`Error::OffsetOutOfRange`], [`Error::Corruption`],
//! [`Error::Io`] and [`Error::Closed`].)

use std::fmt;
use std::path::PathBuf;

use super::Error;
use crate::format::EncodeError;

/// Why a log or a store did not open: its directory is held, or holds what
/// annals did not write or cannot read.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory is open in another `Store` (this or another process).
    StoreLocked {
        /// The lock file.
        path: PathBuf,
    },
    /// The partition directory is open in another log handle (this or
    /// another process): two writers on one log would overwrite each
    /// other's acknowledged records.
    LogLocked {
        /// The partition (or raft log) directory.
        dir: PathBuf,
    },
    /// A file the engine did not write sits where it keeps its data; it is
    /// left alone, and nothing is opened over it.
    UnexpectedFile {
        /// The file or directory.
        path: PathBuf,
    },
    /// A metadata file that does not parse or fails its checksum.
    InvalidMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A segment file of the format annals wrote before it stored Kafka's
    /// RecordBatch v2 (magic 1). This build does not read it, and there is
    /// no converter (0.x): re-create the data directory.
    PreKafkaFormat {
        /// The segment file.
        path: PathBuf,
    },
}

/// Why an append (records, a producer's batches, a leader's batches, a
/// group's offset commit) was refused; nothing was written.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AppendError {
    /// The records cannot make a batch (none, too large, a negative
    /// timestamp); nothing was written.
    Encode(EncodeError),
    /// A batch refused by a pass-through append (a producer's, by
    /// [`crate::PartitionLog::append_batches`], or a leader's, by
    /// [`crate::PartitionLog::append_replica`]); nothing was appended.
    InvalidBatch {
        /// Which batch of the bytes given (0 for the first).
        batch: usize,
        /// The byte, in the bytes given, where the problem lies.
        position: usize,
        /// What is wrong (and the Kafka error code for it).
        problem: crate::format::BatchProblem,
    },
    /// Record `index` of an append has a timestamp outside the topic's
    /// `message_timestamp_before_max_ms` / `after_max_ms` window around
    /// the log's clock (Kafka's `INVALID_TIMESTAMP`).
    InvalidTimestamp {
        /// Position of the record in the append.
        index: usize,
        /// Its timestamp.
        timestamp_ms: i64,
        /// The log's clock.
        now_ms: i64,
    },
    /// A record without a key appended to a compacted topic (compaction
    /// keeps the latest record per key, so a keyless record has no place).
    UnkeyedRecordInCompactedLog {
        /// Its position in the appended batch.
        index: usize,
    },
    /// An append carries a leader epoch below the partition's latest one
    /// (a deposed leader, or replicated batches out of order).
    StaleLeaderEpoch {
        /// The append's epoch.
        epoch: i32,
        /// The latest epoch the partition has.
        latest: i32,
    },
    /// A replicated batch does not start at the offset that continues the
    /// log (leader and follower disagree: find the divergence with
    /// `end_offset_for_epoch` and truncate first).
    NonContiguousBatch {
        /// The offset the log needs next.
        expected: u64,
        /// The batch's base offset.
        found: u64,
    },
    /// An idempotent producer's batch does not continue its sequence (a
    /// batch was lost in between, or a retry older than the last five).
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The sequence the partition expects next.
        expected: i32,
        /// The batch's first sequence.
        found: i32,
    },
    /// An idempotent producer's batch carries an epoch below the producer's
    /// current one: a newer instance of the producer took over.
    ProducerFenced {
        /// The producer.
        producer_id: i64,
        /// The batch's producer epoch.
        epoch: i16,
        /// The producer's current epoch.
        current: i16,
    },
}

/// Why a call naming or changing topics, partitions or groups (create,
/// delete, look up, compact) was refused.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AdminError {
    /// No topic of that name.
    UnknownTopic {
        /// The name asked for.
        topic: String,
    },
    /// A topic of that name exists already.
    TopicExists {
        /// The name.
        topic: String,
    },
    /// A topic name that is not `[A-Za-z0-9._-]{1,249}`, or is `.` or `..`.
    InvalidTopicName {
        /// The name given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A partition number at or above the topic's partition count.
    PartitionOutOfRange {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// The topic's partition count.
        partitions: u32,
    },
    /// A partition count of 0 or over the limit.
    InvalidPartitionCount {
        /// The count given.
        partitions: u32,
        /// The largest allowed.
        max: u32,
    },
    /// `create_topic` stopped part way: the topic's metadata is durable,
    /// `created` of its `partitions` were opened, and the next
    /// `Store::open` creates the others (the topic then exists in full).
    TopicIncomplete {
        /// The topic.
        topic: String,
        /// Partitions opened before the failure.
        created: u32,
        /// Partitions the topic has.
        partitions: u32,
        /// What stopped it.
        cause: std::sync::Arc<Error>,
    },
    /// A partition whose open failed: the store serves its other
    /// partitions, and this one reports why until it is repaired and the
    /// store reopened (Kafka's offline partition, `KAFKA_STORAGE_ERROR`).
    PartitionOffline {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The error its open failed with.
        cause: std::sync::Arc<Error>,
    },
    /// A consumer group name that is empty or too long.
    InvalidGroupName {
        /// The name given.
        group: String,
    },
    /// Compaction asked of a log whose cleanup policy is `delete`.
    NotCompacted,
    /// The cleaner's memory budget cannot hold the keys of one segment.
    CleanerMemoryTooSmall {
        /// The segment that does not fit.
        segment_base_offset: u64,
        /// The budget.
        cleaner_memory_bytes: usize,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::StoreLocked { path } => {
                write!(f, "data directory is already open (lock {} is held)", path.display())
            }
            OpenError::LogLocked { dir } => {
                write!(f, "log directory {} is already open (its .lock is held)", dir.display())
            }
            OpenError::UnexpectedFile { path } => {
                write!(f, "unexpected file {} in a data directory (left untouched)", path.display())
            }
            OpenError::InvalidMetadata { path, reason } => {
                write!(f, "invalid metadata {}: {reason}", path.display())
            }
            OpenError::PreKafkaFormat { path } => write!(
                f,
                "{} is in annals' pre-Kafka segment format (magic 1); this build stores Kafka's \
                 RecordBatch v2 and has no converter: re-create the data directory",
                path.display()
            ),
        }
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Error {
        Error::Open(e)
    }
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the encode error's own message (it has no source).
            AppendError::Encode(e) => write!(f, "{e}"),
            AppendError::InvalidBatch { batch, position, problem } => {
                write!(f, "batch {batch} refused at byte {position}: {problem}")
            }
            AppendError::InvalidTimestamp { index, timestamp_ms, now_ms } => write!(
                f,
                "record {index} has timestamp {timestamp_ms}, outside the topic's window around {now_ms}"
            ),
            AppendError::UnkeyedRecordInCompactedLog { index } => {
                write!(f, "record {index} has no key: a compacted topic needs one")
            }
            AppendError::StaleLeaderEpoch { epoch, latest } => {
                write!(f, "leader epoch {epoch} is below the partition's latest epoch {latest}")
            }
            AppendError::NonContiguousBatch { expected, found } => {
                write!(f, "replicated batch starts at offset {found}, the log continues at {expected}")
            }
            AppendError::OutOfOrderSequence { producer_id, expected, found } => {
                write!(f, "producer {producer_id}: batch sequence {found} out of order, expected {expected}")
            }
            AppendError::ProducerFenced { producer_id, epoch, current } => {
                write!(f, "producer {producer_id}: epoch {epoch} is fenced by epoch {current}")
            }
        }
    }
}

impl From<AppendError> for Error {
    fn from(e: AppendError) -> Error {
        Error::Append(e)
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::UnknownTopic { topic } => write!(f, "unknown topic {topic:?}"),
            AdminError::TopicExists { topic } => write!(f, "topic {topic:?} exists already"),
            AdminError::InvalidTopicName { topic, reason } => write!(f, "invalid topic name {topic:?}: {reason}"),
            AdminError::PartitionOutOfRange { topic, partition, partitions } => {
                write!(f, "partition {partition} out of range: topic {topic:?} has {partitions}")
            }
            AdminError::InvalidPartitionCount { partitions, max } => {
                write!(f, "invalid partition count {partitions}: must be 1..={max}")
            }
            AdminError::TopicIncomplete { topic, created, partitions, .. } => write!(
                f,
                "topic {topic} created with {created} of {partitions} partitions; \
                 its metadata is durable and the next open creates the rest"
            ),
            // Their causes are `source()`, not repeated here.
            AdminError::PartitionOffline { topic, partition, .. } => {
                write!(f, "partition {topic}-{partition} is offline")
            }
            AdminError::InvalidGroupName { group } => write!(f, "invalid consumer group name {group:?}"),
            AdminError::NotCompacted => write!(f, "the topic's cleanup policy is delete: nothing to compact"),
            AdminError::CleanerMemoryTooSmall { segment_base_offset, cleaner_memory_bytes } => write!(
                f,
                "cleaner_memory_bytes {cleaner_memory_bytes} cannot hold the keys of segment {segment_base_offset}"
            ),
        }
    }
}

impl From<AdminError> for Error {
    fn from(e: AdminError) -> Error {
        Error::Admin(e)
    }
}

impl std::error::Error for OpenError {}

impl std::error::Error for AppendError {}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AdminError::PartitionOffline { cause, .. } | AdminError::TopicIncomplete { cause, .. } => {
                Some(&**cause)
            }
            _ => None,
        }
    }
}
