//! Rewriting one batch without some of its records (truncation inside a
//! batch), crash-safely. Offsets of the kept records do not move.
//!
//! The new batch is first written to `{base_offset:020}.rewrite` beside the
//! segment and made durable:
//! `{ position: u64 | crc32(position): u32 | batch }` (little-endian). Then
//! it overwrites the old batch in place, the segment is cut after it and
//! fsynced, and the intent is removed (directory fsynced). Recovery finds a
//! leftover intent and re-applies it (idempotent) if it is whole, or drops
//! it if not (then the overwrite had not begun).

use std::path::{Path, PathBuf};

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::{Corruption, Error, Result};
use crate::format::batch::reencode;
use crate::format::Inflater;

use super::scan::{read_batch, ChunkReader};
use crate::format::check_batch;
use crate::io::{read_small_file, FileSystem, OpenMode};

const INTENT_HEADER_BYTES: usize = 12;

/// `{base_offset:020}.rewrite` beside the segment's `.log`.
fn intent_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("rewrite")
}

/// Makes the rewrite of the batch at `position` into `batch` durable.
pub(crate) fn write_intent(fs: &dyn FileSystem, log_path: &Path, position: u64, batch: &[u8]) -> Result<()> {
    let path = intent_path(log_path);
    let mut bytes = vec![0u8; INTENT_HEADER_BYTES];
    LE::write_u64(&mut bytes, position);
    let crc = crc32fast::hash(&bytes[..8]);
    LE::write_u32(&mut bytes[8..], crc);
    bytes.extend_from_slice(batch);
    let file = fs.open(&path, OpenMode::Create).map_err(Error::io("write rewrite intent", &path))?;
    file.set_len(0).map_err(Error::io("write rewrite intent", &path))?;
    file.write_all_at(&bytes, 0).map_err(Error::io("write rewrite intent", &path))?;
    file.sync_data().map_err(Error::io("write rewrite intent", &path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir).map_err(Error::io("sync directory", dir))
}

/// Removes the intent durably.
pub(crate) fn remove_intent(fs: &dyn FileSystem, log_path: &Path) -> Result<()> {
    let path = intent_path(log_path);
    fs.remove_file(&path).map_err(Error::io("remove rewrite intent", &path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir).map_err(Error::io("sync directory", dir))
}

/// Finishes (or drops) a rewrite a crash interrupted, before the segment
/// is opened. Returns whether an intent was found.
pub(crate) fn finish_intent(fs: &dyn FileSystem, log_path: &Path) -> Result<bool> {
    let path = intent_path(log_path);
    if !fs.exists(&path).map_err(Error::io("stat", &path))? {
        return Ok(false);
    }
    let limit = (crate::config::MAX_BATCH_BYTES_LIMIT + INTENT_HEADER_BYTES) as u64;
    let bytes = read_small_file(fs, &path, limit).unwrap_or_default();
    let whole = bytes.len() > INTENT_HEADER_BYTES
        && LE::read_u32(&bytes[8..]) == crc32fast::hash(&bytes[..8])
        && check_batch(&bytes[INTENT_HEADER_BYTES..])
            .is_ok_and(|h| h.batch_len as usize == bytes.len() - INTENT_HEADER_BYTES);
    if whole {
        let position = LE::read_u64(&bytes);
        let batch = &bytes[INTENT_HEADER_BYTES..];
        let log = fs.open(log_path, OpenMode::Existing).map_err(Error::io("open segment", log_path))?;
        let len = log.size().map_err(Error::io("stat segment", log_path))?;
        // An intent pointing past the file cannot be ours to apply.
        if position <= len {
            log.write_all_at(batch, position).map_err(Error::io("re-apply rewrite", log_path))?;
            log.set_len(position + batch.len() as u64).map_err(Error::io("re-apply rewrite", log_path))?;
            log.sync_data().map_err(Error::io("re-apply rewrite", log_path))?;
        }
    }
    remove_intent(fs, log_path)?;
    Ok(true)
}

/// Encodes into `out` the batch at `pos` keeping only records below `offset`;
/// the new batch covers offsets up to `offset - 1`.
pub(crate) fn prefix_batch(
    reader: &mut ChunkReader<'_>,
    path: &Path,
    pos: u64,
    offset: u64,
    out: &mut Vec<u8>,
) -> Result<()> {
    let header = read_batch(reader, pos)?.map_err(|e| Error::corruption(path, pos, Corruption::Batch(e)))?;
    debug_assert!(header.base_offset < offset && offset <= header.last_offset());
    let bytes = reader
        .get(pos, header.batch_len as usize)?
        .ok_or_else(|| Error::corruption(path, pos, Corruption::Batch(truncated())))?;
    let mut inflater = Inflater::default();
    let records =
        inflater.records(bytes, header).map_err(|e| Error::corruption(path, pos, Corruption::Batch(e)))?;
    let kept: Vec<_> = records.take_while(|r| r.offset < offset).collect();
    // With no record kept (possible once compaction thins batches) this is
    // an empty batch that still covers its offsets, keeping them contiguous.
    let horizon = header.delete_horizon_ms();
    reencode(out, &header, &kept, (offset - 1 - header.base_offset) as u32, horizon).map_err(Error::from)?;
    Ok(())
}

fn truncated() -> crate::format::DecodeError {
    crate::format::DecodeError { kind: crate::format::DecodeErrorKind::Truncated, position: 0 }
}
