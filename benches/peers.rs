//! annals next to the crates a user would pick instead, and to the raw
//! file, on the same data: one partition, 100-byte values in batches of
//! 100, no fsync. Each side appends `BATCHES_PER_ROUND` batches per round;
//! rounds alternate between the sides (after warm-up rounds), and the
//! medians are printed as records/s with their ratios, each line naming
//! its contract:
//!
//! - `annals` (default contract: each append is in the page cache when it
//!   returns, so `kill -9` loses nothing acknowledged), 1 producer, and 4
//!   producer threads on the one partition (write combining);
//! - `annals, write buffer`: the same with `write_buffer_bytes` at 64 KiB
//!   (the raw limit's write size) and at 1 MiB, 1 producer, the buffer
//!   written out at the end of each round (`write_buffered`, as seglog's
//!   round ends with its flush; a process crash loses what the buffer
//!   holds);
//! - `raw 1 MiB writes`: the raw limit with 1 MiB writes, beside the 1 MiB
//!   buffer;
//! - `raw one write per batch`: the batch framed (`len | crc32 | value` per
//!   record) and written with one `write()`, the same contract;
//! - `raw 64 KiB writes`: framed into a buffer written every 64 KiB, the
//!   large-write limit of the disk and page cache (a user-space buffer: a
//!   process crash loses up to 64 KiB);
//! - `commitlog` 0.2: one `append` of a 100-message `MessageBuf` per batch
//!   (one `write()` each, its documented path; the page-cache contract);
//! - `seglog` 0.3: `append_data` per record into its 16 KiB `BufWriter`,
//!   flushed at the end of each round (its documented fast path; a process
//!   crash loses what the buffer holds).
//!
//! Run: `cargo bench --bench peers`. Prints `peers ...` lines; criterion
//! then measures each side alone.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use annals::Record;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::{median, FreshLog, RawWriter, RAW_IO_BYTES, RESET_BYTES, ROUNDS, WARM_ROUNDS};

const BATCH: usize = 100;
const VALUE_BYTES: usize = 100;
const BATCHES_PER_ROUND: usize = 2_000;
const THREADS: usize = 4;

fn records() -> Vec<Record> {
    (0..BATCH).map(|i| Record::new(vec![i as u8; VALUE_BYTES])).collect()
}

/// commitlog in a directory it starts over in (untimed) past `RESET_BYTES`.
struct CommitlogSide {
    root: PathBuf,
    generation: u32,
    log: Option<commitlog::CommitLog>,
    written: u64,
}

impl CommitlogSide {
    fn new(root: PathBuf) -> Self {
        let mut side = CommitlogSide { root, generation: 0, log: None, written: 0 };
        side.reset();
        side
    }

    fn reset(&mut self) {
        if self.log.take().is_some() {
            std::fs::remove_dir_all(self.root.join(self.generation.to_string())).unwrap();
        }
        self.generation += 1;
        let options = commitlog::LogOptions::new(self.root.join(self.generation.to_string()));
        self.log = Some(commitlog::CommitLog::new(options).unwrap());
        self.written = 0;
    }

    fn append(&mut self, values: &[Vec<u8>]) {
        let mut buf = commitlog::message::MessageBuf::default();
        for v in values {
            buf.push(v).unwrap();
        }
        self.log.as_mut().unwrap().append(&mut buf).unwrap();
        self.written += (BATCH * VALUE_BYTES) as u64;
    }
}

/// seglog in a segment file it starts over in (untimed) when full.
struct SeglogSide {
    path: PathBuf,
    writer: Option<seglog::write::Writer<0>>,
}

impl SeglogSide {
    const SEGMENT_BYTES: usize = RESET_BYTES as usize + (32 << 20); // a round past the reset point fits

    fn new(path: PathBuf) -> Self {
        let mut side = SeglogSide { path, writer: None };
        side.reset();
        side
    }

    fn reset(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.close().unwrap();
            std::fs::remove_file(&self.path).unwrap();
        }
        self.writer = Some(seglog::write::Writer::<0>::create(&self.path, Self::SEGMENT_BYTES, 0).unwrap());
    }

    fn full(&self) -> bool {
        self.writer.as_ref().unwrap().write_offset() > RESET_BYTES
    }

    fn append(&mut self, values: &[Vec<u8>]) {
        let writer = self.writer.as_mut().unwrap();
        for v in values {
            writer.append_data(v).unwrap();
        }
    }
}

/// The sides, each appending one round of batches, timed.
struct Sides {
    records: Vec<Record>,
    values: Vec<Vec<u8>>,
    annals: FreshLog,
    annals_threads: FreshLog,
    annals_buffered: FreshLog,
    annals_buffered_large: FreshLog,
    raw_large: RawWriter,
    raw_per_batch: RawWriter,
    raw_limit: RawWriter,
    commitlog: CommitlogSide,
    seglog: SeglogSide,
}

const NAMES: [&str; 9] = [
    "annals, 1 producer",
    "annals, 4 producer threads",
    "raw one write per batch",
    "raw 64 KiB writes",
    "commitlog",
    "seglog",
    "annals, 64 KiB write buffer, 1 producer",
    "annals, 1 MiB write buffer, 1 producer",
    "raw 1 MiB writes",
];

/// The buffered sides' `write_buffer_bytes`.
const WRITE_BUFFER_BYTES: usize = 64 << 10;
const LARGE_WRITE_BYTES: usize = 1 << 20;

fn buffered(dir: PathBuf, bytes: usize) -> FreshLog {
    FreshLog::with_config(
        dir,
        annals::LogConfig { write_buffer_bytes: bytes, ..annals::LogConfig::default() },
    )
}

fn buffered_round(side: &mut FreshLog, records: &[Record]) -> Duration {
    let appends: Duration = (0..BATCHES_PER_ROUND).map(|_| side.append(records)).sum();
    appends + side.timed(|log| log.write_buffered().unwrap())
}

impl Sides {
    fn new(dir: &Path) -> Self {
        let records = records();
        let values = records.iter().map(|r| r.value.as_deref().unwrap().to_vec()).collect();
        Sides {
            records,
            values,
            annals: FreshLog::new(dir.join("annals")),
            annals_threads: FreshLog::new(dir.join("annals-threads")),
            annals_buffered: buffered(dir.join("annals-buffered"), WRITE_BUFFER_BYTES),
            annals_buffered_large: buffered(dir.join("annals-buffered-large"), LARGE_WRITE_BYTES),
            raw_large: RawWriter::new(dir.join("raw-large.bin"), LARGE_WRITE_BYTES),
            raw_per_batch: RawWriter::new(dir.join("raw-per-batch.bin"), 0),
            raw_limit: RawWriter::new(dir.join("raw-limit.bin"), RAW_IO_BYTES),
            commitlog: CommitlogSide::new(dir.join("commitlog")),
            seglog: SeglogSide::new(dir.join("seglog.bin")),
        }
    }

    /// One round of side `i`, timed (start-overs untimed).
    fn round(&mut self, i: usize) -> Duration {
        let (records, values) = (&self.records, &self.values);
        match i {
            0 => (0..BATCHES_PER_ROUND).map(|_| self.annals.append(records)).sum(),
            1 => {
                let rounds = BATCHES_PER_ROUND / THREADS;
                self.annals_threads.timed(|log| {
                    std::thread::scope(|s| {
                        for _ in 0..THREADS {
                            s.spawn(|| {
                                for _ in 0..rounds {
                                    log.append(records).unwrap();
                                }
                            });
                        }
                    })
                })
            }
            2 => (0..BATCHES_PER_ROUND).map(|_| self.raw_per_batch.append(records)).sum(),
            3 => (0..BATCHES_PER_ROUND).map(|_| self.raw_limit.append(records)).sum(),
            4 => {
                if self.commitlog.written > RESET_BYTES {
                    self.commitlog.reset();
                }
                let start = Instant::now();
                for _ in 0..BATCHES_PER_ROUND {
                    self.commitlog.append(values);
                }
                start.elapsed()
            }
            6 => buffered_round(&mut self.annals_buffered, records),
            7 => buffered_round(&mut self.annals_buffered_large, records),
            8 => (0..BATCHES_PER_ROUND).map(|_| self.raw_large.append(records)).sum(),
            _ => {
                if self.seglog.full() {
                    self.seglog.reset();
                }
                let start = Instant::now();
                for _ in 0..BATCHES_PER_ROUND {
                    self.seglog.append(values);
                }
                self.seglog.writer.as_mut().unwrap().flush_writer().unwrap();
                start.elapsed()
            }
        }
    }
}

fn records_per_s(round: Duration) -> f64 {
    (BATCHES_PER_ROUND * BATCH) as f64 / round.as_secs_f64()
}

fn peers(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut sides = Sides::new(dir.path());
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    for round in 0..WARM_ROUNDS + ROUNDS {
        for (i, rate) in rates.iter_mut().enumerate() {
            let r = records_per_s(sides.round(i));
            if round >= WARM_ROUNDS {
                rate.push(r);
            }
        }
    }
    let rate: Vec<f64> = rates.into_iter().map(median).collect();
    for (name, r) in NAMES.iter().zip(&rate) {
        eprintln!("peers (100 x 100 B, no fsync): {name}: {:.2}M records/s", r / 1e6);
    }
    let ratio = |a: usize, b: usize| rate[a] / rate[b];
    eprintln!(
        "peers ratio, 1 producer: annals / raw one write per batch = {:.2}x, / raw 64 KiB = {:.2}x, / commitlog = {:.2}x, / seglog = {:.2}x",
        ratio(0, 2),
        ratio(0, 3),
        ratio(0, 4),
        ratio(0, 5)
    );
    eprintln!(
        "peers ratio, 64 KiB write buffer, 1 producer: annals / raw 64 KiB = {:.2}x, / seglog = {:.2}x, / annals unbuffered = {:.2}x",
        ratio(6, 3),
        ratio(6, 5),
        ratio(6, 0)
    );
    eprintln!(
        "peers ratio, 1 MiB write buffer, 1 producer: annals / raw 64 KiB = {:.2}x, / raw 1 MiB = {:.2}x, / seglog = {:.2}x",
        ratio(7, 3),
        ratio(7, 8),
        ratio(7, 5)
    );
    eprintln!(
        "peers ratio, {THREADS} producer threads: annals / raw 64 KiB = {:.2}x, / raw one write per batch = {:.2}x",
        ratio(1, 3),
        ratio(1, 2)
    );

    let mut group = c.benchmark_group("peers_100B_x100");
    group.throughput(Throughput::Elements((BATCHES_PER_ROUND * BATCH) as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    for (i, name) in NAMES.iter().enumerate() {
        let id = name.replace([',', ' '], "_").replace("__", "_");
        group.bench_function(id, |b| b.iter_custom(|iters| (0..iters).map(|_| sides.round(i)).sum()));
    }
    group.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
