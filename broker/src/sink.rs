//! The benchmark's stand-in for the store (`--cfg discard_sink`, built
//! only by `benches/librdkafka.sh`): produced batches are counted and
//! discarded, offsets handed out by a counter; a fetch is answered with the
//! last batch produced to the partition, its base offset restamped, so a
//! consumer measures the protocol path without storage. Never in a broker
//! anyone runs.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;

/// Per partition: the next offset and the last batch.
#[derive(Default)]
pub(crate) struct Sink {
    partitions: Mutex<HashMap<(String, i32), (u64, Bytes)>>,
}

impl Sink {
    /// "Appends" `records` (whole batches): the base offset.
    pub(crate) fn append(&self, topic: &str, partition: i32, records: &[u8]) -> Option<u64> {
        let (mut at, mut count, mut last) = (0usize, 0u64, None);
        while at + 61 <= records.len() {
            let header = annals::format::BatchHeader::parse(&records[at..]).ok()?;
            count += u64::from(header.last_offset_delta) + 1;
            last = Some(at..at + header.batch_len as usize);
            at += header.batch_len as usize;
        }
        let last = Bytes::copy_from_slice(records.get(last?)?);
        let mut all = self.partitions.lock();
        let entry = all.entry((topic.to_string(), partition)).or_insert((0, Bytes::new()));
        let base = entry.0;
        entry.0 += count;
        entry.1 = last;
        Some(base)
    }

    /// The end offset and copies of the last batch restamped at `offset`
    /// on, as many as fit `max_bytes` (one at least) before the end.
    pub(crate) fn fetch(&self, topic: &str, partition: i32, offset: u64, max_bytes: usize) -> (u64, Bytes) {
        let all = self.partitions.lock();
        let Some((end, last)) = all.get(&(topic.to_string(), partition)) else { return (0, Bytes::new()) };
        let Ok(header) = annals::format::BatchHeader::parse(last) else { return (*end, Bytes::new()) };
        let count = u64::from(header.last_offset_delta) + 1;
        let mut out = Vec::new();
        let mut at = offset;
        while at < *end && (out.is_empty() || out.len() + last.len() <= max_bytes) {
            let start = out.len();
            out.extend_from_slice(last);
            annals::format::set_base_offset(&mut out[start..], at);
            at += count;
        }
        (*end, Bytes::from(out))
    }
}
