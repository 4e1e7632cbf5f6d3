//! openraft's log storage on annals (`annals::raft::LogStore`, feature
//! `openraft`): durable appends of N entries per call (a raft node's flush:
//! one fsync covers the call), next to the bare limit of the same disk (the
//! entries' encoded bytes written with one `write` plus `fdatasync` per
//! call to a plain file), reading entries back (decoding included), and
//! the entry codec alone (postcard, and JSON for comparison).
//!
//! Run: `cargo bench --features openraft --bench raft_append`. Each element
//! is one entry: a `Set` of a 16-byte key and a 64-byte value.

use std::cell::Cell;
use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use annals::raft::{KvConfig, KvRequest, LogStore};
use annals::LogConfig;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

fn entries(from: u64, n: u64) -> Vec<Entry<KvConfig>> {
    (from..from + n)
        .map(|i| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(KvRequest::Set {
                key: format!("key-{i:012}"),
                value: "v".repeat(64),
            }),
        })
        .collect()
}

/// The entries as the store encodes them: a codec tag byte, then postcard.
fn encoded_bytes(entries: &[Entry<KvConfig>]) -> Vec<u8> {
    entries.iter().flat_map(|e| [vec![1], postcard::to_stdvec(e).unwrap()].concat()).collect()
}

fn raft_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_append");
    group.measurement_time(Duration::from_secs(6));
    group.sample_size(10);
    let dir = tempfile::tempdir().unwrap();
    let mut bare = OpenOptions::new().create(true).append(true).open(dir.path().join("bare.bin")).unwrap();
    let mut store = LogStore::<KvConfig>::open(dir.path().join("raft"), LogConfig::default()).unwrap();
    let next = Cell::new(0u64);
    for n in [1u64, 16, 256] {
        let bytes = encoded_bytes(&entries(0, n));
        group.throughput(Throughput::ElementsAndBytes { elements: n, bytes: bytes.len() as u64 });
        group.bench_with_input(BenchmarkId::new("bare_write_fdatasync", n), &bytes, |b, bytes| {
            b.iter(|| {
                bare.write_all(bytes).unwrap();
                bare.sync_data().unwrap();
            })
        });
        group.bench_with_input(BenchmarkId::new("annals_log_store", n), &n, |b, &n| {
            b.iter_batched(
                || {
                    let from = next.get();
                    next.set(from + n);
                    entries(from, n)
                },
                |batch| store.append_entries(batch).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn raft_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_read");
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::<KvConfig>::open(dir.path(), LogConfig::default()).unwrap();
    const TOTAL: u64 = 100_000;
    for from in (0..TOTAL).step_by(1000) {
        store.append_entries(entries(from, 1000)).unwrap();
    }
    const READ: u64 = 256;
    group.throughput(Throughput::Elements(READ));
    let mut start = 0u64;
    group.bench_function("entries_256", |b| {
        b.iter(|| {
            // A stride through the log, so reads are not all cache-hot.
            start = (start + 7919) % (TOTAL - READ);
            let got = store.entries(start..start + READ).unwrap();
            assert_eq!(got.len() as u64, READ);
        })
    });
    group.finish();
}

/// The codec's share: 256 entries encoded into one buffer (what an append
/// does before writing) and decoded back (what a read does), with postcard
/// (what the store uses) and with JSON (the usual choice of openraft's
/// example stores), for comparison.
fn raft_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_codec");
    let batch = entries(0, 256);
    group.throughput(Throughput::Elements(256));
    let mut buf = Vec::new();
    group.bench_function("postcard_encode_256", |b| {
        b.iter(|| {
            buf.clear();
            for e in &batch {
                buf = postcard::to_extend(e, std::mem::take(&mut buf)).unwrap();
            }
            buf.len()
        })
    });
    group.bench_function("json_encode_256", |b| {
        b.iter(|| {
            buf.clear();
            for e in &batch {
                serde_json::to_writer(&mut buf, e).unwrap();
            }
            buf.len()
        })
    });
    let postcard: Vec<Vec<u8>> = batch.iter().map(|e| postcard::to_stdvec(e).unwrap()).collect();
    group.bench_function("postcard_decode_256", |b| {
        b.iter(|| {
            for bytes in &postcard {
                let e: Entry<KvConfig> = postcard::from_bytes(bytes).unwrap();
                std::hint::black_box(e);
            }
        })
    });
    let json: Vec<Vec<u8>> = batch.iter().map(|e| serde_json::to_vec(e).unwrap()).collect();
    group.bench_function("json_decode_256", |b| {
        b.iter(|| {
            for bytes in &json {
                let e: Entry<KvConfig> = serde_json::from_slice(bytes).unwrap();
                std::hint::black_box(e);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, raft_append, raft_read, raft_codec);
criterion_main!(benches);
