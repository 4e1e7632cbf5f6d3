//! Truncating a segment: cut at a batch boundary, or rewrite the batch
//! holding the cut (through a durable rewrite intent) and cut after it.

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::io::FileSystem;

use super::cursor::{Batch, BatchCursor, Check};
use super::index::{IndexEntry, OffsetIndex};
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
        // The cut and the walks below work on the file.
        self.write_buffered()?;
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
        index.truncate_to_position(pos)?;
        let mut times = self.time_index.write();
        times.truncate_to_offset(offset)?;
        self.log.set_len(new_size).map_err(Error::io("truncate", &self.log_path))?;
        // ORDER: make the new length durable now, or a crash could bring the
        // truncated batches back (they are still contiguous, so recovery
        // would accept them).
        self.log.sync_data().map_err(Error::io("sync after truncate", &self.log_path))?;
        // ORDER: and the indexes' cut (the dropped entries zeroed) before
        // the caller moves the recovery point past it: recovery trusts the
        // entries below that point, and a dropped entry coming back would
        // name the rewritten batch's old last offset at its position.
        index.sync()?;
        times.sync()?;
        if rewriting {
            // ORDER: gone durably before anything is appended after it, or
            // a later recovery would re-apply it over newer data.
            super::rewrite::remove_intent(fs, &self.log_path)?;
        }
        let indexing = self.resumed_indexing(&mut index, times.last_entry(), new_size)?;
        if let Some(t) = indexing.time_entry().filter(|_| new_size > 0) {
            times.append(t.timestamp_ms, t.offset);
        }
        self.max_timestamp_ms.store(indexing.max_timestamp_ms, Ordering::Release);
        self.buffer_truncated(new_size);
        self.next_offset.store(offset, Ordering::Release);
        self.size.store(new_size, Ordering::Release);
        if new_size == 0 {
            self.roll_base_ms.store(-1, Ordering::Relaxed);
        }
        Ok(indexing)
    }

    /// The indexing rule's state after the whole segment.
    fn current_indexing(&self) -> Result<Indexing> {
        let last_time = self.time_index.read().last_entry();
        self.resumed_indexing(&mut self.index.write(), last_time, self.size_bytes())
    }

    /// The indexing rule's state after the first `size` bytes (as Kafka's
    /// truncation reloads it): the time index's last entry, then the
    /// batches from the last offset-index entry on.
    ///
    /// The index is derived data: a last entry that does not name the
    /// batch at its position is dropped and the walk starts from the entry
    /// before it (at worst from the segment start), as lookups do.
    fn resumed_indexing(
        &self,
        index: &mut OffsetIndex,
        last_time: Option<TimeEntry>,
        size: u64,
    ) -> Result<Indexing> {
        let start = IndexEntry { offset: self.base_offset, position: 0 };
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, size);
        // Bounded: each retry drops an entry.
        loop {
            let last_entry = index.last_entry().unwrap_or(start);
            let mut indexing = Indexing::resumed(last_time);
            indexing.bytes_since_index = size - last_entry.position;
            let mut cursor = BatchCursor::from_entry(last_entry, self.base_offset, size, Check::Whole);
            let walked = (|| {
                // Bounded: each step advances by one batch.
                while let Some(b) = cursor.next_batch(&mut reader, &self.log_path)? {
                    indexing.observe(&b.header);
                }
                Ok(indexing)
            })();
            match walked {
                Err(Error::Corruption { position, .. })
                    if position == last_entry.position && !OffsetIndex::is_segment_start(last_entry) =>
                {
                    index.truncate_to_position(position)?;
                }
                walked => return walked,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::log_segment::tests::append;
    use super::*;
    use crate::config::LogConfig;
    use crate::io::StdFileSystem;

    /// An offset-index entry that does not name the batch at its position
    /// (a crash brought back one a truncation dropped) is dropped when the
    /// truncation resumes indexing, as a lookup would distrust it; it used
    /// to fail the truncation with a corruption error.
    #[test]
    fn a_last_entry_naming_the_wrong_offset_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { index_interval_bytes: 1 << 20, ..LogConfig::default() }.segment_config();
        let segment = LogSegment::create(&StdFileSystem, dir.path(), 0, &config).unwrap();
        let mut indexing = segment.opened_indexing();
        for n in [3, 2, 4] {
            append(&segment, &mut indexing, n, &config);
        }
        let second = segment.batch_start(3).unwrap().position;
        assert_eq!(segment.index.read().entries(), 0);
        // Offset 5 at the second batch, which ends at 4.
        segment.index.write().append(5, second);
        let mut scratch = Vec::new();
        let resumed = segment.truncate_to(&StdFileSystem, 9, &mut scratch).expect("nothing to cut");
        assert_eq!(resumed, indexing, "as walked from the segment start");
        assert_eq!(segment.index.read().entries(), 0, "the wrong entry is gone");
        segment.index.write().append(5, second);
        segment.truncate_to(&StdFileSystem, 7, &mut scratch).expect("a cut inside the last batch");
        assert_eq!((segment.next_offset(), segment.index.read().entries()), (7, 0));
    }
}
