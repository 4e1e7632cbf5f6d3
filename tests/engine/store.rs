//! The store: topics, metadata, the directory lock, partitioning, bad input.

use std::fs;

use annals::{
    partition_for_key, Error, Partition, Reader, Record, StartAt, Store, StoreConfig, Topic, TopicConfig,
};
use annals::{AdminError, AppendError, OpenError, ReadBound};
use bytes::Bytes;

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreConfig::default()).unwrap()
}

#[test]
fn handles_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Store>();
    check::<Topic>();
    check::<Partition>();
    check::<Reader>();
}

#[test]
fn topics_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let config = TopicConfig {
        partitions: 4,
        log: annals::LogConfig {
            segment_bytes: 1 << 20,
            durability: annals::Durability::Interval { flush_messages: 100, flush_ms: 500 },
            ..Default::default()
        },
    };
    store.create_topic("orders", config.clone()).unwrap();
    store.create_topic("audit.log_v2", TopicConfig::with_partitions(1)).unwrap();
    store.topic("orders").unwrap().append_to(2, &[Record::new("x"), Record::new("y")]).unwrap();
    store.flush().unwrap();
    let p2 = store.topic("orders").unwrap().partition(2).unwrap();
    assert_eq!(p2.durable_offset(), 2, "flush made both records durable");
    drop(p2); // a live handle would keep the directory locked
    assert!(dir.path().join("orders-3").is_dir(), "Kafka's <topic>-<partition> layout");
    store.close().unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.list_topics(), ["audit.log_v2", "orders"]);
    let d = store.describe_topic("orders").unwrap();
    assert_eq!(d.config, config);
    assert_eq!(d.partitions.len(), 4);
    assert_eq!((d.partitions[2].log_start_offset, d.partitions[2].log_end_offset), (0, 2));
    assert_eq!(d.partitions[0].log_end_offset, 0);
}

#[test]
fn second_open_is_refused_while_any_handle_lives() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let topic = store.create_topic("t", TopicConfig::default()).unwrap();
    assert!(matches!(
        Store::open(dir.path(), StoreConfig::default()),
        Err(Error::Open(OpenError::StoreLocked { .. }))
    ));
    drop(store);
    // A topic handle still writes to these files: its partitions share the
    // store's lock, which holds until the last of them is dropped.
    assert!(matches!(
        Store::open(dir.path(), StoreConfig::default()),
        Err(Error::Open(OpenError::StoreLocked { .. }))
    ));
    // Nor can the partition be opened on its own meanwhile.
    let alone = annals::PartitionLog::open(dir.path().join("t-0"), annals::LogConfig::default());
    assert!(matches!(alone, Err(Error::Open(OpenError::LogLocked { .. }))), "{alone:?}");
    topic.append_to(0, &[Record::new("still mine")]).unwrap();
    drop(topic);
    let store = open(dir.path());
    assert_eq!(store.topic("t").unwrap().partition(0).unwrap().log_end_offset(), 1);
}

#[test]
fn bad_names_counts_and_lookups_get_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for bad in ["", ".", "..", "../escape", "a/b", "white space", &"x".repeat(250)] {
        assert!(
            matches!(
                store.create_topic(bad, TopicConfig::default()),
                Err(Error::Admin(AdminError::InvalidTopicName { .. }))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.create_topic("t", TopicConfig::with_partitions(0)),
        Err(Error::Admin(AdminError::InvalidPartitionCount { partitions: 0, .. }))
    ));
    assert!(matches!(
        store.create_topic("t", TopicConfig::with_partitions(1_000_000)),
        Err(Error::Admin(AdminError::InvalidPartitionCount { .. }))
    ));
    let bad_log =
        TopicConfig { partitions: 1, log: annals::LogConfig { segment_bytes: 1, ..Default::default() } };
    assert!(matches!(store.create_topic("t", bad_log), Err(Error::InvalidConfig { .. })));
    assert!(store.list_topics().is_empty(), "refused creates leave nothing");
    let t = store.create_topic("t", TopicConfig::with_partitions(2)).unwrap();
    assert!(matches!(
        store.create_topic("t", TopicConfig::default()),
        Err(Error::Admin(AdminError::TopicExists { .. }))
    ));
    assert!(matches!(store.topic("nope"), Err(Error::Admin(AdminError::UnknownTopic { .. }))));
    assert!(matches!(
        t.partition(2),
        Err(Error::Admin(AdminError::PartitionOutOfRange { partition: 2, partitions: 2, .. }))
    ));
    assert!(matches!(
        t.append_to(9, &[Record::new("x")]),
        Err(Error::Admin(AdminError::PartitionOutOfRange { .. }))
    ));
    assert!(matches!(
        t.append(&[]),
        Err(Error::Append(AppendError::Encode(annals::format::EncodeError::Empty)))
    ));
    // Nothing escaped the data directory.
    let parent: Vec<_> = fs::read_dir(dir.path().parent().unwrap()).unwrap().collect();
    assert!(parent.iter().all(|e| !e.as_ref().unwrap().file_name().to_string_lossy().contains("escape")));
}

#[test]
fn keyed_records_land_where_kafka_puts_them_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("customer-{i}")).collect();
    let placed = |store: &Store| -> Vec<u32> {
        let topic = store.topic("orders").unwrap();
        keys.iter().map(|k| topic.append(&[Record::with_key(k.clone(), "v")]).unwrap()[0].partition).collect()
    };
    let store = open(dir.path());
    store.create_topic("orders", TopicConfig::with_partitions(7)).unwrap();
    let first = placed(&store);
    drop(store);
    let store = open(dir.path());
    assert_eq!(placed(&store), first);
    for (k, p) in keys.iter().zip(&first) {
        assert_eq!(*p, partition_for_key(k.as_bytes(), 7));
    }
    let used: std::collections::BTreeSet<_> = first.iter().collect();
    assert_eq!(used.len(), 7, "200 keys spread over every partition");
}

#[test]
fn a_keyed_batch_is_grouped_by_partition_and_unkeyed_batches_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let topic = store.create_topic("t", TopicConfig::with_partitions(3)).unwrap();
    let records: Vec<_> = (0..30).map(|i| Record::with_key(format!("k{i}"), format!("{i}"))).collect();
    let appended = topic.append(&records).unwrap();
    assert!(appended.len() > 1);
    let total: u64 = appended.iter().map(|a| a.info.last_offset - a.info.first_offset + 1).sum();
    assert_eq!(total, 30);
    // Order within each partition is the order given.
    for p in topic.partitions() {
        let values: Vec<u32> = p
            .read(0, 1 << 20, ReadBound::LogEnd)
            .unwrap()
            .records()
            .map(|r| std::str::from_utf8(r.value.unwrap()).unwrap().parse().unwrap())
            .collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
    }
    // Unkeyed: each call goes whole to one partition, the next call to the next.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let a = topic.append(&[Record::new("a"), Record::new("b")]).unwrap();
        assert_eq!(a.len(), 1, "sticky: one partition per call");
        seen.push(a[0].partition);
    }
    assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn records_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let p = store.create_topic("t", TopicConfig::default()).unwrap().partition(0).unwrap();
    let given = vec![
        Record::with_key("k", "v")
            .timestamp_ms(1_234)
            .header("trace", Some(Bytes::from_static(b"abc")))
            .header("trace", None)
            .header("empty", Some(Bytes::new())),
        Record::tombstone("k").timestamp_ms(5_678),
        Record { key: Some(Bytes::new()), value: Some(Bytes::new()), ..Record::default() },
    ];
    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    p.append(&given).unwrap();
    let after =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let got = p.read(0, 1 << 20, ReadBound::LogEnd).unwrap().to_records();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&given) {
        assert_eq!((&g.key, &g.value, &g.headers), (&w.key, &w.value, &w.headers));
    }
    assert_eq!((got[0].timestamp_ms, got[1].timestamp_ms), (1_234, 5_678));
    assert!((before..=after).contains(&got[2].timestamp_ms), "append time when none is given");
    assert_eq!(got[2].value.as_deref(), Some(&b""[..]), "empty is not absent");
    assert_eq!(got[1].value, None, "tombstone");
}

#[test]
fn readers_start_earliest_latest_or_at_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let p = store.create_topic("t", TopicConfig::default()).unwrap().partition(0).unwrap();
    p.append(&(0..10).map(|i| Record::new(format!("{i}"))).collect::<Vec<_>>()).unwrap();
    let offsets = |r: &mut Reader| r.poll().unwrap().records().map(|r| r.offset).collect::<Vec<_>>();
    assert_eq!(offsets(&mut p.reader(StartAt::Earliest)).len(), 10);
    assert_eq!(offsets(&mut p.reader(StartAt::Offset(7))), [7, 8, 9]);
    let mut latest = p.reader(StartAt::Latest);
    assert!(offsets(&mut latest).is_empty());
    p.append(&[Record::new("new")]).unwrap();
    assert_eq!(offsets(&mut latest), [10]);
    let mut past = p.reader(StartAt::Offset(99));
    assert!(matches!(past.poll(), Err(Error::OffsetOutOfRange { offset: 99, .. })));
    past.seek(11);
    assert!(past.poll().unwrap().is_empty());
}

#[test]
fn interrupted_delete_is_finished_and_strays_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("gone", TopicConfig::with_partitions(2)).unwrap();
    store.create_topic("kept", TopicConfig::default()).unwrap();
    store.delete_topic("gone").unwrap();
    assert!(!dir.path().join("gone-0").exists());
    assert!(matches!(store.delete_topic("gone"), Err(Error::Admin(AdminError::UnknownTopic { .. }))));
    let kept = store.topic("kept").unwrap();
    store
        .create_topic("half", TopicConfig::with_partitions(2))
        .unwrap()
        .append_to(1, &[Record::new("x")])
        .unwrap();
    drop((store, kept));

    // A crash after the delete was marked: the next open finishes it.
    let topics = dir.path().join("topics");
    fs::rename(topics.join("half.meta"), topics.join("half.deleting")).unwrap();
    let store = open(dir.path());
    assert_eq!(store.list_topics(), ["kept"]);
    assert!(!dir.path().join("half-1").exists());
    drop(store);

    // Data of no topic is reported, not opened over and not deleted.
    fs::create_dir(dir.path().join("orphan-0")).unwrap();
    fs::write(dir.path().join("orphan-0").join("00000000000000000000.log"), b"data").unwrap();
    assert!(matches!(
        Store::open(dir.path(), StoreConfig::default()),
        Err(Error::Open(OpenError::UnexpectedFile { .. }))
    ));
    assert!(dir.path().join("orphan-0").join("00000000000000000000.log").exists());
    fs::remove_dir_all(dir.path().join("orphan-0")).unwrap();

    // Damaged metadata is reported.
    let meta = topics.join("kept.meta");
    let mut bytes = fs::read(&meta).unwrap();
    bytes[20] ^= 0x04;
    fs::write(&meta, bytes).unwrap();
    assert!(matches!(
        Store::open(dir.path(), StoreConfig::default()),
        Err(Error::Open(OpenError::InvalidMetadata { .. }))
    ));
}

#[test]
fn deleted_topic_handles_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let topic = store.create_topic("t", TopicConfig::default()).unwrap();
    store.delete_topic("t").unwrap();
    assert!(matches!(topic.append_to(0, &[Record::new("x")]), Err(Error::Closed)));
    let again = store.create_topic("t", TopicConfig::default()).unwrap();
    assert_eq!(again.partition(0).unwrap().log_end_offset(), 0, "a new topic starts empty");
}

#[test]
fn background_retention_runs_and_stops_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(annals::ManualClock::new(1_000_000));
    let config = StoreConfig { retention_check_interval_ms: Some(5), ..StoreConfig::default() };
    let fs = std::sync::Arc::new(annals::io::StdFileSystem);
    let store = Store::open_with(
        dir.path(),
        config.clone(),
        annals::OpenOptions::default().with_fs(fs.clone()).with_clock(clock.clone()),
    )
    .unwrap();
    assert!(store.maintenance_running());
    let log = annals::LogConfig { retention_ms: 60_000, ..annals::LogConfig::default() };
    let topic = store.create_topic("t", TopicConfig { partitions: 1, log }).unwrap();
    let partition = topic.partition(0).unwrap();
    for _ in 0..5 {
        partition.append(&[Record::new("old")]).unwrap();
        partition.roll().unwrap();
    }
    partition.append(&[Record::new("new")]).unwrap();
    clock.advance(120_000);
    // The thread, not this test, deletes the expired segments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while partition.log_start_offset() < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(partition.log_start_offset(), 5);
    store.close().unwrap();
    assert!(!store.maintenance_running(), "close stops the thread");
    drop((partition, topic, store));
    // Dropping a store with a running thread does not hang or leak the lock.
    let store = Store::open_with(
        dir.path(),
        config.clone(),
        annals::OpenOptions::default().with_fs(fs.clone()).with_clock(clock.clone()),
    )
    .unwrap();
    drop(store);
    Store::open_with(dir.path(), config, annals::OpenOptions::default().with_fs(fs).with_clock(clock))
        .unwrap();
}

/// A store keeps every partition's recovery point, log start, cleaner
/// offset and high watermark in one `checkpoints` file, none in the
/// partition's directory. A store written before the table (the values in
/// each partition's own files) opens with those values, moves them into
/// the table and removes the files.
#[test]
fn checkpoints_live_in_one_table_and_the_old_files_move_into_it() {
    use annals::log::{CHECKPOINTS_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};

    let (dir, part) = closed_store_with_log_start_3();
    assert!(dir.path().join(CHECKPOINTS_FILE).exists());
    for name in [RECOVERY_POINT_FILE, LOG_START_OFFSET_FILE] {
        assert!(!part.join(name).exists(), "{name} in the partition's directory");
    }
    assert_eq!(open(dir.path()).topic("t").unwrap().partition(0).unwrap().log_start_offset(), 3);

    // The layout before the table: no table, the partition's own files.
    // With the store's topics directory out of sight, a log opened alone
    // writes its own files, as every log did before the table.
    fs::remove_file(dir.path().join(CHECKPOINTS_FILE)).unwrap();
    let (topics, hidden) = (dir.path().join("topics"), dir.path().join("topics.hidden"));
    fs::rename(&topics, &hidden).unwrap();
    {
        let log = annals::PartitionLog::open(&part, annals::LogConfig::default()).unwrap();
        assert_eq!(log.log_start_offset(), 0, "the log start was only in the table");
        log.delete_records_before(4).unwrap();
        log.close().unwrap();
    }
    fs::rename(&hidden, &topics).unwrap();
    assert!(part.join(LOG_START_OFFSET_FILE).exists(), "a log opened alone keeps its own files");
    {
        let store = open(dir.path());
        assert_eq!(store.topic("t").unwrap().partition(0).unwrap().log_start_offset(), 4);
        for name in [RECOVERY_POINT_FILE, LOG_START_OFFSET_FILE] {
            assert!(!part.join(name).exists(), "{name} was not moved into the table");
        }
        store.close().unwrap();
    }
    assert_eq!(open(dir.path()).topic("t").unwrap().partition(0).unwrap().log_start_offset(), 4);
}

/// A store's partition opened alone (`PartitionLog::open` or `repair` on
/// its directory while the store is closed) reads and writes its row of
/// the store's table: the log start `delete_records` moved stays, and what
/// the lone handle changes is what the store opens with next.
#[test]
fn a_store_partition_opened_alone_keeps_its_row_of_the_table() {
    use annals::log::{LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};

    let (dir, part) = closed_store_with_log_start_3();
    {
        let log = annals::PartitionLog::open(&part, annals::LogConfig::default()).unwrap();
        assert_eq!(log.log_start_offset(), 3, "the log start in the store's table");
        log.delete_records_before(5).unwrap();
        log.truncate_to(8).unwrap();
        log.append(&[Record::new("after")]).unwrap();
        assert_eq!(log.log_end_offset(), 9);
        // Not closed: a lone handle's moves are durable as they happen.
        log.abandon();
    }
    // A repair of it alone (it closes the log it repaired) keeps the row too.
    let fs: annals::io::SharedFs = std::sync::Arc::new(annals::io::StdFileSystem);
    let repaired =
        annals::PartitionLog::repair(fs, &part, annals::LogConfig::default(), annals::AcceptDataLoss);
    assert_eq!(repaired.unwrap().log_end_offset, 9);
    for name in [RECOVERY_POINT_FILE, LOG_START_OFFSET_FILE] {
        assert!(!part.join(name).exists(), "{name}: a store's partition keeps its row, not its own files");
    }
    let store = open(dir.path());
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (5, 9));
    let last = p.read(8, 1 << 20, annals::ReadBound::LogEnd).unwrap().to_records();
    assert_eq!(last[0].value.as_deref(), Some(&b"after"[..]));
}

/// A closed store with topic `t` of one partition: 10 records, the first
/// 3 deleted (a log start inside the segment). The directory, and the
/// partition's.
fn closed_store_with_log_start_3() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let topic = store.create_topic("t", TopicConfig::with_partitions(1)).unwrap();
    let records: Vec<Record> = (0..10u8).map(|i| Record::new(vec![i])).collect();
    topic.append_to(0, &records).unwrap();
    topic.partition(0).unwrap().delete_records_before(3).unwrap();
    store.close().unwrap();
    let part = dir.path().join("t-0");
    (dir, part)
}
