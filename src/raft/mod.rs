//! An annals partition as openraft's log storage (feature `openraft`).
//!
//! Where one machine is not enough, a consensus engine replicates the log
//! and annals stores it: [`LogStore`] implements openraft's
//! `RaftLogStorage` (storage v2) on a [`PartitionLog`](crate::PartitionLog),
//! entry `i` at offset `i` (postcard-encoded, see `codec.rs`), the raft
//! term as the batch's leader epoch; the vote and the committed and purged
//! log ids are small checksummed files
//! beside it, each written atomically and durably. [`KvStateMachine`] with
//! [`KvConfig`] is a small state machine for tests and examples.
//!
//! Directory layout:
//!
//! ```text
//! <dir>/vote         the vote (state.rs)
//! <dir>/committed    the last committed log id
//! <dir>/purged       the last purged log id
//! <dir>/log/         the partition log: segments, indexes, checkpoints
//! ```
//!
//! `examples/raft_cluster/` runs three nodes in one process, kills the
//! leader (stopped, then power-cut) and shows the log going on with every
//! acknowledged entry.

mod codec;
mod error;
mod kv;
mod log_store;
mod reader;
mod state;

pub use error::RaftStoreError;
pub use kv::{KvConfig, KvRequest, KvResponse, KvStateMachine};
pub use log_store::{LogStore, LOG_DIR};
pub use reader::LogReader;
