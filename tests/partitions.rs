//! Issue 20: many partitions on few descriptors, a store that survives one
//! bad partition, tracing events and exact metrics.

use std::sync::{Arc, Mutex};

use annals::ReadBound;
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
        Err(Error::PartitionOffline { partition: 1, cause, .. }) => {
            assert!(matches!(*cause, Error::Corruption { .. }), "{cause:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(topic.partition(1), Err(Error::PartitionOffline { .. })));
    for p in [0, 2] {
        topic.append_to(p, &[Record::new("still serving")]).unwrap();
        let partition = topic.partition(p).unwrap();
        assert_eq!(partition.read(0, 1 << 20, ReadBound::LogEnd).unwrap().records().count(), 21);
    }
    assert_eq!(topic.partitions().len(), 2, "handles only for online partitions");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing was cut");
}

/// Collects every event's message and fields as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
}

#[test]
fn tracing_events_for_open_roll_retention_and_offline_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let events = capture_events(|| {
        let one_thread = StoreConfig { num_recovery_threads_per_data_dir: 1, ..StoreConfig::default() };
        let store = Store::open(dir.path(), one_thread.clone()).unwrap();
        let mut c = TopicConfig::with_partitions(2);
        c.log.segment_bytes = 1024;
        c.log.index_interval_bytes = 512;
        c.log.retention_bytes = 2048;
        let topic = store.create_topic("t", c).unwrap();
        for i in 0..40 {
            topic.append_to(0, &[Record::new(format!("{i:0100}"))]).unwrap();
        }
        store.enforce_retention().unwrap();
        store.close().unwrap();
        drop((store, topic));
        std::fs::write(dir.path().join("t-1").join("00000000000000000000.log"), b"not a batch").unwrap();
        std::fs::remove_file(dir.path().join("t-1").join("clean_shutdown")).ok();
        std::fs::write(dir.path().join("t-1").join("stray"), b"?").unwrap();
        let store = Store::open(dir.path(), one_thread).unwrap();
        assert_eq!(store.metrics().offline_partitions, 1);
    });
    let has = |what: &[&str]| has_event(&events, what);
    assert!(has(&["rolled a new segment"]), "{events:#?}");
    assert!(has(&["deleted segments below the log start offset"]), "{events:#?}");
    assert!(has(&["store opened"]), "{events:#?}");
    assert!(has(&["store closed"]), "{events:#?}");
    assert!(has(&["partition offline", "stray"]), "{events:#?}");
}

/// Whether one event holds every one of `parts`.
fn has_event(events: &[String], parts: &[&str]) -> bool {
    events.iter().any(|e| parts.iter().all(|p| e.contains(p)))
}

/// Runs `f` with every `tracing` event captured; returns the events.
fn capture_events(f: impl FnOnce()) -> Vec<String> {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    tracing::subscriber::with_default(subscriber, f);
    let events = captured.0.lock().unwrap().clone();
    events
}

/// The events of recovery (segments found, torn tail cut, index rebuilt),
/// compaction, a full disk and a poisoned partition, each with what it
/// names.
#[test]
fn tracing_events_for_recovery_compaction_disk_full_and_poison() {
    use annals::io::sim::SimFs;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        cleanup_policy: annals::CleanupPolicy::Compact,
        ..LogConfig::default()
    };
    let events = capture_events(|| {
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for i in 0..40 {
            log.append(&[Record::with_key(format!("k{}", i % 4), format!("{i:0100}"))]).unwrap();
        }
        log.set_high_watermark(log.log_end_offset()).ok();
        let report = log.compact().unwrap();
        assert!(report.records_removed > 0, "{report:?}");
        log.close().unwrap();
        drop(log);
        // A torn last write in the active segment, the clean-shutdown
        // marker gone with the crash, and a sealed segment's index garbled.
        let mut segments: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        segments.sort();
        let active = segments.last().unwrap();
        let head = std::fs::read(&segments[0]).unwrap()[..30].to_vec();
        let mut bytes = std::fs::read(active).unwrap();
        bytes.extend_from_slice(&head);
        std::fs::write(active, bytes).unwrap();
        std::fs::remove_file(dir.path().join("clean_shutdown")).unwrap();
        std::fs::write(segments[0].with_extension("index"), [0xFF; 16]).unwrap();
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        assert_eq!(log.recovery_report().bytes_truncated, 30);
        drop(log);

        let fs = SimFs::new();
        let log = PartitionLog::open_with(Arc::new(fs.clone()), "/log", LogConfig::default()).unwrap();
        fs.set_capacity(Some(2048)); // the checkpoints fit, a 4 KiB record does not
        assert!(matches!(log.append(&[Record::new("x".repeat(4096))]), Err(Error::DiskFull { .. })));
        fs.set_capacity(None);
        fs.fail_at(fs.op_count(), std::io::ErrorKind::Other, false);
        assert!(log.append(&[Record::new("y")]).is_err());
        assert!(matches!(log.append(&[Record::new("z")]), Err(Error::Poisoned { .. })));
    });
    let has = |what: &[&str]| has_event(&events, what);
    assert!(has(&["compacted", "records_removed="]), "{events:#?}");
    assert!(has(&["segments found", "clean_shutdown=false"]), "{events:#?}");
    assert!(has(&["torn tail cut", "bytes=30", "from_offset=40"]), "{events:#?}");
    assert!(has(&["index rebuilt", "00000000000000000000.log"]), "{events:#?}");
    assert!(has(&["disk full", "dir=/log"]), "{events:#?}");
    assert_eq!(events.iter().filter(|e| e.contains("partition poisoned")).count(), 1, "{events:#?}");
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
