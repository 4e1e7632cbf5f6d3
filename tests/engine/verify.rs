//! `log::verify_partition`: read-only checks of a partition directory.

use annals_testkit as common;

use annals::inspect::verify_partition;
use annals::io::StdFileSystem;
use annals::PartitionLog;
use common::*;

fn verify(dir: &std::path::Path) -> annals::inspect::VerifyReport {
    let mut progressed = 0;
    let report = verify_partition(&StdFileSystem, dir, &mut |n| progressed += n).unwrap();
    assert!(progressed <= report.bytes, "progress past the log bytes");
    if report.problems.is_empty() && report.tails.is_empty() {
        assert_eq!(progressed, report.bytes, "a sound log: every byte checked and reported");
    }
    report
}

#[test]
fn a_sound_log_has_no_problems_and_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    append_range(&log, 0, 600, 7);
    let segments = log.segment_count() as u64;
    log.close().unwrap();
    drop(log);
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();

    let report = verify(dir.path());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.segments, report.records), (segments, 600));
    for (path, bytes) in &before {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "verify changed {}", path.display());
    }

    // A flipped byte in a middle segment's log: named with its position.
    let logs = log_files(dir.path());
    let mid = &logs[logs.len() / 2];
    let mut bytes = std::fs::read(mid).unwrap();
    bytes[200] ^= 0x08;
    std::fs::write(mid, &bytes).unwrap();
    let report = verify(dir.path());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(&report.problems[0].path, mid);
    std::fs::write(mid, before.iter().find(|(p, _)| p == mid).unwrap().1.clone()).unwrap();

    // An index entry pointing into the middle of a batch.
    let index = mid.with_extension("index");
    let mut bytes = std::fs::read(&index).unwrap();
    assert!(bytes.len() >= 16, "the fixture has index entries");
    bytes[4] = bytes[4].wrapping_add(1); // first entry's position
    std::fs::write(&index, &bytes).unwrap();
    let report = verify(dir.path());
    assert!(report.problems.iter().any(|p| p.path == index), "{:?}", report.problems);

    // A missing middle segment: the next one does not start where the
    // one before ends.
    let dir2 = tempfile::tempdir().unwrap();
    for (path, bytes) in &before {
        std::fs::write(dir2.path().join(path.file_name().unwrap()), bytes).unwrap();
    }
    std::fs::remove_file(dir2.path().join(mid.file_name().unwrap())).unwrap();
    let report = verify(dir2.path());
    assert!(
        report.problems.iter().any(|p| p.detail.contains("but the one before ends")),
        "{:?}",
        report.problems
    );
}

/// `verify` says what the next open will do: a torn tail past the synced
/// extent is a cut (no problem), damage past it followed by valid batches
/// is a cut into quarantine (to look at), damage below it is refused.
#[test]
fn verify_judges_damage_as_the_next_open_will() {
    use annals::{Durability, LogConfig};
    let config = LogConfig { durability: Durability::None, ..LogConfig::default() };
    let template = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(template.path(), config.clone()).unwrap();
    append_range(&log, 0, 200, 10);
    log.flush().unwrap();
    let segment = log_files(template.path()).pop().unwrap();
    let flushed = std::fs::metadata(&segment).unwrap().len();
    append_range(&log, 200, 300, 10); // never fsynced
    crash(log);
    let len = std::fs::metadata(&segment).unwrap().len();
    let copy = |edit: &dyn Fn(&mut Vec<u8>)| {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(template.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let path = dir.path().join(segment.file_name().unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        edit(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
        dir
    };
    // A torn last batch: cut, nothing to act on.
    let torn = copy(&|b| b.truncate(len as usize - 7));
    let report = verify(torn.path());
    let [tail] = &report.tails[..] else { panic!("{report:?}") };
    assert!(!tail.quarantine && report.problems.is_empty() && !report.needs_attention());
    let opened = PartitionLog::open(torn.path(), config.clone()).unwrap();
    assert_eq!(opened.recovery_report().bytes_truncated, tail.bytes, "verify said what open cut");
    assert_eq!(opened.recovery_report().truncated_from_offset, Some(tail.first_offset));
    // Damage past the extent with valid batches after it: quarantined.
    let window = copy(&|b| b[(flushed + (len - flushed) / 3) as usize] ^= 1);
    let report = verify(window.path());
    let [tail] = &report.tails[..] else { panic!("{report:?}") };
    assert!(tail.quarantine && report.needs_attention());
    let opened = PartitionLog::open(window.path(), config.clone()).unwrap();
    assert_eq!(opened.recovery_report().quarantined[0].first_offset, tail.first_offset);
    // Damage below it: a problem, and the open refuses.
    let synced = copy(&|b| b[(flushed / 2) as usize] ^= 1);
    let report = verify(synced.path());
    assert!(report.tails.is_empty() && report.problems.len() == 1 && report.needs_attention(), "{report:?}");
    assert!(PartitionLog::open(synced.path(), config).is_err());
}
