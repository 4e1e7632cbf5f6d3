//! Replica appends and leader epochs (KIP-101): followers find where their
//! log diverges from the leader's with `end_offset_for_epoch`, truncate
//! there, and end up with the leader's records at every offset.

use annals_testkit as common;

use std::path::Path;
use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::{AppendError, ReadBound};
use annals::{BatchMeta, Error, LogConfig, PartitionLog, Record};
use common::values;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, config()).unwrap()
}

/// A leader append of `n` records tagged `tag` in leader epoch `epoch`.
fn lead(log: &PartitionLog, epoch: i32, tag: &str, n: usize) {
    let records: Vec<Record> = (0..n).map(|i| Record::new(format!("{tag}-{i}"))).collect();
    log.append_with(&records, BatchMeta { leader_epoch: epoch, ..BatchMeta::default() }).unwrap();
}

/// Copies the leader's batches from the follower's log end (what a fetch
/// does), appending them as a replica.
fn fetch(follower: &PartitionLog, leader: &PartitionLog) {
    while follower.log_end_offset() < leader.log_end_offset() {
        let fetched = leader.read(follower.log_end_offset(), 4096, ReadBound::LogEnd).unwrap();
        follower.append_replica(fetched.bytes()).unwrap();
    }
}

/// KIP-101's follower step: truncate to the leader's end offset for the
/// follower's latest epoch, then fetch.
fn catch_up(follower: &PartitionLog, leader: &PartitionLog) {
    if let Some(epoch) = follower.latest_epoch() {
        let (_, end) = leader.end_offset_for_epoch(epoch).expect("the leader knows the epoch");
        if end < follower.log_end_offset() {
            follower.truncate_to(end).unwrap();
        }
    }
    fetch(follower, leader);
}

#[test]
fn replica_appends_keep_offsets_and_epochs_and_refuse_gaps_and_damage() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(a.path()), open(b.path()));
    lead(&leader, 1, "a", 30);
    lead(&leader, 1, "b", 5);
    lead(&leader, 4, "c", 20);
    fetch(&follower, &leader);
    assert_eq!(values(&follower), values(&leader));
    assert_eq!(follower.leader_epochs(), [(1, 0), (4, 35)]);
    assert_eq!(leader.leader_epochs(), follower.leader_epochs());

    // A batch that does not continue the log, or a damaged one: refused,
    // nothing written.
    let end = follower.log_end_offset();
    let again = leader.read(10, 1, ReadBound::LogEnd).unwrap();
    assert!(matches!(
        follower.append_replica(again.bytes()),
        Err(Error::Append(AppendError::NonContiguousBatch { expected, found: 0 })) if expected == end
    ));
    lead(&leader, 4, "d", 3);
    let next = leader.read(end, 4096, ReadBound::LogEnd).unwrap();
    let mut bad = next.bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x20;
    assert!(matches!(follower.append_replica(&bad), Err(Error::Append(AppendError::InvalidBatch { .. }))));
    assert!(matches!(
        follower.append_replica(&bad[..bad.len() - 3]),
        Err(Error::Append(AppendError::InvalidBatch { .. }))
    ));
    assert!(matches!(
        follower.append_replica(&[]),
        Err(Error::Append(AppendError::Encode(annals::format::EncodeError::Empty)))
    ));
    assert_eq!(follower.log_end_offset(), end);
    follower.append_replica(next.bytes()).unwrap();
    assert_eq!(values(&follower), values(&leader));

    // A deposed leader's stale epoch is refused; the same epoch is fine.
    let records = [Record::new("late")];
    let stale = BatchMeta { leader_epoch: 3, ..BatchMeta::default() };
    assert!(matches!(
        leader.append_with(&records, stale),
        Err(Error::Append(AppendError::StaleLeaderEpoch { epoch: 3, latest: 4 }))
    ));
    assert_eq!(leader.end_offset_for_epoch(1), Some((1, 35)));
    assert_eq!(leader.end_offset_for_epoch(2), Some((1, 35)), "never-seen epoch: the one below");
    assert_eq!(leader.end_offset_for_epoch(4), Some((4, leader.log_end_offset())));
    assert_eq!(leader.end_offset_for_epoch(5), None);
}

/// KIP-101's first scenario: the follower's high watermark would have
/// truncated away acknowledged records; the epoch does not.
#[test]
fn a_restarted_follower_keeps_what_the_new_leader_has() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (old_leader, follower) = (open(a.path()), open(b.path()));
    lead(&old_leader, 1, "m", 2);
    fetch(&follower, &old_leader);
    // The old leader dies; the follower becomes leader in epoch 2 and
    // keeps both records (a high-watermark truncation would have cut one).
    drop(old_leader);
    lead(&follower, 2, "n", 1);
    let old_leader = open(a.path());
    catch_up(&old_leader, &follower);
    assert_eq!(values(&old_leader), values(&follower));
    assert_eq!(values(&follower).len(), 3);
}

/// KIP-101's second scenario, the back-to-back failure: both replicas
/// crash, the one with fewer records comes back first and leads a new
/// epoch, writing different records at the offsets the other one has. The
/// other must not keep its own record at that offset.
#[test]
fn back_to_back_failures_never_leave_two_different_records_at_one_offset() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = (open(a.path()), open(b.path()));
    lead(&first, 1, "x", 1); // offset 0, replicated
    fetch(&second, &first);
    lead(&first, 1, "y", 1); // offset 1, only on the leader
    drop((first, second)); // both crash
    let second = open(b.path());
    lead(&second, 2, "z", 1); // the new leader writes its own offset 1
    let first = open(a.path());
    assert_eq!(first.latest_epoch(), Some(1));
    assert_eq!(second.end_offset_for_epoch(1), Some((1, 1)), "epoch 1 ended at offset 1 on the leader");
    catch_up(&first, &second);
    assert_eq!(values(&first), [(0, "x-0".to_string()), (1, "z-0".to_string())]);
    assert_eq!(first.leader_epochs(), [(1, 0), (2, 1)]);
}

#[test]
fn the_epoch_cache_follows_truncation_retention_reopen_and_damage() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    lead(&log, 1, "a", 40);
    lead(&log, 3, "b", 40);
    lead(&log, 7, "c", 40);
    assert_eq!(log.leader_epochs(), [(1, 0), (3, 40), (7, 80)]);
    log.truncate_to(85).unwrap();
    assert_eq!(log.leader_epochs(), [(1, 0), (3, 40), (7, 80)]);
    log.truncate_to(80).unwrap();
    assert_eq!(log.leader_epochs(), [(1, 0), (3, 40)], "epoch 7 began at the cut");
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 80)));
    log.delete_records_before(50).unwrap();
    assert_eq!(log.leader_epochs(), [(3, 50)], "the log now starts inside epoch 3");
    lead(&log, 9, "d", 5);
    drop(log); // unclean
    let log = open(dir.path());
    assert_eq!(log.leader_epochs(), [(3, 50), (9, 80)]);

    // A damaged checkpoint is rebuilt from the epochs in the batch headers
    // (from the first batch still in the log).
    drop(log);
    let file = dir.path().join(annals::log::LEADER_EPOCH_FILE);
    std::fs::write(&file, b"garbage").unwrap();
    let log = open(dir.path());
    let rebuilt = log.leader_epochs();
    assert_eq!(rebuilt.last(), Some(&(9, 80)));
    assert!(rebuilt.iter().all(|&(e, _)| e == 3 || e == 9), "{rebuilt:?}");
    assert!(std::fs::read(&file).unwrap() != b"garbage", "rewritten");
}

/// A crash at every I/O operation while epochs change: after recovery the
/// cache never names an epoch at or past the log end, and every epoch of a
/// record that is in the log is in the cache at or below its offset.
#[test]
fn crash_anywhere_leaves_the_epoch_cache_consistent_with_the_log() {
    let workload = |fs: &SimFs| -> annals::Result<()> {
        let log = PartitionLog::open_with(
            "/p",
            config(),
            annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
        )?;
        for (epoch, n) in [(1, 12), (2, 6), (5, 9)] {
            let records: Vec<Record> = (0..n).map(|i| Record::new(format!("e{epoch}-{i}"))).collect();
            log.append_with(&records, BatchMeta { leader_epoch: epoch, ..BatchMeta::default() })?;
            log.flush()?;
        }
        log.set_high_watermark(20)?;
        log.checkpoint_high_watermark()?;
        log.truncate_to(15)?;
        let records = [Record::new("after")];
        log.append_with(&records, BatchMeta { leader_epoch: 6, ..BatchMeta::default() })?;
        log.set_high_watermark(16)?;
        log.delete_records_before(4)?;
        log.close()
    };
    let probe = SimFs::new();
    workload(&probe).unwrap();
    let ops = probe.op_count();
    let mut checked = 0;
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
            let epochs = log.leader_epochs();
            let end = log.log_end_offset();
            // The high watermark never comes back above the log end, nor
            // above any value the workload set.
            let hw = log.high_watermark();
            assert!(
                hw <= end && (hw <= 20 || hw == end),
                "crash at {crash_at}: high watermark {hw}, end {end}"
            );
            assert!(epochs.iter().all(|&(_, s)| s < end), "crash at {crash_at}: {epochs:?} past end {end}");
            // Every batch's epoch is the cache's epoch at its offset.
            let mut offset = log.log_start_offset();
            while offset < end {
                let fetched = log.read(offset, 1 << 20, ReadBound::LogEnd).unwrap();
                for (h, _) in fetched.batches() {
                    let cached = epochs.iter().rev().find(|&&(_, s)| s <= h.base_offset.max(epochs[0].1));
                    assert_eq!(
                        cached.map(|&(e, _)| e),
                        Some(h.leader_epoch),
                        "crash at {crash_at}, batch {}",
                        h.base_offset
                    );
                }
                offset = fetched.next_offset().unwrap();
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} images");
}

#[test]
fn the_high_watermark_bounds_committed_reads_retention_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    lead(&log, 1, "a", 60);
    assert_eq!(log.high_watermark(), 60, "no replication layer: the log end");
    assert_eq!(log.set_high_watermark(20).unwrap(), 20);
    assert_eq!(log.set_high_watermark(10).unwrap(), 20, "never lowered by a set");
    assert!(matches!(log.set_high_watermark(61), Err(Error::OffsetOutOfRange { .. })));
    lead(&log, 1, "b", 5);
    assert_eq!(log.high_watermark(), 20, "appends do not move a set high watermark");

    // Committed reads: whole batches wholly below the high watermark.
    let committed = log.read(0, 1 << 20, ReadBound::HighWatermark).unwrap();
    let offsets: Vec<u64> = committed.records().map(|r| r.offset).collect();
    assert!(offsets.iter().all(|&o| o < 20), "{offsets:?}");
    assert!(log.read(20, 1 << 20, ReadBound::HighWatermark).unwrap().is_empty());
    assert!(log.read(64, 1 << 20, ReadBound::HighWatermark).unwrap().is_empty());
    assert!(matches!(log.read(66, 1, ReadBound::HighWatermark), Err(Error::OffsetOutOfRange { .. })));
    log.set_high_watermark(65).unwrap();
    assert_eq!(log.read(0, 1 << 20, ReadBound::HighWatermark).unwrap().to_records().len(), 65);

    // Truncation lowers it; a checkpoint and a clean close persist it.
    log.truncate_to(50).unwrap();
    assert_eq!(log.high_watermark(), 50);
    lead(&log, 2, "c", 10);
    log.set_high_watermark(55).unwrap();
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.high_watermark(), 55, "persisted at close");
    log.set_high_watermark(58).unwrap();
    log.checkpoint_high_watermark().unwrap();
    log.set_high_watermark(60).unwrap();
    common::crash(log); // the set after the checkpoint is lost, not invented
    let log = open(dir.path());
    assert_eq!(log.high_watermark(), 58);

    // Deleting records past the high watermark is refused.
    assert!(matches!(log.delete_records_before(59), Err(Error::OffsetOutOfRange { .. })));
    assert_eq!(log.delete_records_before(30).unwrap(), 30);
}

#[test]
fn retention_and_compaction_never_act_at_or_above_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        retention_ms: -1,
        retention_bytes: 0, // delete every sealed segment it may
        ..LogConfig::default()
    };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..200 {
        log.append(&[Record::new(format!("v{i}"))]).unwrap();
    }
    assert!(log.segment_count() > 5);
    log.set_high_watermark(100).unwrap();
    log.enforce_retention().unwrap();
    assert!(log.log_start_offset() <= 100, "log start {}", log.log_start_offset());
    let fetched = log.read(log.log_start_offset(), 1 << 20, ReadBound::LogEnd).unwrap();
    assert!(fetched.records().next().is_some());
    // Every record from the high watermark on is still there.
    for o in 100..200 {
        assert_eq!(log.read(o, 1, ReadBound::LogEnd).unwrap().records().next().unwrap().offset, o);
    }

    let cdir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        cleanup_policy: annals::CleanupPolicy::Compact,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(cdir.path(), config).unwrap();
    for i in 0..300u32 {
        log.append(&[Record::with_key(format!("k{}", i % 3), format!("v{i}"))]).unwrap();
    }
    log.set_high_watermark(150).unwrap();
    log.compact().unwrap();
    // Records at or above the high watermark are all still there (the
    // segment holding 150 is not wholly below it either).
    for o in 150..300 {
        assert_eq!(
            log.read(o, 1, ReadBound::LogEnd).unwrap().records().next().unwrap().offset,
            o,
            "offset {o}"
        );
    }
    // Below it, superseded records went.
    let kept_below = (0..150)
        .filter(|&o| {
            log.read(o, 1, ReadBound::LogEnd).unwrap().records().next().is_some_and(|r| r.offset == o)
        })
        .count();
    assert!(kept_below < 150, "compaction ran below the high watermark");
}

/// Leader batches at `bases`, each of `n` records of `size` bytes, back to
/// back (what one fetch of a compacted leader can return: gaps between
/// batches are legal).
fn leader_batches(bases: &[u64], n: usize, size: usize) -> Vec<u8> {
    let limits = annals::format::EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 1 << 20 };
    let mut out = Vec::new();
    for &base in bases {
        let records: Vec<Record> = (0..n).map(|i| Record::new(vec![b'a' + (i % 26) as u8; size])).collect();
        let meta = BatchMeta { leader_epoch: 3, ..BatchMeta::default() };
        annals::format::encode_batch(&mut out, base, meta, &records, 1_000, limits).unwrap();
    }
    out
}

/// One replica append of more than a segment holds is written in runs,
/// each into a segment that takes it (the writer rolls between runs), and
/// reads back whole.
#[test]
fn a_replica_append_larger_than_a_segment_is_written_in_runs_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let follower = open(dir.path());
    let bases: Vec<u64> = (0..12).map(|i| i * 4).collect();
    let bytes = leader_batches(&bases, 4, 100); // ~12 x 480 B: about 3 segments of 2048 B
    let info = follower.append_replica(&bytes).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 47));
    assert!(follower.segment_count() >= 3, "{} segments", follower.segment_count());
    let mut read = Vec::new();
    let mut at = 0;
    while at < follower.log_end_offset() {
        let fetched = follower.read(at, 1 << 20, ReadBound::LogEnd).unwrap();
        read.extend_from_slice(fetched.bytes());
        at = fetched.next_offset().unwrap();
    }
    assert_eq!(read, bytes, "the leader's bytes, unchanged");
    drop(follower);
    let reopened = open(dir.path());
    assert_eq!(reopened.log_end_offset(), 48);
    assert_eq!(reopened.latest_epoch(), Some(3));
}

/// Batches whose offsets span more than an index entry's 31-bit relative
/// offset can say go to separate segments, though they fit one by size
/// (Kafka's `canConvertToRelativeOffset`): here a compacted batch whose
/// lastOffsetDelta (kept by compaction) reaches near `i32::MAX`.
#[test]
fn replica_batches_past_the_relative_offset_range_go_to_separate_segments() {
    let dir = tempfile::tempdir().unwrap();
    let follower = open(dir.path());
    let mut bytes = leader_batches(&[0], 2, 10);
    let wide = i32::MAX as u32 - 1;
    let mut header = annals::format::BatchHeader::parse(&bytes).unwrap();
    header.last_offset_delta = wide;
    annals::format::rewrite_header(&mut bytes, &mut header);
    let next = u64::from(wide) + 1;
    bytes.extend(leader_batches(&[next], 2, 10));
    let info = follower.append_replica(&bytes).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, next + 1));
    assert_eq!(follower.segment_count(), 2, "one segment each");
    let fetched = follower.read(next, 1 << 20, ReadBound::LogEnd).unwrap();
    assert_eq!(fetched.records().next().map(|r| r.offset), Some(next));
    drop(follower);
    assert_eq!(open(dir.path()).log_end_offset(), next + 2, "and recovery reads both");
}

/// A truncation below the checkpointed high watermark lowers the
/// checkpoint too, before anything is appended after the cut: left above,
/// it would, after a crash, call records of the new history committed that
/// no replica has acknowledged (Kafka's follower truncation lowers it).
/// The same for the cleaner's checkpoint (Kafka's
/// `maybeTruncateCheckpoint`): records appended after the cut are dirty.
#[test]
fn a_truncation_lowers_the_checkpointed_high_watermark_and_cleaner_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = annals::LogConfig { cleanup_policy: annals::CleanupPolicy::Compact, ..Default::default() };
    let keyed = |n: u64| -> Vec<annals::Record> {
        (0..n).map(|i| annals::Record::with_key(vec![i as u8 % 3], vec![i as u8])).collect()
    };
    let log = annals::PartitionLog::open(dir.path(), config.clone()).unwrap();
    log.append(&keyed(10)).unwrap();
    log.set_high_watermark(10).unwrap();
    log.checkpoint_high_watermark().unwrap();
    log.roll().unwrap();
    log.compact().unwrap();
    log.truncate_to(5).unwrap();
    assert_eq!(log.high_watermark(), 5);
    log.append(&keyed(5)).unwrap();
    log.flush().unwrap();
    log.abandon();
    let log = annals::PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.high_watermark(), 5, "offsets 5..10 of the new history are not committed");
    let cleaner = std::fs::read_to_string(dir.path().join(annals::log::CLEANER_OFFSET_FILE)).unwrap();
    assert!(cleaner.contains("offset=5\n"), "{cleaner}");
}
