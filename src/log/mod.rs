//! The partition log: segments in order, append, read, truncate, recovery.

mod partition;

pub use partition::{AppendInfo, PartitionLog, RecoveryReport, CLEAN_SHUTDOWN_FILE};
