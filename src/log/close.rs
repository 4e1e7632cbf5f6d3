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
        self.shutdown(&writer)
    }

    /// Drops the handle as a killed process would leave the log: no seal,
    /// no checkpoint, no clean-shutdown marker; open files and the
    /// directory lock are released. For crash tests.
    #[cfg(any(test, feature = "test-util"))]
    pub fn abandon(self) {
        self.writer.lock().closed = true;
    }

    fn shutdown(&self, writer: &Writer) -> Result<()> {
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
            active.seal_unsynced()?;
            return self
                .fs
                .open(&self.dir.join(CLEAN_SHUTDOWN_FILE), OpenMode::Create)
                .map(drop)
                .map_err(Error::io("write clean-shutdown marker", &self.dir.join(CLEAN_SHUTDOWN_FILE)));
        }
        // ORDER: data and index durable, recovery point, the marker, then the
        // directory.
        self.counters.fsync(|| active.seal())?;
        self.set_recovery_point(end_point(&active))?;
        self.checkpoint_high_watermark()?;
        writer.producers.write(&*self.fs, &self.dir, active.next_offset())?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let file = self
            .fs
            .open(&marker, OpenMode::Create)
            .map_err(Error::io("write clean-shutdown marker", &marker))?;
        file.sync_data().map_err(Error::io("sync clean-shutdown marker", &marker))?;
        self.fs.sync_dir(&self.dir).map_err(Error::io("sync directory", &self.dir))
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
