//! Where a log keeps its offset checkpoints (recovery point, log start
//! offset, cleaner offset, high watermark): its own files, or its row of a
//! store's table.
//!
//! A checkpoint on disk may lag behind the log, never lead it into another
//! history: recovery starts scanning at the recovery point it reads, and
//! takes the log start as the larger of the one it reads and the first
//! segment's base. So in a table, whose file is rewritten whole:
//!
//! - a recovery point going up, a cleaner offset and a high watermark move
//!   in memory and reach the file with the table (an older one costs a
//!   longer scan or a longer clean);
//! - a recovery point coming down (a truncation, a restart) is persisted at
//!   once, before anything is appended after the cut: a point left above
//!   it would later fall inside new batches and start recovery mid-batch;
//! - a log start offset is persisted at once unless it is a segment's base
//!   offset (retention): then deleting the segments below it gives it back
//!   after a crash, while one inside a segment (`delete_records`, which a
//!   client is answered for) has only the checkpoint to keep it.
//!
//! A log's own files are each rewritten atomically whenever their point
//! moves, as before the table (`checkpoint.rs`).

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::FileSystem;

use super::checkpoint::{self, LogPoint};
use super::table::{CheckpointTable, Row};

/// A partition's row key in a store's table: its directory's name.
fn row_key(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A log's checkpoint sink, chosen at open.
#[derive(Clone, Debug)]
pub(crate) enum CheckpointSink {
    /// A log opened alone outside a store: files in its own directory.
    Own,
    /// A store's partition: row `key` (its directory's name) of the store's
    /// table. `write_through` when the log was opened alone (no store
    /// writes the table for it): every move is persisted at once, as its
    /// own files would be.
    Table { table: Arc<CheckpointTable>, key: String, write_through: bool },
}

/// The checkpoints a log opens with, and whether they came from files a
/// table has since replaced (removed once the table holds them).
pub(crate) struct Loaded {
    pub row: Row,
    pub legacy: bool,
}

impl CheckpointSink {
    /// The row a store keeps for partition directory `dir`.
    pub(crate) fn table(table: Arc<CheckpointTable>, dir: &Path) -> Self {
        CheckpointSink::Table { table, key: row_key(dir), write_through: false }
    }

    /// The row of partition directory `dir` of a store's table, for a log
    /// opened alone under the store's lock: written through.
    pub(crate) fn table_alone(table: Arc<CheckpointTable>, dir: &Path) -> Self {
        CheckpointSink::Table { table, key: row_key(dir), write_through: true }
    }

    /// Whether this is a row that a store writes (not the log itself).
    pub(crate) fn is_stores_row(&self) -> bool {
        matches!(self, CheckpointSink::Table { write_through: false, .. })
    }

    /// For a log opened alone on a store's table: writes the table (what
    /// the open moved into its row) and answers true; false otherwise.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn persist_alone(&self) -> Result<bool> {
        match self {
            CheckpointSink::Table { table, write_through: true, .. } => table.persist().map(|()| true),
            _ => Ok(false),
        }
    }

    /// What the log in `dir` opens with. A table without the partition's row
    /// (a store written before the table, or a new partition) falls back to
    /// the partition's files, and takes their values as its row.
    pub(crate) fn load(&self, fs: &dyn FileSystem, dir: &Path) -> Loaded {
        if let CheckpointSink::Table { table, key, .. } = self {
            if let Some(row) = table.row(key) {
                return Loaded { row, legacy: false };
            }
        }
        let row = Row {
            recovery_point: checkpoint::read(fs, dir),
            log_start: checkpoint::read_log_start(fs, dir),
            cleaner_offset: checkpoint::read_cleaner_offset(fs, dir),
            high_watermark: checkpoint::read_high_watermark(fs, dir),
        };
        let legacy = row != Row::default();
        if let CheckpointSink::Table { table, key, .. } = self {
            table.update(key, |r| *r = row);
        }
        Loaded { row, legacy }
    }

    /// Records recovery point `point`; `lowered` when it is below the last
    /// one recorded.
    pub(crate) fn recovery_point(
        &self,
        fs: &dyn FileSystem,
        dir: &Path,
        point: LogPoint,
        lowered: bool,
    ) -> Result<()> {
        self.record(|| checkpoint::write(fs, dir, point), |r| r.recovery_point = Some(point), lowered)
    }

    /// Records log start offset `offset`; `at_segment_base` when a segment
    /// starts there (see the module docs). The negative control's defect
    /// (`LazyLogStart`) treats every log start as a segment base.
    pub(crate) fn log_start(
        &self,
        fs: &dyn FileSystem,
        dir: &Path,
        offset: u64,
        at_segment_base: bool,
    ) -> Result<()> {
        let lazy = at_segment_base || crate::mutation::on(crate::mutation::Mutation::LazyLogStart);
        self.record(|| checkpoint::write_log_start(fs, dir, offset), |r| r.log_start = offset, !lazy)
    }

    /// Records the first offset not yet cleaned.
    pub(crate) fn cleaner_offset(&self, fs: &dyn FileSystem, dir: &Path, offset: u64) -> Result<()> {
        self.record(
            || checkpoint::write_cleaner_offset(fs, dir, offset),
            |r| r.cleaner_offset = offset,
            false,
        )
    }

    /// Records high watermark `hw`, written through to the table's file
    /// when `persist` is set (a caller asking for it durably).
    pub(crate) fn high_watermark(
        &self,
        fs: &dyn FileSystem,
        dir: &Path,
        hw: u64,
        persist: bool,
    ) -> Result<()> {
        self.record(
            || checkpoint::write_high_watermark(fs, dir, hw),
            |r| r.high_watermark = Some(hw),
            persist,
        )
    }

    /// One checkpoint moving: its own file rewritten (`own`), or its field
    /// of the row changed (`row`) and, with `persist` or when written
    /// through, the table written.
    fn record(
        &self,
        own: impl FnOnce() -> Result<()>,
        row: impl FnOnce(&mut Row),
        persist: bool,
    ) -> Result<()> {
        match self {
            CheckpointSink::Own => own(),
            CheckpointSink::Table { table, key, write_through } => {
                table.update(key, row);
                if persist || *write_through {
                    table.persist()?;
                }
                Ok(())
            }
        }
    }

    /// Removes the files a table has replaced (after the table holding
    /// their values was persisted). A missing file is fine.
    pub(crate) fn remove_legacy(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        for name in [
            checkpoint::RECOVERY_POINT_FILE,
            checkpoint::LOG_START_OFFSET_FILE,
            checkpoint::CLEANER_OFFSET_FILE,
            checkpoint::HIGH_WATERMARK_FILE,
        ] {
            let path = dir.join(name);
            match fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove replaced checkpoint", &path)(e)),
            }
        }
        Ok(())
    }
}
