//! Write combining: appends that arrive while one is writing are written
//! together by the next writer, each answered with its own offsets (or its
//! own refusal), in arrival order.

use annals_testkit as common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use annals::io::SharedFs;
use annals::{
    AppendError, AppendInfo, BatchMeta, Durability, Error, LogConfig, OpenOptions, PartitionLog, ReadBound,
    Record,
};

/// A log on a file system whose next log write can be held.
fn gated_log(dir: &std::path::Path) -> (Arc<PartitionLog>, common::gate::GatedFs) {
    gated_log_with(dir, LogConfig::default())
}

fn gated_log_with(dir: &std::path::Path, config: LogConfig) -> (Arc<PartitionLog>, common::gate::GatedFs) {
    let gate = common::gate::GatedFs::default();
    let fs: SharedFs = Arc::new(gate.clone());
    let options = OpenOptions::default().with_fs(fs);
    let log = PartitionLog::open_with(dir, config, options).unwrap();
    (Arc::new(log), gate)
}

fn value_at(log: &PartitionLog, offset: u64) -> Vec<u8> {
    let records = log.read(offset, 1 << 20, ReadBound::LogEnd).unwrap().to_records();
    records.iter().find(|r| r.offset == offset).unwrap().value.clone().unwrap().to_vec()
}

/// Starts `append` on a thread and gives it time to reach the combiner's
/// queue (the write in flight is held, so it cannot get further).
fn arrive(
    log: &Arc<PartitionLog>,
    append: impl FnOnce(&PartitionLog) -> annals::Result<AppendInfo> + Send + 'static,
) -> thread::JoinHandle<annals::Result<AppendInfo>> {
    let log = log.clone();
    let handle = thread::spawn(move || append(&log));
    thread::sleep(Duration::from_millis(150));
    handle
}

#[test]
fn appends_arriving_during_a_write_share_the_next_write_with_their_own_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate) = gated_log(dir.path());
    log.append(&[Record::new("before")]).unwrap();
    gate.arm_writes(dir.path());
    let first = arrive(&log, |log| log.append(&[Record::new("first")]));
    assert!(gate.wait_blocked(Duration::from_secs(10)), "the first append's write is held");
    let queued: Vec<_> = (0..3)
        .map(|i| {
            let records: Vec<Record> = (0..=i).map(|j| Record::new(format!("queued-{i}-{j}"))).collect();
            arrive(&log, move |log| log.append(&records))
        })
        .collect();
    let before = log.metrics();
    gate.release();
    assert_eq!(first.join().unwrap().unwrap().first_offset, 1);
    let answers: Vec<AppendInfo> = queued.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    // In arrival order, dense, each with its own records.
    let offsets: Vec<(u64, u64)> = answers.iter().map(|a| (a.first_offset, a.last_offset)).collect();
    assert_eq!(offsets, [(2, 2), (3, 4), (5, 7)]);
    for (i, answer) in answers.iter().enumerate() {
        for (j, offset) in (answer.first_offset..=answer.last_offset).enumerate() {
            assert_eq!(value_at(&log, offset), format!("queued-{i}-{j}").as_bytes());
        }
    }
    let after = log.metrics();
    assert_eq!(after.appends - before.appends, 4);
    assert_eq!(after.writes - before.writes, 2, "the three queued appends took one write");
    assert_eq!(log.log_end_offset(), 8);
}

fn meta(pid: i64, seq: i32) -> BatchMeta {
    BatchMeta { producer_id: pid, producer_epoch: 0, base_sequence: seq, ..BatchMeta::default() }
}

fn send(pid: i64, seq: i32, value: &'static str) -> impl FnOnce(&PartitionLog) -> annals::Result<AppendInfo> {
    move |log| log.append_with(&[Record::new(value)], meta(pid, seq))
}

#[test]
fn a_queued_producer_is_checked_against_the_batches_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate) = gated_log(dir.path());
    gate.arm_writes(dir.path());
    let first = arrive(&log, send(7, 0, "seq 0"));
    assert!(gate.wait_blocked(Duration::from_secs(10)));
    // Queued behind it, in this order: the producer's next two batches, a
    // retry of the first of them, a gap, and another producer.
    let next = arrive(&log, send(7, 1, "seq 1"));
    let after_next = arrive(&log, send(7, 2, "seq 2"));
    let retry = arrive(&log, send(7, 1, "seq 1"));
    let gap = arrive(&log, send(7, 9, "seq 9"));
    let other = arrive(&log, send(8, 0, "other"));
    gate.release();
    assert_eq!(first.join().unwrap().unwrap().first_offset, 0);
    let next = next.join().unwrap().unwrap();
    assert_eq!(next.first_offset, 1);
    assert_eq!(after_next.join().unwrap().unwrap().first_offset, 2);
    assert_eq!(retry.join().unwrap().unwrap(), next, "a retry is answered the first append's offsets");
    assert!(matches!(
        gap.join().unwrap(),
        Err(Error::Append(AppendError::OutOfOrderSequence { producer_id: 7, expected: 3, found: 9 }))
    ));
    assert_eq!(other.join().unwrap().unwrap().first_offset, 3, "a refusal in the queue fails no one else");
    assert_eq!(log.log_end_offset(), 4);
    let values: Vec<Vec<u8>> = (0..4).map(|o| value_at(&log, o)).collect();
    assert_eq!(values, [&b"seq 0"[..], b"seq 1", b"seq 2", b"other"]);
}

#[test]
fn many_producers_on_one_partition_get_dense_offsets_that_hold_their_records() {
    const THREADS: usize = 8;
    const APPENDS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 64 << 10, ..LogConfig::default() };
    let log = Arc::new(PartitionLog::open(dir.path(), config.clone()).unwrap());
    let answers: Vec<Vec<(AppendInfo, usize)>> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            thread::spawn(move || {
                (0..APPENDS)
                    .map(|n| {
                        let records: Vec<Record> =
                            (0..1 + n % 3).map(|k| Record::new(format!("{t}-{n}-{k}"))).collect();
                        (log.append(&records).unwrap(), n)
                    })
                    .collect()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut ranges: Vec<(u64, u64)> =
        answers.iter().flatten().map(|(a, _)| (a.first_offset, a.last_offset)).collect();
    ranges.sort_unstable();
    assert_eq!(ranges[0].0, 0);
    assert!(ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1), "offsets are dense, never shared");
    let metrics = log.metrics();
    assert_eq!(metrics.appends, (THREADS * APPENDS) as u64);
    assert!(metrics.rolls > 0, "groups were written across rolls");
    log.close().unwrap();
    drop(log);
    let reopened = PartitionLog::open(dir.path(), config).unwrap();
    for (t, answers) in answers.iter().enumerate() {
        for (answer, n) in answers {
            for (k, offset) in (answer.first_offset..=answer.last_offset).enumerate() {
                assert_eq!(value_at(&reopened, offset), format!("{t}-{n}-{k}").as_bytes());
            }
        }
    }
}

#[test]
fn a_stale_leader_epoch_queued_with_others_fails_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate) = gated_log(dir.path());
    let epoch = |e: i32| BatchMeta { leader_epoch: e, ..BatchMeta::default() };
    log.append_with(&[Record::new("epoch 3")], epoch(3)).unwrap();
    gate.arm_writes(dir.path());
    let first = arrive(&log, move |log| log.append_with(&[Record::new("held")], epoch(3)));
    assert!(gate.wait_blocked(Duration::from_secs(10)));
    let newer = arrive(&log, move |log| log.append_with(&[Record::new("epoch 5")], epoch(5)));
    let stale = arrive(&log, move |log| log.append_with(&[Record::new("epoch 4")], epoch(4)));
    let same = arrive(&log, move |log| log.append_with(&[Record::new("epoch 5 again")], epoch(5)));
    gate.release();
    first.join().unwrap().unwrap();
    assert_eq!(newer.join().unwrap().unwrap().first_offset, 2);
    assert!(matches!(
        stale.join().unwrap(),
        Err(Error::Append(AppendError::StaleLeaderEpoch { epoch: 4, latest: 5 }))
    ));
    assert_eq!(same.join().unwrap().unwrap().first_offset, 3, "a stale member fails no one else");
    assert_eq!(log.log_end_offset(), 4);
}

/// A gated `Durability::Always` log holding one record.
fn always_log(dir: &std::path::Path) -> (Arc<PartitionLog>, common::gate::GatedFs) {
    let config = LogConfig { durability: Durability::Always, ..LogConfig::default() };
    let (log, gate) = gated_log_with(dir, config);
    log.append(&[Record::new("before")]).unwrap();
    (log, gate)
}

/// An append under `Durability::Always` that checks it is durable once answered.
fn durable(value: &'static str) -> impl FnOnce(&PartitionLog) -> annals::Result<AppendInfo> {
    move |log| {
        let info = log.append(&[Record::new(value)])?;
        assert!(log.durable_offset() > info.last_offset, "{value} was answered before it was durable");
        Ok(info)
    }
}

#[test]
fn under_always_appends_queued_during_an_fsync_take_one_write_and_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate) = always_log(dir.path());
    let before = log.metrics();
    gate.arm(dir.path());
    let first = arrive(&log, durable("first"));
    assert!(gate.wait_blocked(Duration::from_secs(10)), "the first append's fsync is held");
    let queued: Vec<_> = ["a", "b", "c"].into_iter().map(|v| arrive(&log, durable(v))).collect();
    // They form the next group while the fsync runs: not yet written, so
    // each waits once (for its answer), not for a write and then an fsync.
    assert_eq!(log.log_end_offset(), 2, "queued behind the fsync in flight");
    gate.release();
    assert_eq!(first.join().unwrap().unwrap().first_offset, 1);
    let offsets: Vec<u64> = queued.into_iter().map(|h| h.join().unwrap().unwrap().first_offset).collect();
    assert_eq!(offsets, [2, 3, 4]);
    let after = log.metrics();
    assert_eq!(after.writes - before.writes, 2, "the first append's write, and one for the three");
    assert_eq!(after.fsyncs - before.fsyncs, 2, "the first append's fsync, and one for the three");
    assert_eq!(log.durable_offset(), 5);
}

#[test]
fn under_always_a_failed_group_fsync_fails_every_append_it_was_to_cover() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate) = always_log(dir.path());
    gate.arm_writes(dir.path());
    let first = arrive(&log, durable("first"));
    assert!(gate.wait_blocked(Duration::from_secs(10)), "the first append's write is held");
    // Queued behind the write: its writer writes them too, and one fsync
    // is to cover all three; it fails.
    let queued: Vec<_> = ["a", "b"].into_iter().map(|v| arrive(&log, durable(v))).collect();
    gate.fail_next_sync();
    gate.release();
    assert!(matches!(first.join().unwrap(), Err(Error::Io { .. })));
    for handle in queued {
        let answer = handle.join().unwrap();
        assert!(matches!(answer, Err(Error::Poisoned { .. })), "{answer:?}");
    }
    assert_eq!(log.durable_offset(), 1, "nothing after the failed fsync is known durable");
    assert!(matches!(log.append(&[Record::new("after")]), Err(Error::Poisoned { .. })));
}

#[test]
fn under_always_a_truncation_during_the_group_fsync_does_not_hold_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate) = always_log(dir.path());
    gate.arm(dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    let appender = log.clone();
    thread::spawn(move || tx.send(appender.append(&[Record::new("cut")])));
    assert!(gate.wait_blocked(Duration::from_secs(10)), "the append's fsync is held");
    // A follower's truncation cuts the record its fsync is for: the fsync
    // can then cover only the log end, and the append must not wait for
    // more (nothing else can be written while its writer holds the turn).
    log.truncate_to(1).unwrap();
    gate.release();
    let answer = rx.recv_timeout(Duration::from_secs(20)).expect("the append returns");
    assert_eq!(answer.unwrap().first_offset, 1);
    assert_eq!(log.append(&[Record::new("next")]).unwrap().first_offset, 1, "the partition takes appends");
    assert_eq!(value_at(&log, 1), b"next");
}
