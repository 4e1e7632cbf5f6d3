//! annals: an embeddable storage engine for partitioned commit logs.
//!
//! A partition is an ordered log of records with dense offsets, stored as
//! append-only segment files (`{base_offset:020}.log`) with sparse,
//! memory-mapped offset indexes (`.index`), in the layout Kafka users know.
//!
//! Layers, each depending only on those before it:
//! [`format`](mod@format) (pure encoding) → [`io`] (the only file-system seam) →
//! `segment` (private; read through [`inspect`]) → [`log`] (one partition) →
//! [`store`] (topics, partitions, consumers). See docs/ARCHITECTURE.md.
//!
//! # The public surface
//!
//! - A store: [`Store`], [`StoreConfig`], [`Topic`], [`TopicConfig`],
//!   [`Partition`] (which derefs to its [`PartitionLog`]), [`Reader`],
//!   [`StartAt`], [`ConsumerOffsets`], [`partition_for_key`] / [`murmur2`].
//! - One partition: [`PartitionLog`], opened with a [`LogConfig`] and
//!   [`OpenOptions`]; appends ([`Record`]s, producer batches with
//!   [`ProduceMeta`], a leader's batches), `read(offset, max_bytes,`
//!   [`ReadBound`]`)`, `wait_for` / `wait_for_async` ([`WaitForOffset`]),
//!   truncation, retention, compaction, repair, and what they report.
//! - Kafka's bytes: [`format`](mod@format) (RecordBatch v2 encode, check and decode,
//!   [`FetchedRecords`], the producer-batch validator, codecs).
//! - The file-system seam: [`io`] (`FileSystem`, `FileHandle`, whose
//!   `map` and `map_for_reads` are `unsafe fn`s, `StdFileSystem`,
//!   `FilePool`; `io::sim` with feature `test-util`).
//! - Read-only tools: [`inspect`]. Errors: the umbrella [`Error`] (what
//!   any call can meet, and [`Corruption`]), over one enum per surface:
//!   [`OpenError`], [`AppendError`], [`AdminError`].
//!   Time: [`clock`]. With feature `openraft`: `raft`.
//!
//! Nothing public can create, map or truncate a segment file.
//!
//! # Examples
//!
//! ```
//! use annals::{LogConfig, PartitionLog, ReadBound, Record};
//!
//! let dir = tempfile::tempdir()?;
//! let log = PartitionLog::open(dir.path().join("orders-0"), LogConfig::default())?;
//! log.append(&[Record::with_key("order-1", "created"), Record::with_key("order-1", "paid")])?;
//! log.close()?;
//! drop(log); // the handle keeps its directory locked until it is dropped
//!
//! let log = PartitionLog::open(dir.path().join("orders-0"), LogConfig::default())?;
//! assert_eq!(log.log_end_offset(), 2);
//! let values: Vec<_> = log.read(0, 1 << 20, ReadBound::LogEnd)?.records().map(|r| r.value.unwrap().to_vec()).collect();
//! assert_eq!(values, [b"created".to_vec(), b"paid".to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod clock;
pub mod config;
pub mod error;
pub mod format;
pub mod inspect;
pub mod io;
pub mod log;
#[doc(hidden)]
pub mod mutation;
#[cfg(feature = "openraft")]
pub mod raft;
pub(crate) mod segment;
pub mod store;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use config::{CleanupPolicy, CompressionType, Durability, LogConfig, TimestampType};

/// The README's example runs as a doc test, so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use error::{AdminError, AppendError, Corruption, Error, OpenError, Result};
pub use format::{BatchMeta, BatchProblem, FetchedRecords, Header, Record, RecordView, StoredRecord};
pub use log::{
    AcceptDataLoss, AppendInfo, CompactionReport, Completion, LatencyHistogram, OpenOptions, PartitionLog,
    PartitionMetrics, ProduceMeta, RecoveryReport, RepairReport, RetentionReport, WaitForOffset, Written,
};
pub use store::{
    murmur2, partition_for_key, validate_topic_name, ConsumerOffsets, Partition, PartitionAppend,
    PartitionDescription, ReadBound, Reader, StartAt, Store, StoreConfig, StoreMetrics, Topic, TopicConfig,
    TopicDescription, OFFSETS_TOPIC,
};
