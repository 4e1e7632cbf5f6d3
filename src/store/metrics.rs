//! Store-wide metrics: the file pool's gauges, the partitions' counters
//! summed, and what the maintenance thread did (its errors included: it
//! logs and counts every one, and keeps going).

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::io::PoolStats;
use crate::log::LatencyHistogram;

use super::store::Store;

/// What the maintenance thread has done since the store opened.
#[derive(Debug, Default)]
pub(super) struct StoreCounters {
    maintenance_runs: AtomicU64,
    maintenance_errors: AtomicU64,
    last_maintenance_error: Mutex<Option<String>>,
}

impl StoreCounters {
    pub(super) fn maintenance_run(&self) {
        self.maintenance_runs.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn maintenance_error(&self, what: String) {
        self.maintenance_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_maintenance_error.lock() = Some(what);
    }
}

/// A snapshot of the whole store (see [`Store::metrics`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreMetrics {
    /// Topics, the internal offsets topic among them.
    pub topics: usize,
    /// Partitions, online and offline.
    pub partitions: usize,
    /// Partitions whose open failed.
    pub offline_partitions: usize,
    /// Bytes of log data.
    pub size_bytes: u64,
    /// Segments.
    pub segments: usize,
    /// Records appended since the open.
    pub records_appended: u64,
    /// Bytes appended since the open.
    pub bytes_appended: u64,
    /// fsyncs of log data since the open.
    pub fsyncs: u64,
    /// Their latencies, all partitions together.
    pub fsync_latency: LatencyHistogram,
    /// The file pool: descriptors and mappings held now, at most, opened
    /// and evicted.
    pub files: PoolStats,
    /// Maintenance passes finished.
    pub maintenance_runs: u64,
    /// Partition errors the maintenance thread met (each also logged).
    pub maintenance_errors: u64,
    /// The last of them.
    pub last_maintenance_error: Option<String>,
}

impl Store {
    /// The store's metrics now. Cheap enough to poll: atomics per
    /// partition, no I/O.
    pub fn metrics(&self) -> StoreMetrics {
        let inner = self.inner();
        let topics = inner.topics_snapshot();
        let mut m =
            StoreMetrics { topics: topics.len(), files: inner.pool_stats(), ..StoreMetrics::default() };
        for topic in &topics {
            m.partitions += topic.partition_count() as usize;
            m.offline_partitions += topic.offline_partitions().len();
            for log in topic.logs() {
                let p = log.metrics();
                m.size_bytes += p.size_bytes;
                m.segments += p.segments;
                m.records_appended += p.records_appended;
                m.bytes_appended += p.bytes_appended;
                m.fsyncs += p.fsyncs;
                for (sum, c) in m.fsync_latency.counts.iter_mut().zip(p.fsync_latency.counts) {
                    *sum += c;
                }
            }
        }
        let c = inner.counters();
        m.maintenance_runs = c.maintenance_runs.load(Ordering::Relaxed);
        m.maintenance_errors = c.maintenance_errors.load(Ordering::Relaxed);
        m.last_maintenance_error = c.last_maintenance_error.lock().clone();
        m
    }
}
