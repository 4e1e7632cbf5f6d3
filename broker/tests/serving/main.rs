//! The broker served over TCP and spoken to with kafka-protocol as the
//! client: the protocol's APIs, consumer groups, the data path (produce,
//! fetch, limits, waits), the connection's pipeline and shutdown. (The hostile-frame sweep is its own
//! binary, for its counting allocator; real clients are `clients.rs`.)

#[path = "../common/mod.rs"]
mod common;

mod data_path;
mod groups;
mod pipeline;
mod power_cut;
mod protocol;
mod shutdown;
