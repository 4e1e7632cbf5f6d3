//! The main job: append records to a partition log in a data directory it
//! creates (`./annals-data/quickstart-0`), close, reopen, read everything back
//! and verify it, printing throughput.
//!
//! `cargo run --release --example quickstart [RECORDS] [VALUE_BYTES]`
//! (defaults: 1,000,000 records of 100 bytes, in batches of 100).

use std::error::Error;
use std::time::Instant;

use annals::{LogConfig, PartitionLog, Record};

const BATCH: usize = 100;

fn value_for(offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![b'.'; len];
    let tag = offset.to_le_bytes();
    let n = tag.len().min(len);
    v[..n].copy_from_slice(&tag[..n]);
    v
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let value_bytes: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let dir = std::env::current_dir()?.join("annals-data").join("quickstart-0");
    println!("data directory: {}", dir.display());

    let log = PartitionLog::open(&dir, LogConfig::default())?;
    if log.log_end_offset() > log.log_start_offset() {
        println!(
            "reset: truncating the {} records of the last run",
            log.log_end_offset() - log.log_start_offset()
        );
        log.truncate_to(log.log_start_offset())?;
    }
    let base = log.log_end_offset();

    let start = Instant::now();
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    let mut offset = base;
    while offset < base + records {
        batch.clear();
        let n = (base + records - offset).min(BATCH as u64);
        batch.extend((0..n).map(|i| Record::new(value_for(offset + i, value_bytes))));
        let info = log.append(&batch)?;
        offset = info.last_offset + 1;
    }
    log.flush()?;
    report("append (then fsync)", records, value_bytes, start);
    log.close()?;

    let start = Instant::now();
    let log = PartitionLog::open(&dir, LogConfig::default())?;
    let r = log.recovery_report();
    println!(
        "reopen: {:.2} ms, clean shutdown: {}, {} segments, {} bytes checked",
        start.elapsed().as_secs_f64() * 1e3,
        r.clean_shutdown,
        r.segments,
        r.bytes_scanned
    );

    let start = Instant::now();
    let (mut next, mut seen) = (base, 0u64);
    while next < log.log_end_offset() {
        let fetched = log.read(next, 1 << 20)?;
        for rec in fetched.records() {
            if rec.offset != next || rec.value != Some(&value_for(rec.offset, value_bytes)[..]) {
                return Err(format!("record {} does not match what was appended", rec.offset).into());
            }
            next += 1;
            seen += 1;
        }
    }
    report("sequential read (CRC checked)", seen, value_bytes, start);
    if seen != records {
        return Err(format!("read {seen} records, appended {records}").into());
    }
    println!("ok: {records} records appended, reopened and verified (offsets {base}..{next})");
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
