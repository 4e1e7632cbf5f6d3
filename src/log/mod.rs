//! The partition log: segments in order, append, read, truncate, recovery,
//! and waiting for appends.

mod append;
mod checkpoint;
mod cleaner;
mod close;
mod combine;
mod durability;
mod epochs;
mod extent;
mod metrics;
mod notify;
mod open;
mod partition;
mod pipeline;
mod points;
mod produce;
mod producers;
mod repair;
mod replica;
mod retention;
mod segments;
mod sink;
mod table;
mod truncate;
mod types;
pub(crate) mod verify;
mod wait;
mod watermark;

pub use checkpoint::{CLEANER_OFFSET_FILE, HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
pub use epochs::LEADER_EPOCH_FILE;
pub use extent::SYNCED_EXTENT_FILE;
pub use metrics::{LatencyHistogram, PartitionMetrics, LATENCY_BUCKETS};
#[cfg(feature = "openraft")]
pub(crate) use open::lock_log_dir;
pub(crate) use open::{lock_own_dir, STORE_TOPICS_DIR};
pub use open::{OpenOptions, CLEAN_SHUTDOWN_FILE, LOG_LOCK_FILE};
pub use partition::PartitionLog;
pub use produce::ProduceMeta;
pub use producers::PRODUCER_SNAPSHOT_FILE;
pub use repair::{AcceptDataLoss, RepairReport};
pub(crate) use table::CheckpointTable;
pub use table::CHECKPOINTS_FILE;
pub use types::{
    AppendInfo, CompactionReport, Completion, ReadBound, RecoveryReport, RetentionReport, Written,
};
pub use wait::WaitForOffset;
