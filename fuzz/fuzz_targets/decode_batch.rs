//! Arbitrary bytes into the batch decoder: it never panics or reads out of
//! bounds, never accepts bytes whose CRC does not match, and a batch it
//! accepts yields exactly `record_count` well-formed records.
#![no_main]

use annals::format::{check_batch, BatchHeader, RecordIter};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = check_batch(data) else { return };
    let batch = &data[..header.batch_len as usize];
    // Accepted means the CRC-32C of bytes [21, end) matches, recomputed
    // here with another crate than the library's.
    assert_eq!(crc32c::crc32c(&batch[21..]), header.crc);
    assert_eq!(BatchHeader::parse(batch).unwrap(), header);
    let owner = Bytes::copy_from_slice(batch);
    let mut count = 0u32;
    let mut last = None;
    for record in RecordIter::new(&owner, header) {
        assert!(record.offset >= header.base_offset && record.offset <= header.last_offset());
        assert!(last.is_none_or(|l| record.offset > l), "offsets increase");
        assert!(record.timestamp_ms <= header.max_timestamp_ms && record.timestamp_ms >= 0);
        last = Some(record.offset);
        let stored = record.to_stored(&owner);
        assert_eq!(stored.headers.len(), record.headers().count());
        count += 1;
    }
    assert_eq!(count, header.record_count);
});
