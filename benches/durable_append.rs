//! Durable appends under `Durability::Always` with 1, 8 and 32 concurrent
//! producers on one partition (group commit shares fsyncs), next to the
//! bare `fdatasync` rate of the same disk: a 100-byte write plus
//! `fdatasync` on a plain file, in a loop.
//!
//! Run: `cargo bench --bench durable_append`. Each element is one
//! acknowledged (fsynced) batch of one 100-byte record.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use annals::{Durability, LogConfig, Record, Store, StoreConfig, TopicConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn durable_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_append_100B");
    group.measurement_time(Duration::from_secs(8));
    group.sample_size(10);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.bin");
    let mut file = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let payload = [7u8; 100];
    group.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: 100 });
    group.bench_function("bare_write_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&payload).unwrap();
            file.sync_data().unwrap();
        })
    });

    let store = Store::open(dir.path().join("store"), StoreConfig::default()).unwrap();
    let log = LogConfig { durability: Durability::Always, ..LogConfig::default() };
    let topic = store.create_topic("durable", TopicConfig { partitions: 1, log }).unwrap();
    let record = [Record::new(payload.to_vec())];
    for producers in [1usize, 8, 32] {
        group.throughput(Throughput::ElementsAndBytes {
            elements: producers as u64,
            bytes: 100 * producers as u64,
        });
        group.bench_with_input(BenchmarkId::new("annals_always", producers), &producers, |b, &producers| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(producers + 1);
                std::thread::scope(|s| {
                    for _ in 0..producers {
                        let (topic, record, barrier) = (&topic, &record, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            for _ in 0..iters {
                                topic.append_to(0, record).unwrap();
                            }
                        });
                    }
                    barrier.wait();
                    Instant::now()
                })
                .elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, durable_append);
criterion_main!(benches);
