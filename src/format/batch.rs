//! Record batches: the unit that is appended, checksummed, indexed and read.
//!
//! Format (little-endian), a 64-byte header then the records:
//!
//! ```text
//! offset size field               CRC?  meaning
//!  0     8    base_offset         no    offset of the first record (assigned by the log)
//!  8     4    leader_epoch        no    partition leader epoch, -1 = none (stamped by a leader)
//! 12     4    crc                 -     CRC-32 (IEEE, crc32fast) of bytes [16, batch_len)
//! 16     4    batch_len           yes   bytes of the whole batch, header included
//! 20     1    magic               yes   format version, 1
//! 21     1    reserved            yes   0
//! 22     2    attributes          yes   bits 0-2 codec (0 = none), bit 3 timestamp type
//!                                       (0 create, 1 log append), bit 4 transactional,
//!                                       bit 5 control; other bits 0
//! 24     4    last_offset_delta   yes   last offset - base offset (kept when compaction
//!                                       removes records, so the batch keeps its range)
//! 28     4    record_count        yes   records in the batch, <= last_offset_delta + 1
//! 32     8    first_timestamp_ms  yes   timestamp of the first record; deltas start here
//! 40     8    max_timestamp_ms    yes   largest record timestamp
//! 48     8    producer_id         yes   idempotent producer id, -1 = none
//! 56     2    producer_epoch      yes   producer epoch, -1 = none
//! 58     2    reserved            yes   0
//! 60     4    base_sequence       yes   sequence of the first record, -1 = none
//! 64     ...  records             yes   record_count records (see `record.rs`)
//! ```
//!
//! The two fields outside the CRC are the ones a log or a leader may rewrite in
//! place without re-checksumming; the log checks `base_offset` by offset
//! continuity instead.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::error::{DecodeError, DecodeErrorKind};
use super::record::{body_len, decode_record, put_record, Record, RecordBounds, RecordView};

/// Size of the batch header.
pub const BATCH_HEADER_BYTES: usize = 64;
/// The format version this build writes and reads.
pub const MAGIC: u8 = 1;

const BASE_OFFSET_AT: usize = 0;
const LEADER_EPOCH_AT: usize = BASE_OFFSET_AT + 8;
const CRC_AT: usize = LEADER_EPOCH_AT + 4;
/// Where the CRC-covered bytes begin.
pub const CRC_FROM: usize = CRC_AT + 4;
const BATCH_LEN_AT: usize = CRC_FROM;
const MAGIC_AT: usize = BATCH_LEN_AT + 4;
const RESERVED1_AT: usize = MAGIC_AT + 1;
const ATTRIBUTES_AT: usize = RESERVED1_AT + 1;
const LAST_OFFSET_DELTA_AT: usize = ATTRIBUTES_AT + 2;
const RECORD_COUNT_AT: usize = LAST_OFFSET_DELTA_AT + 4;
const FIRST_TIMESTAMP_AT: usize = RECORD_COUNT_AT + 4;
const MAX_TIMESTAMP_AT: usize = FIRST_TIMESTAMP_AT + 8;
const PRODUCER_ID_AT: usize = MAX_TIMESTAMP_AT + 8;
const PRODUCER_EPOCH_AT: usize = PRODUCER_ID_AT + 8;
const RESERVED2_AT: usize = PRODUCER_EPOCH_AT + 2;
const BASE_SEQUENCE_AT: usize = RESERVED2_AT + 2;
const _: () = assert!(BASE_SEQUENCE_AT + 4 == BATCH_HEADER_BYTES);

/// The most an encode reserves up front (it still grows past this).
const RESERVE_BYTES_MAX: usize = 64 << 20;

/// Attribute bits for the compression codec (only 0, none, is implemented).
pub const ATTR_CODEC_MASK: u16 = 0b111;
/// Attribute bits this build understands.
pub const ATTR_KNOWN: u16 = 0b11_1111;

/// The fields of a batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Partition leader epoch, -1 for none.
    pub leader_epoch: i32,
    /// Stored CRC.
    pub crc: u32,
    /// Bytes of the whole batch.
    pub batch_len: u32,
    /// Format version.
    pub magic: u8,
    /// Attribute bits.
    pub attributes: u16,
    /// Last offset minus base offset.
    pub last_offset_delta: u32,
    /// Number of records.
    pub record_count: u32,
    /// Timestamp of the first record.
    pub first_timestamp_ms: i64,
    /// Largest record timestamp.
    pub max_timestamp_ms: i64,
    /// Producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 for none.
    pub base_sequence: i32,
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

    /// Parses and range-checks the header at the front of `buf` (no CRC check).
    ///
    /// # Errors
    /// [`DecodeError`] when `buf` is shorter than a header or a field is out of range.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
        let h = buf
            .get(..BATCH_HEADER_BYTES)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Truncated, buf.len()))?;
        let header = BatchHeader {
            base_offset: LE::read_u64(&h[BASE_OFFSET_AT..]),
            leader_epoch: LE::read_i32(&h[LEADER_EPOCH_AT..]),
            crc: LE::read_u32(&h[CRC_AT..]),
            batch_len: LE::read_u32(&h[BATCH_LEN_AT..]),
            magic: h[MAGIC_AT],
            attributes: LE::read_u16(&h[ATTRIBUTES_AT..]),
            last_offset_delta: LE::read_u32(&h[LAST_OFFSET_DELTA_AT..]),
            record_count: LE::read_u32(&h[RECORD_COUNT_AT..]),
            first_timestamp_ms: LE::read_i64(&h[FIRST_TIMESTAMP_AT..]),
            max_timestamp_ms: LE::read_i64(&h[MAX_TIMESTAMP_AT..]),
            producer_id: LE::read_i64(&h[PRODUCER_ID_AT..]),
            producer_epoch: LE::read_i16(&h[PRODUCER_EPOCH_AT..]),
            base_sequence: LE::read_i32(&h[BASE_SEQUENCE_AT..]),
        };
        let bad = |what| Err(DecodeError::new(DecodeErrorKind::BadHeader(what), 0));
        if header.magic != MAGIC {
            return Err(DecodeError::new(DecodeErrorKind::UnknownMagic(header.magic), MAGIC_AT));
        }
        if (header.batch_len as usize) < BATCH_HEADER_BYTES {
            return Err(DecodeError::new(DecodeErrorKind::BadBatchLength(header.batch_len), BATCH_LEN_AT));
        }
        if h[RESERVED1_AT] != 0 || LE::read_u16(&h[RESERVED2_AT..]) != 0 {
            return bad("reserved bytes set");
        }
        if header.attributes & !ATTR_KNOWN != 0 {
            return bad("unknown attribute bits");
        }
        if header.attributes & ATTR_CODEC_MASK != 0 {
            let codec = header.attributes & ATTR_CODEC_MASK;
            return Err(DecodeError::new(DecodeErrorKind::UnsupportedCodec(codec), ATTRIBUTES_AT));
        }
        if u64::from(header.record_count) > u64::from(header.last_offset_delta) + 1 {
            return bad("more records than offsets");
        }
        if header.base_offset.checked_add(u64::from(header.last_offset_delta) + 1).is_none() {
            return bad("offset range overflows");
        }
        if header.first_timestamp_ms < 0 || header.max_timestamp_ms < header.first_timestamp_ms {
            return bad("timestamps out of order");
        }
        // Every record takes at least 6 bytes: bound record_count by the length.
        if u64::from(header.record_count) * 6 > u64::from(header.batch_len) {
            return bad("more records than bytes");
        }
        Ok(header)
    }
}

/// Reads the batch length at the front of `buf`, if the header is there.
pub fn peek_batch_len(buf: &[u8]) -> Option<u32> {
    buf.get(BATCH_LEN_AT..BATCH_LEN_AT + 4).map(LE::read_u32)
}

/// CRC-32 of the covered part of a whole batch.
fn compute_crc(batch: &[u8]) -> u32 {
    crc32fast::hash(&batch[CRC_FROM..])
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
    let Some(stored) = peek_batch_len(tail) else { return false };
    let to_end = u32::try_from(tail.len()).unwrap_or(u32::MAX);
    let mut patched = Vec::new();
    let candidates = std::iter::once(to_end).chain((0..32).map(|bit| stored ^ (1 << bit)));
    candidates
        .filter(|&len| len != stored && len as usize <= tail.len() && len as usize >= BATCH_HEADER_BYTES)
        .any(|len| {
            patched.clear();
            patched.extend_from_slice(&tail[..len as usize]);
            LE::write_u32(&mut patched[BATCH_LEN_AT..BATCH_LEN_AT + 4], len);
            check_batch(&patched).is_ok()
        })
}

/// Iterates the records of one batch, decoding each with full checks.
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
            first_timestamp_ms: header.first_timestamp_ms,
            max_timestamp_ms: header.max_timestamp_ms,
            last_offset_delta: header.last_offset_delta,
        };
        RecordIter {
            batch,
            bounds,
            pos: BATCH_HEADER_BYTES,
            left: header.record_count,
            prev_offset_delta: None,
        }
    }

    #[inline]
    fn next_checked(&mut self) -> Result<RecordView<'a>, DecodeError> {
        let rest = self.batch.get(self.pos..).unwrap_or(&[]);
        let (view, used) = decode_record(rest, &self.bounds, self.prev_offset_delta)
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
        match self.next_checked() {
            Ok(v) => Some(v),
            Err(_) => {
                // Only reachable for a batch that skipped `check_batch`.
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
}

impl Default for BatchMeta {
    fn default() -> Self {
        BatchMeta { leader_epoch: -1, producer_id: -1, producer_epoch: -1, base_sequence: -1 }
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
    let too_many = EncodeError::BatchTooLarge { size: usize::MAX, max: limits.max_batch_bytes };
    let last_offset_delta = u32::try_from(records.len().saturating_sub(1)).map_err(|_| too_many)?;
    if records.is_empty() {
        return Err(EncodeError::Empty);
    }
    let layout = BatchLayout { base_offset, meta, last_offset_delta, now_ms, limits };
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
}

/// Encodes `records` where record `i` sits at offset delta `delta_of(i)`
/// (strictly increasing, at most `last_offset_delta`): used to rewrite part
/// of an existing batch without moving its records' offsets. No records gives
/// an empty batch that still covers `last_offset_delta + 1` offsets.
pub(crate) fn encode_with_deltas(
    out: &mut Vec<u8>,
    layout: &BatchLayout,
    records: &[Record],
    delta_of: impl Fn(usize) -> u32,
) -> Result<BatchHeader, EncodeError> {
    let limits = layout.limits;
    let ts = |r: &Record| r.timestamp_ms.unwrap_or(layout.now_ms);
    let first_timestamp_ms = records.first().map_or(layout.now_ms, ts);
    let start = out.len();
    // Restore `out` on any refusal: the caller's buffer is left as it was.
    let refuse = |out: &mut Vec<u8>, e: EncodeError| {
        out.truncate(start);
        Err(e)
    };
    out.resize(start + BATCH_HEADER_BYTES, 0);
    let mut max_timestamp_ms = first_timestamp_ms;
    // One pass: size each record once, check it, write it.
    for (index, r) in records.iter().enumerate() {
        let t = ts(r);
        if t < 0 {
            return refuse(out, EncodeError::InvalidTimestamp { index, timestamp_ms: t });
        }
        max_timestamp_ms = max_timestamp_ms.max(t);
        let delta = t - first_timestamp_ms;
        let body = body_len(r, delta, delta_of(index));
        let size = crate::format::varint::len_u64(body as u64) + body;
        if size > limits.max_record_bytes {
            return refuse(out, EncodeError::RecordTooLarge { index, size, max: limits.max_record_bytes });
        }
        let total = out.len() - start + size;
        if total > limits.max_batch_bytes {
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
        leader_epoch: layout.meta.leader_epoch,
        crc: 0,
        batch_len: u32::try_from(total)
            .map_err(|_| EncodeError::BatchTooLarge { size: total, max: limits.max_batch_bytes })?,
        magic: MAGIC,
        attributes: 0,
        last_offset_delta: layout.last_offset_delta,
        record_count: records.len() as u32,
        first_timestamp_ms,
        max_timestamp_ms,
        producer_id: layout.meta.producer_id,
        producer_epoch: layout.meta.producer_epoch,
        base_sequence: layout.meta.base_sequence,
    };
    let batch = &mut out[start..];
    write_header(batch, &header);
    let crc = compute_crc(batch);
    LE::write_u32(&mut batch[CRC_AT..], crc);
    Ok(BatchHeader { crc, ..header })
}

/// Re-encodes the batch `header` describes with only `kept` (records of
/// it, in order), at their own offsets, over offsets up to
/// `last_offset_delta` (an empty batch when nothing is kept). Producer and
/// leader-epoch fields carry over; no size limit applies (the records fit
/// once already).
pub(crate) fn reencode(
    out: &mut Vec<u8>,
    header: &BatchHeader,
    kept: &[RecordView<'_>],
    last_offset_delta: u32,
) -> Result<BatchHeader, EncodeError> {
    let records: Vec<Record> = kept.iter().map(RecordView::to_record).collect();
    let layout = BatchLayout {
        base_offset: header.base_offset,
        meta: BatchMeta {
            leader_epoch: header.leader_epoch,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
        },
        last_offset_delta,
        now_ms: header.first_timestamp_ms,
        limits: EncodeLimits { max_record_bytes: usize::MAX, max_batch_bytes: usize::MAX },
    };
    let deltas: Vec<u32> = kept.iter().map(|r| (r.offset - header.base_offset) as u32).collect();
    encode_with_deltas(out, &layout, &records, |i| deltas[i])
}

fn write_header(h: &mut [u8], header: &BatchHeader) {
    LE::write_u64(&mut h[BASE_OFFSET_AT..], header.base_offset);
    LE::write_i32(&mut h[LEADER_EPOCH_AT..], header.leader_epoch);
    LE::write_u32(&mut h[CRC_AT..], header.crc);
    LE::write_u32(&mut h[BATCH_LEN_AT..], header.batch_len);
    h[MAGIC_AT] = header.magic;
    h[RESERVED1_AT] = 0;
    LE::write_u16(&mut h[ATTRIBUTES_AT..], header.attributes);
    LE::write_u32(&mut h[LAST_OFFSET_DELTA_AT..], header.last_offset_delta);
    LE::write_u32(&mut h[RECORD_COUNT_AT..], header.record_count);
    LE::write_i64(&mut h[FIRST_TIMESTAMP_AT..], header.first_timestamp_ms);
    LE::write_i64(&mut h[MAX_TIMESTAMP_AT..], header.max_timestamp_ms);
    LE::write_i64(&mut h[PRODUCER_ID_AT..], header.producer_id);
    LE::write_i16(&mut h[PRODUCER_EPOCH_AT..], header.producer_epoch);
    LE::write_u16(&mut h[RESERVED2_AT..], 0);
    LE::write_i32(&mut h[BASE_SEQUENCE_AT..], header.base_sequence);
}

/// Rewrites the base offset of an encoded batch in place (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    if let Some(field) = batch.get_mut(BASE_OFFSET_AT..BASE_OFFSET_AT + 8) {
        LE::write_u64(field, base_offset);
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
