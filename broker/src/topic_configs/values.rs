//! Each config's values as Kafka's `ConfigDef` reads them (INT, LONG,
//! BOOLEAN, LIST, the throttled-replica and version validators), and the
//! setters that put them into annals' [`LogConfig`].

use annals::format::Codec;
use annals::{CleanupPolicy, CompressionType, Durability, LogConfig, TimestampType};

pub(super) fn only(ok: bool, why: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why.to_string())
    }
}

/// Kafka's INT, at least `min`.
pub(super) fn int(value: &str, min: i32) -> Result<i32, String> {
    let n: i32 = value.parse().map_err(|_| "not a number (INT)".to_string())?;
    if n < min {
        return Err(format!("Value must be at least {min}"));
    }
    Ok(n)
}

/// Kafka's LONG, at least `min`.
pub(super) fn long(value: &str, min: i64) -> Result<i64, String> {
    let n: i64 = value.parse().map_err(|_| "not a number (LONG)".to_string())?;
    if n < min {
        return Err(format!("Value must be at least {min}"));
    }
    Ok(n)
}

/// Kafka's BOOLEAN: `true` or `false`, in any case.
pub(super) fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("Expected value to be either true or false".to_string()),
    }
}

/// Kafka's LIST: comma-separated, each item trimmed; empty for none.
pub(super) fn list(value: &str) -> Vec<&str> {
    if value.is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

/// Kafka's `ThrottledReplicaListValidator`: `*`, or `partition:broker`
/// pairs.
pub(super) fn throttled_replicas(value: &str) -> Result<(), String> {
    let items = list(value);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let pair = |s: &str| s.split_once(':').is_some_and(|(p, b)| digits(p) && digits(b));
    only(
        items == ["*"] || items.iter().all(|i| pair(i)),
        "must be the literal '*' or a list of replicas in the format [PartitionId]:[BrokerId],...",
    )
}

/// A Kafka version, as `MetadataVersion` names them (`2.8`, `3.0-IV1`).
pub(super) fn version(value: &str) -> Result<(), String> {
    let (release, iv) = value.split_once("-IV").map_or((value, None), |(r, iv)| (r, Some(iv)));
    let parts: Vec<&str> = release.split('.').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    only(
        (2..=3).contains(&parts.len()) && parts.iter().all(|p| digits(p)) && iv.is_none_or(digits),
        "not a Kafka version",
    )
}

pub(super) fn set_cleanup_policy(l: &mut LogConfig, v: &str) -> Result<(), String> {
    let items = list(v);
    if let Some(other) = items.iter().find(|i| !matches!(**i, "compact" | "delete")) {
        return Err(format!("String must be one of: compact, delete (not {other})"));
    }
    l.cleanup_policy = match (items.contains(&"compact"), items.contains(&"delete")) {
        (true, true) => CleanupPolicy::CompactDelete,
        (true, false) => CleanupPolicy::Compact,
        (false, true) => CleanupPolicy::Delete,
        (false, false) => return Err("annals keeps no log without delete or compact".into()),
    };
    Ok(())
}

pub(super) fn show_cleanup_policy(l: &LogConfig) -> String {
    match l.cleanup_policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
        CleanupPolicy::CompactDelete => "compact,delete",
    }
    .into()
}

pub(super) fn set_gzip_level(l: &mut LogConfig, v: &str) -> Result<(), String> {
    // Kafka's default, -1, is zlib's default level: 6.
    l.compression_gzip_level = match int(v, -1)? {
        -1 => 6,
        0 => return Err("must be -1 or 1 to 9".into()),
        n => n,
    };
    Ok(())
}

pub(super) fn set_lz4_level(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.compression_lz4_level = int(v, i32::MIN)?;
    Ok(())
}

pub(super) fn set_zstd_level(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.compression_zstd_level = int(v, i32::MIN)?;
    Ok(())
}

pub(super) fn set_compression_type(l: &mut LogConfig, v: &str) -> Result<(), String> {
    // Kafka's topic names (BrokerCompressionType): `uncompressed`, not `none`.
    l.compression_type = match v {
        "uncompressed" => CompressionType::Codec(Codec::None),
        "none" => return Err("String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer".into()),
        other => CompressionType::parse(other)
            .ok_or("String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")?,
    };
    Ok(())
}

pub(super) fn set_delete_retention_ms(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.delete_retention_ms = long(v, 0)?;
    Ok(())
}

/// `(flush.messages, flush.ms)` of the durability policy: Kafka's
/// defaults (never) for `None`, `flush.messages=1` for `Always`.
pub(super) fn flush(l: &LogConfig) -> (i64, i64) {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match l.durability {
        Durability::None => (i64::MAX, i64::MAX),
        Durability::Always => (1, i64::MAX),
        Durability::Interval { flush_messages, flush_ms } => (clamp(flush_messages), clamp(flush_ms)),
    }
}

/// Kafka's meaning: fsync after `messages` unflushed records, or once
/// `ms` passed since the last fsync; 1 message (or 0 ms) is every append.
pub(super) fn durability(messages: i64, ms: i64) -> Durability {
    match (messages, ms) {
        (1, _) | (_, 0) => Durability::Always,
        (i64::MAX, i64::MAX) => Durability::None,
        (m, t) => Durability::Interval { flush_messages: m as u64, flush_ms: t as u64 },
    }
}

pub(super) fn set_flush_messages(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.durability = durability(long(v, 1)?, flush(l).1);
    Ok(())
}

/// Applied after `flush.messages` (the table's order), so what that set
/// is read back whole: only `Always` loses a value, and it covers both.
pub(super) fn set_flush_ms(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.durability = durability(flush(l).0, long(v, 0)?);
    Ok(())
}

pub(super) fn set_index_interval_bytes(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.index_interval_bytes = int(v, 0)? as u64;
    Ok(())
}

/// Kafka's `max.message.bytes` is the largest batch as stored, its header
/// included (the default 1048588 is 1 MiB plus the 12 bytes of offset and
/// length): annals' `max_batch_bytes`. Kafka has no limit of its own on
/// one record but the batch's: a record may take all the batch leaves.
pub(super) fn set_max_message_bytes(l: &mut LogConfig, v: &str) -> Result<(), String> {
    let bytes = int(v, 0)? as usize;
    l.max_batch_bytes = bytes;
    l.max_record_bytes = bytes.saturating_sub(annals::format::BATCH_HEADER_BYTES);
    Ok(())
}

pub(super) fn set_after_max_ms(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.message_timestamp_after_max_ms = long(v, 0)?;
    Ok(())
}

pub(super) fn set_before_max_ms(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.message_timestamp_before_max_ms = long(v, 0)?;
    Ok(())
}

pub(super) fn set_timestamp_type(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.message_timestamp_type =
        TimestampType::parse(v).ok_or("String must be one of: CreateTime, LogAppendTime")?;
    Ok(())
}

/// Kafka's ratio, 0 to 1; annals keeps whole percents.
pub(super) fn set_dirty_ratio(l: &mut LogConfig, v: &str) -> Result<(), String> {
    let ratio: f64 = v.parse().map_err(|_| "not a number (DOUBLE)".to_string())?;
    if !(0.0..=1.0).contains(&ratio) {
        return Err("Value must be between 0 and 1".into());
    }
    let percent = (ratio * 100.0).round();
    only((ratio * 100.0 - percent).abs() < 1e-9, "annals keeps whole percents (0.00 to 1.00)")?;
    l.min_cleanable_dirty_percent = percent as u32;
    Ok(())
}

pub(super) fn set_retention_bytes(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.retention_bytes = long(v, i64::MIN)?;
    Ok(())
}

pub(super) fn set_retention_ms(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.retention_ms = long(v, -1)?;
    Ok(())
}

pub(super) fn set_segment_bytes(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.segment_bytes = int(v, 14)? as u64;
    Ok(())
}

pub(super) fn set_segment_index_bytes(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.segment_index_bytes = int(v, 4)? as u64;
    Ok(())
}

pub(super) fn set_segment_ms(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.segment_ms = long(v, 1)?;
    Ok(())
}

pub(super) fn set_write_caching(l: &mut LogConfig, v: &str) -> Result<(), String> {
    l.durable_high_watermark = !boolean(v)?;
    Ok(())
}
