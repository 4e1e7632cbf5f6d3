//! The synced-data fault class of the crash enumeration: at every crash
//! point of a workload, each disk image also gets one byte flipped at a
//! random position inside an *acknowledged* batch (bit rot in fsynced
//! bytes, which no crash causes), and recovery must not cut the records
//! there silently: it refuses the log with a typed corruption, keeps every
//! acknowledged record (the damaged batch failing its read), or, inside the
//! synced extent's lag window, cuts them into a quarantine file its report
//! names. The images without a flip (plain power cuts) must all open.

use std::path::Path;

use annals::format::{peek_batch_len, BatchHeader};
use annals::io::sim::{CrashMode, SimFs};
use annals::io::{FileSystem, OpenMode};
use annals::{Error, LogConfig};

use super::crash::{open, Rec, State, Workload, DIR};
use annals::ReadBound;

/// Totals of a flip enumeration.
#[derive(Debug, Default)]
pub struct FlipReport {
    pub crash_points: u64,
    /// Images with no flip (plain power cuts) and how many were refused.
    pub plain_images: u64,
    pub plain_refusals: u64,
    /// Flips into acknowledged batches.
    pub flips: u64,
    /// ... the open refused (typed corruption; nothing cut).
    pub refused: u64,
    /// ... the log opened holding every acknowledged offset.
    pub kept_whole: u64,
    /// ... acknowledged records cut, into a quarantine file the report names.
    pub quarantined: u64,
    pub acked_records_quarantined: usize,
    /// ... of them, in a batch a truncation inside it was rewriting when
    /// the crash came (its intent torn, so the old batch stands, unvouched).
    pub quarantined_in_truncation: usize,
    /// Where the first of them happened.
    pub quarantine_examples: Vec<String>,
    /// Acknowledged records missing with no refusal and no quarantine.
    pub records_lost_silently: usize,
    /// Records returned that were not written at their offset.
    pub corrupt_records: usize,
    pub failures: Vec<String>,
}

impl FlipReport {
    /// One line of figures.
    pub fn summary(&self, name: &str) -> String {
        format!(
            "{name}: {} crash points, {} plain images ({} refused), {} flips: {} refused, {} kept whole, \
             {} quarantined ({} acknowledged records, {} of a batch being rewritten by a truncation), \
             {} acknowledged records lost silently, {} corrupt, {} failures",
            self.crash_points,
            self.plain_images,
            self.plain_refusals,
            self.flips,
            self.refused,
            self.kept_whole,
            self.quarantined,
            self.acked_records_quarantined,
            self.quarantined_in_truncation,
            self.records_lost_silently,
            self.corrupt_records,
            self.failures.len()
        )
    }
}

/// A small deterministic generator (xorshift64*), so runs replay.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// (file, position, length) of every batch holding only offsets below
/// `acked`, walking each segment's headers as long as they chain.
fn acked_batches(image: &SimFs, acked: u64) -> Vec<(String, u64, u64)> {
    let mut names = image.list_dir(Path::new(DIR)).unwrap_or_default();
    names.retain(|n| n.ends_with(".log"));
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let data = image.read_file(&Path::new(DIR).join(&name)).unwrap_or_default();
        let mut pos = 0usize;
        // Bounded: each step advances by a whole batch.
        while let Some(len) = peek_batch_len(&data[pos..]).map(|l| l as usize) {
            let Ok(header) = BatchHeader::parse(&data[pos..]) else { break };
            if len == 0 || pos + len > data.len() {
                break;
            }
            if header.last_offset() < acked {
                out.push((name.clone(), pos as u64, len as u64));
            }
            pos += len;
        }
    }
    out
}

/// A copy of `image` with one byte of `file` at `at` flipped (durably).
fn flipped(image: &SimFs, file: &str, at: u64, mask: u8) -> SimFs {
    let copy = image.crash_image(CrashMode::AllPending);
    let path = Path::new(DIR).join(file);
    let mut byte = [0u8];
    let handle = copy.open(&path, OpenMode::Existing).unwrap();
    annals::io::read_exact_at(&*handle, &mut byte, at).unwrap();
    handle.write_all_at(&[byte[0] ^ mask], at).unwrap();
    handle.sync_data().unwrap();
    copy
}

/// Crashes `workload` at every operation; checks `seeds` seeded images,
/// the durable-only and all-pending ones, each as it is and with `flips`
/// flips (one per copy) into acknowledged batches.
pub fn enumerate_flips(workload: Workload, config: &LogConfig, seeds: u64, flips: u64) -> FlipReport {
    let dry = SimFs::new();
    let mut t = super::crash::Tracker::default();
    workload(&dry, &mut t).expect("the workload runs without a crash");
    let total = dry.op_count();
    let mut report = FlipReport::default();
    for point in 0..=total {
        let fs = SimFs::new();
        fs.crash_at(point);
        let mut tracker = super::crash::Tracker::default();
        let _ = workload(&fs, &mut tracker);
        let allowed = tracker.allowed();
        let truncating = tracker.killed_truncating();
        report.crash_points += 1;
        let acked = allowed.iter().map(|s| s.durable).min().unwrap_or(0) as u64;
        let modes = [CrashMode::DurableOnly, CrashMode::AllPending]
            .into_iter()
            .chain((0..seeds).map(|s| CrashMode::Seeded(point * 1000 + s)));
        for mode in modes {
            let image = fs.crash_image(mode);
            report.plain_images += 1;
            if let Err(e) = open(&image.crash_image(CrashMode::AllPending), config) {
                report.plain_refusals += 1;
                report.failures.push(format!("crash at op {point} ({mode:?}), no flip: refused: {e}"));
            }
            let batches = acked_batches(&image, acked);
            let mut rng = Rng(point.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (report.plain_images << 17) | 1);
            for f in 0..flips.min(batches.len() as u64 * 8) {
                let (file, pos, len) = &batches[rng.below(batches.len() as u64) as usize];
                let at = pos + rng.below(*len);
                let mask = 1u8 << rng.below(8);
                report.flips += 1;
                let copy = flipped(&image, file, at, mask);
                let where_ = format!("crash at op {point} ({mode:?}), flip {f} at {file}:{at}");
                let quarantined = report.acked_records_quarantined;
                judge_flip(&copy, config, &allowed, acked, &where_, &mut report);
                if truncating {
                    report.quarantined_in_truncation += report.acked_records_quarantined - quarantined;
                }
            }
        }
    }
    report
}

fn judge_flip(
    image: &SimFs,
    config: &LogConfig,
    allowed: &[State],
    acked: u64,
    at: &str,
    report: &mut FlipReport,
) {
    let log = match open(image, config) {
        Err(Error::Corruption { .. }) => {
            report.refused += 1;
            return;
        }
        Err(e) => {
            report.failures.push(format!("{at}: open failed without a typed corruption: {e}"));
            return;
        }
        Ok(log) => log,
    };
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    // Every record returned must be one written at its offset; a damaged
    // batch may fail its read (skipped one offset at a time).
    let mut offset = start;
    while offset < end {
        match log.read(offset, 4096, ReadBound::LogEnd) {
            Ok(fetched) => {
                let mut last = offset;
                for r in fetched.records() {
                    let got = Rec {
                        key: r.key.map(bytes::Bytes::copy_from_slice),
                        value: r.value.map(bytes::Bytes::copy_from_slice),
                        timestamp_ms: r.timestamp_ms,
                    };
                    let written = allowed.iter().any(|s| s.records.get(r.offset as usize) == Some(&got));
                    if !written {
                        report.corrupt_records += 1;
                        report.failures.push(format!("{at}: record at {} was not written there", r.offset));
                    }
                    last = r.offset;
                }
                offset = last + 1;
            }
            Err(Error::Corruption { .. }) => offset += 1,
            Err(e) => {
                report.failures.push(format!("{at}: read at {offset}: {e}"));
                return;
            }
        }
    }
    if end >= acked || start >= acked {
        report.kept_whole += 1;
        return;
    }
    let missing = (acked - end) as usize;
    let recovery = log.recovery_report();
    if recovery.quarantined.first().is_some_and(|q| q.first_offset == end) {
        report.quarantined += 1;
        report.acked_records_quarantined += missing;
        if report.quarantine_examples.len() < 5 {
            report.quarantine_examples.push(format!("{at}: log end {end}, acknowledged {acked}"));
        }
    } else {
        report.records_lost_silently += missing;
        report.failures.push(format!(
            "{at}: {missing} acknowledged records cut with no refusal and no quarantine (log end {end}, acknowledged {acked})"
        ));
    }
}
