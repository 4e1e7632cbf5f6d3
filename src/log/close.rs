//! Closing cleanly: seal, checkpoint, leave the clean-shutdown marker.

use crate::error::{Error, Result};
use crate::io::OpenMode;

use super::open::CLEAN_SHUTDOWN_FILE;
use super::partition::{PartitionLog, Writer};
use super::points::{end_point, SyncMode};

impl PartitionLog {
    /// Closes cleanly: seals the active segment's index, syncs, and leaves
    /// the clean-shutdown marker so the next open skips the full scan. Later
    /// appends fail with [`Error::Closed`]; reads still work. Closing twice
    /// does nothing. The directory stays locked until the handle is dropped
    /// (its files stay open and mapped for those reads), so reopen after
    /// `drop`, not just after `close`.
    ///
    /// # Errors
    /// [`Error::Io`]; the log is then left to be recovered at the next open.
    pub fn close(&self) -> Result<()> {
        let mut writer = self.writer.lock();
        if writer.closed {
            return Ok(());
        }
        writer.closed = true;
        self.points.syncer().close();
        self.shutdown(&writer)
    }

    /// The first step of a store's close: later appends fail with
    /// [`Error::Closed`] (an append in flight finishes first). False when
    /// the log was closed already.
    pub(crate) fn close_writes(&self) -> bool {
        let mut writer = self.writer.lock();
        self.points.syncer().close();
        !std::mem::replace(&mut writer.closed, true)
    }

    /// The second: seal and checkpoints, everything but the marker (see
    /// [`PartitionLog::close_writes`]), none of it fsynced: the store syncs
    /// its file system once for all its partitions, then writes its table
    /// (where the points are recorded) and the markers.
    pub(crate) fn close_checkpoints_unsynced(&self) -> Result<()> {
        let writer = self.writer.lock();
        self.seal_and_checkpoint(&writer, SyncMode::Deferred).map(drop)
    }

    /// The last: the clean-shutdown marker, synced (with the directory)
    /// when `sync` is set.
    pub(crate) fn write_clean_marker(&self, sync: bool) -> Result<()> {
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let file = self
            .fs
            .open(&marker, OpenMode::Create)
            .map_err(Error::io("write clean-shutdown marker", &marker))?;
        file.set_len(0).map_err(Error::io("write clean-shutdown marker", &marker))?;
        if sync {
            file.sync_data().map_err(Error::io("sync clean-shutdown marker", &marker))?;
            self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))?;
        }
        Ok(())
    }

    /// Drops the handle as a killed process would leave the log: no seal,
    /// no checkpoint, no clean-shutdown marker, the write buffer's bytes
    /// never written; open files and the directory lock are released. For
    /// crash tests.
    #[cfg(any(test, feature = "test-util"))]
    pub fn abandon(self) {
        let mut writer = self.writer.lock();
        self.active().discard_buffered();
        writer.closed = true;
    }

    fn shutdown(&self, writer: &Writer) -> Result<()> {
        let sync = self.seal_and_checkpoint(writer, SyncMode::Now)?;
        self.write_clean_marker(sync)
    }

    /// Seals the active segment and records the checkpoints a clean open
    /// relies on; returns whether any of it had to be synced. ORDER: data
    /// and index durable, then the recovery point, before the marker
    /// (`Deferred`: the caller makes all of it durable before the marker).
    fn seal_and_checkpoint(&self, writer: &Writer, mode: SyncMode) -> Result<bool> {
        // A poisoned log must not claim a clean shutdown: its next open
        // has to run recovery.
        self.points.syncer().check(&self.dir)?;
        let active = self.active();
        if !self.counters.unsynced() {
            // Nothing changed since a clean open or the last flush: every
            // byte and checkpoint the marker vouches for is durable already
            // (the producer snapshot may be older: open replays the batches
            // after it). The marker itself need not be: without it the next
            // open only scans the active segment from the recovery point.
            active.seal_unsynced(&writer.indexing)?;
            return Ok(false);
        }
        // Counted as one fsync either way (`Deferred`: the caller's syncfs
        // does it).
        self.counters.fsync(|| match mode {
            SyncMode::Now => active.seal(&writer.indexing),
            SyncMode::Deferred => active.seal_unsynced(&writer.indexing),
        })?;
        // A store's partition only records it (in its table's row).
        self.set_recovery_point(writer, end_point(&active), mode)?;
        self.record_high_watermark(false)?;
        // A store's partitions rewrite the snapshot in place (see `write_as`):
        // a file created per partition per close was most of a store's close.
        let in_place = self.points.in_stores_table();
        writer.producers.write_as(&*self.fs, &self.dir, active.next_offset(), in_place, mode)?;
        Ok(true)
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        let writer = self.writer.get_mut();
        if !writer.closed {
            writer.closed = true;
            let writer = self.writer.lock();
            // Best effort; on failure the next open recovers by scanning,
            // and nothing still buffered may be written after the
            // directory lock is released (as a killed process would).
            if self.shutdown(&writer).is_err() {
                self.active().discard_buffered();
            }
        }
    }
}
