//! The engine's behaviour, one module per subject: partitions and their
//! reads, appends (records, producer batches, replicas), retention,
//! compaction, compression, recovery, the store and its consumer offsets.

mod architecture;
mod bombs;
mod combining;
mod committed_reads;
mod compaction;
mod compression;
mod concurrency;
mod format_seeds;
mod fuzz_regressions;
mod idempotence;
mod lifecycle;
mod many_partitions;
mod model;
mod offsets;
mod partition;
mod pass_through;
mod recovery;
mod replication;
mod retention;
mod store;
mod truncate_fully;
mod verify;
mod write_buffer;
