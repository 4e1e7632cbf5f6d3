//! Compressed batches through the log: written by the record API with each
//! codec (highly and hardly compressible records), read back the same
//! after a clean reopen and after a crash (recovery's full check of the
//! tail), verified; a producer's compressed batch stored byte for byte,
//! LogAppendTime stamped without touching its records; offset for
//! timestamp and truncation inside a compressed batch.

use std::sync::Arc;

use annals::format::{encode_batch, BatchMeta, Codec, EncodeLimits};
use annals::io::StdFileSystem;
use annals::ReadBound;
use annals::{CompressionType, LogConfig, ManualClock, PartitionLog, ProduceMeta, Record, TimestampType};

const NOW: i64 = 1_700_000_000_000;
const CODECS: [Codec; 4] = [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];

fn config(codec: Codec) -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        compression_type: CompressionType::Codec(codec),
        ..LogConfig::default()
    }
}

fn open(dir: &std::path::Path, config: LogConfig) -> PartitionLog {
    let clock = Arc::new(ManualClock::new(NOW));
    PartitionLog::open_with(
        dir,
        config,
        annals::OpenOptions::default().with_fs(Arc::new(StdFileSystem)).with_clock(clock),
    )
    .unwrap()
}

/// Batch `b` of ten records: identical values (inflating more than
/// tenfold) for even `b`, distinct ones otherwise; keys, a tombstone, a
/// header.
fn batch(b: usize) -> Vec<Record> {
    (0..10)
        .map(|i| {
            let value = if b.is_multiple_of(2) {
                "same value ".repeat(20)
            } else {
                format!("value {b}-{i} {}", i * b * 7919)
            };
            let r = match i {
                3 => Record::tombstone(format!("k{i}")),
                _ => Record::with_key(format!("k{i}"), value),
            };
            r.header("h", Some(bytes::Bytes::from(format!("{b}")))).timestamp_ms(NOW + (b * 10 + i) as i64)
        })
        .collect()
}

type Row = (u64, i64, Option<Vec<u8>>, Option<Vec<u8>>, usize);

fn contents(log: &PartitionLog) -> Vec<Row> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let fetched = log.read(next, 1 << 16, ReadBound::LogEnd).unwrap();
        out.extend(fetched.to_records().into_iter().map(|r| {
            (
                r.offset,
                r.timestamp_ms,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
                r.headers.len(),
            )
        }));
        next = fetched.next_offset().unwrap();
    }
    out
}

#[test]
fn record_appends_of_every_codec_survive_reopen_crash_and_verify() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let plain_dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(codec));
        let plain = open(
            plain_dir.path(),
            LogConfig { compression_type: CompressionType::Producer, ..config(codec) },
        );
        for b in 0..40 {
            log.append(&batch(b)).unwrap();
            plain.append(&batch(b)).unwrap();
        }
        // More records than a compressed batch has bytes.
        let many: Vec<Record> = (0..300).map(|_| Record::new("same").timestamp_ms(NOW + 1_000)).collect();
        log.append(&many).unwrap();
        plain.append(&many).unwrap();
        let expected = contents(&plain);
        assert_eq!(contents(&log), expected, "{codec}");
        assert!(
            log.size_bytes() * 2 < plain.size_bytes(),
            "{codec}: {} vs {}",
            log.size_bytes(),
            plain.size_bytes()
        );
        let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
        assert!(fetched.batches().all(|(h, _)| h.compression() == codec), "{codec}");
        // Iterating twice reuses the batches inflated the first time.
        assert_eq!(fetched.records().count(), fetched.records().count());
        // Offset for timestamp looks inside compressed batches.
        assert_eq!(log.offset_for_timestamp(NOW + 125).unwrap(), Some(125), "{codec}");
        log.close().unwrap();
        drop(log);
        let log = open(dir.path(), config(codec));
        assert_eq!(contents(&log), expected, "{codec}: clean reopen");
        // A crash: recovery checks the tail batch by batch, records inflated.
        log.abandon();
        let log = open(dir.path(), config(codec));
        assert_eq!(contents(&log), expected, "{codec}: after a crash");
        // Truncation inside a compressed batch rewrites it compressed.
        log.truncate_to(255).unwrap();
        let cut = contents(&log);
        assert_eq!(cut[..], expected[..255], "{codec}: truncated");
        let last = log.read(250, 1 << 16, ReadBound::LogEnd).unwrap();
        assert!(last.batches().all(|(h, _)| h.compression() == codec), "{codec}: rewritten compressed");
        log.close().unwrap();
        let report = annals::inspect::verify_partition(&StdFileSystem, dir.path(), &mut |_| {}).unwrap();
        assert!(report.problems.is_empty(), "{codec}: {:?}", report.problems);
        assert_eq!(report.records, 255);
    }
}

#[test]
fn a_producers_compressed_batch_is_stored_as_sent_and_log_append_time_leaves_its_records() {
    let limits = EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 8 << 20 };
    for codec in CODECS {
        // The producer's batch: encoded, then compressed by the library's codec.
        let dir = tempfile::tempdir().unwrap();
        let producer = open(&dir.path().join("producer"), config(codec));
        producer.append(&batch(0)).unwrap();
        let sent = producer.read(0, 1 << 20, ReadBound::LogEnd).unwrap().bytes().to_vec();
        assert!(sent.len() < 400, "{codec}: {} bytes", sent.len());
        for timestamp_type in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
            let config = LogConfig {
                compression_type: CompressionType::Producer,
                message_timestamp_type: timestamp_type,
                ..config(codec)
            };
            let log = open(&dir.path().join(timestamp_type.name()), config);
            log.append(&batch(1)).unwrap();
            let mut request = sent.clone();
            let info = log.append_batches(&mut request, ProduceMeta::leader_epoch(3)).unwrap();
            assert_eq!((info.first_offset, info.last_offset), (10, 19));
            let stored = log.read(10, 1 << 20, ReadBound::LogEnd).unwrap();
            let bytes = stored.bytes();
            assert_eq!(bytes.len(), sent.len(), "{codec}");
            // Compressed records as the producer sent them; a LogAppendTime
            // topic stamps the header (maxTimestamp, the bit, the CRC) only.
            assert_eq!(bytes[61..], sent[61..], "{codec} {timestamp_type:?}");
            let want: Vec<i64> = match timestamp_type {
                TimestampType::CreateTime => batch(0).iter().map(|r| r.timestamp_ms.unwrap()).collect(),
                TimestampType::LogAppendTime => vec![NOW; 10],
            };
            assert_eq!(stored.records().map(|r| r.timestamp_ms).collect::<Vec<_>>(), want, "{codec}");
            annals::format::check_batch(bytes).unwrap();
        }
    }
    // An uncompressed producer batch into a compressed topic is compressed.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(Codec::Zstd));
    let mut plain = Vec::new();
    encode_batch(&mut plain, 0, BatchMeta::default(), &batch(0), NOW, limits).unwrap();
    let sent = plain.len();
    log.append_batches(&mut plain, ProduceMeta::default()).unwrap();
    let stored = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    assert_eq!(stored.batches().next().unwrap().0.compression(), Codec::Zstd);
    assert!(stored.bytes().len() * 3 < sent, "{} of {sent}", stored.bytes().len());
    assert_eq!(stored.records().count(), 10);
}

#[test]
fn a_refused_record_in_a_producers_compressed_batch_is_placed_at_the_compressed_stream() {
    use annals::{AppendError, BatchProblem, CleanupPolicy, Error};
    let dir = tempfile::tempdir().unwrap();
    // The producer's batch: a keyed record, then an unkeyed 300-byte one.
    let producer = open(&dir.path().join("producer"), config(Codec::Gzip));
    producer.append(&[Record::with_key("k", "v").timestamp_ms(NOW), Record::new(vec![7u8; 300])]).unwrap();
    let sent = producer.read(0, 1 << 20, ReadBound::LogEnd).unwrap().bytes().to_vec();
    let compacted = LogConfig { cleanup_policy: CleanupPolicy::Compact, ..LogConfig::default() };
    let small_records = LogConfig { max_record_bytes: 280, ..LogConfig::default() };
    for (what, config) in [("keyless", compacted), ("too large", small_records)] {
        let log = open(
            &dir.path().join(what.replace(' ', "-")),
            LogConfig { compression_type: CompressionType::Producer, ..config },
        );
        log.append(&batch(0)).unwrap();
        // A valid batch before it: positions are in the request.
        let mut valid = Vec::new();
        let limits = EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 8 << 20 };
        encode_batch(&mut valid, 0, BatchMeta::default(), &batch(1), NOW, limits).unwrap();
        let mut request = [valid.clone(), sent.clone()].concat();
        match log.append_batches(&mut request, ProduceMeta::default()) {
            Err(Error::Append(AppendError::InvalidBatch { batch: 1, position, problem })) => {
                let expected = matches!(
                    (&problem, what),
                    (BatchProblem::InvalidRecord(_), "keyless")
                        | (BatchProblem::RecordTooLarge { .. }, "too large")
                );
                assert!(expected, "{what}: {problem:?}");
                // The inflated records have no byte in the batch: the
                // stream's first byte stands for them.
                assert_eq!(position, valid.len() + 61, "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 10, "{what}: nothing appended");
    }
}
