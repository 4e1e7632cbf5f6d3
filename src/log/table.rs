//! The checkpoint table of a store (Kafka's per-log-directory
//! `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `cleaner-offset-checkpoint` and `replication-offset-checkpoint`, as one
//! file): every partition's recovery point, log start offset, cleaner
//! offset and high watermark, so a store of 100,000 partitions keeps one
//! file for them instead of 400,000.
//!
//! File `checkpoints` in the store's data directory (`format::kv`), one
//! line per partition directory:
//!
//! ```text
//! annals-checkpoints 1
//! <partition dir>=<segment> <position> <offset> <log start> <cleaner offset> <high watermark>
//! crc32=...
//! ```
//!
//! The recovery point's three fields and the high watermark are `-` when
//! unknown. The file is replaced atomically (temp, fsync, rename, fsync
//! directory) by [`CheckpointTable::persist`].
//!
//! A row moves in memory and reaches the file when the table is persisted:
//! at the store's close, after each maintenance pass and each `flush`, and
//! at once whenever a lagging file could mislead recovery (see `sink.rs`:
//! a recovery point coming down, a log start offset no segment boundary
//! gives back). A missing or damaged file costs what a missing
//! per-partition checkpoint costs: longer recovery scans, a log start
//! bounded by the first segment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::format::kv;
use crate::io::{read_small_file, write_file_atomic, FileSystem, SharedFs};

use super::checkpoint::LogPoint;

/// The table's file name, in the store's data directory.
pub const CHECKPOINTS_FILE: &str = "checkpoints";
const HEADER: &str = "annals-checkpoints 1";
/// The largest table read back: 100,000 partitions at about 100 bytes
/// each, with room to spare.
const TABLE_BYTES_MAX: u64 = 256 << 20;

/// One partition's checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Row {
    pub recovery_point: Option<LogPoint>,
    pub log_start: u64,
    pub cleaner_offset: u64,
    pub high_watermark: Option<u64>,
}

/// The rows of a data directory, keyed by partition directory name.
#[derive(Debug)]
pub(crate) struct CheckpointTable {
    fs: SharedFs,
    dir: PathBuf,
    /// The rows as they are now, and whether they changed since the last
    /// persist began.
    rows: Mutex<(BTreeMap<String, Row>, bool)>,
    /// Held across a persist: the rows are taken inside it, so a persist
    /// that starts after a change writes it.
    writing: Mutex<()>,
}

impl CheckpointTable {
    /// Reads the table of `dir` (empty when missing; when damaged, empty
    /// too, with an error logged: see the module docs).
    pub(crate) fn open(fs: SharedFs, dir: &Path) -> Self {
        let rows = read(&*fs, dir).unwrap_or_else(|why| {
            tracing::error!(dir = %dir.display(), why, "checkpoint table unreadable; recovery scans from segment starts");
            BTreeMap::new()
        });
        CheckpointTable {
            fs,
            dir: dir.to_path_buf(),
            rows: Mutex::new((rows, false)),
            writing: Mutex::new(()),
        }
    }

    /// The row of partition directory `key`.
    pub(crate) fn row(&self, key: &str) -> Option<Row> {
        self.rows.lock().0.get(key).copied()
    }

    /// Changes (or adds) the row of `key`, in memory.
    pub(crate) fn update(&self, key: &str, change: impl FnOnce(&mut Row)) {
        let mut rows = self.rows.lock();
        let row = match rows.0.get_mut(key) {
            Some(row) => row,
            None => rows.0.entry(key.to_owned()).or_default(),
        };
        let before = *row;
        change(row);
        if *row != before {
            rows.1 = true;
        }
    }

    /// Drops the rows of `keys` (a deleted topic's partitions), in memory.
    pub(crate) fn remove(&self, keys: impl IntoIterator<Item = String>) {
        let mut rows = self.rows.lock();
        for key in keys {
            if rows.0.remove(&key).is_some() {
                rows.1 = true;
            }
        }
    }

    /// Writes the rows to the file, atomically and durably, if they changed
    /// since the last persist.
    ///
    /// # Errors
    /// [`Error::Io`]; the file then still holds an older table.
    pub(crate) fn persist(&self) -> Result<()> {
        let _writing = self.writing.lock();
        let bytes = {
            let mut rows = self.rows.lock();
            if !rows.1 {
                return Ok(());
            }
            rows.1 = false;
            encode(&rows.0)
        };
        let path = self.dir.join(CHECKPOINTS_FILE);
        write_file_atomic(&*self.fs, &self.dir, CHECKPOINTS_FILE, &bytes).map_err(|e| {
            // Still to be written.
            self.rows.lock().1 = true;
            Error::io("write checkpoint table", &path)(e)
        })
    }
}

fn encode(rows: &BTreeMap<String, Row>) -> Vec<u8> {
    let dash = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let pairs: Vec<(&str, String)> = rows
        .iter()
        .map(|(key, row)| {
            let point = row.recovery_point;
            let value = format!(
                "{} {} {} {} {} {}",
                dash(point.map(|p| p.segment)),
                dash(point.map(|p| p.position)),
                dash(point.map(|p| p.offset)),
                row.log_start,
                row.cleaner_offset,
                dash(row.high_watermark),
            );
            (key.as_str(), value)
        })
        .collect();
    kv::encode(HEADER, &pairs)
}

/// The rows of `dir`'s table; empty when there is no file, the reason when
/// it is damaged.
pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> std::result::Result<BTreeMap<String, Row>, String> {
    let path = dir.join(CHECKPOINTS_FILE);
    let bytes = match read_small_file(fs, &path, TABLE_BYTES_MAX) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut rows = BTreeMap::new();
    for (key, value) in kv::decode(&bytes, HEADER)? {
        rows.insert(key.to_owned(), decode_row(value).ok_or_else(|| format!("{key}: bad row {value:?}"))?);
    }
    Ok(rows)
}

fn decode_row(value: &str) -> Option<Row> {
    let fields: Vec<&str> = value.split(' ').collect();
    let [segment, position, offset, log_start, cleaner_offset, high_watermark] = fields[..] else {
        return None;
    };
    let maybe = |f: &str| if f == "-" { Some(None) } else { f.parse().ok().map(Some) };
    let recovery_point = match (maybe(segment)?, maybe(position)?, maybe(offset)?) {
        (Some(segment), Some(position), Some(offset)) => Some(LogPoint { segment, position, offset }),
        (None, None, None) => None,
        _ => return None,
    };
    Some(Row {
        recovery_point,
        log_start: log_start.parse().ok()?,
        cleaner_offset: cleaner_offset.parse().ok()?,
        high_watermark: maybe(high_watermark)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::io::sim::SimFs;

    #[test]
    fn rows_roundtrip_through_the_file_and_damage_is_refused() {
        let fs = SimFs::new();
        let shared: SharedFs = Arc::new(fs.clone());
        shared.create_dir_all(Path::new("/d")).unwrap();
        let table = CheckpointTable::open(shared.clone(), Path::new("/d"));
        let point = LogPoint { segment: 10, position: 300, offset: 17 };
        table.update("a-0", |r| r.recovery_point = Some(point));
        table.update("a-1", |r| {
            r.log_start = 5;
            r.cleaner_offset = 9;
            r.high_watermark = Some(12);
        });
        table.persist().unwrap();
        let back = read(&*shared, Path::new("/d")).unwrap();
        assert_eq!(back.get("a-0"), Some(&Row { recovery_point: Some(point), ..Row::default() }));
        assert_eq!(
            back.get("a-1").map(|r| (r.log_start, r.cleaner_offset, r.high_watermark)),
            Some((5, 9, Some(12)))
        );
        table.remove(["a-0".to_owned()]);
        table.persist().unwrap();
        assert_eq!(read(&*shared, Path::new("/d")).unwrap().len(), 1);
        for bad in ["1 2 3 4 5", "1 - 3 4 5 6", "x 2 3 4 5 6", "- - - 4 5 y"] {
            assert_eq!(decode_row(bad), None, "{bad}");
        }
        let mut bytes = read_small_file(&*shared, &Path::new("/d").join(CHECKPOINTS_FILE), 1 << 20).unwrap();
        bytes[30] ^= 1;
        write_file_atomic(&*shared, Path::new("/d"), CHECKPOINTS_FILE, &bytes).unwrap();
        assert!(read(&*shared, Path::new("/d")).is_err(), "a flipped bit is caught");
    }
}
