//! The store's directory at open: its lock, the topics' metadata, the
//! partition directories that must belong to a topic, opening a topic's
//! logs, and finishing a delete a crash interrupted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::io::{read_small_file, FileLock, SharedFs};
use crate::log::PartitionLog;

use super::metadata::{self, TopicConfig, METADATA_BYTES_MAX};
use super::name::{parse_partition_dir, partition_dir_name, validate_topic_name};
use super::store::{DELETING_SUFFIX, LOCK_FILE, META_SUFFIX, TOPICS_DIR};
use super::topic::Topic;

/// Takes the data directory's exclusive lock (one `Store`, or one repair,
/// at a time).
pub(super) fn lock_store(fs: &dyn crate::io::FileSystem, dir: &Path) -> Result<Box<dyn FileLock>> {
    let lock_path = dir.join(LOCK_FILE);
    fs.lock_exclusive(&lock_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => Error::StoreLocked { path: lock_path.clone() },
        _ => Error::io("lock data directory", &lock_path)(e),
    })
}

/// Reads every topic's metadata; finishes deletes a crash interrupted and
/// removes temp files an interrupted metadata write left.
pub(super) fn load_topic_configs(
    fs: &dyn crate::io::FileSystem,
    dir: &Path,
) -> Result<BTreeMap<String, TopicConfig>> {
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
            finish_delete(fs, dir, name, config.partitions)?;
        } else if let Some(name) = file.strip_suffix(META_SUFFIX).filter(|n| validate_topic_name(n).is_ok()) {
            let bytes = read_small_file(fs, &path, METADATA_BYTES_MAX).map_err(Error::io("read", &path))?;
            configs.insert(name.to_owned(), metadata::decode(&bytes, &path)?);
        } else {
            return Err(Error::UnexpectedFile { path });
        }
    }
    Ok(configs)
}

/// Every `<topic>-<n>` directory must belong to a known topic: data of no
/// topic is reported, never opened over or deleted.
pub(super) fn check_partition_dirs(
    fs: &dyn crate::io::FileSystem,
    dir: &Path,
    configs: &BTreeMap<String, TopicConfig>,
) -> Result<()> {
    for name in fs.list_dir(dir).map_err(Error::io("list data directory", dir))? {
        if let Some((topic, partition)) = parse_partition_dir(&name) {
            if configs.get(topic).is_none_or(|c| partition >= c.partitions) {
                return Err(Error::UnexpectedFile { path: dir.join(name) });
            }
        }
    }
    Ok(())
}

pub(super) fn open_topic(
    fs: &SharedFs,
    clock: &SharedClock,
    dir: &Path,
    name: &str,
    config: TopicConfig,
) -> Result<Topic> {
    let logs = (0..config.partitions)
        .map(|p| {
            let path = dir.join(partition_dir_name(name, p));
            PartitionLog::open_with_clock(fs.clone(), clock.clone(), path, config.log.clone()).map(Arc::new)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Topic::new(name.to_owned(), config, logs))
}

/// Removes a deleted topic's partition directories, then its `.deleting`
/// marker (ORDER: data gone durably before the marker is).
pub(super) fn finish_delete(
    fs: &dyn crate::io::FileSystem,
    dir: &Path,
    name: &str,
    partitions: u32,
) -> Result<()> {
    for p in 0..partitions {
        let path = dir.join(partition_dir_name(name, p));
        if fs.exists(&path).map_err(Error::io("stat", &path))? {
            fs.remove_dir_all(&path).map_err(Error::io("remove partition directory", &path))?;
        }
    }
    fs.sync_dir(dir).map_err(Error::io("sync data directory", dir))?;
    let topics_dir = dir.join(TOPICS_DIR);
    let deleting = topics_dir.join(format!("{name}{DELETING_SUFFIX}"));
    fs.remove_file(&deleting).map_err(Error::io("remove delete marker", &deleting))?;
    fs.sync_dir(&topics_dir).map_err(Error::io("sync topics directory", &topics_dir))
}
