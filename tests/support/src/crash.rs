//! The crash-enumeration harness: run a workload on the simulated file
//! system, kill it at every mutating I/O operation, build several disk
//! images per kill point, recover each, and check it against a model.

use std::path::Path;
use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::ReadBound;
use annals::{Durability, LogConfig, PartitionLog, Record};
use bytes::Bytes;

pub const DIR: &str = "/data/p-0";

/// A record as the model compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp_ms: i64,
}

/// What the log may hold: `records` (by offset), of which those below
/// `durable` must survive any crash unless below the log start, which is
/// somewhere in `start..=start_max` (retention may have moved it that far,
/// and no further).
#[derive(Clone, Debug, Default)]
pub struct State {
    pub records: Vec<Rec>,
    pub durable: usize,
    pub start: usize,
    pub start_max: usize,
}

/// Follows the workload: the state after each completed operation, and
/// the states a crash during the operation in flight may leave.
#[derive(Debug, Default)]
pub struct Tracker {
    pub current: State,
    in_flight: Option<State>,
    /// Whether the call in flight is a truncation.
    truncating: bool,
}

impl Tracker {
    /// Whether the workload was killed inside `truncate`.
    pub fn killed_truncating(&self) -> bool {
        self.truncating && self.in_flight.is_some()
    }

    /// States a recovered log may match.
    pub fn allowed(&self) -> Vec<State> {
        let mut v = vec![self.current.clone()];
        v.extend(self.in_flight.clone());
        v
    }

    fn run<T>(&mut self, after: State, op: impl FnOnce() -> annals::Result<T>) -> annals::Result<T> {
        self.in_flight = Some(after.clone());
        let result = op()?;
        self.current = after;
        self.in_flight = None;
        Ok(result)
    }

    pub fn append(
        &mut self,
        log: &PartitionLog,
        records: &[Record],
        policy: Durability,
    ) -> annals::Result<()> {
        let mut after = self.current.clone();
        after.records.extend(records.iter().map(|r| Rec {
            key: r.key.clone(),
            value: r.value.clone(),
            timestamp_ms: r.timestamp_ms.unwrap(),
        }));
        // Only an acknowledged append is promised; while in flight the
        // durable prefix stays as it was.
        let in_flight = State { durable: self.current.durable, ..after.clone() };
        self.in_flight = Some(in_flight);
        log.append(records)?;
        if policy == Durability::Always {
            after.durable = after.records.len();
        }
        self.current = after;
        self.in_flight = None;
        Ok(())
    }

    pub fn flush(&mut self, log: &PartitionLog) -> annals::Result<()> {
        let after = State { durable: self.current.records.len(), ..self.current.clone() };
        // While the flush runs nothing new is promised.
        self.in_flight = Some(self.current.clone());
        log.flush()?;
        self.current = after;
        self.in_flight = None;
        Ok(())
    }

    pub fn truncate(&mut self, log: &PartitionLog, offset: u64) -> annals::Result<()> {
        let mut after = self.current.clone();
        after.records.truncate(offset as usize);
        after.durable = after.durable.min(offset as usize);
        // A crash mid-truncation may leave any length between the new end
        // and the old one (the old records, cut somewhere past `offset`),
        // but never fewer than `offset` of the durable ones.
        self.in_flight = Some(State {
            records: self.current.records.clone(),
            durable: after.durable,
            ..self.current.clone()
        });
        self.truncating = true;
        log.truncate_to(offset)?;
        self.truncating = false;
        self.current = after;
        self.in_flight = None;
        Ok(())
    }

    pub fn roll(&mut self, log: &PartitionLog) -> annals::Result<()> {
        self.run(self.current.clone(), || log.roll())
    }

    pub fn delete_records_before(&mut self, log: &PartitionLog, offset: u64) -> annals::Result<()> {
        let target = self.current.start.max(offset as usize);
        self.in_flight = Some(State { start_max: target, ..self.current.clone() });
        log.delete_records_before(offset)?;
        self.current.start = target;
        self.current.start_max = target;
        self.in_flight = None;
        Ok(())
    }

    pub fn enforce_retention(&mut self, log: &PartitionLog) -> annals::Result<()> {
        // Which segments go depends on their sizes: while in flight, any
        // log start up to the end may result; once done, the log says.
        self.in_flight = Some(State { start_max: self.current.records.len(), ..self.current.clone() });
        log.enforce_retention()?;
        let start = log.log_start_offset() as usize;
        self.current.start = start;
        self.current.start_max = start;
        self.in_flight = None;
        Ok(())
    }

    pub fn close(&mut self, log: &PartitionLog) -> annals::Result<()> {
        let after = State { durable: self.current.records.len(), ..self.current.clone() };
        self.in_flight = Some(self.current.clone());
        log.close()?;
        self.current = after;
        self.in_flight = None;
        Ok(())
    }
}

pub fn record(i: u64) -> Record {
    let value = Bytes::from(format!("v{i}-{}", "x".repeat((i % 37) as usize)));
    let r = if i.is_multiple_of(5) { Record::tombstone(format!("k{}", i % 3)) } else { Record::new(value) };
    r.timestamp_ms(1_000 + i as i64)
}

thread_local! {
    /// `synced_extent_interval_bytes` of [`config`] on this thread (the
    /// default unless a test sets another).
    pub static EXTENT_INTERVAL: std::cell::Cell<u64> =
        std::cell::Cell::new(LogConfig::default().synced_extent_interval_bytes);
    /// `write_buffer_bytes` of [`config`] on this thread (0, off, unless a
    /// test sets another). Its delay is an hour: the timer thread never
    /// writes a buffer during an enumeration, so every run of a workload
    /// does the same I/O.
    pub static WRITE_BUFFER_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// `compression_type` of [`config`] on this thread (the default,
    /// `producer`, unless a test sets a codec).
    pub static COMPRESSION: std::cell::Cell<annals::CompressionType> =
        const { std::cell::Cell::new(annals::CompressionType::Producer) };
}

pub fn config(durability: Durability) -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 128,
        segment_index_bytes: 256,
        durability,
        synced_extent_interval_bytes: EXTENT_INTERVAL.with(|i| i.get()),
        write_buffer_bytes: WRITE_BUFFER_BYTES.with(|b| b.get()),
        write_buffer_max_delay_ms: 3_600_000,
        compression_type: COMPRESSION.with(|c| c.get()),
        ..LogConfig::default()
    }
}

/// Descriptors each log's file pool holds in the crash tests: a tiny
/// cache, so every crash point also runs with files closed and reopened
/// under the log (issue 20).
pub const POOL_FILES: usize = 8;

pub fn open(fs: &SimFs, config: &LogConfig) -> annals::Result<PartitionLog> {
    let pool = annals::io::FilePool::new(Arc::new(fs.clone()), POOL_FILES);
    PartitionLog::open_with(
        Path::new(DIR),
        config.clone(),
        annals::OpenOptions::default().with_fs(Arc::new(pool)),
    )
}

/// A workload: drives a log and tells the tracker what it did.
pub type Workload = fn(&SimFs, &mut Tracker) -> annals::Result<()>;

/// What one recovered image held: its log start and the records from there.
fn recover(fs: &SimFs, config: &LogConfig) -> Result<(usize, Vec<Rec>), String> {
    let log = open(fs, config).map_err(|e| format!("recovery failed: {e}"))?;
    let start = log.log_start_offset();
    let mut out = Vec::new();
    while start + (out.len() as u64) < log.log_end_offset() {
        let next = start + out.len() as u64;
        let fetched = log.read(next, 4096, ReadBound::LogEnd).map_err(|e| format!("read failed: {e}"))?;
        for r in fetched.records() {
            if r.offset != start + out.len() as u64 {
                return Err(format!("offset {} where {} was due: not contiguous", r.offset, next));
            }
            out.push(Rec {
                key: r.key.map(Bytes::copy_from_slice),
                value: r.value.map(Bytes::copy_from_slice),
                timestamp_ms: r.timestamp_ms,
            });
        }
    }
    Ok((start as usize, out))
}

/// Checks a recovered log (log start, records from it) against the allowed
/// states; counts lost and corrupt records.
fn judge(
    &(start, ref got): &(usize, Vec<Rec>),
    allowed: &[State],
    report: &mut Report,
) -> Result<(), String> {
    let end = start + got.len();
    for s in allowed {
        let start_ok = (s.start..=s.start_max).contains(&start);
        let matches = end <= s.records.len() && got[..] == s.records[start.min(end)..end];
        if start_ok && matches && end >= s.durable.max(start) {
            return Ok(());
        }
    }
    let best = &allowed[0];
    let corrupt = got.iter().zip(best.records.iter().skip(start)).filter(|(g, w)| g != w).count()
        + end.saturating_sub(allowed.iter().map(|s| s.records.len()).max().unwrap_or(0));
    let lost = allowed.iter().map(|s| s.durable.saturating_sub(end.max(start))).min().unwrap_or(0);
    report.records_lost += lost;
    report.corrupt_records += corrupt;
    let shapes: Vec<_> = allowed.iter().map(|s| (s.start, s.start_max, s.durable, s.records.len())).collect();
    Err(format!("recovered offsets {start}..{end}; allowed (start, start max, durable, len) {shapes:?}"))
}

/// Totals of an enumeration.
#[derive(Debug, Default)]
pub struct Report {
    pub crash_points: u64,
    pub images: u64,
    pub recovery_crash_points: u64,
    pub records_lost: usize,
    pub corrupt_records: usize,
    pub failures: Vec<String>,
}

/// How hard to look.
#[derive(Clone, Copy, Debug)]
pub struct Depth {
    /// Seeded images per crash point (plus durable-only and all-pending).
    pub seeds: u64,
    /// Crash points (every `n`th) at which recovery itself is crashed at
    /// each of its operations.
    pub recovery_crash_every: u64,
}

/// Crashes `workload` at every mutating operation and checks every image.
pub fn enumerate(
    workload: Workload,
    config: &LogConfig,
    depth: Depth,
    negative: Option<fn(&SimFs)>,
) -> Report {
    let dry = SimFs::new();
    let mut t = Tracker::default();
    workload(&dry, &mut t).expect("the workload runs without a crash");
    let total = dry.op_count();
    let mut report = Report::default();
    for point in 0..=total {
        let fs = SimFs::new();
        if let Some(weaken) = negative {
            weaken(&fs);
        }
        fs.crash_at(point);
        let mut tracker = Tracker::default();
        let _ = workload(&fs, &mut tracker);
        let allowed = tracker.allowed();
        report.crash_points += 1;
        let modes = [CrashMode::DurableOnly, CrashMode::AllPending]
            .into_iter()
            .chain((0..depth.seeds).map(|s| CrashMode::Seeded(point * 1000 + s)));
        for mode in modes {
            report.images += 1;
            let image = fs.crash_image(mode);
            let outcome = recover(&image, config).and_then(|got| {
                judge(&got, &allowed, &mut report)?;
                // Recovering again (after a crash right after recovery)
                // gives the same log.
                let again = recover(&image.crash_image(CrashMode::DurableOnly), config)?;
                if again != got {
                    return Err(format!(
                        "second recovery differs: start {} + {} vs start {} + {} records",
                        again.0,
                        again.1.len(),
                        got.0,
                        got.1.len()
                    ));
                }
                // Recover, append, power cut again: whatever recovery cut
                // must stay cut (nothing from before comes back behind the
                // new batch).
                let copy = image.crash_image(CrashMode::AllPending);
                let log = open(&copy, config).map_err(|e| format!("reopen: {e}"))?;
                let marker = Record::with_key("marker", "after recovery").timestamp_ms(7);
                log.append(std::slice::from_ref(&marker)).map_err(|e| format!("append after recovery: {e}"))?;
                let cut = copy.crash_image(CrashMode::Seeded(point ^ 0x5eed));
                drop(log);
                let third = recover(&cut, config)?;
                let marker_rec = Rec { key: marker.key.clone(), value: marker.value.clone(), timestamp_ms: 7 };
                let mut with_marker = got.1.clone();
                with_marker.push(marker_rec);
                if third.0 != got.0 || (third.1 != got.1 && third.1 != with_marker) {
                    return Err(format!(
                        "after recovery, an append and a crash: start {} + {} records, expected start {} + {} (+1)",
                        third.0,
                        third.1.len(),
                        got.0,
                        got.1.len()
                    ));
                }
                Ok(())
            });
            if let Err(e) = outcome {
                report.failures.push(format!("crash at op {point} ({mode:?}): {e}"));
            }
            if depth.recovery_crash_every > 0 && point % depth.recovery_crash_every == 0 {
                crash_during_recovery(&image, config, &allowed, point, &mut report);
            }
        }
    }
    report
}

/// Crashes recovery of `image` at each of its operations, then recovers the
/// result and checks it.
fn crash_during_recovery(
    image: &SimFs,
    config: &LogConfig,
    allowed: &[State],
    point: u64,
    report: &mut Report,
) {
    let probe = image.crash_image(CrashMode::AllPending);
    let start = probe.op_count();
    drop(open(&probe, config));
    let ops = probe.op_count() - start;
    for k in 0..ops {
        let fs = image.crash_image(CrashMode::AllPending);
        fs.crash_at(fs.op_count() + k);
        drop(open(&fs, config));
        report.recovery_crash_points += 1;
        for mode in [CrashMode::DurableOnly, CrashMode::Seeded(k)] {
            report.images += 1;
            let outcome = recover(&fs.crash_image(mode), config).and_then(|got| judge(&got, allowed, report));
            if let Err(e) = outcome {
                report
                    .failures
                    .push(format!("crash at op {point}, then in recovery at op {k} ({mode:?}): {e}"));
            }
        }
    }
}
