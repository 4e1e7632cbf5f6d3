//! Writing cleaned (compacted) segments and swapping them in, crash-safely.
//!
//! Swap protocol (Kafka's), for a group of old segments replaced by one new
//! segment named by the group's first base offset:
//!
//! 1. the new segment's files are written as `{base}.{log,index,timeindex}.cleaned`
//!    and fsynced;
//! 2. ORDER: each is renamed to `.swap`, directory fsynced: from here on
//!    recovery rolls forward;
//! 3. the old segments' files are renamed to `.deleted`;
//! 4. the `.swap` files are renamed to their final names, directory fsynced;
//! 5. the `.deleted` files are removed, directory fsynced.
//!
//! Recovery (`recover_swaps`, before a log opens): `.cleaned` files are
//! removed (the swap never started: the old segments are whole); a
//! `.log.swap` means the swap started: any old segment still named within
//! its offset range is removed and the `.swap` files take their final names
//! (roll forward); `.deleted` files are removed. Either the old segments or
//! the new one survive for a range, never both, never neither.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::BatchHeader;
use crate::io::{FileHandle, FileSystem, OpenMode};

use super::cursor::{BatchCursor, Check, Step};
use super::index::{IndexEntry, INDEX_ENTRY_BYTES};
use super::indexing::Indexing;
use super::scan::ChunkReader;
use super::sparse_index::encode_entries;
use super::time_index::{TimeEntry, TIME_INDEX_ENTRY_BYTES};
use super::{parse_file_name, SegmentFile};

const KINDS: [&str; 3] = ["log", "index", "timeindex"];
const CLEANED: &str = ".cleaned";
const SWAP: &str = ".swap";
const DELETED: &str = ".deleted";

fn path(dir: &Path, base: u64, kind: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}.{kind}{suffix}"))
}

/// Writes one cleaned segment's files under their `.cleaned` names.
pub(crate) struct CleanedWriter {
    dir: PathBuf,
    base: u64,
    log: std::sync::Arc<dyn FileHandle>,
    position: u64,
    index_interval_bytes: u64,
    indexing: Indexing,
    index: Vec<IndexEntry>,
    time_index: Vec<TimeEntry>,
    next_offset: u64,
    /// Consecutive emptied batches, merged into one empty batch covering
    /// their offsets: `(first base offset, last offset, largest
    /// maxTimestamp, leader epoch)`.
    pending_empty: Option<(u64, u64, i64, i32)>,
}

impl CleanedWriter {
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        base: u64,
        index_interval_bytes: u64,
    ) -> Result<Self> {
        let log_path = path(dir, base, "log", CLEANED);
        let log =
            fs.open(&log_path, OpenMode::Create).map_err(Error::io("create cleaned segment", &log_path))?;
        log.set_len(0).map_err(Error::io("create cleaned segment", &log_path))?;
        Ok(CleanedWriter {
            dir: dir.to_path_buf(),
            base,
            log,
            position: 0,
            index_interval_bytes,
            indexing: Indexing::empty(),
            index: Vec::new(),
            time_index: Vec::new(),
            next_offset: base,
            pending_empty: None,
        })
    }

    /// Records an emptied batch without producer state: merged with the
    /// emptied batches right before it, so compaction leaves one small
    /// batch per removed run instead of one per removed batch.
    pub(crate) fn push_empty(&mut self, header: &BatchHeader) -> Result<()> {
        match &mut self.pending_empty {
            Some((_, last, max_ts, epoch)) if *last + 1 == header.base_offset => {
                *last = header.last_offset();
                *max_ts = (*max_ts).max(header.max_timestamp_ms);
                *epoch = (*epoch).max(header.leader_epoch);
                Ok(())
            }
            _ => {
                self.flush_empty()?;
                let h = header;
                self.pending_empty =
                    Some((h.base_offset, h.last_offset(), h.max_timestamp_ms, h.leader_epoch));
                Ok(())
            }
        }
    }

    fn flush_empty(&mut self) -> Result<()> {
        let Some((base, last, max_timestamp_ms, leader_epoch)) = self.pending_empty.take() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let layout = crate::format::batch::BatchLayout {
            base_offset: base,
            meta: crate::format::BatchMeta { leader_epoch, ..Default::default() },
            last_offset_delta: u32::try_from(last - base).unwrap_or(u32::MAX),
            now_ms: max_timestamp_ms,
            limits: crate::format::EncodeLimits { max_record_bytes: usize::MAX, max_batch_bytes: usize::MAX },
            attributes: 0,
            base_timestamp_ms: None,
            max_timestamp_ms: Some(max_timestamp_ms),
        };
        let header =
            crate::format::batch::encode_with_deltas(&mut out, &layout, &[], |_| 0).map_err(Error::from)?;
        self.write_batch(&out, &header)
    }

    /// Appends one checked batch; index entries follow the live rules.
    pub(crate) fn push(&mut self, batch: &[u8], header: &BatchHeader) -> Result<()> {
        self.flush_empty()?;
        self.write_batch(batch, header)
    }

    fn write_batch(&mut self, batch: &[u8], header: &BatchHeader) -> Result<()> {
        let log_path = path(&self.dir, self.base, "log", CLEANED);
        self.log.write_all_at(batch, self.position).map_err(Error::io("write cleaned segment", &log_path))?;
        if let Some(e) = self.indexing.on_batch(self.position, header, self.index_interval_bytes) {
            self.index.push(e.offset);
            self.time_index.extend(e.time);
        }
        self.position += batch.len() as u64;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Bytes written so far (a pending merged empty batch not counted).
    pub(crate) fn size(&self) -> u64 {
        self.position
    }

    /// Writes the indexes (with the time entry covering the segment) and
    /// fsyncs all three files; returns the log bytes written.
    pub(crate) fn finish(mut self, fs: &dyn FileSystem) -> Result<u64> {
        self.flush_empty()?;
        if self.position > 0 {
            self.time_index.extend(self.indexing.time_entry());
        }
        let log_path = path(&self.dir, self.base, "log", CLEANED);
        self.log.sync_data().map_err(Error::io("sync cleaned segment", &log_path))?;
        let index = encode_entries::<_, INDEX_ENTRY_BYTES>(&self.index, self.base);
        let time_index = encode_entries::<_, TIME_INDEX_ENTRY_BYTES>(&self.time_index, self.base);
        for (kind, bytes) in [("index", &index), ("timeindex", &time_index)] {
            let p = path(&self.dir, self.base, kind, CLEANED);
            let file = fs.open(&p, OpenMode::Create).map_err(Error::io("write cleaned index", &p))?;
            file.set_len(0).map_err(Error::io("write cleaned index", &p))?;
            file.write_all_at(bytes, 0).map_err(Error::io("write cleaned index", &p))?;
            file.sync_data().map_err(Error::io("sync cleaned index", &p))?;
        }
        Ok(self.position)
    }
}

/// Removes a cleaned segment that will not be swapped in.
pub(crate) fn discard_cleaned(fs: &dyn FileSystem, dir: &Path, base: u64) -> Result<()> {
    for kind in KINDS {
        let p = path(dir, base, kind, CLEANED);
        if fs.exists(&p).map_err(Error::io("stat", &p))? {
            fs.remove_file(&p).map_err(Error::io("remove cleaned file", &p))?;
        }
    }
    Ok(())
}

/// Swaps the cleaned segment `base` in for the segments `old` (steps 2-5).
pub(crate) fn swap_in(fs: &dyn FileSystem, dir: &Path, base: u64, old: &[u64]) -> Result<()> {
    let sync = || fs.sync_dir(dir).map_err(Error::io("sync directory", dir));
    for kind in KINDS {
        let (from, to) = (path(dir, base, kind, CLEANED), path(dir, base, kind, SWAP));
        fs.rename(&from, &to).map_err(Error::io("rename cleaned to swap", &from))?;
    }
    sync()?; // ORDER: the swap is decided; recovery rolls forward from here
    for &b in old {
        for kind in KINDS {
            let (from, to) = (path(dir, b, kind, ""), path(dir, b, kind, DELETED));
            if fs.exists(&from).map_err(Error::io("stat", &from))? {
                fs.rename(&from, &to).map_err(Error::io("rename old segment", &from))?;
            }
        }
    }
    for kind in KINDS {
        let (from, to) = (path(dir, base, kind, SWAP), path(dir, base, kind, ""));
        fs.rename(&from, &to).map_err(Error::io("rename swap into place", &from))?;
    }
    sync()?;
    for &b in old {
        for kind in KINDS {
            let p = path(dir, b, kind, DELETED);
            if fs.exists(&p).map_err(Error::io("stat", &p))? {
                fs.remove_file(&p).map_err(Error::io("remove replaced segment", &p))?;
            }
        }
    }
    sync()
}

/// Finishes or undoes swaps a crash interrupted (see the module docs).
/// Returns whether anything was found.
pub(crate) fn recover_swaps(fs: &dyn FileSystem, dir: &Path) -> Result<bool> {
    let names = fs.list_dir(dir).map_err(Error::io("list log directory", dir))?;
    let split = |name: &str, suffix: &str| name.strip_suffix(suffix).and_then(parse_file_name);
    let mut found = false;
    for name in &names {
        if split(name, CLEANED).is_some() {
            found = true;
            let p = dir.join(name);
            fs.remove_file(&p).map_err(Error::io("remove cleaned file", &p))?;
        }
    }
    let swap_logs: Vec<u64> = names
        .iter()
        .filter_map(|n| split(n, SWAP))
        .filter(|(_, k)| *k == SegmentFile::Log)
        .map(|(b, _)| b)
        .collect();
    for base in &swap_logs {
        found = true;
        let end = swap_end(fs, &path(dir, *base, "log", SWAP))?;
        // Old segments still under their names inside the swapped range go.
        for name in &names {
            if parse_file_name(name).is_some_and(|(b, _)| (*base..end).contains(&b)) {
                let p = dir.join(name);
                fs.remove_file(&p).map_err(Error::io("remove replaced segment", &p))?;
            }
        }
    }
    for name in &names {
        if split(name, SWAP).is_some() {
            found = true;
            let from = dir.join(name);
            let to = dir.join(name.strip_suffix(SWAP).unwrap_or(name));
            fs.rename(&from, &to).map_err(Error::io("rename swap into place", &from))?;
        }
    }
    for name in &names {
        if split(name, DELETED).is_some() {
            found = true;
            let p = dir.join(name);
            fs.remove_file(&p).map_err(Error::io("remove replaced segment", &p))?;
        }
    }
    if found {
        fs.sync_dir(dir).map_err(Error::io("sync directory", dir))?;
    }
    Ok(found)
}

/// The offset after the last valid batch of a swap segment (it was fsynced
/// before it became `.swap`, so it is whole).
fn swap_end(fs: &dyn FileSystem, path: &Path) -> Result<u64> {
    let file = fs.open(path, OpenMode::Existing).map_err(Error::io("open swap segment", path))?;
    let len = file.size().map_err(Error::io("stat swap segment", path))?;
    let mut reader = ChunkReader::new(&*file, path, len);
    let mut cursor = BatchCursor::new(0, None, len, Check::Whole);
    // Bounded: each step advances by one batch.
    while let Step::Batch(_) = cursor.step(&mut reader)? {}
    Ok(cursor.next_offset().unwrap_or(0))
}
