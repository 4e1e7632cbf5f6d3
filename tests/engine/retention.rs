//! Time index lookups, time roll and retention, with an injected clock.

use std::sync::Arc;

use annals::io::StdFileSystem;
use annals::ReadBound;
use annals::{Error, LogConfig, ManualClock, PartitionLog, Record};
use proptest::prelude::*;

const DAY: i64 = 24 * 60 * 60 * 1000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>, config: LogConfig) -> PartitionLog {
    PartitionLog::open_with(
        dir,
        config,
        annals::OpenOptions::default().with_fs(Arc::new(StdFileSystem)).with_clock(clock.clone()),
    )
    .unwrap()
}

fn small(config: LogConfig) -> LogConfig {
    LogConfig { segment_bytes: 600, index_interval_bytes: 100, ..config }
}

/// Brute force: the first offset at or after `start` with a timestamp >= target.
fn brute(timestamps: &[i64], start: usize, target: i64) -> Option<u64> {
    (start..timestamps.len()).find(|&i| timestamps[i] >= target).map(|i| i as u64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn offset_for_timestamp_matches_a_brute_force_scan(
        batches in proptest::collection::vec(proptest::collection::vec(0i64..10_000, 1..6), 1..40),
        targets in proptest::collection::vec(-10i64..10_050, 1..20),
        reopen in 0u8..3,
        delete_before in 0usize..60,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(0));
        let mut log = open(dir.path(), &clock, small(LogConfig::default()));
        let mut timestamps = Vec::new();
        for batch in &batches {
            let records: Vec<Record> = batch.iter().map(|&t| Record::new(format!("{t}")).timestamp_ms(t)).collect();
            log.append(&records).unwrap();
            timestamps.extend(batch);
        }
        // Non-monotonic timestamps, several segments, and the indexes as a
        // reopen (clean, or unclean: marker removed) rebuilt them.
        if reopen > 0 {
            log.close().unwrap();
            drop(log);
            if reopen == 2 {
                std::fs::remove_file(dir.path().join(annals::log::CLEAN_SHUTDOWN_FILE)).unwrap();
            }
            log = open(dir.path(), &clock, small(LogConfig::default()));
        }
        let start = delete_before.min(timestamps.len());
        log.delete_records_before(start as u64).unwrap();
        for target in targets {
            prop_assert_eq!(log.offset_for_timestamp(target).unwrap(), brute(&timestamps, start, target), "target {}", target);
        }
    }
}

#[test]
fn lookups_before_and_after_all_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let log = open(dir.path(), &clock, small(LogConfig::default()));
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None, "empty log");
    for t in 0..100 {
        log.append(&[Record::new("x").timestamp_ms(1_000 + t)]).unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(i64::MIN).unwrap(), Some(0), "before everything: the log start");
    assert_eq!(log.offset_for_timestamp(1_050).unwrap(), Some(50));
    assert_eq!(log.offset_for_timestamp(1_100).unwrap(), None, "after everything");
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(DAY));
    let config = LogConfig { segment_ms: 60_000, ..LogConfig::default() };
    let log = open(dir.path(), &clock, config.clone());
    log.append(&[Record::new("a")]).unwrap();
    clock.advance(59_999);
    log.append(&[Record::new("b")]).unwrap();
    assert_eq!(log.segment_count(), 1);
    clock.advance(1);
    log.append(&[Record::new("c")]).unwrap();
    assert_eq!(log.segment_base_offsets(), [0, 2], "rolled once the segment was a minute old");
    // After a reopen, age counts from the first record's timestamp.
    log.close().unwrap();
    drop(log);
    clock.advance(60_000);
    let log = open(dir.path(), &clock, config);
    log.append(&[Record::new("d")]).unwrap();
    assert_eq!(log.segment_base_offsets(), [0, 2, 3]);
}

fn filled(dir: &std::path::Path, clock: &Arc<ManualClock>, config: LogConfig) -> PartitionLog {
    let log = open(dir, clock, config);
    // Ten segments, one per simulated hour, records stamped with the clock.
    for hour in 0..10 {
        for _ in 0..3 {
            log.append(&[Record::new(vec![hour as u8; 50])]).unwrap();
        }
        log.roll().unwrap();
        clock.advance(3_600_000);
    }
    log.append(&[Record::new("active")]).unwrap();
    log
}

#[test]
fn retention_by_time_deletes_old_segments_and_keeps_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(DAY));
    let config = LogConfig { retention_ms: 3 * 3_600_000, ..LogConfig::default() };
    let log = filled(dir.path(), &clock, config.clone());
    assert_eq!(log.segment_count(), 11);
    let report = log.enforce_retention().unwrap();
    // Hours 0..6 are older than 3 h (their newest record is; hour 7 is exactly 3 h... kept).
    assert_eq!(report.segments_deleted, 7, "{report:?}");
    assert_eq!(log.log_start_offset(), 21);
    assert!(matches!(
        log.read(20, 100, ReadBound::LogEnd),
        Err(Error::OffsetOutOfRange { offset: 20, log_start_offset: 21, .. })
    ));
    assert_eq!(log.read(21, 1, ReadBound::LogEnd).unwrap().to_records()[0].offset, 21);
    // Far in the future: every sealed segment goes, the active one stays.
    clock.advance(365 * DAY);
    log.enforce_retention().unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 30);
    assert_eq!(log.read(30, 100, ReadBound::LogEnd).unwrap().to_records().len(), 1);
    // The log start survives a reopen.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), &clock, config);
    assert_eq!(log.log_start_offset(), 30);
}

#[test]
fn retention_by_size_and_forever() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(DAY));
    let forever = LogConfig { retention_ms: -1, ..LogConfig::default() };
    let log = filled(dir.path(), &clock, forever);
    clock.advance(1000 * DAY);
    assert_eq!(log.enforce_retention().unwrap().segments_deleted, 0, "-1 keeps everything");
    drop(log);
    let per_segment = {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path(), &clock, LogConfig::default());
        log.size_bytes() / 10
    };
    let sized =
        LogConfig { retention_ms: -1, retention_bytes: (4 * per_segment) as i64, ..LogConfig::default() };
    let log = open(dir.path(), &clock, sized);
    let before = log.size_bytes();
    let report = log.enforce_retention().unwrap();
    assert!(log.size_bytes() >= 4 * per_segment && log.size_bytes() < 5 * per_segment + 100, "{report:?}");
    assert_eq!(report.bytes_deleted, before - log.size_bytes());
}

#[test]
fn delete_records_before_raises_the_log_start_and_never_lowers_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(DAY));
    let config = LogConfig { retention_ms: -1, ..LogConfig::default() };
    let log = filled(dir.path(), &clock, config.clone());
    assert!(matches!(log.delete_records_before(99), Err(Error::OffsetOutOfRange { offset: 99, .. })));
    assert_eq!(log.delete_records_before(10).unwrap(), 10);
    assert_eq!(log.segment_base_offsets()[0], 9, "the segment holding 10 stays");
    assert!(matches!(log.read(9, 10, ReadBound::LogEnd), Err(Error::OffsetOutOfRange { .. })));
    let first = log.read(10, 1, ReadBound::LogEnd).unwrap();
    assert_eq!(first.records().next().unwrap().offset, 10, "records below the start are not returned");
    assert_eq!(log.delete_records_before(5).unwrap(), 10, "never moves back");
    // Everything: the active segment is rolled and deleted too.
    assert_eq!(log.delete_records_before(31).unwrap(), 31);
    assert_eq!(log.segment_base_offsets(), [31]);
    log.append(&[Record::new("after")]).unwrap();
    assert_eq!(log.read(31, 10, ReadBound::LogEnd).unwrap().to_records()[0].offset, 31);
    drop(log);
    let log = open(dir.path(), &clock, config);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (31, 32));
}

#[test]
fn absurd_retention_values_are_refused() {
    for config in [
        LogConfig { retention_ms: -2, ..LogConfig::default() },
        LogConfig { retention_bytes: -5, ..LogConfig::default() },
        LogConfig { segment_ms: 0, ..LogConfig::default() },
    ] {
        assert!(matches!(config.validate(), Err(Error::InvalidConfig { .. })), "{config:?}");
    }
}

#[test]
fn reads_racing_deletion_finish_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(DAY));
    let config = LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 512,
        retention_ms: -1,
        retention_bytes: 8192,
        ..LogConfig::default()
    };
    let log = Arc::new(open(dir.path(), &clock, config));
    let value = |o: u64| format!("value-{o}-{}", "x".repeat((o % 40) as usize));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut read, mut out_of_range) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut next = log.log_start_offset();
                    while next < log.log_end_offset() {
                        match log.read(next, 512, ReadBound::LogEnd) {
                            Ok(fetched) => {
                                for r in fetched.records() {
                                    assert_eq!(r.value.unwrap(), value(r.offset).as_bytes(), "wrong bytes");
                                    read += 1;
                                }
                                next = fetched.next_offset().unwrap_or(next);
                            }
                            Err(Error::OffsetOutOfRange { log_start_offset, .. }) => {
                                out_of_range += 1;
                                next = log_start_offset;
                            }
                            Err(e) => panic!("reader got {e}"),
                        }
                    }
                }
                (read, out_of_range)
            })
        })
        .collect();
    for o in 0..3000u64 {
        log.append(&[Record::new(value(o))]).unwrap();
        if o % 50 == 0 {
            log.enforce_retention().unwrap();
        }
        if o % 700 == 0 {
            log.delete_records_before(o / 2).unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        let (read, _) = r.join().unwrap();
        total += read;
    }
    assert!(total > 0);
    log.enforce_retention().unwrap();
    assert!(
        log.size_bytes() < 8192 + 2048 * 2 + 200,
        "retention kept the partition small: {}",
        log.size_bytes()
    );
}
