//! A small key-value state machine for tests and examples: `Set` requests
//! write a key, every entry moves the last applied log id, membership
//! entries are kept, and a snapshot is the whole map as JSON.
//!
//! The state lives in memory. Made with [`KvStateMachine::default`] it
//! persists nothing: after a restart openraft re-applies the committed
//! entries from the log, so the log must not be purged under it. Made with
//! [`KvStateMachine::open`] it keeps its last snapshot in a file (written
//! atomically and durably through the I/O seam, before openraft hears of
//! it) and starts from it, so openraft may purge the log it covers.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::io::{create_dir_all_durable, SharedFs};

use super::error::RaftStoreError;
use super::state::{self, SNAPSHOT};

openraft::declare_raft_types!(
    /// The type configuration of the key-value example: string requests and
    /// responses, `u64` node ids, openraft's `Entry`, in-memory snapshots.
    pub KvConfig:
        D = KvRequest,
        R = KvResponse,
);

/// A write to the key-value map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvRequest {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
}

/// What applying an entry returned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvResponse {
    /// The key's value before a `Set` (`None` for other entries).
    pub previous: Option<String>,
}

/// The state: the map, the last applied log id and the last membership.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KvState {
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, BasicNode>,
    data: BTreeMap<String, String>,
}

/// A snapshot kept in memory: its metadata and the serialized state.
#[derive(Clone, Debug)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

/// The snapshot file's content.
#[derive(Serialize, Deserialize)]
struct PersistedSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    state: KvState,
}

/// Where a persistent machine keeps its snapshot.
#[derive(Clone, Debug)]
struct SnapshotDir {
    fs: SharedFs,
    dir: PathBuf,
}

/// The key-value state machine (clones share the state).
#[derive(Clone, Debug, Default)]
pub struct KvStateMachine {
    state: Arc<Mutex<KvState>>,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshots_built: Arc<Mutex<u64>>,
    persist: Option<SnapshotDir>,
}

impl KvStateMachine {
    /// A machine keeping its last snapshot in `dir` (created if needed)
    /// through `fs`, starting from that snapshot when there is one.
    ///
    /// # Errors
    /// [`RaftStoreError::Log`] (I/O); [`RaftStoreError::InvalidState`] for a
    /// damaged snapshot file.
    pub fn open(fs: SharedFs, dir: impl AsRef<Path>) -> Result<Self, RaftStoreError> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_all_durable(&*fs, &dir).map_err(Error::io("create state machine directory", &dir))?;
        state::remove_temps(&*fs, &dir, &[SNAPSHOT])?;
        let machine = KvStateMachine { persist: Some(SnapshotDir { fs, dir }), ..KvStateMachine::default() };
        let persist = machine.persist.as_ref().expect("just set");
        if let Some(saved) = state::read::<PersistedSnapshot>(&*persist.fs, &persist.dir, SNAPSHOT)? {
            let data = serde_json::to_vec(&saved.state).map_err(|e| RaftStoreError::InvalidState {
                path: persist.dir.join(SNAPSHOT.name),
                reason: e.to_string(),
            })?;
            *machine.state.lock() = saved.state;
            *machine.snapshot.lock() = Some(StoredSnapshot { meta: saved.meta, data });
        }
        Ok(machine)
    }

    /// Makes `state` as of `meta` the current snapshot: durably first when
    /// the machine is persistent.
    fn keep_snapshot(
        &self,
        meta: &SnapshotMeta<u64, BasicNode>,
        state: &KvState,
        data: Vec<u8>,
    ) -> Result<(), Box<StorageError<u64>>> {
        if let Some(p) = &self.persist {
            let saved = PersistedSnapshot { meta: meta.clone(), state: state.clone() };
            state::write(&*p.fs, &p.dir, SNAPSHOT, &saved).map_err(|e| write_error(meta, &e))?;
        }
        *self.snapshot.lock() = Some(StoredSnapshot { meta: meta.clone(), data });
        Ok(())
    }

    /// The value of `key`, as applied so far.
    pub fn get(&self, key: &str) -> Option<String> {
        self.state.lock().data.get(key).cloned()
    }

    /// Every key and value, as applied so far.
    pub fn data(&self) -> BTreeMap<String, String> {
        self.state.lock().data.clone()
    }

    /// The last applied log id.
    pub fn last_applied(&self) -> Option<LogId<u64>> {
        self.state.lock().last_applied
    }

    /// The index of the last entry the current snapshot covers.
    pub fn snapshot_index(&self) -> Option<u64> {
        self.snapshot.lock().as_ref().and_then(|s| s.meta.last_log_id).map(|id| id.index)
    }
}

fn write_error(meta: &SnapshotMeta<u64, BasicNode>, e: &RaftStoreError) -> Box<StorageError<u64>> {
    Box::new(StorageIOError::write_snapshot(Some(meta.signature()), e).into())
}

fn snapshot_error(meta: Option<&SnapshotMeta<u64, BasicNode>>, e: &serde_json::Error) -> StorageError<u64> {
    StorageIOError::read_snapshot(meta.map(|m| m.signature()), e).into()
}

impl RaftSnapshotBuilder<KvConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<KvConfig>, StorageError<u64>> {
        let state = self.state.lock().clone();
        let data = serde_json::to_vec(&state).map_err(|e| snapshot_error(None, &e))?;
        let built = {
            let mut n = self.snapshots_built.lock();
            *n += 1;
            *n
        };
        let snapshot_id = match &state.last_applied {
            Some(id) => format!("{}-{}-{built}", id.leader_id.term, id.index),
            None => format!("none-{built}"),
        };
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.last_membership.clone(),
            snapshot_id,
        };
        self.keep_snapshot(&meta, &state, data.clone()).map_err(|e| *e)?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<KvConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let state = self.state.lock();
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<KvResponse>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<KvConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state.lock();
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => KvResponse::default(),
                EntryPayload::Normal(KvRequest::Set { key, value }) => {
                    KvResponse { previous: state.data.insert(key, value) }
                }
                EntryPayload::Membership(membership) => {
                    state.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    KvResponse::default()
                }
            };
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let received: KvState = serde_json::from_slice(&data).map_err(|e| snapshot_error(Some(meta), &e))?;
        let state = KvState {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            data: received.data,
        };
        // ORDER: the snapshot is durable before the state moves to it (and
        // before openraft purges the log it covers).
        self.keep_snapshot(meta, &state, data).map_err(|e| *e)?;
        *self.state.lock() = state;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<KvConfig>>, StorageError<u64>> {
        Ok(self
            .snapshot
            .lock()
            .clone()
            .map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}
