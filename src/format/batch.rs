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
pub(crate) use super::record::Checks;
use super::record::{decode_record, RecordBounds, RecordView};

/// Size of the batch header (Kafka's `RECORD_BATCH_OVERHEAD`).
pub const BATCH_HEADER_BYTES: usize = 61;
/// The format version this build writes and reads: Kafka's v2.
pub const MAGIC: u8 = 2;
/// Bytes before and including the length field, which it does not count
/// (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;

pub(super) const BASE_OFFSET_AT: usize = 0;
pub(super) const LENGTH_AT: usize = BASE_OFFSET_AT + 8;
pub(super) const LEADER_EPOCH_AT: usize = LENGTH_AT + 4;
/// Where the magic byte is.
pub const MAGIC_AT: usize = LEADER_EPOCH_AT + 4;
pub(super) const CRC_AT: usize = MAGIC_AT + 1;
/// Where the CRC-covered bytes begin.
pub const CRC_FROM: usize = CRC_AT + 4;
pub(super) const ATTRIBUTES_AT: usize = CRC_FROM;
pub(super) const LAST_OFFSET_DELTA_AT: usize = ATTRIBUTES_AT + 2;
pub(super) const BASE_TIMESTAMP_AT: usize = LAST_OFFSET_DELTA_AT + 4;
pub(super) const MAX_TIMESTAMP_AT: usize = BASE_TIMESTAMP_AT + 8;
pub(super) const PRODUCER_ID_AT: usize = MAX_TIMESTAMP_AT + 8;
pub(super) const PRODUCER_EPOCH_AT: usize = PRODUCER_ID_AT + 8;
pub(super) const BASE_SEQUENCE_AT: usize = PRODUCER_EPOCH_AT + 2;
pub(super) const RECORDS_COUNT_AT: usize = BASE_SEQUENCE_AT + 4;
const _: () = assert!(RECORDS_COUNT_AT + 4 == BATCH_HEADER_BYTES);
const _: () = assert!(LENGTH_AT + 4 == LOG_OVERHEAD);

/// Attribute bits for the compression codec (see [`super::Codec`]).
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

    /// The compression codec bits (0: none; see [`BatchHeader::compression`]).
    pub fn codec(&self) -> u16 {
        self.attributes & ATTR_CODEC_MASK
    }

    /// The compression codec (a parsed header names one of Kafka's).
    pub fn compression(&self) -> super::Codec {
        super::Codec::from_id(self.codec()).unwrap_or(super::Codec::None)
    }

    /// Whether the records are compressed.
    pub fn is_compressed(&self) -> bool {
        self.codec() != 0
    }

    /// Parses and range-checks the header at the front of `buf` (no CRC
    /// check): every invariant of a batch in a log. A producer's batch is
    /// held to Kafka's rules instead (`validate.rs`), and corrected until
    /// it holds these.
    ///
    /// # Errors
    /// [`DecodeError`] when `buf` is shorter than a header or a field is out of range.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
        let wire = WireHeader::read(buf)?;
        if wire.magic != MAGIC {
            return Err(DecodeError::new(DecodeErrorKind::UnknownMagic(wire.magic), MAGIC_AT));
        }
        if wire.batch_len().is_none() {
            return Err(DecodeError::new(DecodeErrorKind::BadBatchLength(wire.length as u32), LENGTH_AT));
        }
        let header = wire.narrow().ok_or_else(|| {
            let kind = DecodeErrorKind::BadHeader("negative base offset, last offset delta or record count");
            DecodeError::new(kind, BASE_OFFSET_AT)
        })?;
        header.check_invariants()?;
        Ok(header)
    }

    /// The checks of [`BatchHeader::parse`] past the fields' types: what a
    /// stored batch's header holds, and what the validator's corrected
    /// header of a producer's batch is checked against before it is stored.
    pub(crate) fn check_invariants(&self) -> Result<(), DecodeError> {
        let bad = |what, at| Err(DecodeError::new(DecodeErrorKind::BadHeader(what), at));
        if self.attributes & !ATTR_KNOWN != 0 {
            return bad("unknown attribute bits", ATTRIBUTES_AT);
        }
        if super::Codec::from_id(self.codec()).is_none() {
            return Err(DecodeError::new(DecodeErrorKind::UnsupportedCodec(self.codec()), ATTRIBUTES_AT));
        }
        if u64::from(self.record_count) > u64::from(self.last_offset_delta) + 1 {
            return bad("more records than offsets", RECORDS_COUNT_AT);
        }
        if self
            .base_offset
            .checked_add(u64::from(self.last_offset_delta) + 1)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return bad("offset range overflows", LAST_OFFSET_DELTA_AT);
        }
        let timestamps_ok = if self.record_count == 0 {
            // Kafka's empty batch: baseTimestamp -1, maxTimestamp kept.
            self.max_timestamp_ms >= -1
        } else if self.is_log_append_time() || self.delete_horizon_ms().is_some() {
            self.max_timestamp_ms >= 0
        } else {
            // What a broker leaves (Kafka's `LogValidator` recomputes
            // maxTimestamp): never -1, as a producer may send it.
            self.base_timestamp_ms >= 0 && self.max_timestamp_ms >= self.base_timestamp_ms
        };
        if !timestamps_ok {
            return bad("timestamps out of order", BASE_TIMESTAMP_AT);
        }
        // Bound record_count by the length (a compressed batch's records
        // are bounded by what they inflate to, when they are walked).
        if !self.is_compressed()
            && u64::from(self.record_count) * RECORD_BYTES_MIN > u64::from(self.batch_len)
        {
            return bad("more records than bytes", RECORDS_COUNT_AT);
        }
        Ok(())
    }
}

/// A batch header's fields as the wire holds them, in Kafka's types, with
/// no range checked: the one read of a header's bytes. [`BatchHeader::parse`]
/// holds them to every invariant of a stored batch; the producer validator
/// (`validate.rs`) to Kafka's `LogValidator`, answering with Kafka's
/// error codes, and corrects what Kafka's broker corrects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireHeader {
    pub base_offset: i64,
    pub length: i32,
    pub leader_epoch: i32,
    pub magic: u8,
    pub crc: u32,
    pub attributes: u16,
    pub last_offset_delta: i32,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl WireHeader {
    /// The fields at the front of `buf`.
    pub(crate) fn read(buf: &[u8]) -> Result<WireHeader, DecodeError> {
        let h = buf
            .get(..BATCH_HEADER_BYTES)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Truncated, buf.len()))?;
        Ok(WireHeader {
            base_offset: BE::read_i64(&h[BASE_OFFSET_AT..]),
            length: BE::read_i32(&h[LENGTH_AT..]),
            leader_epoch: BE::read_i32(&h[LEADER_EPOCH_AT..]),
            magic: h[MAGIC_AT],
            crc: BE::read_u32(&h[CRC_AT..]),
            attributes: BE::read_u16(&h[ATTRIBUTES_AT..]),
            last_offset_delta: BE::read_i32(&h[LAST_OFFSET_DELTA_AT..]),
            base_timestamp_ms: BE::read_i64(&h[BASE_TIMESTAMP_AT..]),
            max_timestamp_ms: BE::read_i64(&h[MAX_TIMESTAMP_AT..]),
            producer_id: BE::read_i64(&h[PRODUCER_ID_AT..]),
            producer_epoch: BE::read_i16(&h[PRODUCER_EPOCH_AT..]),
            base_sequence: BE::read_i32(&h[BASE_SEQUENCE_AT..]),
            records_count: BE::read_i32(&h[RECORDS_COUNT_AT..]),
        })
    }

    /// The whole batch's bytes (`length` + 12), when that is at least a
    /// header (Kafka's `DefaultRecordBatch.isValid` refuses less).
    pub(crate) fn batch_len(&self) -> Option<u32> {
        u32::try_from(i64::from(self.length) + LOG_OVERHEAD as i64)
            .ok()
            .filter(|&l| l as usize >= BATCH_HEADER_BYTES)
    }

    /// The fields in annals' types: `None` when the length is less than a
    /// header or the base offset, last offset delta or record count is
    /// negative. Nothing else is checked.
    pub(crate) fn narrow(&self) -> Option<BatchHeader> {
        Some(BatchHeader {
            base_offset: u64::try_from(self.base_offset).ok()?,
            batch_len: self.batch_len()?,
            leader_epoch: self.leader_epoch,
            magic: self.magic,
            crc: self.crc,
            attributes: self.attributes,
            last_offset_delta: u32::try_from(self.last_offset_delta).ok()?,
            base_timestamp_ms: self.base_timestamp_ms,
            max_timestamp_ms: self.max_timestamp_ms,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: u32::try_from(self.records_count).ok()?,
        })
    }
}

/// The whole batch length the header at the front of `buf` claims, if the
/// length field is there (0 for a negative length: less than a header).
pub fn peek_batch_len(buf: &[u8]) -> Option<u32> {
    let length = BE::read_i32(buf.get(LENGTH_AT..LENGTH_AT + 4)?);
    Some(u32::try_from(i64::from(length) + LOG_OVERHEAD as i64).ok().filter(|_| length >= 0).unwrap_or(0))
}

/// CRC-32C of the covered part of a whole batch.
pub(super) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c(&batch[CRC_FROM..])
}

/// CRC-32C (Castagnoli, Kafka's `Crc32C`) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    // A 32-bit CRC: the value fits in the low 32 bits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

pub(super) fn write_length(batch: &mut [u8], batch_len: u32) {
    BE::write_i32(&mut batch[LENGTH_AT..LENGTH_AT + 4], (batch_len as usize - LOG_OVERHEAD) as i32);
}

/// Checks one whole batch: header ranges, length, CRC, and every record's
/// framing. `buf` must start at the batch; it may hold more bytes after it.
/// Every batch passes this before it enters a log (append and recovery).
///
/// # Errors
/// [`DecodeError`] for any malformed byte; never panics.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
    check_batch_with(buf, &mut Inflater::default())
}

/// [`check_batch`], inflating compressed records into `inflater`'s
/// buffer (reused across calls) under its cap.
///
/// # Errors
/// As [`check_batch`].
pub fn check_batch_with(buf: &[u8], inflater: &mut Inflater) -> Result<BatchHeader, DecodeError> {
    let header = check_batch_crc(buf)?;
    let records = inflater.records(&buf[..header.batch_len as usize], header)?;
    check_records(records, |e| e, |_, _, _| Ok(()))?;
    Ok(header)
}

/// The one full walk over a batch's records (`records`, from
/// [`RecordIter::new`] or [`Inflater::records`]): every record decoded
/// with every check, handed to `each` with its index and its byte span in
/// the records' bytes, and nothing left after the last. `decode_error`
/// turns a framing problem into `E`.
#[inline(always)]
pub(crate) fn check_records<'a, E>(
    records: RecordIter<'a>,
    decode_error: impl Fn(DecodeError) -> E,
    each: impl FnMut(u32, RecordView<'a>, std::ops::Range<usize>) -> Result<(), E>,
) -> Result<(), E> {
    check_records_with(records, Checks::Full, decode_error, each)
}

/// [`check_records`] with `checks` ([`Checks::Client`] for a producer's
/// batch; `checks` is a constant at each call, folded in once inlined).
#[inline(always)]
pub(crate) fn check_records_with<'a, E>(
    mut records: RecordIter<'a>,
    checks: Checks,
    decode_error: impl Fn(DecodeError) -> E,
    mut each: impl FnMut(u32, RecordView<'a>, std::ops::Range<usize>) -> Result<(), E>,
) -> Result<(), E> {
    for index in 0..records.left {
        let at = records.pos;
        let record = records.next_with(checks).map_err(&decode_error)?;
        each(index, record, at..records.pos)?;
    }
    if records.pos != records.bytes.len() {
        let kind = DecodeErrorKind::BadRecord("bytes after the last record");
        return Err(decode_error(DecodeError::new(kind, records.error_at(records.pos))));
    }
    Ok(())
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

/// If `head` (the first 64 bytes of a segment file, at least) begins like
/// a batch of the format annals wrote before it stored Kafka's (magic 1 at
/// byte 20 where Kafka's magic byte is not 2, little-endian), that batch's
/// length and stored CRC-32 (IEEE, over bytes [16, length)); the caller
/// checks the CRC over the whole batch, so damage is never taken for it.
pub fn pre_kafka_header(head: &[u8]) -> Option<(u32, u32)> {
    use byteorder::LittleEndian as LE;
    const OLD_HEADER_BYTES: u32 = 64;
    let len = LE::read_u32(head.get(16..20)?);
    let looks_old = head.len() >= OLD_HEADER_BYTES as usize && head[MAGIC_AT] != MAGIC && head[20] == 1;
    (looks_old && len >= OLD_HEADER_BYTES).then(|| (len, LE::read_u32(&head[12..16])))
}

/// Iterates the records of a batch that passed [`check_batch`] (every batch
/// in a log did): each record's framing is read, bounds-checked, the
/// semantic checks having been made on the way in. On bytes that did not
/// pass, it stops at the first framing error; it never panics.
///
/// The records of an uncompressed batch are read in place
/// ([`RecordIter::new`]); a compressed batch's are read from the buffer
/// [`Inflater::records`] inflated them into.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    /// The whole batch (records in place) or its inflated records.
    bytes: &'a [u8],
    bounds: RecordBounds,
    pos: usize,
    left: u32,
    prev_offset_delta: Option<u32>,
    /// Inflated records: errors are reported at the compressed stream's
    /// start, the one byte of the batch they can name.
    inflated: bool,
}

/// Where byte `pos` of a batch's records lies in the batch: there when they
/// are read in place, else (`inflated`: they have no byte in the batch) at
/// the compressed stream's first byte.
pub(crate) fn position_in_batch(pos: usize, inflated: bool) -> usize {
    if inflated {
        BATCH_HEADER_BYTES
    } else {
        pos
    }
}

impl<'a> RecordIter<'a> {
    /// The bytes the records left to walk take, at most: no one record of
    /// them is larger.
    pub(crate) fn bytes_left(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// Records of the uncompressed `batch`, whose header is `header`; none
    /// for a compressed batch (use [`Inflater::records`]).
    pub fn new(batch: &'a [u8], header: BatchHeader) -> Self {
        let mut iter = Self::over(batch, BATCH_HEADER_BYTES, header, false);
        if header.is_compressed() {
            iter.left = 0;
        }
        iter
    }

    fn over(bytes: &'a [u8], pos: usize, header: BatchHeader, inflated: bool) -> Self {
        let bounds = RecordBounds {
            base_offset: header.base_offset,
            base_timestamp_ms: header.base_timestamp_ms,
            max_timestamp_ms: header.max_timestamp_ms,
            last_offset_delta: header.last_offset_delta,
            log_append_time: header.is_log_append_time(),
        };
        RecordIter { bytes, bounds, pos, left: header.record_count, prev_offset_delta: None, inflated }
    }

    /// Where an error at `pos` of the records' bytes lies in the batch.
    fn error_at(&self, pos: usize) -> usize {
        position_in_batch(pos, self.inflated)
    }

    /// Skips the records below `offset` reading only their first fields
    /// (see `record::skip_record`); the iterator then yields from the
    /// first record at or past it.
    pub(crate) fn skip_below(&mut self, offset: u64) {
        // Bounded by the record count.
        while self.left > 0 {
            let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
            let Some((delta, size)) = super::record::skip_record(rest) else { return };
            if self.bounds.base_offset + u64::from(delta) >= offset {
                return;
            }
            self.pos += size;
            self.left -= 1;
            self.prev_offset_delta = Some(delta);
        }
    }

    /// The next record, checked as `checks` says (see `decode_record`);
    /// only for a record that the header counts. Inlined whole into the
    /// loops that walk records, so the view stays in registers.
    #[inline(always)]
    fn next_with(&mut self, checks: Checks) -> Result<RecordView<'a>, DecodeError> {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        let (view, used) = decode_record(rest, &self.bounds, self.prev_offset_delta, checks)
            .map_err(|e| DecodeError::new(e.kind, self.error_at(e.position + self.pos)))?;
        self.pos += used;
        self.left -= 1;
        // Only the stored batch's check orders the deltas.
        if checks == Checks::Full {
            self.prev_offset_delta = Some((view.offset - self.bounds.base_offset) as u32);
        }
        Ok(view)
    }
}

/// A reusable buffer for the records of compressed batches, and the cap
/// they may inflate to (see `format/compression`).
#[derive(Debug)]
pub struct Inflater {
    buf: Vec<u8>,
    pub(super) cap: usize,
}

impl Default for Inflater {
    /// Capped at [`super::compression::MAX_INFLATED_BYTES`].
    fn default() -> Self {
        Inflater::new(super::compression::MAX_INFLATED_BYTES)
    }
}

impl Inflater {
    /// An empty buffer whose batches may inflate to `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Inflater { buf: Vec::new(), cap }
    }

    /// The records of `batch` (whole, its header `header`): in place when
    /// it is uncompressed, else inflated into this buffer.
    ///
    /// # Errors
    /// [`DecodeErrorKind::Compression`] (at the records' first byte) when
    /// they do not inflate.
    pub fn records<'a>(
        &'a mut self,
        batch: &'a [u8],
        header: BatchHeader,
    ) -> Result<RecordIter<'a>, DecodeError> {
        if !header.is_compressed() {
            return Ok(RecordIter::new(batch, header));
        }
        let stream = batch.get(BATCH_HEADER_BYTES..).unwrap_or(&[]);
        super::compression::decompress(header.compression(), stream, &mut self.buf, self.cap)
            .map_err(|e| DecodeError::new(DecodeErrorKind::Compression(e), BATCH_HEADER_BYTES))?;
        Ok(RecordIter::over(&self.buf, 0, header, true))
    }

    /// What the last [`Inflater::records`] of a compressed batch inflated.
    pub(crate) fn inflated(&self) -> &[u8] {
        &self.buf
    }

    /// The inflated records of `batch` as an owned buffer (`None` when it is
    /// uncompressed: its records are read in place).
    ///
    /// # Errors
    /// As [`Inflater::records`].
    pub fn inflate_owned(
        &mut self,
        batch: &[u8],
        header: BatchHeader,
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        if !header.is_compressed() {
            return Ok(None);
        }
        self.records(batch, header)?;
        Ok(Some(std::mem::take(&mut self.buf)))
    }
}

/// Records of `inflated` (what [`Inflater::inflate_owned`] returned for a
/// batch whose header is `header`).
pub fn inflated_records(inflated: &[u8], header: BatchHeader) -> RecordIter<'_> {
    RecordIter::over(inflated, 0, header, true)
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

pub(crate) use super::encode::{
    compress_batch, encode_with_deltas, put_batch, reencode, renumber, BatchLayout,
};
pub use super::encode::{
    encode_batch, rewrite_header, set_base_offset, set_leader_epoch, BatchMeta, EncodeError, EncodeLimits,
};

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
