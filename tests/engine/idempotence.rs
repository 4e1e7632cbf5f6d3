//! Idempotent producers: retries get their original offsets, sequence gaps
//! and fenced epochs are refused, and the state survives reopen, truncation
//! and a crash at any point.

use annals_testkit as common;

use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::{AppendError, ReadBound};
use annals::{AppendInfo, BatchMeta, Durability, Error, LogConfig, ManualClock, PartitionLog, Record};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

fn meta(pid: i64, epoch: i16, seq: i32) -> BatchMeta {
    BatchMeta { producer_id: pid, producer_epoch: epoch, base_sequence: seq, ..BatchMeta::default() }
}

fn batch(seq: i32, n: usize) -> Vec<Record> {
    (0..n).map(|i| Record::new(format!("s{seq}-{i}"))).collect()
}

fn send(log: &PartitionLog, pid: i64, epoch: i16, seq: i32, n: usize) -> annals::Result<AppendInfo> {
    log.append_with(&batch(seq, n), meta(pid, epoch, seq))
}

#[test]
fn retries_dedup_and_bad_sequences_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    let first = send(&log, 7, 0, 0, 3).unwrap();
    let second = send(&log, 7, 0, 3, 2).unwrap();
    log.append(&[Record::new("plain")]).unwrap(); // no producer id: never deduplicated
    assert_eq!(send(&log, 7, 0, 0, 3).unwrap(), first, "a retry gets its original offsets");
    assert_eq!(send(&log, 7, 0, 3, 2).unwrap(), second);
    assert_eq!(log.log_end_offset(), 6, "nothing appended twice");
    assert!(matches!(
        send(&log, 7, 0, 9, 1),
        Err(Error::Append(AppendError::OutOfOrderSequence { producer_id: 7, expected: 5, found: 9 }))
    ));
    assert!(matches!(
        send(&log, 7, 1, 5, 1),
        Err(Error::Append(AppendError::OutOfOrderSequence { expected: 0, found: 5, .. }))
    ));
    send(&log, 7, 1, 0, 1).unwrap(); // a new epoch starts at 0
    assert!(matches!(
        send(&log, 7, 0, 5, 1),
        Err(Error::Append(AppendError::ProducerFenced { epoch: 0, current: 1, .. }))
    ));
    // Another producer is independent.
    send(&log, 8, 0, 100, 1).unwrap();
    assert_eq!(log.log_end_offset(), 8);
}

/// Kafka's `producer.id.expiration.ms`: an idle producer is forgotten by
/// retention and at open; one still sending is kept, and the state of
/// forgotten producers no longer grows the map.
#[test]
fn idle_producers_expire_and_active_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = LogConfig { producer_id_expiration_ms: 60_000, ..config() };
    let open = || {
        let fs = Arc::new(annals::io::StdFileSystem);
        PartitionLog::open_with(
            dir.path(),
            config.clone(),
            annals::OpenOptions::default().with_fs(fs).with_clock(clock.clone()),
        )
        .unwrap()
    };
    let log = open();
    let idle = send(&log, 1, 0, 0, 2).unwrap();
    send(&log, 2, 0, 0, 2).unwrap();
    clock.advance(40_000);
    send(&log, 2, 0, 2, 2).unwrap(); // producer 2 keeps sending
    assert_eq!(log.enforce_retention().unwrap().producers_expired, 0);
    clock.advance(30_000); // producer 1 idle 70 s, producer 2 idle 30 s
    let report = log.enforce_retention().unwrap();
    assert_eq!((report.producers_expired, log.producer_count()), (1, 1));
    // Forgotten: its retry is a new batch now (as for an unknown producer
    // id in Kafka), while producer 2's retry is still deduplicated.
    let end = log.log_end_offset();
    let retried = send(&log, 1, 0, 0, 2).unwrap();
    assert_ne!(retried, idle);
    assert_eq!(retried.first_offset, end);
    assert_eq!(send(&log, 2, 0, 2, 2).unwrap().first_offset, 4);
    log.close().unwrap();
    drop(log);

    // At open, producers idle past the expiration are not loaded back.
    clock.advance(61_000);
    let log = open();
    assert_eq!(log.producer_count(), 0);
}

/// Compaction thins an idempotent producer's batch (its offset range and
/// sequence range stay, fewer records remain): state replayed from the
/// thinned batch must still know the whole sequence range, or the
/// producer's next batch is refused as out of order.
#[test]
fn a_compacted_producer_batch_keeps_its_sequence_range() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: annals::CleanupPolicy::Compact,
        min_cleanable_dirty_percent: 0,
        ..config()
    };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let keyed = |tag: &str, keys: std::ops::Range<u32>| -> Vec<Record> {
        keys.map(|k| Record::with_key(format!("k{k}"), format!("{tag}{k}"))).collect()
    };
    let first = log.append_with(&keyed("a", 0..10), meta(7, 0, 0)).unwrap(); // sequences 0..=9
    log.append(&keyed("b", 0..7)).unwrap(); // newer values for k0..k6
    log.roll().unwrap();
    log.append(&keyed("c", 20..21)).unwrap();
    log.compact().unwrap();
    let kept: Vec<u64> =
        log.read(0, 1 << 20, ReadBound::LogEnd).unwrap().records().map(|r| r.offset).collect();
    assert_eq!(&kept[..3], [7, 8, 9], "the producer's batch was thinned");
    log.close().unwrap();
    drop(log);
    // Without the snapshot, the state is replayed from the batches.
    std::fs::remove_file(dir.path().join(annals::log::PRODUCER_SNAPSHOT_FILE)).unwrap();
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.append_with(&keyed("a", 0..10), meta(7, 0, 0)).unwrap(), first, "a retry is a duplicate");
    let next = log.append_with(&keyed("d", 30..31), meta(7, 0, 10));
    assert!(next.is_ok(), "the next sequence continues the thinned batch: {next:?}");
}

#[test]
fn producer_state_survives_reopen_roll_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    let mut acked = Vec::new();
    for k in 0..40 {
        acked.push(send(&log, 7, 0, k * 2, 2).unwrap());
    }
    assert!(log.segment_count() > 3, "rolled, so snapshots were written");
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(send(&log, 7, 0, 78, 2).unwrap(), acked[39], "after a clean reopen");
    assert_eq!(send(&log, 7, 0, 74, 2).unwrap(), acked[37]);
    common::crash(log);
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(send(&log, 7, 0, 78, 2).unwrap(), acked[39], "after an unclean reopen");

    // Truncating away the last two batches: their retries append again,
    // at the new end, and are then deduplicated in turn.
    log.truncate_to(acked[38].first_offset).unwrap();
    let again = send(&log, 7, 0, 76, 2).unwrap();
    assert_eq!(again.first_offset, acked[38].first_offset);
    assert_eq!(send(&log, 7, 0, 76, 2).unwrap(), again);
    assert!(matches!(
        send(&log, 7, 0, 80, 2),
        Err(Error::Append(AppendError::OutOfOrderSequence { expected: 78, .. }))
    ));

    // A damaged snapshot: the state is replayed from every batch.
    log.close().unwrap();
    drop(log);
    std::fs::write(dir.path().join(annals::log::PRODUCER_SNAPSHOT_FILE), b"junk").unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(send(&log, 7, 0, 76, 2).unwrap(), again);
}

/// A crash at every I/O operation of an idempotent producer's run (fsync
/// on every append): after recovery, retrying the last acknowledged batch
/// returns its original offsets, and retrying the one in flight either
/// finds it or appends it; never an error, never a second copy.
#[test]
fn crash_anywhere_then_retry_never_duplicates_an_acknowledged_batch() {
    let config = LogConfig { durability: Durability::Always, ..config() };
    let run = |fs: &SimFs, acked: &mut Vec<AppendInfo>| -> annals::Result<()> {
        let log = PartitionLog::open_with(
            "/p",
            config.clone(),
            annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
        )?;
        for k in 0..11 {
            let info = send(&log, 7, 0, k * 3, 3)?;
            acked.push(info);
            if k == 8 {
                // Truncated away on purpose (no longer acknowledged, from the
                // moment it is asked): the state rebuilds, the retry appends.
                acked.pop();
                log.truncate_to(info.first_offset)?;
                acked.push(send(&log, 7, 0, k * 3, 3)?);
            }
        }
        log.close()
    };
    let probe = SimFs::new();
    run(&probe, &mut Vec::new()).unwrap();
    let mut images = 0;
    for crash_at in 1..=probe.op_count() {
        let fs = SimFs::new();
        fs.crash_at(crash_at);
        let mut acked = Vec::new();
        let _ = run(&fs, &mut acked);
        for mode in [CrashMode::DurableOnly, CrashMode::AllPending] {
            let log = PartitionLog::open_with(
                "/p",
                config.clone(),
                annals::OpenOptions::default().with_fs(Arc::new(fs.crash_image(mode))),
            )
            .unwrap();
            let end = log.log_end_offset();
            if let Some(last) = acked.last() {
                let k = acked.len() as i32 - 1;
                let retried =
                    send(&log, 7, 0, k * 3, 3).unwrap_or_else(|e| panic!("crash at {crash_at}: {e}"));
                assert_eq!(&retried, last, "crash at {crash_at}: the acknowledged batch keeps its offsets");
                assert_eq!(log.log_end_offset(), end, "crash at {crash_at}: nothing appended twice");
            }
            // The batch in flight at the crash (if any): found, or appended.
            let next = acked.len() as i32;
            if next < 11 {
                let info =
                    send(&log, 7, 0, next * 3, 3).unwrap_or_else(|e| panic!("crash at {crash_at}: {e}"));
                // Found (below the end it had) or appended right at it.
                assert!(info.first_offset <= end, "crash at {crash_at}: {info:?} past end {end}");
                assert_eq!(send(&log, 7, 0, next * 3, 3).unwrap(), info, "crash at {crash_at}");
            }
            images += 1;
        }
    }
    assert!(images > 100, "{images} images");
}
