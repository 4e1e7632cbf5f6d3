//! Compressed batches (Kafka's codecs), on realistic compressible records:
//! JSON-like events of about 100 bytes, every one distinct.
//!
//! - `limit_passthrough_compressed`: a producer's lz4 or zstd batch (100
//!   records) through `append_batches` (inflated into a reused buffer,
//!   validated in full, stored as sent) next to writing the same compressed
//!   bytes with one `write()` per batch; prints the ratio.
//!   `floor_inflate_only` inflates the same batch and checks nothing: the
//!   least any validation of it costs.
//! - `codec_append/{none,gzip,snappy,lz4,zstd}`: the record API's append of
//!   100 records into a topic of that `compression.type` (records/s, MB/s of
//!   keys and values).
//! - `codec_read/...`: sequential read of a 100k-record log of that codec,
//!   every record decoded (records/s, MB/s).
//! - Bytes on disk per codec for the same 100k records (printed).
//!
//! Run: `cargo bench --bench compression`; quick: add `-- --quick`.

use std::time::Duration;

use annals::format::Codec;
use annals::{CompressionType, LogConfig, PartitionLog, Record};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

mod support;
use annals::ReadBound;
use support::{alternate, payload_bytes, FreshLog, RawWriter};

const CODECS: [Codec; 5] = [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];
const READ_RECORDS: usize = 100_000;

/// `n` distinct JSON-like events of about 100 bytes, from record `first` on.
fn events(first: usize, n: usize) -> Vec<Record> {
    const PAGES: [&str; 6] = ["/", "/cart", "/checkout", "/products", "/search", "/account"];
    const KINDS: [&str; 4] = ["page_view", "click", "add_to_cart", "purchase"];
    (first..first + n)
        .map(|i| {
            let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let value = format!(
                r#"{{"user":{},"event":"{}","page":"{}/{}","ms":{},"ok":{}}}"#,
                100_000 + h % 50_000,
                KINDS[(h >> 20) as usize % KINDS.len()],
                PAGES[(h >> 24) as usize % PAGES.len()],
                (h >> 32) % 10_000,
                1_700_000_000_000u64 + i as u64 * 3,
                h & 1 == 0,
            );
            Record::with_key(format!("user-{}", 100_000 + h % 50_000), value)
                .timestamp_ms(1_700_000_000_000 + i as i64 * 3)
        })
        .collect()
}

fn config(codec: Codec) -> LogConfig {
    LogConfig { compression_type: CompressionType::Codec(codec), ..LogConfig::default() }
}

/// A producer's batch of `records` compressed with `codec`, as it comes
/// off the wire (encoded and compressed by a log of that codec, read back).
fn client_batch(records: &[Record], codec: Codec) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(codec)).unwrap();
    log.append(records).unwrap();
    let bytes = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap().bytes().to_vec();
    assert_eq!(bytes[22] & 7, codec.id() as u8);
    bytes
}

fn limit_passthrough_compressed(c: &mut Criterion) {
    let mut group = c.benchmark_group("limit_passthrough_compressed");
    group.measurement_time(Duration::from_secs(5));
    let records = events(0, 100);
    for codec in [Codec::Lz4, Codec::Zstd] {
        let template = client_batch(&records, codec);
        let dir = tempfile::tempdir().unwrap();
        let producer = LogConfig { compression_type: CompressionType::Producer, ..LogConfig::default() };
        let mut log = FreshLog::with_config(dir.path().join("p-0"), producer);
        let mut raw = RawWriter::new(dir.path().join("raw.bin"), 0);
        let (mut a, b) = (template.clone(), template.clone());
        let [annals, per_batch] =
            alternate(5_000, &mut [&mut || log.append_batches(&mut a), &mut || raw.write_bytes(&b)]);
        eprintln!(
            "limit_passthrough_compressed {codec} (100 records, {} B of keys and values in {} bytes, no fsync): \
             annals append_batches {:.2} us/batch, raw one write per batch {:.2} us; ratio annals / raw = {:.2}x",
            payload_bytes(&records),
            template.len(),
            annals / 1e3,
            per_batch / 1e3,
            per_batch / annals
        );
        group.throughput(Throughput::Bytes(template.len() as u64));
        group.bench_function(BenchmarkId::new("annals_append_batches", codec), |bench| {
            bench.iter_custom(|iters| (0..iters).map(|_| log.append_batches(&mut a)).sum())
        });
        group.bench_function(BenchmarkId::new("raw_one_write_per_batch", codec), |bench| {
            bench.iter_custom(|iters| (0..iters).map(|_| raw.write_bytes(&b)).sum())
        });
        // The least a validator of this batch does: inflate its records
        // (into a reused buffer), nothing checked.
        let header = annals::format::BatchHeader::parse(&template).unwrap();
        let mut inflater = annals::format::Inflater::default();
        group.bench_function(BenchmarkId::new("floor_inflate_only", codec), |bench| {
            bench.iter(|| inflater.records(std::hint::black_box(&template), header).is_ok())
        });
    }
    group.finish();
}

fn codec_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec_append");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let records = events(0, 100);
    group.throughput(Throughput::ElementsAndBytes { elements: 100, bytes: payload_bytes(&records) });
    let dir = tempfile::tempdir().unwrap();
    for codec in CODECS {
        let mut log = FreshLog::with_config(dir.path().join(codec.name()), config(codec));
        group.bench_function(BenchmarkId::from_parameter(codec), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| log.append(&records)).sum())
        });
    }
    group.finish();
}

fn codec_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec_read");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Record> = events(0, READ_RECORDS);
    let bytes = payload_bytes(&all);
    let mut on_disk = Vec::new();
    for codec in CODECS {
        let log = PartitionLog::open(dir.path().join(codec.name()), config(codec)).unwrap();
        for chunk in all.chunks(100) {
            log.append(chunk).unwrap();
        }
        on_disk.push((codec, log.size_bytes()));
        group.throughput(Throughput::ElementsAndBytes { elements: READ_RECORDS as u64, bytes });
        group.bench_function(BenchmarkId::from_parameter(codec), |b| {
            b.iter(|| {
                let (seen, sum) = support::read_all(&log);
                assert_eq!(seen, READ_RECORDS as u64);
                sum
            })
        });
    }
    group.finish();
    let none = on_disk[0].1 as f64;
    for (codec, size) in on_disk {
        eprintln!(
            "bytes on disk, {READ_RECORDS} records ({bytes} B of keys and values) in batches of 100: {codec} {size} ({:.2}x of none)",
            size as f64 / none
        );
    }
}

criterion_group!(benches, limit_passthrough_compressed, codec_append, codec_read);
criterion_main!(benches);
