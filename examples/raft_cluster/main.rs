//! Three openraft nodes in one process, each storing its raft log in an
//! annals partition: write through the leader, kill it mid-stream, keep
//! writing through the new leader, restart the old one, and check that
//! every acknowledged entry is in every node's log and state machine.
//! Twice: first on real directories with the leader stopped, then on
//! simulated disks with the leader's power cut (its disk keeps only what
//! was fsynced) and the node booted from that image.
//!
//! ```text
//! cargo run --release --features openraft --example raft_cluster [DATA_DIR]
//! ```
//!
//! Without `DATA_DIR` the nodes' directories go in a fresh temporary
//! directory. Exits non-zero if an acknowledged entry is missing anywhere.

mod cluster;

use std::time::{Duration, Instant};

use annals::io::sim::CrashMode;
use annals::raft::KvRequest;
use cluster::{missing, Acked, Cluster};

/// How the leader goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// Unreachable at once, then shut down.
    Stop,
    /// Its simulated disk keeps only what was fsynced; the node is gone.
    PowerCut,
}

impl Kill {
    fn verb(self) -> &'static str {
        match self {
            Kill::Stop => "stopped",
            Kill::PowerCut => "cut the power of",
        }
    }
}

const WRITES_BEFORE_KILL: usize = 200;
const WRITES_TOTAL: usize = 500;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = std::env::args().nth(1).map_or_else(|| temp.path().to_path_buf(), Into::into);
    println!("== real disks: 3 nodes, logs under {}; the leader is stopped", dir.display());
    let stopped = run(Cluster::start(&dir).await, Kill::Stop).await;
    println!("== simulated disks: 3 nodes; the leader's power is cut (only fsynced bytes survive)");
    let cut = run(Cluster::start_simulated().await, Kill::PowerCut).await;
    match stopped.and(cut) {
        Ok(()) => println!("ok: no acknowledged entry lost"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(mut cluster: Cluster, kill: Kill) -> Result<(), String> {
    let first = cluster.leader(Duration::from_secs(10)).await.ok_or("no leader elected")?;
    println!("leader: node {first} (term {})", term(&cluster, first));

    let mut acked = Acked::new();
    let (mut failed, mut i) = (0, 0);
    let mut killed = None;
    let started = Instant::now();
    while acked.len() < WRITES_TOTAL {
        let (key, value) = (format!("key-{i:04}"), format!("value-{i}"));
        i += 1;
        match cluster.write(&key, &value).await {
            Ok(index) => {
                acked.insert(key, (value, index));
            }
            Err(_) => failed += 1, // not acknowledged: the client moves on
        }
        if acked.len() == WRITES_BEFORE_KILL && killed.is_none() {
            let (leader, in_flight_acked) =
                kill_leader_under_a_write(&mut cluster, kill, &mut acked, &mut i).await?;
            killed = Some(leader);
            failed += usize::from(!in_flight_acked);
        }
    }
    let leader = cluster.leader(Duration::from_secs(5)).await.ok_or("no leader")?;
    println!(
        "{} writes acknowledged, {failed} failed during the failover, in {:.2} s",
        acked.len(),
        started.elapsed().as_secs_f64()
    );

    // The killed node comes back from its disk and catches up (from a
    // snapshot when the others purged the entries it lacks).
    if let Some(id) = killed {
        cluster.start_node(id).await;
        let (log, r) = (&cluster.nodes[&id].log, cluster.nodes[&id].log.recovery_report());
        println!(
            "restarted node {id} from its disk: clean shutdown {}, {} bytes checked, {} bytes of torn tail cut; log [{}, {})",
            r.clean_shutdown,
            r.bytes_scanned,
            r.bytes_truncated,
            log.log_start_offset(),
            log.log_end_offset()
        );
    }
    let last = cluster.nodes[&leader].raft.metrics().borrow().last_log_index.unwrap_or(0);
    if !cluster.wait_applied(last, Duration::from_secs(20)).await {
        return Err(format!("not every node applied up to entry {last}"));
    }

    let mut lost = 0;
    for (id, node) in &cluster.nodes {
        let (missing_log, in_log, missing_sm) = missing(node, &acked);
        let verified = cluster.verify(*id);
        lost += missing_log + missing_sm + verified.problems.len();
        println!(
            "node {id}: log [{}, {}), high watermark {}, leader epochs {:?}, snapshot at {:?}; acknowledged writes in its log {}/{} (the rest in its snapshot), in its state machine {}/{}; verify: {} batches, {} problems",
            node.log.log_start_offset(),
            node.log.log_end_offset(),
            node.log.high_watermark(),
            node.log.leader_epochs(),
            node.state_machine.snapshot_index(),
            in_log - missing_log,
            in_log,
            acked.len() - missing_sm,
            acked.len(),
            verified.batches,
            verified.problems.len(),
        );
    }
    for id in 1..=3 {
        cluster.kill(id).await;
    }
    if lost > 0 {
        return Err(format!("{lost} acknowledged entries missing or problems found"));
    }
    Ok(())
}

/// Starts a write on the leader, kills the leader under it, waits for a
/// new one; returns the killed node and whether the write in flight was
/// acknowledged.
async fn kill_leader_under_a_write(
    cluster: &mut Cluster,
    kill: Kill,
    acked: &mut Acked,
    i: &mut usize,
) -> Result<(u64, bool), String> {
    let leader = cluster.leader(Duration::from_secs(5)).await.ok_or("no leader")?;
    let in_flight = cluster.nodes[&leader].raft.clone();
    let (key, value) = (format!("key-{i:04}"), format!("value-{i}"));
    *i += 1;
    let write = tokio::spawn(async move {
        let request = KvRequest::Set { key: key.clone(), value: value.clone() };
        in_flight.client_write(request).await.map(|r| (key, value, r.log_id.index))
    });
    tokio::task::yield_now().await;
    match kill {
        Kill::Stop => cluster.kill(leader).await,
        Kill::PowerCut => cluster.power_cut(leader, CrashMode::DurableOnly).await,
    }
    let killed_at = Instant::now();
    let in_flight_acked = match write.await {
        Ok(Ok((key, value, index))) => {
            acked.insert(key, (value, index));
            true
        }
        _ => false,
    };
    let outcome = if in_flight_acked { "was acknowledged" } else { "failed (not acknowledged)" };
    println!(
        "{} node {leader} (the leader) after {WRITES_BEFORE_KILL} acknowledged writes; the write in flight {outcome}",
        kill.verb()
    );
    let next = cluster.leader(Duration::from_secs(10)).await.ok_or("no new leader")?;
    let took = killed_at.elapsed().as_secs_f64();
    println!("new leader: node {next} (term {}), {took:.2} s after the kill", term(cluster, next));
    Ok((leader, in_flight_acked))
}

fn term(cluster: &Cluster, id: u64) -> u64 {
    cluster.nodes[&id].raft.metrics().borrow().current_term
}
