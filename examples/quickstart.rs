//! The main job: a store in a data directory it creates (`./annals-data`),
//! a topic of 3 partitions, 1,000,000 records of 100 bytes appended in
//! batches of 100 (keyed every tenth record, unkeyed batches round robin),
//! a clean close, a reopen, and every record read back and verified.
//!
//! `cargo run --release --example quickstart [RECORDS] [VALUE_BYTES]`

use std::error::Error;
use std::time::Instant;

use annals::{Record, StartAt, Store, StoreConfig, TopicConfig};

const TOPIC: &str = "quickstart";
const PARTITIONS: u32 = 3;
const BATCH: u64 = 100;

/// The value of record `n` of the run: its number, then filler.
fn value_for(n: u64, len: usize) -> Vec<u8> {
    let mut v = vec![b'.'; len.max(8)];
    v[..8].copy_from_slice(&n.to_le_bytes());
    v
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let value_bytes: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let dir = std::env::current_dir()?.join("annals-data");
    println!("data directory: {}", dir.display());

    let store = Store::open(&dir, StoreConfig::default())?;
    if store.list_topics().iter().any(|t| t == TOPIC) {
        println!("reset: deleting topic {TOPIC:?} from the last run");
        store.delete_topic(TOPIC)?;
    }
    let topic = store.create_topic(TOPIC, TopicConfig::with_partitions(PARTITIONS))?;

    let start = Instant::now();
    let mut n = 0;
    while n < records {
        let batch: Vec<Record> = (n..(n + BATCH).min(records))
            .map(|i| {
                let value = value_for(i, value_bytes);
                if i % 10 == 0 {
                    Record::with_key(format!("key-{}", i % 1000), value)
                } else {
                    Record::new(value)
                }
            })
            .collect();
        n += batch.len() as u64;
        topic.append(&batch)?;
    }
    for p in topic.partitions() {
        p.flush()?;
    }
    report("append (then fsync)", records, value_bytes, start);
    store.close()?;
    drop((topic, store));

    let start = Instant::now();
    let store = Store::open(&dir, StoreConfig::default())?;
    println!("reopen: {:.2} ms", start.elapsed().as_secs_f64() * 1e3);
    let description = store.describe_topic(TOPIC)?;
    for p in &description.partitions {
        println!(
            "  partition {}: offsets {}..{}, {} bytes in {} segment(s)",
            p.partition, p.log_start_offset, p.log_end_offset, p.size_bytes, p.segments
        );
    }

    let start = Instant::now();
    let mut seen = vec![false; records as usize];
    let mut read = 0u64;
    for partition in store.topic(TOPIC)?.partitions() {
        let mut reader = partition.reader(StartAt::Earliest);
        loop {
            let fetched = reader.poll()?;
            if fetched.is_empty() {
                break;
            }
            for record in fetched.records() {
                let value = record.value.ok_or("a record lost its value")?;
                let n = u64::from_le_bytes(value.get(..8).ok_or("short value")?.try_into()?);
                let slot = seen.get_mut(n as usize).ok_or("a record this run did not write")?;
                if *slot || value != value_for(n, value_bytes) {
                    return Err(format!("record {n} duplicated or changed").into());
                }
                *slot = true;
                read += 1;
            }
        }
    }
    report("read back (CRC checked)", read, value_bytes, start);
    if read != records {
        return Err(format!("read {read} records, appended {records}").into());
    }
    println!("ok: {records} records appended, reopened and verified, each exactly once");
    Ok(())
}

fn report(what: &str, records: u64, value_bytes: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{what}: {records} records in {:.1} ms, {:.0} records/s, {:.1} MB/s of values",
        secs * 1e3,
        records as f64 / secs,
        (records as f64 * value_bytes as f64) / secs / 1e6
    );
}
