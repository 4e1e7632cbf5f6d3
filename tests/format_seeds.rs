//! The fuzz seeds are written by `fuzz/make_seeds.py`, an independent
//! implementation of docs/FORMAT.md: the Rust decoder must read them exactly.

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
    let r: Vec<_> = RecordIter::new(&mixed, h).collect();
    assert_eq!((r[1].offset, r[1].timestamp_ms, r[1].value), (43, 4, None));
    assert_eq!(r[0].headers().collect::<Vec<_>>(), [("h", Some(&b"x"[..]))]);
    assert_eq!(r[1].headers().collect::<Vec<_>>(), [("n", None)]);

    let hundred = seed("hundred");
    let h = check_batch(&hundred).unwrap();
    assert_eq!(RecordIter::new(&hundred, h).count(), 100);
    // 7 bytes of framing per record, 8 once the timestamp delta needs two.
    assert_eq!(hundred.len(), 64 + 64 * 107 + 36 * 108);
}
