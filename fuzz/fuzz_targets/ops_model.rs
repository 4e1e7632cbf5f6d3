//! An operation sequence against a model: appends (keyed, tombstones),
//! reads, truncations, raised log starts, compaction, syncs, reopens and
//! simulated crashes on the simulated file system. After every step the log
//! agrees with the model: offsets contiguous, every record returned is the
//! one written at its offset, every record that must be there is; after a
//! crash every synced record is present. The model lives in
//! `tests/support/src/ops_model.rs`, shared with the regression replays.
#![no_main]

#[path = "../../tests/support/src/ops_model.rs"]
mod ops_model;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ops_model::run_ops(data));
