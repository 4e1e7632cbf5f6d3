//! kafka-python (its own v2 codec, `kafka.record`) as the oracle for the
//! bytes annals stores and takes: (a) it decodes every `.log` file of a
//! store annals wrote and must find exactly the records annals returns,
//! every CRC valid; (b) it builds producer batches that annals appends
//! pass-through and must read back at the assigned offsets. Both for
//! every compression codec (kafka-python's own codecs: `kafka.codec` over
//! python-snappy, lz4 and zstandard): any framing that differs from
//! Kafka's (xerial's snappy header, lz4 block independence) fails here.
//!
//! The interpreter is `$ANNALS_PYTHON`, else `target/pyenv/bin/python`
//! (`.ci/run` makes that virtualenv and installs kafka-python in it).
//! Without it the tests fail in CI and skip loudly elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use annals::format::Codec;
use annals::ReadBound;
use annals::{
    CleanupPolicy, CompressionType, LogConfig, PartitionLog, ProduceMeta, Record, Store, StoreConfig,
    TopicConfig,
};
use bytes::Bytes;
use serde_json::Value;

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracles/kafka_python_oracle.py");

/// The interpreter with kafka-python, or `None` (outside CI only).
fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("ANNALS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python"));
    let works = Command::new(&candidate)
        .args(["-c", "import kafka.record.default_records, snappy, lz4.frame, zstandard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "kafka-python or its codecs are missing in CI: {} cannot import them (.ci/run installs them)",
        candidate.display()
    );
    eprintln!(
        "\n*** SKIPPED: kafka-python oracle tests: {} cannot import kafka.record and its codecs. \
         Run: python3 -m venv target/pyenv && target/pyenv/bin/pip install kafka-python==3.0.12 \
         python-snappy lz4 zstandard ***\n",
        candidate.display()
    );
    None
}

fn oracle(python: &Path, cmd: &str, arg: &Path) -> Vec<Value> {
    oracle_with(python, cmd, arg, "none")
}

fn oracle_with(python: &Path, cmd: &str, arg: &Path, codec: &str) -> Vec<Value> {
    let mut command = Command::new(python);
    command.arg(ORACLE).arg(cmd).arg(arg);
    if cmd == "build" {
        command.arg(codec);
    }
    let out = command.output().expect("run the oracle");
    assert!(out.status.success(), "oracle {cmd} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn hex(b: Option<&[u8]>) -> Value {
    b.map_or(Value::Null, |b| Value::String(b.iter().map(|x| format!("{x:02x}")).collect()))
}

/// A record as the oracle prints it (without the file).
fn annals_json(r: &annals::RecordView<'_>) -> Value {
    let headers: Vec<Value> = r.headers().map(|(k, v)| serde_json::json!([k, hex(v)])).collect();
    serde_json::json!({
        "offset": r.offset, "timestamp": r.timestamp_ms,
        "key": hex(r.key), "value": hex(r.value), "headers": headers,
    })
}

/// Every record of the log in `dir`, as annals reads it.
fn read_all(dir: &Path) -> Vec<Value> {
    // The oracle tests spawn Python while other tests of this binary run:
    // a child forked before it execs holds a copy of every descriptor this
    // process has open, a log's directory lock among them (flock belongs to
    // the open file, which the copy keeps open), so the lock of a log just
    // closed can stay held for the moment until that child's exec closes it.
    let mut tries = 0;
    let log = loop {
        match PartitionLog::open(dir, LogConfig::default()) {
            Err(annals::Error::Open(annals::OpenError::LogLocked { .. })) if tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => break opened.unwrap(),
        }
    };
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let fetched = log.read(offset, 1 << 20, ReadBound::LogEnd).unwrap();
        out.extend(fetched.records().map(|r| annals_json(&r)));
        offset = fetched.next_offset().unwrap();
    }
    out
}

fn record(i: usize) -> Record {
    let key = Bytes::from(format!("key-{}", i % 7));
    let mut r = match i % 5 {
        0 => Record::tombstone(key),
        1 => Record::with_key(key, vec![b'v'; i % 40]).header("h", Some(Bytes::from_static(b"x"))),
        _ => Record::with_key(key, format!("value-{i}")),
    };
    if i.is_multiple_of(3) {
        r = r.header("null-value", None);
    }
    r.timestamp_ms(1_700_000_000_000 + (i as i64 * 13) % 50)
}

#[test]
fn kafka_python_decodes_every_log_file_annals_wrote() {
    let Some(python) = python() else { return };
    decode_every_log_file(&python, CompressionType::Producer);
}

#[test]
fn kafka_python_decodes_every_log_file_annals_compressed_with_each_codec() {
    let Some(python) = python() else { return };
    for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
        decode_every_log_file(&python, CompressionType::Codec(codec));
    }
}

/// (a): a store and a log written with `compression`, compacted and
/// truncated, decoded by kafka-python: the same records as annals reads,
/// every batch holding records in the codec asked for.
fn decode_every_log_file(python: &Path, compression: CompressionType) {
    let root = tempfile::tempdir().unwrap();
    let small = LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        compression_type: compression,
        ..LogConfig::default()
    };
    {
        let store = Store::open(root.path().join("store"), StoreConfig::default()).unwrap();
        let compacted = TopicConfig {
            partitions: 2,
            log: LogConfig { cleanup_policy: CleanupPolicy::Compact, ..small.clone() },
        };
        let topic = store.create_topic("compacted", compacted).unwrap();
        for i in 0..300 {
            topic.append(&[record(i), record(i + 1)]).unwrap();
        }
        store.compact().unwrap();
        let plain = store.create_topic("plain", TopicConfig { partitions: 1, log: small.clone() }).unwrap();
        for i in 0..50 {
            plain.append_to(0, &[Record::new(format!("keyless-{i}")), record(i)]).unwrap();
        }
        store.offsets().commit("group", "plain", 0, 42).unwrap();
        store.close().unwrap();
    }
    {
        // A log truncated inside a batch (the cut batch is rewritten).
        let log = PartitionLog::open(root.path().join("truncated"), small).unwrap();
        for i in 0..60 {
            log.append(&[record(i), record(i + 100), record(i + 200)]).unwrap();
        }
        log.truncate_to(100).unwrap();
        log.append(&[record(7)]).unwrap();
        log.close().unwrap();
    }
    let decoded = oracle(python, "decode", root.path());
    let codec = match compression {
        CompressionType::Codec(c) => c.id(),
        CompressionType::Producer => 0,
    };
    let mut by_dir: BTreeMap<PathBuf, Vec<Value>> = BTreeMap::new();
    for mut r in decoded {
        let fields = r.as_object_mut().unwrap();
        let file = fields.remove("file").unwrap();
        // Consumer offsets keep their own (uncompressed) configuration.
        let expected = if file.as_str().unwrap().contains("__consumer_offsets") { 0 } else { codec };
        assert_eq!(fields.remove("codec").unwrap(), expected, "{compression:?}: {file}");
        let dir = Path::new(file.as_str().unwrap()).parent().unwrap().to_path_buf();
        by_dir.entry(dir).or_default().push(r);
    }
    assert!(
        by_dir.len() >= 5,
        "{compression:?}: partitions decoded: {:?}",
        by_dir.keys().collect::<Vec<_>>()
    );
    let mut compared = 0;
    for (dir, from_oracle) in &by_dir {
        let from_annals = read_all(&root.path().join(dir));
        assert_eq!(&from_annals, from_oracle, "{compression:?}: {}", dir.display());
        compared += from_annals.len();
    }
    let tombstones = by_dir.values().flatten().filter(|r| r["value"].is_null()).count();
    assert!(compared > 200 && tombstones > 0, "{compared} records, {tombstones} tombstones");
}

#[test]
fn batches_kafka_python_built_append_pass_through() {
    let Some(python) = python() else { return };
    pass_through(&python, Codec::None);
}

#[test]
fn batches_kafka_python_compressed_with_each_codec_append_pass_through_and_recompress() {
    let Some(python) = python() else { return };
    for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
        pass_through(&python, codec);
        // A topic whose compression.type is another codec recompresses;
        // one that is `none` stores them uncompressed.
        let other = if codec == Codec::Zstd { Codec::Lz4 } else { Codec::Zstd };
        recompressed(&python, codec, other);
        recompressed(&python, codec, Codec::None);
    }
}

/// (b): kafka-python's batches, compressed with `codec`, appended
/// pass-through and kept as sent.
fn pass_through(python: &Path, codec: Codec) {
    let dir = tempfile::tempdir().unwrap();
    let wire = dir.path().join("batches.bin");
    let expected = oracle_with(python, "build", &wire, codec.name());
    let mut bytes = std::fs::read(&wire).unwrap();
    // Split into the client's batches (Kafka's length field counts the
    // bytes after it).
    let mut spans = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize + 12;
        spans.push(at..at + len);
        at += len;
    }
    assert_eq!(spans.len(), 6);
    let log = PartitionLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    // The first three in one append (one write), then one at a time.
    let first_three = spans[0].start..spans[2].end;
    let info = log.append_batches(&mut bytes[first_three], ProduceMeta::leader_epoch(5)).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 4));
    let mut next = 5;
    for span in &spans[3..] {
        let mut copy = bytes[span.clone()].to_vec();
        let info = log.append_batches(&mut copy, ProduceMeta::leader_epoch(5)).unwrap();
        assert_eq!(info.first_offset, next);
        next = info.last_offset + 1;
        if span == &spans[3] {
            // The producer's retry: its original offsets, nothing appended.
            let mut retry = bytes[span.clone()].to_vec();
            let again = log.append_batches(&mut retry, ProduceMeta::leader_epoch(5)).unwrap();
            assert_eq!(again, info);
            assert_eq!(log.log_end_offset(), next);
        }
    }
    assert_eq!(next as usize, expected.len());
    let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    let got: Vec<Value> = fetched.records().map(|r| annals_json(&r)).collect();
    for (offset, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g["offset"], offset as u64);
        for field in ["timestamp", "key", "value", "headers"] {
            assert_eq!(g[field], e[field], "{codec}: offset {offset} {field}");
        }
    }
    assert_eq!(got.len(), expected.len());
    // Stored as sent: only the base offset and leader epoch were stamped.
    let stored = fetched.bytes();
    let mut offset = 0u64;
    for (batch, span) in fetched.batches().zip(&spans) {
        let mut sent = bytes[span.clone()].to_vec();
        sent[..8].copy_from_slice(&(offset as i64).to_be_bytes());
        sent[12..16].copy_from_slice(&5i32.to_be_bytes());
        assert_eq!(batch.1, &sent[..], "batch at {offset}");
        offset = batch.0.next_offset();
    }
    assert_eq!(log.leader_epochs(), [(5, 0)]);
    // kafka-python reads the stored segment back too.
    log.close().unwrap();
    drop(log);
    let decoded = oracle(python, "decode", &dir.path().join("log"));
    assert_eq!(decoded.len(), expected.len());
    // kafka-python sends a batch uncompressed when compressing does not
    // make it smaller (the small ones here).
    assert!(decoded.iter().all(|r| r["codec"] == codec.id() || r["codec"] == 0), "{codec}");
    assert!(decoded.iter().filter(|r| r["codec"] == codec.id()).count() >= 100, "{codec}");
    if codec == Codec::None {
        assert!(stored.len() > 10_000);
    } else {
        assert!(stored.len() < 5_000, "{codec}: {} bytes stored", stored.len());
    }
}

/// kafka-python's `from` batches into a topic whose `compression.type` is
/// `to`: stored with `to`, the same records at the same offsets,
/// kafka-python decodes them.
fn recompressed(python: &Path, from: Codec, to: Codec) {
    let dir = tempfile::tempdir().unwrap();
    let wire = dir.path().join("batches.bin");
    let expected = oracle_with(python, "build", &wire, from.name());
    let mut bytes = std::fs::read(&wire).unwrap();
    let config = LogConfig { compression_type: CompressionType::Codec(to), ..LogConfig::default() };
    let log = PartitionLog::open(dir.path().join("log"), config).unwrap();
    let info = log.append_batches(&mut bytes, ProduceMeta::leader_epoch(2)).unwrap();
    assert_eq!(info.last_offset as usize + 1, expected.len());
    let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    assert!(fetched.batches().all(|(h, _)| h.compression() == to), "{from} -> {to}");
    let got: Vec<Value> = fetched.records().map(|r| annals_json(&r)).collect();
    log.close().unwrap();
    drop(log);
    let decoded = oracle(python, "decode", &dir.path().join("log"));
    assert_eq!(decoded.len(), expected.len(), "{from} -> {to}");
    for ((g, d), e) in got.iter().zip(&decoded).zip(&expected) {
        assert_eq!(d["codec"], to.id());
        for field in ["timestamp", "key", "value", "headers"] {
            assert_eq!(g[field], e[field], "{from} -> {to}: {field}");
            assert_eq!(d[field], e[field], "{from} -> {to}: {field}");
        }
        assert_eq!(g["offset"], d["offset"]);
    }
}

/// A producer's batch of one record whose bytes after the length are
/// `body` (attributes on), its length and CRC-32C made to match.
fn batch_with_record_body(body: &[u8]) -> Vec<u8> {
    let limits = annals::format::EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 8 << 20 };
    let mut batch = Vec::new();
    let one = [Record::with_key("k", "v").timestamp_ms(1_700_000_000_000)];
    annals::format::encode_batch(
        &mut batch,
        0,
        annals::BatchMeta::default(),
        &one,
        1_700_000_000_000,
        limits,
    )
    .unwrap();
    batch.truncate(61);
    // The record's length, a one-byte zigzag varint, then its body.
    batch.push((body.len() * 2) as u8);
    batch.extend_from_slice(body);
    let length = (batch.len() - 12) as u32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// (d): lengths below -1 (zigzag 3 is -2, 9 is -5, 5 is -3) for a key, a
/// value and a header value, which Kafka's readers take as null: appended
/// pass-through, then decoded by kafka-python from the log file.
#[test]
fn negative_field_lengths_read_as_null_as_kafka_python_reads_them() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path().join("p-0"), LogConfig::default()).unwrap();
    // attributes, timestamp delta, offset delta, key, value, headers
    let bodies: [&[u8]; 3] =
        [&[0, 0, 0, 3, 2, b'v', 0], &[0, 0, 0, 2, b'k', 9, 0], &[0, 0, 0, 3, 2, b'v', 2, 2, b'h', 5]];
    for body in bodies {
        let mut batch = batch_with_record_body(body);
        log.append_batches(&mut batch, ProduceMeta::default()).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let from_oracle: Vec<Value> = oracle(&python, "decode", dir.path())
        .into_iter()
        .map(|mut r| {
            let fields = r.as_object_mut().unwrap();
            fields.remove("file");
            fields.remove("codec");
            r
        })
        .collect();
    let from_annals = read_all(&dir.path().join("p-0"));
    assert_eq!(from_annals, from_oracle);
    let nulls: Vec<_> = from_annals.iter().map(|r| (r["key"].is_null(), r["value"].is_null())).collect();
    assert_eq!(nulls, [(true, false), (false, true), (true, false)]);
    assert_eq!(from_annals[2]["headers"], serde_json::json!([["h", null]]));
}
