//! Append and sequential-read throughput of one partition, each next to the
//! raw limit on the same data: `len u32 | crc32 u32 | value` frames written
//! to (and read back from) a plain file with 64 KiB `write()`/`read()` calls.
//!
//! Run: `cargo bench --bench append_read`. Compare the annals and raw lines
//! of one group: they run in the same process, on the same disk.

use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use annals::{LogConfig, PartitionLog, Record};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const VALUE_BYTES: usize = 100;
const BATCH: usize = 100;
/// Log size at which the append bench truncates (untimed) to start over, so
/// a long run does not fill the disk.
const RESET_BYTES: u64 = 512 << 20;
const READ_RECORDS: u64 = 1_000_000;
const RAW_IO_BYTES: usize = 64 << 10;

fn batch() -> Vec<Record> {
    (0..BATCH).map(|i| Record::new(vec![i as u8; VALUE_BYTES]).timestamp_ms(1_700_000_000_000)).collect()
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_100B_x100");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(8));
    let records = batch();

    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path().join("p-0"), LogConfig::default()).unwrap();
    group.bench_function("annals", |b| {
        b.iter_custom(|iters| {
            let mut busy = Duration::ZERO;
            for _ in 0..iters {
                if log.size_bytes() > RESET_BYTES {
                    log.truncate_to(log.log_start_offset()).unwrap();
                }
                let start = Instant::now();
                log.append(&records).unwrap();
                busy += start.elapsed();
            }
            busy
        })
    });

    let path = dir.path().join("raw.bin");
    let mut file = File::create(&path).unwrap();
    let mut buf: Vec<u8> = Vec::with_capacity(RAW_IO_BYTES * 2);
    let mut written = 0u64;
    group.bench_function("raw_framed_write", |b| {
        b.iter_custom(|iters| {
            let mut busy = Duration::ZERO;
            for _ in 0..iters {
                if written > RESET_BYTES {
                    file.set_len(0).unwrap();
                    file = File::create(&path).unwrap();
                    written = 0;
                }
                let start = Instant::now();
                for r in &records {
                    let value = r.value.as_deref().unwrap();
                    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    buf.extend_from_slice(&crc32fast::hash(value).to_le_bytes());
                    buf.extend_from_slice(value);
                }
                if buf.len() >= RAW_IO_BYTES {
                    file.write_all(&buf).unwrap();
                    written += buf.len() as u64;
                    buf.clear();
                }
                busy += start.elapsed();
            }
            busy
        })
    });
    group.finish();
}

fn sequential_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path().join("p-0"), LogConfig::default()).unwrap();
    let records = batch();
    let raw_path = dir.path().join("raw.bin");
    let mut raw = std::io::BufWriter::with_capacity(RAW_IO_BYTES, File::create(&raw_path).unwrap());
    for _ in 0..READ_RECORDS / BATCH as u64 {
        log.append(&records).unwrap();
        for r in &records {
            let value = r.value.as_deref().unwrap();
            raw.write_all(&(value.len() as u32).to_le_bytes()).unwrap();
            raw.write_all(&crc32fast::hash(value).to_le_bytes()).unwrap();
            raw.write_all(value).unwrap();
        }
    }
    raw.flush().unwrap();
    drop(raw);

    let mut group = c.benchmark_group("sequential_read_1M_x_100B");
    group.throughput(Throughput::Elements(READ_RECORDS));
    group.sample_size(20);
    group.bench_function("annals", |b| {
        b.iter(|| {
            let (mut offset, mut seen, mut bytes) = (0u64, 0u64, 0usize);
            while offset < log.log_end_offset() {
                let fetched = log.read(offset, 1 << 20).unwrap();
                for r in fetched.records() {
                    bytes += r.value.map_or(0, <[u8]>::len);
                    seen += 1;
                }
                offset = fetched.next_offset().unwrap();
            }
            assert_eq!(seen, READ_RECORDS);
            bytes
        })
    });
    group.bench_function("raw_framed_read", |b| {
        b.iter(|| {
            let mut file = File::open(&raw_path).unwrap();
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
        })
    });
    group.finish();
}

criterion_group!(benches, append, sequential_read);
criterion_main!(benches);
