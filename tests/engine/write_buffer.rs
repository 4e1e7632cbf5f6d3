//! The opt-in write buffer (`LogConfig::write_buffer_bytes`): appends land
//! in memory and reach the segment file in large writes, yet every read
//! sees every acknowledged record, every fsync covers the buffer, and a
//! killed process loses at most the buffer's bytes, as whole batches at the
//! log end.

use annals_testkit as common;

use std::fs;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use annals::{Durability, LogConfig, PartitionLog, ReadBound};
use common::*;

/// The timer never fires in these tests (an hour), except where one says.
fn buffered(bytes: usize, durability: Durability) -> LogConfig {
    LogConfig {
        write_buffer_bytes: bytes,
        write_buffer_max_delay_ms: 3_600_000,
        durability,
        ..small_config()
    }
}

fn file_bytes(dir: &Path) -> u64 {
    log_files(dir).iter().map(|f| fs::metadata(f).unwrap().len()).sum()
}

#[test]
fn a_read_sees_every_buffered_append_and_writes_the_buffer_out() {
    let dir = tempfile::tempdir().unwrap();
    for mmap_reads in [true, false] {
        let config = LogConfig { mmap_reads, segment_bytes: 1 << 20, ..buffered(1 << 16, Durability::None) };
        let _ = fs::remove_dir_all(dir.path());
        let log = PartitionLog::open(dir.path(), config).unwrap();
        append_range(&log, 0, 30, 3);
        assert_eq!(file_bytes(dir.path()), 0, "buffered, not written");
        let fetched = log.read(27, 1 << 20, ReadBound::LogEnd).unwrap();
        assert_eq!(fetched.to_records().first().map(|r| r.offset), Some(27), "the last batch is read");
        assert_eq!(file_bytes(dir.path()), log.size_bytes(), "the read wrote the buffer out");
        append_range(&log, 30, 40, 5);
        assert!(file_bytes(dir.path()) < log.size_bytes());
        assert_holds(&log, 40);
        assert_eq!(log.offset_for_timestamp(record(39).timestamp_ms.unwrap()).unwrap(), Some(39));
    }
}

#[test]
fn flush_roll_truncation_and_close_write_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), buffered(1 << 16, Durability::None)).unwrap();
    append_range(&log, 0, 8, 4);
    log.flush().unwrap();
    assert_eq!(file_bytes(dir.path()), log.size_bytes(), "flush writes it");
    // 4 KiB segments: these roll, and every sealed segment is whole in its file.
    append_range(&log, 8, 200, 4);
    assert!(log.segment_count() > 2);
    let files = log_files(dir.path());
    let sealed: u64 = files[..files.len() - 1].iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    let active = fs::metadata(files.last().unwrap()).unwrap().len();
    assert!(active < log.size_bytes() - sealed, "the active segment's last appends are buffered");
    // A cut inside the buffered batches.
    log.truncate_to(198).unwrap();
    append_range(&log, 198, 210, 4);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), buffered(1 << 16, Durability::None)).unwrap();
    let report = log.recovery_report();
    assert!(report.clean_shutdown && report.bytes_truncated == 0, "{report:?}");
    assert_holds(&log, 210);
}

/// The active segment of a reopened log buffers too (a segment that does
/// not roll by time: the test stream's timestamps would roll it).
#[test]
fn a_reopened_log_buffers_its_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        LogConfig { segment_ms: i64::MAX, segment_bytes: 1 << 20, ..buffered(1 << 16, Durability::None) };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    append_range(&log, 0, 10, 5);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    append_range(&log, 10, 20, 5);
    assert_eq!(log.segment_count(), 1);
    assert!(file_bytes(dir.path()) < log.size_bytes(), "the appends after the reopen are buffered");
    assert_holds(&log, 20);
}

/// A read that writes the buffer out and fails (a full disk) poisons the
/// partition as a failed append would: those appends were acknowledged.
#[test]
fn a_failed_write_out_by_a_read_poisons_the_partition() {
    use annals::io::sim::SimFs;
    let fs = SimFs::new();
    let options = annals::OpenOptions::default().with_fs(std::sync::Arc::new(fs.clone()));
    let log = PartitionLog::open_with("/p", buffered(1 << 16, Durability::None), options).unwrap();
    append_range(&log, 0, 10, 5);
    fs.set_capacity(Some(0));
    let e = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap_err();
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::StorageFull), "{e:?}");
    assert!(log.poisoned().is_some(), "the read poisoned the partition");
    fs.set_capacity(None);
    assert!(matches!(log.append(&[record(10)]), Err(annals::Error::Poisoned { .. })));
    log.abandon();
}

/// Under `Always` each append's fsync first writes the buffer, so a killed
/// process (the buffer never written) loses nothing acknowledged.
#[test]
fn always_writes_the_buffer_before_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), buffered(1 << 16, Durability::Always)).unwrap();
    append_range(&log, 0, 20, 2);
    crash(log);
    let log = PartitionLog::open(dir.path(), buffered(1 << 16, Durability::Always)).unwrap();
    assert_holds(&log, 20);
}

/// The loss window, shown: under `None` a killed process loses what the
/// buffer held, as whole batches at the log end; the log opens clean on
/// the prefix and goes on from it.
#[test]
fn a_killed_process_loses_the_buffered_suffix_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1 << 20, ..buffered(1 << 16, Durability::None) };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    append_range(&log, 0, 10, 5);
    log.flush().unwrap();
    append_range(&log, 10, 25, 5);
    crash(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_holds(&log, 10);
    append_range(&log, 10, 25, 5);
    assert_holds(&log, 25);
}

#[test]
fn the_buffer_is_written_on_its_delay() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { write_buffer_max_delay_ms: 20, ..buffered(1 << 16, Durability::None) };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    append_range(&log, 0, 6, 3);
    // Bounded: 10 s for a 20 ms delay on a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file_bytes(dir.path()) < log.size_bytes() {
        assert!(std::time::Instant::now() < deadline, "not written on its delay");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    crash(log);
}

#[test]
fn an_oversized_write_buffer_is_refused() {
    let config =
        LogConfig { write_buffer_bytes: annals::config::WRITE_BUFFER_BYTES_MAX + 1, ..LogConfig::default() };
    assert!(matches!(
        config.validate(),
        Err(annals::Error::InvalidConfig { field: "write_buffer_bytes", .. })
    ));
    let config = LogConfig { write_buffer_max_delay_ms: 0, ..LogConfig::default() };
    assert!(matches!(
        config.validate(),
        Err(annals::Error::InvalidConfig { field: "write_buffer_max_delay_ms", .. })
    ));
}

const CHILD: &str = "ANNALS_WRITE_BUFFER_CHILD";
const CHILD_BATCH: u64 = 10;
const CHILD_BUFFER: usize = 1 << 16;

fn child_config(durability: Durability) -> LogConfig {
    LogConfig { segment_bytes: 128 << 10, ..buffered(CHILD_BUFFER, durability) }
}

/// Not a test on its own: the process [`kill_9`] starts and kills. With
/// `ANNALS_WRITE_BUFFER_CHILD=always|none:DIR` it appends batches of 10 of
/// the test stream to the log in DIR and prints `acked LAST` after each
/// append returns; under `none` it stops after `CHILD_IDLE_AFTER` records
/// and prints `idle` (so what its buffer holds when killed does not depend
/// on when the kill lands). Without the variable it returns at once.
#[test]
fn write_buffer_kill_child() {
    let Ok(arg) = std::env::var(CHILD) else { return };
    let (durability, dir) = arg.split_once(':').expect("durability:dir");
    let durability = if durability == "always" { Durability::Always } else { Durability::None };
    let log = PartitionLog::open(dir, child_config(durability)).unwrap();
    let mut out = std::io::stdout().lock();
    // Bounded: the parent kills it long before.
    for from in (0..2_000_000).step_by(CHILD_BATCH as usize) {
        let records: Vec<_> = (from..from + CHILD_BATCH).map(record).collect();
        let info = log.append(&records).unwrap();
        std::io::Write::write_all(&mut out, format!("acked {}\n", info.last_offset).as_bytes()).unwrap();
        if durability == Durability::None && info.last_offset + 1 == CHILD_IDLE_AFTER {
            std::io::Write::write_all(&mut out, b"idle\n").unwrap();
            std::io::Write::flush(&mut out).unwrap();
            // Bounded: the parent kills it now.
            std::thread::sleep(std::time::Duration::from_secs(60));
            return;
        }
        std::io::Write::flush(&mut out).unwrap();
    }
}

/// Records the `none` child appends before it idles.
const CHILD_IDLE_AFTER: u64 = 6_000;

/// Runs the child on a fresh log, kills it with SIGKILL once `acked`
/// records are acknowledged (or it idles), and returns the log's directory
/// and the last offset it acknowledged.
fn kill_9(durability: &str, acked: u64) -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "write_buffer::write_buffer_kill_child", "--nocapture", "--test-threads", "1"])
        .env(CHILD, format!("{durability}:{}", dir.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed if this test panics before it kills it.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut child = Killed(child);
    let mut last = None;
    // Bounded: the child prints a line per append, and ends (its loop, or
    // the kill) with end of file.
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(offset) = line.strip_prefix("acked ") {
            last = Some(offset.parse::<u64>().unwrap());
        }
        if last >= Some(acked) || line == "idle" {
            child.0.kill().unwrap(); // SIGKILL
            break;
        }
    }
    // What it printed before it died was acknowledged too.
    for line in lines {
        if let Some(offset) = line.unwrap().strip_prefix("acked ") {
            last = Some(offset.parse::<u64>().unwrap());
        }
    }
    child.0.wait().unwrap();
    (dir, last.expect("the child acknowledged appends"))
}

/// `kill -9` of a process appending through the buffer: the log opens on a
/// consistent prefix of whole batches; under `None` the acknowledged
/// records it lost fit in the buffer (the appends that refill them take no
/// more than its bytes); under `Always` it lost none.
#[test]
fn a_kill_9_loses_at_most_the_buffer_and_under_always_nothing() {
    let (dir, last) = kill_9("none", 6_000);
    let log = PartitionLog::open(dir.path(), child_config(Durability::None)).unwrap();
    let end = log.log_end_offset();
    assert!(end.is_multiple_of(CHILD_BATCH), "whole batches: {end}");
    assert!(log.segment_count() > 1, "the child rolled");
    let acknowledged = last + 1;
    if end < acknowledged {
        let before = log.size_bytes();
        append_range(&log, end, acknowledged, CHILD_BATCH);
        let lost = log.size_bytes() - before;
        eprintln!("kill -9 under None: {} acknowledged records ({lost} bytes) lost", acknowledged - end);
        assert!(
            lost <= CHILD_BUFFER as u64,
            "lost {lost} bytes of acknowledged appends, more than the buffer"
        );
    }
    assert_holds(&log, log.log_end_offset());
    drop(log);

    let (dir, last) = kill_9("always", 300);
    let log = PartitionLog::open(dir.path(), child_config(Durability::Always)).unwrap();
    assert!(
        log.log_end_offset() > last,
        "acknowledged {} records, {} recovered",
        last + 1,
        log.log_end_offset()
    );
    assert_holds(&log, log.log_end_offset());
}
