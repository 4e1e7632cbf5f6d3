//! Repairing one partition of a store (`annals repair`): the store's lock
//! held, the topic's own log configuration, then [`PartitionLog::repair`].

use std::path::Path;

use crate::error::{AdminError, Error, Result};
use crate::io::{read_small_file, SharedFs};
use crate::log::{AcceptDataLoss, PartitionLog, RepairReport};

use super::layout::lock_store;
use super::metadata::{self, METADATA_BYTES_MAX};
use super::name::{partition_dir_name, validate_topic_name};
use super::store::{Store, META_SUFFIX, TOPICS_DIR};

impl Store {
    /// Cuts partition `partition` of `topic` in the store at `dir` where
    /// opening it refuses damage to fsynced records, keeping the cut bytes
    /// in quarantine files (see [`PartitionLog::repair`]). Takes the
    /// store's lock, so the store must not be open.
    ///
    /// # Errors
    /// [`crate::OpenError::StoreLocked`] while the store is open; [`crate::AdminError::UnknownTopic`],
    /// [`crate::AdminError::PartitionOutOfRange`], [`crate::AdminError::InvalidTopicName`];
    /// [`crate::OpenError::InvalidMetadata`]; what [`PartitionLog::repair`] returns.
    pub fn repair_partition(
        fs: SharedFs,
        dir: impl AsRef<Path>,
        topic: &str,
        partition: u32,
        _: AcceptDataLoss,
    ) -> Result<RepairReport> {
        let dir = dir.as_ref();
        validate_topic_name(topic)?;
        let lock = lock_store(&*fs, dir)?;
        let path = dir.join(TOPICS_DIR).join(format!("{topic}{META_SUFFIX}"));
        if !fs.exists(&path).map_err(Error::io("stat", &path))? {
            return Err(Error::Admin(AdminError::UnknownTopic { topic: topic.to_owned() }));
        }
        let bytes = read_small_file(&*fs, &path, METADATA_BYTES_MAX).map_err(Error::io("read", &path))?;
        let config = metadata::decode(&bytes, &path)?;
        if partition >= config.partitions {
            let partitions = config.partitions;
            return Err(Error::Admin(AdminError::PartitionOutOfRange {
                topic: topic.to_owned(),
                partition,
                partitions,
            }));
        }
        let log_dir = dir.join(partition_dir_name(topic, partition));
        let own = crate::log::lock_own_dir(&*fs, &log_dir)?;
        let table = std::sync::Arc::new(crate::log::CheckpointTable::open(fs.clone(), dir));
        let report = PartitionLog::repair_locked(
            fs,
            &log_dir,
            config.log,
            std::sync::Arc::new(RepairLock { _own: own, _store: lock }),
            Some(table.clone()),
        )?;
        table.persist()?;
        Ok(report)
    }
}

/// A partition repair's locks: the partition directory's own, and the
/// store's (which its partitions otherwise share).
#[derive(Debug)]
struct RepairLock {
    _own: Box<dyn crate::io::FileLock>,
    _store: std::sync::Arc<super::layout::StoreLock>,
}

impl crate::io::FileLock for RepairLock {}
