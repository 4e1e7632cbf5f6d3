//! Kafka's variable-length integers (`ByteUtils` in apache/kafka): zigzag
//! encoded, then LEB128, 7 bits a byte, low bits first.
//!
//! A *varint* holds an `i32` in at most 5 bytes, a *varlong* an `i64` in at
//! most 10. Every field of a v2 record is one of these (see `record.rs`).
//! Decoding is checked: a truncated varint, one longer than its type allows
//! or one with bits past its type's width is an error, never a panic.

/// The most bytes a varint (`i32`) takes.
pub const MAX_VARINT_LEN: usize = 5;
/// The most bytes a varlong (`i64`) takes.
pub const MAX_VARLONG_LEN: usize = 10;

#[inline]
fn zigzag32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

/// The `i32` a zigzag-encoded `raw` holds.
#[inline]
pub(crate) fn unzigzag32(raw: u32) -> i32 {
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

#[inline]
fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[cfg(test)]
fn put_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline(always)]
fn unsigned_len(value: u64) -> usize {
    if value < 0x80 {
        return 1;
    }
    // One byte per started group of 7 bits.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `value`'s LEB128 bytes into `dst` at `at`; returns the position
/// after them. `dst` must have room (the caller sized it with the `_len`
/// functions); a short `dst` panics, a caller bug, never input.
#[inline(always)]
fn write_unsigned(dst: &mut [u8], mut at: usize, mut value: u64) -> usize {
    // One and two bytes (values below 2^14) without the loop.
    if value < 0x80 {
        dst[at] = value as u8;
        return at + 1;
    }
    if value < 0x4000 {
        dst[at..at + 2].copy_from_slice(&[(value as u8) | 0x80, (value >> 7) as u8]);
        return at + 2;
    }
    while value >= 0x80 {
        dst[at] = (value as u8) | 0x80;
        at += 1;
        value >>= 7;
    }
    dst[at] = value as u8;
    at + 1
}

/// Writes `value` as a varint into `dst` at `at` (see `write_unsigned`).
#[inline(always)]
pub fn write_varint(dst: &mut [u8], at: usize, value: i32) -> usize {
    write_unsigned(dst, at, u64::from(zigzag32(value)))
}

/// Writes `value` as a varlong into `dst` at `at` (see `write_unsigned`).
#[inline(always)]
pub fn write_varlong(dst: &mut [u8], at: usize, value: i64) -> usize {
    write_unsigned(dst, at, zigzag64(value))
}

/// Appends `value` as a varint (the tests' reference encoder).
#[cfg(test)]
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, u64::from(zigzag32(value)));
}

/// Appends `value` as a varlong (the tests' reference encoder).
#[cfg(test)]
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, zigzag64(value));
}

/// The bytes `write_varint(value)` writes.
#[inline(always)]
pub fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(zigzag32(value)))
}

/// The bytes `write_varlong(value)` writes.
#[inline(always)]
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

/// Reads the unsigned LEB128 value at the front of `buf` that fits in
/// `bits` bits and `max_len` bytes.
#[inline]
fn get_unsigned(buf: &[u8], max_len: usize, bits: u32) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(max_len).enumerate() {
        let shift = 7 * i as u32;
        let part = u64::from(b & 0x7f);
        // The last byte may carry only the bits left of the type's width.
        if i == max_len - 1 && part >> (bits - shift) != 0 {
            return None;
        }
        value |= part << shift;
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Reads a varint from the front of `buf`: the value and the bytes used,
/// or `None` when `buf` ends inside it or it does not fit an `i32`.
#[inline]
pub fn get_varint(buf: &[u8]) -> Option<(i32, usize)> {
    let (raw, n) = get_varint_raw(buf)?;
    Some((unzigzag32(raw), n))
}

/// Reads a varint from the front of `buf` as its zigzag-encoded `u32`:
/// odd for a negative value, else the value times two (a length's sign is
/// its low bit).
#[inline]
pub(crate) fn get_varint_raw(buf: &[u8]) -> Option<(u32, usize)> {
    // Fast path: one byte, the common case for deltas and short lengths.
    if let Some(&b) = buf.first() {
        if b < 0x80 {
            return Some((u32::from(b), 1));
        }
    }
    let (raw, n) = get_unsigned(buf, MAX_VARINT_LEN, 32)?;
    Some((raw as u32, n))
}

/// Reads a varlong from the front of `buf` (see [`get_varint`]).
#[inline]
pub fn get_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let (raw, n) = get_unsigned(buf, MAX_VARLONG_LEN, 64)?;
    Some((((raw >> 1) as i64) ^ -((raw & 1) as i64), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Values from Kafka's ByteUtilsTest: zigzag then LEB128.
        let enc = |v: i32| {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(-1), [0x01]);
        assert_eq!(enc(1), [0x02]);
        assert_eq!(enc(63), [0x7e]);
        assert_eq!(enc(-64), [0x7f]);
        assert_eq!(enc(64), [0x80, 0x01]);
        assert_eq!(enc(150), [0xac, 0x02]);
        assert_eq!(enc(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(varlong_len(i64::MIN), 10);
        assert_eq!(varint_len(-1), 1);
    }

    #[test]
    fn rejects_truncated_overlong_and_too_wide() {
        assert_eq!(get_varint(&[]), None);
        assert_eq!(get_varint(&[0x80]), None);
        assert_eq!(get_varint(&[0xff; 6]), None);
        assert_eq!(get_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None, "33rd bit");
        assert_eq!(get_varlong(&[0xff; 11]), None);
        let mut wide = vec![0xff; 9];
        wide.push(0x02); // 65th bit
        assert_eq!(get_varlong(&wide), None);
    }

    proptest! {
        #[test]
        fn roundtrip_varint(v: i32) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            prop_assert_eq!(get_varint(&out), Some((v, out.len())));
        }

        #[test]
        fn slice_writes_match(a: i32, b: i64) {
            let mut out = Vec::new();
            put_varint(&mut out, a);
            put_varlong(&mut out, b);
            let mut dst = vec![0u8; out.len()];
            let at = write_varint(&mut dst, 0, a);
            prop_assert_eq!(write_varlong(&mut dst, at, b), out.len());
            prop_assert_eq!(dst, out);
        }

        #[test]
        fn roundtrip_varlong(v: i64) {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            prop_assert_eq!(out.len(), varlong_len(v));
            prop_assert_eq!(get_varlong(&out), Some((v, out.len())));
        }

        #[test]
        fn never_panics(bytes: Vec<u8>) {
            let _ = get_varint(&bytes);
            let _ = get_varlong(&bytes);
        }
    }
}
