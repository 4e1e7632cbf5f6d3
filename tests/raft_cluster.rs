//! Three openraft nodes on annals logs, in one process: the leader is
//! stopped, or its power cut, between writes and restarted from its disk;
//! every acknowledged write is in every node's committed log and state
//! machine.

#[path = "../examples/raft_cluster/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use annals::io::sim::CrashMode;
use cluster::{committed_sets, Cluster};

type Acked = BTreeMap<String, String>;

/// Writes `k<i> = <tag><i>` for `keys`, noting the acknowledged ones; with
/// `all_up`, every write must be acknowledged (after at most 5 tries: a
/// starved machine can still see a spurious election).
async fn write(cluster: &Cluster, keys: Range<usize>, tag: &str, acked: &mut Acked, all_up: bool) {
    for i in keys {
        let (key, value) = (format!("k{i}"), format!("{tag}{i}"));
        let tries = if all_up { 5 } else { 1 };
        for attempt in 1..=tries {
            match cluster.write(&key, &value).await {
                Ok(_) => {
                    acked.insert(key.clone(), value.clone());
                    break;
                }
                Err(e) if attempt == tries => assert!(!all_up, "{key}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// Every node holds every acknowledged write in its committed log and its
/// state machine, once all have applied the leader's last entry.
async fn assert_all_hold(cluster: &Cluster, acked: &Acked, context: &str) {
    let leader = cluster.leader(Duration::from_secs(10)).await.expect("a leader");
    let last = cluster.nodes[&leader].raft.metrics().borrow().last_log_index.unwrap();
    assert!(
        cluster.wait_applied(last, Duration::from_secs(20)).await,
        "{context}: every node applies {last}"
    );
    for (id, node) in &cluster.nodes {
        let in_log = committed_sets(&node.log);
        let data = node.state_machine.data();
        for (k, v) in acked {
            assert_eq!(in_log.get(k), Some(v), "{context}: node {id}: {k} in its committed log");
            assert_eq!(data.get(k), Some(v), "{context}: node {id}: {k} in its state machine");
        }
        // Terms are the batches' leader epochs: at least the first
        // leader's term and the next one's, on every node.
        let epochs = node.log.leader_epochs();
        assert!(epochs.len() >= 2, "{context}: node {id}: {epochs:?}");
        let verified = cluster.verify(*id);
        assert!(verified.problems.is_empty(), "{context}: node {id}: {:?}", verified.problems);
        assert!(verified.records >= acked.len() as u64, "{context}: node {id} verified {}", verified.records);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_loses_no_acknowledged_write_and_catches_up_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path()).await;
    let first = cluster.leader(Duration::from_secs(10)).await.expect("a leader");
    let mut acked = Acked::new();
    write(&cluster, 0..40, "v", &mut acked, true).await;
    cluster.kill(first).await;
    let second = cluster.leader(Duration::from_secs(10)).await.expect("a new leader");
    assert_ne!(second, first);
    write(&cluster, 40..80, "w", &mut acked, false).await;
    assert!(acked.len() >= 70, "writes through the new leader succeed: {}", acked.len());
    write(&cluster, 0..1, "again", &mut acked, true).await; // an overwrite keeps the latest value
    cluster.start_node(first).await;
    assert!(cluster.nodes[&first].log.recovery_report().clean_shutdown);
    assert_all_hold(&cluster, &acked, "stopped").await;
    for id in 1..=3 {
        cluster.kill(id).await;
    }
}

/// The leader's power is cut mid-stream (its simulated disk keeps what was
/// fsynced, and in seeded modes a random part of the rest, torn or not):
/// it boots from that image, recovers, rejoins, and no write acknowledged
/// before or after the cut is missing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_power_is_cut_loses_no_acknowledged_write() {
    for mode in [CrashMode::DurableOnly, CrashMode::Seeded(1), CrashMode::Seeded(2)] {
        let mut cluster = Cluster::start_simulated().await;
        let first = cluster.leader(Duration::from_secs(10)).await.expect("a leader");
        let mut acked = Acked::new();
        write(&cluster, 0..30, "v", &mut acked, true).await;
        cluster.power_cut(first, mode).await;
        write(&cluster, 30..60, "w", &mut acked, false).await;
        cluster.start_node(first).await;
        assert!(
            !cluster.nodes[&first].log.recovery_report().clean_shutdown,
            "{mode:?}: booted from a power cut"
        );
        assert_all_hold(&cluster, &acked, &format!("{mode:?}")).await;
        for id in 1..=3 {
            cluster.kill(id).await;
        }
    }
}
