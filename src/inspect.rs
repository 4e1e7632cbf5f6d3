//! Read-only views of a partition directory's files, for tools (`annals
//! dump`, `annals verify`) and tests: walk a segment's batches, decode
//! and check its index entries, name its files, verify a whole partition.
//! Nothing here writes, maps or locks; the segments themselves (the types
//! that write and map files) are private to the crate.

pub use crate::log::verify::{log_bytes, verify_partition, verify_store_partition, VerifyReport};
pub use crate::segment::index_check::{
    offset_entry_problem, stored_entries, time_entry_problem, BatchSummary,
};
pub use crate::segment::{
    index_file_name, log_file_name, parse_file_name, quarantine_file_name, time_index_file_name, IndexEntry,
    InspectedBatch, Quarantine, SegmentBatches, SegmentFile, SparseEntry, TimeEntry, INDEX_ENTRY_BYTES,
    TIME_INDEX_ENTRY_BYTES,
};
