//! The crash-enumeration workloads, shared by the crash tests.

use annals::io::sim::SimFs;
use annals::Durability;

use super::crash::{config, open, record, Tracker};

pub fn batch(from: u64, n: u64) -> Vec<annals::Record> {
    (from..from + n).map(record).collect()
}

pub fn appends(policy: Durability) -> impl Fn(&SimFs, &mut Tracker) -> annals::Result<()> {
    move |fs, t| {
        let log = open(fs, &config(policy))?;
        let mut next = 0;
        for i in 0..12 {
            let n = 1 + i % 4;
            t.append(&log, &batch(next, n), policy)?;
            next += n;
            if policy != Durability::Always && i % 4 == 3 {
                t.flush(&log)?;
            }
        }
        Ok(())
    }
}

pub fn always_appends(fs: &SimFs, t: &mut Tracker) -> annals::Result<()> {
    appends(Durability::Always)(fs, t)
}

pub fn none_appends_with_flush(fs: &SimFs, t: &mut Tracker) -> annals::Result<()> {
    appends(Durability::None)(fs, t)
}

pub const INTERVAL: Durability = Durability::Interval { flush_messages: 5, flush_ms: 60_000 };

pub fn interval_appends(fs: &SimFs, t: &mut Tracker) -> annals::Result<()> {
    appends(INTERVAL)(fs, t)
}

pub fn roll_and_truncate(fs: &SimFs, t: &mut Tracker) -> annals::Result<()> {
    let policy = Durability::Always;
    let log = open(fs, &config(policy))?;
    t.append(&log, &batch(0, 4), policy)?;
    t.append(&log, &batch(4, 3), policy)?;
    t.roll(&log)?;
    t.append(&log, &batch(7, 4), policy)?;
    t.truncate(&log, 9)?; // inside a batch
    t.append(&log, &batch(9, 2), policy)?;
    t.truncate(&log, 5)?; // into the sealed segment
    t.append(&log, &batch(5, 3), policy)?;
    t.close(&log)?;
    drop(log);
    let log = open(fs, &config(policy))?;
    t.append(&log, &batch(8, 2), policy)
}

pub fn close_and_reopen(fs: &SimFs, t: &mut Tracker) -> annals::Result<()> {
    let policy = Durability::None;
    let log = open(fs, &config(policy))?;
    t.append(&log, &batch(0, 5), policy)?;
    t.append(&log, &batch(5, 5), policy)?;
    t.close(&log)?;
    drop(log);
    let log = open(fs, &config(policy))?;
    t.append(&log, &batch(10, 5), policy)?;
    t.flush(&log)?;
    t.append(&log, &batch(15, 2), policy)
}

pub fn retention_config() -> annals::LogConfig {
    annals::LogConfig { retention_bytes: 1200, retention_ms: -1, ..config(Durability::Always) }
}

pub fn retention_and_delete_records(fs: &SimFs, t: &mut Tracker) -> annals::Result<()> {
    let policy = Durability::Always;
    let log = open(fs, &retention_config())?;
    let mut next = 0;
    for i in 0..14 {
        let n = 1 + i % 3;
        t.append(&log, &batch(next, n), policy)?;
        next += n;
        if i % 4 == 3 {
            t.enforce_retention(&log)?;
        }
        if i == 9 {
            t.delete_records_before(&log, next - 2)?;
        }
    }
    t.close(&log)?;
    drop(log);
    let log = open(fs, &retention_config())?;
    t.append(&log, &batch(next, 2), policy)?;
    t.enforce_retention(&log)
}
