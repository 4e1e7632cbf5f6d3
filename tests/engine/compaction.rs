//! Compaction against a model: the latest value per key survives at its
//! original offset, in order; tombstones remove keys and go after the
//! delete horizon the cleaner stamps on their batch (Kafka's KIP-534).

use std::collections::BTreeMap;
use std::sync::Arc;

use annals::format::Codec;
use annals::io::StdFileSystem;
use annals::{AdminError, AppendError, ReadBound};
use annals::{CleanupPolicy, CompressionType, Error, LogConfig, ManualClock, PartitionLog, Record};
use proptest::prelude::*;

const HOUR: i64 = 3_600_000;

fn config(memory: usize) -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 128,
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms: HOUR,
        cleaner_memory_bytes: memory,
        ..LogConfig::default()
    }
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>, config: LogConfig) -> PartitionLog {
    PartitionLog::open_with(
        dir,
        config,
        annals::OpenOptions::default().with_fs(Arc::new(StdFileSystem)).with_clock(clock.clone()),
    )
    .unwrap()
}

/// (offset, key, value) of every record readable from the log start.
fn contents(log: &PartitionLog) -> Vec<(u64, Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let fetched = log.read(next, 4096, ReadBound::LogEnd).unwrap();
        for r in fetched.records() {
            out.push((r.offset, r.key.unwrap().to_vec(), r.value.map(<[u8]>::to_vec)));
        }
        next = fetched.next_offset().unwrap();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compaction_keeps_the_latest_per_key(
        ops in proptest::collection::vec((0u8..12, proptest::option::weighted(0.8, 0u16..500), 1usize..4), 5..80),
        compact_every in 3usize..20,
        small_memory in any::<bool>(),
        reopen in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(10 * HOUR));
        let memory = if small_memory { 64 << 10 } else { 16 << 20 };
        let mut log = open(dir.path(), &clock, config(memory));
        // Model: every record ever written, by offset.
        let mut written: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for (i, &(key, value, repeat)) in ops.iter().enumerate() {
            let batch: Vec<Record> = (0..repeat).map(|j| {
                let k = vec![b'k', key.wrapping_add(j as u8) % 12];
                match value {
                    Some(v) => Record::with_key(k, format!("{v}-{i}-{j}")),
                    None => Record::tombstone(k),
                }
            }).collect();
            written.extend(batch.iter().map(|r| (r.key.as_ref().unwrap().to_vec(), r.value.as_ref().map(|v| v.to_vec()))));
            log.append(&batch).unwrap();
            if i % compact_every == compact_every - 1 {
                log.compact().unwrap();
            }
            if reopen && i % 17 == 16 {
                log.close().unwrap();
                drop(log);
                log = open(dir.path(), &clock, config(memory));
            }
        }
        log.compact().unwrap();
        let got = contents(&log);
        // Offsets only grow, and every record returned is the one written there.
        for w in got.windows(2) { prop_assert!(w[0].0 < w[1].0); }
        for (offset, key, value) in &got {
            prop_assert_eq!(&written[*offset as usize], &(key.clone(), value.clone()), "offset {}", offset);
        }
        // The latest record of every key is there (tombstones too: they are young).
        let mut latest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for (offset, (key, _)) in written.iter().enumerate() { latest.insert(key.clone(), offset as u64); }
        for (key, &offset) in &latest {
            prop_assert!(got.iter().any(|g| g.0 == offset), "latest of {:?} at {} missing", key, offset);
        }
        // In the sealed (compacted) part, no record survives that a later
        // sealed record of its key supersedes (the active segment is not
        // compacted, so its records supersede nothing yet).
        let sealed_end = *log.segment_base_offsets().last().unwrap();
        let mut latest_sealed: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for (offset, (key, _)) in written.iter().enumerate().take(sealed_end as usize) {
            latest_sealed.insert(key.clone(), offset as u64);
        }
        for (offset, key, _) in &got {
            if *offset < sealed_end {
                prop_assert_eq!(latest_sealed[key], *offset, "superseded record at {} survived", offset);
            }
        }
        // Kafka's rule (KIP-534): the pass that first keeps a tombstone
        // stamps its batch's delete horizon (now + delete.retention.ms) and
        // keeps it; a pass after the horizon drops it.
        log.roll().unwrap();
        log.compact().unwrap();
        let tombstones = contents(&log).iter().filter(|(_, _, v)| v.is_none()).count();
        let stamped = latest.values().filter(|&&o| written[o as usize].1.is_none()).count();
        prop_assert!(tombstones >= stamped, "a young latest tombstone went before its horizon");
        clock.advance(2 * HOUR);
        log.compact().unwrap();
        for (offset, _key, value) in contents(&log) {
            prop_assert!(value.is_some(), "tombstone at {} survived its delete horizon", offset);
        }
    }
}

#[test]
fn compaction_refuses_delete_topics_and_keyless_records() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let log = open(dir.path(), &clock, LogConfig::default());
    assert!(matches!(log.compact(), Err(Error::Admin(AdminError::NotCompacted))));
    drop(log);
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &clock, config(1 << 20));
    assert!(matches!(
        log.append(&[Record::with_key("k", "v"), Record::new("no key")]),
        Err(Error::Append(AppendError::UnkeyedRecordInCompactedLog { index: 1 }))
    ));
    assert_eq!(log.log_end_offset(), 0, "nothing written");
}

#[test]
fn reads_and_lookups_skip_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(HOUR));
    let log = open(dir.path(), &clock, config(1 << 20));
    for i in 0..60u64 {
        log.append(
            &[Record::with_key(format!("k{}", i % 3), format!("v{i}")).timestamp_ms(1_000 + i as i64)],
        )
        .unwrap();
    }
    log.roll().unwrap();
    let report = log.compact().unwrap();
    assert!(report.records_removed >= 50, "{report:?}");
    let got = contents(&log);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [57, 58, 59]);
    // A read at a removed offset returns the next survivor.
    assert_eq!(log.read(10, 1, ReadBound::LogEnd).unwrap().records().next().unwrap().offset, 57);
    assert_eq!(log.offset_for_timestamp(1_020).unwrap(), Some(57));
    // Small cleaned segments were merged.
    assert!(log.segment_count() <= 3, "{:?}", log.segment_base_offsets());
    // A reopen sees the same.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), &clock, config(1 << 20));
    assert_eq!(contents(&log), got);
}

#[test]
fn keys_beyond_the_memory_budget_take_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(HOUR));
    // 64 KiB holds about 1,000 key digests; write 4,000 keys twice.
    let config = LogConfig { segment_bytes: 16 << 10, index_interval_bytes: 1024, ..config(64 << 10) };
    let log = open(dir.path(), &clock, config);
    for round in 0..2 {
        for chunk in 0..40 {
            let batch: Vec<Record> = (0..100)
                .map(|i| Record::with_key(format!("key-{}", chunk * 100 + i), format!("r{round}")))
                .collect();
            log.append(&batch).unwrap();
        }
    }
    log.roll().unwrap();
    assert_eq!(log.dirty_ratio(), 1.0);
    let report = log.compact().unwrap();
    assert!(report.passes >= 4, "{report:?}");
    assert!(report.map_memory_bytes <= 64 << 10, "{report:?}");
    assert_eq!(report.records_removed, 4000, "{report:?}");
    let got = contents(&log);
    assert_eq!(got.len(), 4000);
    assert!(got.iter().all(|(o, _, v)| *o >= 4000 && v.as_deref() == Some(&b"r1"[..])));
    assert_eq!(log.dirty_ratio(), 0.0, "the cleaner checkpoint reached the end");
}

#[test]
fn maybe_compact_waits_for_the_dirty_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(HOUR));
    let log = open(dir.path(), &clock, LogConfig { min_cleanable_dirty_percent: 60, ..config(1 << 20) });
    for i in 0..40u64 {
        log.append(&[Record::with_key(format!("k{}", i % 4), "v")]).unwrap();
    }
    log.roll().unwrap();
    assert!(log.maybe_compact().unwrap().passes > 0, "all dirty: compacts");
    for i in 0..4u64 {
        log.append(&[Record::with_key(format!("k{i}"), "w")]).unwrap();
    }
    log.roll().unwrap();
    assert!(log.dirty_ratio() < 0.6, "{}", log.dirty_ratio());
    assert_eq!(log.maybe_compact().unwrap().passes, 0, "below the ratio: waits");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A compressed topic compacts to the same records as an uncompressed
    /// one fed the same appends, rolls and passes (segments roll at the
    /// same offsets, so the cleaner sees the same sealed records); every
    /// batch that keeps records is still compressed with the topic's codec.
    #[test]
    fn a_compressed_topic_compacts_like_an_uncompressed_one(
        ops in proptest::collection::vec((0u8..10, proptest::option::weighted(0.8, 0u16..500), 1usize..6), 5..60),
        roll_every in 2usize..8,
        compact_every in 3usize..12,
        codec in proptest::sample::select(vec![Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd]),
    ) {
        let clock = Arc::new(ManualClock::new(10 * HOUR));
        let base = LogConfig { segment_bytes: 1 << 20, ..config(16 << 20) };
        let compressed = LogConfig { compression_type: CompressionType::Codec(codec), ..base.clone() };
        let (plain_dir, packed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let plain = open(plain_dir.path(), &clock, base);
        let packed = open(packed_dir.path(), &clock, compressed);
        for (i, &(key, value, repeat)) in ops.iter().enumerate() {
            let batch: Vec<Record> = (0..repeat).map(|j| {
                let k = vec![b'k', key.wrapping_add(j as u8) % 10];
                match value {
                    Some(v) => Record::with_key(k, format!("{v}-{i}-{j} compressible compressible")),
                    None => Record::tombstone(k),
                }
            }).collect();
            for log in [&plain, &packed] {
                log.append(&batch).unwrap();
                if i % roll_every == roll_every - 1 {
                    log.roll().unwrap();
                }
                if i % compact_every == compact_every - 1 {
                    log.compact().unwrap();
                }
            }
            if i % 13 == 12 {
                clock.advance(HOUR / 2);
            }
        }
        for log in [&plain, &packed] {
            log.roll().unwrap();
            log.compact().unwrap();
        }
        prop_assert_eq!(contents(&packed), contents(&plain));
        let fetched = packed.read(packed.log_start_offset(), 1 << 20, ReadBound::LogEnd).unwrap();
        for (h, _) in fetched.batches().filter(|(h, _)| h.record_count > 0) {
            prop_assert_eq!(h.compression(), codec, "batch at {}", h.base_offset);
        }
        packed.close().unwrap();
        let report = annals::inspect::verify_partition(&StdFileSystem, packed_dir.path(), &mut |_| {}).unwrap();
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
