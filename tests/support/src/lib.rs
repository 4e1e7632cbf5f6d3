//! Helpers shared by annals' integration tests, compiled once (a library,
//! not a module each test binary compiles again).

pub mod crash;
pub mod flips;
pub mod gate;
pub mod ops_model;
pub mod workloads;

use std::path::Path;

use annals::ReadBound;
use annals::{LogConfig, PartitionLog, Record};

/// Small segments so tests roll often.
pub fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 4096, index_interval_bytes: 256, ..LogConfig::default() }
}

/// Record `i` of a deterministic test stream: keyed every third, a tombstone
/// every seventh, a header every fifth, sizes varying.
pub fn record(i: u64) -> Record {
    let value = format!("value-{i}-{}", "x".repeat((i % 50) as usize));
    let mut r = if i % 7 == 6 {
        Record::tombstone(format!("key-{}", i % 11))
    } else if i.is_multiple_of(3) {
        Record::with_key(format!("key-{}", i % 11), value)
    } else {
        Record::new(value)
    };
    if i.is_multiple_of(5) {
        r = r.header("h", Some(bytes::Bytes::from(format!("hv{i}"))));
    }
    r.timestamp_ms(1_700_000_000_000 + i as i64)
}

/// Appends records `from..to` in batches of `batch`.
pub fn append_range(log: &PartitionLog, from: u64, to: u64, batch: u64) {
    let mut i = from;
    while i < to {
        let end = (i + batch).min(to);
        let records: Vec<Record> = (i..end).map(record).collect();
        let info = log.append(&records).unwrap();
        assert_eq!(info.first_offset, i);
        assert_eq!(info.last_offset, end - 1);
        i = end;
    }
}

/// Reads every record from `from` to the log end, checking offsets are dense.
pub fn read_all(log: &PartitionLog, from: u64) -> Vec<(u64, Record)> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.log_end_offset() {
        let fetched = log.read(next, 1000, ReadBound::LogEnd).unwrap();
        assert!(!fetched.is_empty(), "empty read at {next}");
        for r in fetched.to_records() {
            assert_eq!(r.offset, next, "offsets must be dense");
            out.push((
                r.offset,
                Record { timestamp_ms: Some(r.timestamp_ms), key: r.key, value: r.value, headers: r.headers },
            ));
            next += 1;
        }
    }
    out
}

/// Every record from the log start on, as (offset, value as text).
pub fn values(log: &PartitionLog) -> Vec<(u64, String)> {
    let value = |r: Record| String::from_utf8(r.value.expect("a value").to_vec()).expect("UTF-8");
    read_all(log, log.log_start_offset()).into_iter().map(|(o, r)| (o, value(r))).collect()
}

/// Asserts the log holds exactly records `0..n` of the test stream.
pub fn assert_holds(log: &PartitionLog, n: u64) {
    assert_eq!(log.log_end_offset(), n);
    let got = read_all(log, log.log_start_offset());
    assert_eq!(got.len() as u64, n - log.log_start_offset());
    for (offset, r) in got {
        assert_eq!(r, record(offset), "record at {offset}");
    }
}

/// Drops the log without a clean close (as a crash would, minus lost
/// writes: the page cache keeps them).
pub fn crash(log: PartitionLog) {
    log.abandon();
}

/// The segment `.log` files in `dir`, sorted.
pub fn log_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}
