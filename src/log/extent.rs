//! The synced extent: how far the active segment is known to be fsynced,
//! so that recovery can tell damage to acknowledged bytes (refused) from a
//! torn tail a crash left (cut).
//!
//! File `synced-extent` in the partition directory, 1024 bytes, written in
//! place: two 512-byte slots, each a `format::kv` record padded with zero
//! bytes, so a write torn by a crash can damage only the slot being
//! written while the other still holds the previous extent:
//!
//! ```text
//! slot 0 at byte 0, slot 1 at byte 512; slot = sequence % 2
//! annals-synced-extent 1
//! sequence=<n: the slot with the highest valid sequence holds the extent>
//! segment=<base offset of the segment the extent is in>
//! position=<bytes of that segment known fsynced>
//! offset=<the offset those bytes end at (group commit may record one
//!         below it, never above: it reads the offset before the size)>
//! crc32=...
//! ```
//!
//! Meaning: every segment below `segment` was fsynced whole when it rolled,
//! and the first `position` bytes of segment `segment` are durable. ORDER:
//! an extent is written only after the bytes it covers were fsynced, and it
//! is fsynced itself (one `fdatasync` of a file whose size never changes)
//! before the call that wrote it returns. Before any truncation cuts bytes
//! it covers, it is lowered (durably) to the cut.
//!
//! Written by group commit every `synced_extent_interval_bytes` of synced
//! data, and by roll, truncation, `flush()` and close.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checkpoint::LogPoint as Extent;
use super::points::SyncMode;
use crate::error::{Error, Result};
use crate::format::kv;
use crate::io::{read_exact_at, FileHandle, FileSystem, OpenMode};

/// The file's name in a partition directory.
pub const SYNCED_EXTENT_FILE: &str = "synced-extent";
const HEADER: &str = "annals-synced-extent 1";
/// One slot; a record is about 100 bytes.
const SLOT_BYTES: usize = 512;
const FILE_BYTES: u64 = 2 * SLOT_BYTES as u64;
const _: () = assert!(FILE_BYTES == 1024);

/// What the file held at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// No file: a log written before the file existed.
    Missing,
    /// The file is there but neither slot is valid: how far the log was
    /// synced is unknown.
    Damaged,
    /// The extent.
    Valid(Extent),
}

/// The open file and the last extent written to it.
#[derive(Debug)]
pub(crate) struct ExtentFile {
    file: Arc<dyn FileHandle>,
    path: PathBuf,
    sequence: u64,
    last: Extent,
}

fn encode(sequence: u64, extent: Extent) -> [u8; SLOT_BYTES] {
    let text = kv::encode(
        HEADER,
        &[
            ("sequence", sequence.to_string()),
            ("segment", extent.segment.to_string()),
            ("position", extent.position.to_string()),
            ("offset", extent.offset.to_string()),
        ],
    );
    let mut slot = [0u8; SLOT_BYTES];
    // Five u64s and the header fit with room to spare.
    slot[..text.len()].copy_from_slice(&text);
    slot
}

/// A slot's record (text up to the first zero byte), or `None` if invalid.
fn decode(slot: &[u8]) -> Option<(u64, Extent)> {
    let end = slot.iter().position(|&b| b == 0).unwrap_or(slot.len());
    let pairs = kv::decode(&slot[..end], HEADER).ok()?;
    let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).and_then(|(k, v)| kv::number(k, v).ok());
    let extent = Extent { segment: get("segment")?, position: get("position")?, offset: get("offset")? };
    Some((get("sequence")?, extent))
}

/// Reads the extent in `dir` (the newest valid slot).
///
/// # Errors
/// [`Error::Io`] when the file exists but cannot be read.
pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Result<Loaded> {
    Ok(read_file(fs, dir)?.map_or(Loaded::Missing, |r| r.loaded()))
}

/// The extent file as read: its handle and its newest valid slot, so a
/// log's open reads it once for recovery and keeps it for writing.
#[derive(Debug)]
pub(crate) struct ReadExtent {
    file: Arc<dyn FileHandle>,
    path: PathBuf,
    newest: Option<(u64, Extent)>,
}

impl ReadExtent {
    /// What recovery may assume from it.
    pub(crate) fn loaded(&self) -> Loaded {
        match self.newest {
            None => Loaded::Damaged,
            Some((_, extent)) => Loaded::Valid(extent),
        }
    }
}

/// The file in `dir`, read; `None` when there is none.
///
/// # Errors
/// [`Error::Io`] when it exists but cannot be read.
pub(crate) fn read_file(fs: &dyn FileSystem, dir: &Path) -> Result<Option<ReadExtent>> {
    let path = dir.join(SYNCED_EXTENT_FILE);
    let file = match fs.open(&path, OpenMode::Existing) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open synced extent", &path)(e)),
    };
    let len = file.size().map_err(Error::io("stat synced extent", &path))?;
    let mut bytes = vec![0u8; len.min(FILE_BYTES) as usize];
    read_exact_at(&*file, &mut bytes, 0).map_err(Error::io("read synced extent", &path))?;
    let newest = bytes.chunks(SLOT_BYTES).filter_map(decode).max_by_key(|&(sequence, _)| sequence);
    Ok(Some(ReadExtent { file, path, newest }))
}

impl ExtentFile {
    /// Opens the file in `dir` for writing, creating it (durably: file,
    /// then directory) when missing or rewriting it when damaged, with
    /// `fallback` as its extent in those cases.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn open(fs: &dyn FileSystem, dir: &Path, fallback: Extent) -> Result<ExtentFile> {
        Self::open_read(fs, dir, read_file(fs, dir)?, fallback)
    }

    /// [`ExtentFile::open`] of the file as `read` found it (`None`: missing).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn open_read(
        fs: &dyn FileSystem,
        dir: &Path,
        read: Option<ReadExtent>,
        fallback: Extent,
    ) -> Result<ExtentFile> {
        match read {
            Some(ReadExtent { file, path, newest: Some((sequence, last)) }) => {
                Ok(ExtentFile { file, path, sequence, last })
            }
            Some(ReadExtent { file, path, newest: None }) => {
                let mut this = ExtentFile { file, path, sequence: 0, last: fallback };
                this.write(fallback)?;
                Ok(this)
            }
            None => {
                let path = dir.join(SYNCED_EXTENT_FILE);
                let file =
                    fs.open(&path, OpenMode::Create).map_err(Error::io("create synced extent", &path))?;
                file.set_len(FILE_BYTES).map_err(Error::io("create synced extent", &path))?;
                let mut this = ExtentFile { file, path, sequence: 0, last: fallback };
                this.write(fallback)?;
                // ORDER: the file is in the directory before any segment
                // whose bytes it will vouch for.
                fs.sync_dir(dir).map_err(Error::io("sync directory", dir))?;
                Ok(this)
            }
        }
    }

    /// The extent last written.
    pub(crate) fn last(&self) -> Extent {
        self.last
    }

    /// Writes `extent` to the next slot and fsyncs it. The caller has
    /// fsynced the bytes it covers (or, when lowering it, not yet cut them).
    ///
    /// # Errors
    /// [`Error::Io`]; a failed fsync must poison the partition.
    pub(crate) fn write(&mut self, extent: Extent) -> Result<()> {
        self.write_as(extent, SyncMode::Now)
    }

    /// [`ExtentFile::write`], fsynced only when `mode` says so (see
    /// [`SyncMode`]).
    pub(crate) fn write_as(&mut self, extent: Extent, mode: SyncMode) -> Result<()> {
        let sequence = self.sequence + 1;
        let slot = encode(sequence, extent);
        let at = (sequence % 2) * SLOT_BYTES as u64;
        self.file.write_all_at(&slot, at).map_err(Error::io("write synced extent", &self.path))?;
        if mode == SyncMode::Now && !crate::mutation::on(crate::mutation::Mutation::UnsyncedExtent) {
            self.file.sync_data().map_err(Error::io("sync synced extent", &self.path))?;
        }
        self.sequence = sequence;
        self.last = extent;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::{CrashMode, SimFs};

    const DIR: &str = "/p";

    fn at(position: u64) -> Extent {
        Extent { segment: 7, position, offset: 7 + position / 10 }
    }

    #[test]
    fn newest_slot_wins_and_a_torn_slot_falls_back() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new(DIR)).unwrap();
        assert_eq!(read(&fs, Path::new(DIR)).unwrap(), Loaded::Missing);
        let mut file = ExtentFile::open(&fs, Path::new(DIR), at(0)).unwrap();
        for p in [100, 200, 300] {
            file.write(at(p)).unwrap();
        }
        assert_eq!(read(&fs, Path::new(DIR)).unwrap(), Loaded::Valid(at(300)));
        drop(file);
        // Damage the newest slot: the one before stands.
        let newest = ExtentFile::open(&fs, Path::new(DIR), at(0)).unwrap();
        let slot_at = (newest.sequence % 2) * SLOT_BYTES as u64;
        newest.file.write_all_at(b"x", slot_at + 30).unwrap();
        assert_eq!(read(&fs, Path::new(DIR)).unwrap(), Loaded::Valid(at(200)));
        newest.file.write_all_at(b"x", (SLOT_BYTES as u64) - slot_at + 30).unwrap();
        assert_eq!(read(&fs, Path::new(DIR)).unwrap(), Loaded::Damaged);
        // A damaged file is rewritten with the fallback.
        let file = ExtentFile::open(&fs, Path::new(DIR), at(50)).unwrap();
        assert_eq!(file.last(), at(50));
        assert_eq!(read(&fs, Path::new(DIR)).unwrap(), Loaded::Valid(at(50)));
    }

    #[test]
    fn every_crash_image_holds_a_written_extent() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new(DIR)).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let mut file = ExtentFile::open(&fs, Path::new(DIR), at(0)).unwrap();
        file.write(at(10)).unwrap();
        // A write in flight: the image holds it or the one before.
        let next = file.sequence + 1;
        file.file.write_all_at(&encode(next, at(20)), (next % 2) * SLOT_BYTES as u64).unwrap();
        for seed in 0..64 {
            let image = fs.crash_image(CrashMode::Seeded(seed));
            let got = read(&image, Path::new(DIR)).unwrap();
            assert!(got == Loaded::Valid(at(10)) || got == Loaded::Valid(at(20)), "{got:?}");
        }
    }
}
