//! Truncating a segment: cut at a batch boundary, or rewrite the batch
//! holding the cut (through a durable rewrite intent) and cut after it.

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::io::FileSystem;

use super::cursor::{Batch, BatchCursor, Check};
use super::index::IndexEntry;
use super::indexing::Indexing;
use super::log_segment::LogSegment;
use super::scan::ChunkReader;
use super::time_index::TimeEntry;

impl LogSegment {
    /// Drops every record at or above `offset`, keeping the records below it
    /// that share its batch (that batch is rewritten without them), with no
    /// reader inside this segment (the partition excludes them). Returns
    /// the indexing rule's state after what is left: the writer's, for the
    /// segment is the active one from now on (also when nothing is cut: a
    /// sealed segment the truncation made active again).
    pub(crate) fn truncate_to(
        &self,
        fs: &dyn FileSystem,
        offset: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<Indexing> {
        if offset >= self.next_offset() {
            return self.current_indexing();
        }
        let size = self.size_bytes();
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, size);
        let Some(Batch { position: pos, header }) = self.find_batch(offset, size, &mut reader)? else {
            return self.current_indexing();
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
        // An entry at `pos` names the old batch's last offset, which the
        // rewritten batch no longer reaches: it goes too.
        index.truncate_to_position(pos);
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
        let indexing = self.resumed_indexing(last_entry, times.last_entry(), new_size)?;
        if let Some(t) = indexing.time_entry().filter(|_| new_size > 0) {
            times.append(t.timestamp_ms, t.offset);
        }
        self.max_timestamp_ms.store(indexing.max_timestamp_ms, Ordering::Release);
        self.next_offset.store(offset, Ordering::Release);
        self.size.store(new_size, Ordering::Release);
        if new_size == 0 {
            self.roll_base_ms.store(-1, Ordering::Relaxed);
        }
        Ok(indexing)
    }

    /// The indexing rule's state after the whole segment.
    fn current_indexing(&self) -> Result<Indexing> {
        let last_entry = self.index.read().last_entry();
        let last_entry = last_entry.unwrap_or(IndexEntry { offset: self.base_offset, position: 0 });
        let last_time = self.time_index.read().last_entry();
        self.resumed_indexing(last_entry, last_time, self.size_bytes())
    }

    /// The indexing rule's state after the first `size` bytes (as Kafka's
    /// truncation reloads it): the time index's last entry, then the
    /// batches from the last offset-index entry on.
    fn resumed_indexing(
        &self,
        last_entry: IndexEntry,
        last_time: Option<TimeEntry>,
        size: u64,
    ) -> Result<Indexing> {
        let mut indexing = Indexing::resumed(last_time);
        indexing.bytes_since_index = size - last_entry.position;
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, size);
        let mut cursor = BatchCursor::from_entry(last_entry, self.base_offset, size, Check::Whole);
        // Bounded: each step advances by one batch.
        while let Some(b) = cursor.next_batch(&mut reader, &self.log_path)? {
            indexing.observe(&b.header);
        }
        Ok(indexing)
    }
}
