//! Concurrent producers on one topic: 1, 2 and 4 threads, on 1 and on 4
//! partitions. Each thread appends batches of 100 records of 100 bytes to
//! partition `thread % partitions`; throughput counts every thread's records.
//!
//! Run: `cargo bench --bench concurrent_produce`. On one partition the
//! writers share one log (appends serialize); on 4 they append in parallel.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use annals::{Record, Store, StoreConfig, Topic, TopicConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const BATCH: usize = 100;
const VALUE_BYTES: usize = 100;
/// Per partition: truncate (untimed) past this, so long runs do not fill the disk.
const RESET_BYTES: u64 = 256 << 20;

fn reset_if_large(topic: &Topic) {
    for p in topic.partitions() {
        let log = p;
        if log.size_bytes() > RESET_BYTES {
            log.truncate_to(log.log_start_offset()).unwrap();
        }
    }
}

fn concurrent_produce(c: &mut Criterion) {
    let mut group = c.benchmark_group("concurrent_produce_100B_x100");
    group.measurement_time(Duration::from_secs(6));
    let records: Vec<Record> = (0..BATCH).map(|i| Record::new(vec![i as u8; VALUE_BYTES])).collect();
    for partitions in [1u32, 4] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let topic = store.create_topic("bench", TopicConfig::with_partitions(partitions)).unwrap();
        for threads in [1usize, 2, 4] {
            group.throughput(Throughput::ElementsAndBytes {
                elements: (threads * BATCH) as u64,
                bytes: (threads * BATCH * VALUE_BYTES) as u64,
            });
            let id = BenchmarkId::new(format!("{partitions}_partitions"), format!("{threads}_threads"));
            group.bench_with_input(id, &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    reset_if_large(&topic);
                    let barrier = Barrier::new(threads + 1);
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let (topic, records, barrier) = (&topic, &records, &barrier);
                            s.spawn(move || {
                                barrier.wait();
                                let partition = t as u32 % partitions;
                                for _ in 0..iters {
                                    topic.append_to(partition, records).unwrap();
                                }
                            });
                        }
                        barrier.wait();
                        let start = Instant::now();
                        // The scope joins every producer before returning.
                        start
                    })
                    .elapsed()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, concurrent_produce);
criterion_main!(benches);
