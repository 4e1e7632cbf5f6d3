//! The fuzz seeds are written by `fuzz/make_seeds.py` with kafka-python's
//! own RecordBatch v2 builder: the Rust decoder must read them exactly.

use annals::format::{check_batch, RecordIter};

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fuzz/corpus/decode_batch/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn documented_layout_matches_the_decoder() {
    let one = seed("one-record");
    let h = check_batch(&one).unwrap();
    assert_eq!((h.base_offset, h.record_count, h.base_timestamp_ms), (0, 1, 1000));
    let r: Vec<_> = RecordIter::new(&one, h).collect();
    assert_eq!(r[0].value, Some(&b"hello"[..]));
    assert_eq!(r[0].key, None);

    let mixed = seed("keyed-tombstone-headers");
    let h = check_batch(&mixed).unwrap();
    assert_eq!((h.base_offset, h.last_offset(), h.max_timestamp_ms), (42, 43, 5));
    assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (7, 0, 11));
    let r: Vec<_> = RecordIter::new(&mixed, h).collect();
    assert_eq!((r[1].offset, r[1].timestamp_ms, r[1].value), (43, 4, None));
    assert_eq!(r[0].headers().collect::<Vec<_>>(), [("h", Some(&b"x"[..]))]);
    assert_eq!(r[1].headers().collect::<Vec<_>>(), [("n", None)]);

    let hundred = seed("hundred");
    let h = check_batch(&hundred).unwrap();
    assert_eq!(RecordIter::new(&hundred, h).count(), 100);
    // Kafka's framing: a 61-byte header; per record 9 bytes (length 2,
    // attributes, timestamp and offset deltas, null key, value length 2,
    // header count), 11 once the zigzag deltas need two bytes each.
    assert_eq!(hundred.len(), 61 + 64 * 109 + 36 * 111);
}
