//! Topic metadata: the partition count and log configuration of a topic,
//! persisted in `topics/<topic>.meta`.
//!
//! Format (UTF-8 text, one `key=value` a line, a checksum last):
//!
//! ```text
//! annals-topic 1
//! partitions=3
//! segment_bytes=1073741824
//! index_interval_bytes=4096
//! segment_index_bytes=10485760
//! max_record_bytes=1048576
//! max_batch_bytes=8388608
//! crc32=89abcdef
//! ```
//!
//! `crc32` is CRC-32 (IEEE) of every byte before its line, in hex. A key this
//! build does not know is an error (a newer build wrote it); a missing key
//! takes its default (an older build wrote it). The file is replaced
//! atomically (`io::write_file_atomic`).

use std::path::Path;

use crate::config::LogConfig;
use crate::error::{Error, Result};

/// Bounds on a metadata file's size when read.
pub const METADATA_BYTES_MAX: u64 = 64 << 10;
const HEADER: &str = "annals-topic 1";

/// Settings of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    /// Number of partitions. Default 1; at least 1, at most the store's
    /// `max_partitions`.
    pub partitions: u32,
    /// Configuration of each partition's log.
    pub log: LogConfig,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig { partitions: 1, log: LogConfig::default() }
    }
}

impl TopicConfig {
    /// A topic of `partitions` partitions with default log settings.
    pub fn with_partitions(partitions: u32) -> Self {
        TopicConfig { partitions, ..TopicConfig::default() }
    }
}

/// Encodes `config` as a metadata file.
pub fn encode(config: &TopicConfig) -> Vec<u8> {
    let l = &config.log;
    let mut text = format!(
        "{HEADER}\npartitions={}\nsegment_bytes={}\nindex_interval_bytes={}\nsegment_index_bytes={}\n\
         max_record_bytes={}\nmax_batch_bytes={}\n",
        config.partitions,
        l.segment_bytes,
        l.index_interval_bytes,
        l.segment_index_bytes,
        l.max_record_bytes,
        l.max_batch_bytes
    );
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32={crc:08x}\n"));
    text.into_bytes()
}

/// Decodes a metadata file read from `path`.
///
/// # Errors
/// [`Error::InvalidMetadata`] for a bad header, checksum, key or value.
pub fn decode(bytes: &[u8], path: &Path) -> Result<TopicConfig> {
    let bad = |reason: String| Error::InvalidMetadata { path: path.to_path_buf(), reason };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    let body_end = text.rfind("crc32=").ok_or_else(|| bad("no crc32 line".into()))?;
    // Exactly `crc32=` + 8 lowercase hex digits + '\n': nothing else may end the file.
    let stored = &text[body_end + 6..];
    let hex = stored
        .strip_suffix('\n')
        .filter(|h| h.len() == 8 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| bad(format!("bad crc32 line {stored:?}")))?;
    let stored = u32::from_str_radix(hex, 16).map_err(|_| bad(format!("bad crc32 {hex:?}")))?;
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(bad(format!("checksum mismatch: stored {stored:08x}, computed {computed:08x}")));
    }
    let mut lines = text[..body_end].lines();
    if lines.next() != Some(HEADER) {
        return Err(bad(format!("first line is not {HEADER:?}")));
    }
    let mut config = TopicConfig::default();
    for line in lines {
        let (key, value) = line.split_once('=').ok_or_else(|| bad(format!("not key=value: {line:?}")))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| bad(format!("{key}: not a number: {v:?}")));
        let n = number(value)?;
        let too_big = || bad(format!("{key}: {n} out of range"));
        match key {
            "partitions" => config.partitions = u32::try_from(n).map_err(|_| too_big())?,
            "segment_bytes" => config.log.segment_bytes = n,
            "index_interval_bytes" => config.log.index_interval_bytes = n,
            "segment_index_bytes" => config.log.segment_index_bytes = n,
            "max_record_bytes" => config.log.max_record_bytes = usize::try_from(n).map_err(|_| too_big())?,
            "max_batch_bytes" => config.log.max_batch_bytes = usize::try_from(n).map_err(|_| too_big())?,
            _ => return Err(bad(format!("unknown key {key:?} (written by a newer annals?)"))),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_every_flip_is_caught() {
        let config =
            TopicConfig { partitions: 12, log: LogConfig { segment_bytes: 1 << 20, ..LogConfig::default() } };
        let bytes = encode(&config);
        let path = Path::new("t.meta");
        assert_eq!(decode(&bytes, path).unwrap(), config);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            // A flip in the stored checksum's own hex may still parse to a
            // different number, which then mismatches; nothing gets through.
            assert!(decode(&bad, path).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn unknown_keys_and_garbage_are_refused() {
        let path = Path::new("t.meta");
        let mut text = format!("{HEADER}\npartitions=2\nfuture_knob=1\n");
        text.push_str(&format!("crc32={:08x}\n", crc32fast::hash(text.as_bytes())));
        assert!(matches!(decode(text.as_bytes(), path), Err(Error::InvalidMetadata { .. })));
        assert!(decode(b"", path).is_err());
        assert!(decode(&[0xff, 0xfe], path).is_err());
    }
}
