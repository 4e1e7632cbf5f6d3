//! Topic metadata: the partition count and log configuration of a topic,
//! persisted in `topics/<topic>.meta`.
//!
//! Format (`format::kv`: UTF-8 text, one `key=value` a line, a checksum last):
//!
//! ```text
//! annals-topic 1
//! partitions=3
//! segment_bytes=1073741824
//! index_interval_bytes=4096
//! segment_index_bytes=10485760
//! max_record_bytes=1048576
//! max_batch_bytes=8388608
//! segment_ms=604800000
//! retention_ms=604800000
//! retention_bytes=-1
//! message_timestamp_type=CreateTime
//! message_timestamp_before_max_ms=9223372036854775807
//! message_timestamp_after_max_ms=9223372036854775807
//! compression_type=producer
//! compression_gzip_level=6
//! compression_lz4_level=9
//! compression_zstd_level=3
//! durability=interval
//! flush_messages=10000
//! flush_ms=1000
//! crc32=89abcdef
//! ```
//!
//! `message_timestamp_type` is Kafka's `CreateTime` or `LogAppendTime`;
//! `compression_type` Kafka's `producer`, `none`, `gzip`, `snappy`, `lz4`
//! or `zstd`.
//! `durability` is `none`, `always` or `interval` (then with
//! `flush_messages` and `flush_ms`). Lines `passthrough.<name>=<value>`
//! (after the others, in name order) are the topic's pass-through
//! settings ([`crate::Store::create_topic_with_passthrough`]): kept for the caller,
//! verbatim, and never read by the engine. `crc32` is CRC-32 (IEEE) of every byte
//! before its line, in hex. A key this
//! build does not know is an error (a newer build wrote it); a missing key
//! takes its default (an older build wrote it). The file is replaced
//! atomically (`io::write_file_atomic`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{CleanupPolicy, CompressionType, Durability, LogConfig, TimestampType};
use crate::error::{Error, OpenError, Result};
use crate::format::kv;

/// Bounds on a metadata file's size when read.
pub const METADATA_BYTES_MAX: u64 = 64 << 10;
const HEADER: &str = "annals-topic 1";
/// The key prefix of a pass-through setting.
const PASSTHROUGH: &str = "passthrough.";

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

/// What a topic's metadata file holds: its settings, and the pass-through
/// ones its creator keeps with it (see
/// [`crate::Store::create_topic_with_passthrough`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TopicMetadata {
    pub(crate) config: TopicConfig,
    pub(crate) passthrough: BTreeMap<String, String>,
}

/// Checks pass-through settings fit the file: names of at most 255 bytes
/// without `=` or control characters, values without line breaks.
///
/// # Errors
/// [`Error::InvalidConfig`] naming the first that does not.
pub(crate) fn check_passthrough(passthrough: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in passthrough {
        if name.is_empty() || name.len() > 255 || name.contains('=') || name.chars().any(char::is_control) {
            return Err(Error::config("passthrough", format!("{name:?} is not a setting name")));
        }
        if value.contains(['\n', '\r']) {
            return Err(Error::config("passthrough", format!("{name}: a value with a line break")));
        }
    }
    Ok(())
}

/// Encodes `config` as a metadata file (without pass-through settings).
#[cfg(test)]
fn encode(config: &TopicConfig) -> Vec<u8> {
    encode_with(&TopicMetadata { config: config.clone(), passthrough: BTreeMap::new() })
}

/// Encodes a topic's settings and pass-through settings as a metadata file.
pub(crate) fn encode_with(metadata: &TopicMetadata) -> Vec<u8> {
    let config = &metadata.config;
    let l = &config.log;
    let mut pairs = vec![
        ("partitions", config.partitions.to_string()),
        ("segment_bytes", l.segment_bytes.to_string()),
        ("index_interval_bytes", l.index_interval_bytes.to_string()),
        ("segment_index_bytes", l.segment_index_bytes.to_string()),
        ("max_record_bytes", l.max_record_bytes.to_string()),
        ("max_batch_bytes", l.max_batch_bytes.to_string()),
        ("segment_ms", l.segment_ms.to_string()),
        ("retention_ms", l.retention_ms.to_string()),
        ("retention_bytes", l.retention_bytes.to_string()),
        ("cleanup_policy", l.cleanup_policy.name().to_string()),
        ("delete_retention_ms", l.delete_retention_ms.to_string()),
        ("min_cleanable_dirty_percent", l.min_cleanable_dirty_percent.to_string()),
        ("cleaner_memory_bytes", l.cleaner_memory_bytes.to_string()),
        ("mmap_reads", u8::from(l.mmap_reads).to_string()),
        ("producer_id_expiration_ms", l.producer_id_expiration_ms.to_string()),
        ("message_timestamp_type", l.message_timestamp_type.name().to_string()),
        ("message_timestamp_before_max_ms", l.message_timestamp_before_max_ms.to_string()),
        ("message_timestamp_after_max_ms", l.message_timestamp_after_max_ms.to_string()),
        ("compression_type", l.compression_type.name().to_string()),
        ("compression_gzip_level", l.compression_gzip_level.to_string()),
        ("compression_lz4_level", l.compression_lz4_level.to_string()),
        ("compression_zstd_level", l.compression_zstd_level.to_string()),
    ];
    if l.durable_high_watermark {
        // Only when set, so a topic without it stays readable by a build
        // that predates the key.
        pairs.push(("durable_high_watermark", "1".to_string()));
    }
    if l.write_buffer_bytes > 0 {
        // The same: only when on.
        pairs.push(("write_buffer_bytes", l.write_buffer_bytes.to_string()));
        pairs.push(("write_buffer_max_delay_ms", l.write_buffer_max_delay_ms.to_string()));
    }
    pairs.extend(l.durability.to_pairs());
    let keys: Vec<String> = metadata.passthrough.keys().map(|name| format!("{PASSTHROUGH}{name}")).collect();
    pairs.extend(keys.iter().map(String::as_str).zip(metadata.passthrough.values().cloned()));
    kv::encode(HEADER, &pairs)
}

/// Decodes a metadata file read from `path`.
///
/// # Errors
/// [`crate::OpenError::InvalidMetadata`] for a bad header, checksum, key or value.
pub fn decode(bytes: &[u8], path: &Path) -> Result<TopicConfig> {
    decode_with(bytes, path).map(|metadata| metadata.config)
}

/// Decodes a metadata file read from `path`, pass-through settings included.
///
/// # Errors
/// As [`decode`].
pub(crate) fn decode_with(bytes: &[u8], path: &Path) -> Result<TopicMetadata> {
    let bad = |reason: String| Error::Open(OpenError::InvalidMetadata { path: path.to_path_buf(), reason });
    let pairs = kv::decode(bytes, HEADER).map_err(bad)?;
    let mut config = TopicConfig::default();
    let mut passthrough = BTreeMap::new();
    let mut durability = Vec::new();
    for (key, value) in pairs {
        let too_big = || bad(format!("{key}: {value} out of range"));
        if let Some(name) = key.strip_prefix(PASSTHROUGH) {
            passthrough.insert(name.to_owned(), value.to_owned());
            continue;
        }
        match key {
            "durability" | "flush_messages" | "flush_ms" => {
                durability.push((key, value));
                continue;
            }
            "cleanup_policy" => {
                config.log.cleanup_policy = CleanupPolicy::parse(value)
                    .ok_or_else(|| bad(format!("unknown cleanup_policy {value:?}")))?;
                continue;
            }
            "message_timestamp_type" => {
                config.log.message_timestamp_type = TimestampType::parse(value)
                    .ok_or_else(|| bad(format!("unknown message_timestamp_type {value:?}")))?;
                continue;
            }
            "compression_type" => {
                config.log.compression_type = CompressionType::parse(value)
                    .ok_or_else(|| bad(format!("unknown compression_type {value:?}")))?;
                continue;
            }
            "compression_gzip_level" | "compression_lz4_level" | "compression_zstd_level" => {
                let n: i32 = value.parse().map_err(|_| bad(format!("{key}: not a level: {value:?}")))?;
                match key {
                    "compression_gzip_level" => config.log.compression_gzip_level = n,
                    "compression_lz4_level" => config.log.compression_lz4_level = n,
                    _ => config.log.compression_zstd_level = n,
                }
                continue;
            }
            "segment_ms"
            | "retention_ms"
            | "retention_bytes"
            | "delete_retention_ms"
            | "producer_id_expiration_ms"
            | "message_timestamp_before_max_ms"
            | "message_timestamp_after_max_ms" => {
                let n: i64 = value.parse().map_err(|_| bad(format!("{key}: not a number: {value:?}")))?;
                match key {
                    "segment_ms" => config.log.segment_ms = n,
                    "retention_ms" => config.log.retention_ms = n,
                    "delete_retention_ms" => config.log.delete_retention_ms = n,
                    "producer_id_expiration_ms" => config.log.producer_id_expiration_ms = n,
                    "message_timestamp_before_max_ms" => config.log.message_timestamp_before_max_ms = n,
                    "message_timestamp_after_max_ms" => config.log.message_timestamp_after_max_ms = n,
                    _ => config.log.retention_bytes = n,
                }
                continue;
            }
            _ => {}
        }
        let n = kv::number(key, value).map_err(bad)?;
        match key {
            "partitions" => config.partitions = u32::try_from(n).map_err(|_| too_big())?,
            "segment_bytes" => config.log.segment_bytes = n,
            "index_interval_bytes" => config.log.index_interval_bytes = n,
            "segment_index_bytes" => config.log.segment_index_bytes = n,
            "max_record_bytes" => config.log.max_record_bytes = usize::try_from(n).map_err(|_| too_big())?,
            "max_batch_bytes" => config.log.max_batch_bytes = usize::try_from(n).map_err(|_| too_big())?,
            "min_cleanable_dirty_percent" => {
                config.log.min_cleanable_dirty_percent = u32::try_from(n).map_err(|_| too_big())?
            }
            "cleaner_memory_bytes" => {
                config.log.cleaner_memory_bytes = usize::try_from(n).map_err(|_| too_big())?
            }
            "write_buffer_bytes" => {
                config.log.write_buffer_bytes = usize::try_from(n).map_err(|_| too_big())?
            }
            "write_buffer_max_delay_ms" => config.log.write_buffer_max_delay_ms = n,
            "mmap_reads" | "durable_high_watermark" => {
                let flag = match n {
                    0 => false,
                    1 => true,
                    _ => return Err(too_big()),
                };
                match key {
                    "mmap_reads" => config.log.mmap_reads = flag,
                    _ => config.log.durable_high_watermark = flag,
                }
            }
            _ => return Err(bad(format!("unknown key {key:?} (written by a newer annals?)"))),
        }
    }
    config.log.durability = Durability::from_pairs(&durability).map_err(bad)?;
    check_passthrough(&passthrough).map_err(|e| bad(e.to_string()))?;
    Ok(TopicMetadata { config, passthrough })
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
        let pread = TopicConfig {
            log: LogConfig {
                mmap_reads: false,
                producer_id_expiration_ms: -1,
                durable_high_watermark: true,
                write_buffer_bytes: 1 << 16,
                write_buffer_max_delay_ms: 7,
                ..config.log.clone()
            },
            ..config.clone()
        };
        assert_eq!(decode(&encode(&pread), path).unwrap(), pread);
        let log_append_time = TopicConfig {
            log: LogConfig {
                message_timestamp_type: TimestampType::LogAppendTime,
                message_timestamp_before_max_ms: 3_600_000,
                message_timestamp_after_max_ms: 0,
                ..config.log.clone()
            },
            ..config.clone()
        };
        let text = encode(&log_append_time);
        assert!(String::from_utf8_lossy(&text).contains("message_timestamp_type=LogAppendTime\n"));
        assert_eq!(decode(&text, path).unwrap(), log_append_time);
        let zstd = TopicConfig {
            log: LogConfig {
                compression_type: CompressionType::Codec(crate::format::Codec::Zstd),
                compression_zstd_level: -5,
                ..config.log.clone()
            },
            ..config.clone()
        };
        let text = encode(&zstd);
        assert!(String::from_utf8_lossy(&text).contains("compression_type=zstd\ncompression_gzip_level=6\n"));
        assert_eq!(decode(&text, path).unwrap(), zstd);
        let bad_codec = kv::encode(HEADER, &[("compression_type", "brotli".into())]);
        assert!(decode(&bad_codec, path).is_err());
        let bad_type = kv::encode(HEADER, &[("message_timestamp_type", "AppendTime".into())]);
        assert!(decode(&bad_type, path).is_err());
        let bad_flag = kv::encode(HEADER, &[("mmap_reads", "2".into())]);
        assert!(decode(&bad_flag, path).is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            // A flip in the stored checksum's own hex may still parse to a
            // different number, which then mismatches; nothing gets through.
            assert!(decode(&bad, path).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn passthrough_settings_roundtrip_verbatim() {
        let path = Path::new("t.meta");
        let passthrough: BTreeMap<String, String> = [
            ("min.insync.replicas", "1"),
            ("leader.replication.throttled.replicas", "0:0,1:0"),
            ("message.format.version", "3.0-IV1"),
            ("odd", "a=b crc32=0 "),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        check_passthrough(&passthrough).unwrap();
        let metadata = TopicMetadata { config: TopicConfig::with_partitions(3), passthrough };
        let bytes = encode_with(&metadata);
        assert!(String::from_utf8_lossy(&bytes).contains("passthrough.min.insync.replicas=1\n"));
        assert_eq!(decode_with(&bytes, path).unwrap(), metadata);
        assert_eq!(decode(&bytes, path).unwrap(), metadata.config, "the engine's settings alone");
        // A file without any decodes with none.
        assert!(decode_with(&encode(&metadata.config), path).unwrap().passthrough.is_empty());
        for bad in [("", "1"), ("a=b", "1"), ("a\nb", "1"), ("a", "1\n2"), ("a", "1\r")] {
            let one = BTreeMap::from([(bad.0.to_owned(), bad.1.to_owned())]);
            assert!(matches!(check_passthrough(&one), Err(Error::InvalidConfig { .. })), "{bad:?}");
        }
    }

    #[test]
    fn unknown_keys_and_garbage_are_refused() {
        let path = Path::new("t.meta");
        let text = kv::encode(HEADER, &[("partitions", "2".into()), ("future_knob", "1".into())]);
        assert!(matches!(decode(&text, path), Err(Error::Open(OpenError::InvalidMetadata { .. }))));
        assert!(decode(b"", path).is_err());
        assert!(decode(&[0xff, 0xfe], path).is_err());
    }
}
