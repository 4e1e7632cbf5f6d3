//! Arbitrary bytes into the batch decoder: it never panics or reads out of
//! bounds, never accepts bytes whose CRC does not match, and a batch it
//! accepts yields exactly `record_count` well-formed records, compressed
//! or not (its records inflated under the default cap).
#![no_main]

use annals::format::{check_batch, BatchHeader, Inflater};
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
    let mut inflater = Inflater::default();
    let inflated = inflater.inflate_owned(batch, header).expect("inflated once, inflates again");
    let owner = inflated.map_or(owner, Bytes::from);
    let records = match header.is_compressed() {
        true => annals::format::inflated_records(&owner, header),
        false => annals::format::RecordIter::new(&owner, header),
    };
    for record in records {
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
