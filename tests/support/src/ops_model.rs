//! The `ops_model` fuzz target's model, shared with its regression replays
//! (`fuzz/fuzz_targets/ops_model.rs` includes this file).

use std::collections::HashMap;
use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::ReadBound;
use annals::{CleanupPolicy, LogConfig, ManualClock, PartitionLog, Record};

const DIR: &str = "/p";

/// With `buffered`, a 200-byte write buffer (its delay an hour: only
/// reads, fsyncs, rolls, truncations and closes write it).
fn config(buffered: bool) -> LogConfig {
    LogConfig {
        write_buffer_bytes: if buffered { 200 } else { 0 },
        write_buffer_max_delay_ms: 3_600_000,
        segment_bytes: 500,
        index_interval_bytes: 90,
        segment_index_bytes: 96,
        cleanup_policy: CleanupPolicy::CompactDelete,
        retention_ms: -1,
        delete_retention_ms: i64::MAX / 4,
        ..LogConfig::default()
    }
}

#[derive(Default)]
struct Model {
    /// (key, value) by offset, for every record ever assigned that offset
    /// in the current history.
    records: Vec<(u8, Option<u16>)>,
    /// Records a compaction may have removed (a later one has their key).
    removable: Vec<bool>,
    start: usize,
    synced: usize,
}

fn open(fs: &SimFs, clock: &Arc<ManualClock>, buffered: bool) -> Option<PartitionLog> {
    PartitionLog::open_with(
        DIR,
        config(buffered),
        annals::OpenOptions::default().with_fs(Arc::new(fs.clone())).with_clock(clock.clone()),
    )
    .ok()
}

fn check(log: &PartitionLog, m: &Model) {
    assert_eq!(log.log_end_offset() as usize, m.records.len(), "log end");
    assert_eq!(log.log_start_offset() as usize, m.start, "log start");
    let mut seen = vec![false; m.records.len()];
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let fetched = log.read(next, 1024, ReadBound::LogEnd).expect("read");
        for r in fetched.records() {
            let o = r.offset as usize;
            let key = r.key.expect("keyed")[0];
            let value = r.value.map(|v| u16::from_le_bytes([v[0], v[1]]));
            assert_eq!(m.records[o], (key, value), "record at {o}");
            seen[o] = true;
        }
        next = fetched.next_offset().expect("progress");
    }
    for (o, present) in seen.iter().enumerate().skip(m.start) {
        assert!(*present || m.removable[o], "record {o} missing");
    }
}

/// Runs one input: operations in 3-byte steps, checked after each. One
/// byte left over after the steps turns the write buffer on; then appends
/// are not checked (a check reads, which writes the buffer out), so other
/// operations, a power cut among them, find appends still buffered.
pub fn run_ops(data: &[u8]) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let mut fs = SimFs::new();
    let buffered = data.len() % 3 == 1;
    let Some(mut log) = open(&fs, &clock, buffered) else { return };
    let mut m = Model::default();
    for op in data.chunks_exact(3).take(64) {
        let (a, b) = (op[1], op[2]);
        match op[0] % 9 {
            0..=2 => {
                let n = 1 + usize::from(a % 4);
                let batch: Vec<(u8, Option<u16>)> = (0..n)
                    .map(|i| {
                        ((b.wrapping_add(i as u8)) % 6, (a % 5 != 0).then_some(u16::from(b) * 7 + i as u16))
                    })
                    .collect();
                let records: Vec<Record> = batch
                    .iter()
                    .map(|&(k, v)| match v {
                        Some(v) => Record::with_key(vec![k], v.to_le_bytes().to_vec()),
                        None => Record::tombstone(vec![k]),
                    })
                    .collect();
                log.append(&records).expect("append");
                m.records.extend(&batch);
                m.removable.extend(batch.iter().map(|_| false));
                if buffered {
                    continue;
                }
            }
            3 => {
                let end = m.records.len();
                if end > m.start {
                    let to = m.start + usize::from(a) % (end - m.start + 1);
                    log.truncate_to(to as u64).expect("truncate");
                    m.records.truncate(to);
                    m.removable.truncate(to);
                    m.synced = m.synced.min(to);
                }
            }
            4 => {
                let to = usize::from(a) % (m.records.len() + 1);
                log.delete_records_before(to as u64).expect("delete records");
                m.start = m.start.max(to);
            }
            5 => {
                log.roll().expect("roll");
                log.compact().expect("compact");
                // Everything with a later record of its key may be gone.
                let mut last: HashMap<u8, usize> = HashMap::new();
                for (o, &(k, _)) in m.records.iter().enumerate() {
                    if let Some(prev) = last.insert(k, o) {
                        m.removable[prev] = true;
                    }
                }
            }
            6 => {
                log.flush().expect("flush");
                m.synced = m.records.len();
            }
            7 => {
                log.close().expect("close");
                drop(log);
                log = open(&fs, &clock, buffered).expect("reopen");
                m.synced = m.records.len();
            }
            _ => {
                // A power cut: synced records survive, later ones may not.
                // The image is taken before the old log is dropped (its
                // drop closes cleanly, on the old file system only).
                let image = fs.crash_image(CrashMode::Seeded(u64::from(a) << 8 | u64::from(b)));
                fs = image;
                log = open(&fs, &clock, buffered).expect("recover");
                let end = log.log_end_offset() as usize;
                assert!(end >= m.synced, "synced records lost: end {end}, synced {}", m.synced);
                assert!(end <= m.records.len(), "records appeared from nowhere");
                m.records.truncate(end);
                m.removable.truncate(end);
                m.start = log.log_start_offset() as usize;
                m.synced = m.synced.min(end);
            }
        }
        check(&log, &m);
    }
}
