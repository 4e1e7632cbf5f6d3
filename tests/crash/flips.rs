//! Crash enumeration with synced-data damage (issue 15): every crash point
//! of the durable workloads, every image also with a byte flipped in an
//! acknowledged batch. No acknowledged record may be cut silently; with
//! the synced extent written at every group fsync none may be cut at all;
//! and no image without a flip (a plain power cut) may be refused.
//!
//! `ANNALS_CRASH_FULL=1 cargo test --release --test crash -- --nocapture flips::`
//! runs the full enumeration (docs/RELIABILITY.md has its figures).

use annals_testkit as common;

use annals::Durability;
use common::crash::{config, Workload, EXTENT_INTERVAL};
use common::flips::{enumerate_flips, FlipReport};
use common::workloads::*;

/// (seeded images per crash point, flips per image).
fn depth() -> (u64, u64) {
    if std::env::var_os("ANNALS_CRASH_FULL").is_some() {
        (8, 16)
    } else {
        (1, 3)
    }
}

fn run(name: &str, workload: Workload, policy: Durability, extent_interval: u64) -> FlipReport {
    EXTENT_INTERVAL.with(|i| i.set(extent_interval));
    let (seeds, flips) = depth();
    let report = enumerate_flips(workload, &config(policy), seeds, flips);
    eprintln!("{}", report.summary(&format!("{name} (extent interval {extent_interval})")));
    for f in report.failures.iter().take(5) {
        eprintln!("  {f}");
    }
    for q in &report.quarantine_examples {
        eprintln!("  quarantined: {q}");
    }
    report
}

/// The default promise: nothing cut silently, no plain power cut refused.
fn assert_no_silent_loss(report: &FlipReport) {
    assert!(report.flips > 50, "the workload acknowledged records to flip");
    assert_eq!(report.records_lost_silently, 0);
    assert_eq!(report.corrupt_records, 0);
    assert_eq!(report.plain_refusals, 0);
    assert!(report.failures.is_empty(), "{:#?}", &report.failures[..report.failures.len().min(5)]);
}

/// With the extent at every group fsync: no acknowledged record cut at all,
/// but for a double fault: a crash inside a truncation that was rewriting
/// the batch, its intent torn (the old batch stands below a lowered
/// extent), and bit rot in that batch. Even then the records are kept in
/// a quarantine file.
fn assert_none_cut(report: &FlipReport) {
    assert_no_silent_loss(report);
    assert_eq!(
        report.acked_records_quarantined - report.quarantined_in_truncation,
        0,
        "no acknowledged record is past the extent"
    );
    assert!(report.refused > 0, "flips above the recovery point are refused");
}

const WORKLOADS: [(&str, Workload, Durability); 5] = [
    ("always", always_appends, Durability::Always),
    ("none+flush", none_appends_with_flush, Durability::None),
    ("interval", interval_appends, INTERVAL),
    ("roll+truncate", roll_and_truncate, Durability::Always),
    ("close+reopen", close_and_reopen, Durability::None),
];

#[test]
fn flips_in_acknowledged_batches_are_never_cut_with_the_extent_at_every_fsync() {
    for (name, workload, policy) in WORKLOADS {
        assert_none_cut(&run(name, workload, policy, 0));
    }
}

#[test]
fn flips_in_acknowledged_batches_are_never_cut_silently_with_a_lagging_extent() {
    // 256 bytes: a lag window of a few batches of these small workloads,
    // as the 1 MiB default is of real ones.
    for (name, workload, policy) in WORKLOADS {
        assert_no_silent_loss(&run(name, workload, policy, 256));
    }
}

/// Negative control: recovery that cuts at the first bad batch past the
/// recovery point (the rule before the synced extent) loses acknowledged
/// records silently, and the harness sees it.
#[cfg(feature = "mutation-testing")]
#[test]
fn the_harness_catches_cutting_at_the_first_bad_batch() {
    annals::mutation::set(Some(annals::mutation::Mutation::CutAtFirstBadBatch));
    let report = run("always, cut at first bad batch", always_appends, Durability::Always, 0);
    annals::mutation::set(None);
    assert!(report.records_lost_silently > 0, "{}", report.summary("control"));
}

/// Negative control: a synced extent written without its fsync may vouch
/// for nothing after a crash (acknowledged records then fall in the
/// window) or for bytes a truncation cut (a plain power cut refused).
#[cfg(feature = "mutation-testing")]
#[test]
fn the_harness_catches_an_unsynced_extent() {
    annals::mutation::set(Some(annals::mutation::Mutation::UnsyncedExtent));
    let always = run("always, unsynced extent", always_appends, Durability::Always, 0);
    let truncate = run("roll+truncate, unsynced extent", roll_and_truncate, Durability::Always, 0);
    annals::mutation::set(None);
    let caught =
        |r: &FlipReport| r.acked_records_quarantined + r.records_lost_silently + r.plain_refusals as usize;
    assert!(caught(&always) > 0, "{}", always.summary("control"));
    assert!(caught(&truncate) > 0, "{}", truncate.summary("control"));
}
