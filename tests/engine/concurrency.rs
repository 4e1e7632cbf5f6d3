//! Many producers and consumers on one topic; tailing consumers wake on
//! append.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::thread;
use std::time::{Duration, Instant};

use annals::ReadBound;
use annals::{Record, StartAt, Store, StoreConfig, TopicConfig};

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;
const BATCHES: usize = 150;
const PARTITIONS: u32 = 3;

/// Value `producer:seq`; keyed records carry the producer as key so one
/// producer's keyed records all land in one partition, in order.
fn parse(value: &[u8]) -> (usize, usize) {
    let s = std::str::from_utf8(value).unwrap();
    let (p, n) = s.split_once(':').unwrap();
    (p.parse().unwrap(), n.parse().unwrap())
}

#[test]
fn every_record_read_once_per_consumer_in_order_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let small =
        annals::LogConfig { segment_bytes: 64 << 10, index_interval_bytes: 512, ..Default::default() };
    let topic = store.create_topic("t", TopicConfig { partitions: PARTITIONS, log: small }).unwrap();
    let done = Arc::new(AtomicBool::new(false));

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (topic, done) = (topic.clone(), done.clone());
            thread::spawn(move || {
                let mut readers: Vec<_> = topic
                    .partitions()
                    .iter()
                    .map(|p| p.reader(StartAt::Earliest).with_max_bytes(4096))
                    .collect();
                let mut seen: Vec<Vec<(u64, (usize, usize))>> = vec![Vec::new(); PARTITIONS as usize];
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let mut got_any = false;
                    for (p, reader) in readers.iter_mut().enumerate() {
                        let fetched = reader.poll_wait(Duration::from_millis(2)).unwrap();
                        for r in fetched.records() {
                            seen[p].push((r.offset, parse(r.value.unwrap())));
                            got_any = true;
                        }
                    }
                    // Producers finished before this pass began and it found
                    // nothing: everything has been read.
                    if finished && !got_any {
                        return seen;
                    }
                }
            })
        })
        .collect();

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let topic = topic.clone();
            thread::spawn(move || {
                let mut seq = 0;
                for b in 0..BATCHES {
                    let n = 1 + (b * 7 + id) % 9;
                    let batch: Vec<Record> = (0..n)
                        .map(|i| {
                            let value = format!("{id}:{}", seq + i);
                            if b % 2 == 0 {
                                Record::with_key(format!("producer-{id}"), value)
                            } else {
                                Record::new(value)
                            }
                        })
                        .collect();
                    seq += n;
                    topic.append(&batch).unwrap();
                }
                seq
            })
        })
        .collect();
    let produced: Vec<usize> = producers.into_iter().map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::SeqCst);

    let total: usize = produced.iter().sum();
    let ends: Vec<u64> = topic.partitions().iter().map(|p| p.log_end_offset()).collect();
    assert_eq!(ends.iter().sum::<u64>() as usize, total);
    for handle in consumers {
        let seen = handle.join().unwrap();
        let mut per_producer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (p, records) in seen.iter().enumerate() {
            // Dense offsets from 0 to the end: no gap, no duplicate.
            let offsets: Vec<u64> = records.iter().map(|r| r.0).collect();
            assert_eq!(offsets, (0..ends[p]).collect::<Vec<_>>(), "partition {p}");
            // Within a partition, each producer's records keep their order.
            let mut last: BTreeMap<usize, usize> = BTreeMap::new();
            for &(_, (producer, seq)) in records {
                if let Some(prev) = last.insert(producer, seq) {
                    assert!(seq > prev, "producer {producer} out of order in partition {p}");
                }
                per_producer.entry(producer).or_default().push(seq);
            }
        }
        for (producer, mut seqs) in per_producer {
            seqs.sort_unstable();
            assert_eq!(seqs, (0..produced[producer]).collect::<Vec<_>>(), "producer {producer}: each once");
        }
    }
}

/// Starts `wait` on a fresh partition in another thread, appends 100 ms
/// later, and returns how long after the append the waiter woke, with what
/// `wait` returned.
fn wake_latency<T: Send + 'static>(
    wait: impl FnOnce(annals::Partition) -> T + Send + 'static,
) -> (Duration, T) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let partition = store.create_topic("t", TopicConfig::default()).unwrap().partition(0).unwrap();
    let waiter = {
        let partition = partition.clone();
        thread::spawn(move || {
            let got = wait(partition);
            (Instant::now(), got)
        })
    };
    thread::sleep(Duration::from_millis(100));
    partition.append(&[Record::new("a"), Record::new("b")]).unwrap();
    let appended = Instant::now();
    let (woke, got) = waiter.join().unwrap();
    (woke.saturating_duration_since(appended), got)
}

#[test]
fn a_blocked_consumer_wakes_on_append() {
    let (latency, n) = wake_latency(|partition| {
        let mut reader = partition.reader(StartAt::Latest);
        reader.poll_wait(Duration::from_secs(30)).unwrap().to_records().len()
    });
    assert_eq!(n, 2);
    eprintln!("blocking wake-up latency: {latency:?}");
    // Far below the 30 s timeout: woken by the append, not by the clock.
    assert!(latency < Duration::from_secs(2), "{latency:?}");
}

struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: no async runtime is needed to drive the future.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Arc::new(ThreadWaker(thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park_timeout(Duration::from_secs(30));
    }
}

#[test]
fn the_async_wait_is_woken_by_append() {
    let (latency, end) = wake_latency(|partition| block_on(partition.reader(StartAt::Latest).wait()));
    assert_eq!(end, 2);
    eprintln!("future wake-up latency: {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
}

#[test]
fn waits_time_out_and_dropped_futures_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let partition = store.create_topic("t", TopicConfig::default()).unwrap().partition(0).unwrap();
    let start = Instant::now();
    assert!(
        !partition.wait_for(0, ReadBound::LogEnd, Duration::from_millis(20)),
        "times out on an empty log"
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    for _ in 0..100 {
        let mut f = Box::pin(partition.wait_for_async(0, ReadBound::LogEnd));
        let waker = std::task::Waker::noop();
        assert!(f.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
    }
    partition.append(&[Record::new("x")]).unwrap();
    assert!(partition.wait_for(0, ReadBound::LogEnd, Duration::ZERO));
}

/// Reads are copied out of a mapping of each segment file (`mmap_reads`):
/// readers racing truncation (into the active and into sealed segments),
/// rolls, re-appends and retention only ever get records carrying their
/// own offset, or `OffsetOutOfRange`; and records a reader still holds keep
/// their bytes after the segment under them was truncated and rewritten.
#[test]
fn mapped_reads_race_truncation_and_keep_held_records_intact() {
    race_truncation(None);
}

/// The same race with the log's files in a pool of 8 descriptors, so files
/// are closed and reopened under the readers and the truncation (issue 20).
#[test]
fn the_truncation_race_holds_with_a_tiny_file_pool() {
    race_truncation(Some(8));
}

fn race_truncation(pool: Option<usize>) {
    use annals::{Error, LogConfig, PartitionLog};

    fn value(offset: u64, generation: u64) -> Vec<u8> {
        let mut v = offset.to_le_bytes().to_vec();
        v.extend(generation.to_le_bytes());
        v.resize(64 + (offset % 50) as usize, b'.');
        v
    }
    fn check(r: &annals::StoredRecord) {
        let v = r.value.as_ref().unwrap();
        assert_eq!(u64::from_le_bytes(v[..8].try_into().unwrap()), r.offset, "record at a wrong offset");
        assert_eq!(v.len(), 64 + (r.offset % 50) as usize);
    }

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 16 << 10, index_interval_bytes: 512, ..LogConfig::default() };
    assert!(config.mmap_reads, "the default");
    let fs: annals::io::SharedFs = match pool {
        Some(n) => Arc::new(annals::io::FilePool::new(Arc::new(annals::io::StdFileSystem), n)),
        None => Arc::new(annals::io::StdFileSystem),
    };
    let log = Arc::new(
        PartitionLog::open_with(dir.path(), config, annals::OpenOptions::default().with_fs(fs)).unwrap(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|seed| {
            let (log, done) = (log.clone(), done.clone());
            thread::spawn(move || {
                let mut held = Vec::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 + seed;
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (start, end) = (log.log_start_offset(), log.log_end_offset());
                    let offset = start + x % (end - start + 1);
                    match log.read(offset, 1 + (x % 4096) as usize, ReadBound::LogEnd) {
                        Ok(fetched) => {
                            let records = fetched.to_records();
                            records.iter().for_each(check);
                            if x.is_multiple_of(16) {
                                held.extend(records); // keep some across truncations
                            }
                        }
                        Err(Error::OffsetOutOfRange { .. }) => {}
                        Err(e) => panic!("read at {offset}: {e:?}"),
                    }
                    if x.is_multiple_of(8) {
                        // A lookup by time walks segments retention may
                        // delete under it (and a pool may have closed).
                        if let Err(e) = log.offset_for_timestamp(0) {
                            panic!("offset for timestamp 0: {e:?}");
                        }
                    }
                    reads += 1;
                }
                held.iter().for_each(check);
                (reads, held.len())
            })
        })
        .collect();

    for round in 0..200u64 {
        let generation = round;
        let mut next = log.log_end_offset();
        for _ in 0..20 {
            let batch: Vec<Record> = (next..next + 10).map(|o| Record::new(value(o, generation))).collect();
            next = log.append(&batch).unwrap().last_offset + 1;
        }
        // Back into the active segment, or several segments back.
        let back = if round % 3 == 0 { 150 } else { 25 };
        log.truncate_to(log.log_end_offset().saturating_sub(back).max(log.log_start_offset())).unwrap();
        if round % 10 == 9 {
            log.delete_records_before(log.log_end_offset().saturating_sub(500).max(log.log_start_offset()))
                .unwrap();
        }
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let (reads, held) = r.join().unwrap();
        assert!(reads > 100, "the readers ran ({reads} reads)");
        assert!(held > 0);
    }
}
