//! Reading a segment: finding the batch that holds an offset (from its
//! index entry, with the one batch walk), reads, timestamp lookups, and the
//! checked walk over every batch that the cleaner and recovery replay use.

use crate::config::SegmentConfig;
use crate::error::{Corruption, Error, Result};
use crate::format::batch::check_records;
use crate::format::{BatchHeader, FetchedRecords, Inflater, RecordIter, BATCH_HEADER_BYTES};

use super::cursor::{Batch, BatchCursor, Check, Step};
use super::index::{IndexEntry, IndexSpan};
use super::log_segment::LogSegment;
use super::scan::ChunkReader;

/// Extra bytes a timestamp lookup reads past `index_interval_bytes`, so the
/// batch straddling the end of an index interval usually comes in the same
/// read.
const READ_SLACK_BYTES: usize = 16 << 10;

/// Why a walk over batch headers stopped.
enum WalkError {
    /// The index entry it started from does not name the batch there.
    IndexMismatch,
    /// Damage or I/O.
    Failed(Error),
}

impl From<Error> for WalkError {
    fn from(e: Error) -> Self {
        WalkError::Failed(e)
    }
}

/// Where a walk for an offset starts.
#[derive(Clone, Copy, Debug)]
enum WalkStart {
    /// The next entry past the offset, whose batch holds it (one 61-byte
    /// look at its header says so; with every batch indexed, as with
    /// batches larger than the index interval, it does).
    Holder(IndexEntry),
    /// The floor entry (its batch ends at or before the offset: Kafka's
    /// entries name last offsets, so the holder comes after it), and the
    /// next entry's position, before which the holder starts.
    Floor { entry: IndexEntry, next_position: Option<u64> },
}

impl WalkStart {
    fn entry(self) -> IndexEntry {
        match self {
            WalkStart::Holder(entry) | WalkStart::Floor { entry, .. } => entry,
        }
    }
}

impl LogSegment {
    /// Position and header of the batch holding `offset` (the first batch
    /// ending at or after it), or `None` when it is past this segment.
    /// `size` bounds the walk: the reader's snapshot of the segment size.
    pub(super) fn find_batch(
        &self,
        offset: u64,
        size: u64,
        reader: &mut ChunkReader<'_>,
    ) -> Result<Option<Batch>> {
        let entry = self.walk_start(offset, size).entry();
        self.find_batch_from(entry, offset, size, reader)
    }

    /// Where a walk for `offset` starts (the one index lookup; see
    /// [`WalkStart`]).
    fn walk_start(&self, offset: u64, size: u64) -> WalkStart {
        let IndexSpan { entry: floor, next } = self.index.read().lookup_span(offset);
        match next {
            Some(n) if self.batch_at_entry_holds(n, offset, size) => WalkStart::Holder(n),
            _ => WalkStart::Floor { entry: floor, next_position: next.map(|n| n.position) },
        }
    }

    /// [`LogSegment::find_batch`] from a looked-up index entry.
    fn find_batch_from(
        &self,
        entry: IndexEntry,
        offset: u64,
        size: u64,
        reader: &mut ChunkReader<'_>,
    ) -> Result<Option<Batch>> {
        let start = IndexEntry { offset: self.base_offset, position: 0 };
        match self.walk_from(entry, offset, size, reader) {
            // The index is derived data: if its entry does not name the
            // batch at its position, walk from the segment start instead.
            Err(WalkError::IndexMismatch) => match self.walk_from(start, offset, size, reader) {
                Ok(found) => Ok(found),
                Err(WalkError::Failed(e)) => Err(e),
                Err(WalkError::IndexMismatch) => unreachable!("no entry to mismatch"),
            },
            Err(WalkError::Failed(e)) => Err(e),
            Ok(found) => Ok(found),
        }
    }

    /// Walks batch headers from `entry` (an index entry, or the segment
    /// start) to the batch holding `offset`; the batch at an entry must
    /// end at the entry's offset.
    fn walk_from(
        &self,
        entry: IndexEntry,
        offset: u64,
        size: u64,
        reader: &mut ChunkReader<'_>,
    ) -> Result<Option<Batch>, WalkError> {
        let from_index = !super::index::OffsetIndex::is_segment_start(entry);
        let mut cursor = BatchCursor::from_entry(entry, self.base_offset, size, Check::Header);
        // Bounded: each step advances by at least one header.
        loop {
            let at = cursor.position();
            match cursor.step(reader)? {
                Step::End => return Ok(None),
                // The index is derived data: an entry that does not name
                // the batch at its position is not trusted.
                Step::Damaged(_) if from_index && at == entry.position => {
                    return Err(WalkError::IndexMismatch)
                }
                Step::Damaged(problem) => {
                    return Err(WalkError::Failed(Error::corruption(&self.log_path, at, problem)))
                }
                Step::Batch(b) if b.header.last_offset() >= offset => return Ok(Some(b)),
                Step::Batch(_) => {}
            }
        }
    }

    pub(super) fn damaged(&self, pos: u64, kind: crate::format::DecodeErrorKind) -> Error {
        Error::corruption(
            &self.log_path,
            pos,
            Corruption::Batch(crate::format::DecodeError { kind, position: 0 }),
        )
    }

    /// Reads whole batches from the one holding `offset`, up to `max_bytes`
    /// (but always the first batch whole), checking each batch's CRC, and
    /// none that reaches past `end_offset` (the partition's log end as the
    /// reader loaded it: a batch published here before the partition's end
    /// moved is not yet appended, and its append may still fail). `None`
    /// when `offset` is past this segment or that bound.
    ///
    /// # Errors
    /// [`Error::Corruption`] when a batch fails its checks.
    pub fn read(
        &self,
        offset: u64,
        end_offset: u64,
        max_bytes: usize,
        config: &SegmentConfig,
    ) -> Result<Option<FetchedRecords>> {
        // From the holder, the read is the data. From the floor entry, one
        // read of the span to the next entry plus `max_bytes` covers the
        // walk and the data. Either way `take` reads the rest of a larger
        // batch, and each byte is copied once.
        let size = self.readable_size()?;
        let interval = config.index_interval_bytes as usize;
        let start = self.walk_start(offset, size);
        let window = match start {
            WalkStart::Holder(_) => max_bytes.max(BATCH_HEADER_BYTES),
            WalkStart::Floor { entry, next_position } => {
                let span = next_position
                    .and_then(|p| usize::try_from(p.checked_sub(entry.position)?).ok())
                    .filter(|&s| s <= interval.saturating_add(config.max_batch_bytes));
                match span {
                    Some(span) => span.saturating_add(max_bytes),
                    None => max_bytes.max(interval).saturating_add(BATCH_HEADER_BYTES),
                }
            }
        };
        let entry = start.entry();
        let mut reader = ChunkReader::with_chunk(&*self.log, &self.log_path, size, window);
        let Some(Batch { position: pos, header: first }) =
            self.find_batch_from(entry, offset, size, &mut reader)?
        else {
            return Ok(None);
        };
        let want = (max_bytes as u64).max(u64::from(first.batch_len)).min(size - pos);
        let buf = reader.take(pos, want as usize)?;
        // Keep whole, valid batches; stop before one that does not fit or
        // reaches past the log end.
        let mut cursor = BatchCursor::new(0, Some(first.base_offset), buf.len() as u64, Check::Crc);
        let mut source: &[u8] = &buf;
        // Bounded by the buffer: each step advances by a batch or ends.
        let kept = loop {
            let at = cursor.position();
            match cursor.step(&mut source)? {
                Step::Batch(b) if b.header.next_offset() <= end_offset => {}
                Step::Batch(_) | Step::End => break at,
                // A batch cut by the end of the buffer is left for the
                // next read; the first one is whole unless the file is not.
                Step::Damaged(Corruption::Batch(e))
                    if e.kind == crate::format::DecodeErrorKind::Truncated && at > 0 =>
                {
                    break at
                }
                Step::Damaged(problem) => return Err(Error::corruption(&self.log_path, pos + at, problem)),
            }
        };
        // Nothing when even the first batch reaches past the log end.
        Ok((kept > 0).then(|| FetchedRecords::new(buf.slice(..kept as usize), offset)))
    }

    /// Whether the batch at index entry `entry` holds `offset`: its header
    /// (one 61-byte copy) names the entry's last offset and starts at or
    /// below `offset`. Damage answers no (the walk then judges it).
    fn batch_at_entry_holds(&self, entry: IndexEntry, offset: u64, size: u64) -> bool {
        let mut probe = ChunkReader::with_chunk(&*self.log, &self.log_path, size, BATCH_HEADER_BYTES);
        match probe.get(entry.position, BATCH_HEADER_BYTES) {
            Ok(Some(head)) => BatchHeader::parse(head)
                .is_ok_and(|h| h.base_offset <= offset && h.last_offset() == entry.offset),
            _ => false,
        }
    }

    /// Calls `f` with every batch in order and its records (inflated once
    /// for a compressed batch), each fully checked (CRC and records), as
    /// the cleaner needs them.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged batch; `f`'s errors.
    pub fn for_each_batch(
        &self,
        mut f: impl FnMut(&BatchHeader, &[u8], RecordIter<'_>) -> Result<()>,
    ) -> Result<()> {
        let size = self.readable_size()?;
        let mut reader = ChunkReader::new(&*self.log, &self.log_path, size);
        let mut inflater = Inflater::default();
        // The CRC here, the records below: a compressed batch inflates once.
        let mut cursor = BatchCursor::new(0, Some(self.base_offset), size, Check::Crc);
        // Bounded: each step advances by one batch.
        while let Some(b) = cursor.next_batch(&mut reader, &self.log_path)? {
            let bytes = reader
                .get(b.position, b.header.batch_len as usize)?
                .ok_or_else(|| self.damaged(b.position, crate::format::DecodeErrorKind::Truncated))?;
            let at = |e: crate::format::DecodeError| {
                Error::corruption(&self.log_path, b.position + e.position as u64, Corruption::Batch(e))
            };
            let records = inflater.records(bytes, b.header).map_err(at)?;
            check_records(records.clone(), at, |_, _, _| Ok(()))?;
            f(&b.header, bytes, records)?;
        }
        Ok(())
    }

    /// The first offset at or after `from_offset` whose record has a
    /// timestamp of at least `target_ms`, if this segment holds one.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged batch on the way.
    pub fn offset_for_timestamp(
        &self,
        target_ms: i64,
        from_offset: u64,
        config: &SegmentConfig,
    ) -> Result<Option<u64>> {
        if self.max_timestamp_ms() < target_ms || from_offset >= self.next_offset() {
            return Ok(None);
        }
        let start = self.time_index.read().lookup(target_ms).max(from_offset);
        let size = self.readable_size()?;
        // The target is usually within an index interval of where the
        // search starts: read about that much at a time, not a scan chunk.
        let window = (config.index_interval_bytes as usize).saturating_add(READ_SLACK_BYTES);
        let mut reader = ChunkReader::with_chunk(&*self.log, &self.log_path, size, window);
        let Some(Batch { position: pos, header: first }) = self.find_batch(start, size, &mut reader)? else {
            return Ok(None);
        };
        let mut cursor = BatchCursor::new(pos, Some(first.base_offset), size, Check::Whole);
        // Bounded: each step advances by one batch.
        while let Some(Batch { position, header }) = cursor.next_batch(&mut reader, &self.log_path)? {
            if header.max_timestamp_ms >= target_ms {
                let bytes = reader.get(position, header.batch_len as usize)?.unwrap_or(&[]);
                let mut inflater = Inflater::default();
                let records = inflater.records(bytes, header).map_err(|e| {
                    Error::corruption(&self.log_path, position + e.position as u64, Corruption::Batch(e))
                })?;
                let found = records
                    .filter(|r| r.offset >= start && r.timestamp_ms >= target_ms)
                    .map(|r| r.offset)
                    .next();
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }
}
