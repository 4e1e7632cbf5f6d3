//! The partition's segments and the offsets that bound them (Kafka's
//! `LocalLog` with its `LogSegments`): the segment map, the log start and
//! end offsets, and the lock that keeps readers out of bytes a truncation
//! cuts. Readers take snapshots and loads; every change needs the writer
//! (`&Writer`, which only the writer mutex's guard gives).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::segment::LogSegment;

use super::partition::Writer;

/// By base offset.
pub(super) type SegmentMap = BTreeMap<u64, Arc<LogSegment>>;

/// See the module docs.
#[derive(Debug)]
pub(super) struct Segments {
    /// Never empty; the last one is active. Replaced whole (copy on write)
    /// by roll, truncation, retention and compaction's swap; readers clone
    /// the `Arc`.
    map: RwLock<Arc<SegmentMap>>,
    /// The checkpointed log start offset (raised by retention and
    /// `delete_records_before`, never lowered); the first segment's base
    /// offset bounds the log start from below too.
    log_start_offset: AtomicU64,
    /// Published after a batch is fully written (`SeqCst`: see `notify`).
    log_end_offset: AtomicU64,
    /// Readers share it; a truncation takes it alone, so no reader is
    /// inside a segment while its bytes are cut or rewritten.
    truncation: RwLock<()>,
}

impl Segments {
    pub(super) fn new(map: SegmentMap, log_start_offset: u64, log_end_offset: u64) -> Self {
        Segments {
            map: RwLock::new(Arc::new(map)),
            log_start_offset: AtomicU64::new(log_start_offset),
            log_end_offset: AtomicU64::new(log_end_offset),
            truncation: RwLock::new(()),
        }
    }

    /// The segments now.
    pub(super) fn snapshot(&self) -> Arc<SegmentMap> {
        self.map.read().clone()
    }

    /// The active (last) segment.
    pub(super) fn active(&self) -> Arc<LogSegment> {
        self.map.read().values().next_back().cloned().expect("a log always has a segment")
    }

    /// The first offset in the log: the checkpointed log start, at least
    /// the first segment's base, at most the log end.
    pub(super) fn log_start_offset(&self) -> u64 {
        let first_base = self.snapshot().keys().next().copied().unwrap_or(0);
        first_base.max(self.checkpointed_log_start()).min(self.log_end_offset())
    }

    /// The log start offset as last checkpointed (it may lie above the log
    /// end after data past the checkpoint was lost; open repairs that).
    pub(super) fn checkpointed_log_start(&self) -> u64 {
        self.log_start_offset.load(Ordering::SeqCst)
    }

    /// The offset the next append gets.
    pub(super) fn log_end_offset(&self) -> u64 {
        self.log_end_offset.load(Ordering::SeqCst)
    }

    /// A reader's share of the truncation lock.
    pub(super) fn readers(&self) -> RwLockReadGuard<'_, ()> {
        self.truncation.read()
    }

    /// Keeps readers out (a truncation cutting bytes).
    pub(super) fn exclude_readers(&self, _writer: &Writer) -> RwLockWriteGuard<'_, ()> {
        self.truncation.write()
    }

    /// Replaces the segment map (after a roll, a truncation, retention or a
    /// compaction's swap).
    pub(super) fn replace(&self, _writer: &Writer, map: SegmentMap) {
        *self.map.write() = Arc::new(map);
    }

    /// Publishes a new log end offset: bytes below it are written.
    pub(super) fn publish_end(&self, _writer: &Writer, offset: u64) {
        self.log_end_offset.store(offset, Ordering::SeqCst);
    }

    /// Raises the log start offset (checkpointed by the caller first).
    pub(super) fn raise_log_start(&self, _writer: &Writer, offset: u64) {
        self.log_start_offset.fetch_max(offset, Ordering::SeqCst);
    }
}
