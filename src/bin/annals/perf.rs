//! `annals perf produce|consume`: Kafka's producer and consumer perf tests
//! on an embedded store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use annals::format::Codec;
use annals::{CompressionType, Durability, LogConfig, Record, StartAt, Store, StoreConfig, TopicConfig};
use clap::{Args, Subcommand, ValueEnum};

use crate::{existing_dir, CliResult, DEFAULT_DIR};

/// Seconds between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(Subcommand)]
pub enum PerfCommand {
    /// Append records and report throughput and latency percentiles.
    Produce(ProduceArgs),
    /// Read records and report throughput.
    Consume(ConsumeArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    None,
    Interval,
    Always,
}

#[derive(Args)]
pub struct ProduceArgs {
    /// Data directory (created if missing).
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Topic (created if missing).
    #[arg(long, default_value = "perf")]
    topic: String,
    /// Records to append.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Partitions of the topic if it is created.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// Records per append call.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Distinct keys (records are keyed round robin and placed by Kafka's
    /// partitioner); 0 for unkeyed records, spread round robin by batch.
    #[arg(long, default_value_t = 0)]
    keys: u64,
    /// When appends are fsynced, if the topic is created.
    #[arg(long, value_enum, default_value = "none")]
    durability: DurabilityArg,
    /// The topic's `compression.type` if it is created: none, gzip,
    /// snappy, lz4 or zstd (at Kafka's default levels). Values are random
    /// uppercase letters, as Kafka's producer perf test sends.
    #[arg(long, default_value = "none", value_parser = parse_codec)]
    compression: Codec,
    /// The topic's `write_buffer_bytes` if it is created (0: off): appends
    /// are buffered in memory and written in writes of up to this many
    /// bytes; a process crash loses what the buffer holds.
    #[arg(long, default_value_t = 0)]
    write_buffer_bytes: usize,
    /// Producer threads.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ConsumeArgs {
    /// Data directory.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Topic.
    #[arg(long, default_value = "perf")]
    topic: String,
    /// Where to start in each partition: earliest, latest, an offset, or
    /// `ts:<milliseconds>` for the first record at or after a timestamp.
    #[arg(long, default_value = "earliest")]
    from: String,
    /// Stop after this many records (default: all there are).
    #[arg(long)]
    messages: Option<u64>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_codec(name: &str) -> Result<Codec, String> {
    let codec =
        Codec::parse(name).ok_or_else(|| format!("{name:?}: expected none, gzip, snappy, lz4 or zstd"))?;
    if !codec.is_enabled() {
        return Err(format!("{name}: not in this build (cargo feature \"{name}\")"));
    }
    Ok(codec)
}

/// Distinct values the producers cycle through.
const PAYLOADS: usize = 1024;

/// `PAYLOADS` values of `len` random uppercase letters each (the letters
/// of Kafka's `ProducerPerformance` payload; Kafka sends one value for
/// every record, which flatters compression), from a fixed seed, as
/// slices of one buffer.
fn payloads(len: usize) -> Vec<bytes::Bytes> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let all: Vec<u8> = (0..len * PAYLOADS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect();
    let all = bytes::Bytes::from(all);
    (0..PAYLOADS).map(|i| all.slice(i * len..(i + 1) * len)).collect()
}

pub fn run(command: PerfCommand) -> CliResult<ExitCode> {
    match command {
        PerfCommand::Produce(a) => produce(&a),
        PerfCommand::Consume(a) => consume(&a),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// The `p` quantile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

/// What a window of the run (or all of it) did.
struct Window {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    sum_micros: u64,
    max_micros: u64,
}

impl Window {
    fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let avg = if self.records == 0 { 0.0 } else { self.sum_micros as f64 / 1000.0 / self.records as f64 };
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency",
            self.records,
            self.records as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0),
            avg,
            self.max_micros as f64 / 1000.0
        )
    }
}

fn check_produce_args(a: &ProduceArgs) -> CliResult {
    let limit = LogConfig::default().max_record_bytes.saturating_sub(64);
    if a.records == 0 {
        return Err("--records must be at least 1".into());
    }
    if a.record_size == 0 || a.record_size > limit {
        return Err(format!("--record-size must be 1..={limit} bytes").into());
    }
    if a.batch == 0 || a.batch as u64 > 100_000 {
        return Err("--batch must be 1..=100000".into());
    }
    if a.producers == 0 || a.producers > 256 {
        return Err("--producers must be 1..=256".into());
    }
    if a.partitions == 0 {
        return Err("--partitions must be at least 1".into());
    }
    Ok(())
}

fn produce(a: &ProduceArgs) -> CliResult {
    check_produce_args(a)?;
    let store =
        Store::open(&a.dir, StoreConfig::default()).map_err(|e| format!("{}: {e}", a.dir.display()))?;
    let topic = match store.topic(&a.topic) {
        Ok(t) => t,
        Err(annals::Error::Admin(annals::AdminError::UnknownTopic { .. })) => {
            let durability = match a.durability {
                DurabilityArg::None => Durability::None,
                DurabilityArg::Interval => Durability::Interval { flush_messages: 10_000, flush_ms: 1000 },
                DurabilityArg::Always => Durability::Always,
            };
            let compression_type = CompressionType::Codec(a.compression);
            let write_buffer_bytes = a.write_buffer_bytes;
            let log = LogConfig { durability, compression_type, write_buffer_bytes, ..LogConfig::default() };
            store.create_topic(&a.topic, TopicConfig { partitions: a.partitions, log })?
        }
        Err(e) => return Err(e.into()),
    };
    let has = store.describe_topic(&a.topic)?.config.log.compression_type;
    if a.compression != Codec::None && has != CompressionType::Codec(a.compression) {
        return Err(format!(
            "topic {} exists with compression.type={}: --compression {} needs a new --topic",
            a.topic,
            has.name(),
            a.compression
        )
        .into());
    }
    let partitions = topic.partition_count();
    let values = payloads(a.record_size); // shared, not copied per record
    let next = AtomicU64::new(0);
    let progress = Mutex::new((Instant::now(), 0u64, 0u64, 0u64)); // window start, records, sum, max
    let started = Instant::now();
    let per_thread: Vec<Result<Vec<u64>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.producers)
            .map(|_| {
                let (topic, values, next, progress) = (&topic, &values, &next, &progress);
                s.spawn(move || -> Result<Vec<u64>, String> {
                    let mut latencies = Vec::new();
                    let mut batch: Vec<Record> = Vec::with_capacity(a.batch);
                    loop {
                        let first = next.fetch_add(a.batch as u64, Ordering::Relaxed);
                        if first >= a.records {
                            return Ok(latencies);
                        }
                        let n = (a.records - first).min(a.batch as u64);
                        batch.clear();
                        batch.extend((first..first + n).map(|i| {
                            let value = values[i as usize % PAYLOADS].clone();
                            if a.keys == 0 {
                                Record::new(value)
                            } else {
                                Record::with_key(format!("key-{}", i % a.keys), value)
                            }
                        }));
                        let t = Instant::now();
                        if a.keys == 0 {
                            let partition = ((first / a.batch as u64) % u64::from(partitions)) as u32;
                            topic.append_to(partition, &batch).map_err(|e| e.to_string())?;
                        } else {
                            topic.append(&batch).map_err(|e| e.to_string())?;
                        }
                        let micros = t.elapsed().as_micros() as u64;
                        latencies.push(micros);
                        let mut p = progress.lock().unwrap();
                        p.1 += n;
                        p.2 += micros * n;
                        p.3 = p.3.max(micros);
                        if p.0.elapsed() >= PROGRESS_EVERY {
                            let w = Window {
                                records: p.1,
                                bytes: p.1 * a.record_size as u64,
                                elapsed: p.0.elapsed(),
                                sum_micros: p.2,
                                max_micros: p.3,
                            };
                            eprintln!("{}.", w.line());
                            *p = (Instant::now(), 0, 0, 0);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a producer thread panicked".into())))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut micros = Vec::new();
    for r in per_thread {
        micros.extend(r?);
    }
    let on_disk: u64 = store.describe_topic(&a.topic)?.partitions.iter().map(|p| p.size_bytes).sum();
    store.close()?;
    micros.sort_unstable();
    // Every call but the last appended `batch` records: weigh per call.
    let sum: u64 = micros.iter().sum::<u64>().saturating_mul(a.batch as u64);
    let window = Window {
        records: a.records,
        bytes: a.records * a.record_size as u64,
        elapsed,
        sum_micros: sum,
        max_micros: micros.last().copied().unwrap_or(0),
    };
    let (p50, p95, p99, p999) = (
        percentile(&micros, 0.50),
        percentile(&micros, 0.95),
        percentile(&micros, 0.99),
        percentile(&micros, 0.999),
    );
    let secs = elapsed.as_secs_f64().max(1e-9);
    if a.json {
        outln!(
            "{{\"records\":{},\"records_per_sec\":{:.1},\"mb_per_sec\":{:.2},\"avg_latency_ms\":{:.3},\"max_latency_ms\":{:.3},\"p50_ms\":{p50:.3},\"p95_ms\":{p95:.3},\"p99_ms\":{p99:.3},\"p999_ms\":{p999:.3},\"elapsed_ms\":{:.1},\"partitions\":{partitions},\"producers\":{},\"compression\":\"{}\",\"bytes_on_disk\":{on_disk}}}",
            a.records,
            a.records as f64 / secs,
            window.bytes as f64 / secs / (1024.0 * 1024.0),
            sum as f64 / 1000.0 / a.records as f64,
            window.max_micros as f64 / 1000.0,
            secs * 1000.0,
            a.producers,
            a.compression
        );
    } else {
        outln!(
            "{}, {p50:.2} ms 50th, {p95:.2} ms 95th, {p99:.2} ms 99th, {p999:.2} ms 99.9th.",
            window.line()
        );
        // Kafka's summary line above as it is; what is stored below it.
        outln!("{on_disk} bytes on disk ({}).", a.compression);
    }
    Ok(())
}

fn parse_from(from: &str) -> CliResult<StartAt> {
    match from {
        "earliest" => Ok(StartAt::Earliest),
        "latest" => Ok(StartAt::Latest),
        _ => {
            if let Some(ts) = from.strip_prefix("ts:") {
                let ms = ts.parse::<i64>().ok().filter(|&m| m >= 0);
                return ms
                    .map(StartAt::Timestamp)
                    .ok_or_else(|| format!("--from {from}: bad timestamp").into());
            }
            from.parse().map(StartAt::Offset).map_err(|_| {
                format!("--from {from}: expected earliest, latest, an offset or ts:<milliseconds>").into()
            })
        }
    }
}

fn consume(a: &ConsumeArgs) -> CliResult {
    existing_dir(&a.dir)?;
    let start_at = parse_from(&a.from)?;
    if a.messages == Some(0) {
        return Err("--messages must be at least 1".into());
    }
    let store =
        Store::open(&a.dir, StoreConfig::default()).map_err(|e| format!("{}: {e}", a.dir.display()))?;
    let topic = store.topic(&a.topic)?;
    let limit = a.messages.unwrap_or(u64::MAX);
    let started = Instant::now();
    let (mut records, mut bytes, mut fetches) = (0u64, 0u64, 0u64);
    // Every partition, so an offline one fails the run with its cause.
    'partitions: for p in 0..topic.partition_count() {
        let partition = topic.partition(p)?;
        if let StartAt::Offset(o) = start_at {
            if o >= partition.log_end_offset() {
                continue; // nothing there yet in this partition
            }
        }
        let mut reader = partition.reader(start_at);
        loop {
            let fetched = reader.poll()?;
            if fetched.is_empty() {
                break;
            }
            fetches += 1;
            for r in fetched.records() {
                records += 1;
                bytes += (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64;
                if records >= limit {
                    break 'partitions;
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let mb = bytes as f64 / (1024.0 * 1024.0);
    if a.json {
        outln!(
            "{{\"records\":{records},\"mb\":{mb:.4},\"mb_per_sec\":{:.2},\"records_per_sec\":{:.1},\"fetches\":{fetches},\"elapsed_ms\":{:.1}}}",
            mb / secs,
            records as f64 / secs,
            secs * 1000.0
        );
    } else {
        outln!("data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, fetches, fetch.time.ms");
        outln!(
            "{mb:.4}, {:.4}, {records}, {:.4}, {fetches}, {:.0}",
            mb / secs,
            records as f64 / secs,
            secs * 1000.0
        );
    }
    if let Some(n) = a.messages.filter(|&n| records < n) {
        return Err(format!("only {records} of the {n} records asked for are in topic {}", a.topic).into());
    }
    Ok(())
}
