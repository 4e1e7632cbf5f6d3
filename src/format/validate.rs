//! The checks a leader runs on a producer's batches before a pass-through
//! append, and what it corrects: Kafka's `LogValidator` for v2 batches
//! from a client, with the checks Kafka makes before it
//! (`ProduceRequest.validateRecords`, `UnifiedLog.analyzeAndValidateRecords`).
//! Nothing a client sends is trusted: the CRC, every header field, every
//! record's framing and offset delta, sizes, timestamps and the producer
//! fields are checked. Where Kafka's broker recomputes a field rather
//! than refuse the batch (maxTimestamp, the offset deltas of a compressed
//! batch) so does this; the offsets and leader epoch are stamped by the
//! log afterwards (they sit outside the CRC). What is stored holds every
//! invariant the strict reader (`BatchHeader::parse`, `check_batch`)
//! checks: the leniency is Kafka's producer side only. docs/FORMAT.md,
//! "Producer batches: what Kafka recomputes, tolerates or refuses", lists
//! every field with Kafka's behaviour and this.

use super::batch::{
    check_records_with, compute_crc, inflated_records, put_batch, renumber, BatchHeader, Checks, Inflater,
    RecordIter, WireHeader, ATTRIBUTES_AT, ATTR_CODEC_MASK, ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_KNOWN,
    ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, BASE_OFFSET_AT, BASE_SEQUENCE_AT, BATCH_HEADER_BYTES, CRC_AT,
    LAST_OFFSET_DELTA_AT, LENGTH_AT, MAGIC, MAGIC_AT, PRODUCER_EPOCH_AT, RECORDS_COUNT_AT,
};
use super::compression::{CodecError, Compression};
use super::encode::{EncodeError, EncodeLimits};
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
    /// A timestamp Kafka's validator refuses, or one a stored batch cannot
    /// hold where Kafka stores it (`INVALID_TIMESTAMP`).
    TimestampRefused {
        /// What is wrong.
        why: &'static str,
        /// The timestamp.
        timestamp_ms: i64,
    },
    /// An idempotent batch with a negative producer epoch
    /// (`INVALID_PRODUCER_EPOCH`).
    InvalidProducerEpoch {
        /// The epoch.
        epoch: i16,
    },
}

impl BatchProblem {
    /// The Kafka protocol error code for this problem.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            BatchProblem::Corrupt(_) => 2,
            BatchProblem::UnsupportedCompression(_) => 76,
            BatchProblem::InvalidRecord(_) => 87,
            BatchProblem::InvalidTimestamp { .. } | BatchProblem::TimestampRefused { .. } => 32,
            BatchProblem::RecordTooLarge { .. }
            | BatchProblem::BatchTooLarge { .. }
            | BatchProblem::InflatesTooLarge { .. } => 10,
            BatchProblem::Transactional => 48,
            BatchProblem::InvalidProducerEpoch { .. } => 90,
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
            BatchProblem::TimestampRefused { why, timestamp_ms } => {
                write!(f, "invalid timestamp {timestamp_ms}: {why}")
            }
            BatchProblem::InvalidProducerEpoch { epoch } => {
                write!(f, "producer epoch {epoch} in an idempotent batch")
            }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientBatch {
    /// The header the batch is stored with: the producer's, corrected as
    /// Kafka's broker corrects it (maxTimestamp the largest record
    /// timestamp, or the append time with the LogAppendTime bit on such a
    /// topic; unused attribute bits cleared). `batch_len` is the sent
    /// batch's; base offset and leader epoch are stamped at the append.
    pub header: BatchHeader,
    /// What storing it takes.
    pub correction: Correction,
}

/// What a leader changes in a producer's batch before storing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Correction {
    /// Nothing inside the CRC: stored as sent.
    None,
    /// Header fields inside the CRC (maxTimestamp, the timestamp type, unused
    /// attribute bits): the header is rewritten and the CRC recomputed,
    /// the records untouched (Kafka's `DefaultRecordBatch.setMaxTimestamp`).
    Header,
    /// Offset deltas that are not the records' positions (0, 1, 2, ...):
    /// the records are encoded again at consecutive deltas, and compressed
    /// again (Kafka's `LogValidator.buildRecordsAndAssignOffsets`).
    Records,
}

/// Checks the batch at the front of `buf` (more bytes may follow) as a
/// client batch under `rules`, in Kafka's order and with Kafka's error
/// codes (docs/FORMAT.md, "Producer batches: what Kafka recomputes,
/// tolerates or refuses", lists every field), and works out what Kafka's
/// broker would correct. A refusal names the byte, relative to `buf`,
/// where the problem lies (the first byte of the compressed records for a
/// problem inside them).
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
    let corrupt = |e: DecodeError| (e.position, BatchProblem::Corrupt(e));
    let invalid = |at: usize, why| Err((at, BatchProblem::InvalidRecord(why)));
    let wire = WireHeader::read(buf).map_err(corrupt)?;
    // ProduceRequest.validateRecords (produce v3 and later) and
    // ByteBufferLogInputStream.nextBatchSize: v2 only; a length or a magic
    // no Kafka format has is corrupt.
    let Some(batch_len) = wire.batch_len() else {
        return Err(corrupt(DecodeError::new(
            DecodeErrorKind::BadBatchLength(wire.length as u32),
            LENGTH_AT,
        )));
    };
    match wire.magic {
        MAGIC => {}
        0 | 1 => return invalid(MAGIC_AT, "magic below 2: a produce request carries v2 batches"),
        m => return Err(corrupt(DecodeError::new(DecodeErrorKind::UnknownMagic(m), MAGIC_AT))),
    }
    // UnifiedLog.analyzeAndValidateRecords: base offset 0, size, CRC.
    if wire.base_offset != 0 {
        return invalid(BASE_OFFSET_AT, "a producer's batch starts at base offset 0");
    }
    if batch_len as usize > rules.max_batch_bytes {
        let problem = BatchProblem::BatchTooLarge { size: batch_len as usize, max: rules.max_batch_bytes };
        return Err((LENGTH_AT, problem));
    }
    let batch = buf
        .get(..batch_len as usize)
        .ok_or_else(|| corrupt(DecodeError::new(DecodeErrorKind::Truncated, buf.len())))?;
    let computed = compute_crc(batch);
    if computed != wire.crc {
        let kind = DecodeErrorKind::CrcMismatch { stored: wire.crc, computed };
        return Err(corrupt(DecodeError::new(kind, CRC_AT)));
    }
    let codec = wire.attributes & ATTR_CODEC_MASK;
    if super::Codec::from_id(codec).is_none() {
        return Err((ATTRIBUTES_AT, BatchProblem::UnsupportedCompression(codec)));
    }
    // LogValidator.validateBatch.
    if wire.last_offset_delta < 0 {
        return invalid(LAST_OFFSET_DELTA_AT, "negative last offset delta: no offset range");
    }
    if wire.records_count <= 0 || i64::from(wire.records_count) != i64::from(wire.last_offset_delta) + 1 {
        return invalid(RECORDS_COUNT_AT, "record count does not match the batch's offset range");
    }
    if wire.attributes & ATTR_CONTROL != 0 {
        return invalid(ATTRIBUTES_AT, "a client may not send a control batch");
    }
    if wire.producer_id >= 0 && wire.base_sequence < 0 {
        return invalid(BASE_SEQUENCE_AT, "an idempotent batch needs a base sequence");
    }
    // Refused where Kafka's broker takes them (FORMAT.md says why).
    if wire.attributes & ATTR_TRANSACTIONAL != 0 {
        return Err((ATTRIBUTES_AT, BatchProblem::Transactional));
    }
    if wire.attributes & ATTR_LOG_APPEND_TIME != 0 {
        // Kafka's `validateTimestamp` refuses it on a LogAppendTime topic,
        // and on a CreateTime topic when maxTimestamp is -1.
        let why = "a producer's batch with the LogAppendTime bit";
        return Err((
            ATTRIBUTES_AT,
            BatchProblem::TimestampRefused { why, timestamp_ms: wire.max_timestamp_ms },
        ));
    }
    if wire.attributes & ATTR_DELETE_HORIZON != 0 {
        return invalid(ATTRIBUTES_AT, "a producer's batch with the delete-horizon bit");
    }
    if wire.producer_id >= 0 && wire.producer_epoch < 0 {
        let problem = BatchProblem::InvalidProducerEpoch { epoch: wire.producer_epoch };
        return Err((PRODUCER_EPOCH_AT, problem));
    }
    // Length, base offset, last offset delta and count are checked above.
    let mut header = wire.narrow().ok_or_else(|| {
        corrupt(DecodeError::new(DecodeErrorKind::BadHeader("fields out of range"), BASE_OFFSET_AT))
    })?;
    let (max_seen, consecutive) = check_client_records(batch, header, rules, inflater)?;
    // Kafka reads the attributes' low byte and writes them anew when it
    // sets maxTimestamp: bits 7-15 do not survive.
    header.attributes &= ATTR_KNOWN;
    if rules.log_append_time {
        header.attributes |= ATTR_LOG_APPEND_TIME;
        header.max_timestamp_ms = rules.now_ms;
    } else {
        header.max_timestamp_ms = max_seen;
    }
    // A stored batch's baseTimestamp is at most its maxTimestamp and not
    // negative. Kafka stores a producer's that is not (the records'
    // timestamps are what it checks); rebuilt, the batch takes its first
    // record's.
    let base = header.base_timestamp_ms;
    let base_ok = rules.log_append_time || (0..=max_seen).contains(&base);
    let correction = if !consecutive || !base_ok {
        Correction::Records
    } else if header.attributes != wire.attributes || header.max_timestamp_ms != wire.max_timestamp_ms {
        Correction::Header
    } else {
        Correction::None
    };
    if correction != Correction::Records {
        // Stored as sent but for the header: it must hold what a stored
        // batch holds (a rebuilt one is encoded to).
        header.check_invariants().map_err(corrupt)?;
    }
    Ok(ClientBatch { header, correction })
}

/// Walks a client batch's records (Kafka's `LogValidator.validateRecord`
/// for each, and annals' `max_record_bytes`): the largest CreateTime
/// timestamp, and whether every offset delta is the record's position.
///
/// The timestamp window is convex, so the walk keeps only the smallest and
/// the largest timestamp and checks those two once; a batch they fail is
/// walked again to name its first record out of the window.
fn check_client_records(
    batch: &[u8],
    header: BatchHeader,
    rules: &ClientRules,
    inflater: &mut Inflater,
) -> Result<(i64, bool), (usize, BatchProblem)> {
    inflater.cap = rules.max_batch_bytes.min(super::compression::MAX_INFLATED_BYTES);
    let records = inflater.records(batch, header).map_err(record_problem)?;
    // When all the records fit `max_record_bytes`, each does, and the walk
    // need not measure them; most topics need no keys. Each case is a walk
    // of its own, with no test for what it need not check (two const
    // bools: a const generic cannot be an enum on stable Rust).
    let (min_seen, max_seen, consecutive) =
        match (records.bytes_left() > rules.max_record_bytes, rules.keys_required) {
            (false, false) => walk_client_records::<false, false>(records, rules.max_record_bytes),
            (true, false) => walk_client_records::<true, false>(records, rules.max_record_bytes),
            (false, true) => walk_client_records::<false, true>(records, rules.max_record_bytes),
            (true, true) => walk_client_records::<true, true>(records, rules.max_record_bytes),
        }
        .map_err(|e| in_batch(e, header))?;
    if !rules.log_append_time {
        for ts in [min_seen, max_seen] {
            if !timestamp_ok(ts, rules) {
                return Err(in_batch(first_timestamp_refused(batch, header, rules, inflater, ts), header));
            }
        }
    }
    Ok((max_seen, consecutive))
}

/// A problem found at `at` in the records, placed in the batch as
/// `RecordIter` places what it cannot decode.
fn in_batch((at, problem): (usize, BatchProblem), header: BatchHeader) -> (usize, BatchProblem) {
    (super::batch::position_in_batch(at, header.is_compressed()), problem)
}

/// The smallest and the largest timestamp of `records`, and whether every
/// offset delta is the record's position; checking each record's size
/// against `max_record_bytes` if `SIZED`, and that it has a key if `KEYED`.
#[inline(always)]
fn walk_client_records<const SIZED: bool, const KEYED: bool>(
    records: super::batch::RecordIter<'_>,
    max_record_bytes: usize,
) -> Result<(i64, i64, bool), (usize, BatchProblem)> {
    let (mut min_seen, mut max_seen, mut consecutive) = (i64::MAX, i64::MIN, true);
    check_records_with(records, Checks::Client, record_problem, |index, record, span| {
        let (at, size) = (span.start, span.len());
        if SIZED && size > max_record_bytes {
            return Err((at, BatchProblem::RecordTooLarge { size, max: max_record_bytes }));
        }
        consecutive &= record.offset == u64::from(index);
        if KEYED && record.key.is_none() {
            return Err((at, BatchProblem::InvalidRecord("a compacted topic needs a key on every record")));
        }
        min_seen = min_seen.min(record.timestamp_ms);
        max_seen = max_seen.max(record.timestamp_ms);
        Ok(())
    })?;
    Ok((min_seen, max_seen, consecutive))
}

/// Whether CreateTime timestamp `ts` is one a producer may send.
fn timestamp_ok(ts: i64, rules: &ClientRules) -> bool {
    ts >= 0 && within_window(ts, rules.now_ms, rules.before_max_ms, rules.after_max_ms)
}

/// The first record of a batch (that walked cleanly) whose timestamp
/// [`timestamp_ok`] refuses, and why; `refused` is one such timestamp.
fn first_timestamp_refused(
    batch: &[u8],
    header: BatchHeader,
    rules: &ClientRules,
    inflater: &mut Inflater,
    refused: i64,
) -> (usize, BatchProblem) {
    let found = inflater.records(batch, header).map_err(record_problem).and_then(|records| {
        check_records_with(records, Checks::Client, record_problem, |_, record, span| {
            let ts = record.timestamp_ms;
            if ts < 0 {
                let why = "a negative record timestamp";
                return Err((span.start, BatchProblem::TimestampRefused { why, timestamp_ms: ts }));
            }
            if !timestamp_ok(ts, rules) {
                return Err((
                    span.start,
                    BatchProblem::InvalidTimestamp { timestamp_ms: ts, now_ms: rules.now_ms },
                ));
            }
            Ok(())
        })
    });
    // Some record holds `refused`: the second walk finds it (the records'
    // first byte stands in, should it not).
    found.err().unwrap_or((
        BATCH_HEADER_BYTES,
        BatchProblem::InvalidTimestamp { timestamp_ms: refused, now_ms: rules.now_ms },
    ))
}

/// What a problem the record walk found answers: a record Kafka's
/// `DefaultRecord.readFrom` cannot read is `INVALID_RECORD` (the CRC
/// matched, so the producer built it so); a stream that does not inflate,
/// `CORRUPT_MESSAGE`.
fn record_problem(e: DecodeError) -> (usize, BatchProblem) {
    let problem = match e.kind {
        DecodeErrorKind::BadRecord(why) => BatchProblem::InvalidRecord(why),
        DecodeErrorKind::Compression(CodecError::Disabled(c)) => BatchProblem::UnsupportedCompression(c.id()),
        DecodeErrorKind::Compression(CodecError::TooLarge { cap, .. }) => {
            BatchProblem::InflatesTooLarge { max: cap }
        }
        _ => BatchProblem::Corrupt(e.clone()),
    };
    (e.position, problem)
}

/// Writes to `out` the client batch `batch` (validated: `valid`) as it is
/// stored when its records cannot stay as sent: encoded again at
/// consecutive offset deltas for [`Correction::Records`], else its
/// records' bytes (inflated into `inflater` by the validation, the last
/// use of it) compressed with `compression` (the topic's
/// `compression.type`, another codec than the producer's). Returns the
/// header of what was written.
///
/// # Errors
/// The records no longer fit the limits, or do not compress: a codec not
/// in this build (a level the config validated cannot fail).
pub(crate) fn rebuild_client_batch(
    out: &mut Vec<u8>,
    batch: &[u8],
    valid: &ClientBatch,
    inflater: &Inflater,
    compression: Compression,
    limits: EncodeLimits,
) -> Result<BatchHeader, BatchProblem> {
    let mut header = valid.header;
    if valid.correction != Correction::Records {
        let records = match header.is_compressed() {
            true => inflater.inflated(),
            false => batch.get(BATCH_HEADER_BYTES..).unwrap_or(&[]),
        };
        put_batch(out, &mut header, records, compression)
            .map_err(|e| rebuild_problem(EncodeError::Compression(e)))?;
        return Ok(header);
    }
    let records = match header.is_compressed() {
        true => inflated_records(inflater.inflated(), header),
        false => RecordIter::new(batch, header),
    };
    let mut owned = Vec::with_capacity(header.record_count as usize);
    // The walk the validation made, so it finds the same records
    // (LogAppendTime records read the append time).
    check_records_with(records, Checks::Client, BatchProblem::Corrupt, |_, record, _| {
        owned.push(record.to_record());
        Ok(())
    })?;
    renumber(out, &header, &owned, compression, limits).map_err(rebuild_problem)
}

/// What a refusal to encode a producer's records again answers.
fn rebuild_problem(e: EncodeError) -> BatchProblem {
    match e {
        EncodeError::RecordTooLarge { size, max, .. } => BatchProblem::RecordTooLarge { size, max },
        EncodeError::BatchTooLarge { size, max } => BatchProblem::BatchTooLarge { size, max },
        EncodeError::InvalidTimestamp { timestamp_ms, .. } => {
            BatchProblem::TimestampRefused { why: "a negative record timestamp", timestamp_ms }
        }
        EncodeError::Empty => BatchProblem::InvalidRecord("no records"),
        EncodeError::Compression(CodecError::Disabled(c)) => BatchProblem::UnsupportedCompression(c.id()),
        EncodeError::Compression(e) => {
            BatchProblem::Corrupt(DecodeError::new(DecodeErrorKind::Compression(e), BATCH_HEADER_BYTES))
        }
    }
}
