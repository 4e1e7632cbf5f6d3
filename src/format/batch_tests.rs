use super::*;
use crate::format::record::Record;
use bytes::Bytes;
use proptest::prelude::*;

const LIMITS: EncodeLimits = EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 8 << 20 };

fn sample() -> Vec<Record> {
    vec![
        Record::with_key("k1", "v1").timestamp_ms(1000),
        Record::new("no key").timestamp_ms(999).header("h", Some(Bytes::from_static(b"x"))),
        Record::tombstone("k1").header("empty", None),
        Record::new(vec![7u8; 300]),
    ]
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_batch(&mut out, 42, BatchMeta::default(), records, 5000, LIMITS).unwrap();
    out
}

#[test]
fn roundtrip_fields() {
    let records = sample();
    let buf = encode(&records);
    let h = check_batch(&buf).unwrap();
    assert_eq!(h.base_offset, 42);
    assert_eq!(h.record_count, 4);
    assert_eq!(h.last_offset(), 45);
    assert_eq!(h.base_timestamp_ms, 1000);
    assert_eq!(h.max_timestamp_ms, 5000);
    assert_eq!(h.batch_len as usize, buf.len());
    let owner = Bytes::from(buf.clone());
    let views: Vec<_> = RecordIter::new(&owner, h).collect();
    assert_eq!(views.len(), 4);
    for (i, (v, r)) in views.iter().zip(&records).enumerate() {
        let s = v.to_stored(&owner);
        assert_eq!(s.offset, 42 + i as u64);
        assert_eq!(s.timestamp_ms, r.timestamp_ms.unwrap_or(5000));
        assert_eq!(s.key, r.key);
        assert_eq!(s.value, r.value);
        assert_eq!(s.headers, r.headers);
    }
}

#[test]
fn small_records_cost_little() {
    let records: Vec<_> = (0..100).map(|_| Record::new(vec![1u8; 100]).timestamp_ms(1)).collect();
    let buf = encode(&records);
    let overhead = buf.len() - 100 * 100;
    // Kafka's v2 record framing: about ten bytes for a keyless 100-byte record.
    assert!(overhead <= BATCH_HEADER_BYTES + 100 * 10, "overhead {overhead}");
}

#[test]
fn rejects_bad_input() {
    let mut out = Vec::new();
    assert_eq!(encode_batch(&mut out, 0, BatchMeta::default(), &[], 0, LIMITS), Err(EncodeError::Empty));
    let big = [Record::new(vec![0u8; 2 << 20])];
    assert!(matches!(
        encode_batch(&mut out, 0, BatchMeta::default(), &big, 0, LIMITS),
        Err(EncodeError::RecordTooLarge { index: 0, .. })
    ));
    let neg = [Record::new("x").timestamp_ms(-5)];
    assert!(matches!(
        encode_batch(&mut out, 0, BatchMeta::default(), &neg, 0, LIMITS),
        Err(EncodeError::InvalidTimestamp { .. })
    ));
    let many: Vec<_> = (0..10).map(|_| Record::new(vec![0u8; 1000])).collect();
    let small = EncodeLimits { max_record_bytes: 2000, max_batch_bytes: 5000 };
    assert!(matches!(
        encode_batch(&mut out, 0, BatchMeta::default(), &many, 0, small),
        Err(EncodeError::BatchTooLarge { .. })
    ));
    assert!(out.is_empty(), "failed encodes leave the buffer untouched");
}

#[test]
fn every_covered_bit_flip_is_detected() {
    let buf = encode(&sample());
    for i in CRC_FROM..buf.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = buf.clone();
            bad[i] ^= mask;
            assert!(check_batch(&bad).is_err(), "flip {mask:#x} at {i} not detected");
        }
    }
}

#[test]
fn truncation_is_detected() {
    let buf = encode(&sample());
    for len in 0..buf.len() {
        assert!(check_batch(&buf[..len]).is_err(), "truncated to {len} accepted");
    }
}

#[test]
fn base_offset_is_rewritable() {
    let mut buf = encode(&sample());
    set_base_offset(&mut buf, 1000);
    assert_eq!(check_batch(&buf).unwrap().base_offset, 1000);
}

proptest! {
    #[test]
    fn decode_never_panics(bytes: Vec<u8>) {
        let _ = check_batch(&bytes);
    }

    #[test]
    fn decode_mutated_never_panics(pos in 0usize..400, byte: u8) {
        let mut buf = encode(&sample());
        let n = buf.len();
        buf[pos % n] = byte;
        if let Ok(h) = check_batch(&buf) {
            let _: Vec<_> = RecordIter::new(&buf, h).collect();
        }
    }

    #[test]
    fn roundtrip_any(recs in proptest::collection::vec(
        (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
         proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
         0i64..1_000_000), 1..20)) {
        let records: Vec<Record> = recs.iter().map(|(k, v, t)| Record {
            timestamp_ms: Some(*t),
            key: k.clone().map(Bytes::from),
            value: v.clone().map(Bytes::from),
            headers: vec![],
        }).collect();
        let buf = encode(&records);
        let h = check_batch(&buf).unwrap();
        let got: Vec<_> = RecordIter::new(&buf, h).map(|v| (v.key.map(<[u8]>::to_vec), v.value.map(<[u8]>::to_vec), v.timestamp_ms)).collect();
        prop_assert_eq!(got, recs);
    }
}

#[test]
fn a_batch_with_a_flipped_length_is_told_from_a_torn_one() {
    let mut buf = Vec::new();
    let records: Vec<Record> = (0..5).map(|i| Record::new(vec![i as u8; 30])).collect();
    encode_batch(&mut buf, 0, BatchMeta::default(), &records, 1, LIMITS).unwrap();
    let len = buf.len();
    let mut tail = buf.clone();
    tail.extend_from_slice(&[0xAB; 100]); // torn bytes of a later write after it
    assert!(!whole_but_for_length(&tail), "an intact batch is not damaged");
    for bit in 0..32 {
        let mut flipped = tail.clone();
        flipped[LENGTH_AT + bit / 8] ^= 1 << (bit % 8);
        assert!(whole_but_for_length(&flipped), "length bit {bit}");
    }
    for cut in BATCH_HEADER_BYTES..len {
        assert!(!whole_but_for_length(&buf[..cut]), "a prefix of {cut} bytes is torn, not flipped");
    }
}

#[test]
fn crc32c_is_castagnoli() {
    // The CRC-32C check value (RFC 3720; Kafka's Crc32C).
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
}

/// A one-record batch whose record is `record` (its length varint and
/// body, as given), with the batch's length and CRC made to match.
fn batch_of_raw_record(record: &[u8]) -> Vec<u8> {
    let mut batch = encode(&[Record::with_key("k", "v").timestamp_ms(5000)]);
    batch.truncate(BATCH_HEADER_BYTES);
    batch.extend_from_slice(record);
    let length = (batch.len() - LOG_OVERHEAD) as u32;
    batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn a_negative_field_length_is_null_and_a_negative_count_or_record_length_is_refused_as_kafka_reads_them() {
    // Zigzag varints, one byte each: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, ...
    // A record: attributes, timestamp delta, offset delta, key, value,
    // header count and headers.
    let record = |key: &[u8], value: &[u8], headers: &[u8]| {
        let body = [&[0u8, 0, 0][..], key, value, headers].concat();
        [&[(body.len() * 2) as u8][..], &body].concat()
    };
    // Kafka's DefaultRecord.readFrom: a key or value (or header value) of
    // negative length is null, whatever the length.
    let read = |record: &[u8]| {
        let batch = batch_of_raw_record(record);
        let header = check_batch(&batch).unwrap();
        let r = RecordIter::new(&batch, header).next().unwrap();
        let headers: Vec<_> = r.headers().map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec))).collect();
        (r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), headers)
    };
    let v = Some(b"v".to_vec());
    let none = Vec::new();
    assert_eq!(read(&record(&[1], &[2, b'v'], &[0])), (None, v.clone(), none.clone()), "key length -1");
    assert_eq!(read(&record(&[3], &[2, b'v'], &[0])), (None, v.clone(), none.clone()), "key length -2");
    assert_eq!(read(&record(&[127], &[2, b'v'], &[0])), (None, v.clone(), none.clone()), "key length -64");
    assert_eq!(read(&record(&[2, b'k'], &[9], &[0])), (Some(b"k".to_vec()), None, none), "value length -5");
    let null_header = vec![("h".to_string(), None)];
    assert_eq!(
        read(&record(&[1], &[2, b'v'], &[2, 2, b'h', 5])),
        (None, v, null_header),
        "header value length -3"
    );
    let refused = [
        // Each but the record length -1 (an empty body) would be a
        // well-formed record were the sign ignored.
        ("header count -1", record(&[2, b'k'], &[2, b'v'], &[1])),
        ("header count -2", record(&[2, b'k'], &[2, b'v'], &[3, 2, b'h', 1])),
        ("header key length -1", record(&[1], &[2, b'v'], &[2, 1, 1])),
        ("record length -1", vec![1, 0, 0, 0, 1, 1, 0]),
        ("record length -7", vec![13, 0, 0, 0, 1, 1, 0]),
        ("record length -7, two bytes", vec![0x8d, 0x00, 0, 0, 0, 1, 1, 0]),
    ];
    for (what, record) in refused {
        let batch = batch_of_raw_record(&record);
        let e = check_batch(&batch).expect_err(what);
        assert!(matches!(e.kind, DecodeErrorKind::BadRecord(_)), "{what}: {e:?}");
    }
}
