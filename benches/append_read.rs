//! Append and sequential-read throughput of one partition, and the limit
//! benchmark: annals next to the raw framed file on identical data, in the
//! same process and run.
//!
//! - `append/{100B,1KiB}_x{1,10,100,1000}_{unkeyed,keyed}`: one partition,
//!   no fsync, records/s and bytes/s (keys and values).
//! - `limit_append`: annals (100 B values, batches of 100, unkeyed) next to
//!   the same payloads framed `len u32 | crc32 u32 | value` and written to a
//!   plain file with 64 KiB `write()` calls, and with one `write()` per
//!   batch (what an engine that writes each batch as it is appended can at
//!   best do). Prints annals / raw as ratios, medians of alternating rounds.
//! - `limit_passthrough`: a broker's produce path: a ready-made client
//!   RecordBatch v2 (100 x 100 B) through `append_batches` (validated in
//!   full, stamped, one write) next to writing the same bytes with one
//!   `write()` per batch; prints the ratio.
//! - `crc32c`: the batch checksum (crc32c crate, crc-fast) next to
//!   crc32fast's IEEE CRC, over one such batch; `validate_client_batch`
//!   (the producer checks); `floor_crc_and_length_hops` (the CRC plus one
//!   hop per record length: the least any record-walking validator does).
//! - `limit_read`: sequential read of 1M records from offset 0, every batch's
//!   CRC checked, next to reading the raw file back with 64 KiB `read()`s
//!   and checking each frame's CRC; prints the ratio too.
//!
//! - `pool_overhead`: the same appends, sequential reads and one-batch
//!   fetches on a log over the store's `FilePool` next to one on the plain
//!   file system; prints pooled / plain ratios.
//!
//! Run: `cargo bench --bench append_read`; quick: add `-- --quick`.

use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use annals::{LogConfig, PartitionLog, Record};

mod support;
use annals::ReadBound;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use support::{alternate, frame, payload_bytes, FreshLog, RawWriter, RAW_IO_BYTES};

const READ_RECORDS: u64 = 1_000_000;
fn records(n: usize, value_bytes: usize, keyed: bool) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let value = vec![i as u8; value_bytes];
            let r = if keyed {
                Record::with_key(format!("key-{:012}", i % 1000).into_bytes(), value)
            } else {
                Record::new(value)
            };
            r.timestamp_ms(1_700_000_000_000)
        })
        .collect()
}

/// A producer's RecordBatch v2 of `records`, as it comes off the wire
/// (base offset 0, no leader epoch).
fn client_batch(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    let limits = annals::format::EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 8 << 20 };
    annals::format::encode_batch(
        &mut out,
        0,
        annals::BatchMeta::default(),
        records,
        1_700_000_000_000,
        limits,
    )
    .unwrap();
    out
}

/// `limit_passthrough`: a broker's produce path. A ready-made client batch
/// (100 records x 100 B) appended pass-through (validated in full, offsets
/// and epoch stamped, one write) next to writing the same bytes with one
/// `write()` per batch.
fn limit_passthrough(c: &mut Criterion) {
    let template = client_batch(&records(100, 100, false));
    let dir = tempfile::tempdir().unwrap();
    let mut log = FreshLog::new(dir.path().join("p-0"));
    let mut raw = RawWriter::new(dir.path().join("raw.bin"), 0);
    let (mut a, b) = (template.clone(), template.clone());
    let [annals, per_batch] =
        alternate(5_000, &mut [&mut || log.append_batches(&mut a), &mut || raw.write_bytes(&b)]);
    eprintln!(
        "limit_passthrough (100 x 100 B client batch, {} bytes, no fsync): annals append_batches {:.2} us/batch, raw one write per batch {:.2} us; ratio annals / raw = {:.2}x",
        template.len(),
        annals / 1e3,
        per_batch / 1e3,
        per_batch / annals
    );
    let mut group = c.benchmark_group("limit_passthrough");
    group.throughput(Throughput::Bytes(template.len() as u64));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("annals_append_batches", |bench| {
        bench.iter_custom(|iters| (0..iters).map(|_| log.append_batches(&mut a)).sum())
    });
    group.bench_function("raw_one_write_per_batch", |bench| {
        bench.iter_custom(|iters| (0..iters).map(|_| raw.write_bytes(&b)).sum())
    });
    group.finish();
}

/// `crc32c`: the batch checksum over one 100 x 100 B batch, the crate
/// annals uses (hardware CRC-32C) next to crc32fast's CRC-32 (IEEE), which
/// annals keeps for its own small files.
fn checksums(c: &mut Criterion) {
    let batch = client_batch(&records(100, 100, false));
    let mut group = c.benchmark_group("crc32c");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("crc32c", |b| b.iter(|| crc32c::crc32c(std::hint::black_box(&batch))));
    group.bench_function("crc_fast", |b| {
        b.iter(|| crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, std::hint::black_box(&batch)))
    });
    let rules = annals::format::ClientRules {
        max_record_bytes: 1 << 20,
        max_batch_bytes: 8 << 20,
        keys_required: false,
        log_append_time: false,
        before_max_ms: i64::MAX,
        after_max_ms: i64::MAX,
        now_ms: 0,
    };
    let mut inflater = annals::format::Inflater::default();
    group.bench_function("validate_client_batch", |b| {
        b.iter(|| {
            annals::format::validate_client_batch(std::hint::black_box(&batch), &rules, &mut inflater).is_ok()
        })
    });
    // The least any validator that walks records must do: the CRC-32C
    // over Kafka's range and one hop over each record's length varint,
    // nothing read inside a record. What it costs next to one `write()`
    // bounds the pass-through ratio from above.
    group.bench_function("floor_crc_and_length_hops", |b| {
        b.iter(|| {
            let batch = std::hint::black_box(&batch[..]);
            let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &batch[21..]);
            let (mut at, mut records) = (61, 0u32);
            while let Some((len, n)) = annals::format::get_varint(&batch[at..]) {
                at += n + len as usize;
                records += 1;
                if at >= batch.len() {
                    break;
                }
            }
            (crc, records)
        })
    });
    assert_eq!(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &batch) as u32, crc32c::crc32c(&batch));
    group.bench_function("crc32fast_ieee", |b| b.iter(|| crc32fast::hash(std::hint::black_box(&batch))));
    group.finish();
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    for (value_bytes, label) in [(100, "100B"), (1024, "1KiB")] {
        for batch in [1, 10, 100, 1000] {
            for keyed in [false, true] {
                let records = records(batch, value_bytes, keyed);
                group.throughput(Throughput::ElementsAndBytes {
                    elements: batch as u64,
                    bytes: payload_bytes(&records),
                });
                let id = format!("{label}_x{batch}_{}", if keyed { "keyed" } else { "unkeyed" });
                let mut log = FreshLog::new(dir.path().join(&id));
                group.bench_function(BenchmarkId::from_parameter(&id), |b| {
                    b.iter_custom(|iters| (0..iters).map(|_| log.append(&records)).sum())
                });
            }
        }
    }
    group.finish();
}

fn limit_append(c: &mut Criterion) {
    let records = records(100, 100, false);
    let dir = tempfile::tempdir().unwrap();
    let mut log = FreshLog::new(dir.path().join("p-0"));
    let mut raw = RawWriter::new(dir.path().join("raw.bin"), RAW_IO_BYTES);
    let mut raw_per_batch = RawWriter::new(dir.path().join("raw-per-batch.bin"), 0);

    let [annals, limit, per_batch] = alternate(
        5_000,
        &mut [&mut || log.append(&records), &mut || raw.append(&records), &mut || {
            raw_per_batch.append(&records)
        }],
    );
    eprintln!(
        "limit_append (100 x 100 B, no fsync): annals {:.2} us/batch, raw 64 KiB writes {:.2} us, raw one write per batch {:.2} us",
        annals / 1e3,
        limit / 1e3,
        per_batch / 1e3
    );
    eprintln!(
        "limit_append ratio: annals / raw framed write = {:.2}x; annals / raw one-write-per-batch = {:.2}x",
        limit / annals,
        per_batch / annals
    );

    let mut group = c.benchmark_group("limit_append");
    group.throughput(Throughput::ElementsAndBytes { elements: 100, bytes: payload_bytes(&records) });
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("annals", |b| b.iter_custom(|iters| (0..iters).map(|_| log.append(&records)).sum()));
    group.bench_function("raw_framed_write", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw.append(&records)).sum())
    });
    group.bench_function("raw_one_write_per_batch", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw_per_batch.append(&records)).sum())
    });
    group.finish();
}

fn read_annals(log: &PartitionLog) -> usize {
    let (seen, bytes) = support::read_all(log);
    assert_eq!(seen, READ_RECORDS);
    bytes
}

fn read_raw(path: &std::path::Path) -> usize {
    let mut file = File::open(path).unwrap();
    let mut buf = vec![0u8; RAW_IO_BYTES];
    let (mut filled, mut seen, mut bytes) = (0usize, 0u64, 0usize);
    loop {
        let n = file.read(&mut buf[filled..]).unwrap();
        filled += n;
        let mut at = 0;
        while filled - at >= 8 {
            let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
            if filled - at < 8 + len {
                break;
            }
            assert_eq!(crc32fast::hash(&buf[at + 8..at + 8 + len]), crc);
            bytes += len;
            seen += 1;
            at += 8 + len;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if n == 0 {
            break;
        }
    }
    assert_eq!(seen, READ_RECORDS);
    bytes
}

fn limit_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path().join("p-0"), LogConfig::default()).unwrap();
    let batch = records(100, 100, false);
    let raw_path = dir.path().join("raw.bin");
    let mut raw = std::io::BufWriter::with_capacity(RAW_IO_BYTES, File::create(&raw_path).unwrap());
    let mut framed = Vec::new();
    for _ in 0..READ_RECORDS / 100 {
        log.append(&batch).unwrap();
        framed.clear();
        frame(&mut framed, &batch);
        raw.write_all(&framed).unwrap();
    }
    raw.flush().unwrap();
    drop(raw);
    let timed = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        std::hint::black_box(f());
        start.elapsed()
    };
    let [annals, limit] = alternate(
        1,
        &mut [&mut || timed(&mut || read_annals(&log)), &mut || timed(&mut || read_raw(&raw_path))],
    );
    eprintln!(
        "limit_read (1M x 100 B from offset 0, CRC checked): annals {:.1} ms, raw {:.1} ms; ratio annals / raw framed read = {:.2}x",
        annals / 1e6,
        limit / 1e6,
        limit / annals
    );

    let mut group = c.benchmark_group("limit_read_1M_x_100B");
    group.throughput(Throughput::ElementsAndBytes { elements: READ_RECORDS, bytes: READ_RECORDS * 100 });
    group.sample_size(20);
    group.bench_function("annals", |b| b.iter(|| read_annals(&log)));
    group.bench_function("raw_framed_read", |b| b.iter(|| read_raw(&raw_path)));
    group.finish();
}

/// `pool_overhead`: what the store's bounded file pool (`io::FilePool`,
/// issue 20) costs on the hot path when the partition's files stay open:
/// the same appends (100 x 100 B, no fsync), sequential reads of 1M
/// records and single-batch fetches at random offsets, on a log over the
/// pool next to one on the plain file system, alternating in one run.
fn pool_overhead(c: &mut Criterion) {
    use std::sync::Arc;
    let pooled = || -> annals::io::SharedFs {
        Arc::new(annals::io::FilePool::new(Arc::new(annals::io::StdFileSystem), 768))
    };
    let plain = || -> annals::io::SharedFs { Arc::new(annals::io::StdFileSystem) };
    let batch = records(100, 100, false);
    let dir = tempfile::tempdir().unwrap();
    let mut logs = [
        FreshLog::with_fs(dir.path().join("plain"), LogConfig::default(), plain()),
        FreshLog::with_fs(dir.path().join("pooled"), LogConfig::default(), pooled()),
    ];
    let [plain_append, pooled_append] = {
        let [a, b] = &mut logs;
        alternate(5_000, &mut [&mut || a.append(&batch), &mut || b.append(&batch)])
    };
    let full = |fs: annals::io::SharedFs, name: &str| {
        let log = PartitionLog::open_with(
            dir.path().join(name),
            LogConfig::default(),
            annals::OpenOptions::default().with_fs(fs),
        )
        .unwrap();
        for _ in 0..READ_RECORDS / 100 {
            log.append(&batch).unwrap();
        }
        log
    };
    let readable = [full(plain(), "plain-read"), full(pooled(), "pooled-read")];
    let timed = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        std::hint::black_box(f());
        start.elapsed()
    };
    let [plain_read, pooled_read] = {
        let [a, b] = &readable;
        alternate(1, &mut [&mut || timed(&mut || read_annals(a)), &mut || timed(&mut || read_annals(b))])
    };
    // One batch (about 10 KiB) at a pseudo-random offset: a consumer's fetch.
    let fetch = |log: &PartitionLog, x: &mut u64| {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        let start = Instant::now();
        std::hint::black_box(log.read(*x % READ_RECORDS, 16 << 10, ReadBound::LogEnd).unwrap().bytes().len());
        start.elapsed()
    };
    let (mut xa, mut xb) = (0x9E37_79B9_7F4A_7C15u64, 0x9E37_79B9_7F4A_7C15u64);
    let [plain_fetch, pooled_fetch] = {
        let [a, b] = &readable;
        alternate(20_000, &mut [&mut || fetch(a, &mut xa), &mut || fetch(b, &mut xb)])
    };
    eprintln!(
        "pool_overhead (pooled / plain, 1.00x = free): append 100 x 100 B {:.2} / {:.2} us = {:.2}x; \
         sequential read of 1M records {:.1} / {:.1} ms = {:.2}x; one-batch fetch {:.2} / {:.2} us = {:.2}x",
        pooled_append / 1e3,
        plain_append / 1e3,
        pooled_append / plain_append,
        pooled_read / 1e6,
        plain_read / 1e6,
        pooled_read / plain_read,
        pooled_fetch / 1e3,
        plain_fetch / 1e3,
        pooled_fetch / plain_fetch
    );
    let mut group = c.benchmark_group("pool_overhead");
    group.throughput(Throughput::Elements(100));
    for (name, log) in ["plain", "pooled"].into_iter().zip(&mut logs) {
        group.bench_function(format!("append_100x100B_{name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| log.append(&batch)).sum())
        });
    }
    group.throughput(Throughput::Elements(1));
    for (name, log) in ["plain", "pooled"].into_iter().zip(&readable) {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        group.bench_function(format!("fetch_one_batch_{name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| fetch(log, &mut x)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, limit_passthrough, checksums, limit_append, limit_read, append, pool_overhead);
criterion_main!(benches);
