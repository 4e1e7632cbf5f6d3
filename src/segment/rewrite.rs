//! Rewriting one batch without some of its records (truncation inside a
//! batch). Offsets of the kept records do not move.

use std::path::Path;

use bytes::Bytes;

use crate::error::{Corruption, Error, Result};
use crate::format::batch::{encode_with_deltas, BatchLayout};
use crate::format::{BatchMeta, Header, Record, RecordIter};

use super::scan::{read_batch, ChunkReader};

/// Encodes into `out` the batch at `pos` keeping only records below `offset`;
/// the new batch covers offsets up to `offset - 1`.
pub(crate) fn prefix_batch(
    reader: &mut ChunkReader<'_>,
    path: &Path,
    pos: u64,
    offset: u64,
    out: &mut Vec<u8>,
) -> Result<()> {
    let header = read_batch(reader, pos)?.map_err(|e| Error::corruption(path, pos, Corruption::Batch(e)))?;
    debug_assert!(header.base_offset < offset && offset <= header.last_offset());
    let bytes = reader
        .get(pos, header.batch_len as usize)?
        .ok_or_else(|| Error::corruption(path, pos, Corruption::Batch(truncated())))?;
    let mut deltas = Vec::new();
    let mut records = Vec::new();
    for view in RecordIter::new(bytes, header).take_while(|r| r.offset < offset) {
        deltas.push((view.offset - header.base_offset) as u32);
        records.push(Record {
            timestamp_ms: Some(view.timestamp_ms),
            key: view.key.map(Bytes::copy_from_slice),
            value: view.value.map(Bytes::copy_from_slice),
            headers: view
                .headers()
                .map(|(k, v)| Header { key: k.to_owned(), value: v.map(Bytes::copy_from_slice) })
                .collect(),
        });
    }
    let layout = BatchLayout {
        base_offset: header.base_offset,
        meta: BatchMeta {
            leader_epoch: header.leader_epoch,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
        },
        last_offset_delta: (offset - 1 - header.base_offset) as u32,
        now_ms: header.first_timestamp_ms,
        // The records already fit these limits once; do not refuse them now
        // because the configuration shrank.
        limits: crate::format::EncodeLimits { max_record_bytes: usize::MAX, max_batch_bytes: usize::MAX },
    };
    // With no record kept (possible once compaction thins batches) this is
    // an empty batch that still covers its offsets, keeping them contiguous.
    encode_with_deltas(out, &layout, &records, |i| deltas[i]).map_err(Error::from)?;
    Ok(())
}

fn truncated() -> crate::format::DecodeError {
    crate::format::DecodeError { kind: crate::format::DecodeErrorKind::Truncated, position: 0 }
}
