//! Compaction throughput: 200,000 records of 100 bytes over 20,000 keys
//! (10% of the records are the live latest-per-key), all in sealed
//! segments, compacted in one `compact()`; throughput is input bytes.
//! The key map's memory is printed once.
//!
//! Run: `cargo bench --bench compaction`.

use std::time::{Duration, Instant};

use annals::{CleanupPolicy, LogConfig, PartitionLog, Record};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RECORDS: u64 = 200_000;
const KEYS: u64 = 20_000;
const BATCH: u64 = 100;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 4 << 20, cleanup_policy: CleanupPolicy::Compact, ..LogConfig::default() }
}

/// A fresh dirty log; returns it with its input size.
fn build(dir: &std::path::Path) -> (PartitionLog, u64) {
    let log = PartitionLog::open(dir, config()).unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for b in 0..RECORDS / BATCH {
        let records: Vec<Record> = (0..BATCH)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let key = format!("key-{:08}", seed % KEYS);
                Record::with_key(key, vec![(b * BATCH + i) as u8; 100])
            })
            .collect();
        log.append(&records).unwrap();
    }
    log.roll().unwrap();
    let size = log.size_bytes();
    (log, size)
}

fn compaction(c: &mut Criterion) {
    let probe = tempfile::tempdir().unwrap();
    let (log, input) = build(probe.path());
    let report = log.compact().unwrap();
    eprintln!(
        "compaction of {input} bytes: {report:?}; output {} bytes; key map {} KiB",
        report.bytes_written,
        report.map_memory_bytes / 1024
    );
    drop(log);

    let mut group = c.benchmark_group("compaction_200k_x_100B_10pct_live");
    group.throughput(Throughput::ElementsAndBytes { elements: RECORDS, bytes: input });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("compact", |b| {
        b.iter_custom(|iters| {
            let mut busy = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let (log, _) = build(dir.path());
                let start = Instant::now();
                log.compact().unwrap();
                busy += start.elapsed();
            }
            busy
        })
    });
    group.finish();
}

criterion_group!(benches, compaction);
criterion_main!(benches);
