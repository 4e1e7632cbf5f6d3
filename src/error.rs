//! The crate's error type: one enum, matched by variant, never by string.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::format::{DecodeError, EncodeError};

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
    /// The records cannot make a batch (none, too large, a negative
    /// timestamp); nothing was written.
    Encode(EncodeError),
    /// The log or store was closed.
    Closed,
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
    /// A record without a key appended to a compacted topic (compaction
    /// keeps the latest record per key, so a keyless record has no place).
    UnkeyedRecordInCompactedLog {
        /// Its position in the appended batch.
        index: usize,
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
    /// A consumer group name that is empty or too long.
    InvalidGroupName {
        /// The name given.
        group: String,
    },
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
    /// A file the engine did not write sits where it keeps its data; it is
    /// left alone, and nothing is opened over it.
    UnexpectedFile {
        /// The file or directory.
        path: PathBuf,
    },
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
    /// A metadata file that does not parse or fails its checksum.
    InvalidMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value out of bounds.
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
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
    /// A segment file of the format annals wrote before it stored Kafka's
    /// RecordBatch v2 (magic 1). This build does not read it, and there is
    /// no converter (0.x): re-create the data directory.
    PreKafkaFormat {
        /// The segment file.
        path: PathBuf,
    },
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
            Error::Encode(e) => Error::Encode(e.clone()),
            Error::Closed => Error::Closed,
            Error::PartitionOffline { topic, partition, cause } => {
                Error::PartitionOffline { topic: topic.clone(), partition: *partition, cause: cause.clone() }
            }
            Error::TopicIncomplete { topic, created, partitions, cause } => Error::TopicIncomplete {
                topic: topic.clone(),
                created: *created,
                partitions: *partitions,
                cause: cause.clone(),
            },
            Error::UnkeyedRecordInCompactedLog { index } => {
                Error::UnkeyedRecordInCompactedLog { index: *index }
            }
            Error::NotCompacted => Error::NotCompacted,
            Error::CleanerMemoryTooSmall { segment_base_offset, cleaner_memory_bytes } => {
                Error::CleanerMemoryTooSmall {
                    segment_base_offset: *segment_base_offset,
                    cleaner_memory_bytes: *cleaner_memory_bytes,
                }
            }
            Error::InvalidGroupName { group } => Error::InvalidGroupName { group: group.clone() },
            Error::Poisoned { dir, cause } => Error::Poisoned { dir: dir.clone(), cause: cause.clone() },
            Error::DiskFull { path } => Error::DiskFull { path: path.clone() },
            Error::UnexpectedFile { path } => Error::UnexpectedFile { path: path.clone() },
            Error::UnknownTopic { topic } => Error::UnknownTopic { topic: topic.clone() },
            Error::TopicExists { topic } => Error::TopicExists { topic: topic.clone() },
            Error::InvalidTopicName { topic, reason } => {
                Error::InvalidTopicName { topic: topic.clone(), reason }
            }
            Error::PartitionOutOfRange { topic, partition, partitions } => Error::PartitionOutOfRange {
                topic: topic.clone(),
                partition: *partition,
                partitions: *partitions,
            },
            Error::InvalidPartitionCount { partitions, max } => {
                Error::InvalidPartitionCount { partitions: *partitions, max: *max }
            }
            Error::StoreLocked { path } => Error::StoreLocked { path: path.clone() },
            Error::LogLocked { dir } => Error::LogLocked { dir: dir.clone() },
            Error::InvalidMetadata { path, reason } => {
                Error::InvalidMetadata { path: path.clone(), reason: reason.clone() }
            }
            Error::InvalidConfig { field, reason } => Error::InvalidConfig { field, reason: reason.clone() },
            Error::StaleLeaderEpoch { epoch, latest } => {
                Error::StaleLeaderEpoch { epoch: *epoch, latest: *latest }
            }
            Error::NonContiguousBatch { expected, found } => {
                Error::NonContiguousBatch { expected: *expected, found: *found }
            }
            Error::OutOfOrderSequence { producer_id, expected, found } => {
                Error::OutOfOrderSequence { producer_id: *producer_id, expected: *expected, found: *found }
            }
            Error::ProducerFenced { producer_id, epoch, current } => {
                Error::ProducerFenced { producer_id: *producer_id, epoch: *epoch, current: *current }
            }
            Error::InvalidBatch { batch, position, problem } => {
                Error::InvalidBatch { batch: *batch, position: *position, problem: problem.clone() }
            }
            Error::InvalidTimestamp { index, timestamp_ms, now_ms } => {
                Error::InvalidTimestamp { index: *index, timestamp_ms: *timestamp_ms, now_ms: *now_ms }
            }
            Error::PreKafkaFormat { path } => Error::PreKafkaFormat { path: path.clone() },
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
        Error::Encode(e)
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
            // Transparent: the encode error's own message (it has no source).
            Error::Encode(e) => write!(f, "{e}"),
            Error::InvalidConfig { field, reason } => write!(f, "invalid config {field}: {reason}"),
            Error::Closed => write!(f, "closed"),
            // Their causes are `source()`, not repeated here.
            Error::PartitionOffline { topic, partition, .. } => {
                write!(f, "partition {topic}-{partition} is offline")
            }
            Error::TopicIncomplete { topic, created, partitions, .. } => write!(
                f,
                "topic {topic} created with {created} of {partitions} partitions; \
                 its metadata is durable and the next open creates the rest"
            ),
            Error::UnkeyedRecordInCompactedLog { index } => {
                write!(f, "record {index} has no key: a compacted topic needs one")
            }
            Error::NotCompacted => write!(f, "the topic's cleanup policy is delete: nothing to compact"),
            Error::CleanerMemoryTooSmall { segment_base_offset, cleaner_memory_bytes } => write!(
                f,
                "cleaner_memory_bytes {cleaner_memory_bytes} cannot hold the keys of segment {segment_base_offset}"
            ),
            Error::InvalidGroupName { group } => write!(f, "invalid consumer group name {group:?}"),
            Error::Poisoned { dir, .. } => {
                write!(f, "partition {} is poisoned by an earlier failure; reopen it", dir.display())
            }
            Error::DiskFull { path } => write!(f, "disk full writing {}", path.display()),
            Error::UnexpectedFile { path } => {
                write!(f, "unexpected file {} in a data directory (left untouched)", path.display())
            }
            Error::UnknownTopic { topic } => write!(f, "unknown topic {topic:?}"),
            Error::TopicExists { topic } => write!(f, "topic {topic:?} exists already"),
            Error::InvalidTopicName { topic, reason } => write!(f, "invalid topic name {topic:?}: {reason}"),
            Error::PartitionOutOfRange { topic, partition, partitions } => {
                write!(f, "partition {partition} out of range: topic {topic:?} has {partitions}")
            }
            Error::InvalidPartitionCount { partitions, max } => {
                write!(f, "invalid partition count {partitions}: must be 1..={max}")
            }
            Error::StaleLeaderEpoch { epoch, latest } => {
                write!(f, "leader epoch {epoch} is below the partition's latest epoch {latest}")
            }
            Error::NonContiguousBatch { expected, found } => {
                write!(f, "replicated batch starts at offset {found}, the log continues at {expected}")
            }
            Error::OutOfOrderSequence { producer_id, expected, found } => {
                write!(f, "producer {producer_id}: batch sequence {found} out of order, expected {expected}")
            }
            Error::ProducerFenced { producer_id, epoch, current } => {
                write!(f, "producer {producer_id}: epoch {epoch} is fenced by epoch {current}")
            }
            Error::InvalidBatch { batch, position, problem } => {
                write!(f, "batch {batch} refused at byte {position}: {problem}")
            }
            Error::InvalidTimestamp { index, timestamp_ms, now_ms } => write!(
                f,
                "record {index} has timestamp {timestamp_ms}, outside the topic's window around {now_ms}"
            ),
            Error::PreKafkaFormat { path } => write!(
                f,
                "{} is in annals' pre-Kafka segment format (magic 1); this build stores Kafka's \
                 RecordBatch v2 and has no converter: re-create the data directory",
                path.display()
            ),
            Error::StoreLocked { path } => {
                write!(f, "data directory is already open (lock {} is held)", path.display())
            }
            Error::LogLocked { dir } => {
                write!(f, "log directory {} is already open (its .lock is held)", dir.display())
            }
            Error::InvalidMetadata { path, reason } => {
                write!(f, "invalid metadata {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Poisoned { cause, .. } => Some(&**cause),
            Error::PartitionOffline { cause, .. } => Some(&**cause),
            Error::TopicIncomplete { cause, .. } => Some(&**cause),
            // A corruption's detail is part of its message.
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
