//! Truncating a segment: cut at a batch boundary, or rewrite the batch
//! holding the cut (through a durable rewrite intent) and cut after it.

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::io::FileSystem;

use super::cursor::{Batch, BatchCursor, Check};
use super::index::IndexEntry;
use super::log_segment::LogSegment;
use super::scan::ChunkReader;

impl LogSegment {
    /// Drops every record at or above `offset`, keeping the records below it
    /// that share its batch (that batch is rewritten without them). Writer
    /// only, with no reader inside this segment (the partition excludes them).
    pub(crate) fn truncate_to(&self, fs: &dyn FileSystem, offset: u64, scratch: &mut Vec<u8>) -> Result<()> {
        if offset >= self.next_offset() {
            return Ok(());
        }
        let size = self.size_bytes();
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, size);
        let Some(Batch { position: pos, header }) = self.find_batch(offset, size, &mut reader)? else {
            return Ok(());
        };
        let mut new_size = pos;
        let rewriting = header.base_offset < offset;
        if rewriting {
            scratch.clear();
            super::rewrite::prefix_batch(&mut reader, &self.log_path, pos, offset, scratch)?;
            // ORDER: the rewritten batch is first made durable beside the
            // segment (an intent recovery re-applies), then it overwrites
            // the old batch in place. A crash mid-overwrite would otherwise
            // tear a batch whose first records are kept, and lose them.
            super::rewrite::write_intent(fs, &self.log_path, pos, scratch)?;
            let batch_end = pos + u64::from(header.batch_len);
            self.log.set_len(batch_end).map_err(Error::io("truncate", &self.log_path))?;
            self.log.write_all_at(scratch, pos).map_err(Error::io("truncate", &self.log_path))?;
            new_size = pos + scratch.len() as u64;
        }
        let mut index = self.index.write();
        // An entry at `pos` stays valid when the rewritten batch starts there.
        index.truncate_to_position(if new_size > pos { pos + 1 } else { pos });
        let mut times = self.time_index.write();
        times.truncate_to_offset(offset);
        self.log.set_len(new_size).map_err(Error::io("truncate", &self.log_path))?;
        // ORDER: make the new length durable now, or a crash could bring the
        // truncated batches back (they are still contiguous, so recovery
        // would accept them).
        self.log.sync_data().map_err(Error::io("sync after truncate", &self.log_path))?;
        if rewriting {
            // ORDER: gone durably before anything is appended after it, or
            // a later recovery would re-apply it over newer data.
            super::rewrite::remove_intent(fs, &self.log_path)?;
        }
        let last_entry = index.last_entry().unwrap_or(IndexEntry { offset: self.base_offset, position: 0 });
        let since = new_size - last_entry.position;
        // The largest timestamp left: the time index's, and the batches after
        // the last offset-index entry.
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, new_size);
        let mut max_timestamp_ms = times.last_entry().map_or(-1, |e| e.timestamp_ms);
        let mut cursor =
            BatchCursor::new(last_entry.position, Some(last_entry.offset), new_size, Check::Whole);
        // Bounded: each step advances by one batch.
        while let Some(b) = cursor.next_batch(&mut reader, &self.log_path)? {
            max_timestamp_ms = max_timestamp_ms.max(b.header.max_timestamp_ms);
        }
        if new_size > 0 {
            times.append(max_timestamp_ms, offset - 1);
        }
        self.max_timestamp_ms.store(max_timestamp_ms, Ordering::Release);
        self.bytes_since_index.store(since, Ordering::Relaxed);
        self.next_offset.store(offset, Ordering::Release);
        self.size.store(new_size, Ordering::Release);
        if new_size == 0 {
            self.roll_base_ms.store(-1, Ordering::Relaxed);
        }
        Ok(())
    }
}
