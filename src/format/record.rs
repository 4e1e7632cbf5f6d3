//! Records: what a producer appends and what a consumer reads back, and their
//! encoding inside a batch: Kafka's v2 record (`DefaultRecord.java` in
//! apache/kafka), byte for byte.
//!
//! ```text
//! length: varint            bytes after this field
//! attributes: int8          0 (unused by Kafka)
//! timestampDelta: varlong   timestamp - the batch's baseTimestamp
//! offsetDelta: varint       offset - the batch's baseOffset
//! keyLength: varint         -1 for a null key (any negative is read as null)
//! key: bytes
//! valueLength: varint       -1 for a null value, a tombstone (read as the key's)
//! value: bytes
//! headersCount: varint      not negative
//! headers: { headerKeyLength: varint (not negative) | headerKey: UTF-8
//!          | headerValueLength: varint (-1 for null, read as the key's) | headerValue: bytes }
//! ```
//!
//! `varint` and `varlong` are Kafka's zigzag varints (`varint.rs`). In a
//! batch whose timestamp type is LogAppendTime every record's timestamp is
//! the batch's maxTimestamp, as Kafka reads it.

use bytes::Bytes;

use super::error::{DecodeError, DecodeErrorKind};
use super::varint;

/// A record to append: the log assigns its offset.
///
/// # Examples
///
/// ```
/// use annals::Record;
/// let r = Record::with_key("user-7", "signed up").timestamp_ms(1_700_000_000_000);
/// assert!(!r.is_tombstone());
/// assert!(Record::tombstone("user-7").is_tombstone());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Create time in milliseconds since the Unix epoch; `None` takes the
    /// log's clock at append.
    pub timestamp_ms: Option<i64>,
    /// Optional key (used by partitioning and compaction).
    pub key: Option<Bytes>,
    /// Optional value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order; names may repeat.
    pub headers: Vec<Header>,
}

/// A record header: a UTF-8 name and optional bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value, possibly absent.
    pub value: Option<Bytes>,
}

impl Record {
    /// A record with a value and no key.
    pub fn new(value: impl Into<Bytes>) -> Self {
        Record { value: Some(value.into()), ..Record::default() }
    }

    /// A record with a key and a value.
    pub fn with_key(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Record { key: Some(key.into()), value: Some(value.into()), ..Record::default() }
    }

    /// A tombstone: a key with no value.
    pub fn tombstone(key: impl Into<Bytes>) -> Self {
        Record { key: Some(key.into()), ..Record::default() }
    }

    /// Sets the create timestamp.
    pub fn timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(Header { key: key.into(), value });
        self
    }

    /// True when the value is absent.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// A record read back from the log; key, value and header values share the
/// fetched buffer (no copy per record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's offset in its partition.
    pub offset: u64,
    /// Timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

/// A decoded record borrowing from the batch bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's offset.
    pub offset: u64,
    /// Timestamp in milliseconds.
    pub timestamp_ms: i64,
    /// Key bytes, if any.
    pub key: Option<&'a [u8]>,
    /// Value bytes; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    header_count: u32,
    headers_raw: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Iterates the headers as `(name, value)`.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter { buf: self.headers_raw, left: self.header_count }
    }

    /// An owned copy, as a record to append again (the timestamp kept).
    pub fn to_record(&self) -> Record {
        Record {
            timestamp_ms: Some(self.timestamp_ms),
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            headers: self
                .headers()
                .map(|(k, v)| Header { key: k.to_owned(), value: v.map(Bytes::copy_from_slice) })
                .collect(),
        }
    }

    /// Copies nothing: slices `owner`, the buffer this view was decoded from.
    ///
    /// `owner` must be the `Bytes` the view borrows from.
    pub fn to_stored(&self, owner: &Bytes) -> StoredRecord {
        StoredRecord {
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.map(|k| owner.slice_ref(k)),
            value: self.value.map(|v| owner.slice_ref(v)),
            headers: self
                .headers()
                .map(|(k, v)| Header { key: k.to_owned(), value: v.map(|v| owner.slice_ref(v)) })
                .collect(),
        }
    }
}

/// Iterator over a record's headers.
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    buf: &'a [u8],
    left: u32,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut cur = Cursor { buf: self.buf, pos: 0 };
        let parsed = cur.header();
        self.buf = &self.buf[cur.pos.min(self.buf.len())..];
        match parsed {
            Ok(h) => Some(h),
            Err(_) => {
                // Unreachable for validated batches; stop rather than panic.
                self.left = 0;
                None
            }
        }
    }
}

/// Bytes a length-prefixed field of `len` bytes (or null) takes.
#[inline(always)]
fn field_len(field: Option<usize>) -> usize {
    match field {
        None => 1,
        Some(n) => varint::varint_len(n as i32) + n,
    }
}

/// Writes a length-prefixed field into `dst` at `at`; returns the
/// position after it.
#[inline(always)]
fn write_field(dst: &mut [u8], at: usize, field: Option<&[u8]>) -> usize {
    match field {
        None => varint::write_varint(dst, at, -1),
        Some(b) => {
            let at = varint::write_varint(dst, at, b.len() as i32);
            dst[at..at + b.len()].copy_from_slice(b);
            at + b.len()
        }
    }
}

/// Size of the record body (everything after `length`). The caller bounds
/// the record's size (at most `max_record_bytes`, under `i32::MAX`), so
/// every length fits a varint.
#[inline]
pub(crate) fn body_len(record: &Record, timestamp_delta: i64, offset_delta: u32) -> usize {
    let mut n = 1 + varint::varlong_len(timestamp_delta) + varint::varint_len(offset_delta as i32);
    n += field_len(record.key.as_ref().map(|k| k.len()));
    n += field_len(record.value.as_ref().map(|v| v.len()));
    n += varint::varint_len(record.headers.len() as i32);
    for h in &record.headers {
        n += field_len(Some(h.key.len()));
        n += field_len(h.value.as_ref().map(|v| v.len()));
    }
    n
}

/// The bytes of a whole record whose body is `body` bytes.
#[inline]
pub(crate) fn record_len(body: usize) -> usize {
    varint::varint_len(i32::try_from(body).unwrap_or(i32::MAX)) + body
}

/// Appends one record; `body` is `body_len(record, ..)`, computed by the caller
/// (who also checks it against the record size limit). The common record
/// (a key of at most `SMALL_KEY` bytes, a value, no headers) takes two
/// appends: its fields up to the value's bytes, put together on the stack,
/// then the value; any other is sized once and written in place.
#[inline]
pub(crate) fn put_record(
    out: &mut Vec<u8>,
    record: &Record,
    body: usize,
    timestamp_delta: i64,
    offset_delta: u32,
) {
    let key = record.key.as_deref();
    match (key.map_or(0, <[u8]>::len), record.value.as_deref()) {
        (k, Some(value)) if k <= SMALL_KEY && record.headers.is_empty() => {
            let start = out.len();
            let mut head = [0u8; HEAD_MAX];
            let mut at = varint::write_varint(&mut head, 0, body as i32);
            at += 1; // attributes: 0, unused
            at = varint::write_varlong(&mut head, at, timestamp_delta);
            at = varint::write_varint(&mut head, at, offset_delta as i32);
            at = write_field(&mut head, at, key);
            at = varint::write_varint(&mut head, at, value.len() as i32);
            out.extend_from_slice(&head[..at]);
            out.extend_from_slice(value);
            out.push(0); // no headers
            debug_assert_eq!(out.len() - start, record_len(body), "record size precomputed wrongly");
        }
        _ => put_record_in_place(out, record, body, timestamp_delta, offset_delta),
    }
}

/// Keys up to this long go through `put_record`'s stack prefix.
const SMALL_KEY: usize = 32;

/// The longest such prefix: length, attributes, both deltas, the key's
/// length and bytes, the value's length.
const HEAD_MAX: usize = 4 * varint::MAX_VARINT_LEN + 1 + varint::MAX_VARLONG_LEN + SMALL_KEY;

/// [`put_record`] for any record: sized once, written in place.
fn put_record_in_place(
    out: &mut Vec<u8>,
    record: &Record,
    body: usize,
    timestamp_delta: i64,
    offset_delta: u32,
) {
    let start = out.len();
    out.resize(start + record_len(body), 0);
    let dst = &mut out[start..];
    let mut at = varint::write_varint(dst, 0, body as i32);
    let body_start = at;
    at += 1; // attributes: 0, unused
    at = varint::write_varlong(dst, at, timestamp_delta);
    at = varint::write_varint(dst, at, offset_delta as i32);
    at = write_field(dst, at, record.key.as_deref());
    at = write_field(dst, at, record.value.as_deref());
    at = varint::write_varint(dst, at, record.headers.len() as i32);
    for h in &record.headers {
        at = write_field(dst, at, Some(h.key.as_bytes()));
        at = write_field(dst, at, h.value.as_deref());
    }
    debug_assert_eq!(at - body_start, body, "record size precomputed wrongly");
    debug_assert_eq!(at, dst.len());
}

#[cold]
#[inline(never)]
fn bad_record(pos: usize, what: &'static str) -> DecodeError {
    DecodeError::new(DecodeErrorKind::BadRecord(what), pos)
}

/// A varint of three bytes or more at `pos`, zigzag-encoded (out of line:
/// by value, so a cursor calling it stays in registers).
#[inline(never)]
fn varint_long(buf: &[u8], pos: usize) -> Option<(u32, usize)> {
    varint::get_varint_raw(buf.get(pos..)?)
}

/// A varlong of two bytes or more at `pos` (see `varint_long`).
#[inline(never)]
fn varlong_long(buf: &[u8], pos: usize) -> Option<(i64, usize)> {
    varint::get_varlong(buf.get(pos..)?)
}

/// A checked reader over a byte slice: every read is bounds-checked and a
/// failure names the byte position. The one-byte varint case is inlined;
/// everything else is out of line.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    /// The error for a bad `what` here. Inlined so that only the position
    /// leaves the cursor (which then stays in registers); the building is
    /// out of line.
    #[inline(always)]
    fn err(&self, what: &'static str) -> DecodeError {
        bad_record(self.pos, what)
    }

    /// A varint; one and two bytes (lengths up to 8 KiB) are inlined.
    /// Reads return `Option` (small enough for registers); the caller
    /// names what failed.
    #[inline(always)]
    fn varint(&mut self) -> Option<i32> {
        self.varint_raw().map(varint::unzigzag32)
    }

    /// A varint as its zigzag-encoded `u32` (see [`Cursor::varint`]).
    #[inline(always)]
    fn varint_raw(&mut self) -> Option<u32> {
        let b0 = *self.buf.get(self.pos)?;
        if b0 < 0x80 {
            self.pos += 1;
            return Some(u32::from(b0));
        }
        match self.buf.get(self.pos + 1) {
            Some(&b1) if b1 < 0x80 => {
                self.pos += 2;
                Some(u32::from(b0 & 0x7f) | (u32::from(b1) << 7))
            }
            _ => {
                let (raw, n) = varint_long(self.buf, self.pos)?;
                self.pos += n;
                Some(raw)
            }
        }
    }

    /// A field's length varint: `Some(Some(len))`, or `Some(None)` (null)
    /// for any negative length, as Kafka's `DefaultRecord.readFrom` reads a
    /// key's, a value's and a header value's (a negative is odd when
    /// zigzag-encoded: the sign test is one bit); `None` past the end.
    #[inline(always)]
    fn length(&mut self) -> Option<Option<usize>> {
        match self.varint_raw()? {
            raw if raw & 1 != 0 => Some(None),
            raw => Some(Some((raw >> 1) as usize)),
        }
    }

    #[inline(always)]
    fn varlong(&mut self) -> Option<i64> {
        let b0 = *self.buf.get(self.pos)?;
        if b0 < 0x80 {
            self.pos += 1;
            return Some(i64::from(b0 >> 1) ^ -i64::from(b0 & 1));
        }
        let (v, n) = varlong_long(self.buf, self.pos)?;
        self.pos += n;
        Some(v)
    }

    #[inline(always)]
    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        // `pos` never passes the end, so one comparison bounds the field.
        let rest = self.buf.get(self.pos..)?;
        let s = rest.get(..len)?;
        self.pos += len;
        Some(s)
    }

    /// A length-prefixed field: `Some(None)` for a negative length (null),
    /// `None` for one past the end.
    #[inline(always)]
    fn field(&mut self) -> Option<Option<&'a [u8]>> {
        match self.length()? {
            None => Some(None),
            Some(n) => self.bytes(n).map(Some),
        }
    }

    fn header(&mut self) -> Result<(&'a str, Option<&'a [u8]>), DecodeError> {
        let at = self.pos;
        let name = self.field().ok_or_else(|| self.err("header key length"))?;
        let name = name.ok_or_else(|| self.err("null header key"))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| DecodeError::new(DecodeErrorKind::BadRecord("header key is not UTF-8"), at))?;
        let value = self.field().ok_or_else(|| self.err("header value length"))?;
        Ok((name, value))
    }
}

/// What a record must agree with in its batch header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordBounds {
    pub base_offset: u64,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub last_offset_delta: u32,
    /// LogAppendTime: every record's timestamp is `max_timestamp_ms`.
    pub log_append_time: bool,
}

/// How much of a record [`decode_record`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checks {
    /// Every field against Kafka's rules and the batch header: what a batch
    /// passes on its way into a log (append, recovery).
    Full,
    /// What a producer's batch is validated with (`validate.rs`): as
    /// [`Checks::Full`] but for the two fields a broker corrects rather
    /// than trusts. Timestamps are not held to the header's maxTimestamp
    /// (Kafka's `LogValidator` recomputes it; the validator checks each
    /// against the topic's window), and an offset delta may be any: one
    /// outside `[0, lastOffsetDelta]` reads as the offset after the batch,
    /// which is no record's position (Kafka's broker then rebuilds the
    /// batch at consecutive offsets).
    Client,
    /// The framing only (every length bounds-checked, nothing read past
    /// the record; no panic on any bytes): reads of a batch that passed
    /// [`Checks::Full`] on its way in and whose CRC matched when it was
    /// read, so its records are the checked ones. Headers are parsed when
    /// iterated.
    Framing,
}

/// Decodes the record at the front of `buf`; returns it and its encoded size.
/// `prev_offset_delta` is the previous record's (deltas strictly increase).
///
/// Every length is checked against `buf`; with [`Checks::Full`] every
/// value against `bounds` too. Error positions are relative to `buf`.
#[inline(always)]
pub(crate) fn decode_record<'a>(
    buf: &'a [u8],
    bounds: &RecordBounds,
    prev_offset_delta: Option<u32>,
    checks: Checks,
) -> Result<(RecordView<'a>, usize), DecodeError> {
    // Client is Full but for timestamps and offset deltas.
    let full = checks != Checks::Framing;
    let stored = checks == Checks::Full;
    let mut cur = Cursor { buf, pos: 0 };
    // Lengths are read zigzag-encoded: odd is negative.
    let body_len = cur.varint_raw().ok_or_else(|| cur.err("record length"))?;
    let body_end = Some(body_len)
        .filter(|raw| raw & 1 == 0)
        .map(|raw| (raw >> 1) as usize + cur.pos)
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| cur.err("record length negative or past batch end"))?;
    // From here on the cursor cannot read past this record.
    cur.buf = &buf[..body_end];
    if full && cur.buf.get(cur.pos) != Some(&0) {
        return Err(cur.err("record attributes set or missing"));
    }
    cur.pos += 1;
    let ts_delta = cur.varlong().ok_or_else(|| cur.err("timestamp delta"))?;
    let offset_delta = cur.varint().ok_or_else(|| cur.err("offset delta"))?;
    let in_batch = u32::try_from(offset_delta).ok().filter(|&d| d <= bounds.last_offset_delta);
    let offset_delta = match in_batch {
        // The offset after the batch; `lastOffsetDelta` is an i32 that
        // `parse` (or the validator) found non-negative, so this fits.
        None if checks == Checks::Client => bounds.last_offset_delta + 1,
        d => d
            .filter(|&d| !stored || prev_offset_delta.is_none_or(|p| d > p))
            .ok_or_else(|| cur.err("offset delta out of order or past the batch"))?,
    };
    let create_time = bounds.base_timestamp_ms.checked_add(ts_delta);
    let timestamp_ms = if bounds.log_append_time {
        // Kafka keeps the producer's deltas and reads the batch's time.
        create_time.ok_or_else(|| cur.err("timestamp delta overflows"))?;
        bounds.max_timestamp_ms
    } else {
        create_time
            .filter(|&t| !stored || (t >= 0 && t <= bounds.max_timestamp_ms))
            .ok_or_else(|| cur.err("timestamp outside the batch's range"))?
    };
    let key = cur.field().ok_or_else(|| cur.err("key length"))?;
    let value = cur.field().ok_or_else(|| cur.err("value length"))?;
    let header_raw = cur.varint_raw().ok_or_else(|| cur.err("header count"))?;
    let headers_at = cur.pos;
    // A header takes at least two bytes: the count is bounded by the bytes
    // left (most records have none: one comparison).
    let header_count = (header_raw >> 1) as usize;
    if header_raw != 0 && (header_raw & 1 != 0 || header_count > (body_end - cur.pos) / 2) {
        return Err(cur.err("header count negative or past the record"));
    }
    if full {
        for _ in 0..header_count {
            cur.header()?;
        }
        if cur.pos != body_end {
            return Err(cur.err("trailing bytes in record"));
        }
    }
    let view = RecordView {
        offset: bounds.base_offset + u64::from(offset_delta),
        timestamp_ms,
        key,
        value,
        header_count: header_count as u32,
        headers_raw: &buf[headers_at..body_end],
    };
    Ok((view, body_end))
}

/// The offset delta and encoded size of the record at the front of `buf`,
/// read from its length and first fields only: how a read skips the
/// records before the offset it asked for in a batch that passed
/// [`decode_record`] on its way into the log. `None` when the framing
/// does not hold (the caller then decodes, which names the problem).
#[inline]
pub(crate) fn skip_record(buf: &[u8]) -> Option<(u32, usize)> {
    let mut cur = Cursor { buf, pos: 0 };
    let body_len = usize::try_from(cur.varint()?).ok()?;
    let end = cur.pos.checked_add(body_len).filter(|&e| e <= buf.len())?;
    cur.buf = &buf[..end];
    cur.pos += 1; // attributes
    cur.varlong()?;
    let offset_delta = u32::try_from(cur.varint()?).ok()?;
    Some((offset_delta, end))
}
