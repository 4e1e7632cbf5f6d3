//! Durable appends under `Durability::Always` with 1, 8 and 32 concurrent
//! producers on one partition (group commit shares fsyncs), next to the
//! bare `fdatasync` rate of the same disk: a 100-byte write plus
//! `fdatasync` on a plain file, in a loop.
//!
//! Each producer count runs with three settings of
//! `synced_extent_interval_bytes`, in one run so their ratios compare:
//! `never` (u64::MAX: the extent moves only at roll, flush and close, as
//! the recovery point always did: the cost before the synced extent),
//! `default` (1 MiB) and `every_fsync` (0: written at every group fsync);
//! and `no_commit_delay`: the default with `commit_delay_us = 0`, so a
//! group fsync starts at once instead of gathering the producers the last
//! one released.
//! Before criterion measures each alone, the bare loop and the three are
//! also measured interleaved (rounds of one second each, in turn, so drift
//! of this noisy disk hits all alike), and the median per-round ratios to
//! the bare loop and to `never` printed: `durable_append ratio (median of 9
//! rounds), N producers: never/bare = ..., default/bare = ...; default/never = ...`.
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

/// The bare loop's rate for `time`: a 100-byte write and `fdatasync`.
fn bare_rate(file: &mut std::fs::File, time: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        file.write_all(&[7u8; 100]).unwrap();
        file.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Rounds of the bare loop and each setting in turn; prints mean
/// throughput, and the median over rounds of each setting's ratio to the
/// bare loop and to the first setting within the round (neighbours in
/// time, so the disk's drift cancels).
fn interleaved(topics: &[(&str, Topic)], record: &[Record], producers: usize, bare: &mut std::fs::File) {
    const ROUNDS: usize = 9;
    let second = Duration::from_secs(1);
    let rounds: Vec<(f64, Vec<f64>)> = (0..ROUNDS)
        .map(|_| {
            let bare = bare_rate(bare, second);
            (bare, topics.iter().map(|(_, t)| rate(t, record, producers, second)).collect())
        })
        .collect();
    let mean = |i: usize| rounds.iter().map(|r| r.1[i]).sum::<f64>() / ROUNDS as f64;
    let median = |mut ratios: Vec<f64>| {
        ratios.sort_by(f64::total_cmp);
        ratios[ROUNDS / 2]
    };
    let bare_mean = rounds.iter().map(|r| r.0).sum::<f64>() / ROUNDS as f64;
    let figures: Vec<String> =
        topics.iter().enumerate().map(|(i, (name, _))| format!("{name} {:.0}/s", mean(i))).collect();
    let to_bare: Vec<String> = topics
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            format!("{name}/bare = {:.2}", median(rounds.iter().map(|r| r.1[i] / r.0).collect()))
        })
        .collect();
    let ratios: Vec<String> = topics
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, (name, _))| {
            format!(
                "{name}/{} = {:.2}",
                topics[0].0,
                median(rounds.iter().map(|r| r.1[i] / r.1[0]).collect())
            )
        })
        .collect();
    eprintln!(
        "durable_append interleaved, {producers} producers: bare write+fdatasync {bare_mean:.0}/s, {}",
        figures.join(", ")
    );
    eprintln!(
        "durable_append ratio (median of {ROUNDS} rounds), {producers} producers: {}; {}",
        to_bare.join(", "),
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
    let defaults = LogConfig::default();
    let settings = [
        ("never", u64::MAX, defaults.commit_delay_us),
        ("default", defaults.synced_extent_interval_bytes, defaults.commit_delay_us),
        ("every_fsync", 0, defaults.commit_delay_us),
        ("no_commit_delay", defaults.synced_extent_interval_bytes, 0),
    ];
    for producers in [1usize, 8, 32] {
        group.throughput(Throughput::ElementsAndBytes {
            elements: producers as u64,
            bytes: 100 * producers as u64,
        });
        let topics: Vec<(&str, Topic)> = settings
            .iter()
            .map(|&(name, interval, commit_delay_us)| {
                let log = LogConfig {
                    durability: Durability::Always,
                    synced_extent_interval_bytes: interval,
                    commit_delay_us,
                    ..LogConfig::default()
                };
                let config = TopicConfig { partitions: 1, log };
                (name, store.create_topic(&format!("durable-{name}-{producers}"), config).unwrap())
            })
            .collect();
        if std::env::var_os("ANNALS_BENCH_QUICK").is_none() {
            interleaved(&topics, &record, producers, &mut file);
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
