//! `offset_for_timestamp` on a multi-segment partition: 1M records of 100
//! bytes in 8 MiB segments (about 14), timestamps rising with jitter (so
//! not monotonic), looked up at random targets.
//!
//! Run: `cargo bench --bench timestamp_lookup`.

use std::time::Duration;

use annals::{LogConfig, PartitionLog, Record};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RECORDS: u64 = 1_000_000;
const BATCH: u64 = 100;

fn timestamp_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 8 << 20, retention_ms: -1, ..LogConfig::default() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for b in 0..RECORDS / BATCH {
        let records: Vec<Record> = (0..BATCH)
            .map(|i| {
                let n = b * BATCH + i;
                // About 10 ms apart, jittered by up to 50 ms either way.
                let ts = 1_700_000_000_000 + (n as i64) * 10 + (rand() % 100) as i64 - 50;
                Record::new(vec![0u8; 100]).timestamp_ms(ts)
            })
            .collect();
        log.append(&records).unwrap();
    }
    let segments = log.segment_count();
    let mut group = c.benchmark_group(format!("offset_for_timestamp_1M_{segments}_segments"));
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("random_target", |b| {
        b.iter(|| {
            let target = 1_700_000_000_000 + (rand() % (RECORDS * 10)) as i64;
            log.offset_for_timestamp(target).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, timestamp_lookup);
criterion_main!(benches);
