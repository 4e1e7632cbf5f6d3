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
        // The workloads open their logs with `config`: set for this thread.
        common::crash::COMPRESSION.with(|c| c.set(annals::CompressionType::Codec(codec)));
        assert_clean(&run(name, workload, Durability::Always));
    }
}

/// The workloads with the write buffer on (300 bytes: a few batches, so
/// some appends write the buffer out and others only fill it): `Always`
/// and `Interval` write it before each fsync, flush, roll, truncation and
/// close write it, and a crash loses only what no fsync covered.
#[test]
fn buffered_appends_rolls_truncations_and_closes_survive_every_crash() {
    common::crash::WRITE_BUFFER_BYTES.with(|b| b.set(300));
    for (name, workload, policy) in [
        ("buffered always", always_appends as Workload, Durability::Always),
        ("buffered none+flush", none_appends_with_flush, Durability::None),
        ("buffered interval", interval_appends, INTERVAL),
        ("buffered roll+truncate", roll_and_truncate, Durability::Always),
        ("buffered close+reopen", close_and_reopen, Durability::None),
    ] {
        assert_clean(&run(name, workload, policy));
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

/// A truncation inside a batch rewrites it in place, and the offset-index
/// entry at its position (naming the old last offset) is dropped. After a
/// clean reopen the index file holds exactly its entries, so that drop must
/// reach the disk before the recovery point moves past it: a power cut
/// right after the truncation once brought the entry back, and the next
/// truncation then failed on it ("OffsetMismatch { expected: 4, found: 3 }",
/// found by the ops_model fuzzer). The recovered partition must verify
/// clean, and truncate and read as the model says.
#[test]
fn a_truncation_inside_a_batch_survives_a_power_cut_with_its_index() {
    use std::sync::Arc;

    use annals::io::sim::{CrashMode, SimFs};
    use annals::{OpenOptions, PartitionLog, ReadBound, Record};

    let config = annals::LogConfig { index_interval_bytes: 1, ..config(Durability::None) };
    let open = |fs: &SimFs| {
        PartitionLog::open_with("/p", config.clone(), OpenOptions::default().with_fs(Arc::new(fs.clone())))
            .expect("open")
    };
    let records = |keys: std::ops::Range<u8>| -> Vec<Record> {
        keys.map(|k| Record::with_key(vec![k], vec![k; 8])).collect()
    };
    let fs = SimFs::new();
    let log = open(&fs);
    log.append(&records(0..3)).unwrap();
    log.append(&records(3..5)).unwrap();
    log.close().unwrap();
    drop(log);
    let log = open(&fs);
    log.truncate_to(4).unwrap();
    let image = fs.crash_image(CrashMode::DurableOnly);
    drop(log);

    let report = annals::inspect::verify_partition(&image, std::path::Path::new("/p"), &mut |_| {}).unwrap();
    assert!(report.problems.is_empty(), "after the cut and a power cut: {:#?}", report.problems);
    let log = open(&image);
    assert_eq!(log.log_end_offset(), 4);
    log.append(&records(4..7)).unwrap();
    log.truncate_to(4).expect("a second truncation inside the log");
    let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    let keys: Vec<u8> = fetched.records().map(|r| r.key.unwrap()[0]).collect();
    assert_eq!(keys, [0, 1, 2, 3]);
}
