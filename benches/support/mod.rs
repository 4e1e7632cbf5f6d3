//! What the benches that compare annals with a raw file share: a log that
//! starts over before writeback kicks in, the raw writer, and the
//! alternating-rounds measurement.
#![allow(dead_code, reason = "each bench uses part of it")]

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use annals::ReadBound;
use annals::{LogConfig, PartitionLog, ProduceMeta, Record};

/// Log size at which append benches truncate (untimed) to start over. Kept
/// small so the dirty page cache stays far below the kernel's background
/// writeback threshold: writeback kicking in mid-run slows both sides by
/// the same amount and flatters the ratio.
pub const RESET_BYTES: u64 = 64 << 20;
pub const RAW_IO_BYTES: usize = 64 << 10;
/// Alternating rounds per side in the ratio measurements (median taken),
/// after `WARM_ROUNDS` discarded ones: right after a process starts (or
/// another bench freed its files) the kernel's page allocation is slower
/// for a while, which adds the same cost to both sides and flatters the
/// ratio.
pub const ROUNDS: usize = 9;
pub const WARM_ROUNDS: usize = 4;

/// A partition log that starts over in a new directory (untimed) once it
/// holds `RESET_BYTES`: the old one is closed (synced) and deleted, so no
/// writeback of it runs while the next appends are timed.
pub struct FreshLog {
    root: std::path::PathBuf,
    config: LogConfig,
    fs: annals::io::SharedFs,
    generation: u32,
    log: Option<PartitionLog>,
}

impl FreshLog {
    pub fn new(root: std::path::PathBuf) -> Self {
        Self::with_config(root, LogConfig::default())
    }

    /// A log of `config` (its `compression_type`, say).
    pub fn with_config(root: std::path::PathBuf, config: LogConfig) -> Self {
        Self::with_fs(root, config, std::sync::Arc::new(annals::io::StdFileSystem))
    }

    /// A log on `fs` (a `FilePool`, say).
    pub fn with_fs(root: std::path::PathBuf, config: LogConfig, fs: annals::io::SharedFs) -> Self {
        let mut fresh = FreshLog { root, config, fs, generation: 0, log: None };
        fresh.reset();
        fresh
    }

    /// The log now (it changes at each start-over).
    pub fn log(&self) -> &PartitionLog {
        self.log.as_ref().unwrap()
    }

    fn reset(&mut self) {
        if let Some(log) = self.log.take() {
            log.close().unwrap();
            drop(log);
            std::fs::remove_dir_all(self.root.join(self.generation.to_string())).unwrap();
        }
        self.generation += 1;
        let dir = self.root.join(self.generation.to_string());
        self.log = Some(
            PartitionLog::open_with(
                dir,
                self.config.clone(),
                annals::OpenOptions::default().with_fs(self.fs.clone()),
            )
            .unwrap(),
        );
    }

    /// One append of `batch`, timed.
    pub fn append(&mut self, batch: &[Record]) -> Duration {
        self.timed(|log| {
            log.append(batch).unwrap();
        })
    }

    /// One pass-through append of a producer's ready-made batch (one
    /// batch), timed. The append stamps the batch's base offset in place;
    /// it is set back to 0 untimed, as a producer sends it (Kafka's broker,
    /// and annals, refuse any other).
    pub fn append_batches(&mut self, batch: &mut [u8]) -> Duration {
        annals::format::set_base_offset(batch, 0);
        self.timed(|log| {
            log.append_batches(batch, ProduceMeta::leader_epoch(1)).unwrap();
        })
    }

    /// `append` on the log, timed; the start-over beforehand is not.
    pub fn timed(&mut self, append: impl FnOnce(&PartitionLog)) -> Duration {
        if self.log.as_ref().unwrap().size_bytes() > RESET_BYTES {
            self.reset();
        }
        let log = self.log.as_ref().unwrap();
        let start = Instant::now();
        append(log);
        start.elapsed()
    }
}

/// Frames `records` as `len | crc32 | value` into `buf`.
pub fn frame(buf: &mut Vec<u8>, records: &[Record]) {
    for r in records {
        let value = r.value.as_deref().unwrap();
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(value).to_le_bytes());
        buf.extend_from_slice(value);
    }
}

/// The raw framed writer: frames each batch and writes whenever `flush_at`
/// bytes are pending (64 KiB: the limit; 0: one `write()` per batch).
pub struct RawWriter {
    path: std::path::PathBuf,
    file: File,
    buf: Vec<u8>,
    written: u64,
    flush_at: usize,
}

impl RawWriter {
    pub fn new(path: std::path::PathBuf, flush_at: usize) -> Self {
        let file = File::create(&path).unwrap();
        RawWriter { path, file, buf: Vec::with_capacity(RAW_IO_BYTES * 2), written: 0, flush_at }
    }

    pub fn append(&mut self, records: &[Record]) -> Duration {
        self.start_over_when_full();
        let start = Instant::now();
        frame(&mut self.buf, records);
        if self.buf.len() >= self.flush_at {
            self.file.write_all(&self.buf).unwrap();
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        start.elapsed()
    }

    /// Writes `bytes` as they are with one `write()`: the raw baseline of a
    /// pass-through append.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Duration {
        self.start_over_when_full();
        let start = Instant::now();
        self.file.write_all(bytes).unwrap();
        self.written += bytes.len() as u64;
        start.elapsed()
    }

    /// As FreshLog: synced, deleted, and a new file (untimed).
    fn start_over_when_full(&mut self) {
        if self.written > RESET_BYTES {
            self.file.sync_all().unwrap();
            std::fs::remove_file(&self.path).unwrap();
            self.file = File::create(&self.path).unwrap();
            self.written = 0;
        }
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Nanoseconds per call of each side, medians over alternating rounds of
/// `calls` calls: the sides see the same machine state, round by round.
pub fn alternate<const N: usize>(calls: u64, sides: &mut [&mut dyn FnMut() -> Duration; N]) -> [f64; N] {
    let mut per_side: Vec<Vec<f64>> = vec![Vec::new(); N];
    for round in 0..WARM_ROUNDS + ROUNDS {
        for (side, f) in sides.iter_mut().enumerate() {
            let busy: Duration = (0..calls).map(|_| f()).sum();
            if round >= WARM_ROUNDS {
                per_side[side].push(busy.as_nanos() as f64 / calls as f64);
            }
        }
    }
    let mut out = [0.0; N];
    for (o, v) in out.iter_mut().zip(per_side) {
        *o = median(v);
    }
    out
}

/// Every record of `log` read in order, each decoded: the records and the
/// bytes of their values.
pub fn read_all(log: &PartitionLog) -> (u64, usize) {
    let (mut offset, mut seen, mut bytes) = (0u64, 0u64, 0usize);
    while offset < log.log_end_offset() {
        let fetched = log.read(offset, 1 << 20, ReadBound::LogEnd).unwrap();
        for r in fetched.records() {
            bytes += r.value.map_or(0, <[u8]>::len);
            seen += 1;
        }
        offset = fetched.next_offset().unwrap();
    }
    (seen, bytes)
}

/// Bytes of keys and values in `records`.
pub fn payload_bytes(records: &[Record]) -> u64 {
    records
        .iter()
        .map(|r| r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
        .sum::<usize>() as u64
}
