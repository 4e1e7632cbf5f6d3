//! Crash and fault tests on the simulated file system: every I/O
//! operation of a workload as a crash point (the log, compaction, the
//! store), bit flips and the byte sweep over stored files, injected faults,
//! and what an acknowledged append survives.

mod acknowledged;
mod byte_sweep;
mod compaction;
mod faults;
mod flips;
mod log;
mod store;
