//! A raft entry as a record.
//!
//! One record per entry, at the offset equal to the entry's log index, so
//! the log's dense offsets are raft's dense indexes. No key, no headers.
//! The batch's partition leader epoch is the entry's term, so the
//! leader-epoch cache, `end_offset_for_epoch` and `annals verify` see raft
//! terms as Kafka sees leader epochs (raft terms never decrease along a
//! log, as epochs must not).
//!
//! Value layout:
//!
//! ```text
//! offset  size  field
//!  0      1     codec tag: 1 = postcard
//!  1      n     the whole entry (its log id included, so every record says
//!               which term and leader wrote it) in openraft's serde form,
//!               postcard-encoded (varint integers, length-prefixed
//!               strings); nothing may follow it
//! ```

use openraft::RaftLogId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::format::RecordView;

use super::error::RaftStoreError;

/// The first byte of every entry record's value: the codec that follows.
const CODEC_POSTCARD: u8 = 1;

/// Appends the record value for `entry` (entry `index`) to `buf`.
pub(super) fn encode_into<E: Serialize>(
    entry: &E,
    index: u64,
    buf: &mut Vec<u8>,
) -> Result<(), RaftStoreError> {
    buf.push(CODEC_POSTCARD);
    let taken = std::mem::take(buf);
    *buf = postcard::to_extend(entry, taken)
        .map_err(|e| RaftStoreError::InvalidEntry { offset: index, reason: e.to_string() })?;
    Ok(())
}

/// The leader epoch a batch of entries of `term` carries.
pub(super) fn epoch_of(term: u64) -> Result<i32, RaftStoreError> {
    i32::try_from(term).map_err(|_| RaftStoreError::TermTooLarge { term })
}

/// The entry a record holds; checks it is the entry for the record's offset.
pub(super) fn from_record<NID, E>(record: &RecordView<'_>) -> Result<E, RaftStoreError>
where
    NID: openraft::NodeId,
    E: DeserializeOwned + RaftLogId<NID>,
{
    let offset = record.offset;
    let invalid = |reason: String| RaftStoreError::InvalidEntry { offset, reason };
    let value = record.value.ok_or_else(|| invalid("no value (a tombstone)".into()))?;
    let body = match value.split_first() {
        Some((&CODEC_POSTCARD, body)) => body,
        Some((tag, _)) => return Err(invalid(format!("unknown codec tag {tag}"))),
        None => return Err(invalid("empty value".into())),
    };
    let (entry, rest): (E, &[u8]) = postcard::take_from_bytes(body).map_err(|e| invalid(e.to_string()))?;
    if !rest.is_empty() {
        return Err(invalid(format!("{} bytes after the entry", rest.len())));
    }
    let index = entry.get_log_id().index;
    if index != offset {
        return Err(invalid(format!("it holds entry {index}")));
    }
    Ok(entry)
}
