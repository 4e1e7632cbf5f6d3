//! A real power cut: the broker's data directory on ext4 in a loop-mounted
//! image; acks=-1 producers; the image copied while the broker runs (what
//! the disk holds, without the page cache); then a broker started on the
//! copy. On a default topic (durable acks) every acknowledged record is
//! there; on a `write.caching=true` topic (Kafka's page-cache
//! acknowledgement, the negative control) acknowledged records are gone.
//!
//! Needs root and loop devices; in CI a missing one fails the test, outside
//! it skips with a message.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use kafka_protocol::messages::*;

const BATCHES: usize = 40;
const RECORDS_PER_BATCH: usize = 10;

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A mounted image, unmounted when dropped (also when the test fails).
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = run("umount", &[&self.0.to_string_lossy()]) {
            eprintln!("{e}; unmounting lazily");
            let _ = run("umount", &["-l", &self.0.to_string_lossy()]);
        }
    }
}

/// Mounts `image` at `at`; the ext4 journal commits only every 60 s, so
/// that nothing but an fsync puts data on the image during the test.
fn mount(image: &Path, at: &Path) -> Result<Mounted, String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    run("mount", &["-o", "loop,commit=60", &image.to_string_lossy(), &at.to_string_lossy()])?;
    Ok(Mounted(at.to_path_buf()))
}

/// Waits (up to 5 s) for `topic`'s high watermark to stop below the log
/// end (a restarted broker fsyncs what it recovered within its flush
/// delay) and returns it.
fn settled_high_watermark(s: &mut std::net::TcpStream, topic: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = -1;
    loop {
        let response: FetchResponse = call(s, ApiKey::Fetch, 12, &fetch(topic, 0)).unwrap();
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "{topic}: fetch error {}", p.error_code);
        if p.high_watermark == last || Instant::now() > deadline {
            return p.high_watermark;
        }
        last = p.high_watermark;
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn acknowledged_records_survive_a_power_cut_with_durable_acks_and_not_without() {
    let work = tempfile::tempdir().unwrap();
    let (image, cut) = (work.path().join("disk.img"), work.path().join("cut.img"));
    let (live_mount, cut_mount) = (work.path().join("live"), work.path().join("after"));
    let prepared = run("truncate", &["-s", "256M", &image.to_string_lossy()])
        .and_then(|()| run("mkfs.ext4", &["-q", "-F", &image.to_string_lossy()]))
        .and_then(|()| mount(&image, &live_mount));
    let live = match prepared {
        Ok(live) => live,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the power-cut test needs root and loop devices: {why}"
            );
            eprintln!("SKIPPED: the power-cut test needs root and loop devices ({why})");
            return;
        }
    };
    let dir = live_mount.join("data");
    let (addr, stop, done) = super::shutdown::start_stoppable(&dir);
    let mut s = connect(addr);
    assert_eq!(super::data_path::create_topic(&mut s, "durable", &[]).0, 0);
    assert_eq!(super::data_path::create_topic(&mut s, "cached", &[("write.caching", "true")]).0, 0);
    for topic in ["durable", "cached"] {
        for _ in 0..BATCHES {
            let response: ProduceResponse =
                call(&mut s, ApiKey::Produce, 9, &produce(topic, batch(RECORDS_PER_BATCH))).unwrap();
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0, "acknowledged");
        }
    }
    // The power cut: what the disk holds now, taken while the broker runs.
    std::fs::copy(&image, &cut).unwrap();
    drop(s);
    stop.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    drop(live);

    let after = mount(&cut, &cut_mount).unwrap();
    let (addr, stop, done) = super::shutdown::start_stoppable(&cut_mount.join("data"));
    let mut s = connect(addr);
    let acknowledged = (BATCHES * RECORDS_PER_BATCH) as i64;
    let durable = settled_high_watermark(&mut s, "durable");
    let cached = settled_high_watermark(&mut s, "cached");
    drop(s);
    stop.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    drop(after);
    assert_eq!(durable, acknowledged, "every record acknowledged with durable acks survived");
    assert!(
        cached < acknowledged,
        "the page-cache acknowledgement lost records ({cached} of {acknowledged} left)"
    );
}
