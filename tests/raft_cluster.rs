//! Three openraft nodes on annals logs, in one process: the leader is
//! killed between writes and restarted from its directory; every
//! acknowledged write is in every node's committed log and state machine.

#[path = "../examples/raft_cluster/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::{committed_sets, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_loses_no_acknowledged_write_and_catches_up_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path()).await;
    let first = cluster.leader(Duration::from_secs(10)).await.expect("a leader");
    let mut acked = BTreeMap::new();
    for i in 0..40 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        cluster.write(&key, &value).await.expect("a write with all nodes up");
        acked.insert(key, value);
    }
    cluster.kill(first).await;
    let second = cluster.leader(Duration::from_secs(10)).await.expect("a new leader");
    assert_ne!(second, first);
    for i in 40..80 {
        let (key, value) = (format!("k{i}"), format!("w{i}"));
        if cluster.write(&key, &value).await.is_ok() {
            acked.insert(key, value);
        }
    }
    assert!(acked.len() >= 70, "writes through the new leader succeed: {}", acked.len());
    // Overwrites keep the latest value.
    cluster.write("k0", "again").await.expect("write");
    acked.insert("k0".into(), "again".into());

    cluster.start_node(first).await;
    let last = cluster.nodes[&second].raft.metrics().borrow().last_log_index.unwrap();
    assert!(cluster.wait_applied(last, Duration::from_secs(20)).await, "every node applies entry {last}");
    for (id, node) in &cluster.nodes {
        let in_log = committed_sets(&node.log);
        let data = node.state_machine.data();
        for (k, v) in &acked {
            assert_eq!(in_log.get(k), Some(v), "node {id}: {k} in its committed log");
            assert_eq!(data.get(k), Some(v), "node {id}: {k} in its state machine");
        }
        // Terms are the batches' leader epochs: the new leader's term
        // starts where the old leader's entries end, on every node.
        let epochs = node.log.leader_epochs();
        assert!(epochs.len() >= 2, "node {id}: {epochs:?}");
    }
    for id in 1..=3 {
        cluster.kill(id).await;
    }
}
