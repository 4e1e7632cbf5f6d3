//! Per-partition log configuration.

use crate::error::{Error, Result};
use crate::format::{Codec, Compression, EncodeLimits, BATCH_HEADER_BYTES};

/// Settings of one partition log. Each field states its default and bounds;
/// [`LogConfig::validate`] checks them once, at open.
///
/// # Examples
///
/// ```
/// let config = annals::LogConfig { segment_bytes: 64 << 20, ..Default::default() };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would grow past this.
    /// Default 1 GiB; at least 128 bytes, at most 2 GiB - 1 (index positions
    /// are 32-bit). A batch larger than this still goes into a segment alone.
    pub segment_bytes: u64,
    /// Bytes of log data between two sparse offset-index entries. Default
    /// 4096; at most `segment_bytes`. 0 indexes every batch.
    pub index_interval_bytes: u64,
    /// Preallocated size of a segment's offset index; the segment rolls when
    /// it is full. Default 10 MiB; at least 8 bytes (one entry), rounded down
    /// to a multiple of 8.
    pub segment_index_bytes: u64,
    /// Largest encoded record. Default 1 MiB; at least 64 bytes, at most
    /// `max_batch_bytes - 64`.
    pub max_record_bytes: usize,
    /// Largest encoded batch, header included. Default 8 MiB; at most 1 GiB.
    pub max_batch_bytes: usize,
    /// Roll the active segment once it is this old (counted from its first
    /// append, or its first record's timestamp after a reopen). Default 7
    /// days; at least 1.
    pub segment_ms: i64,
    /// Delete sealed segments whose largest timestamp is older than this.
    /// Default 7 days; -1 keeps them forever; otherwise at least 0.
    pub retention_ms: i64,
    /// Delete the oldest sealed segments while the partition is larger than
    /// this. Default -1 (no size limit); otherwise at least 0.
    pub retention_bytes: i64,
    /// What happens to old records: deleted by retention, compacted to the
    /// latest per key, or both. Default [`CleanupPolicy::Delete`].
    pub cleanup_policy: CleanupPolicy,
    /// How long a tombstone outlives compaction of its segment, counted from
    /// its timestamp. Default 1 day; at least 0.
    pub delete_retention_ms: i64,
    /// Compact when the not-yet-cleaned share of the sealed segments reaches
    /// this percentage. Default 50 (Kafka's 0.5); 0 to 100.
    pub min_cleanable_dirty_percent: u32,
    /// Memory for the cleaner's key map (fixed-size key digests). Default
    /// 16 MiB; at least 64 KiB. Keys that do not fit are cleaned in more
    /// passes.
    pub cleaner_memory_bytes: usize,
    /// When appends are fsynced. Default [`Durability::None`] (Kafka's
    /// default: the OS flushes; replication or `flush()` gives durability).
    pub durability: Durability,
    /// How far behind the fsynced bytes the durable *synced extent* may
    /// lag: group commit (`Durability::Always` appends, `sync()`) writes it
    /// (one small fsync) once at least this many bytes were fsynced past
    /// it; roll, truncation, `flush()` and close always write it.
    /// Recovery refuses to cut damage below the extent, and treats damage
    /// past it as a crash's torn tail (cut, into a quarantine file when
    /// valid batches follow), so this bounds the bytes whose damage
    /// recovery cannot tell from a torn write (docs/RELIABILITY.md).
    /// Default 1 MiB; 0 writes it at every group fsync (no acknowledged
    /// record is ever past it, at about 0.7x the throughput of a single
    /// durable producer); `u64::MAX` only at roll, flush and close.
    pub synced_extent_interval_bytes: u64,
    /// Under `Durability::Always`, the longest an append that starts a
    /// group fsync waits for the producers the last group fsync released
    /// to append again (as many appends as it covered), in microseconds,
    /// so that each fsync carries all of them instead of every producer
    /// riding every other one (PostgreSQL's `commit_delay`). The wait is
    /// never longer than the last fsync took, ends as soon as they have
    /// arrived, and a lone producer never waits. Default 1000; 0: fsync at
    /// once.
    pub commit_delay_us: u64,
    /// Read log data by copying from a read-only memory mapping of each
    /// segment instead of a `pread` per read. Default `true`: about twice
    /// as fast for random reads (docs/PERFORMANCE.md), and nothing handed
    /// out borrows the mapping. The price: a disk *read error* on mapped
    /// data stops the process with `SIGBUS` instead of returning
    /// [`Error::Io`] (as with Lucene's or LMDB's mapped
    /// reads). Set `false` to have such errors returned.
    pub mmap_reads: bool,
    /// Keep the high watermark at or below the durable offset, so that a
    /// consumer (any read bounded by the high watermark), retention and
    /// compaction see only what a power cut cannot take back: a broker
    /// that acknowledges acks=-1 only once fsynced sets it (Redpanda's
    /// `write.caching=false`). Records past it become visible as group
    /// commit, `sync()` or `flush()` make them durable. Default `false`:
    /// the high watermark follows the log end (or what a replication layer
    /// sets), as Kafka's does on one node.
    pub durable_high_watermark: bool,
    /// Buffer appends in memory and write them to the segment file in
    /// writes of up to this many bytes. Default 0: off, and every append
    /// is in the page cache when it returns, so a process crash (`kill
    /// -9`) loses nothing acknowledged. When on, an append returns once
    /// its batches are in the buffer; the buffer is written when the next
    /// append would overflow it (an append of at least this size is
    /// written at once), after `write_buffer_max_delay_ms`, and before any
    /// read of the segment, any fsync (so `Durability::Always` and
    /// `Interval` lose nothing they acknowledge), a roll, a truncation and
    /// close. **The loss window:** a process crash loses the appends
    /// acknowledged within the last `write_buffer_max_delay_ms` that are
    /// still buffered, never more than this many bytes of them and always
    /// whole batches at the log end: the log recovers to a consistent
    /// prefix. A power cut loses what it loses without the buffer (what no
    /// fsync covered). Memory: each partition being appended to holds this
    /// much (given back once it has been idle a whole delay, and at each
    /// roll). At most 256 MiB.
    pub write_buffer_bytes: usize,
    /// With the write buffer on, how long an appended batch may stay in it
    /// before it is written. One timer thread for the process writes due
    /// buffers in turn, so this is its aim, not a hard bound: a slow disk
    /// delays the others. Default 10; 1 to a day.
    pub write_buffer_max_delay_ms: u64,
    /// Forget an idempotent producer whose last batch's timestamp is more
    /// than this before now (Kafka's `producer.id.expiration.ms`): its
    /// next batch then starts a fresh sequence. Checked by
    /// `enforce_retention` and at open. Default 1 day; -1 never; otherwise
    /// at least 1.
    pub producer_id_expiration_ms: i64,
    /// Kafka's `message.timestamp.type`: whether a record's timestamp is
    /// the producer's (CreateTime) or the log's clock at append
    /// (LogAppendTime: the batch's maxTimestamp is stamped and its
    /// timestamp-type bit set; records keep their bytes). Default
    /// [`TimestampType::CreateTime`].
    pub message_timestamp_type: TimestampType,
    /// Kafka's `message.timestamp.before.max.ms`: with CreateTime, an
    /// append holding a record whose timestamp is more than this before
    /// the log's clock is refused. Default `i64::MAX` (no limit); at least 0.
    pub message_timestamp_before_max_ms: i64,
    /// Kafka's `message.timestamp.after.max.ms`: the same for a timestamp
    /// more than this after the clock. Default `i64::MAX`; at least 0.
    pub message_timestamp_after_max_ms: i64,
    /// Kafka's `compression.type`: the codec batches are stored with.
    /// `Producer` (the default) keeps a producer's batch as it was sent
    /// and stores record-API appends uncompressed; a codec (`none`
    /// included) recompresses producer batches that use another and
    /// compresses record-API appends.
    pub compression_type: CompressionType,
    /// Kafka's `compression.gzip.level`, 1 to 9. Default 6.
    pub compression_gzip_level: i32,
    /// Kafka's `compression.lz4.level`, 1 to 17. Default 9 (lz4's fast
    /// compressor; other levels are lz4 HC, which liblz4 caps at 12).
    pub compression_lz4_level: i32,
    /// Kafka's `compression.zstd.level`, -131072 to 22. Default 3.
    pub compression_zstd_level: i32,
}

/// Kafka's `compression.type` for a topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep whatever the producer sent (record-API appends: none).
    #[default]
    Producer,
    /// Store every batch with this codec (`Codec::None`: uncompressed).
    Codec(Codec),
}

impl CompressionType {
    /// Kafka's name for it: `producer`, `none`, `gzip`, `snappy`, `lz4`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Codec(c) => c.name(),
        }
    }

    /// The type Kafka calls `name`.
    pub fn parse(name: &str) -> Option<CompressionType> {
        match name {
            "producer" => Some(CompressionType::Producer),
            other => Codec::parse(other).map(CompressionType::Codec),
        }
    }
}

/// Kafka's `message.timestamp.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp.
    #[default]
    CreateTime,
    /// The log's clock when the batch was appended.
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }

    /// The type Kafka calls `name`.
    pub fn parse(name: &str) -> Option<TimestampType> {
        [TimestampType::CreateTime, TimestampType::LogAppendTime].into_iter().find(|t| t.name() == name)
    }
}

/// Kafka's `cleanup.policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Retention deletes old segments by time, size or log start.
    #[default]
    Delete,
    /// Compaction keeps the latest record per key (retention by time and
    /// size does not apply). Appending a record without a key is refused.
    Compact,
    /// Both: compaction, and retention by time and size.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether compaction applies.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// Whether retention by time and size applies.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<CleanupPolicy> {
        [CleanupPolicy::Delete, CleanupPolicy::Compact, CleanupPolicy::CompactDelete]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// When an append's bytes are made durable (fsynced).
///
/// Whatever the policy, [`crate::PartitionLog::flush`] makes everything
/// appended so far durable, and a failed fsync poisons the partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Appends reach the page cache; the OS writes them back. A power cut
    /// loses what it had not written; a process crash loses nothing.
    #[default]
    None,
    /// Kafka's `flush.messages` / `flush.ms`: an append that brings the
    /// unflushed records to `flush_messages`, or comes `flush_ms` or more
    /// after the last flush, flushes before it returns. (Without appends no
    /// flush happens; call `flush()` for that.) Both at least 1.
    Interval {
        /// Unflushed records that trigger a flush.
        flush_messages: u64,
        /// Milliseconds since the last flush that trigger one.
        flush_ms: u64,
    },
    /// An append returns only after its bytes are fsynced. Concurrent
    /// appenders share fsyncs (group commit).
    Always,
}

impl Durability {
    pub(crate) fn to_pairs(self) -> Vec<(&'static str, String)> {
        match self {
            Durability::None => vec![("durability", "none".into())],
            Durability::Always => vec![("durability", "always".into())],
            Durability::Interval { flush_messages, flush_ms } => vec![
                ("durability", "interval".into()),
                ("flush_messages", flush_messages.to_string()),
                ("flush_ms", flush_ms.to_string()),
            ],
        }
    }

    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> std::result::Result<Durability, String> {
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let number = |key: &str| {
            let value = get(key).ok_or_else(|| format!("durability=interval needs {key}"))?;
            crate::format::kv::number(key, value)
        };
        match get("durability") {
            None | Some("none") => Ok(Durability::None),
            Some("always") => Ok(Durability::Always),
            Some("interval") => Ok(Durability::Interval {
                flush_messages: number("flush_messages")?,
                flush_ms: number("flush_ms")?,
            }),
            Some(other) => Err(format!("unknown durability {other:?}")),
        }
    }
}

/// The largest `segment_bytes`: index positions are `u32`, and a segment may
/// exceed `segment_bytes` by one batch.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The largest `write_buffer_bytes`.
pub const WRITE_BUFFER_BYTES_MAX: usize = 256 << 20;
/// The largest `write_buffer_max_delay_ms` (a day; a deadline past what a
/// clock can hold would overflow).
pub const WRITE_BUFFER_MAX_DELAY_MS_MAX: u64 = 24 * 60 * 60 * 1000;

/// The largest `max_batch_bytes`.
pub const MAX_BATCH_BYTES_LIMIT: usize = 1 << 30;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            max_record_bytes: 1 << 20,
            max_batch_bytes: 8 << 20,
            segment_ms: WEEK_MS,
            retention_ms: WEEK_MS,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_percent: 50,
            cleaner_memory_bytes: 16 << 20,
            durability: Durability::None,
            synced_extent_interval_bytes: 1 << 20,
            commit_delay_us: 1000,
            mmap_reads: true,
            durable_high_watermark: false,
            write_buffer_bytes: 0,
            write_buffer_max_delay_ms: 10,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            compression_type: CompressionType::Producer,
            compression_gzip_level: 6,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
        }
    }
}

impl LogConfig {
    /// Checks every field against its bounds.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first field out of bounds.
    pub fn validate(&self) -> Result<()> {
        if !(128..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(Error::config(
                "segment_bytes",
                format!("{} not in [128, {SEGMENT_BYTES_MAX}]", self.segment_bytes),
            ));
        }
        if self.index_interval_bytes > self.segment_bytes {
            return Err(Error::config("index_interval_bytes", "larger than segment_bytes"));
        }
        if self.segment_index_bytes < 8 || self.segment_index_bytes > u64::from(u32::MAX) {
            return Err(Error::config("segment_index_bytes", "not in [8, 4 GiB)"));
        }
        if self.max_batch_bytes > MAX_BATCH_BYTES_LIMIT || self.max_batch_bytes < BATCH_HEADER_BYTES + 64 {
            return Err(Error::config("max_batch_bytes", format!("not in [128, {MAX_BATCH_BYTES_LIMIT}]")));
        }
        if self.max_record_bytes < 64 || self.max_record_bytes > self.max_batch_bytes - BATCH_HEADER_BYTES {
            return Err(Error::config("max_record_bytes", "not in [64, max_batch_bytes - 64]"));
        }
        if self.segment_ms < 1 {
            return Err(Error::config("segment_ms", format!("{} is not at least 1", self.segment_ms)));
        }
        if self.retention_ms < -1 {
            return Err(Error::config(
                "retention_ms",
                format!("{} is not -1 (forever) or >= 0", self.retention_ms),
            ));
        }
        if self.retention_bytes < -1 {
            return Err(Error::config(
                "retention_bytes",
                format!("{} is not -1 (no limit) or >= 0", self.retention_bytes),
            ));
        }
        if self.producer_id_expiration_ms < -1 || self.producer_id_expiration_ms == 0 {
            return Err(Error::config(
                "producer_id_expiration_ms",
                format!("{} is not -1 (never) or >= 1", self.producer_id_expiration_ms),
            ));
        }
        if self.delete_retention_ms < 0 {
            return Err(Error::config("delete_retention_ms", "must be at least 0"));
        }
        if self.message_timestamp_before_max_ms < 0 {
            return Err(Error::config("message_timestamp_before_max_ms", "must be at least 0"));
        }
        if self.message_timestamp_after_max_ms < 0 {
            return Err(Error::config("message_timestamp_after_max_ms", "must be at least 0"));
        }
        for (name, codec, level) in [
            ("compression_gzip_level", Codec::Gzip, self.compression_gzip_level),
            ("compression_lz4_level", Codec::Lz4, self.compression_lz4_level),
            ("compression_zstd_level", Codec::Zstd, self.compression_zstd_level),
        ] {
            let (range, _) = codec.levels().unwrap_or((0..=0, 0));
            if !range.contains(&level) {
                return Err(Error::config(
                    name,
                    format!("{level} not in [{}, {}]", range.start(), range.end()),
                ));
            }
        }
        if let CompressionType::Codec(codec) = self.compression_type {
            if !codec.is_enabled() {
                return Err(Error::config(
                    "compression_type",
                    format!("codec {codec} is not in this build (cargo feature \"{codec}\")"),
                ));
            }
        }
        if self.min_cleanable_dirty_percent > 100 {
            return Err(Error::config("min_cleanable_dirty_percent", "must be 0 to 100"));
        }
        if self.cleaner_memory_bytes < 64 << 10 {
            return Err(Error::config("cleaner_memory_bytes", "must be at least 64 KiB"));
        }
        if self.write_buffer_bytes > WRITE_BUFFER_BYTES_MAX {
            return Err(Error::config("write_buffer_bytes", format!("more than {WRITE_BUFFER_BYTES_MAX}")));
        }
        if !(1..=WRITE_BUFFER_MAX_DELAY_MS_MAX).contains(&self.write_buffer_max_delay_ms) {
            return Err(Error::config(
                "write_buffer_max_delay_ms",
                format!("not in [1, {WRITE_BUFFER_MAX_DELAY_MS_MAX}]"),
            ));
        }
        if let Durability::Interval { flush_messages, flush_ms } = self.durability {
            if flush_messages == 0 || flush_ms == 0 {
                return Err(Error::config("durability", "flush_messages and flush_ms must be at least 1"));
            }
        }
        Ok(())
    }

    /// How this log compresses the batches it encodes or recompresses:
    /// `None` keeps what was sent (`compression.type=producer`).
    pub fn compression(&self) -> Option<Compression> {
        match self.compression_type {
            CompressionType::Producer => None,
            CompressionType::Codec(codec) => Some(self.compression_for(codec)),
        }
    }

    /// `codec` at this log's level for it.
    pub fn compression_for(&self, codec: Codec) -> Compression {
        let level = match codec {
            Codec::Gzip => Some(self.compression_gzip_level),
            Codec::Lz4 => Some(self.compression_lz4_level),
            Codec::Zstd => Some(self.compression_zstd_level),
            Codec::None | Codec::Snappy => None,
        };
        Compression { codec, level }
    }

    /// What a producer's batch must satisfy on this log at clock time
    /// `now_ms` (the pass-through append's validation).
    pub(crate) fn client_rules(&self, now_ms: i64) -> crate::format::ClientRules {
        crate::format::ClientRules {
            max_record_bytes: self.max_record_bytes,
            max_batch_bytes: self.max_batch_bytes,
            keys_required: self.cleanup_policy.compacts(),
            log_append_time: self.message_timestamp_type == TimestampType::LogAppendTime,
            before_max_ms: self.message_timestamp_before_max_ms,
            after_max_ms: self.message_timestamp_after_max_ms,
            now_ms,
        }
    }

    pub(crate) fn encode_limits(&self) -> EncodeLimits {
        EncodeLimits { max_record_bytes: self.max_record_bytes, max_batch_bytes: self.max_batch_bytes }
    }

    /// Index entries that fit in `segment_index_bytes`.
    pub(crate) fn index_entries_max(&self) -> usize {
        (self.segment_index_bytes / 8) as usize
    }

    /// What a segment needs of this configuration.
    pub(crate) fn segment_config(&self) -> SegmentConfig {
        SegmentConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            index_interval_bytes: self.index_interval_bytes,
            index_entries_max: self.index_entries_max(),
            max_batch_bytes: self.max_batch_bytes,
            mmap_reads: self.mmap_reads,
            write_buffer_bytes: self.write_buffer_bytes,
            write_buffer_max_delay: std::time::Duration::from_millis(self.write_buffer_max_delay_ms),
        }
    }
}

/// What a segment needs of its log's configuration: sizes, intervals and
/// how it reads (not retention, durability or compaction). Made by
/// [`LogConfig::segment_config`], which has the defaults and bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentConfig {
    /// `segment.bytes`: roll when a batch would pass this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a segment this old.
    pub segment_ms: i64,
    /// `index.interval.bytes`: log bytes between index entries.
    pub index_interval_bytes: u64,
    /// Index entries that fit in `segment.index.bytes` (roll when full).
    pub index_entries_max: usize,
    /// The largest batch (bounds a read's span).
    pub max_batch_bytes: usize,
    /// Serve reads of sealed segments from a read-only mapping.
    pub mmap_reads: bool,
    /// The active segment's write buffer (0: none).
    pub write_buffer_bytes: usize,
    /// How long a byte may stay in it.
    pub write_buffer_max_delay: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        LogConfig::default().validate().unwrap();
    }

    #[test]
    fn out_of_bounds_fields_are_named() {
        let cases: [(LogConfig, &str); 6] = [
            (LogConfig { producer_id_expiration_ms: 0, ..Default::default() }, "producer_id_expiration_ms"),
            (LogConfig { segment_bytes: 10, ..Default::default() }, "segment_bytes"),
            (LogConfig { segment_bytes: 1 << 40, ..Default::default() }, "segment_bytes"),
            (LogConfig { segment_index_bytes: 4, ..Default::default() }, "segment_index_bytes"),
            (LogConfig { max_batch_bytes: 1 << 31, ..Default::default() }, "max_batch_bytes"),
            (LogConfig { max_record_bytes: 8 << 20, ..Default::default() }, "max_record_bytes"),
        ];
        for (config, field) in cases {
            match config.validate() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
