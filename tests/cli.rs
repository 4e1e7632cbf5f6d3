//! The `annals` command, run as a binary: output formats, exit codes, and
//! one-line errors (never a panic) for bad input.

use std::path::Path;
use std::process::{Command, Output};

use annals::ReadBound;
use annals::{Store, StoreConfig, TopicConfig};

fn annals(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_annals")).current_dir(cwd).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Succeeded; returns stdout.
fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Failed with one `error:` line and no panic; returns that line.
fn fails(o: Output) -> String {
    assert!(!o.status.success(), "should fail: {}", stdout(&o));
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "a panic: {err}");
    let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
    assert!(line.starts_with("error"), "not an error line: {err}");
    line
}

#[test]
fn the_default_perf_pair_produces_then_consumes_a_million_records() {
    let cwd = tempfile::tempdir().unwrap();
    let out = ok(annals(cwd.path(), &["perf", "produce"]));
    // Kafka's producer perf-test summary line.
    assert!(out.starts_with("1000000 records sent, "), "{out}");
    for part in [
        "records/sec (",
        "MB/sec), ",
        "ms avg latency, ",
        "ms max latency, ",
        "ms 50th, ",
        "ms 95th, ",
        "ms 99th, ",
    ] {
        assert!(out.contains(part), "{part:?} missing from {out}");
    }
    assert!(out.lines().next().unwrap().ends_with("ms 99.9th."), "{out}");
    assert!(cwd.path().join("annals-perf-data").is_dir(), "the embedded default directory");

    let out = ok(annals(cwd.path(), &["perf", "consume"]));
    let values: Vec<&str> = out.lines().nth(1).unwrap().split(", ").collect();
    assert_eq!(values[2], "1000000", "every record read back: {out}");
    let describe = ok(annals(cwd.path(), &["topics", "describe", "--topic", "perf"]));
    assert!(describe.contains("PartitionCount: 3"), "{describe}");
}

#[test]
fn perf_options_json_and_starting_points() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("d");
    let d = dir.to_str().unwrap();
    let args = ["perf", "produce", "--dir", d, "--topic", "t", "--records", "3000", "--record-size", "50"];
    let out = ok(annals(
        cwd.path(),
        &[&args[..], &["--partitions", "2", "--batch", "7", "--keys", "5", "--json"]].concat(),
    ));
    assert!(out.starts_with("{\"records\":3000,"), "{out}");
    assert!(out.contains("\"p999_ms\":") && out.contains("\"partitions\":2"), "{out}");
    // Two producers append to the same topic.
    let out = ok(annals(cwd.path(), &[&args[..], &["--producers", "2", "--durability", "always"]].concat()));
    assert!(out.starts_with("3000 records sent"), "{out}");

    let consume = |from: &str, extra: &[&str]| {
        let base = ["perf", "consume", "--dir", d, "--topic", "t", "--from", from, "--json"];
        ok(annals(cwd.path(), &[&base[..], extra].concat()))
    };
    assert!(consume("earliest", &[]).starts_with("{\"records\":6000,"));
    assert!(consume("latest", &[]).starts_with("{\"records\":0,"));
    assert!(consume("ts:0", &[]).starts_with("{\"records\":6000,"));
    assert!(consume("2990", &[]).starts_with("{\"records\":"), "an offset");
    assert!(consume("100", &[]).starts_with("{\"records\":5800,"), "from offset 100 in both partitions");
    assert!(consume("earliest", &["--messages", "10"]).starts_with("{\"records\":10,"));
    let line =
        fails(annals(cwd.path(), &["perf", "consume", "--dir", d, "--topic", "t", "--messages", "999999"]));
    assert!(line.contains("only 6000"), "{line}");
}

#[test]
fn topics_commands() {
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path().join("d");
    let d = d.to_str().unwrap();
    let out =
        ok(annals(cwd.path(), &["topics", "create", "--dir", d, "--topic", "orders", "--partitions", "4"]));
    assert!(out.contains("Created topic orders with 4"), "{out}");
    ok(annals(cwd.path(), &["topics", "create", "--dir", d, "--topic", "audit", "--retention-ms", "-1"]));
    assert_eq!(ok(annals(cwd.path(), &["topics", "list", "--dir", d])), "audit\norders\n");
    let out = ok(annals(cwd.path(), &["topics", "describe", "--dir", d, "--topic", "audit"]));
    assert!(
        out.contains("retention.ms=-1") && out.contains("Partition: 0\tLogStartOffset: 0\tLogEndOffset: 0"),
        "{out}"
    );
    let line = fails(annals(cwd.path(), &["topics", "create", "--dir", d, "--topic", "orders"]));
    assert!(line.contains("orders"), "{line}");
    fails(annals(cwd.path(), &["topics", "create", "--dir", d, "--topic", "a/../b"]));
    fails(annals(cwd.path(), &["topics", "create", "--dir", d, "--topic", "z", "--partitions", "0"]));
    ok(annals(cwd.path(), &["topics", "delete", "--dir", d, "--topic", "orders"]));
    assert_eq!(ok(annals(cwd.path(), &["topics", "list", "--dir", d])), "audit\n");
    let line = fails(annals(cwd.path(), &["topics", "delete", "--dir", d, "--topic", "orders"]));
    assert!(line.contains("unknown topic"), "{line}");
}

#[test]
fn dump_prints_batches_and_records_and_fails_on_damage() {
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path().join("d");
    let ds = d.to_str().unwrap();
    ok(annals(
        cwd.path(),
        &["perf", "produce", "--dir", ds, "--records", "500", "--partitions", "1", "--batch", "50"],
    ));
    let seg = d.join("perf-0").join("00000000000000000000.log");
    let segs = seg.to_str().unwrap();
    let out = ok(annals(cwd.path(), &["dump", segs]));
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    let batch = len / 10; // ten batches of 50 records of one size
    assert_eq!(out.lines().filter(|l| l.starts_with("baseOffset:")).count(), 10);
    assert!(
        out.contains("baseOffset: 450 lastOffset: 499 count: 50") && out.contains("isvalid: true"),
        "{out}"
    );
    assert!(out.trim_end().ends_with(&format!("10 batches, 500 records, {len} bytes: all valid")), "{out}");
    let out = ok(annals(cwd.path(), &["dump", segs, "--print-data-log"]));
    assert_eq!(out.lines().filter(|l| l.starts_with("| offset: ")).count(), 500);
    assert!(out.contains("| offset: 0 CreateTime: "), "{out}");

    // Kafka's index files, each entry checked against the batches.
    let index = seg.with_extension("index");
    let times = seg.with_extension("timeindex");
    let out = ok(annals(cwd.path(), &["dump", index.to_str().unwrap()]));
    assert!(out.lines().filter(|l| l.starts_with("offset: ")).count() >= 5, "{out}");
    assert!(out.contains("offset: 99 position: ") && out.contains("all entries match"), "{out}");
    let out = ok(annals(cwd.path(), &["dump", times.to_str().unwrap()]));
    assert!(out.lines().filter(|l| l.starts_with("timestamp: ")).count() >= 1, "{out}");
    // An entry naming the wrong offset (big-endian relative offset 98,
    // where the batch ends at 99) is a mismatch, and the exit code says so.
    let good = std::fs::read(&index).unwrap();
    let mut bad = good.clone();
    bad[..4].copy_from_slice(&98i32.to_be_bytes());
    std::fs::write(&index, &bad).unwrap();
    let o = annals(cwd.path(), &["dump", index.to_str().unwrap()]);
    assert!(stdout(&o).contains("Mismatch: entry names offset 98"), "{}", stdout(&o));
    fails(o);
    std::fs::write(&index, &good).unwrap();

    // A flipped byte in the 4th batch: three batches printed, then an
    // error naming the file and the batch's position.
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[3 * batch + 100] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let o = annals(cwd.path(), &["dump", segs]);
    assert_eq!(stdout(&o).lines().filter(|l| l.contains("isvalid: true")).count(), 3);
    let line = fails(o);
    let at = format!("position {}", 3 * batch);
    assert!(line.contains(segs) && line.contains(&at) && line.contains("CRC"), "{line}");
    fails(annals(cwd.path(), &["dump", "missing.log"]));
    std::fs::write(cwd.path().join("short.log"), [1, 2, 3]).unwrap();
    fails(annals(cwd.path(), &["dump", "short.log"]));
}

#[test]
fn verify_passes_a_sound_store_and_names_a_damaged_file() {
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path().join("d");
    let ds = d.to_str().unwrap();
    ok(annals(cwd.path(), &["perf", "produce", "--dir", ds, "--records", "20000", "--keys", "100"]));
    {
        // A compacted topic and committed offsets verify too.
        let store = Store::open(&d, StoreConfig::default()).unwrap();
        let log = annals::LogConfig {
            cleanup_policy: annals::CleanupPolicy::Compact,
            segment_bytes: 4096,
            ..Default::default()
        };
        let t = store.create_topic("compacted", TopicConfig { partitions: 1, log }).unwrap();
        for i in 0..300u32 {
            t.append(&[annals::Record::with_key(format!("k{}", i % 7), vec![0u8; 40])]).unwrap();
        }
        store.compact().unwrap();
        store.offsets().commit("g", "perf", 0, 5).unwrap();
        store.close().unwrap();
    }
    let out = ok(annals(cwd.path(), &["verify", "--dir", ds]));
    assert!(out.contains(": ok"), "{out}");
    // perf (3), compacted (1) and the consumer-offsets topic (4): all sound.
    assert!(out.contains("verified 8 partitions") && out.trim_end().ends_with(": ok"), "{out}");

    let seg = d.join("perf-1").join("00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let o = annals(cwd.path(), &["verify", "--dir", ds]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("CORRUPT {}", seg.display())), "names the file: {out}");
    assert!(out.contains("1 problem(s)"), "{out}");
    assert!(out.contains("DAMAGED perf-1: 1 problem(s) above"), "{out}");
    assert!(!stderr(&o).contains("panicked"));
    // An unreadable partition (its segment is a directory) is named
    // offline, and the others are still checked.
    let bad = d.join("perf-2").join("00000000000000000000.log");
    std::fs::remove_file(&bad).unwrap();
    std::fs::create_dir(&bad).unwrap();
    let o = annals(cwd.path(), &["verify", "--dir", ds]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("OFFLINE perf-2: unreadable") && out.contains("DAMAGED perf-1: "), "{out}");
    assert!(
        out.contains("verified 8 partitions") && out.contains("1 partition(s) offline, 1 problem(s)"),
        "{out}"
    );
    {
        // The store opens with it offline and serves the rest.
        let store = Store::open(&d, StoreConfig::default()).unwrap();
        let t = store.topic("perf").unwrap();
        assert_eq!(t.offline_partitions().iter().map(|(p, _)| *p).collect::<Vec<_>>(), [2]);
        assert!(t.partition(0).unwrap().read(0, 1 << 20, ReadBound::LogEnd).unwrap().records().count() > 0);
    }
    fails(annals(cwd.path(), &["verify", "--dir", "missing"]));
}

#[test]
fn offsets_show_committed_offsets_and_lag() {
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path().join("d");
    let ds = d.to_str().unwrap();
    ok(annals(cwd.path(), &["perf", "produce", "--dir", ds, "--records", "300", "--partitions", "1"]));
    {
        let store = Store::open(&d, StoreConfig::default()).unwrap();
        store.offsets().commit("billing", "perf", 0, 120).unwrap();
        store.offsets().commit("audit", "perf", 0, 300).unwrap();
        store.close().unwrap();
    }
    let out = ok(annals(cwd.path(), &["offsets", "--dir", ds]));
    assert!(out.contains("billing\tperf\t0\t120\t300\t180"), "{out}");
    assert!(out.contains("audit\tperf\t0\t300\t300\t0"), "{out}");
    let out = ok(annals(cwd.path(), &["offsets", "--dir", ds, "--group", "audit"]));
    assert!(!out.contains("billing"), "{out}");
    fails(annals(cwd.path(), &["offsets", "--dir", ds, "--group", "nobody"]));
}

#[test]
fn bad_input_is_one_error_line_and_a_failing_exit() {
    let cwd = tempfile::tempdir().unwrap();
    let p = cwd.path();
    assert!(fails(annals(p, &["perf", "produce", "--records", "0"])).contains("--records"));
    assert!(fails(annals(p, &["perf", "produce", "--record-size", "99999999"])).contains("--record-size"));
    assert!(fails(annals(p, &["perf", "produce", "--batch", "0"])).contains("--batch"));
    assert!(fails(annals(p, &["perf", "produce", "--topic", "../x", "--records", "1"])).contains("x"));
    assert!(fails(annals(p, &["perf", "consume", "--dir", "nowhere"])).contains("no such data directory"));
    assert!(fails(annals(p, &["perf", "consume", "--from", "yesterday"])).contains("--from"));
    assert!(fails(annals(p, &["topics", "list", "--dir", "nowhere"])).contains("nowhere"));
    assert!(fails(annals(p, &["perf", "produce", "--records", "ten"])).contains("invalid value"));
    ok(annals(p, &["perf", "produce", "--records", "10"]));
    assert!(fails(annals(p, &["perf", "consume", "--topic", "nope"])).contains("unknown topic"));
    assert!(!p.join("nowhere").exists(), "reading commands create nothing");
}

/// Issue 15's scenario with the real binary: `perf produce` under
/// `--durability always` killed with SIGKILL, one byte flipped at a third
/// of the active segment (inside fsynced, acknowledged batches). `verify`
/// says so (exit 1) before and after an open, the open refuses instead of
/// cutting, `repair` changes nothing without `--accept-data-loss` and with
/// it cuts at the flip, keeping the cut bytes in a quarantine file.
#[test]
fn regression_killed_durable_producer_then_a_flip_is_refused_then_repaired() {
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path().join("d");
    let ds = d.to_str().unwrap();
    let mut producer = Command::new(env!("CARGO_BIN_EXE_annals"))
        .current_dir(cwd.path())
        .args(["perf", "produce", "--dir", ds, "--topic", "t", "--partitions", "1", "--durability", "always"])
        .args(["--records", "50000000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let segment = d.join("t-0").join("00000000000000000000.log");
    // Until a few MiB were acknowledged (bounded: 60 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&segment).map_or(0, |m| m.len()) < 4 << 20 {
        assert!(std::time::Instant::now() < deadline, "the producer wrote too little");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    producer.kill().unwrap(); // SIGKILL
    producer.wait().unwrap();
    let before = ok(annals(cwd.path(), &["verify", "--dir", ds]));
    assert!(before.trim_end().contains(": ok"), "{before}");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    for _ in 0..2 {
        let o = annals(cwd.path(), &["verify", "--dir", ds]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(stdout(&o).contains("were acknowledged"), "{}", stdout(&o));
        // The open refuses: nothing is cut, and verify says the same after.
        let line = fails(annals(cwd.path(), &["perf", "consume", "--dir", ds, "--topic", "t"]));
        assert!(line.contains("not cut"), "{line}");
    }
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing was cut");
    let dry = annals(cwd.path(), &["repair", "--dir", ds, "--topic", "t", "--partition", "0"]);
    assert_eq!(dry.status.code(), Some(1));
    assert!(stdout(&dry).contains("--accept-data-loss"), "{}", stdout(&dry));
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "a repair without the flag changes nothing");
    let args = ["repair", "--dir", ds, "--topic", "t", "--partition", "0", "--accept-data-loss"];
    let out = ok(annals(cwd.path(), &args));
    let kept = std::fs::read_dir(d.join("t-0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "quarantine"))
        .unwrap_or_else(|| panic!("no quarantine file: {out}"));
    assert!(out.contains(&kept.display().to_string()), "{out}");
    let cut_at = std::fs::metadata(&segment).unwrap().len() as usize;
    assert!(cut_at <= at);
    assert_eq!(std::fs::read(&kept).unwrap(), bytes[cut_at..], "every cut byte is kept");
    assert!(ok(annals(cwd.path(), &["verify", "--dir", ds])).trim_end().ends_with(": ok"));
    ok(annals(cwd.path(), &["perf", "consume", "--dir", ds, "--topic", "t"]));
}

#[test]
fn compressed_topics_are_produced_dumped_verified_and_described() {
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path().join("d");
    let ds = d.to_str().unwrap();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("t-{codec}");
        let out = ok(annals(
            cwd.path(),
            &["perf", "produce", "--dir", ds, "--topic", &topic, "--records", "300", "--partitions", "1"],
        ));
        assert!(out.contains("(none)"), "{out}");
        let packed = format!("p-{codec}");
        let out = ok(annals(
            cwd.path(),
            &[
                "perf",
                "produce",
                "--dir",
                ds,
                "--topic",
                &packed,
                "--records",
                "300",
                "--partitions",
                "1",
                "--compression",
                codec,
            ],
        ));
        assert!(out.contains(&format!("({codec})")), "{out}");
        let seg = d.join(format!("{packed}-0")).join("00000000000000000000.log");
        let out = ok(annals(cwd.path(), &["dump", seg.to_str().unwrap(), "--print-data-log"]));
        assert_eq!(
            out.lines().filter(|l| l.contains(&format!("compresscodec: {codec} "))).count(),
            3,
            "{out}"
        );
        assert_eq!(out.lines().filter(|l| l.starts_with("| offset: ")).count(), 300, "{codec}");
        let out = ok(annals(cwd.path(), &["topics", "describe", "--dir", ds, "--topic", &packed]));
        assert!(out.contains(&format!("compression.type={codec}")), "{out}");
        // Random letters: gzip and zstd code them in fewer bits; snappy and
        // lz4 find no repeats (sizes only checked for the entropy coders).
        if codec == "gzip" || codec == "zstd" {
            let plain =
                std::fs::metadata(d.join(format!("{topic}-0")).join("00000000000000000000.log")).unwrap();
            assert!(std::fs::metadata(&seg).unwrap().len() * 10 < plain.len() * 8, "{codec}");
        }
    }
    let out = ok(annals(cwd.path(), &["verify", "--dir", ds]));
    assert!(out.contains(": ok"), "{out}");
    // A topic created with a codec; an unknown codec is a one-line error.
    ok(annals(cwd.path(), &["topics", "create", "--dir", ds, "--topic", "z", "--compression-type", "zstd"]));
    fails(annals(
        cwd.path(),
        &["topics", "create", "--dir", ds, "--topic", "y", "--compression-type", "brotli"],
    ));
    fails(annals(cwd.path(), &["perf", "produce", "--dir", ds, "--topic", "t-lz4", "--compression", "zstd"]));
}
