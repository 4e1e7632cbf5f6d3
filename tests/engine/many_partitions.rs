//! Many partitions on few descriptors, a store that survives one
//! bad partition, and exact metrics.

use annals::{AdminError, ReadBound};
use annals::{Durability, Error, LogConfig, PartitionLog, Record, Store, StoreConfig, TopicConfig};

fn config(max_open_files: usize) -> StoreConfig {
    StoreConfig { max_open_files, ..StoreConfig::default() }
}

#[test]
fn five_hundred_partitions_on_sixty_four_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let topic_config = |n| {
        let mut c = TopicConfig::with_partitions(n);
        c.log.segment_bytes = 4096; // several segments per partition
        c
    };
    {
        let store = Store::open(dir.path(), config(64)).unwrap();
        let topic = store.create_topic("many", topic_config(500)).unwrap();
        for round in 0..3u32 {
            for p in 0..500 {
                let value = format!("{p}-{round}-{}", "x".repeat(2000));
                topic.append_to(p, &[Record::with_key(format!("k{p}"), value)]).unwrap();
            }
        }
        let m = store.metrics();
        assert!(m.files.peak_open_files <= 64, "{:?}", m.files);
        assert!(m.files.evictions > 1000, "{:?}", m.files);
        assert!(m.files.mappings <= 64, "{:?}", m.files);
        assert_eq!(m.records_appended, 1500, "the offsets topic appends nothing here");
        store.close().unwrap();
    }
    let store = Store::open(dir.path(), config(64)).unwrap();
    let topic = store.topic("many").unwrap();
    for p in 0..500 {
        let partition = topic.partition(p).unwrap();
        let records = partition.read(0, 1 << 20, ReadBound::LogEnd).unwrap().to_records();
        // Reads stop at the first segment's end; read on from there.
        let mut values: Vec<Vec<u8>> = records.iter().map(|r| r.value.as_ref().unwrap().to_vec()).collect();
        let mut next = records.last().unwrap().offset + 1;
        while next < partition.log_end_offset() {
            let more = partition.read(next, 1 << 20, ReadBound::LogEnd).unwrap().to_records();
            next = more.last().unwrap().offset + 1;
            values.extend(more.iter().map(|r| r.value.as_ref().unwrap().to_vec()));
        }
        assert_eq!(values.len(), 3, "partition {p}");
        for (round, v) in values.iter().enumerate() {
            assert!(v.starts_with(format!("{p}-{round}-").as_bytes()), "partition {p}");
        }
    }
    assert!(store.metrics().files.peak_open_files <= 64);
    store.close().unwrap();
}

#[test]
fn a_corrupt_partition_goes_offline_and_the_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let topic = store.create_topic("t", TopicConfig::with_partitions(3)).unwrap();
        for p in 0..3 {
            for i in 0..20 {
                topic.append_to(p, &[Record::new(format!("record {i} of {p}"))]).unwrap();
            }
        }
        store.close().unwrap();
    }
    // Damage a record in the middle of partition 1's cleanly closed log:
    // recovery must refuse it (synced data), never cut it.
    let segment = dir.path().join("t-1").join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let topic = store.topic("t").unwrap();
    let described = store.describe_topic("t").unwrap();
    assert!(described.partitions[0].offline.is_none());
    let why = described.partitions[1].offline.as_deref().expect("partition 1 is offline");
    assert!(why.contains("not cut") || why.contains("corrupt"), "{why}");
    assert_eq!(store.metrics().offline_partitions, 1);
    match topic.append_to(1, &[Record::new("no")]) {
        Err(Error::Admin(AdminError::PartitionOffline { partition: 1, cause, .. })) => {
            assert!(matches!(*cause, Error::Corruption { .. }), "{cause:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(topic.partition(1), Err(Error::Admin(AdminError::PartitionOffline { .. }))));
    for p in [0, 2] {
        topic.append_to(p, &[Record::new("still serving")]).unwrap();
        let partition = topic.partition(p).unwrap();
        assert_eq!(partition.read(0, 1 << 20, ReadBound::LogEnd).unwrap().records().count(), 21);
    }
    assert_eq!(topic.partitions().len(), 2, "handles only for online partitions");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing was cut");
}

#[test]
fn metrics_count_a_known_workload_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        PartitionLog::open(dir.path(), LogConfig { durability: Durability::Always, ..LogConfig::default() })
            .unwrap();
    assert_eq!(log.metrics().appends, 0);
    let mut bytes = 0;
    for i in 0..10 {
        let records: Vec<_> = (0..3).map(|j| Record::new(format!("{i}-{j}"))).collect();
        let before = log.size_bytes();
        log.append(&records).unwrap();
        bytes += log.size_bytes() - before;
    }
    let m = log.metrics();
    assert_eq!((m.appends, m.records_appended, m.bytes_appended), (10, 30, bytes));
    assert_eq!(m.fsyncs, 10, "Always: one fsync per lone append");
    assert_eq!(m.fsync_latency.count(), 10);
    assert_eq!((m.log_end_offset, m.durable_offset, m.segments, m.rolls), (30, 30, 1, 0));
    log.roll().unwrap();
    let m = log.metrics();
    assert_eq!((m.rolls, m.segments, m.fsyncs), (1, 2, 11), "a roll seals (fsyncs) the old segment");
    log.flush().unwrap();
    assert!(!log.metrics().unsynced);
}

#[test]
fn a_clean_close_fsyncs_only_the_partitions_written_since_the_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let t = store.create_topic("t", TopicConfig::with_partitions(4)).unwrap();
        t.append_to(0, &[Record::new("one")]).unwrap();
        store.close().unwrap();
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.topic("t").unwrap();
    let partitions = t.partitions();
    assert!(partitions.iter().all(|p| !p.metrics().unsynced));
    t.append_to(1, &[Record::new("two")]).unwrap();
    assert!(t.partition(1).unwrap().metrics().unsynced);
    assert!(partitions.iter().all(|p| p.metrics().fsyncs == 0), "the default policy defers them");
    store.close().unwrap();
    // The close sealed (one fsync, counted though a syncfs does it) only
    // the partition appended to.
    let fsyncs: Vec<u64> = partitions.iter().map(|p| p.metrics().fsyncs).collect();
    assert_eq!(fsyncs, [0, 1, 0, 0]);
    drop((store, t, partitions));
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let d = store.describe_topic("t").unwrap();
    assert_eq!(d.partitions.iter().map(|p| p.log_end_offset).collect::<Vec<_>>(), [1, 1, 0, 0]);
    for p in 0..4 {
        assert!(store.topic("t").unwrap().partition(p).unwrap().recovery_report().clean_shutdown);
    }
}
