//! Kafka's topic configs (`TopicConfig.java`, `LogConfig.java`) as annals
//! takes them, in one table that CreateTopics ([`parse`]) and
//! DescribeConfigs ([`describe`]) share. Each config either
//!
//! - sets the engine's [`LogConfig`], where annals has the behaviour
//!   (`flush.messages` / `flush.ms` set its durability: `flush.messages=1`
//!   fsyncs every append, as Kafka's does), or
//! - is a *pass-through* config: annals has no behaviour for it, and the
//!   values accepted change nothing on one node (`min.insync.replicas=1`,
//!   `unclean.leader.election.enable`, throttled replicas,
//!   `remote.storage.enable=false`, ...). Those are kept verbatim with the
//!   topic (`Store::create_topic_with_passthrough`) and shown as given.
//!
//! Anything else is INVALID_CONFIG with a message naming the config: an
//! unknown name, a value Kafka would refuse, or one that needs behaviour
//! annals lacks (`min.insync.replicas=2` on one node,
//! `remote.storage.enable=true`, `min.compaction.lag.ms` other than 0).

use std::collections::BTreeMap;

use annals::format::Codec;
use annals::{CompressionType, LogConfig};

mod values;
use values::*;

/// Kafka's `ConfigType` ids (DescribeConfigs v3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub(crate) enum Kind {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// How annals takes a config.
enum How {
    /// Sets `field` of the engine's config (the name `LogConfig::validate`
    /// gives); `show` is the value under Kafka's name.
    Log {
        field: &'static str,
        set: fn(&mut LogConfig, &str) -> Result<(), String>,
        show: fn(&LogConfig) -> String,
    },
    /// Kept verbatim when `check` accepts the value.
    Kept { check: fn(&str) -> Result<(), String> },
}

struct Entry {
    name: &'static str,
    kind: Kind,
    /// Kafka's default: what DescribeConfigs shows of a pass-through config
    /// the topic was created without.
    default: &'static str,
    how: How,
}

const LONG_MAX: &str = "9223372036854775807";

/// Every topic config of Kafka 3.9, by name. `Log` entries apply in this
/// order: `flush.ms` after `flush.messages` (see [`set_flush_ms`]).
const CONFIGS: &[Entry] = &[
    log("cleanup.policy", Kind::List, "delete", "cleanup_policy", set_cleanup_policy, show_cleanup_policy),
    log("compression.gzip.level", Kind::Int, "-1", "compression_gzip_level", set_gzip_level, |l| {
        l.compression_gzip_level.to_string()
    }),
    log("compression.lz4.level", Kind::Int, "9", "compression_lz4_level", set_lz4_level, |l| {
        l.compression_lz4_level.to_string()
    }),
    log("compression.type", Kind::String, "producer", "compression_type", set_compression_type, |l| {
        match l.compression_type {
            // Kafka's topic name for it (a producer's is `none`).
            CompressionType::Codec(Codec::None) => "uncompressed".into(),
            other => other.name().into(),
        }
    }),
    log("compression.zstd.level", Kind::Int, "3", "compression_zstd_level", set_zstd_level, |l| {
        l.compression_zstd_level.to_string()
    }),
    log("delete.retention.ms", Kind::Long, "86400000", "delete_retention_ms", set_delete_retention_ms, |l| {
        l.delete_retention_ms.to_string()
    }),
    // annals deletes a segment's files at once; readers holding them keep
    // their descriptors (the file pool).
    kept("file.delete.delay.ms", Kind::Long, "60000", |v| long(v, 0).map(drop)),
    log("flush.messages", Kind::Long, LONG_MAX, "durability", set_flush_messages, |l| flush(l).0.to_string()),
    log("flush.ms", Kind::Long, LONG_MAX, "durability", set_flush_ms, |l| flush(l).1.to_string()),
    // One replica: nothing to throttle.
    kept("follower.replication.throttled.replicas", Kind::List, "", throttled_replicas),
    log("index.interval.bytes", Kind::Int, "4096", "index_interval_bytes", set_index_interval_bytes, |l| {
        l.index_interval_bytes.to_string()
    }),
    kept("leader.replication.throttled.replicas", Kind::List, "", throttled_replicas),
    // Tiered storage's: with remote.storage.enable=false, Kafka ignores them.
    kept("local.retention.bytes", Kind::Long, "-2", |v| long(v, -2).map(drop)),
    kept("local.retention.ms", Kind::Long, "-2", |v| long(v, -2).map(drop)),
    // annals compacts by min.cleanable.dirty.ratio alone.
    kept("max.compaction.lag.ms", Kind::Long, LONG_MAX, |v| {
        only(long(v, 1)? == i64::MAX, "annals compacts by min.cleanable.dirty.ratio alone: no compaction lag")
    }),
    log("max.message.bytes", Kind::Int, "1048588", "max_batch_bytes", set_max_message_bytes, |l| {
        l.max_batch_bytes.to_string()
    }),
    // annals serves no Fetch version that needs down-conversion.
    kept("message.downconversion.enable", Kind::Boolean, "true", |v| boolean(v).map(drop)),
    // Ignored by Kafka since inter.broker.protocol.version 3.0 (always v2).
    kept("message.format.version", Kind::String, "3.0-IV1", version),
    log(
        "message.timestamp.after.max.ms",
        Kind::Long,
        LONG_MAX,
        "message_timestamp_after_max_ms",
        set_after_max_ms,
        |l| l.message_timestamp_after_max_ms.to_string(),
    ),
    log(
        "message.timestamp.before.max.ms",
        Kind::Long,
        LONG_MAX,
        "message_timestamp_before_max_ms",
        set_before_max_ms,
        |l| l.message_timestamp_before_max_ms.to_string(),
    ),
    // Deprecated (KIP-937): kept as given, and it sets whichever of
    // before/after.max.ms kept its default, as Kafka's LogConfig reads it.
    kept("message.timestamp.difference.max.ms", Kind::Long, LONG_MAX, |v| long(v, 0).map(drop)),
    log(
        "message.timestamp.type",
        Kind::String,
        "CreateTime",
        "message_timestamp_type",
        set_timestamp_type,
        |l| l.message_timestamp_type.name().into(),
    ),
    log(
        "min.cleanable.dirty.ratio",
        Kind::Double,
        "0.5",
        "min_cleanable_dirty_percent",
        set_dirty_ratio,
        |l| format!("{}", f64::from(l.min_cleanable_dirty_percent) / 100.0),
    ),
    kept("min.compaction.lag.ms", Kind::Long, "0", |v| {
        only(long(v, 0)? == 0, "annals compacts records of any age: no compaction lag")
    }),
    kept("min.insync.replicas", Kind::Int, "1", |v| {
        only(int(v, 1)? == 1, "one node: the only replica is the leader (min.insync.replicas 1)")
    }),
    // annals grows segment files as it writes them.
    kept("preallocate", Kind::Boolean, "false", |v| boolean(v).map(drop)),
    kept("remote.log.copy.disable", Kind::Boolean, "false", |v| boolean(v).map(drop)),
    kept("remote.log.delete.on.disable", Kind::Boolean, "false", |v| boolean(v).map(drop)),
    kept("remote.storage.enable", Kind::Boolean, "false", |v| {
        only(!boolean(v)?, "annals has no tiered storage")
    }),
    log("retention.bytes", Kind::Long, "-1", "retention_bytes", set_retention_bytes, |l| {
        l.retention_bytes.to_string()
    }),
    log("retention.ms", Kind::Long, "604800000", "retention_ms", set_retention_ms, |l| {
        l.retention_ms.to_string()
    }),
    log("segment.bytes", Kind::Int, "1073741824", "segment_bytes", set_segment_bytes, |l| {
        l.segment_bytes.to_string()
    }),
    log("segment.index.bytes", Kind::Int, "10485760", "segment_index_bytes", set_segment_index_bytes, |l| {
        l.segment_index_bytes.to_string()
    }),
    // annals rolls at segment.ms exactly.
    kept("segment.jitter.ms", Kind::Long, "0", |v| long(v, 0).map(drop)),
    log("segment.ms", Kind::Long, "604800000", "segment_ms", set_segment_ms, |l| l.segment_ms.to_string()),
    // One replica: there is no other to elect.
    kept("unclean.leader.election.enable", Kind::Boolean, "false", |v| boolean(v).map(drop)),
    // Redpanda's: `true` acknowledges acks=-1 from the page cache, as
    // Kafka's single node does; `false` (the broker's default under
    // `--acks-all-durable`) only once fsynced, and the high watermark
    // follows the durable offset (`durable.rs`).
    log("write.caching", Kind::Boolean, "false", "durable_high_watermark", set_write_caching, |l| {
        (!l.durable_high_watermark).to_string()
    }),
];

const fn log(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    field: &'static str,
    set: fn(&mut LogConfig, &str) -> Result<(), String>,
    show: fn(&LogConfig) -> String,
) -> Entry {
    Entry { name, kind, default, how: How::Log { field, set, show } }
}

const fn kept(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    check: fn(&str) -> Result<(), String>,
) -> Entry {
    Entry { name, kind, default, how: How::Kept { check } }
}

/// A topic's configs from CreateTopics' `(name, value)` pairs.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) log: LogConfig,
    pub(crate) passthrough: BTreeMap<String, String>,
}

/// Takes CreateTopics' configs on top of the broker's topic defaults
/// (`base`).
///
/// # Errors
/// Kafka's INVALID_CONFIG message naming the first config refused.
pub(crate) fn parse<'a>(
    base: &LogConfig,
    configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<Parsed, String> {
    let mut given = BTreeMap::new();
    let mut nulls = Vec::new();
    for (name, value) in configs {
        let entry = CONFIGS
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("Unknown topic config name: {name}"))?;
        match value {
            Some(value) => {
                given.insert(entry.name, value);
            }
            None => nulls.push(name),
        }
    }
    if !nulls.is_empty() {
        return Err(format!("Null value not supported for topic configs: {}", nulls.join(",")));
    }
    let mut log = base.clone();
    let mut passthrough = BTreeMap::new();
    let invalid = |name: &str, value: &str, why: String| {
        format!("Invalid value {value} for configuration {name}: {why}")
    };
    for entry in CONFIGS {
        let Some(&value) = given.get(entry.name) else { continue };
        match &entry.how {
            How::Log { set, .. } => {
                set(&mut log, value.trim()).map_err(|why| invalid(entry.name, value, why))?
            }
            How::Kept { check } => {
                check(value.trim()).map_err(|why| invalid(entry.name, value, why))?;
                passthrough.insert(entry.name.to_string(), value.to_string());
            }
        }
    }
    if let Some(difference) = given.get("message.timestamp.difference.max.ms") {
        let difference = long(difference.trim(), 0)
            .map_err(|why| invalid("message.timestamp.difference.max.ms", difference, why))?;
        for bound in [&mut log.message_timestamp_before_max_ms, &mut log.message_timestamp_after_max_ms] {
            if *bound == i64::MAX {
                *bound = difference;
            }
        }
    }
    if let Err(e) = log.validate() {
        return Err(match e {
            annals::Error::InvalidConfig { field, reason } => {
                let name = CONFIGS
                    .iter()
                    .find(|c| matches!(c.how, How::Log { field: f, .. } if f == field))
                    .map_or(field, |c| c.name);
                let name = if field == "max_record_bytes" { "max.message.bytes" } else { name };
                format!("Invalid configuration {name}: {reason}")
            }
            other => other.to_string(),
        });
    }
    Ok(Parsed { log, passthrough })
}

/// One config as DescribeConfigs lists it.
pub(crate) struct Described {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) kind: Kind,
    /// Not set on the topic: annals' default (for a pass-through config,
    /// Kafka's).
    pub(crate) default: bool,
}

/// Every topic config of a topic with `log` and `passthrough`, by name.
/// A topic's configs as DescribeConfigs lists them; `defaults` are the
/// broker's topic defaults (what counts as not set).
pub(crate) fn describe(
    log: &LogConfig,
    passthrough: &BTreeMap<String, String>,
    defaults: &LogConfig,
) -> Vec<Described> {
    CONFIGS
        .iter()
        .map(|e| {
            let (value, default) = match &e.how {
                How::Log { show, .. } => {
                    let value = show(log);
                    let default = value == show(defaults);
                    (value, default)
                }
                How::Kept { .. } => match passthrough.get(e.name) {
                    Some(value) => (value.clone(), false),
                    None => (e.default.to_string(), true),
                },
            };
            Described { name: e.name, value, kind: e.kind, default }
        })
        .collect()
}

/// Kafka's default for every config, as a client sending them all would
/// (for the tests).
#[cfg(test)]
pub(crate) fn kafka_defaults() -> impl Iterator<Item = (&'static str, &'static str)> {
    CONFIGS.iter().map(|e| (e.name, e.default))
}

#[cfg(test)]
mod tests {
    use annals::Durability;

    use super::*;

    fn pairs<'a>(configs: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        configs.iter().map(|&(k, v)| (k, Some(v)))
    }

    #[test]
    fn the_table_is_sorted_and_names_each_config_once() {
        let names: Vec<&str> = CONFIGS.iter().map(|e| e.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn kafkas_defaults_are_taken_and_described_as_given() {
        let defaults: Vec<(&str, &str)> = kafka_defaults().collect();
        let parsed = parse(&LogConfig::default(), pairs(&defaults)).unwrap();
        assert_eq!(parsed.log.max_batch_bytes, 1_048_588);
        assert_eq!(parsed.log.durability, Durability::None);
        let described = describe(&parsed.log, &parsed.passthrough, &LogConfig::default());
        for (d, (name, default)) in described.iter().zip(&defaults) {
            assert_eq!(d.name, *name);
            // gzip's -1 is zlib's default level, stored as 6.
            let expected = if *name == "compression.gzip.level" { "6" } else { default };
            assert_eq!(d.value, expected, "{name}");
        }
    }

    #[test]
    fn flush_configs_set_the_durability_policy() {
        let case =
            |configs: &[(&str, &str)]| parse(&LogConfig::default(), pairs(configs)).unwrap().log.durability;
        assert_eq!(case(&[("flush.messages", "1")]), Durability::Always);
        assert_eq!(case(&[("flush.ms", "0"), ("flush.messages", "100")]), Durability::Always);
        assert_eq!(
            case(&[("flush.ms", "1000"), ("flush.messages", "100")]),
            Durability::Interval { flush_messages: 100, flush_ms: 1000 }
        );
        assert_eq!(
            case(&[("flush.ms", "1000")]),
            Durability::Interval { flush_messages: i64::MAX as u64, flush_ms: 1000 }
        );
        assert_eq!(case(&[("flush.messages", LONG_MAX)]), Durability::None);
        assert!(parse(&LogConfig::default(), pairs(&[("flush.messages", "0")]))
            .unwrap_err()
            .contains("flush.messages"));
    }

    #[test]
    fn refusals_name_the_config() {
        for (name, value) in [
            ("no.such.config", "1"),
            ("min.insync.replicas", "2"),
            ("min.insync.replicas", "0"),
            ("remote.storage.enable", "true"),
            ("min.compaction.lag.ms", "1000"),
            ("max.compaction.lag.ms", "1000"),
            ("max.message.bytes", "100"),
            ("segment.bytes", "100"),
            ("compression.type", "none"),
            ("compression.gzip.level", "10"),
            ("min.cleanable.dirty.ratio", "0.555"),
            ("leader.replication.throttled.replicas", "0:x"),
            ("message.format.version", "three"),
            ("preallocate", "yes"),
        ] {
            let refused = parse(&LogConfig::default(), pairs(&[(name, value)]))
                .err()
                .unwrap_or_else(|| panic!("{name}={value} taken"));
            assert!(refused.contains(name), "{refused}");
        }
        let null = parse(&LogConfig::default(), [("retention.ms", None)]).unwrap_err();
        assert_eq!(null, "Null value not supported for topic configs: retention.ms");
    }

    #[test]
    fn the_deprecated_timestamp_difference_sets_the_bounds_left_at_default() {
        let parsed = parse(
            &LogConfig::default(),
            pairs(&[
                ("message.timestamp.difference.max.ms", "60000"),
                ("message.timestamp.after.max.ms", "1000"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (parsed.log.message_timestamp_before_max_ms, parsed.log.message_timestamp_after_max_ms),
            (60_000, 1_000)
        );
        assert_eq!(parsed.passthrough["message.timestamp.difference.max.ms"], "60000");
    }
}
