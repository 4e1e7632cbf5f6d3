//! The store's directory at open: its lock, the topics' metadata, the
//! partition directories that must belong to a topic, opening a topic's
//! logs, and finishing a delete a crash interrupted.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::error::{AdminError, Error, OpenError, Result};
use crate::io::{read_small_file, FileLock, SharedFs};
use crate::log::{CheckpointTable, PartitionLog};

use super::metadata::{self, TopicMetadata, METADATA_BYTES_MAX};
use super::name::{parse_partition_dir, partition_dir_name, validate_topic_name};
use super::store::{DELETING_SUFFIX, LOCK_FILE, META_SUFFIX, TOPICS_DIR};
use super::topic::{PartitionSlot, Topic};

/// The data directory's lock, shared by the store and every partition it
/// opened: its flock is released when the last of them is dropped. Each
/// partition's directory is claimed in it rather than locked with a
/// descriptor of its own (10,000 partitions would hold 10,000 descriptors),
/// so a second open of a partition directory this store still has open
/// fails as a second flock would.
#[derive(Debug)]
pub(super) struct StoreLock {
    _file: Box<dyn FileLock>,
    /// Claimed directories, each with its claim's number.
    claimed: Mutex<(HashMap<PathBuf, u64>, u64)>,
}

/// One partition directory's claim on its store's lock.
#[derive(Debug)]
struct Claim {
    store: Arc<StoreLock>,
    dir: PathBuf,
    id: u64,
}

impl FileLock for Claim {}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claimed = self.store.claimed.lock();
        if claimed.0.get(&self.dir) == Some(&self.id) {
            claimed.0.remove(&self.dir);
        }
    }
}

impl StoreLock {
    /// Claims partition directory `dir` ([`crate::OpenError::LogLocked`] while an
    /// earlier handle to it lives).
    pub(super) fn claim(self: &Arc<Self>, dir: &Path) -> Result<Arc<dyn FileLock>> {
        let mut claimed = self.claimed.lock();
        if claimed.0.contains_key(dir) {
            return Err(Error::Open(OpenError::LogLocked { dir: dir.to_path_buf() }));
        }
        claimed.1 += 1;
        let id = claimed.1;
        claimed.0.insert(dir.to_path_buf(), id);
        Ok(Arc::new(Claim { store: self.clone(), dir: dir.to_path_buf(), id }))
    }

    /// Lets `dir` be claimed again though handles to its old log live: its
    /// files are gone (a deleted topic), so those handles only read the
    /// unlinked files they hold and never write.
    pub(super) fn release(&self, dir: &Path) {
        self.claimed.lock().0.remove(dir);
    }
}

/// Takes the data directory's exclusive lock (one `Store`, or one repair,
/// at a time).
pub(super) fn lock_store(fs: &dyn crate::io::FileSystem, dir: &Path) -> Result<Arc<StoreLock>> {
    let file = lock_store_file(fs, dir)?;
    Ok(Arc::new(StoreLock { _file: file, claimed: Mutex::new((HashMap::new(), 0)) }))
}

fn lock_store_file(fs: &dyn crate::io::FileSystem, dir: &Path) -> Result<Box<dyn FileLock>> {
    let lock_path = dir.join(LOCK_FILE);
    fs.lock_exclusive(&lock_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => Error::Open(OpenError::StoreLocked { path: lock_path.clone() }),
        _ => Error::io("lock data directory", &lock_path)(e),
    })
}

/// Reads every topic's metadata; finishes deletes a crash interrupted and
/// removes temp files an interrupted metadata write left.
pub(super) fn load_topic_configs(
    fs: &dyn crate::io::FileSystem,
    dir: &Path,
    table: &CheckpointTable,
) -> Result<BTreeMap<String, TopicMetadata>> {
    let topics_dir = dir.join(TOPICS_DIR);
    let names = fs.list_dir(&topics_dir).map_err(Error::io("list topics", &topics_dir))?;
    let mut configs = BTreeMap::new();
    for file in names {
        let path = topics_dir.join(&file);
        if file.ends_with(".tmp") {
            fs.remove_file(&path).map_err(Error::io("remove temp file", &path))?;
        } else if let Some(name) =
            file.strip_suffix(DELETING_SUFFIX).filter(|n| validate_topic_name(n).is_ok())
        {
            let bytes = read_small_file(fs, &path, METADATA_BYTES_MAX).map_err(Error::io("read", &path))?;
            let config = metadata::decode(&bytes, &path)?;
            finish_delete(fs, dir, name, config.partitions, table)?;
        } else if let Some(name) = file.strip_suffix(META_SUFFIX).filter(|n| validate_topic_name(n).is_ok()) {
            let bytes = read_small_file(fs, &path, METADATA_BYTES_MAX).map_err(Error::io("read", &path))?;
            configs.insert(name.to_owned(), metadata::decode_with(&bytes, &path)?);
        } else {
            return Err(Error::Open(OpenError::UnexpectedFile { path }));
        }
    }
    Ok(configs)
}

/// Every `<topic>-<n>` directory must belong to a known topic: data of no
/// topic is reported, never opened over or deleted.
pub(super) fn check_partition_dirs(
    fs: &dyn crate::io::FileSystem,
    dir: &Path,
    configs: &BTreeMap<String, TopicMetadata>,
) -> Result<()> {
    for name in fs.list_dir(dir).map_err(Error::io("list data directory", dir))? {
        if let Some((topic, partition)) = parse_partition_dir(&name) {
            if configs.get(topic).is_none_or(|m| partition >= m.config.partitions) {
                return Err(Error::Open(OpenError::UnexpectedFile { path: dir.join(name) }));
            }
        }
    }
    Ok(())
}

/// How [`open_topic`] treats a partition whose open fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OnFailure {
    /// Store open: the partition goes offline with its error.
    Offline,
    /// Topic creation: the whole call fails ([`crate::AdminError::TopicIncomplete`]).
    Fail,
}

/// What [`open_topic`] needs of the store.
pub(super) struct OpenContext<'a> {
    pub fs: &'a SharedFs,
    pub clock: &'a SharedClock,
    pub dir: &'a Path,
    pub lock: &'a Arc<StoreLock>,
    /// The store's checkpoint table.
    pub table: &'a Arc<CheckpointTable>,
    /// Threads to open partitions on.
    pub threads: usize,
}

/// Opens (creating what is missing) every partition of topic `name`, on
/// `cx.threads` threads.
pub(super) fn open_topic(
    cx: &OpenContext<'_>,
    name: &str,
    metadata: TopicMetadata,
    on_failure: OnFailure,
) -> Result<Topic> {
    let TopicMetadata { config, passthrough } = metadata;
    let _span = tracing::info_span!("open_topic", topic = name, partitions = config.partitions).entered();
    let results = super::parallel::run(config.partitions as usize, cx.threads, |p| {
        let path = cx.dir.join(partition_dir_name(name, p as u32));
        let claim = cx.lock.claim(&path)?;
        // Boxed here: a log is about 1 KiB, and 1,000 of them by value
        // would be copied through the results.
        let table = cx.table.clone();
        PartitionLog::open_claimed(cx.fs.clone(), cx.clock.clone(), path, config.log.clone(), claim, table)
            .map(Arc::new)
    });
    let mut slots = Vec::with_capacity(results.len());
    let mut first_error = None;
    for (p, result) in results.into_iter().enumerate() {
        match result {
            Ok(log) => slots.push(PartitionSlot::Online(log)),
            Err(e) if on_failure == OnFailure::Fail => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                tracing::error!(topic = name, partition = p, error = %e, "partition offline: its open failed");
                slots.push(PartitionSlot::Offline(Arc::new(e)));
            }
        }
    }
    if let Some(cause) = first_error {
        // The partitions opened are dropped (closed) with `slots`.
        return Err(Error::Admin(AdminError::TopicIncomplete {
            topic: name.to_owned(),
            created: slots.len() as u32,
            partitions: config.partitions,
            cause: std::sync::Arc::new(cause),
        }));
    }
    Ok(Topic::new(name.to_owned(), config, passthrough, slots))
}

/// Removes a deleted topic's partition directories and their rows of the
/// checkpoint table, then its `.deleting` marker (ORDER: data and rows
/// gone durably before the marker is, so a topic created again under the
/// name never starts from the old one's log start).
pub(super) fn finish_delete(
    fs: &dyn crate::io::FileSystem,
    dir: &Path,
    name: &str,
    partitions: u32,
    table: &CheckpointTable,
) -> Result<()> {
    for p in 0..partitions {
        let path = dir.join(partition_dir_name(name, p));
        if fs.exists(&path).map_err(Error::io("stat", &path))? {
            fs.remove_dir_all(&path).map_err(Error::io("remove partition directory", &path))?;
        }
    }
    fs.sync_dir(dir).map_err(Error::io("sync data directory", dir))?;
    table.remove((0..partitions).map(|p| partition_dir_name(name, p)));
    table.persist()?;
    let topics_dir = dir.join(TOPICS_DIR);
    let deleting = topics_dir.join(format!("{name}{DELETING_SUFFIX}"));
    fs.remove_file(&deleting).map_err(Error::io("remove delete marker", &deleting))?;
    fs.sync_dir(&topics_dir).map_err(Error::io("sync topics directory", &topics_dir))
}
