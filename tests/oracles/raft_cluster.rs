//! Three openraft nodes on annals logs, in one process: the leader is
//! stopped, or its power cut, between writes and restarted from its disk;
//! the others purge their logs behind snapshots meanwhile, so it comes back
//! through a snapshot (its log starts over past its end). Every
//! acknowledged write is in every node's state machine, and in its
//! committed log unless its snapshot covers it.

#[path = "../../examples/raft_cluster/cluster.rs"]
mod cluster;

use std::ops::Range;
use std::time::Duration;

use annals::io::sim::CrashMode;
use cluster::{missing, Acked, Cluster};

/// Writes `k<i> = <tag><i>` for `keys`, noting the acknowledged ones; with
/// `all_up`, every write must be acknowledged (after at most 5 tries: a
/// starved machine can still see a spurious election).
async fn write(cluster: &Cluster, keys: Range<usize>, tag: &str, acked: &mut Acked, all_up: bool) {
    for i in keys {
        let (key, value) = (format!("k{i}"), format!("{tag}{i}"));
        let tries = if all_up { 5 } else { 1 };
        for attempt in 1..=tries {
            match cluster.write(&key, &value).await {
                Ok(index) => {
                    acked.insert(key.clone(), (value.clone(), index));
                    break;
                }
                Err(e) if attempt == tries => assert!(!all_up, "{key}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// Every node holds every acknowledged write (state machine, and log above
/// its snapshot), and its partition verifies clean.
async fn assert_all_hold(cluster: &Cluster, acked: &Acked, context: &str) {
    let leader = cluster.leader(Duration::from_secs(10)).await.expect("a leader");
    let last = cluster.nodes[&leader].raft.metrics().borrow().last_log_index.unwrap();
    assert!(
        cluster.wait_applied(last, Duration::from_secs(20)).await,
        "{context}: every node applies {last}"
    );
    for (id, node) in &cluster.nodes {
        let (missing_log, in_log, missing_sm) = missing(node, acked);
        assert_eq!((missing_log, missing_sm), (0, 0), "{context}: node {id} ({in_log} expected in its log)");
        let verified = cluster.verify(*id);
        assert!(verified.problems.is_empty(), "{context}: node {id}: {:?}", verified.problems);
    }
}

/// Runs the scenario: 40 writes, `kill` the leader, 260 more (snapshots
/// every 100 entries purge the others' logs past the killed node's end),
/// restart it; it must come back through a snapshot and hold everything.
async fn fail_over(
    mut cluster: Cluster,
    kill: impl AsyncFnOnce(&mut Cluster, u64),
    clean: bool,
    context: &str,
) {
    let first = cluster.leader(Duration::from_secs(10)).await.expect("a leader");
    let mut acked = Acked::new();
    write(&cluster, 0..40, "v", &mut acked, true).await;
    let end_before = cluster.nodes[&first].log.log_end_offset();
    kill(&mut cluster, first).await;
    let second = cluster.leader(Duration::from_secs(10)).await.expect("a new leader");
    assert_ne!(second, first, "{context}");
    write(&cluster, 40..300, "w", &mut acked, false).await;
    assert!(acked.len() >= 250, "{context}: writes through the new leader succeed: {}", acked.len());
    write(&cluster, 0..1, "again", &mut acked, true).await; // an overwrite keeps the latest value
    cluster.start_node(first).await;
    assert_all_hold(&cluster, &acked, context).await;
    let restarted = &cluster.nodes[&first];
    assert_eq!(restarted.log.recovery_report().clean_shutdown, clean, "{context}: how node {first} stopped");
    assert!(
        restarted.log.log_start_offset() > end_before,
        "{context}: node {first} came back through a snapshot: log starts at {}, ended at {end_before}",
        restarted.log.log_start_offset()
    );
    for id in 1..=3 {
        cluster.kill(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_loses_no_acknowledged_write_and_catches_up_through_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path()).await;
    fail_over(cluster, async |cluster: &mut Cluster, id| cluster.kill(id).await, true, "stopped").await;
}

/// The leader's power is cut mid-stream (its simulated disk keeps what was
/// fsynced, and in seeded modes a random part of the rest, torn or not):
/// it boots from that image, recovers, and rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_power_is_cut_loses_no_acknowledged_write() {
    for mode in [CrashMode::DurableOnly, CrashMode::Seeded(1), CrashMode::Seeded(2)] {
        let cluster = Cluster::start_simulated().await;
        let cut = async |cluster: &mut Cluster, id| cluster.power_cut(id, mode).await;
        fail_over(cluster, cut, false, &format!("{mode:?}")).await;
    }
}
