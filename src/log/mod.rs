//! The partition log: segments in order, append, read, truncate, recovery,
//! and waiting for appends.

mod checkpoint;
mod cleaner;
mod durability;
mod epochs;
mod extent;
mod notify;
mod partition;
mod points;
mod producers;
mod repair;
mod replica;
mod retention;
pub mod verify;
mod wait;
mod watermark;

pub use checkpoint::{CLEANER_OFFSET_FILE, HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
pub use cleaner::CompactionReport;
pub use epochs::LEADER_EPOCH_FILE;
pub use extent::SYNCED_EXTENT_FILE;
pub use partition::{AppendInfo, PartitionLog, RecoveryReport, CLEAN_SHUTDOWN_FILE};
pub use producers::PRODUCER_SNAPSHOT_FILE;
pub use repair::{AcceptDataLoss, RepairReport};
pub use retention::RetentionReport;
pub use verify::{verify_partition, VerifyReport};
pub use wait::WaitForOffset;
