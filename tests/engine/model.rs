//! Model test: random appends, reads, truncations, rolls and reopens agree
//! exactly with a `Vec` of records.

use annals_testkit as common;

use std::path::Path;

use annals::ReadBound;
use annals::{LogConfig, PartitionLog, Record};
use bytes::Bytes;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<(Option<u8>, Option<u16>, u8)>),
    Read { at: u16, max_bytes: u16 },
    Truncate { at: u16 },
    Roll,
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let rec = (proptest::option::of(0u8..8), proptest::option::weighted(0.9, 0u16..300), any::<u8>());
    prop_oneof![
        5 => proptest::collection::vec(rec, 1..12).prop_map(Op::Append),
        3 => (any::<u16>(), 1u16..2000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<u16>().prop_map(|at| Op::Truncate { at }),
        1 => Just(Op::Roll),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        segment_index_bytes: 64,
        ..LogConfig::default()
    }
}

fn make(key: Option<u8>, value_len: Option<u16>, seed: u8, n: usize) -> Record {
    let mut r = Record {
        timestamp_ms: Some(1_000 + n as i64 * 3 - i64::from(seed % 5)),
        key: key.map(|k| Bytes::from(vec![b'k', k])),
        value: value_len.map(|l| Bytes::from(vec![seed; l as usize])),
        headers: Vec::new(),
    };
    if seed.is_multiple_of(4) {
        r = r.header(format!("h{seed}"), Some(Bytes::from(vec![seed; 3])));
    }
    r
}

fn reopen(log: PartitionLog, dir: &Path, clean: bool) -> PartitionLog {
    let active_bytes = log.size_bytes() - sealed_bytes(&log);
    log.close().unwrap();
    drop(log);
    if !clean {
        // As after a crash before any checkpoint: no clean-shutdown marker
        // and no recovery point, so the open scans the whole active
        // segment and rebuilds its index. (Removing the marker alone
        // scanned nothing: `close` had just checkpointed the log end.)
        std::fs::remove_file(dir.join(annals::log::CLEAN_SHUTDOWN_FILE)).unwrap();
        std::fs::remove_file(dir.join(annals::log::RECOVERY_POINT_FILE)).unwrap();
    }
    let log = PartitionLog::open(dir, config()).unwrap();
    assert_eq!(log.recovery_report().clean_shutdown, clean);
    assert_eq!(log.recovery_report().bytes_truncated, 0);
    if clean {
        assert_eq!(log.recovery_report().indexes_rebuilt, 0, "a clean index is trusted");
    } else if active_bytes > 0 {
        assert!(log.recovery_report().bytes_scanned > 0, "an unclean open scans the active segment");
    }
    log
}

/// Bytes of every segment but the active one.
fn sealed_bytes(log: &PartitionLog) -> u64 {
    let bases = log.segment_base_offsets();
    let active = *bases.last().unwrap();
    let mut total = 0;
    let mut at = log.log_start_offset();
    while at < active {
        let fetched = log.read(at, 1 << 20, ReadBound::LogEnd).unwrap();
        total += fetched.bytes().len() as u64;
        at = fetched.next_offset().unwrap();
    }
    total
}

/// Defect 5 of issue 16: the model's unclean reopen claimed a full scan
/// and scanned nothing.
#[test]
fn regression_the_model_tests_unclean_reopen_scanned_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    log.append(&[make(Some(1), Some(10), 3, 0), make(None, Some(20), 4, 1)]).unwrap();
    let log = reopen(log, dir.path(), false);
    assert!(log.recovery_report().bytes_scanned > 0);
    assert_eq!(log.log_end_offset(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn log_agrees_with_vec_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config()).unwrap();
        let mut model: Vec<Record> = Vec::new();
        for op in ops {
            match op {
                Op::Append(specs) => {
                    let batch: Vec<Record> = specs.iter().enumerate()
                        .map(|(i, &(k, v, s))| make(k, v, s, model.len() + i)).collect();
                    let info = log.append(&batch).unwrap();
                    prop_assert_eq!(info.first_offset, model.len() as u64);
                    prop_assert_eq!(info.last_offset, (model.len() + batch.len() - 1) as u64);
                    model.extend(batch);
                }
                Op::Read { at, max_bytes } => {
                    let offset = u64::from(at) % (model.len() as u64 + 2);
                    let result = log.read(offset, usize::from(max_bytes), ReadBound::LogEnd);
                    if offset > model.len() as u64 {
                        prop_assert!(matches!(result, Err(annals::Error::OffsetOutOfRange { .. })), "{:?}", result);
                        continue;
                    }
                    let got = result.unwrap().to_records();
                    if offset == model.len() as u64 {
                        prop_assert!(got.is_empty());
                        continue;
                    }
                    prop_assert!(!got.is_empty(), "a read below the end returns at least one record");
                    for (i, r) in got.iter().enumerate() {
                        let want = &model[offset as usize + i];
                        prop_assert_eq!(r.offset, offset + i as u64);
                        prop_assert_eq!(Some(r.timestamp_ms), want.timestamp_ms);
                        prop_assert_eq!(&r.key, &want.key);
                        prop_assert_eq!(&r.value, &want.value);
                        prop_assert_eq!(&r.headers, &want.headers);
                    }
                }
                Op::Truncate { at } => {
                    let offset = u64::from(at) % (model.len() as u64 + 1);
                    log.truncate_to(offset).unwrap();
                    model.truncate(offset as usize);
                }
                Op::Roll => log.roll().unwrap(),
                Op::Reopen { clean } => log = reopen(log, dir.path(), clean),
            }
            prop_assert_eq!(log.log_end_offset(), model.len() as u64);
            prop_assert_eq!(log.log_start_offset(), 0);
        }
        // Finally everything, after one more unclean reopen.
        let log = reopen(log, dir.path(), false);
        let all = common::read_all(&log, 0);
        prop_assert_eq!(all.len(), model.len());
        for ((_, got), want) in all.iter().zip(&model) {
            prop_assert_eq!(got, want);
        }
    }
}
