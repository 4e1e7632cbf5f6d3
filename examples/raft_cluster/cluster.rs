//! A 3-node openraft cluster in one process over an in-memory network,
//! each node's log in an annals `LogStore`. Shared by the `raft_cluster`
//! example and `tests/oracles/raft_cluster.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annals::io::sim::{CrashMode, SimFs};
use annals::io::{SharedFs, StdFileSystem};
use annals::raft::{KvConfig, KvRequest, KvStateMachine, LogReader, LogStore};
use annals::{LogConfig, PartitionLog};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, EntryPayload, Raft, RaftNetwork, RaftNetworkFactory, SnapshotPolicy};

pub type NodeId = u64;
type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

/// The in-memory network: which nodes are up, by id.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<KvConfig>>>>,
}

impl Router {
    fn get(&self, id: NodeId) -> Result<Raft<KvConfig>, Unreachable> {
        let nodes = self.nodes.lock().unwrap();
        nodes
            .get(&id)
            .cloned()
            .ok_or_else(|| Unreachable::new(&io::Error::other(format!("node {id} is down"))))
    }
}

/// A connection from one node to `target`.
pub struct Connection {
    target: NodeId,
    router: Router,
}

impl RaftNetworkFactory<KvConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection { target, router: self.clone() }
    }
}

impl RaftNetwork<KvConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<KvConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let raft = self.router.get(self.target)?;
        raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<KvConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let raft = self.router.get(self.target)?;
        raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, _option: RPCOption) -> Rpc<VoteResponse<NodeId>> {
        let raft = self.router.get(self.target)?;
        raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// One running node: its raft handle, its state machine, its log.
pub struct Node {
    pub raft: Raft<KvConfig>,
    pub state_machine: KvStateMachine,
    pub log: Arc<PartitionLog>,
}

/// Where the nodes keep their logs.
pub enum Disks {
    /// Real directories under one directory.
    Real(PathBuf),
    /// One simulated file system per node (`annals::io::sim`), so a power
    /// cut can keep exactly what was fsynced.
    Simulated(BTreeMap<NodeId, SimFs>),
}

/// Three nodes with their logs on `disks`.
pub struct Cluster {
    pub disks: Disks,
    pub router: Router,
    pub nodes: BTreeMap<NodeId, Node>,
    config: Arc<Config>,
}

impl Cluster {
    /// Starts nodes 1, 2 and 3 (each opening, or reopening, its log under
    /// `dir/node-<id>`) and initializes the cluster with node 1.
    pub async fn start(dir: &Path) -> Cluster {
        Cluster::start_on(Disks::Real(dir.to_path_buf())).await
    }

    /// As [`Cluster::start`], each node on its own simulated disk.
    pub async fn start_simulated() -> Cluster {
        Cluster::start_on(Disks::Simulated(BTreeMap::new())).await
    }

    async fn start_on(disks: Disks) -> Cluster {
        let config = Config {
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            // A snapshot every 100 entries, and only 20 covered entries
            // kept: logs are purged as writes go on, and a node that comes
            // back behind the purge gets a snapshot (its log then starts
            // over past its end: `truncate_fully_and_start_at`).
            snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
            max_in_snapshot_log_to_keep: 20,
            ..Config::default()
        };
        let mut cluster = Cluster {
            disks,
            router: Router::default(),
            nodes: BTreeMap::new(),
            config: Arc::new(config.validate().expect("valid raft config")),
        };
        for id in 1..=3 {
            cluster.start_node(id).await;
        }
        let members: BTreeMap<NodeId, BasicNode> = (1..=3).map(|id| (id, BasicNode::default())).collect();
        cluster.nodes[&1].raft.initialize(members).await.expect("initialize");
        cluster
    }

    /// Starts node `id` from its disk (a restart reopens its log and its
    /// state machine's last snapshot): `<dir>/node-<id>/{raft,sm}`, or
    /// `/raft` and `/sm` on its simulated disk.
    pub async fn start_node(&mut self, id: NodeId) {
        let (fs, dir): (SharedFs, PathBuf) = match &mut self.disks {
            Disks::Real(dir) => (Arc::new(StdFileSystem), dir.join(format!("node-{id}"))),
            Disks::Simulated(disks) => (Arc::new(disks.entry(id).or_default().clone()), "/".into()),
        };
        // Small index preallocation: a simulated disk holds it in memory.
        let config = LogConfig { segment_index_bytes: 64 << 10, ..LogConfig::default() };
        let store = LogStore::<KvConfig>::open_with(
            dir.join("raft"),
            config,
            annals::OpenOptions::default().with_fs(fs.clone()),
        )
        .expect("open the node's log");
        let log = store.log().clone();
        let state_machine = KvStateMachine::open(fs, dir.join("sm")).expect("open the state machine");
        let raft = Raft::new(id, self.config.clone(), self.router.clone(), store, state_machine.clone())
            .await
            .expect("start raft");
        self.router.nodes.lock().unwrap().insert(id, raft.clone());
        self.nodes.insert(id, Node { raft, state_machine, log });
    }

    /// Kills node `id`: unreachable at once, then shut down (its log is
    /// closed as the process would leave it; every acknowledged append was
    /// already fsynced).
    pub async fn kill(&mut self, id: NodeId) {
        self.router.nodes.lock().unwrap().remove(&id);
        if let Some(node) = self.nodes.remove(&id) {
            node.raft.shutdown().await.expect("shutdown");
        }
    }

    /// Cuts the power of node `id` (on simulated disks): its disk keeps
    /// only what was fsynced (`mode` picks how unsynced writes fare), and
    /// the node is gone until [`Cluster::start_node`] boots it from that.
    pub async fn power_cut(&mut self, id: NodeId, mode: CrashMode) {
        let Disks::Simulated(disks) = &mut self.disks else { panic!("power cuts need simulated disks") };
        // The image is taken while the node still runs: whatever it does
        // after this instant is lost with the power.
        let image = disks[&id].crash_image(mode);
        self.router.nodes.lock().unwrap().remove(&id);
        disks.insert(id, image);
        if let Some(node) = self.nodes.remove(&id) {
            node.raft.shutdown().await.expect("shutdown");
        }
    }

    /// `annals verify` of node `id`'s partition, read-only: every batch's
    /// CRC and records, offsets dense, indexes naming their batches.
    pub fn verify(&self, id: NodeId) -> annals::inspect::VerifyReport {
        let dir = self.nodes[&id].log.dir().to_path_buf();
        let mut progress = |_| {};
        match &self.disks {
            Disks::Real(_) => annals::inspect::verify_partition(&StdFileSystem, &dir, &mut progress),
            Disks::Simulated(disks) => annals::inspect::verify_partition(&disks[&id], &dir, &mut progress),
        }
        .expect("verify reads the partition")
    }

    /// The leader the live nodes agree on, waiting up to `timeout`.
    pub async fn leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let seen: BTreeSet<Option<NodeId>> =
                self.nodes.values().map(|n| n.raft.metrics().borrow().current_leader).collect();
            if let [Some(leader)] = seen.into_iter().collect::<Vec<_>>()[..] {
                if self.nodes.contains_key(&leader) {
                    return Some(leader);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Writes `key = value` through the current leader; `Ok` only when the
    /// entry is committed (acknowledged).
    pub async fn write(&self, key: &str, value: &str) -> Result<u64, String> {
        let leader = self.leader(Duration::from_secs(5)).await.ok_or("no leader")?;
        let request = KvRequest::Set { key: key.into(), value: value.into() };
        let write = self.nodes[&leader].raft.client_write(request);
        match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(Ok(response)) => Ok(response.log_id.index),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Waits until every live node has applied up to `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.nodes.values().all(|n| n.state_machine.last_applied().is_some_and(|a| a.index >= index)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// Acknowledged writes: key -> (value, log index of the write).
pub type Acked = BTreeMap<String, (String, u64)>;

/// How many of `acked` a node lacks: in its state machine, and in its
/// committed log among those written at or after its log start (earlier
/// ones are covered by its snapshot). Also returns how many were expected
/// in the log.
pub fn missing(node: &Node, acked: &Acked) -> (usize, usize, usize) {
    let (in_log, data, start) =
        (committed_sets(&node.log), node.state_machine.data(), node.log.log_start_offset());
    let in_range: Vec<_> = acked.iter().filter(|(_, (_, index))| *index >= start).collect();
    let missing_log = in_range.iter().filter(|(k, (v, _))| in_log.get(*k) != Some(v)).count();
    let missing_sm = acked.iter().filter(|(k, (v, _))| data.get(*k) != Some(v)).count();
    (missing_log, in_range.len(), missing_sm)
}

/// The `Set` requests of `log`'s committed entries (below its high
/// watermark), read straight from the annals partition.
pub fn committed_sets(log: &Arc<PartitionLog>) -> BTreeMap<String, String> {
    let reader = LogReader::<KvConfig>::new(log.clone());
    let entries = reader.entries(..log.high_watermark()).expect("read the committed entries");
    let mut sets = BTreeMap::new();
    for entry in entries {
        if let EntryPayload::Normal(KvRequest::Set { key, value }) = entry.payload {
            sets.insert(key, value);
        }
    }
    sets
}
