//! Encoding batches: a record batch from records (the record API's
//! append), a thinned or cut batch (compaction, truncation), and the
//! in-place stamps a log or leader puts on a batch a producer built (base
//! offset, leader epoch, LogAppendTime, a corrected maxTimestamp). The
//! layout is documented in `batch.rs`.

use byteorder::{BigEndian as BE, ByteOrder};

use super::batch::ATTR_CODEC_MASK;
use super::batch::{
    compute_crc, write_length, BatchHeader, ATTRIBUTES_AT, ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME,
    BASE_OFFSET_AT, BASE_SEQUENCE_AT, BASE_TIMESTAMP_AT, BATCH_HEADER_BYTES, CRC_AT, LAST_OFFSET_DELTA_AT,
    LEADER_EPOCH_AT, MAGIC, MAGIC_AT, MAX_TIMESTAMP_AT, PRODUCER_EPOCH_AT, PRODUCER_ID_AT, RECORDS_COUNT_AT,
};
use super::compression::{self, CodecError, Compression};
use super::record::{body_len, put_record, record_len, Record, RecordView};

/// The most an encode reserves up front (it still grows past this).
const RESERVE_BYTES_MAX: usize = 64 << 20;

/// Producer and replication fields stamped on a new batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    /// Partition leader epoch, -1 for none.
    pub leader_epoch: i32,
    /// Producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 for none.
    pub base_sequence: i32,
    /// Stamp the batch LogAppendTime (the topic's `message.timestamp.type`):
    /// maxTimestamp is the append time and every record reads it.
    pub log_append_time: bool,
}

impl Default for BatchMeta {
    fn default() -> Self {
        BatchMeta {
            leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            log_append_time: false,
        }
    }
}

/// Why a batch could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// No records.
    Empty,
    /// Record `index` encodes to `size` bytes, over `max`.
    RecordTooLarge {
        /// Position of the record in the batch.
        index: usize,
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The whole batch encodes to `size` bytes, over `max`.
    BatchTooLarge {
        /// Encoded size (so far, when encoding stopped early).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Record `index` has a negative timestamp.
    InvalidTimestamp {
        /// Position of the record in the batch.
        index: usize,
        /// The timestamp.
        timestamp_ms: i64,
    },
    /// The records could not be compressed (a codec not in this build).
    Compression(CodecError),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::Empty => write!(f, "empty batch: append at least one record"),
            EncodeError::RecordTooLarge { index, size, max } => {
                write!(f, "record {index} is {size} bytes, over max_record_bytes {max}")
            }
            EncodeError::BatchTooLarge { size, max } => {
                write!(f, "batch is {size} bytes, over max_batch_bytes {max}")
            }
            EncodeError::InvalidTimestamp { index, timestamp_ms } => {
                write!(f, "record {index} has negative timestamp {timestamp_ms}")
            }
            EncodeError::Compression(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Limits applied while encoding.
#[derive(Clone, Copy, Debug)]
pub struct EncodeLimits {
    /// Largest encoded record (length prefix included).
    pub max_record_bytes: usize,
    /// Largest encoded batch (header included).
    pub max_batch_bytes: usize,
}

/// Encodes `records` as one batch at `base_offset`, appending to `out`.
///
/// Records without a timestamp get `now_ms`. Allocates nothing beyond growing
/// `out` (reuse it across calls). On error `out` is left as it was.
///
/// # Errors
/// [`EncodeError`] for an empty batch, a negative timestamp, or a record or
/// batch over its limit.
pub fn encode_batch(
    out: &mut Vec<u8>,
    base_offset: u64,
    meta: BatchMeta,
    records: &[Record],
    now_ms: i64,
    limits: EncodeLimits,
) -> Result<BatchHeader, EncodeError> {
    let layout = BatchLayout::new(base_offset, meta, records, now_ms, limits)?;
    encode_with_deltas(out, &layout, records, |i| i as u32)
}

/// Everything about a batch being encoded except its records.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchLayout {
    pub base_offset: u64,
    pub meta: BatchMeta,
    pub last_offset_delta: u32,
    pub now_ms: i64,
    pub limits: EncodeLimits,
    /// Attribute bits to set (timestamp type, transactional, delete horizon).
    pub attributes: u16,
    /// baseTimestamp when it is not the first record's (a delete horizon).
    pub base_timestamp_ms: Option<i64>,
    /// maxTimestamp when it is not the largest record's (LogAppendTime).
    pub max_timestamp_ms: Option<i64>,
}

impl BatchLayout {
    /// The layout of a new batch of `records` (one offset each).
    pub(crate) fn new(
        base_offset: u64,
        meta: BatchMeta,
        records: &[Record],
        now_ms: i64,
        limits: EncodeLimits,
    ) -> Result<Self, EncodeError> {
        let too_many = EncodeError::BatchTooLarge { size: usize::MAX, max: limits.max_batch_bytes };
        let last_offset_delta = i32::try_from(records.len().saturating_sub(1)).map_err(|_| too_many)? as u32;
        if records.is_empty() {
            return Err(EncodeError::Empty);
        }
        let (attributes, max_timestamp_ms) = match meta.log_append_time {
            true => (ATTR_LOG_APPEND_TIME, Some(now_ms)),
            false => (0, None),
        };
        Ok(BatchLayout {
            base_offset,
            meta,
            last_offset_delta,
            now_ms,
            limits,
            attributes,
            base_timestamp_ms: None,
            max_timestamp_ms,
        })
    }
}

/// Encodes `records` where record `i` sits at offset delta `delta_of(i)`
/// (strictly increasing, at most `last_offset_delta`): used to rewrite part
/// of an existing batch without moving its records' offsets. No records gives
/// Kafka's empty batch (baseTimestamp -1) that still covers
/// `last_offset_delta + 1` offsets.
pub(crate) fn encode_with_deltas(
    out: &mut Vec<u8>,
    layout: &BatchLayout,
    records: &[Record],
    delta_of: impl Fn(usize) -> u32,
) -> Result<BatchHeader, EncodeError> {
    let limits = layout.limits;
    let ts = |r: &Record| r.timestamp_ms.unwrap_or(layout.now_ms);
    let base_timestamp_ms = records.first().map_or(-1, ts);
    let base_timestamp_ms = layout.base_timestamp_ms.unwrap_or(base_timestamp_ms);
    let start = out.len();
    // Restore `out` on any refusal: the caller's buffer is left as it was.
    let refuse = |out: &mut Vec<u8>, e: EncodeError| {
        out.truncate(start);
        Err(e)
    };
    out.resize(start + BATCH_HEADER_BYTES, 0);
    let mut max_timestamp_ms = base_timestamp_ms;
    // One pass: size each record once, check it, write it.
    for (index, r) in records.iter().enumerate() {
        let t = ts(r);
        if t < 0 {
            return refuse(out, EncodeError::InvalidTimestamp { index, timestamp_ms: t });
        }
        max_timestamp_ms = max_timestamp_ms.max(t);
        let delta = t - base_timestamp_ms;
        let body = body_len(r, delta, delta_of(index));
        let size = record_len(body);
        if size > limits.max_record_bytes || body > i32::MAX as usize {
            return refuse(out, EncodeError::RecordTooLarge { index, size, max: limits.max_record_bytes });
        }
        let total = out.len() - start + size;
        if total > limits.max_batch_bytes || total > i32::MAX as usize {
            return refuse(out, EncodeError::BatchTooLarge { size: total, max: limits.max_batch_bytes });
        }
        if index == 0 {
            // Most batches hold records of similar size: one reservation.
            out.reserve(
                size.saturating_mul(records.len()).min(limits.max_batch_bytes).min(RESERVE_BYTES_MAX),
            );
        }
        put_record(out, r, body, delta, delta_of(index));
    }
    debug_assert!(records.is_empty() || delta_of(records.len() - 1) <= layout.last_offset_delta);
    let total = out.len() - start;
    let header = BatchHeader {
        base_offset: layout.base_offset,
        batch_len: total as u32,
        leader_epoch: layout.meta.leader_epoch,
        magic: MAGIC,
        crc: 0,
        attributes: layout.attributes,
        last_offset_delta: layout.last_offset_delta,
        base_timestamp_ms,
        max_timestamp_ms: layout.max_timestamp_ms.unwrap_or(max_timestamp_ms),
        producer_id: layout.meta.producer_id,
        producer_epoch: layout.meta.producer_epoch,
        base_sequence: layout.meta.base_sequence,
        record_count: records.len() as u32,
    };
    let mut header = header;
    rewrite_header(&mut out[start..], &mut header);
    Ok(header)
}

/// Re-encodes the batch `header` describes with only `kept` (records of
/// it, in order), at their own offsets, over offsets up to
/// `last_offset_delta` (Kafka's empty batch when nothing is kept).
/// Producer, leader-epoch and attribute fields carry over, and so does a
/// LogAppendTime batch's maxTimestamp; `delete_horizon_ms` sets the
/// delete horizon (as Kafka's cleaner does for a batch it keeps with
/// tombstones). A compressed batch's survivors are compressed again with
/// its codec (at the codec's default level), as Kafka's cleaner writes
/// them; Kafka's empty batch is uncompressed. No size limit applies (the
/// records fit once already).
pub(crate) fn reencode(
    out: &mut Vec<u8>,
    header: &BatchHeader,
    kept: &[RecordView<'_>],
    last_offset_delta: u32,
    delete_horizon_ms: Option<i64>,
) -> Result<BatchHeader, EncodeError> {
    let records: Vec<Record> = kept.iter().map(RecordView::to_record).collect();
    let mut attributes = header.attributes & !ATTR_DELETE_HORIZON & !ATTR_CODEC_MASK;
    if delete_horizon_ms.is_some() && !kept.is_empty() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    let keep_max = header.is_log_append_time() || kept.is_empty();
    let layout = BatchLayout {
        base_offset: header.base_offset,
        meta: BatchMeta::of(header, false),
        last_offset_delta,
        now_ms: header.base_timestamp_ms,
        limits: EncodeLimits { max_record_bytes: usize::MAX, max_batch_bytes: usize::MAX },
        attributes,
        base_timestamp_ms: delete_horizon_ms.filter(|_| !kept.is_empty()),
        max_timestamp_ms: keep_max.then_some(header.max_timestamp_ms),
    };
    let deltas: Vec<u32> = kept.iter().map(|r| (r.offset - header.base_offset) as u32).collect();
    let start = out.len();
    let mut encoded = encode_with_deltas(out, &layout, &records, |i| deltas[i])?;
    if header.is_compressed() && !kept.is_empty() {
        compress_batch(out, start, &mut encoded, Compression::new(header.compression()))?;
    }
    Ok(encoded)
}

impl BatchMeta {
    /// The leader epoch and producer fields of `header`, for a batch
    /// encoded again from it.
    fn of(header: &BatchHeader, log_append_time: bool) -> BatchMeta {
        BatchMeta {
            leader_epoch: header.leader_epoch,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            log_append_time,
        }
    }
}

/// Encodes a producer's validated `records` again as the batch `header`
/// describes, at offset deltas 0, 1, 2, ... and compressed with
/// `compression` (uncompressed for `Codec::None`): Kafka's
/// `LogValidator.buildRecordsAndAssignOffsets`, for a producer's batch
/// whose offset deltas are not its records' positions. Producer, leader
/// epoch and attribute fields carry over; baseTimestamp becomes the first
/// record's, maxTimestamp the largest (a LogAppendTime batch's is kept).
///
/// # Errors
/// As [`encode_batch`] under `limits`, and [`EncodeError::Compression`].
pub(crate) fn renumber(
    out: &mut Vec<u8>,
    header: &BatchHeader,
    records: &[Record],
    compression: Compression,
    limits: EncodeLimits,
) -> Result<BatchHeader, EncodeError> {
    let log_append_time = header.is_log_append_time();
    let layout = BatchLayout {
        base_offset: header.base_offset,
        meta: BatchMeta::of(header, log_append_time),
        last_offset_delta: header.last_offset_delta,
        now_ms: header.max_timestamp_ms,
        limits,
        attributes: header.attributes & !ATTR_CODEC_MASK,
        base_timestamp_ms: None,
        max_timestamp_ms: log_append_time.then_some(header.max_timestamp_ms),
    };
    let start = out.len();
    let mut encoded = encode_with_deltas(out, &layout, records, |i| i as u32)?;
    if compression.codec != super::Codec::None {
        compress_batch(out, start, &mut encoded, compression)?;
    }
    Ok(encoded)
}

/// Appends to `out` a batch with `header`'s fields whose records, `records`
/// (their uncompressed bytes), are stored with `compression` (uncompressed
/// for `Codec::None`): the codec bits, length and CRC are set, in `header`
/// too. How a producer's batch is recompressed to the topic's codec, and
/// how the encoders below store a compressed batch. On error `out` is left
/// as it was.
///
/// # Errors
/// [`CodecError`] from the codec.
pub(crate) fn put_batch(
    out: &mut Vec<u8>,
    header: &mut BatchHeader,
    records: &[u8],
    compression: Compression,
) -> Result<(), CodecError> {
    let start = out.len();
    out.resize(start + BATCH_HEADER_BYTES, 0);
    if let Err(e) = compression::compress(compression, records, out) {
        out.truncate(start);
        return Err(e);
    }
    header.batch_len = (out.len() - start) as u32;
    header.attributes = (header.attributes & !ATTR_CODEC_MASK) | compression.codec.id();
    rewrite_header(&mut out[start..], header);
    Ok(())
}

/// Compresses the records of the uncompressed batch at `out[start..]`
/// (its header `header`) with `compression`, in place: `out` then ends
/// with the compressed batch, and `header` describes it. Refuses records
/// past [`compression::MAX_INFLATED_BYTES`] (a reader would).
///
/// # Errors
/// [`EncodeError::BatchTooLarge`], [`EncodeError::Compression`]; `out` is
/// then left without the batch.
pub(crate) fn compress_batch(
    out: &mut Vec<u8>,
    start: usize,
    header: &mut BatchHeader,
    compression: Compression,
) -> Result<(), EncodeError> {
    let records = out.split_off(start + BATCH_HEADER_BYTES);
    out.truncate(start);
    if records.len() > compression::MAX_INFLATED_BYTES {
        return Err(EncodeError::BatchTooLarge { size: records.len(), max: compression::MAX_INFLATED_BYTES });
    }
    put_batch(out, header, &records, compression).map_err(EncodeError::Compression)
}

fn write_header(h: &mut [u8], header: &BatchHeader) {
    BE::write_i64(&mut h[BASE_OFFSET_AT..], header.base_offset as i64);
    write_length(h, header.batch_len);
    BE::write_i32(&mut h[LEADER_EPOCH_AT..], header.leader_epoch);
    h[MAGIC_AT] = header.magic;
    BE::write_u32(&mut h[CRC_AT..], header.crc);
    BE::write_u16(&mut h[ATTRIBUTES_AT..], header.attributes);
    BE::write_i32(&mut h[LAST_OFFSET_DELTA_AT..], header.last_offset_delta as i32);
    BE::write_i64(&mut h[BASE_TIMESTAMP_AT..], header.base_timestamp_ms);
    BE::write_i64(&mut h[MAX_TIMESTAMP_AT..], header.max_timestamp_ms);
    BE::write_i64(&mut h[PRODUCER_ID_AT..], header.producer_id);
    BE::write_i16(&mut h[PRODUCER_EPOCH_AT..], header.producer_epoch);
    BE::write_i32(&mut h[BASE_SEQUENCE_AT..], header.base_sequence);
    BE::write_i32(&mut h[RECORDS_COUNT_AT..], header.record_count as i32);
}

/// Rewrites the base offset of an encoded batch in place (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    if let Some(field) = batch.get_mut(BASE_OFFSET_AT..BASE_OFFSET_AT + 8) {
        BE::write_i64(field, base_offset as i64);
    }
}

/// Rewrites the partition leader epoch of an encoded batch in place
/// (outside the CRC).
pub fn set_leader_epoch(batch: &mut [u8], leader_epoch: i32) {
    if let Some(field) = batch.get_mut(LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4) {
        BE::write_i32(field, leader_epoch);
    }
}

/// Writes every field of `header` over the header of `batch` (whole, its
/// records already in place) and recomputes the CRC, storing it in
/// `header` too: how an encode finishes, and how a leader stamps the
/// fields inside the CRC on a producer's batch (LogAppendTime, a
/// corrected maxTimestamp) without touching its records.
pub fn rewrite_header(batch: &mut [u8], header: &mut BatchHeader) {
    write_header(batch, header);
    header.crc = compute_crc(batch);
    BE::write_u32(&mut batch[CRC_AT..], header.crc);
}
