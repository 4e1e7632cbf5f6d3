//! Thousands of partitions on default limits (issue 20): a bench binary
//! (not criterion: each phase runs once, on a store too big to repeat).
//!
//! ```text
//! ulimit -n 1024; cargo bench --bench partitions
//! ANNALS_PARTITIONS=100000 ANNALS_PHASES=create,open,close cargo bench --bench partitions
//! ```
//!
//! Phases on one store of `ANNALS_PARTITIONS` (default 10,000) single-
//! segment partitions, in topics of 1,000: create, clean open, append one
//! record to each, read it back from each, clean close. A sampler thread
//! reads `/proc/self/fd` and `/proc/self/maps` every 10 ms, so the peaks it
//! prints are the process's own, not the store's counters; the store's
//! exact pool peak is printed before the close.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::ReadBound;
use annals::{Record, Store, StoreConfig, TopicConfig};

const PER_TOPIC: u32 = 1_000;

/// The sampler's period: reading `/proc/self/fd` with ~800 entries and
/// `/proc/self/maps` costs about 0.3 ms, so every 10 ms (the store's own
/// pool counters give the exact peak: printed at the end).
const SAMPLE_MS: u64 = 10;

#[derive(Default)]
struct Peaks {
    fds: AtomicUsize,
    maps: AtomicUsize,
    anon_kib: AtomicUsize,
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn count_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

fn anon_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sample(peaks: &Peaks) {
    peaks.fds.fetch_max(count_fds(), Ordering::Relaxed);
    peaks.maps.fetch_max(count_maps(), Ordering::Relaxed);
    peaks.anon_kib.fetch_max(anon_kib(), Ordering::Relaxed);
}

fn reset(peaks: &Peaks) {
    peaks.fds.store(0, Ordering::Relaxed);
    peaks.maps.store(0, Ordering::Relaxed);
    peaks.anon_kib.store(0, Ordering::Relaxed);
    sample(peaks);
}

fn phase<T>(name: &str, peaks: &Peaks, f: impl FnOnce() -> T) -> T {
    reset(peaks);
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    sample(peaks);
    println!(
        "{name:<8} {:>9.3} s   peak fds {:>6}   peak maps {:>6}   peak anon RSS {:>7.1} MiB",
        took.as_secs_f64(),
        peaks.fds.load(Ordering::Relaxed),
        peaks.maps.load(Ordering::Relaxed),
        peaks.anon_kib.load(Ordering::Relaxed) as f64 / 1024.0
    );
    out
}

fn topics(partitions: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut left = partitions;
    while left > 0 {
        let n = left.min(PER_TOPIC);
        out.push((format!("t{:03}", out.len()), n));
        left -= n;
    }
    out
}

fn main() {
    // The engine's own events (store opened / closed, with how long each
    // step took) go to stderr beside the phase lines.
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    // `cargo bench` passes `--bench`; nothing else is taken from argv.
    let partitions: u32 =
        std::env::var("ANNALS_PARTITIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let phases = std::env::var("ANNALS_PHASES").unwrap_or_else(|_| "create,open,append,read,close".into());
    let has = |p: &str| phases.split(',').any(|x| x == p);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let nofile = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or("?").to_owned();
    println!(
        "{partitions} partitions; {nofile}; vm.max_map_count {}",
        std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default().trim()
    );
    let dir = tempfile::tempdir_in(std::env::var("ANNALS_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let path = dir.path().join("store");
    let peaks = Arc::new(Peaks::default());
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peaks, done) = (peaks.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                sample(&peaks);
                std::thread::sleep(Duration::from_millis(SAMPLE_MS));
            }
        })
    };
    let layout = topics(partitions);
    let config = |n: u32| {
        let mut c = TopicConfig::with_partitions(n);
        // Small segments: the point is the count of partitions, not bytes.
        c.log.segment_bytes = 1 << 20;
        c
    };
    let result = (|| -> annals::Result<()> {
        phase("create", &peaks, || -> annals::Result<()> {
            let store = Store::open(&path, StoreConfig::default())?;
            for (name, n) in &layout {
                store.create_topic(name, config(*n))?;
            }
            store.close()
        })?;
        let store = if has("open") {
            Some(phase("open", &peaks, || Store::open(&path, StoreConfig::default()))?)
        } else {
            None
        };
        let Some(store) = store else { return Ok(()) };
        if has("append") {
            phase("append", &peaks, || -> annals::Result<()> {
                for (name, n) in &layout {
                    let topic = store.topic(name)?;
                    for p in 0..*n {
                        topic.append_to(p, &[Record::with_key(format!("k{p}"), "one record")])?;
                    }
                }
                Ok(())
            })?;
        }
        if has("read") {
            phase("read", &peaks, || -> annals::Result<()> {
                for (name, n) in &layout {
                    let topic = store.topic(name)?;
                    for p in 0..*n {
                        let log = topic.partition(p)?;
                        let got = log.read(0, 1 << 20, ReadBound::LogEnd)?;
                        assert_eq!(got.records().count(), 1, "{name}-{p}");
                    }
                }
                Ok(())
            })?;
        }
        let m = store.metrics();
        println!(
            "pool: max_open_files {}, peak open {}, opens {}, evictions {}; offline partitions {}",
            m.files.capacity, m.files.peak_open_files, m.files.opens, m.files.evictions, m.offline_partitions
        );
        if let Some(secs) = std::env::var("ANNALS_PAUSE_BEFORE_CLOSE").ok().and_then(|v| v.parse().ok()) {
            // Time to attach a profiler to the close alone.
            std::thread::sleep(Duration::from_secs(secs));
        }
        if has("close") {
            phase("close", &peaks, || store.close())?;
        }
        Ok(())
    })();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    if let Err(e) = result {
        println!("FAILED: {e}");
        std::process::exit(1);
    }
}
