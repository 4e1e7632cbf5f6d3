//! Lifecycle regressions: one writer per partition (the directory lock),
//! no compaction on a closed or poisoned log, offset commits that wait only
//! for their own fsync, no temp files left by a full disk, offsets bounded
//! by Kafka's `i64::MAX`, a closed store that unlocks. Each test is named
//! after the defect it pins; each failed before its fix.

use annals_testkit as common;

use std::sync::Arc;
use std::time::Duration;

use annals::io::sim::SimFs;
use annals::io::{FileSystem, SharedFs};
use annals::{
    CleanupPolicy, Durability, Error, LogConfig, PartitionLog, Record, Store, StoreConfig, TopicConfig,
};
use annals::{OpenError, ReadBound};

fn open_sim(fs: &SimFs, config: LogConfig) -> annals::Result<PartitionLog> {
    PartitionLog::open_with("/log", config, annals::OpenOptions::default().with_fs(Arc::new(fs.clone())))
}

/// Defect 1: a second handle on one partition directory appended over the
/// first one's acknowledged records.
#[test]
fn regression_two_writers_on_one_partition_overwrote_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let a = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    a.append(&[Record::new("a1")]).unwrap();
    let second = PartitionLog::open(dir.path(), LogConfig::default());
    let mut acknowledged = 1;
    match second {
        Err(Error::Open(OpenError::LogLocked { dir: locked })) => assert_eq!(locked, dir.path()),
        Err(e) => panic!("the second open must say the directory is locked, not {e}"),
        Ok(b) => {
            b.append(&[Record::new("b1")]).unwrap();
            acknowledged += 1;
        }
    }
    a.append(&[Record::new("a2")]).unwrap();
    acknowledged += 1;
    drop(a);
    let reopened = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(reopened.log_end_offset(), acknowledged, "every acknowledged record is on disk");
}

/// Defect 1, in another process's terms: the lock is the file system's
/// (flock), so a second open of the same directory fails while the first
/// handle lives and succeeds once it is dropped.
#[test]
fn regression_the_partition_lock_lasts_as_long_as_the_log() {
    let fs = SimFs::new();
    let a = open_sim(&fs, LogConfig::default()).unwrap();
    assert!(matches!(open_sim(&fs, LogConfig::default()), Err(Error::Open(OpenError::LogLocked { .. }))));
    a.close().unwrap();
    assert!(
        matches!(open_sim(&fs, LogConfig::default()), Err(Error::Open(OpenError::LogLocked { .. }))),
        "a closed log still serves reads: its lock holds until it is dropped"
    );
    drop(a);
    open_sim(&fs, LogConfig::default()).unwrap();
}

fn compacted_config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 1024,
        index_interval_bytes: 128,
        segment_index_bytes: 4096,
        durability: Durability::None,
        ..LogConfig::default()
    }
}

fn compacted_with_sealed_segments(fs: &SimFs) -> PartitionLog {
    let log = open_sim(fs, compacted_config()).unwrap();
    for i in 0..60u32 {
        log.append(&[Record::with_key(format!("k{}", i % 5), format!("v{i}"))]).unwrap();
    }
    log.roll().unwrap();
    log
}

/// Every record (offset, key, value), gaps from compaction allowed.
fn contents(log: &PartitionLog) -> Vec<(u64, Option<bytes::Bytes>, Option<bytes::Bytes>)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let fetched = log.read(at, 1 << 20, ReadBound::LogEnd).unwrap();
        out.extend(fetched.to_records().into_iter().map(|r| (r.offset, r.key, r.value)));
        at = fetched.next_offset().unwrap();
    }
    out
}

/// Defect 2: compaction ran on a closed log.
#[test]
fn regression_compaction_ran_on_a_closed_log() {
    let fs = SimFs::new();
    let log = compacted_with_sealed_segments(&fs);
    log.close().unwrap();
    let files = fs.list_dir("/log".as_ref()).unwrap();
    assert!(matches!(log.compact(), Err(Error::Closed)));
    assert_eq!(fs.list_dir("/log".as_ref()).unwrap(), files, "a closed log's files are left alone");
}

/// Defect 2: compaction ran on a poisoned log, and an I/O error inside a
/// compaction did not poison it. Every mutating operation of a compaction
/// fails once in turn: an EIO poisons the log (later appends fail), a full
/// disk does not, and either way the log reads the same records a reopen
/// does.
#[test]
fn regression_compaction_ignored_poison_and_its_failures_did_not_poison() {
    let fs = SimFs::new();
    let log = compacted_with_sealed_segments(&fs);
    let before = fs.op_count();
    log.compact().unwrap();
    let ops = fs.op_count() - before;
    assert!(ops > 5, "a compaction does I/O ({ops} operations)");
    for kind in [std::io::ErrorKind::Other, std::io::ErrorKind::StorageFull] {
        for n in 0..ops {
            let fs = SimFs::new();
            let log = compacted_with_sealed_segments(&fs);
            fs.fail_at(fs.op_count() + n, kind, false);
            let result = log.compact();
            fs.clear_faults();
            let appended = log.append(&[Record::with_key("k0", "after")]);
            let poisoned = matches!(appended, Err(Error::Poisoned { .. }));
            match (&result, kind) {
                (Ok(_), _) => assert!(appended.is_ok(), "op {n}: {appended:?}"),
                // Any I/O error but a full disk poisons.
                (Err(_), std::io::ErrorKind::Other) => {
                    assert!(poisoned, "op {n}: {result:?} then {appended:?}")
                }
                // A full disk poisons only inside the swap (files and memory
                // may differ); before it, nothing changed.
                (Err(Error::DiskFull { .. } | Error::Io { .. }), _) => assert!(poisoned || appended.is_ok()),
                (Err(e), _) => panic!("op {n} {kind:?}: unexpected {e}"),
            }
            if poisoned {
                assert!(
                    matches!(log.compact(), Err(Error::Poisoned { .. })),
                    "op {n}: compaction on a poisoned log"
                );
            }
            let seen = contents(&log);
            drop(log);
            let reopened =
                open_sim(&fs, compacted_config()).unwrap_or_else(|e| panic!("op {n} {kind:?}: reopen: {e}"));
            let after = contents(&reopened);
            if appended.is_ok() {
                assert_eq!(seen, after, "op {n} {kind:?}: memory and files agree");
            }
        }
    }
}

/// Defect 3: one group's durable offset commit waited for another group's
/// fsync (a global mutex was held across the append).
#[test]
fn regression_an_offset_commit_waited_for_another_groups_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let gate = common::gate::GatedFs::default();
    let fs: SharedFs = Arc::new(gate.clone());
    let store =
        Store::open_with(dir.path(), StoreConfig::default(), annals::OpenOptions::default().with_fs(fs))
            .unwrap();
    store.create_topic("orders", TopicConfig::with_partitions(1)).unwrap();
    let partitions = StoreConfig::default().offsets_topic.partitions;
    let (a, b) = (
        "group-a",
        (0..)
            .map(|i| format!("group-b{i}"))
            .find(|g| {
                annals::partition_for_key(g.as_bytes(), partitions)
                    != annals::partition_for_key(b"group-a", partitions)
            })
            .unwrap(),
    );
    let a_partition = annals::partition_for_key(a.as_bytes(), partitions);
    gate.arm(&dir.path().join(format!("{}-{a_partition}", annals::OFFSETS_TOPIC)));
    let committer = {
        let store = store.clone();
        std::thread::spawn(move || store.offsets().commit(a, "orders", 0, 5))
    };
    assert!(gate.wait_blocked(Duration::from_secs(10)), "group a's commit reached its fsync");
    let other = {
        let store = store.clone();
        let b = b.clone();
        std::thread::spawn(move || store.offsets().commit(&b, "orders", 0, 7))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !other.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let overtook = other.is_finished() && gate.is_blocked();
    gate.release();
    committer.join().unwrap().unwrap();
    other.join().unwrap().unwrap();
    assert!(overtook, "group b's commit finished while group a's fsync was in flight");
    assert_eq!(store.offsets().fetch(a, "orders", 0).unwrap(), Some(5));
    assert_eq!(store.offsets().fetch(&b, "orders", 0).unwrap(), Some(7));
}

/// Defect 3's fix must keep commits of one key in log order: the table
/// agrees with the log (what a reopen rebuilds) after racing commits.
#[test]
fn concurrent_commits_of_one_key_keep_the_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.create_topic("orders", TopicConfig::with_partitions(1)).unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    store.offsets().commit("g", "orders", 0, t * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let live = store.offsets().fetch("g", "orders", 0).unwrap();
    drop(store);
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(reopened.offsets().fetch("g", "orders", 0).unwrap(), live);
}

/// Defect 4: a checkpoint write that failed on a full disk left its `.tmp`
/// file behind in the partition directory.
#[test]
fn regression_a_full_disk_left_checkpoint_temp_files_behind() {
    let fs = SimFs::new();
    let log = open_sim(&fs, LogConfig::default()).unwrap();
    log.append(&[Record::new("x")]).unwrap();
    fs.set_capacity(Some(0));
    assert!(log.flush().is_err() || log.roll().is_err() || log.close().is_err());
    fs.set_capacity(None);
    let temps = |fs: &SimFs| -> Vec<String> {
        fs.list_dir("/log".as_ref()).unwrap().into_iter().filter(|n| n.ends_with(".tmp")).collect()
    };
    assert_eq!(temps(&fs), Vec::<String>::new(), "a failed checkpoint write removes its temp file");
    drop(log);
    let log = open_sim(&fs, LogConfig::default()).unwrap();
    assert_eq!(temps(&fs), Vec::<String>::new(), "no temp file survives an open");
    // A stray temp of any name is never the truth: the open removes it too.
    let stray = fs.open("/log/anything.tmp".as_ref(), annals::io::OpenMode::Create).unwrap();
    drop(stray);
    drop(log);
    open_sim(&fs, LogConfig::default()).unwrap();
    assert_eq!(temps(&fs), Vec::<String>::new());
}

/// Defect 6: a segment file name with a base offset near `u64::MAX`
/// overflowed (a panic) instead of being refused.
#[test]
fn regression_a_huge_base_offset_in_a_file_name_panicked() {
    for base in [u64::MAX, u64::MAX - 3, i64::MAX as u64 + 1] {
        let fs = SimFs::new();
        fs.create_dir_all("/log".as_ref()).unwrap();
        let name = format!("/log/{base:020}.log");
        let file = fs.open(name.as_ref(), annals::io::OpenMode::Create).unwrap();
        drop(file);
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            open_sim(&fs, LogConfig::default()).map(drop)
        }));
        match opened {
            Ok(Err(Error::Open(OpenError::UnexpectedFile { path }))) => {
                assert_eq!(path.to_str(), Some(name.as_str()))
            }
            Ok(other) => panic!("base {base}: {other:?}"),
            Err(_) => panic!("base {base}: open panicked"),
        }
    }
}

/// Defect 6: the largest offset is Kafka's (`i64::MAX`): an append that
/// would pass it is refused, and nothing is written.
#[test]
fn regression_offsets_stop_at_i64_max() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    log.truncate_fully_and_start_at(i64::MAX as u64 - 1).unwrap();
    log.append(&[Record::new("last")]).unwrap();
    let refused = log.append(&[Record::new("past")]);
    assert!(matches!(refused, Err(Error::OffsetOutOfRange { .. })), "{refused:?}");
    assert_eq!(log.log_end_offset(), i64::MAX as u64);
    drop(log);
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), i64::MAX as u64);
}

/// Defect 8: a closed store kept its directory locked until the `Store`
/// value itself was dropped.
#[test]
fn regression_a_closed_store_kept_its_directory_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let topic = store.create_topic("t", TopicConfig::with_partitions(2)).unwrap();
    topic.append(&[Record::new("x")]).unwrap();
    drop(topic);
    store.close().unwrap();
    let again = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(
        again.describe_topic("t").unwrap().partitions.iter().map(|p| p.log_end_offset).sum::<u64>(),
        1
    );
    assert!(matches!(store.topic("t"), Err(Error::Closed)));
    assert!(matches!(store.create_topic("u", TopicConfig::with_partitions(1)), Err(Error::Closed)));
}
