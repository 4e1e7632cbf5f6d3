//! Random single-record reads on a warm 1M-record log (latency percentiles
//! printed), and clean open of a partition of about 12 segments holding 1M
//! vs 10M records (time should not depend on the log's size).
//!
//! Run: `cargo bench --bench read_open`. `ANNALS_BENCH_QUICK=1` skips the
//! 10M-record log.

use std::time::{Duration, Instant};

use annals::ReadBound;
use annals::{LogConfig, PartitionLog, Record};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const BATCH: u64 = 100;

fn fill(dir: &std::path::Path, records: u64, segments: u64) -> PartitionLog {
    let segment_bytes = (records * 108 / segments).clamp(1 << 20, i32::MAX as u64);
    let config = LogConfig { segment_bytes, retention_ms: -1, ..LogConfig::default() };
    let log = PartitionLog::open(dir, config).unwrap();
    let batch: Vec<Record> = (0..BATCH).map(|i| Record::new(vec![i as u8; 100]).timestamp_ms(1)).collect();
    for _ in 0..records / BATCH {
        log.append(&batch).unwrap();
    }
    log
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn random_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = fill(dir.path(), 1_000_000, 12);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // Warm the page cache, then time single reads one by one.
    for o in (0..1_000_000).step_by(100) {
        log.read(o, 1, ReadBound::LogEnd).unwrap();
    }
    let mut samples: Vec<Duration> = (0..200_000)
        .map(|_| {
            let offset = xorshift(&mut seed) % 1_000_000;
            let start = Instant::now();
            let fetched = log.read(offset, 1, ReadBound::LogEnd).unwrap();
            let r = fetched.records().next().unwrap();
            assert_eq!(r.offset, offset);
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    eprintln!(
        "random single-record read, warm 1M-record log: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        samples[samples.len() - 1]
    );
    c.bench_function("random_read_1M_warm", |b| {
        b.iter(|| {
            let offset = xorshift(&mut seed) % 1_000_000;
            log.read(offset, 1, ReadBound::LogEnd).unwrap()
        })
    });
}

fn clean_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("clean_open_12_segments");
    group.measurement_time(Duration::from_secs(5));
    let sizes: &[u64] = if std::env::var_os("ANNALS_BENCH_QUICK").is_some() {
        &[1_000_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    for &records in sizes {
        let dir = tempfile::tempdir().unwrap();
        let log = fill(dir.path(), records, 12);
        let config = LogConfig {
            segment_bytes: (records * 108 / 12).clamp(1 << 20, i32::MAX as u64),
            retention_ms: -1,
            ..LogConfig::default()
        };
        eprintln!("{records} records in {} segments", log.segment_count());
        log.close().unwrap();
        drop(log);
        group.bench_with_input(BenchmarkId::from_parameter(records), &records, |b, _| {
            b.iter_custom(|iters| {
                let mut busy = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                    busy += start.elapsed();
                    assert!(log.recovery_report().clean_shutdown);
                    log.close().unwrap(); // untimed: the next open is clean again
                }
                busy
            })
        });
    }
    group.finish();
}

criterion_group!(benches, random_read, clean_open);
criterion_main!(benches);
