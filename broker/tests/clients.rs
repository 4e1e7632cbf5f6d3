//! Real Kafka clients, written by other people, against the broker binary:
//! kcat and confluent-kafka (librdkafka), kafka-python and sarama (Go).
//! `.ci/run` installs them; a test whose client is missing fails in CI and
//! skips loudly elsewhere.

use annals::ReadBound;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The broker binary on a free port; killed on drop.
struct Running {
    child: Child,
    addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Running {
    start_with(dir, &[])
}

fn start_with(dir: &Path, flags: &[&str]) -> Running {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    start_at(dir, &format!("127.0.0.1:{port}"), flags)
}

fn start_at(dir: &Path, addr: &str, flags: &[&str]) -> Running {
    let addr = addr.to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_annals-broker"))
        .args(["--dir", dir.to_str().unwrap(), "--listen", &addr])
        .args(flags)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the broker did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    Running { child, addr }
}

impl Running {
    /// SIGTERM, as an operator stops it: the store closes cleanly.
    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit after SIGTERM: {status}");
    }
}

/// The tool, or `None` outside CI (a loud skip); in CI a missing tool fails.
fn tool(path: PathBuf, probe: &[&str], install: &str) -> Option<PathBuf> {
    let works = Command::new(&path).args(probe).output().is_ok_and(|o| o.status.success());
    present(works, &path.display().to_string(), install).then_some(path)
}

/// Whether `what` is there; if not, a loud skip outside CI and a failure in CI.
fn present(works: bool, what: &str, install: &str) -> bool {
    if works {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} is missing in CI ({install})");
    eprintln!("\n*** SKIPPED: {what} is missing. {install} ***\n");
    false
}

/// How long one client run may take: a client that hangs (on a broker
/// that never answers, say) is killed and fails its test, not CI.
const CLIENT_RUN_MAX: Duration = Duration::from_secs(300);

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    // The pipes are drained while the child runs, so that a chatty one
    // never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CLIENT_RUN_MAX;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {CLIENT_RUN_MAX:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn kcat_lists_produces_with_keys_and_consumes_exact_bytes() {
    let Some(kcat) = tool(PathBuf::from("kcat"), &["-V"], "apt-get install -y kcat") else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    let lines: Vec<String> =
        (0..200).map(|i| format!("key-{i}\tvalue {i}: {}", "x".repeat(i % 50))).collect();
    let input = lines.join("\n") + "\n";
    let file = dir.path().join("input.txt");
    std::fs::write(&file, &input).unwrap();
    let b = broker.addr.as_str();
    run(
        Command::new(&kcat).args(["-b", b, "-t", "kcat", "-K", "\t", "-P", "-l", file.to_str().unwrap()]),
        None,
    );
    // Metadata lists the topic the produce created.
    let listing = String::from_utf8(run(Command::new(&kcat).args(["-b", b, "-L"]), None).stdout).unwrap();
    assert!(
        listing.contains("topic \"kcat\" with 1 partitions") && listing.contains("leader 0"),
        "{listing}"
    );
    // From the beginning: every key and value as sent, at offsets 0..200.
    let consumed = run(
        Command::new(&kcat).args(["-b", b, "-t", "kcat", "-C", "-e", "-o", "beginning", "-f", "%o %k\t%s\n"]),
        None,
    );
    let got = String::from_utf8(consumed.stdout).unwrap();
    let want: String = lines.iter().enumerate().map(|(o, l)| format!("{o} {l}\n")).collect();
    assert_eq!(got, want);
    // From an offset.
    let consumed = run(
        Command::new(&kcat).args(["-b", b, "-t", "kcat", "-C", "-e", "-o", "150", "-f", "%o %k\t%s\n"]),
        None,
    );
    let got = String::from_utf8(consumed.stdout).unwrap();
    assert_eq!(got.lines().count(), 50);
    assert!(got.starts_with(&format!("150 {}\n", lines[150])), "{got}");
    // Produced from stdin too, then read on from where the file ended.
    run(Command::new(&kcat).args(["-b", b, "-t", "kcat", "-K", ":", "-P"]), Some(b"late:arrival\n"));
    let consumed = run(
        Command::new(&kcat).args(["-b", b, "-t", "kcat", "-C", "-e", "-o", "200", "-f", "%o %k=%s\n"]),
        None,
    );
    assert_eq!(String::from_utf8(consumed.stdout).unwrap(), "200 late=arrival\n");
}

fn kafka_python() -> Option<PathBuf> {
    let python = std::env::var_os("ANNALS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python"));
    let install = "python3 -m venv target/pyenv && target/pyenv/bin/pip install kafka-python==3.0.12 python-snappy lz4 zstandard";
    let probe = ["-c", "import kafka, snappy, lz4.frame, zstandard"];
    tool(python, &probe, install)
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(name)
}

/// (partition, offset, value) of each record the group script printed
/// under `key`.
fn consumed(json: &str, key: &str) -> Vec<(i64, i64, String)> {
    let v: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_i64().unwrap(), r[2].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_kafka_python_consumer_group_shares_partitions_survives_a_leave_and_a_restart() {
    let Some(python) = kafka_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--default-partitions", "6", "--group-initial-rebalance-delay-ms", "300"];
    let broker = start_with(dir.path(), &flags);
    let group = script("kafka_python_group.py");
    run(Command::new(&python).arg(&group).args([broker.addr.as_str(), "produce", "3000"]), None);
    let out = run(Command::new(&python).arg(&group).args([broker.addr.as_str(), "consume", "3000"]), None);
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(json.contains("\"b_left\": true"), "{json}");
    let (a, b) = (consumed(&json, "a"), consumed(&json, "b"));
    assert!(!a.is_empty() && !b.is_empty(), "both members consumed: {} and {}", a.len(), b.len());
    // Exactly once, and in order within each partition for each member.
    let mut values: Vec<i64> = a.iter().chain(&b).map(|r| r.2.parse().unwrap()).collect();
    values.sort_unstable();
    assert_eq!(values, (0..3000).collect::<Vec<_>>());
    for member in [&a, &b] {
        for p in 0..6 {
            let offsets: Vec<i64> = member.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "partition {p} out of order");
        }
    }
    // A restart: committed offsets hold; a new member gets only what is new.
    let addr = broker.addr.clone();
    broker.stop();
    let broker = start_at(dir.path(), &addr, &flags);
    let out = run(Command::new(&python).arg(&group).args([broker.addr.as_str(), "resume", "60"]), None);
    let json = String::from_utf8(out.stdout).unwrap();
    let c = consumed(&json, "c");
    let mut values: Vec<i64> = c.iter().map(|r| r.2.parse().unwrap()).collect();
    values.sort_unstable();
    assert_eq!(values, (1_000_000..1_000_060).collect::<Vec<_>>());
}

#[test]
fn kafka_python_produces_every_codec_idempotently_and_consumes_it_back() {
    let Some(python) = kafka_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    let out = run(Command::new(&python).arg(script("kafka_python_client.py")).arg(&broker.addr), None);
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(report.lines().count(), 5, "{report}");
    drop(broker);
    // What kafka-python sent is on disk in annals' store, compressed as sent.
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let dir = dir.path().join("store").join(format!("py-{codec}-0"));
        let log = annals::PartitionLog::open(&dir, annals::LogConfig::default()).unwrap();
        let fetched = log.read(0, 1 << 20, ReadBound::LogEnd).unwrap();
        let wanted = annals::format::Codec::parse(codec).unwrap();
        assert!(fetched.batches().all(|(h, _)| h.compression() == wanted && h.producer_id >= 0), "{codec}");
        assert_eq!(log.log_end_offset(), 500);
    }
}

fn confluent() -> Option<PathBuf> {
    let python = kafka_python()?;
    let install = "target/pyenv/bin/pip install confluent-kafka";
    tool(python, &["-c", "import confluent_kafka"], install)
}

/// [key, partition, offset] rows a client script printed.
fn rows(out: Output) -> Vec<(String, i64, i64)> {
    let json = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap(), r[2].as_i64().unwrap()))
        .collect()
}

#[test]
fn librdkafka_keys_land_where_javas_partitioner_puts_them_and_a_group_reads_them() {
    let Some(python) = confluent() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker =
        start_with(dir.path(), &["--default-partitions", "6", "--group-initial-rebalance-delay-ms", "300"]);
    let client = script("confluent_client.py");
    let acked = rows(run(
        Command::new(&python).arg(&client).args([broker.addr.as_str(), "produce", "keyed", "2000"]),
        None,
    ));
    assert_eq!(acked.len(), 2000);
    for (key, partition, _) in &acked {
        assert_eq!(*partition, i64::from(annals::partition_for_key(key.as_bytes(), 6)), "{key}");
    }
    let mut per_partition: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (_, p, o) in &acked {
        per_partition.entry(*p).or_default().push(*o);
    }
    for offsets in per_partition.values_mut() {
        offsets.sort_unstable();
        assert_eq!(*offsets, (0..offsets.len() as i64).collect::<Vec<_>>(), "dense offsets");
    }
    let read = rows(run(
        Command::new(&python).arg(&client).args([broker.addr.as_str(), "consume", "keyed", "2000", "cg"]),
        None,
    ));
    let mut got: Vec<_> = read.iter().map(|(k, p, o)| (k.clone(), *p, *o)).collect();
    let mut want = acked.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_broker_killed_mid_stream_loses_no_acknowledged_record_and_duplicates_none() {
    let Some(python) = confluent() else { return };
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--default-partitions", "3", "--group-initial-rebalance-delay-ms", "300"];
    let mut broker = start_with(dir.path(), &flags);
    let addr = broker.addr.clone();
    let client = script("confluent_client.py");
    let stream = Command::new(&python)
        .arg(&client)
        .args([addr.as_str(), "stream", "killed", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // A group member reads and commits the first 300 while the stream goes on.
    let consume = |n: &str, group: &str| {
        rows(run(
            Command::new(&python).arg(&client).args([addr.as_str(), "consume", "killed", n, group]),
            None,
        ))
    };
    let early = consume("300", "resumer");
    assert_eq!(early.len(), 300);
    // kill -9: no clean close; then a restart on the same address.
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let broker = start_at(dir.path(), &addr, &flags);
    let acked = rows(stream.wait_with_output().unwrap());
    assert!(acked.len() > 500, "{} acknowledged", acked.len());
    // The group resumes from its committed offsets: the rest, none of the 300.
    let late = consume(&(acked.len() - early.len()).to_string(), "resumer");
    let seen: std::collections::HashSet<&(String, i64, i64)> = early.iter().collect();
    assert!(late.iter().all(|r| !seen.contains(r)), "a committed record read again");
    assert_eq!(early.len() + late.len(), acked.len());
    // Every acknowledged record is there, once, at its offset.
    let read = rows(run(
        Command::new(&python).arg(&client).args([
            addr.as_str(),
            "consume",
            "killed",
            &acked.len().to_string(),
            "after-kill",
        ]),
        None,
    ));
    let mut keys: Vec<&str> = read.iter().map(|r| r.0.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before, "no record twice");
    let stored: std::collections::HashSet<(String, i64, i64)> = read.into_iter().collect();
    for row in &acked {
        assert!(stored.contains(row), "acknowledged {row:?} missing");
    }
    // And nothing besides: the logs hold exactly the acknowledged records.
    broker.stop();
    let held: u64 = (0..3)
        .map(|p| {
            let dir = dir.path().join("store").join(format!("killed-{p}"));
            annals::PartitionLog::open(&dir, annals::LogConfig::default()).unwrap().log_end_offset()
        })
        .sum();
    assert_eq!(held, acked.len() as u64);
    eprintln!(
        "kill -9 mid-stream: {} records acknowledged, all read back once, {held} stored; the group resumed after its {} committed",
        acked.len(),
        early.len()
    );
}

/// Debian's sarama sources, which `go build` finds in GOPATH mode (no
/// module download: the network is not needed).
const SARAMA_GOPATH: &str = "/usr/share/gocode";

/// `tests/clients/sarama_client.go` built into the target directory, or
/// `None` (a loud skip) outside CI when Go or sarama is missing.
fn sarama_client() -> Option<PathBuf> {
    let install = "apt-get install -y golang-go golang-github-shopify-sarama-dev";
    let go = tool(PathBuf::from("go"), &["version"], install)?;
    let sources = Path::new(SARAMA_GOPATH).join("src/github.com/Shopify/sarama");
    if !present(sources.is_dir(), &sources.display().to_string(), install) {
        return None;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sarama");
    let binary = out.join("sarama_client");
    run(
        Command::new(go)
            .env("GO111MODULE", "off")
            .env("GOPATH", SARAMA_GOPATH)
            .env("GOCACHE", out.join("go-build"))
            .arg("build")
            .arg("-o")
            .arg(&binary)
            .arg(script("sarama_client.go")),
        None,
    );
    Some(binary)
}

/// One record the sarama client printed: acknowledged or read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SaramaRecord {
    partition: i64,
    offset: i64,
    key: String,
    value: String,
    /// (key, value) pairs; a null value is `None`.
    headers: Vec<(String, Option<String>)>,
}

/// The "acked" and the "read" records, each in the order printed.
fn sarama_records(out: Output) -> (Vec<SaramaRecord>, Vec<SaramaRecord>) {
    let (mut acked, mut read) = (Vec::new(), Vec::new());
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let headers = v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().to_string(), h[1].as_str().map(str::to_string)));
        let record = SaramaRecord {
            partition: v["partition"].as_i64().unwrap(),
            offset: v["offset"].as_i64().unwrap(),
            key: v["key"].as_str().unwrap().to_string(),
            value: v["value"].as_str().unwrap().to_string(),
            headers: headers.collect(),
        };
        match v["event"].as_str().unwrap() {
            "acked" => acked.push(record),
            "read" => read.push(record),
            other => panic!("unknown event {other}: {line}"),
        }
    }
    (acked, read)
}

/// sarama's `NewHashPartitioner`: FNV-1a (32 bits) of the key, as `i32`,
/// modulo the partition count, made non-negative (not Java's murmur2).
fn sarama_hash_partition(key: &[u8], partitions: i32) -> i64 {
    let hash = key.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
    i64::from(((hash as i32) % partitions).abs())
}

#[test]
fn sarama_produces_keyed_records_with_headers_and_reads_every_acknowledged_one_back() {
    let Some(client) = sarama_client() else { return };
    let dir = tempfile::tempdir().unwrap();
    // One partition for an auto-created topic: the 4 the records land on
    // come from sarama's CreateTopics.
    let broker = start(dir.path());
    let (partitions, n, keys) = (4, 2000, 50);
    let out = run(
        Command::new(&client).args([
            broker.addr.as_str(),
            "sarama",
            &partitions.to_string(),
            &n.to_string(),
            &keys.to_string(),
        ]),
        None,
    );
    let (acked, read) = sarama_records(out);
    assert_eq!(acked.len(), n, "every record acknowledged");
    // What was sent: the client numbers records by their "seq" header.
    for (i, r) in acked.iter().enumerate() {
        assert_eq!(r.key, format!("key-{}", i % keys));
        assert_eq!(r.value, format!("value {i}: {}", "s".repeat(i % 40)));
        let want = [
            ("seq", Some(i.to_string())),
            ("client", Some("sarama".into())),
            ("empty", Some(String::new())),
            ("null", None),
        ];
        let want: Vec<(String, Option<String>)> = want.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(r.headers, want, "record {i} as sent");
    }
    // A key always on one partition: the one sarama's partitioner picks for 4.
    let mut key_partition = std::collections::BTreeMap::new();
    for r in &acked {
        let p = *key_partition.entry(r.key.as_str()).or_insert(r.partition);
        assert_eq!(r.partition, p, "{} on two partitions", r.key);
        assert_eq!(r.partition, sarama_hash_partition(r.key.as_bytes(), partitions), "{}", r.key);
    }
    let used: std::collections::BTreeSet<i64> = acked.iter().map(|r| r.partition).collect();
    assert_eq!(used, (0..i64::from(partitions)).collect(), "CreateTopics made {partitions} partitions");
    // Per partition: acknowledged offsets dense from 0, in the order sent;
    // read back exactly those records, in offset order, bytes and headers as sent.
    for p in used {
        let acked: Vec<&SaramaRecord> = acked.iter().filter(|r| r.partition == p).collect();
        let read: Vec<&SaramaRecord> = read.iter().filter(|r| r.partition == p).collect();
        let offsets: Vec<i64> = acked.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..acked.len() as i64).collect::<Vec<_>>(), "partition {p}: dense from 0");
        assert_eq!(read, acked, "partition {p}: read back as acknowledged");
    }
    assert_eq!(read.len(), n, "nothing read besides the acknowledged records");
}

/// kafka-python's admin client (code nobody here wrote decoding the
/// answers): CreateTopics with Kafka's configs (one refused by name),
/// DescribeConfigs showing them, a group's committed offsets listed, one
/// deleted (OffsetDelete), the group deleted (DeleteGroups), and
/// DescribeCluster and DescribeLogDirs.
#[test]
fn kafka_pythons_admin_client_manages_topics_groups_and_reads_the_cluster() {
    let Some(python) = kafka_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    let out = run(Command::new(&python).arg(script("kafka_python_admin.py")).arg(&broker.addr), None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["refused"], "InvalidConfigurationError", "min.insync.replicas=2 on one node");
    let configs = &v["configs"];
    for (name, value) in [
        ("min.insync.replicas", "1"),
        ("max.message.bytes", "1048588"),
        ("flush.messages", "1"),
        ("unclean.leader.election.enable", "false"),
        ("retention.ms", "604800000"),
    ] {
        assert_eq!(configs[name], value, "{name}");
    }
    assert_eq!(v["committed"], serde_json::json!([["adm", 0, 5], ["adm", 1, 5]]));
    assert_eq!(v["after_offset_delete"], serde_json::json!([["adm", 1, 5]]));
    assert_eq!(v["groups_before"], serde_json::json!(["adm-group"]));
    assert_eq!(v["groups_after"], serde_json::json!([]));
    assert_eq!(v["cluster"], serde_json::json!({"cluster_id": "annals", "controller_id": 0, "brokers": [0]}));
    let sizes = v["log_dir_sizes"].as_object().unwrap();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes.values().all(|s| s.as_i64().unwrap() > 0), "{sizes:?}");
}
