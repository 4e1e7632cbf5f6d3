//! Heap memory of an open store against the size of its log.
//!
//! Fills a store (one topic, one partition) with 1M and with 10M records of
//! 100 bytes in about 12 segments each, and with the same record counts in
//! fixed 16 MiB segments; then, for each, a fresh child process reads its
//! anonymous resident memory (`RssAnon` in `/proc/self/status`: heap and
//! stacks, not mapped files) before and after opening the store and reading
//! the first and the last record. Index memory is mapped from the index
//! files, so the difference should not grow with records, only a little
//! with segments (each open segment keeps a small struct and its paths).
//!
//! Run: `cargo bench --bench memory` (`ANNALS_BENCH_QUICK=1`: 100K vs 1M).

use std::path::Path;
use std::process::Command;

use annals::{LogConfig, Record, StartAt, Store, StoreConfig, TopicConfig};

const TOPIC: &str = "mem";
const CHILD_FLAG: &str = "--memory-child";

fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).expect("RssAnon in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The child: open, touch both ends, report `before after segments`.
fn child(dir: &Path) {
    let before = rss_anon_kib();
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let topic = store.topic(TOPIC).unwrap();
    let partition = topic.partition(0).unwrap();
    let mut first = partition.reader(StartAt::Earliest);
    assert!(!first.poll().unwrap().is_empty());
    let end = partition.log_end_offset();
    let mut last = partition.reader(StartAt::Offset(end - 1));
    assert_eq!(last.poll().unwrap().records().next().unwrap().offset, end - 1);
    let after = rss_anon_kib();
    println!("{before} {after} {}", partition.segment_count());
}

fn fill(dir: &Path, records: u64, segment_bytes: u64) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let log = LogConfig { segment_bytes, retention_ms: -1, ..LogConfig::default() };
    let topic = store.create_topic(TOPIC, TopicConfig { partitions: 1, log }).unwrap();
    let batch: Vec<Record> = (0..100).map(|i| Record::new(vec![i as u8; 100]).timestamp_ms(1)).collect();
    for _ in 0..records / 100 {
        topic.append_to(0, &batch).unwrap();
    }
    store.close().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == CHILD_FLAG) {
        child(Path::new(&args[at + 1]));
        return;
    }
    // `cargo bench -- <filter>`: run only when the filter names this bench.
    if let Some(filter) = args.iter().skip(1).find(|a| !a.starts_with('-')) {
        if !"memory".contains(filter.as_str()) {
            return;
        }
    }
    let sizes: [u64; 2] = if std::env::var_os("ANNALS_BENCH_QUICK").is_some() {
        [100_000, 1_000_000]
    } else {
        [1_000_000, 10_000_000]
    };
    for (label, segment_bytes_for) in [
        (
            "~12 segments",
            &(|records: u64| (records * 108 / 12).clamp(1 << 20, i32::MAX as u64)) as &dyn Fn(u64) -> u64,
        ),
        ("16 MiB segments", &|_| 16 << 20),
    ] {
        for records in sizes {
            let dir = tempfile::tempdir().unwrap();
            fill(dir.path(), records, segment_bytes_for(records));
            let out = Command::new(std::env::current_exe().unwrap())
                .arg(CHILD_FLAG)
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8(out.stdout).unwrap();
            let v: Vec<u64> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
            eprintln!(
                "memory ({label}): {records} records, {} segments: anonymous RSS {} KiB before open, {} KiB after open + reads (+{} KiB)",
                v[2],
                v[0],
                v[1],
                v[1] - v[0]
            );
        }
    }
}
