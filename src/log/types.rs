//! What the log's operations report: plain values, shared by the files of
//! `log/` (and re-exported), so none of them imports another for a type.

use crate::segment::Quarantine;

/// How far a read goes, and what a wait waits for (Kafka's isolation:
/// `LogEnd` is a leader's own view, `HighWatermark` a consumer's
/// read_uncommitted on a replicated partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBound {
    /// Up to the log end offset: every acknowledged append.
    LogEnd,
    /// Below the high watermark (records a replication layer committed).
    HighWatermark,
    /// Below the durable offset (records a power cut cannot take back).
    Durable,
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: u64,
    /// Offset of the last record appended.
    pub last_offset: u64,
    /// Largest timestamp in the batch: on a LogAppendTime log, the append
    /// time the log stamped as the batches' maxTimestamp (Kafka's
    /// `logAppendTime`; for an idempotent producer's retry, the first
    /// append's).
    pub max_timestamp_ms: i64,
}

/// An append written to the log (in the page cache, and readable up to
/// the high watermark) whose durability policy is not applied yet:
/// [`crate::PartitionLog::append_batches_written`] returns it, and
/// [`crate::PartitionLog::complete`] takes it. Dropping it leaves the
/// records in the log, durable only as later fsyncs make them.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an append is acknowledged only once `complete` has applied its durability"]
pub struct Written(pub(super) AppendInfo);

impl Written {
    /// Where the append landed.
    pub fn info(&self) -> &AppendInfo {
        &self.0
    }
}

/// How [`crate::PartitionLog::complete`] completes a written append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The log's durability policy, as `append_batches` applies it.
    Policy,
    /// The policy, then, if its records are not durable yet, a group
    /// commit fsync: what a broker's durable acks=-1 answer waits for.
    Durable,
}

/// What opening the log found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The previous close was clean (nothing needed a full scan).
    pub clean_shutdown: bool,
    /// Segments opened.
    pub segments: usize,
    /// Bytes of log data validated while opening.
    pub bytes_scanned: u64,
    /// Bytes of torn tail cut off (past the synced extent: never bytes
    /// known fsynced).
    pub bytes_truncated: u64,
    /// The first offset cut with them, if any were.
    pub truncated_from_offset: Option<u64>,
    /// Segments whose index was rebuilt from the log.
    pub indexes_rebuilt: usize,
    /// Tails cut that were not plain torn writes (valid batches followed
    /// the damage, a whole batch failed its CRC, or bytes trailed a durable
    /// segment's last record): their bytes were moved to these quarantine
    /// files, not destroyed.
    pub quarantined: Vec<Quarantine>,
}

/// What one [`crate::PartitionLog::enforce_retention`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes of log data deleted.
    pub bytes_deleted: u64,
    /// Idempotent producers forgotten (`producer_id_expiration_ms`).
    pub producers_expired: usize,
}

impl RetentionReport {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: RetentionReport) {
        self.segments_deleted += other.segments_deleted;
        self.bytes_deleted += other.bytes_deleted;
        self.producers_expired += other.producers_expired;
    }
}

/// What a [`crate::PartitionLog::compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Passes run (more than one when the keys did not fit the budget).
    pub passes: usize,
    /// Old segments replaced.
    pub segments_cleaned: usize,
    /// Bytes of the segments rewritten.
    pub bytes_read: u64,
    /// Bytes of the segments written.
    pub bytes_written: u64,
    /// Records removed.
    pub records_removed: u64,
    /// Largest memory the key map took (bytes).
    pub map_memory_bytes: usize,
}

impl CompactionReport {
    /// Adds `other` into `self` (passes and sizes summed, the map's peak
    /// kept).
    pub fn add(&mut self, other: CompactionReport) {
        self.passes += other.passes;
        self.segments_cleaned += other.segments_cleaned;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.records_removed += other.records_removed;
        self.map_memory_bytes = self.map_memory_bytes.max(other.map_memory_bytes);
    }
}
