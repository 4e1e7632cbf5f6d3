//! Injected I/O errors (EIO, ENOSPC) at every operation index, once and
//! persistently: nothing is acknowledged after a failed fsync or write, and
//! the log reopens consistent. A full disk is a typed, recoverable error.

use annals_testkit as common;

use std::io::ErrorKind;

use annals::io::sim::{CrashMode, SimFs};
use annals::ReadBound;
use annals::{Durability, Error};
use common::crash::{config, open, record, Tracker};

const APPENDS: u64 = 12;

/// Appends under `always` until the end, recording acknowledgements; keeps
/// going after errors to see whether anything is acknowledged after one.
/// Returns (acks after the first error, the tracker, first error).
fn workload(fs: &SimFs) -> (u64, Tracker, Option<Error>) {
    let policy = Durability::Always;
    let mut t = Tracker::default();
    let mut first_error = None;
    let mut acks_after_error = 0;
    let log = match open(fs, &config(policy)) {
        Ok(log) => log,
        Err(e) => return (0, t, Some(e)),
    };
    for i in 0..APPENDS {
        let next = t.current.records.len() as u64;
        let batch: Vec<_> = (next..next + 1 + i % 3).map(record).collect();
        match t.append(&log, &batch, policy) {
            Ok(()) if first_error.is_some() => acks_after_error += 1,
            Ok(()) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        if i % 5 == 4 {
            match t.flush(&log) {
                Ok(()) if first_error.is_some() => acks_after_error += 1,
                Ok(()) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    (acks_after_error, t, first_error)
}

fn reopen_is_consistent(fs: &SimFs, t: &Tracker, what: &str) {
    for mode in [CrashMode::DurableOnly, CrashMode::AllPending, CrashMode::Seeded(7)] {
        let image = fs.crash_image(mode);
        let log =
            open(&image, &config(Durability::Always)).unwrap_or_else(|e| panic!("{what} {mode:?}: {e}"));
        let end = log.log_end_offset() as usize;
        let allowed = t.allowed();
        let got: Vec<_> = (0..end)
            .map(|o| {
                let r = log.read(o as u64, 1, ReadBound::LogEnd).unwrap().to_records().remove(0);
                (r.key, r.value, r.timestamp_ms)
            })
            .collect();
        let ok = allowed.iter().any(|s| {
            end >= s.durable
                && end <= s.records.len()
                && got
                    .iter()
                    .zip(&s.records)
                    .all(|(g, w)| g.0 == w.key && g.1 == w.value && g.2 == w.timestamp_ms)
        });
        assert!(
            ok,
            "{what} {mode:?}: recovered {end} records, allowed {:?}",
            allowed.iter().map(|s| (s.durable, s.records.len())).collect::<Vec<_>>()
        );
    }
}

fn sweep(kind: ErrorKind) {
    let total = {
        let fs = SimFs::new();
        workload(&fs);
        fs.op_count()
    };
    for persistent in [false, true] {
        for at in 0..total {
            let fs = SimFs::new();
            fs.fail_at(at, kind, persistent);
            let (acks_after, tracker, first) = workload(&fs);
            let what = format!("{kind:?} at op {at} (persistent: {persistent})");
            let poisoning = !matches!(first, None | Some(Error::DiskFull { .. }));
            if poisoning {
                assert_eq!(acks_after, 0, "{what}: acknowledged after {:?}", first);
            }
            fs.clear_faults();
            reopen_is_consistent(&fs, &tracker, &what);
        }
    }
}

#[test]
fn eio_at_every_operation_never_acknowledges_after_and_reopens_consistent() {
    sweep(ErrorKind::Other);
}

#[test]
fn enospc_at_every_operation_reopens_consistent() {
    sweep(ErrorKind::StorageFull);
}

#[test]
fn a_failed_fsync_poisons_until_reopen() {
    let fs = SimFs::new();
    let log = open(&fs, &config(Durability::None)).unwrap();
    log.append(&[record(0)]).unwrap();
    fs.fail_at(fs.op_count() + 1, ErrorKind::Other, false); // the fsync after the write
    log.append(&[record(1)]).unwrap();
    assert!(log.flush().is_err());
    // Transient or not, the partition stays poisoned: no retry can be trusted.
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    assert!(matches!(log.append(&[record(2)]), Err(Error::Poisoned { .. })));
    assert!(log.read(0, 100, ReadBound::LogEnd).is_ok(), "reads still work");
    assert!(log.close().is_err(), "a poisoned log does not claim a clean shutdown");
    drop(log);
    let log = open(&fs, &config(Durability::None)).unwrap();
    assert!(!log.recovery_report().clean_shutdown);
    log.append(&[record(2)]).unwrap();
}

#[test]
fn a_full_disk_is_a_typed_error_and_appends_resume_without_gap() {
    let fs = SimFs::new();
    let log = open(&fs, &config(Durability::Always)).unwrap();
    for i in 0..5 {
        log.append(&[record(i)]).unwrap();
    }
    // Leave room for a little more, then fill it.
    fs.set_capacity(Some(fs_used(&fs) + 300));
    let mut next = 5;
    let err = loop {
        match log.append(&[record(next)]) {
            Ok(info) => {
                assert_eq!(info.first_offset, next);
                next += 1;
            }
            Err(e) => break e,
        }
        assert!(next < 1000, "the disk never filled");
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("disk full"));
    // Readable and consistent while full.
    assert_eq!(log.log_end_offset(), next);
    for o in 0..next {
        assert_eq!(log.read(o, 1, ReadBound::LogEnd).unwrap().to_records()[0].value, record(o).value);
    }
    assert!(matches!(log.append(&[record(next)]), Err(Error::DiskFull { .. })), "still full");
    fs.set_capacity(None);
    let info = log.append(&[record(next)]).unwrap();
    assert_eq!(info.first_offset, next, "no gap, no duplicate");
    for o in 0..=next {
        assert_eq!(log.read(o, 1, ReadBound::LogEnd).unwrap().to_records()[0].offset, o);
    }
}

fn fs_used(fs: &SimFs) -> u64 {
    // Every file of the partition: the active segment, its index, checkpoint.
    ["00000000000000000000.log", "00000000000000000000.index", "recovery-point"]
        .iter()
        .filter_map(|n| fs.read_file(&std::path::Path::new(common::crash::DIR).join(n)).ok())
        .map(|d| d.len() as u64)
        .sum()
}
