//! What an index entry must agree with in its segment's batches (Kafka's
//! `kafka-dump-log` index checks): an offset-index entry names the batch
//! at its position and that batch's last offset; a time-index entry names
//! a batch's last offset, and that batch's maxTimestamp is the entry's
//! timestamp and the largest so far. `verify` and `annals dump` both ask
//! these.

use super::index::IndexEntry;
use super::sparse_index::SparseEntry;
use super::time_index::TimeEntry;

/// A batch as the index checks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSummary {
    /// Its byte position.
    pub position: u64,
    /// Its base offset.
    pub base_offset: u64,
    /// Its last offset.
    pub last_offset: u64,
    /// Its maxTimestamp.
    pub max_timestamp_ms: i64,
    /// The largest maxTimestamp of the segment up to it.
    pub largest_so_far_ms: i64,
}

/// The entries an index file's bytes hold, with their byte positions:
/// up to the first all-zero entry (an active segment's index is
/// preallocated with zeros).
pub fn stored_entries<E: SparseEntry>(bytes: &[u8], base_offset: u64) -> Vec<(u64, E)> {
    bytes
        .chunks_exact(E::BYTES)
        .enumerate()
        .take_while(|(_, e)| e.iter().any(|&b| b != 0))
        .map(|(i, e)| ((i * E::BYTES) as u64, E::decode(e, base_offset)))
        .collect()
}

/// What is wrong with offset-index `entry`, given the segment's batches
/// in order; `None` when it names its batch.
pub fn offset_entry_problem(batches: &[BatchSummary], entry: IndexEntry) -> Option<String> {
    let IndexEntry { offset, position } = entry;
    match batches.binary_search_by_key(&position, |b| b.position) {
        Ok(i) if batches[i].last_offset == offset => None,
        Ok(i) => Some(format!(
            "entry names offset {offset} at position {position}, where the batch ends at {}",
            batches[i].last_offset
        )),
        Err(_) => Some(format!("entry points at position {position}, not a batch start")),
    }
}

/// What is wrong with time-index `entry`, given the segment's batches in
/// order; `None` when it names the batch that reached its timestamp.
pub fn time_entry_problem(batches: &[BatchSummary], entry: TimeEntry) -> Option<String> {
    let TimeEntry { timestamp_ms: ts, offset } = entry;
    match batches.binary_search_by_key(&offset, |b| b.last_offset) {
        Ok(i) if batches[i].max_timestamp_ms == ts && batches[i].largest_so_far_ms == ts => None,
        Ok(i) => Some(format!(
            "entry says timestamp {ts} at offset {offset}; that batch's maxTimestamp is {} and the \
             largest so far {}",
            batches[i].max_timestamp_ms, batches[i].largest_so_far_ms
        )),
        Err(_) => Some(format!("entry names offset {offset}, not the last offset of a batch")),
    }
}
