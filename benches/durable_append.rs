//! Durable appends under `Durability::Always` with 1, 8 and 32 concurrent
//! producers on one partition (group commit shares fsyncs), next to the
//! bare `fdatasync` rate of the same disk: a 100-byte write plus
//! `fdatasync` on a plain file, in a loop.
//!
//! Each producer count runs with three settings of
//! `synced_extent_interval_bytes`, in one run so their ratios compare:
//! `never` (u64::MAX: the extent moves only at roll, flush and close, as
//! the recovery point always did: the cost before the synced extent),
//! `default` (1 MiB) and `every_fsync` (0: written at every group fsync).
//! Before criterion measures each alone, the three are also measured
//! interleaved (rounds of one second each, in turn, so drift of this noisy
//! disk hits all alike), and the median per-round ratios to `never` printed:
//! `durable_append ratio (median of 9 rounds), N producers: default/never = ...`.
//!
//! Run: `cargo bench --bench durable_append`. Each element is one
//! acknowledged (fsynced) batch of one 100-byte record.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use annals::{Durability, LogConfig, Record, Store, StoreConfig, Topic, TopicConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Appends per second by `producers` threads on `topic` for `time`.
fn rate(topic: &Topic, record: &[Record], producers: usize, time: Duration) -> f64 {
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..producers {
            s.spawn(|| {
                let mut n = 0;
                while start.elapsed() < time {
                    topic.append_to(0, record).unwrap();
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    done.into_inner() as f64 / start.elapsed().as_secs_f64()
}

/// Rounds of each setting in turn; prints mean throughput, and the median
/// over rounds of each setting's ratio to the first within the round
/// (neighbours in time, so the disk's drift cancels).
fn interleaved(topics: &[(&str, Topic)], record: &[Record], producers: usize) {
    const ROUNDS: usize = 9;
    let rounds: Vec<Vec<f64>> = (0..ROUNDS)
        .map(|_| topics.iter().map(|(_, t)| rate(t, record, producers, Duration::from_secs(1))).collect())
        .collect();
    let mean = |i: usize| rounds.iter().map(|r| r[i]).sum::<f64>() / ROUNDS as f64;
    let median_ratio = |i: usize| {
        let mut ratios: Vec<f64> = rounds.iter().map(|r| r[i] / r[0]).collect();
        ratios.sort_by(f64::total_cmp);
        ratios[ROUNDS / 2]
    };
    let figures: Vec<String> =
        topics.iter().enumerate().map(|(i, (name, _))| format!("{name} {:.0}/s", mean(i))).collect();
    let ratios: Vec<String> = topics
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, (name, _))| format!("{name}/{} = {:.2}", topics[0].0, median_ratio(i)))
        .collect();
    eprintln!("durable_append interleaved, {producers} producers: {}", figures.join(", "));
    eprintln!(
        "durable_append ratio (median of {ROUNDS} rounds), {producers} producers: {}",
        ratios.join(", ")
    );
}

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
    let record = [Record::new(payload.to_vec())];
    let settings = [
        ("never", u64::MAX),
        ("default", LogConfig::default().synced_extent_interval_bytes),
        ("every_fsync", 0),
    ];
    for producers in [1usize, 8, 32] {
        group.throughput(Throughput::ElementsAndBytes {
            elements: producers as u64,
            bytes: 100 * producers as u64,
        });
        let topics: Vec<(&str, Topic)> = settings
            .iter()
            .map(|&(name, interval)| {
                let log = LogConfig {
                    durability: Durability::Always,
                    synced_extent_interval_bytes: interval,
                    ..LogConfig::default()
                };
                let config = TopicConfig { partitions: 1, log };
                (name, store.create_topic(&format!("durable-{name}-{producers}"), config).unwrap())
            })
            .collect();
        if std::env::var_os("ANNALS_BENCH_QUICK").is_none() {
            interleaved(&topics, &record, producers);
        }
        for (name, topic) in &topics {
            let id = BenchmarkId::new(format!("annals_always_extent_{name}"), producers);
            group.bench_with_input(id, &producers, |b, &producers| {
                b.iter_custom(|iters| {
                    let barrier = Barrier::new(producers + 1);
                    std::thread::scope(|s| {
                        for _ in 0..producers {
                            let (record, barrier) = (&record, &barrier);
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
    }
    group.finish();
}

criterion_group!(benches, durable_append);
criterion_main!(benches);
