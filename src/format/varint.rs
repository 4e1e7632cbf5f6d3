//! LEB128 unsigned varints and zigzag signed varints.
//!
//! Used for the per-record fields inside a batch, so a 100-byte record with
//! small deltas pays a handful of bytes of framing. Decoding is checked: a
//! truncated or over-long varint is an error, never a panic.

/// The most bytes a `u64` varint can take (10 × 7 bits ≥ 64 bits).
pub const MAX_VARINT_LEN: usize = 10;

/// Appends `value` as an unsigned LEB128 varint.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` zigzag-encoded, so small negative numbers stay small.
#[inline]
pub fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// The number of bytes `put_u64(value)` writes.
#[inline]
pub fn len_u64(value: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// The number of bytes `put_i64(value)` writes.
#[inline]
pub fn len_i64(value: i64) -> usize {
    len_u64(((value << 1) ^ (value >> 63)) as u64)
}

/// Reads an unsigned varint from the front of `buf`.
///
/// Returns the value and the number of bytes consumed, or `None` when `buf`
/// ends inside the varint or the varint does not fit in 64 bits.
#[inline]
pub fn get_u64(buf: &[u8]) -> Option<(u64, usize)> {
    // Fast path: one byte, the common case for deltas and short lengths.
    if let Some(&b) = buf.first() {
        if b < 0x80 {
            return Some((u64::from(b), 1));
        }
    }
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        let part = u64::from(b & 0x7f);
        if i == MAX_VARINT_LEN - 1 && b > 0x01 {
            return None; // more than 64 bits
        }
        value |= part << (7 * i);
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Reads a zigzag varint from the front of `buf`.
#[inline]
pub fn get_i64(buf: &[u8]) -> Option<(i64, usize)> {
    let (raw, n) = get_u64(buf)?;
    Some((((raw >> 1) as i64) ^ -((raw & 1) as i64), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        put_u64(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        put_i64(&mut out, -1);
        assert_eq!(out, [0x01]);
        assert_eq!(len_u64(0), 1);
        assert_eq!(len_u64(127), 1);
        assert_eq!(len_u64(128), 2);
        assert_eq!(len_u64(u64::MAX), 10);
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(get_u64(&[]), None);
        assert_eq!(get_u64(&[0x80]), None);
        assert_eq!(get_u64(&[0xff; 11]), None);
        let mut max = vec![0xff; 9];
        max.push(0x02); // 65th bit set
        assert_eq!(get_u64(&max), None);
    }

    proptest! {
        #[test]
        fn roundtrip_u64(v: u64) {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            prop_assert_eq!(out.len(), len_u64(v));
            prop_assert_eq!(get_u64(&out), Some((v, out.len())));
        }

        #[test]
        fn roundtrip_i64(v: i64) {
            let mut out = Vec::new();
            put_i64(&mut out, v);
            prop_assert_eq!(out.len(), len_i64(v));
            prop_assert_eq!(get_i64(&out), Some((v, out.len())));
        }

        #[test]
        fn never_panics(bytes: Vec<u8>) {
            let _ = get_u64(&bytes);
            let _ = get_i64(&bytes);
        }
    }
}
