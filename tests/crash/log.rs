//! Crash enumeration: each workload is killed at every mutating I/O
//! operation; each kill point yields several disk images (synced state
//! only, everything, and seeded mixes of lost, kept, torn and garbage
//! writes); every image is recovered (twice, and also with recovery itself
//! crashed at each of its operations) and checked against the model:
//! acknowledged-durable records present byte-identical, nothing returned
//! that was not written at that offset, offsets contiguous.
//!
//! CI runs a slice; `ANNALS_CRASH_FULL=1 cargo test --release --test crash
//! -- --nocapture log::` runs the full enumeration (see docs/RELIABILITY.md).

use annals_testkit as common;

use annals::Durability;
use common::crash::{config, enumerate, Depth, Report, Workload};
use common::workloads::*;

fn depth() -> Depth {
    if std::env::var_os("ANNALS_CRASH_FULL").is_some() {
        Depth { seeds: 32, recovery_crash_every: 1 }
    } else {
        Depth { seeds: 4, recovery_crash_every: 3 }
    }
}

fn run(name: &str, workload: Workload, policy: Durability) -> Report {
    run_with(name, workload, &config(policy))
}

fn run_with(name: &str, workload: Workload, config: &annals::LogConfig) -> Report {
    let report = enumerate(workload, config, depth(), None);
    eprintln!(
        "{name}: {} crash points, {} recovery crash points, {} images, {} records lost, {} corrupt records, {} failures",
        report.crash_points,
        report.recovery_crash_points,
        report.images,
        report.records_lost,
        report.corrupt_records,
        report.failures.len()
    );
    for f in report.failures.iter().take(5) {
        eprintln!("  {f}");
    }
    report
}

fn assert_clean(report: &Report) {
    assert!(report.crash_points > 10, "the workload did I/O");
    assert_eq!(report.records_lost, 0);
    assert_eq!(report.corrupt_records, 0);
    assert!(report.failures.is_empty(), "{:#?}", &report.failures[..report.failures.len().min(5)]);
}

#[test]
fn appends_under_always_survive_every_crash() {
    assert_clean(&run("always", always_appends, Durability::Always));
}

#[test]
fn flushed_appends_under_none_survive_every_crash() {
    assert_clean(&run("none+flush", none_appends_with_flush, Durability::None));
}

#[test]
fn appends_under_interval_survive_every_crash() {
    assert_clean(&run("interval", interval_appends, INTERVAL));
}

#[test]
fn rolls_truncations_and_reopen_survive_every_crash() {
    assert_clean(&run("roll+truncate", roll_and_truncate, Durability::Always));
}

/// The same workloads on compressed topics: recovery inflates each batch
/// of the tail to check it, and truncation rewrites a cut batch compressed.
#[test]
fn compressed_appends_rolls_and_truncations_survive_every_crash() {
    for (codec, workload, name) in [
        (annals::format::Codec::Lz4, always_appends as Workload, "always lz4"),
        (annals::format::Codec::Zstd, roll_and_truncate as Workload, "roll+truncate zstd"),
    ] {
        let compressed = annals::LogConfig {
            compression_type: annals::CompressionType::Codec(codec),
            ..config(Durability::Always)
        };
        assert_clean(&run_with(name, workload, &compressed));
    }
}

#[test]
fn close_and_reopen_survive_every_crash() {
    assert_clean(&run("close+reopen", close_and_reopen, Durability::None));
}

#[test]
fn retention_and_raised_log_start_survive_every_crash() {
    assert_clean(&run_with("retention", retention_and_delete_records, &retention_config()));
}

/// Negative control: without directory fsyncs, new segment files can vanish
/// in a crash, and the harness must see acknowledged records lost.
#[test]
fn the_harness_catches_missing_directory_fsyncs() {
    let report =
        enumerate(always_appends, &config(Durability::Always), depth(), Some(|fs| fs.ignore_dir_sync(true)));
    eprintln!(
        "negative control (no dir fsync): {} failures, {} records lost",
        report.failures.len(),
        report.records_lost
    );
    assert!(!report.failures.is_empty() && report.records_lost > 0);
}

/// Negative control: with fsync a no-op, acknowledged records are lost.
#[test]
fn the_harness_catches_fsync_that_does_nothing() {
    let report =
        enumerate(always_appends, &config(Durability::Always), depth(), Some(|fs| fs.ignore_file_sync(true)));
    eprintln!(
        "negative control (no fsync): {} failures, {} records lost",
        report.failures.len(),
        report.records_lost
    );
    assert!(!report.failures.is_empty() && report.records_lost > 0);
}
