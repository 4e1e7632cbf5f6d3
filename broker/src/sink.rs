//! The benchmark's stand-in for the store (`--cfg discard_sink`, built
//! only by `benches/librdkafka.sh`), behind the same [`DataPath`] as the
//! store: produced batches are counted and discarded, offsets handed out
//! by a counter; a fetch is answered with the last batch produced to the
//! partition, its base offset restamped, so a consumer measures the
//! protocol path without storage. Never in a broker anyone runs.

use std::collections::HashMap;

use annals::{AppendInfo, Completion, Partition, ProduceMeta, WaitForOffset};
use bytes::Bytes;
use parking_lot::Mutex;

use crate::storage::{Appended, DataPath};

/// Per partition: the next offset and the last batch.
#[derive(Default)]
pub(crate) struct Sink {
    partitions: Mutex<HashMap<(String, u32), (u64, Bytes)>>,
}

impl Sink {
    /// "Appends" `records` (whole batches): the base offset.
    fn append_to(&self, topic: &str, partition: u32, records: &[u8]) -> Option<u64> {
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

    /// The end offset, copies of the last batch restamped at `offset` on,
    /// as many as fit `max_bytes` (one at least) before the end, and the
    /// offset after them.
    fn fetch(&self, topic: &str, partition: u32, offset: u64, max_bytes: usize) -> (u64, Bytes, u64) {
        let all = self.partitions.lock();
        let Some((end, last)) = all.get(&(topic.to_string(), partition)) else {
            return (0, Bytes::new(), offset);
        };
        let Ok(header) = annals::format::BatchHeader::parse(last) else {
            return (*end, Bytes::new(), offset);
        };
        let count = u64::from(header.last_offset_delta) + 1;
        let mut out = Vec::new();
        let mut at = offset;
        while at < *end && (out.is_empty() || out.len() + last.len() <= max_bytes) {
            let start = out.len();
            out.extend_from_slice(last);
            annals::format::set_base_offset(&mut out[start..], at);
            at += count;
        }
        (*end, Bytes::from(out), at)
    }
}

impl DataPath for Sink {
    fn append(&self, partition: &Partition, batches: &[u8], _meta: ProduceMeta) -> annals::Result<Appended> {
        match self.append_to(partition.topic(), partition.id(), batches) {
            Some(base) => Ok(Appended::Discarded(AppendInfo {
                first_offset: base,
                last_offset: base,
                max_timestamp_ms: -1,
            })),
            // CORRUPT_MESSAGE, as the store answers bytes that are no batch.
            None => Err(annals::Error::Append(annals::AppendError::InvalidBatch {
                batch: 0,
                position: 0,
                problem: annals::BatchProblem::Corrupt(annals::format::DecodeError {
                    kind: annals::format::DecodeErrorKind::Truncated,
                    position: 0,
                }),
            })),
        }
    }

    fn complete(&self, _: &Partition, appended: Appended, _: Completion) -> annals::Result<AppendInfo> {
        Ok(*appended.info())
    }

    fn offsets(&self, partition: &Partition) -> (u64, u64, u64) {
        let end =
            self.partitions.lock().get(&(partition.topic().to_string(), partition.id())).map_or(0, |e| e.0);
        (0, end, end)
    }

    fn offline(&self, _partition: &Partition) -> Option<annals::Error> {
        None
    }

    fn read(
        &self,
        partition: &Partition,
        offset: u64,
        max_bytes: usize,
    ) -> annals::Result<(Bytes, Option<u64>)> {
        let (end, bytes, next) = self.fetch(partition.topic(), partition.id(), offset, max_bytes);
        let next = (!bytes.is_empty()).then_some(next.min(end));
        Ok((bytes, next))
    }

    fn wait(&self, _partition: &Partition, _offset: u64) -> Option<WaitForOffset> {
        None
    }
}
