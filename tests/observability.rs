//! The engine's tracing events, each with the fields it names. Its own
//! binary: a thread's scoped subscriber (`with_default`) misses events
//! whose callsite another test's thread registered first in the same
//! process (tracing's per-callsite interest cache).

use annals::{Error, LogConfig, PartitionLog, Record, Store, StoreConfig, TopicConfig};
use std::sync::{Arc, Mutex};

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
        let log = PartitionLog::open_with(
            "/log",
            LogConfig::default(),
            annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
        )
        .unwrap();
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
