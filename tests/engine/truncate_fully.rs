//! `truncate_fully_and_start_at`: a follower (or a consensus layer
//! installing a snapshot) drops its whole log and starts over, empty, at an
//! offset past its end; epochs, producer state and the high watermark go
//! with the records, and a crash anywhere inside leaves one of the three
//! allowed logs.

use annals_testkit as common;

use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::ReadBound;
use annals::{BatchMeta, Error, LogConfig, PartitionLog, Record};
use common::values;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 128,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

fn lead(log: &PartitionLog, epoch: i32, tag: &str, n: usize) -> annals::Result<()> {
    let records: Vec<Record> = (0..n).map(|i| Record::new(format!("{tag}-{i}"))).collect();
    log.append_with(&records, BatchMeta { leader_epoch: epoch, ..BatchMeta::default() }).map(drop)
}

#[test]
fn the_log_starts_over_empty_past_its_end_with_no_epoch_left() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    for _ in 0..3 {
        lead(&log, 3, "a", 10).unwrap();
    }
    for _ in 0..3 {
        lead(&log, 5, "b", 10).unwrap();
    }
    log.set_high_watermark(40).unwrap();
    assert!(log.segment_count() > 1);

    let below_end = log.truncate_fully_and_start_at(59);
    assert!(matches!(below_end, Err(Error::OffsetOutOfRange { offset: 59, .. })), "{below_end:?}");
    assert_eq!(log.log_end_offset(), 60, "a refused call changes nothing");

    log.truncate_fully_and_start_at(100).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(log.segment_base_offsets(), [100]);
    assert!(log.leader_epochs().is_empty());
    assert_eq!(log.high_watermark(), 100);
    assert!(matches!(log.read(60, 1024, ReadBound::LogEnd), Err(Error::OffsetOutOfRange { .. })));
    // The new leader's records may carry an epoch below the old latest.
    lead(&log, 4, "c", 3).unwrap();
    assert_eq!(log.leader_epochs(), [(4, 100)]);
    drop(log); // unclean
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(values(&log), [(100, "c-0".into()), (101, "c-1".into()), (102, "c-2".into())]);
    assert_eq!(log.leader_epochs(), [(4, 100)]);

    // At the log end: the records go, the offsets stay.
    log.truncate_fully_and_start_at(103).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (103, 103));
    assert!(log.leader_epochs().is_empty());
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (103, 103));
    assert!(values(&log).is_empty());
}

/// A crash at every I/O operation of a workload that starts over past its
/// end and appends in a lower epoch: every image reopens as the old log
/// (some prefix of it), empty at the old log start, or starting at the new
/// offset with only new records; the epoch cache matches the batches, and
/// the new leader's lower epoch is accepted wherever the old log is gone.
#[test]
fn crash_anywhere_leaves_the_old_log_or_an_empty_one_never_a_mix() {
    let workload = |fs: &SimFs| -> annals::Result<()> {
        let log = PartitionLog::open_with(
            "/p",
            config(),
            annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
        )?;
        lead(&log, 2, "old", 20)?;
        lead(&log, 6, "old6", 20)?;
        log.flush()?;
        log.set_high_watermark(30)?;
        log.checkpoint_high_watermark()?;
        log.truncate_fully_and_start_at(50)?;
        lead(&log, 3, "new", 5)?;
        log.close()
    };
    let probe = SimFs::new();
    workload(&probe).unwrap();
    let ops = probe.op_count();
    let (mut old, mut emptied, mut new) = (0, 0, 0);
    for crash_at in 1..=ops {
        let fs = SimFs::new();
        fs.crash_at(crash_at);
        let _ = workload(&fs);
        for mode in [CrashMode::DurableOnly, CrashMode::AllPending] {
            let image = fs.crash_image(mode);
            let log = PartitionLog::open_with(
                "/p",
                config(),
                annals::OpenOptions::default().with_fs(Arc::new(image)),
            )
            .unwrap();
            let (start, end) = (log.log_start_offset(), log.log_end_offset());
            let got = values(&log);
            let epochs = log.leader_epochs();
            let at = format!("crash at {crash_at} ({mode:?}): start {start}, end {end}, epochs {epochs:?}");
            assert!(log.high_watermark() <= end, "{at}");
            if start >= 50 {
                new += 1;
                assert!(got.iter().all(|(o, v)| *o >= 50 && v.starts_with("new-")), "{at}: {got:?}");
                assert!(epochs.iter().all(|&(e, s)| e == 3 && s == 50), "{at}");
            } else {
                assert_eq!(start, 0, "{at}");
                // A prefix of the old log, epochs as the batches say.
                for (o, v) in &got {
                    let tag = if *o < 20 { "old-" } else { "old6-" };
                    assert!(v.starts_with(tag), "{at}: {o} {v}");
                }
                assert_eq!(got.len() as u64, end, "{at}: dense from 0");
                let expected: Vec<(i32, u64)> =
                    [(2, 0), (6, 20)].into_iter().filter(|&(_, s)| s < end).collect();
                assert_eq!(epochs, expected, "{at}");
                if end == 0 {
                    emptied += 1;
                } else {
                    old += 1;
                }
            }
            // Where the old records are gone, the new leader's lower epoch
            // is accepted.
            if log.log_end_offset() == log.log_start_offset() {
                lead(&log, 3, "again", 1).unwrap();
            }
        }
    }
    assert!(old > 0 && emptied > 0 && new > 0, "old {old}, emptied {emptied}, new {new}");
}
