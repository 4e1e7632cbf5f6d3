//! Recovery never silently drops an acknowledged record: damage to fsynced
//! bytes is refused with a typed error naming the file, the position and
//! the offsets it cannot vouch for, and only an explicit repair (which
//! keeps the cut bytes in a quarantine file) cuts there.
//!
//! Regression tests of issue 15's scenarios: on the main branch before the
//! synced extent, each open cut the acknowledged records after the flip.

use annals_testkit as common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annals::inspect::verify_partition;
use annals::io::StdFileSystem;
use annals::log::RECOVERY_POINT_FILE;
use annals::{AcceptDataLoss, Corruption, Durability, Error, LogConfig, PartitionLog};
use common::*;

fn config(durability: Durability) -> LogConfig {
    LogConfig { durability, ..LogConfig::default() }
}

fn flip(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

/// Opening must refuse with `SyncedData` at or before `at` in `segment`,
/// naming `first..end` as the records it cannot vouch for, and change
/// nothing.
fn assert_refused(dir: &Path, config: &LogConfig, segment: &Path, at: u64, acknowledged: u64) -> u64 {
    let before = fs::read(segment).unwrap();
    let first = match PartitionLog::open(dir, config.clone()) {
        Err(Error::Corruption {
            path,
            position,
            detail: Corruption::SyncedData { first_offset, synced_end_offset, .. },
        }) => {
            assert_eq!(path, segment);
            assert!(position <= at, "refused at {position}, the flip is at {at}");
            let end = synced_end_offset.expect("the synced extent is known");
            assert!(first_offset < end && end <= acknowledged, "offsets {first_offset}..{end}");
            first_offset
        }
        Err(e) => panic!("expected a refusal of synced data, got {e}"),
        Ok(log) => {
            panic!("the log opened with {} of {acknowledged} acknowledged records", log.log_end_offset())
        }
    };
    assert_eq!(fs::read(segment).unwrap(), before, "a refused open changes nothing");
    let report = verify_partition(&StdFileSystem, dir, &mut |_| {}).unwrap();
    assert!(!report.problems.is_empty(), "verify reports the damage");
    first
}

/// Repair cuts at the damage, keeps every cut byte in a quarantine file,
/// and the log then opens with the records before the damage intact.
fn assert_repairs(dir: &Path, config: &LogConfig, segment: &Path, first: u64) {
    let before = fs::read(segment).unwrap();
    let fs_: annals::io::SharedFs = Arc::new(StdFileSystem);
    let report = PartitionLog::repair(fs_, dir, config.clone(), AcceptDataLoss).unwrap();
    assert_eq!(report.log_end_offset, first);
    let kept: Vec<&annals::inspect::Quarantine> = report.quarantined.iter().collect();
    let [q] = kept[..] else { panic!("one quarantine file, got {kept:?}") };
    assert_eq!(q.first_offset, first);
    let cut = fs::read(&q.path).unwrap();
    assert_eq!(cut, before[q.position as usize..], "the quarantine holds the cut bytes exactly");
    assert_eq!(q.bytes, cut.len() as u64);
    let log = PartitionLog::open(dir, config.clone()).unwrap();
    assert_holds(&log, first);
    append_range(&log, first, first + 10, 5);
    assert_holds(&log, first + 10);
    log.close().unwrap();
    drop(log);
    let report = verify_partition(&StdFileSystem, dir, &mut |_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

fn active_segment(dir: &Path) -> PathBuf {
    log_files(dir).pop().unwrap()
}

/// Scenario 1: durable appends, the process killed, one byte flipped at a
/// third of the active segment (bit rot in acknowledged bytes above the
/// recovery point, which only moves at roll, flush and close).
#[test]
fn regression_kill_then_flip_in_acknowledged_batches_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(Durability::Always);
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let n = 30_000;
    append_range(&log, 0, n, 10);
    crash(log);
    let segment = active_segment(dir.path());
    let at = fs::metadata(&segment).unwrap().len() / 3;
    flip(&segment, at);
    let first = assert_refused(dir.path(), &config, &segment, at, n);
    // A second open refuses the same way: nothing was cut in between.
    assert_eq!(assert_refused(dir.path(), &config, &segment, at, n), first);
    assert_repairs(dir.path(), &config, &segment, first);
}

/// Scenario 2: a clean close, then the recovery-point file lost (or
/// damaged) and a flip: without the synced extent the whole active
/// segment was scanned as if nothing were durable, and cut at the flip.
#[test]
fn regression_lost_or_damaged_recovery_point_then_flip_is_refused() {
    for damage in ["lost", "damaged"] {
        let dir = tempfile::tempdir().unwrap();
        let config = config(Durability::None);
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let n = 50_000;
        append_range(&log, 0, n, 100);
        log.close().unwrap();
        drop(log);
        // The next process opens the log (removing the clean-shutdown
        // marker) and is killed before it writes anything.
        crash(PartitionLog::open(dir.path(), config.clone()).unwrap());
        let point = dir.path().join(RECOVERY_POINT_FILE);
        match damage {
            "lost" => fs::remove_file(&point).unwrap(),
            _ => fs::write(&point, b"annals-recovery-point 1\nsegment=0\nposition=9\n").unwrap(),
        }
        let segment = active_segment(dir.path());
        let at = fs::metadata(&segment).unwrap().len() * 2 / 3;
        flip(&segment, at);
        let first = assert_refused(dir.path(), &config, &segment, at, n);
        assert_repairs(dir.path(), &config, &segment, first);
    }
}

/// A flush covers what it flushed: after it, even with `Durability::None`,
/// a flip in the flushed bytes is refused (the recovery point file lost).
#[test]
fn a_flip_below_a_flush_is_refused_under_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(Durability::None);
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    append_range(&log, 0, 2_000, 10);
    log.flush().unwrap();
    append_range(&log, 2_000, 2_100, 10); // not flushed: a tail a crash may cut
    crash(log);
    fs::remove_file(dir.path().join(RECOVERY_POINT_FILE)).unwrap();
    let segment = active_segment(dir.path());
    let at = fs::metadata(&segment).unwrap().len() / 2;
    flip(&segment, at);
    assert_refused(dir.path(), &config, &segment, at, 2_000);
}

/// Past the synced extent, damage followed by valid batches may be a
/// crash's doing (later pages written, earlier ones not): the log opens,
/// but the cut bytes are kept in a quarantine file named in the report,
/// with the offsets they held.
#[test]
fn damage_past_the_synced_extent_followed_by_valid_batches_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(Durability::None);
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    append_range(&log, 0, 100, 10);
    log.flush().unwrap();
    let segment = active_segment(dir.path());
    let flushed = fs::metadata(&segment).unwrap().len();
    append_range(&log, 100, 200, 10);
    crash(log);
    let len = fs::metadata(&segment).unwrap().len();
    let before = fs::read(&segment).unwrap();
    let at = flushed + (len - flushed) / 3;
    flip(&segment, at);
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let report = log.recovery_report();
    let [q] = &report.quarantined[..] else { panic!("{report:?}") };
    assert!(log.log_end_offset() >= 100 && log.log_end_offset() < 200);
    assert_eq!(q.first_offset, log.log_end_offset());
    assert_eq!(q.end_offset, 200, "the valid batches after the damage end at 200");
    let mut kept = fs::read(&q.path).unwrap();
    kept[(at - q.position) as usize] ^= 0x10;
    assert_eq!(kept, before[q.position as usize..], "every cut byte is kept");
    assert_holds(&log, log.log_end_offset());
}
