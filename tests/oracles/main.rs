//! annals against code nobody here wrote: kafka-python's record codec
//! and murmur2, and openraft's own storage suite and cluster.

mod kafka_python;
#[cfg(feature = "openraft")]
mod raft_cluster;
#[cfg(feature = "openraft")]
mod raft_storage;
