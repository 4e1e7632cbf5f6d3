//! Record batches: the unit that is appended, checksummed, indexed and
//! read. Kafka's RecordBatch v2 (magic 2; `DefaultRecordBatch.java` in
//! apache/kafka), byte for byte: what a producer sends, what the segment
//! files hold, what a fetch returns.
//!
//! Big-endian, a 61-byte header then the records:
//!
//! ```text
//! offset size field                 CRC?  meaning
//!  0     8    baseOffset            no    offset of the first record (assigned by the log)
//!  8     4    length                no    bytes after this field (the whole batch - 12)
//! 12     4    partitionLeaderEpoch  no    leader epoch, -1 = none (stamped by the leader)
//! 16     1    magic                 no    2
//! 17     4    crc                   -     CRC-32C (Castagnoli) of bytes [21, end)
//! 21     2    attributes            yes   bits 0-2 compression codec (0 = none),
//!                                         3 timestamp type (0 CreateTime, 1 LogAppendTime),
//!                                         4 transactional, 5 control,
//!                                         6 delete horizon set; other bits 0
//! 23     4    lastOffsetDelta       yes   last offset - baseOffset (kept when compaction
//!                                         removes records, so the batch keeps its range)
//! 27     8    baseTimestamp         yes   first record's timestamp, deltas start here; with
//!                                         bit 6 the delete horizon; -1 in an empty batch
//! 35     8    maxTimestamp          yes   largest record timestamp; the append time with
//!                                         LogAppendTime
//! 43     8    producerId            yes   idempotent producer id, -1 = none
//! 51     2    producerEpoch         yes   -1 = none
//! 53     4    baseSequence          yes   sequence of the first record, -1 = none
//! 57     4    recordsCount          yes   records in the batch, <= lastOffsetDelta + 1
//! 61     ...  records               yes   recordsCount records (see `record.rs`)
//! ```
//!
//! The fields before the CRC are the ones a log or a leader rewrites in
//! place without re-checksumming (base offset, leader epoch); the log
//! checks `baseOffset` by offset continuity and `length` by the CRC it
//! bounds.

use byteorder::{BigEndian as BE, ByteOrder};

use super::error::{DecodeError, DecodeErrorKind};
use super::record::{
    body_len, decode_record, put_record, record_len, Checks, Record, RecordBounds, RecordView,
};

/// Size of the batch header (Kafka's `RECORD_BATCH_OVERHEAD`).
pub const BATCH_HEADER_BYTES: usize = 61;
/// The format version this build writes and reads: Kafka's v2.
pub const MAGIC: u8 = 2;
/// Bytes before and including the length field, which it does not count
/// (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;

const BASE_OFFSET_AT: usize = 0;
const LENGTH_AT: usize = BASE_OFFSET_AT + 8;
const LEADER_EPOCH_AT: usize = LENGTH_AT + 4;
/// Where the magic byte is.
pub const MAGIC_AT: usize = LEADER_EPOCH_AT + 4;
const CRC_AT: usize = MAGIC_AT + 1;
/// Where the CRC-covered bytes begin.
pub const CRC_FROM: usize = CRC_AT + 4;
const ATTRIBUTES_AT: usize = CRC_FROM;
const LAST_OFFSET_DELTA_AT: usize = ATTRIBUTES_AT + 2;
const BASE_TIMESTAMP_AT: usize = LAST_OFFSET_DELTA_AT + 4;
const MAX_TIMESTAMP_AT: usize = BASE_TIMESTAMP_AT + 8;
const PRODUCER_ID_AT: usize = MAX_TIMESTAMP_AT + 8;
const PRODUCER_EPOCH_AT: usize = PRODUCER_ID_AT + 8;
const BASE_SEQUENCE_AT: usize = PRODUCER_EPOCH_AT + 2;
const RECORDS_COUNT_AT: usize = BASE_SEQUENCE_AT + 4;
const _: () = assert!(RECORDS_COUNT_AT + 4 == BATCH_HEADER_BYTES);
const _: () = assert!(LENGTH_AT + 4 == LOG_OVERHEAD);

/// The most an encode reserves up front (it still grows past this).
const RESERVE_BYTES_MAX: usize = 64 << 20;

/// Attribute bits for the compression codec (only 0, none, is implemented).
pub const ATTR_CODEC_MASK: u16 = 0b111;
/// Attribute bit: the timestamp type is LogAppendTime.
pub const ATTR_LOG_APPEND_TIME: u16 = 1 << 3;
/// Attribute bit: the batch is part of a transaction.
pub const ATTR_TRANSACTIONAL: u16 = 1 << 4;
/// Attribute bit: a control batch (transaction markers).
pub const ATTR_CONTROL: u16 = 1 << 5;
/// Attribute bit: baseTimestamp holds the delete horizon (set by the cleaner).
pub const ATTR_DELETE_HORIZON: u16 = 1 << 6;
/// Attribute bits this build understands.
pub const ATTR_KNOWN: u16 = 0b111_1111;
/// The smallest record: seven one-byte fields.
const RECORD_BYTES_MIN: u64 = 7;

/// The fields of a batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Bytes of the whole batch (Kafka's `length` field plus 12).
    pub batch_len: u32,
    /// Partition leader epoch, -1 for none.
    pub leader_epoch: i32,
    /// Format version (2).
    pub magic: u8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Attribute bits.
    pub attributes: u16,
    /// Last offset minus base offset.
    pub last_offset_delta: u32,
    /// The first record's timestamp (the delete horizon when
    /// [`BatchHeader::delete_horizon_ms`] is set; -1 in an empty batch).
    pub base_timestamp_ms: i64,
    /// Largest record timestamp (the append time with LogAppendTime).
    pub max_timestamp_ms: i64,
    /// Producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 for none.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: u32,
}

impl BatchHeader {
    /// Offset of the last record the batch covers.
    pub fn last_offset(&self) -> u64 {
        // `parse` rejects headers where this would overflow.
        self.base_offset + u64::from(self.last_offset_delta)
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    /// Whether record timestamps are the broker's append time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether this is a control batch.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The delete horizon the cleaner set, if it did: tombstones in the
    /// batch may be removed once it has passed.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp_ms)
    }

    /// The compression codec (0: none).
    pub fn codec(&self) -> u16 {
        self.attributes & ATTR_CODEC_MASK
    }

    /// Parses and range-checks the header at the front of `buf` (no CRC check).
    ///
    /// # Errors
    /// [`DecodeError`] when `buf` is shorter than a header or a field is out of range.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
        let h = buf
            .get(..BATCH_HEADER_BYTES)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Truncated, buf.len()))?;
        let bad = |what, at| Err(DecodeError::new(DecodeErrorKind::BadHeader(what), at));
        let magic = h[MAGIC_AT];
        if magic != MAGIC {
            return Err(DecodeError::new(DecodeErrorKind::UnknownMagic(magic), MAGIC_AT));
        }
        let length = BE::read_i32(&h[LENGTH_AT..]);
        let batch_len = u32::try_from(i64::from(length) + LOG_OVERHEAD as i64)
            .ok()
            .filter(|&l| l as usize >= BATCH_HEADER_BYTES && length >= 0)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::BadBatchLength(length as u32), LENGTH_AT))?;
        let (Ok(base_offset), Ok(last_offset_delta), Ok(record_count)) = (
            u64::try_from(BE::read_i64(&h[BASE_OFFSET_AT..])),
            u32::try_from(BE::read_i32(&h[LAST_OFFSET_DELTA_AT..])),
            u32::try_from(BE::read_i32(&h[RECORDS_COUNT_AT..])),
        ) else {
            return bad("negative base offset, last offset delta or record count", BASE_OFFSET_AT);
        };
        let header = BatchHeader {
            base_offset,
            batch_len,
            leader_epoch: BE::read_i32(&h[LEADER_EPOCH_AT..]),
            magic,
            crc: BE::read_u32(&h[CRC_AT..]),
            attributes: BE::read_u16(&h[ATTRIBUTES_AT..]),
            last_offset_delta,
            base_timestamp_ms: BE::read_i64(&h[BASE_TIMESTAMP_AT..]),
            max_timestamp_ms: BE::read_i64(&h[MAX_TIMESTAMP_AT..]),
            producer_id: BE::read_i64(&h[PRODUCER_ID_AT..]),
            producer_epoch: BE::read_i16(&h[PRODUCER_EPOCH_AT..]),
            base_sequence: BE::read_i32(&h[BASE_SEQUENCE_AT..]),
            record_count,
        };
        if header.attributes & !ATTR_KNOWN != 0 {
            return bad("unknown attribute bits", ATTRIBUTES_AT);
        }
        if header.codec() != 0 {
            return Err(DecodeError::new(DecodeErrorKind::UnsupportedCodec(header.codec()), ATTRIBUTES_AT));
        }
        if u64::from(header.record_count) > u64::from(header.last_offset_delta) + 1 {
            return bad("more records than offsets", RECORDS_COUNT_AT);
        }
        if header
            .base_offset
            .checked_add(u64::from(header.last_offset_delta) + 1)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return bad("offset range overflows", LAST_OFFSET_DELTA_AT);
        }
        let timestamps_ok = if header.record_count == 0 {
            // Kafka's empty batch: baseTimestamp -1, maxTimestamp kept.
            header.max_timestamp_ms >= -1
        } else if header.is_log_append_time() || header.delete_horizon_ms().is_some() {
            header.max_timestamp_ms >= 0
        } else {
            header.base_timestamp_ms >= 0 && header.max_timestamp_ms >= header.base_timestamp_ms
        };
        if !timestamps_ok {
            return bad("timestamps out of order", BASE_TIMESTAMP_AT);
        }
        // Bound record_count by the length.
        if u64::from(header.record_count) * RECORD_BYTES_MIN > u64::from(header.batch_len) {
            return bad("more records than bytes", RECORDS_COUNT_AT);
        }
        Ok(header)
    }
}

/// The whole batch length the header at the front of `buf` claims, if the
/// length field is there (0 for a negative length: less than a header).
pub fn peek_batch_len(buf: &[u8]) -> Option<u32> {
    let length = BE::read_i32(buf.get(LENGTH_AT..LENGTH_AT + 4)?);
    Some(u32::try_from(i64::from(length) + LOG_OVERHEAD as i64).ok().filter(|_| length >= 0).unwrap_or(0))
}

/// CRC-32C of the covered part of a whole batch.
fn compute_crc(batch: &[u8]) -> u32 {
    crc32c(&batch[CRC_FROM..])
}

/// CRC-32C (Castagnoli, Kafka's `Crc32C`) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    // A 32-bit CRC: the value fits in the low 32 bits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

fn write_length(batch: &mut [u8], batch_len: u32) {
    BE::write_i32(&mut batch[LENGTH_AT..LENGTH_AT + 4], (batch_len as usize - LOG_OVERHEAD) as i32);
}

/// Checks one whole batch: header ranges, length, CRC, and every record's
/// framing. `buf` must start at the batch; it may hold more bytes after it.
/// Every batch passes this before it enters a log (append and recovery).
///
/// # Errors
/// [`DecodeError`] for any malformed byte; never panics.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
    let header = check_batch_crc(buf)?;
    let mut records = RecordIter::new(&buf[..header.batch_len as usize], header);
    for _ in 0..header.record_count {
        records.next_checked()?;
    }
    if records.pos != header.batch_len as usize {
        let kind = DecodeErrorKind::BadRecord("bytes after the last record");
        return Err(DecodeError::new(kind, records.pos));
    }
    Ok(header)
}

/// Checks a batch's header, length and CRC, not its records: what the read
/// path verifies. A batch already in the log passed [`check_batch`] on the
/// way in, so a matching CRC proves its records are the checked ones.
///
/// # Errors
/// [`DecodeError`] for a bad header, a short buffer or a CRC mismatch.
pub fn check_batch_crc(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
    let header = BatchHeader::parse(buf)?;
    let batch = buf
        .get(..header.batch_len as usize)
        .ok_or_else(|| DecodeError::new(DecodeErrorKind::Truncated, buf.len()))?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        let kind = DecodeErrorKind::CrcMismatch { stored: header.crc, computed };
        return Err(DecodeError::new(kind, CRC_AT));
    }
    Ok(header)
}

/// Whether `tail` (bytes from a batch's start to the end of its file)
/// begins with a whole, valid batch whose length field alone is damaged:
/// one bit rot reached, not one a crash tore (a torn batch is a prefix,
/// and no length makes its CRC match). Tries the length to the end of the
/// file and every length one bit flip away from the stored one: at most
/// 33 checks of bytes already read.
pub fn whole_but_for_length(tail: &[u8]) -> bool {
    let Some(stored) = tail.get(LENGTH_AT..LENGTH_AT + 4).map(BE::read_u32) else { return false };
    let to_end = u32::try_from(tail.len().saturating_sub(LOG_OVERHEAD)).unwrap_or(u32::MAX);
    let mut patched = Vec::new();
    let candidates = std::iter::once(to_end).chain((0..32).map(|bit| stored ^ (1 << bit)));
    candidates
        .filter(|&length| {
            let whole = length as usize + LOG_OVERHEAD;
            length != stored
                && length <= i32::MAX as u32
                && whole <= tail.len()
                && whole >= BATCH_HEADER_BYTES
        })
        .any(|length| {
            patched.clear();
            patched.extend_from_slice(&tail[..length as usize + LOG_OVERHEAD]);
            BE::write_u32(&mut patched[LENGTH_AT..LENGTH_AT + 4], length);
            check_batch(&patched).is_ok()
        })
}

/// Whether `head` (the first bytes of a segment file) is a batch of the
/// format annals wrote before it stored Kafka's (magic 1 at byte 20,
/// little-endian, CRC-32 of bytes [16, length)), checked by that batch's
/// own CRC so that damage is never taken for it.
pub fn is_pre_kafka_batch(head: &[u8]) -> bool {
    use byteorder::LittleEndian as LE;
    const OLD_HEADER_BYTES: usize = 64;
    let Some(len) = head.get(16..20).map(LE::read_u32) else { return false };
    head.len() >= OLD_HEADER_BYTES
        && head[20] == 1
        && (len as usize) >= OLD_HEADER_BYTES
        && head.get(..len as usize).is_some_and(|b| crc32fast::hash(&b[16..]) == LE::read_u32(&b[12..16]))
}

/// Iterates the records of a batch that passed [`check_batch`] (every batch
/// in a log did): each record's framing is read, bounds-checked, the
/// semantic checks having been made on the way in. On bytes that did not
/// pass, it stops at the first framing error; it never panics.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    batch: &'a [u8],
    bounds: RecordBounds,
    pos: usize,
    left: u32,
    prev_offset_delta: Option<u32>,
}

impl<'a> RecordIter<'a> {
    /// Records of `batch`, whose header is `header`.
    pub fn new(batch: &'a [u8], header: BatchHeader) -> Self {
        let bounds = RecordBounds {
            base_offset: header.base_offset,
            base_timestamp_ms: header.base_timestamp_ms,
            max_timestamp_ms: header.max_timestamp_ms,
            last_offset_delta: header.last_offset_delta,
            log_append_time: header.is_log_append_time(),
        };
        RecordIter {
            batch,
            bounds,
            pos: BATCH_HEADER_BYTES,
            left: header.record_count,
            prev_offset_delta: None,
        }
    }

    /// Skips the records below `offset` reading only their first fields
    /// (see `record::skip_record`); the iterator then yields from the
    /// first record at or past it.
    pub(crate) fn skip_below(&mut self, offset: u64) {
        // Bounded by the record count.
        while self.left > 0 {
            let rest = self.batch.get(self.pos..).unwrap_or(&[]);
            let Some((delta, size)) = super::record::skip_record(rest) else { return };
            if self.bounds.base_offset + u64::from(delta) >= offset {
                return;
            }
            self.pos += size;
            self.left -= 1;
            self.prev_offset_delta = Some(delta);
        }
    }

    /// Where the next record starts, from the start of the batch.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The next record, fully checked (see `decode_record`); only for a
    /// record that the header counts. Inlined whole into the loops that
    /// walk records, so the view stays in registers.
    #[inline(always)]
    pub(crate) fn next_checked(&mut self) -> Result<RecordView<'a>, DecodeError> {
        self.next_with(Checks::Full)
    }

    #[inline(always)]
    fn next_with(&mut self, checks: Checks) -> Result<RecordView<'a>, DecodeError> {
        let rest = self.batch.get(self.pos..).unwrap_or(&[]);
        let (view, used) = decode_record(rest, &self.bounds, self.prev_offset_delta, checks)
            .map_err(|e| DecodeError::new(e.kind, e.position + self.pos))?;
        self.pos += used;
        self.left -= 1;
        self.prev_offset_delta = Some((view.offset - self.bounds.base_offset) as u32);
        Ok(view)
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = RecordView<'a>;

    #[inline]
    fn next(&mut self) -> Option<RecordView<'a>> {
        if self.left == 0 {
            return None;
        }
        // Framing only: every batch in a log passed `check_batch`, and a
        // read checks its CRC (see `Checks::Framing`).
        match self.next_with(Checks::Framing) {
            Ok(v) => Some(v),
            Err(_) => {
                // Only reachable for bytes that skipped `check_batch`.
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

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
    let batch = &mut out[start..];
    write_header(batch, &header);
    let crc = compute_crc(batch);
    BE::write_u32(&mut batch[CRC_AT..], crc);
    Ok(BatchHeader { crc, ..header })
}

/// Re-encodes the batch `header` describes with only `kept` (records of
/// it, in order), at their own offsets, over offsets up to
/// `last_offset_delta` (Kafka's empty batch when nothing is kept).
/// Producer, leader-epoch and attribute fields carry over, and so does a
/// LogAppendTime batch's maxTimestamp; `delete_horizon_ms` sets the
/// delete horizon (as Kafka's cleaner does for a batch it keeps with
/// tombstones). No size limit applies (the records fit once already).
pub(crate) fn reencode(
    out: &mut Vec<u8>,
    header: &BatchHeader,
    kept: &[RecordView<'_>],
    last_offset_delta: u32,
    delete_horizon_ms: Option<i64>,
) -> Result<BatchHeader, EncodeError> {
    let records: Vec<Record> = kept.iter().map(RecordView::to_record).collect();
    let mut attributes = header.attributes & !ATTR_DELETE_HORIZON;
    if delete_horizon_ms.is_some() && !kept.is_empty() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    let keep_max = header.is_log_append_time() || kept.is_empty();
    let layout = BatchLayout {
        base_offset: header.base_offset,
        meta: BatchMeta {
            leader_epoch: header.leader_epoch,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            log_append_time: false,
        },
        last_offset_delta,
        now_ms: header.base_timestamp_ms,
        limits: EncodeLimits { max_record_bytes: usize::MAX, max_batch_bytes: usize::MAX },
        attributes,
        base_timestamp_ms: delete_horizon_ms.filter(|_| !kept.is_empty()),
        max_timestamp_ms: keep_max.then_some(header.max_timestamp_ms),
    };
    let deltas: Vec<u32> = kept.iter().map(|r| (r.offset - header.base_offset) as u32).collect();
    encode_with_deltas(out, &layout, &records, |i| deltas[i])
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

/// Makes a whole, checked batch a LogAppendTime batch stamped `now_ms`, as
/// Kafka's broker does for such a topic: sets the attribute bit and
/// maxTimestamp and recomputes the CRC; the records are not touched.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    if batch.len() < BATCH_HEADER_BYTES {
        return;
    }
    let attributes = BE::read_u16(&batch[ATTRIBUTES_AT..]) | ATTR_LOG_APPEND_TIME;
    BE::write_u16(&mut batch[ATTRIBUTES_AT..], attributes);
    BE::write_i64(&mut batch[MAX_TIMESTAMP_AT..], now_ms);
    let crc = compute_crc(batch);
    BE::write_u32(&mut batch[CRC_AT..], crc);
}

/// Sets a CreateTime batch's maxTimestamp to `max_timestamp_ms` and
/// recomputes the CRC (Kafka's broker corrects a client's wrong one).
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp_ms: i64) {
    if batch.len() < BATCH_HEADER_BYTES {
        return;
    }
    BE::write_i64(&mut batch[MAX_TIMESTAMP_AT..], max_timestamp_ms);
    let crc = compute_crc(batch);
    BE::write_u32(&mut batch[CRC_AT..], crc);
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
