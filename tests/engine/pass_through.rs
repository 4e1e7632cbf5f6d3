//! The pass-through append a broker uses as leader (`append_batches`):
//! every kind of bad producer batch gets a typed error naming the batch,
//! the byte and Kafka's error code, and nothing is appended; LogAppendTime
//! and the timestamp window behave as Kafka's; files of annals' pre-Kafka
//! format are refused at open. (tests/oracles/kafka_python.rs appends batches an
//! independent codec built.)

use std::sync::Arc;

use annals::format::{encode_batch, BatchMeta, EncodeLimits};
use annals::io::StdFileSystem;
use annals::{AppendError, OpenError, ReadBound};
use annals::{
    BatchProblem, CleanupPolicy, Error, LogConfig, ManualClock, PartitionLog, ProduceMeta, Record,
    TimestampType,
};

const NOW: i64 = 1_700_000_000_000;
const LIMITS: EncodeLimits = EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 8 << 20 };

fn client_batch(records: &[Record], meta: BatchMeta) -> Vec<u8> {
    let mut out = Vec::new();
    encode_batch(&mut out, 0, meta, records, NOW, LIMITS).unwrap();
    out
}

fn keyed(n: usize) -> Vec<Record> {
    (0..n).map(|i| Record::with_key(format!("k{i}"), format!("v{i}")).timestamp_ms(NOW - i as i64)).collect()
}

fn open(dir: &std::path::Path, config: LogConfig) -> (PartitionLog, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let log = PartitionLog::open_with(
        dir,
        config,
        annals::OpenOptions::default().with_fs(Arc::new(StdFileSystem)).with_clock(clock.clone()),
    )
    .unwrap();
    (log, clock)
}

/// Sets bytes of a batch and recomputes its CRC-32C (a client that built
/// the bad field on purpose, so only the field is wrong).
fn patch(batch: &mut [u8], at: usize, bytes: &[u8]) {
    batch[at..at + bytes.len()].copy_from_slice(bytes);
    let crc = annals::format::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn every_bad_producer_batch_is_refused_with_its_kafka_code_and_nothing_is_appended() {
    let good = client_batch(&keyed(3), BatchMeta::default());
    let idempotent =
        BatchMeta { producer_id: 9, producer_epoch: 0, base_sequence: 0, ..BatchMeta::default() };
    let cases: Vec<(&str, Vec<u8>, LogConfig, i16)> = vec![
        (
            "flipped byte in the CRC range",
            {
                let mut b = good.clone();
                b[70] ^= 1;
                b
            },
            LogConfig::default(),
            2,
        ),
        ("truncated", good[..good.len() - 3].to_vec(), LogConfig::default(), 2),
        // Kafka's ProduceRequest.validateRecords: an older magic in a
        // produce v3+ is INVALID_RECORD; a magic no format has is corrupt.
        (
            "magic 1",
            {
                let mut b = good.clone();
                b[16] = 1;
                b
            },
            LogConfig::default(),
            87,
        ),
        (
            "magic 3",
            {
                let mut b = good.clone();
                b[16] = 3;
                b
            },
            LogConfig::default(),
            2,
        ),
        (
            "codec id 5 (none of Kafka's)",
            {
                let mut b = good.clone();
                patch(&mut b, 21, &[0, 5]);
                b
            },
            LogConfig::default(),
            76,
        ),
        (
            "gzip bit on records that are no gzip stream",
            {
                let mut b = good.clone();
                patch(&mut b, 21, &[0, 1]);
                b
            },
            LogConfig::default(),
            2,
        ),
        (
            "control batch",
            {
                let mut b = good.clone();
                patch(&mut b, 21, &[0, 0x20]);
                b
            },
            LogConfig::default(),
            87,
        ),
        (
            "transactional",
            {
                let mut b = good.clone();
                patch(&mut b, 21, &[0, 0x10]);
                b
            },
            LogConfig::default(),
            48,
        ),
        (
            "count below the offset range",
            {
                let mut b = good.clone();
                patch(&mut b, 57, &2i32.to_be_bytes());
                b
            },
            LogConfig::default(),
            87,
        ),
        (
            "idempotent without a sequence",
            {
                let mut b = client_batch(&keyed(2), idempotent);
                patch(&mut b, 53, &(-1i32).to_be_bytes());
                b
            },
            LogConfig::default(),
            87,
        ),
        (
            "batch over max_batch_bytes",
            client_batch(&keyed(30), BatchMeta::default()),
            LogConfig { max_batch_bytes: 256, max_record_bytes: 64, ..LogConfig::default() },
            10,
        ),
        (
            "record over max_record_bytes",
            client_batch(&[Record::with_key("k", vec![0u8; 200])], BatchMeta::default()),
            LogConfig { max_record_bytes: 100, ..LogConfig::default() },
            10,
        ),
        (
            "timestamp before the window",
            client_batch(&[Record::with_key("k", "v").timestamp_ms(NOW - 10_000)], BatchMeta::default()),
            LogConfig { message_timestamp_before_max_ms: 1_000, ..LogConfig::default() },
            32,
        ),
        (
            "keyless record in a compacted topic",
            client_batch(&[Record::new("no key")], BatchMeta::default()),
            LogConfig { cleanup_policy: CleanupPolicy::Compact, ..LogConfig::default() },
            87,
        ),
    ];
    for (what, bad, config, code) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), config);
        log.append(&keyed(1)).unwrap();
        // A valid batch first, then the bad one: the request as a whole is refused.
        let valid = client_batch(&keyed(2), BatchMeta::default());
        let mut request = [valid.clone(), bad].concat();
        match log.append_batches(&mut request, ProduceMeta::default()) {
            Err(Error::Append(AppendError::InvalidBatch { batch, position, problem })) => {
                let first_ok = matches!(problem, BatchProblem::BatchTooLarge { .. }) || batch == 1;
                assert!(first_ok, "{what}: batch {batch}");
                if batch == 1 {
                    assert!(position >= valid.len(), "{what}: byte {position} names the second batch");
                }
                assert_eq!(problem.kafka_error_code(), code, "{what}: {problem}");
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 1, "{what}: nothing appended");
        assert_eq!(log.read(0, 1 << 20, ReadBound::LogEnd).unwrap().records().count(), 1, "{what}");
    }
}

#[test]
fn log_append_time_stamps_the_batch_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..LogConfig::default() };
    let (log, clock) = open(dir.path(), config);
    let sent = client_batch(&keyed(3), BatchMeta::default());
    let mut request = sent.clone();
    clock.set(NOW + 5_000);
    log.append_batches(&mut request, ProduceMeta::leader_epoch(2)).unwrap();
    clock.set(NOW + 9_000);
    log.append(&keyed(2)).unwrap();
    let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    let (h, stored) = fetched.batches().next().unwrap();
    assert!(h.is_log_append_time());
    assert_eq!((h.max_timestamp_ms, h.leader_epoch), (NOW + 5_000, 2));
    // The records' bytes are the producer's (only the header changed).
    assert_eq!(&stored[61..], &sent[61..]);
    annals::format::check_batch(stored).unwrap();
    let times: Vec<i64> = fetched.records().map(|r| r.timestamp_ms).collect();
    assert_eq!(times, [NOW + 5_000; 3].iter().chain(&[NOW + 9_000; 2]).copied().collect::<Vec<_>>());
    assert_eq!(log.offset_for_timestamp(NOW + 6_000).unwrap(), Some(3));
}

#[test]
fn a_wrong_max_timestamp_is_corrected_and_the_window_applies_to_both_apis() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { message_timestamp_after_max_ms: 60_000, ..LogConfig::default() };
    let (log, _) = open(dir.path(), config);
    let mut batch = client_batch(&keyed(2), BatchMeta::default());
    patch(&mut batch, 35, &(NOW + 30_000).to_be_bytes()); // maxTimestamp above every record
    log.append_batches(&mut batch, ProduceMeta::default()).unwrap();
    let h = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap().batches().next().unwrap().0;
    assert_eq!(h.max_timestamp_ms, NOW, "corrected to the largest record timestamp");
    let future = [Record::with_key("k", "v").timestamp_ms(NOW + 120_000)];
    assert!(matches!(
        log.append(&future),
        Err(Error::Append(AppendError::InvalidTimestamp { index: 0, .. }))
    ));
    let mut later = client_batch(&future, BatchMeta::default());
    match log.append_batches(&mut later, ProduceMeta::default()) {
        Err(Error::Append(AppendError::InvalidBatch {
            problem: BatchProblem::InvalidTimestamp { .. },
            batch: 0,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(log.log_end_offset(), 2);
}

/// The refusal names the first record out of the window, with its
/// timestamp, not the batch's largest (the walk checks the extremes, then
/// looks for the record).
#[test]
fn a_timestamp_refusal_names_the_first_record_out_of_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { message_timestamp_after_max_ms: 60_000, ..LogConfig::default() };
    let (log, _) = open(dir.path(), config);
    let times = [NOW, NOW + 120_000, NOW + 200_000, NOW];
    let records: Vec<Record> = times.iter().map(|&t| Record::with_key("k", "v").timestamp_ms(t)).collect();
    let mut batch = client_batch(&records, BatchMeta::default());
    let first = client_batch(&records[..1], BatchMeta::default());
    // Record 1 starts where record 0 ends: the one-record batch's length.
    let record_1_at = first.len();
    match log.append_batches(&mut batch, ProduceMeta::default()) {
        Err(Error::Append(AppendError::InvalidBatch {
            problem: BatchProblem::InvalidTimestamp { timestamp_ms, .. },
            position,
            ..
        })) => assert_eq!((timestamp_ms, position), (NOW + 120_000, record_1_at)),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
}

/// A segment as annals wrote it before it stored Kafka's format: a 64-byte
/// little-endian header (magic 1 at byte 20, CRC-32 IEEE of bytes [16,
/// len)) and one record with value "x".
fn pre_kafka_segment() -> Vec<u8> {
    let record = [7u8, 0, 0, 0, 0, 2, b'x', 0];
    let len = 64 + record.len() as u32;
    let mut b = Vec::new();
    b.extend(0u64.to_le_bytes()); // base offset
    b.extend((-1i32).to_le_bytes()); // leader epoch
    b.extend(0u32.to_le_bytes()); // crc, below
    b.extend(len.to_le_bytes());
    b.extend([1u8, 0]); // magic 1, reserved
    b.extend(0u16.to_le_bytes()); // attributes
    b.extend(0u32.to_le_bytes()); // last offset delta
    b.extend(1u32.to_le_bytes()); // record count
    b.extend(1000i64.to_le_bytes());
    b.extend(1000i64.to_le_bytes());
    b.extend((-1i64).to_le_bytes());
    b.extend((-1i16).to_le_bytes());
    b.extend(0u16.to_le_bytes());
    b.extend((-1i32).to_le_bytes());
    b.extend(record);
    let crc = crc32fast::hash(&b[16..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn files_of_the_pre_kafka_format_are_refused_at_open_and_damage_is_not_taken_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("00000000000000000000.log");
    std::fs::write(&seg, pre_kafka_segment()).unwrap();
    match PartitionLog::open(dir.path(), LogConfig::default()) {
        Err(Error::Open(OpenError::PreKafkaFormat { path })) => assert_eq!(path, seg),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&seg).unwrap(), pre_kafka_segment(), "left as it was");
    // The same bytes with their old CRC broken are damage, not the old format.
    let mut damaged = pre_kafka_segment();
    damaged[70] ^= 1;
    std::fs::write(&seg, &damaged).unwrap();
    let err = PartitionLog::open(dir.path(), LogConfig::default()).err();
    assert!(!matches!(err, Some(Error::Open(OpenError::PreKafkaFormat { .. }))), "{err:?}");
}

/// A batch of sarama 1.22's: it never sets maxTimestamp, so it sends -1.
/// A stored batch may not hold -1 (the strict reader refuses it); Kafka's
/// `LogValidator` recomputes it, and so does the append: the header is
/// rewritten with the largest record timestamp and a new CRC, the records
/// stay the producer's bytes, and the log reopens with it.
#[test]
fn a_max_timestamp_of_minus_one_is_recomputed_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogConfig::default());
    let mut sent = client_batch(&keyed(3), BatchMeta::default());
    patch(&mut sent, 35, &(-1i64).to_be_bytes());
    assert!(annals::format::check_batch(&sent).is_err(), "not a batch a log may hold as sent");
    let mut request = sent.clone();
    log.append_batches(&mut request, ProduceMeta::default()).unwrap();
    let check = |log: &PartitionLog| {
        let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
        let (h, stored) = fetched.batches().next().unwrap();
        assert_eq!((h.base_timestamp_ms, h.max_timestamp_ms), (NOW, NOW), "the largest record timestamp");
        assert_eq!(&stored[61..], &sent[61..], "the records as sent");
        annals::format::check_batch(stored).unwrap();
        let times: Vec<i64> = fetched.records().map(|r| r.timestamp_ms).collect();
        assert_eq!(times, [NOW, NOW - 1, NOW - 2]);
    };
    check(&log);
    assert_eq!(log.offset_for_timestamp(NOW).unwrap(), Some(0));
    log.close().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), LogConfig::default());
    check(&log);
}

/// The byte position of each record's offset-delta varint in an
/// uncompressed batch of small records (one-byte lengths and timestamp
/// deltas: records with one timestamp).
fn offset_delta_positions(batch: &[u8], count: usize) -> Vec<usize> {
    let mut at = 61;
    (0..count)
        .map(|_| {
            let len = (batch[at] >> 1) as usize; // zigzag, under 64
            let delta_at = at + 3; // length, attributes, timestamp delta
            at += 1 + len;
            delta_at
        })
        .collect()
}

/// A producer's offset deltas that are not 0, 1, 2, ... (out of order, or
/// past the batch): Kafka's validator then builds the batch again at
/// consecutive offsets; so does the append, so the log holds each record
/// once, at consecutive offsets, in the order sent, in a batch every
/// reader takes.
#[test]
fn offset_deltas_that_are_not_the_records_positions_are_renumbered() {
    for deltas in [[0u8, 2, 1], [0, 1, 7], [2, 1, 0]] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), LogConfig::default());
        log.append(&keyed(1)).unwrap();
        let records: Vec<Record> =
            (0..3).map(|i| Record::with_key(format!("k{i}"), format!("v{i}")).timestamp_ms(NOW)).collect();
        let mut batch = client_batch(&records, BatchMeta::default());
        for (at, delta) in offset_delta_positions(&batch, 3).into_iter().zip(deltas) {
            batch[at] = delta << 1; // zigzag varint
        }
        let crc = annals::format::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        let info = log.append_batches(&mut batch, ProduceMeta::default()).unwrap();
        assert_eq!((info.first_offset, info.last_offset), (1, 3), "{deltas:?}");
        let fetched = log.read(1, 1 << 20, ReadBound::LogEnd).unwrap();
        let (_, stored) = fetched.batches().next().unwrap();
        annals::format::check_batch(stored).unwrap();
        let read: Vec<(u64, Vec<u8>)> =
            fetched.records().map(|r| (r.offset, r.value.unwrap().to_vec())).collect();
        let expected: Vec<(u64, Vec<u8>)> =
            (0..3).map(|i| (1 + i as u64, format!("v{i}").into_bytes())).collect();
        assert_eq!(read, expected, "{deltas:?}");
    }
}

/// A baseTimestamp past every record's timestamp (each delta negative):
/// Kafka checks the records' timestamps, not the base, and stores it. A
/// stored batch's base is at most its maxTimestamp, so the append builds
/// it again, based at its first record's timestamp.
#[test]
fn a_base_timestamp_past_every_record_is_taken_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogConfig::default());
    let records: Vec<Record> =
        (0..3).map(|i| Record::with_key(format!("k{i}"), "v").timestamp_ms(NOW)).collect();
    let mut batch = client_batch(&records, BatchMeta::default());
    for at in offset_delta_positions(&batch, 3) {
        batch[at - 1] = 1; // timestamp delta -1 (zigzag)
    }
    let crc = annals::format::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    log.append_batches(&mut batch, ProduceMeta::default()).unwrap();
    let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    let (h, stored) = fetched.batches().next().unwrap();
    annals::format::check_batch(stored).unwrap();
    assert_eq!((h.base_timestamp_ms, h.max_timestamp_ms), (NOW - 1, NOW - 1));
    assert!(fetched.records().all(|r| r.timestamp_ms == NOW - 1));
}

/// A written append is readable at once and durable only as completed:
/// under `Durability::Always` its fsync is `complete`'s, not the write's;
/// `Completion::Durable` fsyncs whatever the policy; one fsync completes
/// several written appends.
#[test]
fn a_written_append_is_made_durable_by_its_completion() {
    let dir = tempfile::tempdir().unwrap();
    let always = LogConfig { durability: annals::Durability::Always, ..LogConfig::default() };
    let (log, _) = open(&dir.path().join("always"), always);
    let meta = ProduceMeta::leader_epoch(0);
    let first = log.append_batches_written(&mut client_batch(&keyed(3), BatchMeta::default()), meta).unwrap();
    let second =
        log.append_batches_written(&mut client_batch(&keyed(2), BatchMeta::default()), meta).unwrap();
    assert_eq!((first.info().first_offset, second.info().last_offset), (0, 4));
    assert_eq!(log.durable_offset(), 0, "written, not yet fsynced");
    assert_eq!(log.metrics().fsyncs, 0);
    let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    assert_eq!(fetched.next_offset(), Some(5), "readable once written");
    let info = log.complete(second, annals::Completion::Policy).unwrap();
    assert_eq!(info.last_offset, 4);
    assert_eq!(log.durable_offset(), 5);
    let fsyncs = log.metrics().fsyncs;
    log.complete(first, annals::Completion::Policy).unwrap();
    assert_eq!(log.metrics().fsyncs, fsyncs, "the later append's fsync covered the earlier one");

    // No fsync in the policy: `Durable` is what makes it durable.
    let (log, _) = open(&dir.path().join("none"), LogConfig::default());
    let written =
        log.append_batches_written(&mut client_batch(&keyed(2), BatchMeta::default()), meta).unwrap();
    log.complete(written, annals::Completion::Policy).unwrap();
    assert_eq!(log.durable_offset(), 0);
    let written =
        log.append_batches_written(&mut client_batch(&keyed(2), BatchMeta::default()), meta).unwrap();
    log.complete(written, annals::Completion::Durable).unwrap();
    assert_eq!(log.durable_offset(), 4);
}
