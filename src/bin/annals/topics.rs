//! `annals topics ...` and `annals offsets`.

use std::process::ExitCode;

use annals::{CompressionType, LogConfig, Store, StoreConfig, TopicConfig};
use clap::{Args, Subcommand};

use crate::{existing_dir, CliError, CliResult, StoreDir};

#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Topic names, one per line.
    List(StoreDir),
    /// Create a topic.
    Create(CreateArgs),
    /// Partitions (log start and end offsets, bytes, segments) and config.
    Describe(TopicArgs),
    /// Delete a topic and its data.
    Delete(TopicArgs),
}

#[derive(Args)]
pub struct TopicArgs {
    #[command(flatten)]
    store: StoreDir,
    /// Topic name.
    #[arg(long)]
    topic: String,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    store: StoreDir,
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Number of partitions.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Bytes per segment.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Milliseconds records are kept (-1: forever).
    #[arg(long, allow_negative_numbers = true)]
    retention_ms: Option<i64>,
    /// Bytes kept per partition (-1: no limit).
    #[arg(long, allow_negative_numbers = true)]
    retention_bytes: Option<i64>,
    /// Kafka's `compression.type`: producer (keep what was sent), none,
    /// gzip, snappy, lz4 or zstd.
    #[arg(long, value_parser = parse_compression_type)]
    compression_type: Option<CompressionType>,
}

fn parse_compression_type(name: &str) -> Result<CompressionType, String> {
    CompressionType::parse(name)
        .ok_or_else(|| format!("{name:?}: expected producer, none, gzip, snappy, lz4 or zstd"))
}

#[derive(Args)]
pub struct OffsetsArgs {
    #[command(flatten)]
    store: StoreDir,
    /// Only this consumer group.
    #[arg(long)]
    group: Option<String>,
}

fn open(store: &StoreDir) -> CliResult<Store> {
    existing_dir(&store.dir)?;
    Store::open(&store.dir, StoreConfig::default())
        .map_err(|e| CliError::Failed(format!("{}: {}", store.dir.display(), crate::report(&e))))
}

pub fn run(command: TopicsCommand) -> CliResult<ExitCode> {
    match command {
        TopicsCommand::List(dir) => {
            let store = open(&dir)?;
            for name in store.list_topics() {
                outln!("{name}");
            }
        }
        TopicsCommand::Create(a) => {
            // Creating a topic may create the store, as perf produce does.
            let store = Store::open(&a.store.dir, StoreConfig::default())
                .map_err(|e| format!("{}: {e}", a.store.dir.display()))?;
            let mut log = LogConfig::default();
            if let Some(n) = a.segment_bytes {
                log.segment_bytes = n;
            }
            if let Some(n) = a.retention_ms {
                log.retention_ms = n;
            }
            if let Some(n) = a.retention_bytes {
                log.retention_bytes = n;
            }
            if let Some(c) = a.compression_type {
                log.compression_type = c;
            }
            store.create_topic(&a.topic, TopicConfig { partitions: a.partitions, log })?;
            store.close()?;
            outln!("Created topic {} with {} partition(s).", a.topic, a.partitions);
        }
        TopicsCommand::Describe(a) => {
            let store = open(&a.store)?;
            let d = store.describe_topic(&a.topic)?;
            let l = &d.config.log;
            outln!(
                "Topic: {}\tPartitionCount: {}\tsegment.bytes={} retention.ms={} retention.bytes={} cleanup.policy={:?} compression.type={} durability={:?}",
                d.name,
                d.partitions.len(),
                l.segment_bytes,
                l.retention_ms,
                l.retention_bytes,
                l.cleanup_policy,
                l.compression_type.name(),
                l.durability
            );
            for p in &d.partitions {
                if let Some(why) = &p.offline {
                    outln!("\tPartition: {}\tOFFLINE: {why}", p.partition);
                    continue;
                }
                let m = &p.metrics;
                outln!(
                    "\tPartition: {}\tLogStartOffset: {}\tLogEndOffset: {}\tSize: {}\tSegments: {}\t\
                     DurableOffset: {}\tRecordsAppended: {}\tBytesAppended: {}\tFsyncs: {}\tFsyncP99Us: {}",
                    p.partition,
                    p.log_start_offset,
                    p.log_end_offset,
                    p.size_bytes,
                    p.segments,
                    m.durable_offset,
                    m.records_appended,
                    m.bytes_appended,
                    m.fsyncs,
                    m.fsync_latency.quantile_upper_us(0.99).map_or("-".into(), |u| format!("<{u}")),
                );
            }
            let m = store.metrics();
            outln!(
                "Store: Partitions: {}\tOffline: {}\tOpenFiles: {} (peak {}, max {})\tMappings: {}\tMaintenanceErrors: {}",
                m.partitions,
                m.offline_partitions,
                m.files.open_files,
                m.files.peak_open_files,
                m.files.capacity,
                m.files.mappings,
                m.maintenance_errors
            );
        }
        TopicsCommand::Delete(a) => {
            let store = open(&a.store)?;
            store.delete_topic(&a.topic)?;
            store.close()?;
            outln!("Deleted topic {}.", a.topic);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Kafka's `kafka-consumer-groups --describe`, for every group or one.
pub fn offsets(a: &OffsetsArgs) -> CliResult<ExitCode> {
    let store = open(&a.store)?;
    let offsets = store.offsets();
    let groups = match &a.group {
        Some(g) => {
            if !offsets.list_groups().contains(g) {
                return Err(format!("no committed offsets for group {g:?}").into());
            }
            vec![g.clone()]
        }
        None => offsets.list_groups(),
    };
    outln!("GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG");
    for group in groups {
        for ((topic, partition), committed) in offsets.group_offsets(&group) {
            let end = store.topic(&topic).and_then(|t| t.partition(partition)).map(|p| p.log_end_offset());
            match end {
                Ok(end) => outln!(
                    "{group}\t{topic}\t{partition}\t{committed}\t{end}\t{}",
                    end.saturating_sub(committed)
                ),
                // The topic (or partition) was deleted since the commit.
                Err(_) => outln!("{group}\t{topic}\t{partition}\t{committed}\t-\t-"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
