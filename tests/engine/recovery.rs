//! Recovery: torn tails are cut, damage in the middle is reported, derived
//! files (indexes) are rebuilt, garbage is repaired without losing records.

use annals_testkit as common;

use std::fs;
use std::path::Path;

use annals::{Corruption, Error, LogConfig, PartitionLog};
use annals::{OpenError, ReadBound};
use common::*;

const MARKER: &str = annals::log::CLEAN_SHUTDOWN_FILE;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A closed log of `n` records in batches of `batch`; returns the size of
/// the last segment before its last batch.
fn fixture(dir: &Path, n: u64, batch: u64) -> u64 {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, 0, n - batch, batch);
    let before_last = fs::metadata(log_files(dir).last().unwrap()).unwrap().len();
    append_range(&log, n - batch, n, batch);
    assert_eq!(log_files(dir).len(), log.segment_count());
    log.close().unwrap();
    drop(log);
    before_last
}

/// Like [`fixture`], but the last batch is appended after a reopen and never
/// fsynced: the process is killed (the page cache keeps it).
fn fixture_unsynced_last(dir: &Path, n: u64, batch: u64) -> u64 {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, 0, n - batch, batch);
    log.close().unwrap();
    drop(log);
    let sizes =
        |dir: &Path| log_files(dir).iter().map(|f| fs::metadata(f).unwrap().len()).collect::<Vec<_>>();
    let before = sizes(dir);
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, n - batch, n, batch);
    crash(log);
    // The batch went to the last segment, or rolled to a new one.
    before.get(sizes(dir).len() - 1).copied().unwrap_or(0)
}

#[test]
fn torn_unsynced_last_batch_is_cut_at_every_byte() {
    let template = tempfile::tempdir().unwrap();
    let (n, batch) = (120, 4);
    let before_last = fixture_unsynced_last(template.path(), n, batch);
    let last = log_files(template.path()).pop().unwrap();
    let full = fs::metadata(&last).unwrap().len();
    assert!(full > before_last);
    for cut in before_last..full {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let seg = dir.path().join(last.file_name().unwrap());
        fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        let report = log.recovery_report();
        assert_eq!(report.bytes_truncated, cut - before_last, "cut {cut}");
        assert!(report.quarantined.is_empty(), "a plain torn tail is cut, not kept");
        assert_holds(&log, n - batch);
        // The log goes on from the cut, with no gap or duplicate.
        append_range(&log, n - batch, n, 2);
        assert_holds(&log, n);
    }
}

/// The same cut in bytes a clean close fsynced is damage to acknowledged
/// records: refused at every byte, with or without the clean-shutdown
/// marker, and nothing is changed.
#[test]
fn a_cut_into_fsynced_bytes_is_refused_at_every_byte() {
    let template = tempfile::tempdir().unwrap();
    let (n, batch) = (120, 4);
    let before_last = fixture(template.path(), n, batch);
    let last = log_files(template.path()).pop().unwrap();
    let full = fs::metadata(&last).unwrap().len();
    for clean_marker in [false, true] {
        for cut in before_last..full {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template.path(), dir.path());
            if !clean_marker {
                fs::remove_file(dir.path().join(MARKER)).unwrap();
            }
            let seg = dir.path().join(last.file_name().unwrap());
            fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
            match PartitionLog::open(dir.path(), small_config()) {
                Err(Error::Corruption {
                    path,
                    detail: Corruption::SyncedData { synced_end_offset, .. },
                    ..
                }) => {
                    assert_eq!(path, seg);
                    assert_eq!(synced_end_offset, Some(n), "cut {cut}, marker {clean_marker}");
                }
                other => panic!("cut {cut}, marker {clean_marker}: expected a refusal, got {other:?}"),
            }
            assert_eq!(fs::metadata(&seg).unwrap().len(), cut, "nothing was cut");
        }
    }
}

#[test]
fn flipped_byte_in_middle_of_a_durable_segment_is_reported_at_open() {
    // No index entries: a clean open checks the whole (durable) segment.
    let config = LogConfig { segment_bytes: 1 << 20, index_interval_bytes: 1 << 20, ..LogConfig::default() };
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    append_range(&log, 0, 40, 4);
    log.close().unwrap();
    drop(log);
    let seg = log_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let at = bytes.len() / 3 + 70; // inside an early batch, past its header
    bytes[at] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    match PartitionLog::open(dir.path(), config) {
        Err(Error::Corruption { path, position, detail: Corruption::SyncedData { problem, .. } }) => {
            assert!(matches!(*problem, Corruption::Batch(_)), "{problem:?}");
            assert_eq!(path, seg);
            assert!(position <= at as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // Nothing was cut: the damaged file is intact for inspection or repair.
    assert_eq!(fs::read(&seg).unwrap(), bytes);
}

#[test]
fn flipped_byte_below_the_recovery_point_fails_the_read_not_the_log() {
    let template = tempfile::tempdir().unwrap();
    fixture(template.path(), 40, 4);
    let last = log_files(template.path()).pop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template.path(), dir.path());
    fs::remove_file(dir.path().join(MARKER)).unwrap(); // unclean, but all below the recovery point
    let seg = dir.path().join(last.file_name().unwrap());
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 40, "durable bytes are never cut");
    let mut errors = 0;
    for offset in log.log_start_offset()..40 {
        if let Err(e) = log.read(offset, 1, ReadBound::LogEnd) {
            assert!(matches!(e, Error::Corruption { .. }), "{e}");
            errors += 1;
        }
    }
    assert!(errors > 0, "the damaged batch is reported when read");
    assert_eq!(fs::read(&seg).unwrap(), bytes);
}

#[test]
fn flipped_byte_in_sealed_segment_fails_the_read_not_the_log() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 200, 5);
    let first = log_files(dir.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    bytes[100] ^= 0x80;
    fs::write(&first, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(matches!(log.read(0, 1 << 20, ReadBound::LogEnd), Err(Error::Corruption { .. })));
    // Later segments are still readable.
    let second = log.segment_base_offsets()[1];
    assert_eq!(log.read(second, 10, ReadBound::LogEnd).unwrap().to_records()[0].offset, second);
}

#[test]
fn garbage_appended_to_segments_is_cut() {
    for segment in [0usize, 1, usize::MAX] {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path(), 200, 5);
        let files = log_files(dir.path());
        let target = files.get(segment).unwrap_or_else(|| files.last().unwrap());
        let mut bytes = fs::read(target).unwrap();
        bytes.extend((0..777u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        fs::write(target, &bytes).unwrap();
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        let report = log.recovery_report();
        assert_eq!(report.bytes_truncated, 777);
        assert_holds(&log, 200);
        // No crash wrote them: they are kept aside, not destroyed.
        let [kept] = &report.quarantined[..] else { panic!("{report:?}") };
        assert_eq!(&kept.segment, target);
        assert_eq!(fs::read(&kept.path).unwrap(), bytes[bytes.len() - 777..]);
    }
}

#[test]
fn missing_empty_or_garbage_indexes_are_rebuilt() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("missing", |p| fs::remove_file(p).unwrap()),
        ("empty", |p| fs::write(p, b"").unwrap()),
        ("garbage", |p| {
            let len = fs::metadata(p).unwrap().len() as usize;
            fs::write(p, (0..len).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>()).unwrap()
        }),
        ("shifted", |p| {
            // Plausible (increasing) entries pointing one byte off.
            let mut b = fs::read(p).unwrap();
            for e in b.chunks_mut(8) {
                e[4] = e[4].wrapping_add(1);
            }
            fs::write(p, b).unwrap()
        }),
    ];
    for (name, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path(), 400, 3);
        let index = log_files(dir.path())[0].with_extension("index");
        assert!(fs::metadata(&index).unwrap().len() > 0, "fixture has index entries");
        damage(&index);
        let log = PartitionLog::open(dir.path(), small_config()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_holds(&log, 400);
        for offset in 0..50 {
            assert_eq!(
                log.read(offset, 1, ReadBound::LogEnd).unwrap().to_records()[0].offset,
                offset,
                "{name}"
            );
        }
    }
}

#[test]
fn orphan_index_is_removed_and_missing_segment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 200, 5);
    let orphan = dir.path().join(format!("{:020}.index", 999_999));
    fs::write(&orphan, [1u8; 16]).unwrap();
    drop(PartitionLog::open(dir.path(), small_config()).unwrap());
    assert!(!orphan.exists());

    let files = log_files(dir.path());
    fs::remove_file(&files[1]).unwrap();
    match PartitionLog::open(dir.path(), small_config()) {
        // The segment before the gap ends short of the next one's base:
        // the records in between were fsynced and are gone.
        Err(Error::Corruption { path, detail: Corruption::SyncedData { synced_end_offset, .. }, .. }) => {
            assert_eq!(path, files[0]);
            assert_eq!(
                synced_end_offset,
                Some(
                    annals::inspect::parse_file_name(&files[2].file_name().unwrap().to_string_lossy())
                        .unwrap()
                        .0
                )
            );
        }
        other => panic!("expected a segment gap, got {other:?}"),
    }
}

#[test]
fn unclean_stop_with_preallocated_index_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    append_range(&log, 0, 90, 3);
    crash(log);
    assert_eq!(fs::metadata(dir.path().join(MARKER)).map_or(1, |m| m.len()), 1, "no empty marker: unclean");
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(!log.recovery_report().clean_shutdown);
    assert_holds(&log, 90);
    append_range(&log, 90, 100, 3);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(log.recovery_report().clean_shutdown);
    assert_holds(&log, 100);
}

#[test]
fn unexpected_file_in_partition_dir_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 50, 5);
    let stray = dir.path().join("notes.txt");
    fs::write(&stray, b"mine").unwrap();
    match PartitionLog::open(dir.path(), small_config()) {
        Err(Error::Open(OpenError::UnexpectedFile { path })) => assert_eq!(path, stray),
        other => panic!("expected UnexpectedFile, got {other:?}"),
    }
    assert_eq!(fs::read(&stray).unwrap(), b"mine");
    fs::remove_file(&stray).unwrap();
    assert_holds(&PartitionLog::open(dir.path(), small_config()).unwrap(), 50);
}

/// Regression (found by the byte sweep): a batch's base offset sits outside
/// the CRC; a flipped one used to be trusted by reads, which then reported
/// its records at the wrong offsets.
#[test]
fn regression_flipped_base_offset_never_misplaces_records() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 40, 4);
    let first = log_files(dir.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    // Kafka's length field counts the bytes after it.
    let second_batch = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize + 12;
    bytes[second_batch + 7] ^= 0x02; // base offset of the second batch (big-endian): 4 -> 6
    fs::write(&first, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for offset in 0..12 {
        match log.read(offset, 1, ReadBound::LogEnd) {
            Ok(fetched) => {
                for r in fetched.records() {
                    assert_eq!(r.value, record(r.offset).value.as_deref(), "record at {}", r.offset);
                }
            }
            Err(e) => assert!(
                matches!(e, Error::Corruption { detail: Corruption::OffsetMismatch { .. }, .. }),
                "{e}"
            ),
        }
    }
}
