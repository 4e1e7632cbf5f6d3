//! Partition log behaviour: append, read, roll, truncate, reopen.

use annals_testkit as common;

use annals::format::EncodeError;
use annals::{AppendError, ReadBound};
use annals::{Error, LogConfig, PartitionLog, Record};
use common::*;

#[test]
fn append_read_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    append_range(&log, 0, 500, 7);
    assert!(log.segment_count() > 3, "rolled into {} segments", log.segment_count());
    assert_holds(&log, 500);
    // Random single-record reads land on the right record.
    for offset in [0, 1, 6, 7, 8, 123, 250, 499] {
        let got = log.read(offset, 1, ReadBound::LogEnd).unwrap().to_records();
        assert_eq!(got[0].offset, offset);
        assert_eq!(got[0].value, record(offset).value);
    }
    // Segment files are named by base offset.
    let bases = log.segment_base_offsets();
    let files = log_files(dir.path());
    assert_eq!(files.len(), bases.len());
    assert_eq!(files[1].file_name().unwrap().to_str().unwrap(), format!("{:020}.log", bases[1]));
}

#[test]
fn read_at_end_is_empty_and_beyond_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(log.read(0, 100, ReadBound::LogEnd).unwrap().is_empty());
    append_range(&log, 0, 10, 3);
    assert!(log.read(10, 100, ReadBound::LogEnd).unwrap().is_empty());
    match log.read(11, 100, ReadBound::LogEnd) {
        Err(Error::OffsetOutOfRange { offset: 11, log_start_offset: 0, log_end_offset: 10 }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(log.truncate_to(11), Err(Error::OffsetOutOfRange { .. })));
}

#[test]
fn bad_appends_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { max_record_bytes: 1000, max_batch_bytes: 4000, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    append_range(&log, 0, 5, 5);
    assert!(matches!(log.append(&[]), Err(Error::Append(AppendError::Encode(EncodeError::Empty)))));
    let big = Record::new(vec![0u8; 2000]);
    assert!(matches!(
        log.append(&[record(5), big]),
        Err(Error::Append(AppendError::Encode(EncodeError::RecordTooLarge { index: 1, .. })))
    ));
    let many: Vec<_> = (0..10).map(|_| Record::new(vec![0u8; 900])).collect();
    assert!(matches!(
        log.append(&many),
        Err(Error::Append(AppendError::Encode(EncodeError::BatchTooLarge { .. })))
    ));
    let neg = Record::new("x").timestamp_ms(-1);
    assert!(matches!(
        log.append(&[neg]),
        Err(Error::Append(AppendError::Encode(EncodeError::InvalidTimestamp { index: 0, timestamp_ms: -1 })))
    ));
    assert_holds(&log, 5);
    append_range(&log, 5, 8, 3);
    assert_holds(&log, 8);
}

#[test]
fn invalid_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1, ..LogConfig::default() };
    assert!(matches!(
        PartitionLog::open(dir.path(), config),
        Err(Error::InvalidConfig { field: "segment_bytes", .. })
    ));
}

#[test]
fn clean_reopen_does_not_scan() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 64 << 10, index_interval_bytes: 1024, ..LogConfig::default() };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    append_range(&log, 0, 5000, 10);
    let size = log.size_bytes();
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    let report = log.recovery_report();
    assert!(report.clean_shutdown);
    assert_eq!(report.bytes_truncated, 0);
    assert_eq!(report.indexes_rebuilt, 0);
    // Only each segment's tail after its last index entry is checked.
    let per_segment_bound = 1024 + 2048;
    assert!(
        report.bytes_scanned <= per_segment_bound * report.segments as u64,
        "scanned {} of {size} bytes",
        report.bytes_scanned
    );
    assert_holds(&log, 5000);
}

#[test]
fn unclean_reopen_scans_only_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    append_range(&log, 0, 300, 5);
    log.roll().unwrap();
    append_range(&log, 300, 310, 5);
    let sealed = log.segment_count() - 1;
    let total = log.size_bytes();
    crash(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let report = log.recovery_report();
    assert!(!report.clean_shutdown);
    // The whole active segment, plus each sealed segment's tail after its
    // last index entry (under an index interval plus a batch).
    let active = log_files(dir.path()).pop().map(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let bound = active + sealed as u64 * (256 + 400);
    assert!(report.bytes_scanned <= bound, "scanned {} of {total}, bound {bound}", report.bytes_scanned);
    assert!(report.bytes_scanned < total / 2);
    assert_holds(&log, 310);
}

#[test]
fn truncate_inside_batches_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    append_range(&log, 0, 400, 9);
    // Mid-batch: offsets 0..=349 stay, including the start of 349's batch.
    log.truncate_to(350).unwrap();
    assert_holds(&log, 350);
    append_range(&log, 350, 380, 4);
    assert_holds(&log, 380);
    // Into an older segment, at a batch boundary.
    log.truncate_to(99).unwrap();
    assert_holds(&log, 99);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_holds(&log, 99);
    append_range(&log, 99, 120, 6);
    // Everything.
    log.truncate_to(0).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_holds(&log, 0);
    append_range(&log, 0, 20, 6);
    assert_holds(&log, 20);
}

#[test]
fn records_keep_keys_headers_and_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    append_range(&log, 0, 30, 30);
    let got = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap().to_records();
    assert!(got.iter().any(|r| r.value.is_none() && r.key.is_some()), "a tombstone survives");
    assert!(got.iter().any(|r| !r.headers.is_empty()));
    assert_holds(&log, 30);
}

#[test]
fn full_index_rolls_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 2 entries, one per batch after the first: 3 batches a segment.
    let config = LogConfig { index_interval_bytes: 0, segment_index_bytes: 16, ..LogConfig::default() };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    append_range(&log, 0, 20, 2);
    assert_eq!(log.segment_base_offsets(), [0, 6, 12, 18]);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.recovery_report().indexes_rebuilt, 0);
    assert_holds(&log, 20);
}

#[test]
fn max_bytes_bounds_a_read_but_returns_at_least_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    append_range(&log, 0, 100, 10);
    let one = log.read(15, 0, ReadBound::LogEnd).unwrap();
    assert_eq!(one.batches().count(), 1, "whole first batch even over max_bytes");
    assert_eq!(one.to_records().first().unwrap().offset, 15, "records before the offset are skipped");
    assert_eq!(one.next_offset(), Some(20));
    let some = log.read(0, 2000, ReadBound::LogEnd).unwrap();
    assert!(some.bytes().len() <= 2000 && some.batches().count() >= 1);
    let all = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    assert_eq!(all.to_records().len(), 100);
}

#[test]
fn fetched_records_outlive_truncation_and_segment_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    append_range(&log, 0, 200, 5);
    let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
    let before = fetched.to_records();
    log.truncate_to(0).unwrap();
    append_range(&log, 0, 50, 5);
    // The buffer is the reader's own: nothing the log does changes it.
    assert_eq!(fetched.to_records(), before);
    assert_eq!(before[3].value, record(3).value);
}

/// After close (which made everything durable), `flush` and `sync` are
/// refused as appends are, rather than writing checkpoints behind the
/// clean-shutdown marker; reads go on.
#[test]
fn flush_and_sync_after_close_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&[Record::new("a")]).unwrap();
    log.flush().unwrap();
    log.close().unwrap();
    assert!(matches!(log.flush(), Err(Error::Closed)), "{:?}", log.flush());
    assert!(matches!(log.sync(), Err(Error::Closed)));
    assert!(matches!(log.append(&[Record::new("b")]), Err(Error::Closed)));
    assert_eq!(log.read(0, 1 << 20, ReadBound::LogEnd).unwrap().to_records().len(), 1);
    assert!(log.close().is_ok(), "closing twice does nothing");
}

/// A truncation to a segment boundary makes a sealed segment, opened from
/// disk, the active one again: appends after it resume the indexing rule
/// where that segment left it (its largest timestamp so far). Were they
/// to start over, records with older timestamps would make the segment's
/// largest timestamp look old, and time retention would delete records
/// younger than `retention_ms`.
#[test]
fn appends_after_truncating_to_a_segment_boundary_keep_the_segments_largest_timestamp() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(annals::ManualClock::new(20_000));
    let options = annals::OpenOptions::default().with_clock(clock.clone());
    let config = LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        retention_ms: 5_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::open_with(dir.path(), config.clone(), options.clone()).unwrap();
    // Old records (expired by time), then young ones from offset 90 on,
    // with a roll at 95: the segment at 90 is not full.
    for i in 0..100 {
        if i == 95 {
            log.roll().unwrap();
        }
        let ts = if i < 90 { 1_000 + i } else { 18_000 + i };
        log.append(&[Record::new(vec![b'x'; 60]).timestamp_ms(ts)]).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open_with(dir.path(), config, options).unwrap();
    assert!(log.segment_count() >= 3);
    let bases: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| annals::inspect::parse_file_name(&e.unwrap().file_name().to_string_lossy()))
        .filter(|(_, kind)| *kind == annals::inspect::SegmentFile::Log)
        .map(|(base, _)| base)
        .collect();
    let mut bases = bases;
    bases.sort_unstable();
    let (active_base, reactivated_base) = (bases[bases.len() - 1], bases[bases.len() - 2]);
    assert_eq!((reactivated_base, active_base), (90, 95), "{bases:?}");
    log.truncate_to(active_base).unwrap();
    // Older timestamps than the segment's largest (18,000 and up).
    for i in 0..5 {
        log.append(&[Record::new(vec![b'y'; 60]).timestamp_ms(1_000 + i)]).unwrap();
    }
    log.roll().unwrap();
    log.append(&[Record::new("z")]).unwrap();
    log.enforce_retention().unwrap();
    assert!(
        log.log_start_offset() <= reactivated_base,
        "retention deleted the segment holding records younger than retention_ms (log start {})",
        log.log_start_offset()
    );
    let report =
        annals::inspect::verify_partition(&annals::io::StdFileSystem, dir.path(), &mut |_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
