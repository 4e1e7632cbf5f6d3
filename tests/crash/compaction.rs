//! Crash enumeration over compaction runs: at every operation index, the
//! recovered partition holds the old or the new segments for each range
//! (every durable key's latest record, or a later one of its key, is
//! there; every record returned is the one written at its offset), opens
//! without a segment overlap or gap, and no temporary file survives.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::io::FileSystem;
use annals::ReadBound;
use annals::{CleanupPolicy, Durability, LogConfig, PartitionLog, Record};

const DIR: &str = "/data/c-0";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 100,
        segment_index_bytes: 256,
        cleanup_policy: CleanupPolicy::Compact,
        durability: Durability::Always,
        ..LogConfig::default()
    }
}

fn open(fs: &SimFs) -> annals::Result<PartitionLog> {
    PartitionLog::open_with(
        Path::new(DIR),
        config(),
        annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
    )
}

#[derive(Default)]
struct Written {
    /// (key, value) by offset, every append attempted.
    records: Vec<(u8, u64)>,
    /// Records acknowledged (durable under `always`).
    durable: usize,
}

fn append(log: &PartitionLog, w: &mut Written, n: u64) -> annals::Result<()> {
    let from = w.records.len() as u64;
    let batch: Vec<(u8, u64)> = (from..from + n).map(|i| ((i % 5) as u8, i)).collect();
    let records: Vec<Record> = batch.iter().map(|&(k, v)| Record::with_key(vec![k], v.to_string())).collect();
    w.records.extend(&batch);
    log.append(&records)?;
    w.durable = w.records.len();
    Ok(())
}

fn workload(fs: &SimFs, w: &mut Written) -> annals::Result<()> {
    let log = open(fs)?;
    for _ in 0..6 {
        append(&log, w, 3)?;
    }
    log.roll()?;
    log.compact()?;
    for _ in 0..4 {
        append(&log, w, 2)?;
    }
    log.roll()?;
    log.compact()?;
    log.close()?;
    drop(log);
    let log = open(fs)?;
    append(&log, w, 2)?;
    log.roll()?;
    log.compact()?;
    Ok(())
}

fn judge(image: &SimFs, w: &Written) -> Result<(), String> {
    let log = open(image).map_err(|e| format!("recovery failed: {e}"))?;
    let leftovers: Vec<String> = image
        .list_dir(Path::new(DIR))
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
        .collect();
    if !leftovers.is_empty() {
        return Err(format!("temporary files survived recovery: {leftovers:?}"));
    }
    let mut got: BTreeMap<u64, (u8, u64)> = BTreeMap::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let fetched = log.read(next, 4096, ReadBound::LogEnd).map_err(|e| format!("read at {next}: {e}"))?;
        for r in fetched.records() {
            let key = r.key.and_then(|k| k.first().copied()).ok_or("record without key")?;
            let value: u64 = std::str::from_utf8(r.value.ok_or("lost value")?)
                .map_err(|e| e.to_string())?
                .parse()
                .map_err(|e: std::num::ParseIntError| e.to_string())?;
            if w.records.get(r.offset as usize) != Some(&(key, value)) {
                return Err(format!(
                    "offset {} holds {:?}, written {:?}",
                    r.offset,
                    (key, value),
                    w.records.get(r.offset as usize)
                ));
            }
            got.insert(r.offset, (key, value));
        }
        next = fetched.next_offset().ok_or("empty fetch below the end")?;
    }
    if (log.log_end_offset() as usize) < w.durable {
        return Err(format!("log ends at {}, {} records were acknowledged", log.log_end_offset(), w.durable));
    }
    // Each key's latest acknowledged record, or a later one of its key.
    for key in 0..5u8 {
        let latest = (0..w.durable).rev().find(|&o| w.records[o].0 == key);
        if let Some(o) = latest {
            if !got.range(o as u64..).any(|(_, (k, _))| *k == key) {
                return Err(format!(
                    "key {key}: latest acknowledged record {o} and everything after it gone"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn compaction_survives_a_crash_at_every_operation() {
    let total = {
        let fs = SimFs::new();
        workload(&fs, &mut Written::default()).unwrap();
        fs.op_count()
    };
    let (mut images, mut failures) = (0u64, Vec::new());
    for point in 0..=total {
        let fs = SimFs::new();
        fs.crash_at(point);
        let mut w = Written::default();
        let _ = workload(&fs, &mut w);
        let modes = [
            CrashMode::DurableOnly,
            CrashMode::AllPending,
            CrashMode::Seeded(point),
            CrashMode::Seeded(point + 7),
        ];
        for mode in modes {
            images += 1;
            let image = fs.crash_image(mode);
            if let Err(e) = judge(&image, &w) {
                failures.push(format!("op {point} {mode:?}: {e}"));
            }
            // And after a crash right after that recovery.
            if let Err(e) = judge(&image.crash_image(CrashMode::DurableOnly), &w) {
                failures.push(format!("op {point} {mode:?}, recovered twice: {e}"));
            }
        }
    }
    eprintln!("compaction: {} crash points, {images} images, {} failures", total + 1, failures.len());
    assert!(total > 100, "the workload compacted (it did {total} operations)");
    assert!(failures.is_empty(), "{:#?}", &failures[..failures.len().min(8)]);
}
