//! Idempotent producers: per producer id, its epoch and its last five
//! batches' sequence ranges and offsets, so a retried batch gets its
//! original offsets back instead of being appended twice, and a batch out
//! of sequence or from a fenced (older) producer epoch is refused.
//!
//! File `producer-snapshot` in the partition directory (`format::kv`,
//! header `annals-producer-snapshot 1`): `offset=<log end it describes>`,
//! `producers=<n>`, and per producer `p.<i>=<id> <epoch> <batch>;<batch>...`
//! where a batch is `<first seq>,<last seq>,<first offset>,<last offset>,<max timestamp>`.
//! Written (atomically, durably) at every roll and at clean close. Opening
//! loads it and replays the producer fields of the batches after its offset
//! (normally part of the active segment); without a usable snapshot every
//! batch is replayed. Truncation rebuilds the state the same way.
//!
//! A producer whose last batch is older than `producer_id_expiration_ms`
//! is forgotten (at open and by `enforce_retention`), so the state stays
//! bounded by the producers active in that window, as in Kafka.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use crate::error::{AppendError, Error, Result};
use crate::format::{kv, BatchHeader};
use crate::io::{read_small_file, write_file_atomic, FileSystem};

use super::points::SyncMode;
use super::types::AppendInfo;

/// The snapshot's file name.
pub const PRODUCER_SNAPSHOT_FILE: &str = "producer-snapshot";
const HEADER: &str = "annals-producer-snapshot 1";
/// Batches remembered per producer (Kafka's in-flight limit).
const BATCHES_KEPT: usize = 5;
/// Snapshot files larger than this are not believed.
const SNAPSHOT_MAX_BYTES: u64 = 256 << 20;

/// What one producer's batch covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProducerBatch {
    first_seq: i32,
    last_seq: i32,
    first_offset: u64,
    last_offset: u64,
    max_timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<ProducerBatch>,
}

/// What to do with a producer's batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: these are its offsets.
    Duplicate(AppendInfo),
}

/// The state of every producer seen in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    map: HashMap<i64, ProducerEntry>,
}

/// The sequence of the last record of a batch starting at `first` with
/// `count` records (sequences wrap from `i32::MAX` to 0, as in Kafka).
fn last_seq(first: i32, count: u64) -> i32 {
    ((i64::from(first) + count.max(1) as i64 - 1) % (i64::from(i32::MAX) + 1)) as i32
}

/// The last sequence of batch `h`: from its offset range, not its record
/// count, which compaction lowers (as Kafka's `lastSequence` does).
fn batch_last_seq(h: &BatchHeader) -> i32 {
    last_seq(h.base_sequence, u64::from(h.last_offset_delta) + 1)
}

fn next_seq(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

impl ProducerStates {
    /// Checks a leader append's producer fields against the state.
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<Check> {
        if h.producer_id < 0 {
            return Ok(Check::Append);
        }
        let producer_id = h.producer_id;
        if h.base_sequence < 0 || h.producer_epoch < 0 {
            return Err(Error::Append(AppendError::OutOfOrderSequence {
                producer_id,
                expected: 0,
                found: h.base_sequence,
            }));
        }
        let Some(entry) = self.map.get(&producer_id) else { return Ok(Check::Append) };
        if h.producer_epoch < entry.epoch {
            return Err(Error::Append(AppendError::ProducerFenced {
                producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            }));
        }
        if h.producer_epoch > entry.epoch {
            // A new epoch starts its sequences over.
            return match h.base_sequence {
                0 => Ok(Check::Append),
                found => {
                    Err(Error::Append(AppendError::OutOfOrderSequence { producer_id, expected: 0, found }))
                }
            };
        }
        let last = batch_last_seq(h);
        if let Some(b) = entry.batches.iter().find(|b| b.first_seq == h.base_sequence && b.last_seq == last) {
            return Ok(Check::Duplicate(AppendInfo {
                first_offset: b.first_offset,
                last_offset: b.last_offset,
                max_timestamp_ms: b.max_timestamp_ms,
            }));
        }
        let expected = entry.batches.back().map_or(h.base_sequence, |b| next_seq(b.last_seq));
        if h.base_sequence != expected {
            return Err(Error::Append(AppendError::OutOfOrderSequence {
                producer_id,
                expected,
                found: h.base_sequence,
            }));
        }
        Ok(Check::Append)
    }

    /// Forgets producers whose last batch's timestamp is more than
    /// `expiration_ms` before `now_ms` (-1: never). Returns how many.
    /// [`ProducerStates::check`] for batches appended together, each
    /// against the state the earlier ones leave (on a copy; one batch
    /// needs none): the first retry's offsets, or `None` to append them.
    pub(crate) fn check_all(&self, headers: &[BatchHeader]) -> Result<Option<AppendInfo>> {
        match headers {
            [h] => Ok(match self.check(h)? {
                Check::Duplicate(info) => Some(info),
                Check::Append => None,
            }),
            _ => {
                let mut state = self.clone();
                for h in headers.iter().filter(|h| h.producer_id >= 0) {
                    match state.check(h)? {
                        Check::Duplicate(info) => return Ok(Some(info)),
                        Check::Append => state.update(h),
                    }
                }
                Ok(None)
            }
        }
    }

    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        if expiration_ms < 0 {
            return 0;
        }
        let before = self.map.len();
        self.map.retain(|_, e| {
            let last_ms = e.batches.back().map_or(i64::MIN, |b| b.max_timestamp_ms);
            now_ms.saturating_sub(last_ms) <= expiration_ms
        });
        before - self.map.len()
    }

    /// Producers remembered.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Records a batch now in the log (appended, replicated or replayed).
    pub(crate) fn update(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return;
        }
        let batch = ProducerBatch {
            first_seq: h.base_sequence,
            last_seq: batch_last_seq(h),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp_ms: h.max_timestamp_ms,
        };
        let entry = self
            .map
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry { epoch: h.producer_epoch, batches: VecDeque::new() });
        if h.producer_epoch != entry.epoch {
            *entry = ProducerEntry { epoch: h.producer_epoch, batches: VecDeque::new() };
        }
        if entry.batches.len() == BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
    }

    /// Writes the snapshot of the state as of `offset` (the log end).
    pub(crate) fn write(&self, fs: &dyn FileSystem, dir: &Path, offset: u64) -> Result<()> {
        self.write_as(fs, dir, offset, false, SyncMode::Now)
    }

    /// [`ProducerStates::write`], rewriting the file in place when
    /// `in_place` (no new inode; a write torn by a crash fails the
    /// snapshot's checksum, and open then replays the whole log). Only
    /// where a sync of the whole store follows (`Store::close`).
    pub(crate) fn write_as(
        &self,
        fs: &dyn FileSystem,
        dir: &Path,
        offset: u64,
        in_place: bool,
        mode: SyncMode,
    ) -> Result<()> {
        let mut ids: Vec<&i64> = self.map.keys().collect();
        ids.sort_unstable();
        let mut pairs = vec![
            ("offset".to_string(), offset.to_string()),
            ("producers".to_string(), ids.len().to_string()),
        ];
        for (i, id) in ids.into_iter().enumerate() {
            let e = &self.map[id];
            let batches: Vec<String> = e
                .batches
                .iter()
                .map(|b| {
                    format!(
                        "{},{},{},{},{}",
                        b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.max_timestamp_ms
                    )
                })
                .collect();
            pairs.push((format!("p.{i}"), format!("{id} {} {}", e.epoch, batches.join(";"))));
        }
        let pairs: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let bytes = kv::encode(HEADER, &pairs);
        let path = dir.join(PRODUCER_SNAPSHOT_FILE);
        if in_place {
            return crate::io::write_file_in_place(fs, &path, &bytes, mode == SyncMode::Now)
                .map_err(Error::io("write producer snapshot", &path));
        }
        write_file_atomic(fs, dir, PRODUCER_SNAPSHOT_FILE, &bytes)
            .map_err(Error::io("write producer snapshot", &path))
    }

    /// Reads the snapshot: the offset it describes and the state; `None`
    /// when missing or damaged (every batch is then replayed).
    pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Option<(u64, ProducerStates)> {
        let bytes = read_small_file(fs, &dir.join(PRODUCER_SNAPSHOT_FILE), SNAPSHOT_MAX_BYTES).ok()?;
        let pairs = kv::decode(&bytes, HEADER).ok()?;
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let offset: u64 = get("offset")?.parse().ok()?;
        let n: usize = get("producers")?.parse().ok()?;
        let mut states = ProducerStates::default();
        for i in 0..n {
            let mut parts = get(&format!("p.{i}"))?.splitn(3, ' ');
            let id: i64 = parts.next()?.parse().ok()?;
            let epoch: i16 = parts.next()?.parse().ok()?;
            let mut batches = VecDeque::new();
            for b in parts.next().unwrap_or("").split(';').filter(|b| !b.is_empty()) {
                let f: Vec<&str> = b.split(',').collect();
                if f.len() != 5 || batches.len() == BATCHES_KEPT {
                    return None;
                }
                batches.push_back(ProducerBatch {
                    first_seq: f[0].parse().ok()?,
                    last_seq: f[1].parse().ok()?,
                    first_offset: f[2].parse().ok()?,
                    last_offset: f[3].parse().ok()?,
                    max_timestamp_ms: f[4].parse().ok()?,
                });
            }
            states.map.insert(id, ProducerEntry { epoch, batches });
        }
        Some((offset, states))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimFs;

    fn header(pid: i64, epoch: i16, seq: i32, count: u32, base: u64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            leader_epoch: -1,
            crc: 0,
            batch_len: 0,
            magic: 2,
            attributes: 0,
            last_offset_delta: count - 1,
            record_count: count,
            base_timestamp_ms: 5,
            max_timestamp_ms: 7,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
        }
    }

    #[test]
    fn sequences_dedup_fencing_and_snapshot() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&header(-1, -1, -1, 3, 0)).unwrap(), Check::Append, "no producer id");
        assert_eq!(s.check(&header(9, 0, 0, 3, 0)).unwrap(), Check::Append);
        s.update(&header(9, 0, 0, 3, 0));
        s.update(&header(9, 0, 3, 2, 3));
        let dup = s.check(&header(9, 0, 0, 3, 99)).unwrap();
        assert_eq!(
            dup,
            Check::Duplicate(AppendInfo { first_offset: 0, last_offset: 2, max_timestamp_ms: 7 })
        );
        assert!(matches!(
            s.check(&header(9, 0, 6, 1, 5)),
            Err(Error::Append(AppendError::OutOfOrderSequence { expected: 5, found: 6, .. }))
        ));
        assert_eq!(s.check(&header(9, 0, 5, 1, 5)).unwrap(), Check::Append);
        assert!(matches!(
            s.check(&header(9, 1, 4, 1, 5)),
            Err(Error::Append(AppendError::OutOfOrderSequence { expected: 0, .. }))
        ));
        s.update(&header(9, 1, 0, 1, 5));
        assert!(matches!(
            s.check(&header(9, 0, 5, 1, 6)),
            Err(Error::Append(AppendError::ProducerFenced { epoch: 0, current: 1, .. }))
        ));
        for i in 1..10 {
            s.update(&header(9, 1, i, 1, 5 + u64::from(i as u32)));
        }
        // Only the last five batches are remembered: an older retry is out
        // of sequence, as in Kafka.
        assert!(matches!(
            s.check(&header(9, 1, 4, 1, 0)),
            Err(Error::Append(AppendError::OutOfOrderSequence { expected: 10, .. }))
        ));
        assert!(matches!(s.check(&header(9, 1, 5, 1, 0)), Ok(Check::Duplicate(_))));
        assert_eq!(last_seq(i32::MAX, 2), 0, "sequences wrap");

        let fs = SimFs::new();
        let dir = Path::new("/p");
        fs.create_dir_all(dir).unwrap();
        assert!(ProducerStates::read(&fs, dir).is_none());
        s.update(&header(3, 2, 7, 4, 20));
        s.write(&fs, dir, 21).unwrap();
        assert_eq!(ProducerStates::read(&fs, dir), Some((21, s)));
    }
}
