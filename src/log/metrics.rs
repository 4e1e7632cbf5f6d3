//! What a partition log counts as it works, and the snapshot
//! [`PartitionLog::metrics`](crate::PartitionLog::metrics) reads off it: relaxed atomics on the paths
//! they count (an append adds four), read without a lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::error::Result;

/// Buckets of [`LatencyHistogram`]: bucket `i` counts latencies below
/// `2^i` microseconds (the last one everything longer).
pub const LATENCY_BUCKETS: usize = 24;

/// A log2 histogram of latencies in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// `counts[i]`: how many took less than `2^i` µs (and at least
    /// `2^(i-1)`); the last bucket also holds everything longer.
    pub counts: [u64; LATENCY_BUCKETS],
}

impl LatencyHistogram {
    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// An upper bound (µs) on the `q` quantile (0.0..=1.0), if any were
    /// recorded.
    pub fn quantile_upper_us(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(1u64 << i);
            }
        }
        Some(1u64 << (LATENCY_BUCKETS - 1))
    }
}

/// A partition's counters since it was opened.
#[derive(Debug, Default)]
pub(crate) struct LogCounters {
    appends: AtomicU64,
    writes: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    fsyncs: AtomicU64,
    fsync_us: [AtomicU64; LATENCY_BUCKETS],
    rolls: AtomicU64,
    segments_deleted: AtomicU64,
    bytes_deleted: AtomicU64,
    /// Something changed that is not yet durable (an append, roll,
    /// deletion or truncation since the open or the last flush): a clean
    /// close of a log without it needs no fsync.
    unsynced: AtomicBool,
}

impl LogCounters {
    /// One append call written (its batches may share a write with
    /// others': see `combine.rs`).
    pub(crate) fn appended(&self) {
        self.appends.fetch_add(1, Ordering::Relaxed);
    }

    /// One write of log data: `records` in `bytes`.
    pub(crate) fn wrote(&self, records: u64, bytes: u64) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.changed();
    }

    pub(crate) fn rolled(&self) {
        self.rolls.fetch_add(1, Ordering::Relaxed);
        self.changed();
    }

    pub(crate) fn deleted(&self, segments: u64, bytes: u64) {
        self.segments_deleted.fetch_add(segments, Ordering::Relaxed);
        self.bytes_deleted.fetch_add(bytes, Ordering::Relaxed);
        self.changed();
    }

    /// Marks state that a clean close has to make durable.
    pub(crate) fn changed(&self) {
        if !self.unsynced.load(Ordering::Relaxed) {
            self.unsynced.store(true, Ordering::Release);
        }
    }

    /// Clears the mark before a flush makes everything so far durable
    /// (ORDER: cleared first, so a change during the flush sets it again).
    pub(crate) fn flushing(&self) {
        self.unsynced.store(false, Ordering::Release);
    }

    /// Whether anything changed since the open or the last flush.
    pub(crate) fn unsynced(&self) -> bool {
        self.unsynced.load(Ordering::Acquire)
    }

    /// Runs `sync` (an fsync, or a seal that fsyncs), counting it and its
    /// latency.
    pub(crate) fn fsync<T>(&self, sync: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let out = sync();
        let us = started.elapsed().as_micros() as u64;
        let bucket = (u64::BITS - us.leading_zeros()) as usize;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_us[bucket.min(LATENCY_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        out
    }
}

/// A snapshot of one partition: cheap enough to poll (atomics and one
/// segment-map clone, no I/O).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// First offset.
    pub log_start_offset: u64,
    /// Next offset to be assigned.
    pub log_end_offset: u64,
    /// Offsets below this are durable.
    pub durable_offset: u64,
    /// Bytes of log data.
    pub size_bytes: u64,
    /// Segments.
    pub segments: usize,
    /// Append calls that wrote (batches of records or producer requests).
    pub appends: u64,
    /// Writes of log data they took: fewer than `appends` when concurrent
    /// appends were combined into one write, more when one spanned a roll.
    pub writes: u64,
    /// Records appended.
    pub records_appended: u64,
    /// Bytes appended.
    pub bytes_appended: u64,
    /// fsyncs of log data (group commits, flushes, seals).
    pub fsyncs: u64,
    /// Their latencies.
    pub fsync_latency: LatencyHistogram,
    /// Segments rolled.
    pub rolls: u64,
    /// Segments deleted (retention, `delete_records_before`).
    pub segments_deleted: u64,
    /// Bytes in them.
    pub bytes_deleted: u64,
    /// Whether a change since the open or the last flush is not yet
    /// durable.
    pub unsynced: bool,
}

impl LogCounters {
    /// What [`PartitionLog::metrics`](crate::PartitionLog::metrics) reports of the counters; the offsets
    /// and sizes are the log's to fill in (0 here).
    pub(super) fn snapshot(&self) -> PartitionMetrics {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut fsync_latency = LatencyHistogram::default();
        for (out, a) in fsync_latency.counts.iter_mut().zip(&self.fsync_us) {
            *out = load(a);
        }
        PartitionMetrics {
            log_start_offset: 0,
            log_end_offset: 0,
            durable_offset: 0,
            size_bytes: 0,
            segments: 0,
            appends: load(&self.appends),
            writes: load(&self.writes),
            records_appended: load(&self.records),
            bytes_appended: load(&self.bytes),
            fsyncs: load(&self.fsyncs),
            fsync_latency,
            rolls: load(&self.rolls),
            segments_deleted: load(&self.segments_deleted),
            bytes_deleted: load(&self.bytes_deleted),
            unsynced: self.unsynced(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let c = LogCounters::default();
        for _ in 0..3 {
            c.fsync(|| Ok(())).unwrap();
        }
        let mut h = LatencyHistogram::default();
        for (o, a) in h.counts.iter_mut().zip(&c.fsync_us) {
            *o = a.load(Ordering::Relaxed);
        }
        assert_eq!(h.count(), 3);
        let mut h = LatencyHistogram::default();
        h.counts[3] = 9; // under 8 us
        h.counts[10] = 1; // under 1024 us
        assert_eq!(h.quantile_upper_us(0.5), Some(8));
        assert_eq!(h.quantile_upper_us(0.9), Some(8));
        assert_eq!(h.quantile_upper_us(1.0), Some(1024));
        assert_eq!(LatencyHistogram::default().quantile_upper_us(0.5), None);
    }
}
