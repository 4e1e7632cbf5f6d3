//! The store: a data directory of topics, locked by one process at a time.
//!
//! Layout:
//!
//! ```text
//! <dir>/.lock                  held (flock) while a Store is open
//! <dir>/topics/<topic>.meta    topic metadata (see metadata.rs)
//! <dir>/topics/<topic>.deleting  a delete in progress (finished at open)
//! <dir>/<topic>-<partition>/   each partition's log (Kafka's layout)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::clock::SharedClock;
use crate::error::{AdminError, Error, Result};
use crate::io::{write_file_atomic, FilePool, SharedFs};
use crate::log::{CheckpointTable, OpenOptions, PartitionLog};
use crate::log::{CompactionReport, RetentionReport};

use super::layout::{
    check_partition_dirs, finish_delete, load_topic_configs, lock_store, open_topic, OnFailure, OpenContext,
    StoreLock,
};
use super::maintenance::Maintenance;
use super::offsets::{load as load_offsets, ConsumerOffsets, OffsetTable, OFFSETS_TOPIC};
use super::topic::PartitionSlot;
use crate::config::{CleanupPolicy, LogConfig};

use super::metadata::{self, TopicConfig, TopicMetadata};
use super::name::validate_topic_name;
use super::topic::Topic;

pub(super) const LOCK_FILE: &str = ".lock";
pub(super) const TOPICS_DIR: &str = crate::log::STORE_TOPICS_DIR;
pub(super) const META_SUFFIX: &str = ".meta";
pub(super) const DELETING_SUFFIX: &str = ".deleting";

/// Store-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Most partitions a topic may have. Default 10,000; at least 1. Each
    /// partition holds three open files and two mapped indexes.
    pub max_partitions: u32,
    /// Run retention on a background thread this often (milliseconds).
    /// Default `None`: only [`Store::enforce_retention`] runs it. At least 1.
    pub retention_check_interval_ms: Option<u64>,
    /// The internal consumer-offsets topic, when it is first created.
    /// Default: 4 partitions, 16 MiB segments, `Always` durability; its
    /// cleanup policy is always `Compact`.
    pub offsets_topic: TopicConfig,
    /// Most file descriptors the store's files hold at once (segment logs,
    /// indexes, checkpoints), each with at most one memory mapping: files
    /// of idle segments are closed, least recently used first, and opened
    /// again on demand (see `io::FilePool`). The store holds one more, for
    /// its lock. Default: [`default_max_open_files`], from the process's
    /// `RLIMIT_NOFILE` with headroom. At least 8.
    pub max_open_files: usize,
    /// Threads that open and close partitions (Kafka's
    /// `num.recovery.threads.per.data.dir`). Default 8 (opening is mostly
    /// waiting on the disk, closing on fsync); at least 1.
    pub num_recovery_threads_per_data_dir: usize,
}

/// The default [`StoreConfig::max_open_files`]: the soft `RLIMIT_NOFILE`
/// less a quarter of it (at least 64) for the rest of the process
/// (sockets, a broker's clients, the standard streams): 768 under the
/// usual limit of 1,024. 768 when the limit cannot be read.
pub fn default_max_open_files() -> usize {
    let soft = crate::io::open_file_limit().unwrap_or(1024);
    let soft = usize::try_from(soft).unwrap_or(usize::MAX).min(1 << 20);
    soft.saturating_sub((soft / 4).max(64)).max(MIN_OPEN_FILES)
}

/// The least [`StoreConfig::max_open_files`].
pub const MIN_OPEN_FILES: usize = 8;

impl Default for StoreConfig {
    fn default() -> Self {
        let log = LogConfig {
            segment_bytes: 16 << 20,
            segment_index_bytes: 1 << 20,
            durability: crate::config::Durability::Always,
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        };
        StoreConfig {
            max_partitions: 10_000,
            retention_check_interval_ms: None,
            offsets_topic: TopicConfig { partitions: 4, log },
            max_open_files: default_max_open_files(),
            num_recovery_threads_per_data_dir: 8,
        }
    }
}

/// What [`Store::describe_topic`] reports of a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition number.
    pub partition: u32,
    /// First offset.
    pub log_start_offset: u64,
    /// Next offset to be assigned.
    pub log_end_offset: u64,
    /// Bytes of log data.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
    /// Why the partition is offline (its open failed), if it is; the
    /// offsets, sizes and metrics are then 0 (the typed error:
    /// [`Topic::offline_partitions`]).
    pub offline: Option<String>,
    /// Its counters since the store opened it.
    pub metrics: crate::log::PartitionMetrics,
}

/// What [`Store::describe_topic`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Its configuration.
    pub config: TopicConfig,
    /// Each partition, in order.
    pub partitions: Vec<PartitionDescription>,
}

/// A data directory of topics. Cheap to clone and share between threads.
///
/// # Examples
///
/// ```
/// use annals::{Record, Store, StoreConfig, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), StoreConfig::default())?;
/// let orders = store.create_topic("orders", TopicConfig::with_partitions(3))?;
/// let appended = orders.append(&[Record::with_key("customer-7", "order placed")])?;
/// assert_eq!(appended[0].partition, annals::partition_for_key(b"customer-7", 3));
/// assert_eq!(store.list_topics(), ["orders"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
pub(super) struct StoreInner {
    fs: SharedFs,
    /// The same file system as `fs`: its handles' bounded descriptors.
    pool: FilePool,
    metrics: super::metrics::StoreCounters,
    clock: SharedClock,
    dir: PathBuf,
    config: StoreConfig,
    /// The data directory's lock, let go by `close`; every partition log
    /// shares it (its flock is released with the last of them).
    lock: Mutex<Option<Arc<StoreLock>>>,
    topics: RwLock<BTreeMap<String, Topic>>,
    /// Serializes metadata changes (create, delete, close); holds whether
    /// the store is closed.
    admin: Mutex<bool>,
    /// The same, for lookups that must not take `admin` (a delete holds it
    /// while it looks its topic up).
    closed: std::sync::atomic::AtomicBool,
    maintenance: Maintenance,
    /// Every partition's offset checkpoints (see `log/table.rs`).
    checkpoints: Arc<CheckpointTable>,
    /// Committed consumer offsets, rebuilt from the offsets topic at open.
    offsets: Mutex<OffsetTable>,
}

impl StoreInner {
    pub(super) fn topics_snapshot(&self) -> Vec<Topic> {
        self.topics.read().values().cloned().collect()
    }

    pub(super) fn pool_stats(&self) -> crate::io::PoolStats {
        self.pool.stats()
    }

    pub(super) fn counters(&self) -> &super::metrics::StoreCounters {
        &self.metrics
    }

    /// Runs `op` on every online partition; each error goes to `on_error`
    /// (with its topic and partition) and the others still run.
    fn each_log<R>(
        &self,
        op: impl Fn(&PartitionLog) -> Result<R>,
        mut on_ok: impl FnMut(R),
        mut on_error: impl FnMut(&str, u32, Error),
    ) {
        for topic in &self.topics_snapshot() {
            for (p, slot) in topic.slots().iter().enumerate() {
                let Some(log) = slot.online() else { continue };
                match op(log) {
                    Ok(r) => on_ok(r),
                    Err(e) => on_error(topic.name(), p as u32, e),
                }
            }
        }
    }

    /// `op` on every online partition, the reports summed with `add`.
    /// The first error, once every partition was tried.
    fn sum_over_logs<R: Default>(
        &self,
        op: impl Fn(&PartitionLog) -> Result<R>,
        add: impl Fn(&mut R, R),
    ) -> Result<R> {
        let mut report = R::default();
        let mut first_error = None;
        self.each_log(
            op,
            |r| add(&mut report, r),
            |_, _, e| {
                first_error.get_or_insert(e);
            },
        );
        first_error.map_or(Ok(report), Err)
    }

    pub(super) fn compact(&self) -> Result<CompactionReport> {
        self.sum_over_logs(PartitionLog::maybe_compact, CompactionReport::add)
    }

    pub(super) fn enforce_retention(&self) -> Result<RetentionReport> {
        self.sum_over_logs(PartitionLog::enforce_retention, RetentionReport::add)
    }

    /// One maintenance pass: retention, then compaction, on every
    /// partition. Every error is logged and counted, none stops the pass.
    pub(super) fn maintain(&self) {
        let _span = tracing::debug_span!("maintenance").entered();
        let report = |task: &'static str| {
            move |topic: &str, partition: u32, e: Error| {
                tracing::error!(task, topic, partition, error = %e, "maintenance failed on a partition");
                self.metrics.maintenance_error(format!("{task} {topic}-{partition}: {e}"));
            }
        };
        self.each_log(PartitionLog::enforce_retention, drop, report("retention"));
        self.each_log(PartitionLog::maybe_compact, drop, report("compaction"));
        // The points the pass moved (and the flushes since the last one)
        // reach the checkpoint table's file.
        if let Err(e) = self.checkpoints.persist() {
            tracing::error!(error = %e, "checkpoint table not written");
            self.metrics.maintenance_error(format!("checkpoints: {e}"));
        }
        self.metrics.maintenance_run();
    }
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        self.maintenance.stop();
        // A store dropped without `close`: its partitions close as they are
        // dropped (those no other handle holds, here), recording their points
        // in the table, which is then written (best effort: an older table
        // only costs longer scans).
        if !*self.admin.get_mut() {
            drop(std::mem::take(self.topics.get_mut()));
            let _ = self.checkpoints.persist();
        }
    }
}

impl Store {
    pub(super) fn inner(&self) -> &StoreInner {
        &self.inner
    }

    /// Opens (creating if needed) the store in `dir` on the real file system.
    ///
    /// # Errors
    /// [`crate::OpenError::StoreLocked`] when it is open elsewhere;
    /// [`crate::OpenError::InvalidMetadata`], [`crate::OpenError::UnexpectedFile`], or any error of
    /// opening a partition log.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Store> {
        Store::open_with(dir, config, OpenOptions::default())
    }

    /// Opens the store in `dir` through the options' file system, reading
    /// time from their clock (append timestamps, time-based roll and
    /// retention).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(dir: impl AsRef<Path>, config: StoreConfig, options: OpenOptions) -> Result<Store> {
        let (fs, clock) = (options.fs().clone(), options.clock().clone());
        if config.max_partitions == 0 {
            return Err(Error::config("max_partitions", "must be at least 1"));
        }
        if config.retention_check_interval_ms == Some(0) {
            return Err(Error::config("retention_check_interval_ms", "must be at least 1"));
        }
        if config.max_open_files < MIN_OPEN_FILES {
            return Err(Error::config("max_open_files", "must be at least 8"));
        }
        if config.num_recovery_threads_per_data_dir == 0 {
            return Err(Error::config("num_recovery_threads_per_data_dir", "must be at least 1"));
        }
        let _span = tracing::info_span!("open_store", dir = %dir.as_ref().display()).entered();
        let started = std::time::Instant::now();
        let pool = FilePool::new(fs, config.max_open_files);
        let fs: SharedFs = Arc::new(pool.clone());
        let dir = dir.as_ref().to_path_buf();
        crate::io::create_dir_all_durable(&*fs, &dir).map_err(Error::io("create data directory", &dir))?;
        let lock = lock_store(&*fs, &dir)?;
        let topics_dir = dir.join(TOPICS_DIR);
        crate::io::create_dir_all_durable(&*fs, &topics_dir)
            .map_err(Error::io("create topics directory", &topics_dir))?;
        let table = Arc::new(CheckpointTable::open(fs.clone(), &dir));
        let configs = load_topic_configs(&*fs, &dir, &table)?;
        check_partition_dirs(&*fs, &dir, &configs)?;
        let mut topics = BTreeMap::new();
        let threads = config.num_recovery_threads_per_data_dir;
        let cx = OpenContext { fs: &fs, clock: &clock, dir: &dir, lock: &lock, table: &table, threads };
        for (name, metadata) in configs {
            let topic = open_topic(&cx, &name, metadata, OnFailure::Offline)?;
            topics.insert(name, topic);
        }
        // ORDER: the rows read from partitions' own files (a store written
        // before the table) are durable in the table before those files go.
        table.persist()?;
        for log in topics.values().flat_map(Topic::logs) {
            log.remove_legacy_checkpoints()?;
        }
        // ORDER: every clean-shutdown marker's removal is durable before
        // the store is handed out (and anything appended).
        fs.sync_all(&dir).map_err(Error::io("sync the store's file system", &dir))?;
        let offline: usize = topics.values().map(|t| t.offline_partitions().len()).sum();
        let partitions: usize = topics.values().map(|t| t.partition_count() as usize).sum();
        tracing::info!(
            topics = topics.len(),
            partitions,
            offline,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );
        let interval = config.retention_check_interval_ms;
        let inner = StoreInner {
            fs,
            pool,
            metrics: super::metrics::StoreCounters::default(),
            clock,
            dir,
            config,
            lock: Mutex::new(Some(lock)),
            topics: RwLock::new(topics),
            admin: Mutex::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
            maintenance: Maintenance::default(),
            checkpoints: table,
            offsets: Mutex::new(OffsetTable::new()),
        };
        let store = Store { inner: Arc::new(inner) };
        let offsets_topic = match store.topic_internal(OFFSETS_TOPIC) {
            Ok(topic) => topic,
            Err(Error::Admin(AdminError::UnknownTopic { .. })) => {
                let mut config = store.inner.config.offsets_topic.clone();
                config.log.cleanup_policy = CleanupPolicy::Compact;
                store.create_topic_unchecked(OFFSETS_TOPIC, TopicMetadata { config, ..Default::default() })?
            }
            Err(e) => return Err(e),
        };
        *store.inner.offsets.lock() = load_offsets(&offsets_topic)?;
        if let Some(ms) = interval {
            store.inner.maintenance.start(Arc::downgrade(&store.inner), Duration::from_millis(ms));
        }
        Ok(store)
    }

    /// Runs retention on every partition now (see
    /// [`crate::PartitionLog::enforce_retention`]).
    ///
    /// # Errors
    /// The first error (every partition is still tried).
    pub fn enforce_retention(&self) -> Result<RetentionReport> {
        self.inner.enforce_retention()
    }

    /// Compacts every partition of every compacted topic whose dirty share
    /// reached its `min_cleanable_dirty_percent` (the maintenance thread
    /// does this too).
    ///
    /// # Errors
    /// The first error (every partition is still tried).
    pub fn compact(&self) -> Result<CompactionReport> {
        self.inner.compact()
    }

    /// Whether the background retention thread is running.
    pub fn maintenance_running(&self) -> bool {
        self.inner.maintenance.is_running()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Bytes of the internal consumer-offsets topic (all partitions).
    pub fn offsets_topic_size(&self) -> u64 {
        self.topic_internal(OFFSETS_TOPIC).map_or(0, |t| t.logs().map(|l| l.size_bytes()).sum())
    }

    /// Committed consumer-group offsets.
    pub fn offsets(&self) -> ConsumerOffsets {
        ConsumerOffsets { store: self.clone() }
    }

    pub(super) fn offset_table(&self) -> &Mutex<OffsetTable> {
        &self.inner.offsets
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// A topic by name, internal ones included.
    pub(super) fn topic_internal(&self, name: &str) -> Result<Topic> {
        if let Some(topic) = self.inner.topics.read().get(name) {
            return Ok(topic.clone());
        }
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        Err(Error::Admin(AdminError::UnknownTopic { topic: name.to_owned() }))
    }

    /// Creates a topic.
    ///
    /// # Errors
    /// [`crate::AdminError::InvalidTopicName`] (also for the reserved
    /// `__consumer_offsets`), [`crate::AdminError::InvalidPartitionCount`],
    /// [`Error::InvalidConfig`], [`crate::AdminError::TopicExists`], [`Error::Closed`],
    /// [`Error::Io`].
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<Topic> {
        self.create_topic_with_passthrough(name, config, BTreeMap::new())
    }

    /// Creates a topic that keeps `passthrough` with its metadata: settings
    /// by name that the engine stores verbatim and never acts on (a Kafka
    /// broker's accepted topic configs that change nothing on one node,
    /// such as `min.insync.replicas=1`), returned by
    /// [`Topic::passthrough_configs`] after every reopen.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use annals::{Store, StoreConfig, TopicConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), StoreConfig::default())?;
    /// let kept = BTreeMap::from([("min.insync.replicas".to_string(), "1".to_string())]);
    /// store.create_topic_with_passthrough("orders", TopicConfig::with_partitions(2), kept.clone())?;
    /// store.close()?;
    /// drop(store);
    /// let store = Store::open(dir.path(), StoreConfig::default())?;
    /// assert_eq!(store.topic("orders")?.passthrough_configs(), &kept);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::create_topic`]; [`Error::InvalidConfig`] for a name
    /// that is empty, longer than 255 bytes or holds `=` or a control
    /// character, a value with a line break, or settings that make the
    /// metadata file larger than 64 KiB.
    pub fn create_topic_with_passthrough(
        &self,
        name: &str,
        config: TopicConfig,
        passthrough: BTreeMap<String, String>,
    ) -> Result<Topic> {
        if name == OFFSETS_TOPIC {
            return Err(Error::Admin(AdminError::InvalidTopicName {
                topic: name.to_owned(),
                reason: "reserved for consumer offsets",
            }));
        }
        self.create_topic_unchecked(name, TopicMetadata { config, passthrough })
    }

    fn create_topic_unchecked(&self, name: &str, metadata: TopicMetadata) -> Result<Topic> {
        validate_topic_name(name)?;
        let config = &metadata.config;
        let max = self.inner.config.max_partitions;
        if config.partitions == 0 || config.partitions > max {
            return Err(Error::Admin(AdminError::InvalidPartitionCount {
                partitions: config.partitions,
                max,
            }));
        }
        config.log.validate()?;
        metadata::check_passthrough(&metadata.passthrough)?;
        let encoded = metadata::encode_with(&metadata);
        if encoded.len() as u64 > metadata::METADATA_BYTES_MAX {
            return Err(Error::config("passthrough", "the topic's metadata would pass 64 KiB"));
        }
        let closed = self.inner.admin.lock();
        if *closed {
            return Err(Error::Closed);
        }
        if self.inner.topics.read().contains_key(name) {
            return Err(Error::Admin(AdminError::TopicExists { topic: name.to_owned() }));
        }
        let (fs, dir) = (&self.inner.fs, &self.inner.dir);
        // ORDER: metadata first (atomic, durable), then the partition logs,
        // whose directories open creates; a crash in between leaves a topic
        // whose missing partitions the next open creates empty.
        let topics_dir = dir.join(TOPICS_DIR);
        let meta = format!("{name}{META_SUFFIX}");
        write_file_atomic(&**fs, &topics_dir, &meta, &encoded)
            .map_err(Error::io("write topic metadata", &topics_dir.join(&meta)))?;
        let lock = self.inner.lock.lock().clone().ok_or(Error::Closed)?;
        let threads = self.inner.config.num_recovery_threads_per_data_dir;
        let table = &self.inner.checkpoints;
        let cx = OpenContext { fs, clock: &self.inner.clock, dir, lock: &lock, table, threads };
        let topic = open_topic(&cx, name, metadata, OnFailure::Fail)?;
        fs.sync_dir(dir).map_err(Error::io("sync data directory", dir))?;
        self.inner.topics.write().insert(name.to_owned(), topic.clone());
        Ok(topic)
    }

    /// A handle to a topic.
    ///
    /// # Errors
    /// [`crate::AdminError::UnknownTopic`].
    pub fn topic(&self, name: &str) -> Result<Topic> {
        if name == OFFSETS_TOPIC {
            return Err(Error::Admin(AdminError::UnknownTopic { topic: name.to_owned() }));
        }
        self.topic_internal(name)
    }

    /// Names of all topics, sorted (the internal consumer-offsets topic is
    /// not listed).
    pub fn list_topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().filter(|n| *n != OFFSETS_TOPIC).cloned().collect()
    }

    /// A topic's configuration and each partition's offsets and size.
    ///
    /// # Errors
    /// [`crate::AdminError::UnknownTopic`].
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let topic = self.topic(name)?;
        let partitions = topic
            .slots()
            .iter()
            .enumerate()
            .map(|(i, slot)| match slot {
                PartitionSlot::Online(log) => PartitionDescription {
                    partition: i as u32,
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: log.log_end_offset(),
                    size_bytes: log.size_bytes(),
                    segments: log.segment_count(),
                    offline: None,
                    metrics: log.metrics(),
                },
                PartitionSlot::Offline(cause) => PartitionDescription {
                    partition: i as u32,
                    log_start_offset: 0,
                    log_end_offset: 0,
                    size_bytes: 0,
                    segments: 0,
                    offline: Some(cause.to_string()),
                    metrics: Default::default(),
                },
            })
            .collect();
        Ok(TopicDescription { name: name.to_owned(), config: topic.config().clone(), partitions })
    }

    /// Deletes a topic and its data. Handles to it fail with
    /// [`Error::Closed`] from then on.
    ///
    /// # Errors
    /// [`crate::AdminError::UnknownTopic`], [`Error::Closed`], [`Error::Io`].
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let closed = self.inner.admin.lock();
        if *closed {
            return Err(Error::Closed);
        }
        let topic = self.topic(name)?;
        let (fs, dir) = (&*self.inner.fs, &self.inner.dir);
        let topics_dir = dir.join(TOPICS_DIR);
        let meta = topics_dir.join(format!("{name}{META_SUFFIX}"));
        let deleting = topics_dir.join(format!("{name}{DELETING_SUFFIX}"));
        // ORDER: mark the delete durably first; from then on an open finishes
        // it instead of finding a topic with missing partitions.
        fs.rename(&meta, &deleting).map_err(Error::io("mark topic deleted", &meta))?;
        fs.sync_dir(&topics_dir).map_err(Error::io("sync topics directory", &topics_dir))?;
        self.inner.topics.write().remove(name);
        for log in topic.logs() {
            log.close()?;
        }
        finish_delete(fs, dir, name, topic.partition_count(), &self.inner.checkpoints)?;
        if let Some(lock) = self.inner.lock.lock().as_ref() {
            for p in 0..topic.partition_count() {
                lock.release(&dir.join(super::name::partition_dir_name(name, p)));
            }
        }
        Ok(())
    }

    /// Makes everything appended to every topic so far durable (a group
    /// fsync per partition, whatever its policy).
    ///
    /// # Errors
    /// The first error of flushing a partition (all are attempted).
    pub fn flush(&self) -> Result<()> {
        let topics: Vec<Topic> = self.inner.topics.read().values().cloned().collect();
        let mut first_error = None;
        for topic in topics {
            if let Err(e) = topic.flush() {
                first_error.get_or_insert(e);
            }
        }
        // The recovery points the flushes moved, so a crash now rescans
        // only what comes after this call. Not while a close runs (it holds
        // `admin`): its partitions record points before its syncfs makes
        // their bytes durable, and it writes the table itself after that.
        let admin = self.inner.admin.lock();
        if !*admin {
            if let Err(e) = self.inner.checkpoints.persist() {
                first_error.get_or_insert(e);
            }
        }
        drop(admin);
        first_error.map_or(Ok(()), Err)
    }

    /// Closes every partition cleanly (so the next open skips recovery
    /// scans). Later calls on this store or its handles fail with
    /// [`Error::Closed`]. The data directory is unlocked at once, and each
    /// partition directory once no handle to that partition is left, so
    /// the store can be opened again while this value lives.
    ///
    /// # Errors
    /// The first error of closing a partition (the others are still closed).
    pub fn close(&self) -> Result<()> {
        self.inner.maintenance.stop();
        let mut closed = self.inner.admin.lock();
        if *closed {
            return Ok(());
        }
        *closed = true;
        self.inner.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut first_error = None;
        // The store lets go of its partitions (each unlocks its directory
        // once the last handle to it is dropped) and then of the data
        // directory, so the directory can be opened again while this value
        // lives on.
        let topics = std::mem::take(&mut *self.inner.topics.write());
        let _span = tracing::info_span!("close_store", dir = %self.inner.dir.display()).entered();
        let started = std::time::Instant::now();
        let logs: Vec<&Arc<PartitionLog>> = topics.values().flat_map(|t| t.logs()).collect();
        let threads = self.inner.config.num_recovery_threads_per_data_dir;
        // ORDER: no writer is left (each append in flight finishes), so
        // nothing is acknowledged from here on; every partition seals and
        // records its points without an fsync; one syncfs makes all of it
        // durable; then the checkpoint table (whose recovery points now
        // cover durable bytes) is written, the markers go down (unsynced),
        // and a second syncfs makes them durable. A crash before the first
        // leaves unclean logs that recover; the markers never precede their
        // data.
        let closing: Vec<bool> = logs.iter().map(|log| log.close_writes()).collect();
        let sealed = super::parallel::run(logs.len(), threads, |i| {
            if !closing[i] {
                return Ok(());
            }
            logs[i].close_checkpoints_unsynced()
        });
        let sealed_at = started.elapsed();
        let mut marked = Vec::with_capacity(logs.len());
        for (i, result) in sealed.into_iter().enumerate() {
            match result {
                Ok(_) if closing[i] => marked.push(logs[i]),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "partition did not close cleanly; the next open recovers it");
                    first_error.get_or_insert(e);
                }
            }
        }
        let dir = &self.inner.dir;
        let mut synced_at = None;
        match self.inner.fs.sync_all(dir) {
            Ok(()) => {
                synced_at = Some(started.elapsed());
                if let Err(e) = self.inner.checkpoints.persist() {
                    // Older points only cost the next open longer scans.
                    tracing::error!(error = %e, "checkpoint table not written at close");
                    first_error.get_or_insert(e);
                }
                let markers =
                    super::parallel::run(marked.len(), threads, |i| marked[i].write_clean_marker(false));
                for e in markers.into_iter().filter_map(Result::err) {
                    first_error.get_or_insert(e);
                }
                if let Err(e) = self.inner.fs.sync_all(dir) {
                    first_error.get_or_insert(Error::io("sync the store's file system", dir)(e));
                }
            }
            Err(e) => {
                // No marker: every partition recovers at the next open.
                let e = Error::io("sync the store's file system", dir)(e);
                tracing::error!(error = %e, "store close could not sync; no partition is marked clean");
                first_error.get_or_insert(e);
            }
        }
        tracing::info!(
            partitions = logs.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            sealed_ms = sealed_at.as_millis() as u64,
            synced_ms = synced_at.map(|t| t.as_millis() as u64),
            "store closed"
        );
        drop(logs);
        drop(topics);
        self.inner.lock.lock().take();
        first_error.map_or(Ok(()), Err)
    }
}
