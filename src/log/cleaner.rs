//! Compaction (Kafka's log cleaner): keep the latest record per key.
//!
//! A pass builds a map from key digest to the latest offset over the dirty
//! (not yet cleaned) sealed segments, within `cleaner_memory_bytes`; when
//! the map is full the pass covers only the offsets before that point and
//! the next pass continues (bounded memory, several passes). Then every
//! sealed segment before the map's end is rewritten, in groups merged up to
//! `segment_bytes`: a keyed record survives unless the map holds a later
//! offset for its key; keyless records stay. Tombstones go as Kafka's
//! cleaner lets them go (KIP-534): a pass that keeps a batch with
//! tombstones stamps the batch's delete horizon (now +
//! `delete_retention_ms`, attribute bit 6, in baseTimestamp), and a later
//! pass after the horizon drops them. Offsets never move: a
//! thinned batch keeps its base offset and offset range (an emptied one
//! stays as an empty batch), so offsets stay contiguous and reads skip the
//! gaps between surviving records.
//!
//! The cleaned files are written without holding the writer lock (only
//! sealed segments are cleaned; appends go on), then swapped in under it
//! with the crash-safe protocol of `segment::clean`, and the segment map is
//! replaced at once: a reader sees the old segments or the new one for a
//! range, never both and never neither. A truncation or retention that
//! touched the group meanwhile makes the swap give up (cleaned files
//! removed). The cleaner checkpoint (`cleaner-offset`) records how far the
//! log has been cleaned.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{AdminError, Error, Result};
use crate::format::batch::reencode;
use crate::format::RecordView;
use crate::segment::clean::{discard_cleaned, swap_in, CleanedWriter};
use crate::segment::{LogSegment, Recovery, SegmentRole};

use super::partition::PartitionLog;
use super::types::CompactionReport;

/// Memory budget per map entry: a 16-byte digest, an 8-byte offset, and the
/// hash table's slack (it may hold about twice the entries' slots).
const MAP_BYTES_PER_ENTRY: usize = 64;

/// The digest is already uniformly random: hash it by its low bits.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type KeyMap = HashMap<u128, u64, BuildHasherDefault<DigestHasher>>;

/// 128-bit digest of a key: two keyed SipHashes with per-pass random keys,
/// so colliding keys cannot be chosen in advance.
fn digest(state: &RandomState, key: &[u8]) -> u128 {
    let mut a = state.build_hasher();
    a.write(key);
    let mut b = state.build_hasher();
    b.write_u8(0xa5);
    b.write(key);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl PartitionLog {
    /// The share of the sealed segments' bytes not yet cleaned (0 to 1).
    pub fn dirty_ratio(&self) -> f64 {
        let segments = self.snapshot();
        let first_dirty = self.cleaned_to.load(Ordering::SeqCst);
        let sealed: Vec<&Arc<LogSegment>> =
            segments.values().take(segments.len().saturating_sub(1)).collect();
        let total: u64 = sealed.iter().map(|s| s.size_bytes()).sum();
        let dirty: u64 =
            sealed.iter().filter(|s| s.next_offset() > first_dirty).map(|s| s.size_bytes()).sum();
        if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        }
    }

    /// Compacts when the policy says so and the dirty share has reached
    /// `min_cleanable_dirty_percent`; otherwise does nothing.
    ///
    /// # Errors
    /// As [`PartitionLog::compact`].
    pub fn maybe_compact(&self) -> Result<CompactionReport> {
        let threshold = f64::from(self.config.min_cleanable_dirty_percent) / 100.0;
        if !self.config.cleanup_policy.compacts()
            || self.dirty_ratio() < threshold
            || self.dirty_ratio() == 0.0
        {
            return Ok(CompactionReport::default());
        }
        self.compact()
    }

    /// Compacts every sealed segment now, in as many passes as the memory
    /// budget needs. The active segment is never compacted.
    ///
    /// # Errors
    /// [`crate::AdminError::NotCompacted`] for a `delete` topic; [`Error::Corruption`];
    /// [`Error::Io`].
    pub fn compact(&self) -> Result<CompactionReport> {
        if !self.config.cleanup_policy.compacts() {
            return Err(Error::Admin(AdminError::NotCompacted));
        }
        let _one_cleaner = self.cleaner.lock();
        // A closed or poisoned log is not compacted (the swap passes the
        // gate again, under the writer lock).
        drop(self.writable()?);
        let mut report = CompactionReport::default();
        // Bounded: each pass moves the cleaned offset forward, or ends.
        for _ in 0..=self.snapshot().len() * 2 + 1 {
            // A failed write poisons the log as a failed append does (a
            // full disk does not: nothing was swapped in).
            let done = self.clean_pass(&mut report).map_err(|e| self.write_failed(e))?;
            if done {
                break;
            }
        }
        if report.segments_cleaned > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                passes = report.passes,
                segments = report.segments_cleaned,
                records_removed = report.records_removed,
                bytes_read = report.bytes_read,
                bytes_written = report.bytes_written,
                "compacted"
            );
        }
        Ok(report)
    }

    /// One pass; returns whether the log is clean up to the active segment.
    fn clean_pass(&self, report: &mut CompactionReport) -> Result<bool> {
        let segments = self.snapshot();
        // Sealed segments wholly below the high watermark: nothing a replica
        // may still truncate is rewritten.
        let committed = self.committed_end();
        let sealed: Vec<Arc<LogSegment>> = segments
            .values()
            .take(segments.len().saturating_sub(1))
            .take_while(|s| s.next_offset() <= committed)
            .cloned()
            .collect();
        let log_start = self.log_start_offset();
        let first_dirty = self.cleaned_to.load(Ordering::SeqCst).max(log_start);
        let dirty: Vec<&Arc<LogSegment>> = sealed.iter().filter(|s| s.next_offset() > first_dirty).collect();
        let now_ms = self.clock.now_ms();
        // Nothing dirty: a pass is still due when a delete horizon has
        // passed (its tombstones go), with an empty map (every superseded
        // record went in an earlier pass).
        if dirty.is_empty() && !self.delete_horizon_passed(&sealed, now_ms)? {
            return Ok(true);
        }
        report.passes += 1;
        let (map, map_end, state) = match dirty.is_empty() {
            true => (KeyMap::default(), first_dirty, RandomState::new()),
            false => self.build_map(&dirty, first_dirty)?,
        };
        report.map_memory_bytes = report.map_memory_bytes.max(map.capacity() * (16 + 8 + 1));
        let truncations = self.points.truncations();
        let cleanable: Vec<&Arc<LogSegment>> =
            sealed.iter().filter(|s| s.base_offset() < map_end && s.next_offset() > log_start).collect();
        let pass = Pass {
            map: &map,
            state: &state,
            map_end,
            now_ms,
            truncations,
            earliest_horizon: std::cell::Cell::new(NO_HORIZON),
        };
        // Groups are cut by the cleaned size: small cleaned segments merge
        // up to about `segment_bytes`.
        let mut group: Vec<&Arc<LogSegment>> = Vec::new();
        let mut writer: Option<CleanedWriter> = None;
        for segment in cleanable {
            let full = writer.as_ref().is_some_and(|w| {
                w.size() >= self.config.segment_bytes
                    || segment.next_offset() - group[0].base_offset() > i32::MAX as u64
            });
            if full {
                if let Some(w) = writer.take() {
                    self.swap_group(w, &std::mem::take(&mut group), &pass, report)?;
                }
            }
            if writer.is_none() {
                let base = segment.base_offset();
                writer = Some(CleanedWriter::create(
                    &*self.fs,
                    &self.dir,
                    base,
                    self.config.index_interval_bytes,
                )?);
            }
            if let Some(w) = writer.as_mut() {
                report.records_removed += self.clean_segment(segment, w, &pass)?;
                report.bytes_read += segment.size_bytes();
            }
            group.push(segment);
        }
        if let Some(w) = writer.take() {
            self.swap_group(w, &group, &pass, report)?;
        }
        self.cleaned_to.fetch_max(map_end, Ordering::SeqCst);
        let sink = self.points.sink();
        sink.cleaner_offset(&*self.fs, &self.dir, map_end)?;
        let done = dirty.last().is_none_or(|s| map_end >= s.next_offset());
        if done {
            // The last pass rewrote every sealed segment: its horizons are
            // all there are.
            self.delete_horizon_ms.store(pass.earliest_horizon.get(), Ordering::SeqCst);
        }
        Ok(done)
    }

    /// A truncation to `offset`: what was cleaned at or above it is gone,
    /// so the first dirty offset comes down to it, checkpoint too (Kafka's
    /// `maybeTruncateCheckpoint`); a checkpoint left above would count the
    /// records appended after the cut as cleaned.
    pub(super) fn lower_cleaned_to(&self, offset: u64) -> Result<()> {
        if self.cleaned_to.fetch_min(offset, Ordering::SeqCst) <= offset {
            return Ok(());
        }
        let sink = self.points.sink();
        sink.cleaner_offset(&*self.fs, &self.dir, offset)
    }

    /// Whether a sealed segment holds a batch whose delete horizon has
    /// passed. Known after a compaction; after an open, found once by
    /// reading the sealed segments' batches.
    fn delete_horizon_passed(&self, sealed: &[Arc<LogSegment>], now_ms: i64) -> Result<bool> {
        let mut earliest = self.delete_horizon_ms.load(Ordering::SeqCst);
        if earliest == HORIZON_UNKNOWN {
            earliest = NO_HORIZON;
            for segment in sealed {
                segment.for_each_batch(|header, _, _| {
                    if let Some(h) = header.delete_horizon_ms() {
                        earliest = earliest.min(h);
                    }
                    Ok(())
                })?;
            }
            self.delete_horizon_ms.store(earliest, Ordering::SeqCst);
        }
        Ok(earliest <= now_ms)
    }

    /// The key map over `[first_dirty, map_end)`; stops at the first new key
    /// that does not fit the budget.
    fn build_map(&self, dirty: &[&Arc<LogSegment>], first_dirty: u64) -> Result<(KeyMap, u64, RandomState)> {
        let state = RandomState::new();
        let entries_max = (self.config.cleaner_memory_bytes / MAP_BYTES_PER_ENTRY).max(1);
        let mut map = KeyMap::with_capacity_and_hasher(entries_max.min(1 << 16), Default::default());
        let mut stopped_at = None;
        for segment in dirty {
            segment.for_each_batch(|header, _, records| {
                if stopped_at.is_some() || header.next_offset() <= first_dirty {
                    return Ok(());
                }
                for r in records.filter(|r| r.offset >= first_dirty) {
                    let Some(key) = r.key else { continue };
                    let d = digest(&state, key);
                    if map.len() >= entries_max && !map.contains_key(&d) {
                        stopped_at = Some(r.offset);
                        return Ok(());
                    }
                    map.insert(d, r.offset);
                }
                Ok(())
            })?;
            if stopped_at.is_some() {
                break;
            }
        }
        let map_end = stopped_at.unwrap_or_else(|| dirty.last().map_or(first_dirty, |s| s.next_offset()));
        if map_end <= first_dirty {
            let segment_base_offset = dirty.first().map_or(first_dirty, |s| s.base_offset());
            let cleaner_memory_bytes = self.config.cleaner_memory_bytes;
            return Err(Error::Admin(AdminError::CleanerMemoryTooSmall {
                segment_base_offset,
                cleaner_memory_bytes,
            }));
        }
        Ok((map, map_end, state))
    }

    /// Writes the cleaned batches of `segment` into `writer`; returns the
    /// records removed.
    fn clean_segment(
        &self,
        segment: &LogSegment,
        writer: &mut CleanedWriter,
        pass: &Pass<'_>,
    ) -> Result<u64> {
        let new_horizon = pass.now_ms.saturating_add(self.config.delete_retention_ms);
        let mut scratch = Vec::new();
        let mut removed = 0u64;
        segment.for_each_batch(|header, bytes, records| {
            let expired = header.delete_horizon_ms().is_some_and(|h| h <= pass.now_ms);
            let keep = |r: &RecordView<'_>| match r.key {
                None => true,
                Some(_) if r.offset >= pass.map_end => true,
                Some(key) => match pass.map.get(&digest(pass.state, key)) {
                    Some(&latest) if latest > r.offset => false,
                    _ => !(r.value.is_none() && expired),
                },
            };
            let kept: Vec<RecordView<'_>> = records.filter(|r| keep(r)).collect();
            let horizon = match header.delete_horizon_ms() {
                Some(h) => Some(h),
                None => kept.iter().any(|r| r.value.is_none()).then_some(new_horizon),
            };
            if let Some(h) = horizon.filter(|_| !kept.is_empty()) {
                pass.earliest_horizon.set(pass.earliest_horizon.get().min(h));
            }
            if kept.len() == header.record_count as usize && horizon == header.delete_horizon_ms() {
                return writer.push(bytes, header);
            }
            removed += u64::from(header.record_count) - kept.len() as u64;
            if kept.is_empty() && header.producer_id < 0 {
                return writer.push_empty(header);
            }
            scratch.clear();
            let thinned = reencode(&mut scratch, header, &kept, header.last_offset_delta, horizon)?;
            writer.push(&scratch, &thinned)
        })?;
        Ok(removed)
    }

    /// Finishes `writer` and swaps it in for `group`, under the writer lock,
    /// unless a truncation or retention changed the group meanwhile.
    fn swap_group(
        &self,
        writer: CleanedWriter,
        group: &[&Arc<LogSegment>],
        pass: &Pass<'_>,
        report: &mut CompactionReport,
    ) -> Result<()> {
        self.counters.changed();
        let base = group[0].base_offset();
        let written = writer.finish(&*self.fs)?;
        let writer = self.writable()?;
        let current = self.snapshot();
        let unchanged = self.points.truncations() == pass.truncations
            && group.iter().all(|s| current.get(&s.base_offset()).is_some_and(|c| Arc::ptr_eq(c, s)));
        if !unchanged {
            return discard_cleaned(&*self.fs, &self.dir, base);
        }
        let old: Vec<u64> = group.iter().map(|s| s.base_offset()).collect();
        // A failure inside the swap (a full disk too) may leave the files
        // swapped or half swapped while the segment map names the old
        // ones: it poisons whatever its kind, and the reopen finishes or
        // undoes the swap (`recover_swaps`).
        swap_in(&*self.fs, &self.dir, base, &old).map_err(|e| self.poison(e))?;
        let (segment, _) = LogSegment::open(
            &*self.fs,
            &self.dir,
            base,
            &self.segment_config,
            Recovery::Durable { end_offset: None },
            SegmentRole::Sealed,
        )
        .map_err(|e| self.poison(e))?;
        let mut map_after = (*current).clone();
        for b in &old {
            map_after.remove(b);
        }
        map_after.insert(base, Arc::new(segment));
        self.segments.replace(&writer, map_after);
        report.segments_cleaned += group.len();
        report.bytes_written += written;
        Ok(())
    }
}

/// One pass's key map and bounds.
struct Pass<'a> {
    map: &'a KeyMap,
    state: &'a RandomState,
    map_end: u64,
    now_ms: i64,
    truncations: u64,
    /// The earliest delete horizon in the batches written so far.
    earliest_horizon: std::cell::Cell<i64>,
}

/// `delete_horizon_ms` before anything is known (after an open).
pub(super) const HORIZON_UNKNOWN: i64 = i64::MIN;
/// No batch holds a delete horizon.
const NO_HORIZON: i64 = i64::MAX;
