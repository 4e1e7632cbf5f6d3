//! Closing cleanly: seal, checkpoint, leave the clean-shutdown marker.

use crate::error::{Error, Result};
use crate::io::OpenMode;

use super::open::CLEAN_SHUTDOWN_FILE;
use super::partition::{PartitionLog, Writer};
use super::points::end_point;

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
        self.syncer.close();
        self.shutdown(&writer)
    }

    /// The first step of a store's close: later appends fail with
    /// [`Error::Closed`] (an append in flight finishes first). False when
    /// the log was closed already.
    pub(crate) fn close_writes(&self) -> bool {
        let mut writer = self.writer.lock();
        self.syncer.close();
        !std::mem::replace(&mut writer.closed, true)
    }

    /// The second: seal and checkpoints, everything but the marker (see
    /// [`PartitionLog::close_writes`]).
    pub(crate) fn close_checkpoints(&self) -> Result<()> {
        let writer = self.writer.lock();
        self.seal_and_checkpoint(&writer, false).map(drop)
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
    /// no checkpoint, no clean-shutdown marker; open files and the
    /// directory lock are released. For crash tests.
    #[cfg(any(test, feature = "test-util"))]
    pub fn abandon(self) {
        self.writer.lock().closed = true;
    }

    fn shutdown(&self, writer: &Writer) -> Result<()> {
        let sync = self.seal_and_checkpoint(writer, true)?;
        self.write_clean_marker(sync)
    }

    /// Seals the active segment and writes the checkpoints a clean open
    /// relies on; returns whether any of it had to be synced. ORDER: data
    /// and index durable, then the recovery point, before the marker.
    /// Without `recovery_point` (a store's close) the recovery point is not
    /// rewritten: see below.
    fn seal_and_checkpoint(&self, writer: &Writer, recovery_point: bool) -> Result<bool> {
        // A poisoned log must not claim a clean shutdown: its next open
        // has to run recovery.
        self.syncer.check(&self.dir)?;
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
        self.counters.fsync(|| active.seal(&writer.indexing))?;
        if recovery_point {
            self.set_recovery_point(writer, end_point(&active))?;
        } else {
            // A store's close: the marker makes the next open trust every
            // segment, so the recovery point is not rewritten (a file
            // created per partition per close, most of a 10,000-partition
            // close; should the marker be lost, an older point only means a
            // longer scan). The synced extent, written in place, is raised,
            // so damage to these bytes is refused, never cut.
            self.raise_extent(writer, end_point(&active))?;
        }
        self.checkpoint_high_watermark()?;
        // A store's close rewrites the snapshot in place (see `write_as`).
        writer.producers.write_as(&*self.fs, &self.dir, active.next_offset(), !recovery_point)?;
        Ok(true)
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        let writer = self.writer.get_mut();
        if !writer.closed {
            writer.closed = true;
            let writer = self.writer.lock();
            // Best effort; on failure the next open recovers by scanning.
            let _ = self.shutdown(&writer);
        }
    }
}
