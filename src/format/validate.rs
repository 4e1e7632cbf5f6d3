//! The checks a leader runs on a producer's batches before a pass-through
//! append: Kafka's `LogValidator` for uncompressed v2 batches from a
//! client. Nothing a client sends is trusted: the CRC, every header field,
//! every record's framing and offset delta, sizes, timestamps and the
//! producer fields are checked, and the offsets and leader epoch are
//! stamped by the log afterwards (they sit outside the CRC).

use super::batch::{check_batch_crc, check_records, BatchHeader, Inflater};
use super::compression::CodecError;
use super::error::{DecodeError, DecodeErrorKind};

/// What a producer's batch must satisfy (the topic's configuration).
#[derive(Clone, Copy, Debug)]
pub struct ClientRules {
    /// Largest record, its length prefix included.
    pub max_record_bytes: usize,
    /// Largest batch, its header included.
    pub max_batch_bytes: usize,
    /// Every record needs a key (a compacted topic).
    pub keys_required: bool,
    /// The topic stamps LogAppendTime: record timestamps are not checked.
    pub log_append_time: bool,
    /// Kafka's `message.timestamp.before.max.ms`.
    pub before_max_ms: i64,
    /// Kafka's `message.timestamp.after.max.ms`.
    pub after_max_ms: i64,
    /// The log's clock.
    pub now_ms: i64,
}

/// Why a producer's batch was refused; [`BatchProblem::kafka_error_code`]
/// is the code a Kafka broker answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchProblem {
    /// Bad CRC, framing or header field (Kafka's `CORRUPT_MESSAGE`).
    Corrupt(DecodeError),
    /// A compression codec this build does not implement (Kafka's
    /// `UNSUPPORTED_COMPRESSION_TYPE`).
    UnsupportedCompression(u16),
    /// Compressed records that inflate past the cap (`MESSAGE_TOO_LARGE`).
    InflatesTooLarge {
        /// The cap.
        max: usize,
    },
    /// A record Kafka's validator refuses (`INVALID_RECORD`).
    InvalidRecord(&'static str),
    /// A record timestamp outside the topic's window (`INVALID_TIMESTAMP`).
    InvalidTimestamp {
        /// The record's timestamp.
        timestamp_ms: i64,
        /// The log's clock.
        now_ms: i64,
    },
    /// A record over `max_record_bytes` (`MESSAGE_TOO_LARGE`).
    RecordTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A batch over `max_batch_bytes` (`MESSAGE_TOO_LARGE`).
    BatchTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A transactional batch: transactions are not implemented yet.
    Transactional,
}

impl BatchProblem {
    /// The Kafka protocol error code for this problem.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            BatchProblem::Corrupt(_) => 2,
            BatchProblem::UnsupportedCompression(_) => 76,
            BatchProblem::InvalidRecord(_) => 87,
            BatchProblem::InvalidTimestamp { .. } => 32,
            BatchProblem::RecordTooLarge { .. }
            | BatchProblem::BatchTooLarge { .. }
            | BatchProblem::InflatesTooLarge { .. } => 10,
            BatchProblem::Transactional => 48,
        }
    }
}

impl std::fmt::Display for BatchProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchProblem::Corrupt(e) => write!(f, "corrupt: {}", e.kind),
            BatchProblem::UnsupportedCompression(c) => write!(f, "unsupported compression codec {c}"),
            BatchProblem::InvalidRecord(why) => write!(f, "invalid record: {why}"),
            BatchProblem::InvalidTimestamp { timestamp_ms, now_ms } => {
                write!(f, "timestamp {timestamp_ms} outside the topic's window around {now_ms}")
            }
            BatchProblem::RecordTooLarge { size, max } => {
                write!(f, "record of {size} bytes over max_record_bytes {max}")
            }
            BatchProblem::BatchTooLarge { size, max } => {
                write!(f, "batch of {size} bytes over max_batch_bytes {max}")
            }
            BatchProblem::InflatesTooLarge { max } => {
                write!(f, "compressed records inflate past {max} bytes")
            }
            BatchProblem::Transactional => write!(f, "transactional batches are not supported yet"),
        }
    }
}

/// Whether a CreateTime timestamp `ts` lies within Kafka's
/// `message.timestamp.before.max.ms` / `after.max.ms` window around the
/// log's clock `now_ms`.
pub fn within_window(ts: i64, now_ms: i64, before_max_ms: i64, after_max_ms: i64) -> bool {
    ts.saturating_sub(now_ms) <= after_max_ms && now_ms.saturating_sub(ts) <= before_max_ms
}

/// A producer's batch that passed [`validate_client_batch`].
#[derive(Clone, Copy, Debug)]
pub struct ClientBatch {
    /// Its header as sent (base offset and leader epoch not yet stamped).
    pub header: BatchHeader,
    /// The largest record timestamp, when the header's maxTimestamp
    /// claims more (the broker corrects it, as Kafka's does).
    pub actual_max_timestamp_ms: Option<i64>,
}

/// Checks the batch at the front of `buf` (more bytes may follow) as a
/// client batch under `rules`. A refusal names the byte, relative to
/// `buf`, where the problem lies (the first byte of the compressed records
/// for a problem inside them).
///
/// Compressed records are inflated into `inflater` (reuse it across
/// calls), to at most `max_batch_bytes` and
/// [`MAX_INFLATED_BYTES`](super::compression::MAX_INFLATED_BYTES).
///
/// # Errors
/// The byte position and the [`BatchProblem`].
pub fn validate_client_batch(
    buf: &[u8],
    rules: &ClientRules,
    inflater: &mut Inflater,
) -> Result<ClientBatch, (usize, BatchProblem)> {
    if let Some(len) = super::batch::peek_batch_len(buf) {
        if len as usize > rules.max_batch_bytes {
            return Err((8, BatchProblem::BatchTooLarge { size: len as usize, max: rules.max_batch_bytes }));
        }
    }
    let header = check_batch_crc(buf).map_err(|e| match e.kind {
        DecodeErrorKind::UnsupportedCodec(c) => (e.position, BatchProblem::UnsupportedCompression(c)),
        _ => (e.position, BatchProblem::Corrupt(e)),
    })?;
    let invalid = |at: usize, why| Err((at, BatchProblem::InvalidRecord(why)));
    if header.is_control() {
        return invalid(21, "a client may not send a control batch");
    }
    if header.is_transactional() {
        return Err((21, BatchProblem::Transactional));
    }
    if header.is_log_append_time() || header.delete_horizon_ms().is_some() {
        return invalid(21, "a client batch with the LogAppendTime or delete-horizon bit set");
    }
    if header.record_count == 0 || u64::from(header.record_count) != u64::from(header.last_offset_delta) + 1 {
        return invalid(57, "record count does not match the batch's offset range");
    }
    if header.producer_id >= 0 && (header.producer_epoch < 0 || header.base_sequence < 0) {
        return invalid(43, "an idempotent batch needs a producer epoch and a base sequence");
    }
    if header.producer_id < -1 {
        return invalid(43, "producer id below -1");
    }
    let batch = &buf[..header.batch_len as usize];
    let mut max_seen = i64::MIN;
    let corrupt = |e: DecodeError| match e.kind {
        DecodeErrorKind::Compression(CodecError::Disabled(c)) => {
            (e.position, BatchProblem::UnsupportedCompression(c.id()))
        }
        DecodeErrorKind::Compression(CodecError::TooLarge { cap, .. }) => {
            (e.position, BatchProblem::InflatesTooLarge { max: cap })
        }
        _ => (e.position, BatchProblem::Corrupt(e)),
    };
    inflater.cap = rules.max_batch_bytes.min(super::compression::MAX_INFLATED_BYTES);
    let records = inflater.records(batch, header).map_err(corrupt)?;
    check_records(records, corrupt, |index, record, span| {
        let (at, size) = (span.start, span.len());
        if size > rules.max_record_bytes {
            return Err((at, BatchProblem::RecordTooLarge { size, max: rules.max_record_bytes }));
        }
        if record.offset - header.base_offset != u64::from(index) {
            return Err((
                at,
                BatchProblem::InvalidRecord("offset delta is not the record's position in the batch"),
            ));
        }
        if rules.keys_required && record.key.is_none() {
            return Err((at, BatchProblem::InvalidRecord("a compacted topic needs a key on every record")));
        }
        let ts = record.timestamp_ms;
        if !rules.log_append_time && !within_window(ts, rules.now_ms, rules.before_max_ms, rules.after_max_ms)
        {
            return Err((at, BatchProblem::InvalidTimestamp { timestamp_ms: ts, now_ms: rules.now_ms }));
        }
        max_seen = max_seen.max(ts);
        Ok(())
    })?;
    let actual_max_timestamp_ms = (max_seen != header.max_timestamp_ms).then_some(max_seen);
    Ok(ClientBatch { header, actual_max_timestamp_ms })
}
