//! Small checksummed `key=value` text files: topic metadata and checkpoints.
//!
//! Format (UTF-8):
//!
//! ```text
//! <header line>
//! key=value          (any number of lines, values without newlines)
//! crc32=89abcdef
//! ```
//!
//! `crc32` is the CRC-32 (IEEE) of every byte before its line, exactly 8
//! lowercase hex digits followed by a newline, and nothing may follow it.

/// Encodes `pairs` under `header`.
pub fn encode(header: &str, pairs: &[(&str, String)]) -> Vec<u8> {
    let mut text = format!("{header}\n");
    for (key, value) in pairs {
        text.push_str(&format!("{key}={value}\n"));
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32={crc:08x}\n"));
    text.into_bytes()
}

/// Decodes a file written by [`encode`] with the same `header`; returns its
/// pairs in order, or why it is invalid.
pub fn decode<'a>(bytes: &'a [u8], header: &str) -> Result<Vec<(&'a str, &'a str)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let body_end = text.rfind("crc32=").ok_or("no crc32 line")?;
    let stored = &text[body_end + 6..];
    let hex = stored
        .strip_suffix('\n')
        .filter(|h| h.len() == 8 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| format!("bad crc32 line {stored:?}"))?;
    let stored = u32::from_str_radix(hex, 16).map_err(|_| format!("bad crc32 {hex:?}"))?;
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(format!("checksum mismatch: stored {stored:08x}, computed {computed:08x}"));
    }
    let mut lines = text[..body_end].lines();
    if lines.next() != Some(header) {
        return Err(format!("first line is not {header:?}"));
    }
    lines.map(|line| line.split_once('=').ok_or_else(|| format!("not key=value: {line:?}"))).collect()
}

/// Parses a decimal `u64` value of `key`.
pub fn number(key: &str, value: &str) -> Result<u64, String> {
    value.parse().map_err(|_| format!("{key}: not a number: {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_every_flip_is_caught() {
        let bytes = encode("h 1", &[("a", "1".into()), ("bb", "22".into())]);
        assert_eq!(decode(&bytes, "h 1").unwrap(), [("a", "1"), ("bb", "22")]);
        assert!(decode(&bytes, "h 2").is_err());
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                assert!(decode(&bad, "h 1").is_err(), "flip {mask:#x} at {i}");
            }
        }
        assert!(decode(b"", "h 1").is_err());
    }
}
