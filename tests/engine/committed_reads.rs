//! Committed-only consumers of a replicated partition: they see only whole
//! batches below the high watermark and, tailing, wait for the high
//! watermark to move rather than for appends.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use annals::{BatchMeta, Record, StartAt, Store, StoreConfig, TopicConfig};

fn batch(n: usize, tag: &str) -> Vec<Record> {
    (0..n).map(|i| Record::new(format!("{tag}-{i}"))).collect()
}

#[test]
fn a_committed_reader_waits_for_the_high_watermark_not_for_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let partition = store.create_topic("t", TopicConfig::with_partitions(1)).unwrap().partition(0).unwrap();
    let log = partition.clone();
    partition.append(&batch(5, "a")).unwrap(); // offsets 0..5
    log.set_high_watermark(0).unwrap();
    let meta = BatchMeta::default();
    log.append_with(&batch(5, "b"), meta).unwrap(); // offsets 5..10

    let mut reader = partition.reader(StartAt::Earliest).committed_only();
    assert!(reader.poll().unwrap().is_empty(), "nothing committed yet");
    // Appends happened: a waiting committed reader must not return on them.
    let started = Instant::now();
    assert!(reader.poll_wait(Duration::from_millis(150)).unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150), "it waited out its timeout");

    // The high watermark moving (from another thread) wakes it.
    let mover = {
        let log = log.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            log.set_high_watermark(5).unwrap();
        })
    };
    let started = Instant::now();
    let fetched = reader.poll_wait(Duration::from_secs(30)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "woken by the move, not by the timeout");
    mover.join().unwrap();
    let offsets: Vec<u64> = fetched.records().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);

    // A high watermark inside the next batch commits none of it: the
    // reader keeps waiting until the batch is wholly below it.
    log.set_high_watermark(7).unwrap();
    assert!(reader.poll_wait(Duration::from_millis(50)).unwrap().is_empty());
    let mover = {
        let log = log.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            log.set_high_watermark(10).unwrap();
        })
    };
    let fetched = reader.poll_wait(Duration::from_secs(30)).unwrap();
    mover.join().unwrap();
    assert_eq!(fetched.records().map(|r| r.offset).collect::<Vec<_>>(), [5, 6, 7, 8, 9]);
    assert_eq!(reader.position(), 10);
}

#[test]
fn the_async_wait_of_a_committed_reader_resolves_on_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let partition = store.create_topic("t", TopicConfig::with_partitions(1)).unwrap().partition(0).unwrap();
    let log = partition.clone();
    log.set_high_watermark(0).unwrap();
    let reader = partition.reader(StartAt::Earliest).committed_only();
    let mut wait = Box::pin(reader.wait());
    let wakes = Arc::new(Wakes::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    partition.append(&batch(3, "a")).unwrap();
    assert!(wait.as_mut().poll(&mut cx).is_pending(), "an append is not a commit");
    let before = wakes.0.load(Ordering::SeqCst);
    log.set_high_watermark(3).unwrap();
    assert!(wakes.0.load(Ordering::SeqCst) > before, "the high watermark move woke the future");
    assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(3));
}

#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_durable_high_watermark_follows_the_fsyncs_and_survives_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = annals::LogConfig { durable_high_watermark: true, ..annals::LogConfig::default() };
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let topic = store.create_topic("t", TopicConfig { partitions: 1, log }).unwrap();
    let p = topic.partition(0).unwrap();
    p.append(&batch(3, "a")).unwrap();
    assert_eq!((p.log_end_offset(), p.high_watermark()), (3, 0), "nothing fsynced yet");
    assert!(p.read(0, 1 << 20, annals::ReadBound::HighWatermark).unwrap().to_records().is_empty());
    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || p.wait_for(0, annals::ReadBound::HighWatermark, Duration::from_secs(10)))
    };
    std::thread::sleep(Duration::from_millis(50));
    p.sync().unwrap();
    assert!(waiter.join().unwrap(), "an fsync wakes a reader waiting on the high watermark");
    assert_eq!(p.high_watermark(), 3);
    p.append(&batch(2, "b")).unwrap();
    assert_eq!(p.high_watermark(), 3);
    drop((p, topic));
    store.close().unwrap();
    drop(store);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert!(p.config().durable_high_watermark, "kept in the topic's metadata");
    assert_eq!(p.high_watermark(), 5, "a clean close made all of it durable");
}
