//! The leader-epoch cache (Kafka's KIP-101): for each partition leader
//! epoch seen in the log, the first offset written in it. A follower asks
//! the leader `end_offset_for_epoch(its latest epoch)` and truncates to the
//! answer, instead of trusting its high watermark, so two replicas never
//! keep different records at the same offset.
//!
//! File `leader-epoch-checkpoint` in the partition directory, in Kafka's
//! own text format (`LeaderEpochCheckpointFile` over `CheckpointFile` in
//! apache/kafka), so Kafka's tools read it:
//!
//! ```text
//! 0                       the format version
//! <n>                     the number of entries
//! <epoch> <start offset>  n lines, both strictly increasing
//! ```
//!
//! Kafka's format has no checksum: a file that does not parse exactly (a
//! wrong version or count, a malformed or out-of-order line, trailing
//! bytes) is damaged and rebuilt from the batch headers.
//!
//! ORDER: an entry for a new epoch is written (atomically and durably)
//! before the first batch of that epoch, so the file never lacks an epoch
//! the log holds. After a crash it may name an epoch whose first batch was
//! lost: opening drops entries at or past the log end. Truncation drops
//! entries past the cut, and raising the log start moves the first entries
//! up to it, each written before the call returns. A missing file means no
//! batch with an epoch was ever appended; a damaged one is rebuilt from the
//! epochs stamped in the batch headers.

use std::path::Path;

use crate::error::{AppendError, Error, Result};
use crate::io::{read_small_file, write_file_atomic, FileSystem};

/// The checkpoint's file name.
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Kafka's checkpoint format version.
const VERSION: &str = "0";
/// Entries beyond this in a file are not believed (the file is rebuilt).
const MAX_ENTRIES: u64 = 1 << 20;

/// `(epoch, start offset)` pairs, both strictly increasing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EpochCache {
    entries: Vec<(i32, u64)>,
}

/// Why the checkpoint could not be used.
pub(crate) enum ReadError {
    /// No file: no epoch was ever recorded.
    Missing,
    /// A file that does not parse: rebuild from the log.
    Damaged,
}

/// A plain decimal number: digits only (with a leading `-` for a
/// negative one), as Kafka writes them.
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

impl EpochCache {
    /// Reads the checkpoint.
    pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> std::result::Result<EpochCache, ReadError> {
        let path = dir.join(LEADER_EPOCH_FILE);
        if !fs.exists(&path).map_err(|_| ReadError::Damaged)? {
            return Err(ReadError::Missing);
        }
        let bytes = read_small_file(fs, &path, 64 * MAX_ENTRIES).map_err(|_| ReadError::Damaged)?;
        EpochCache::decode(&bytes).ok_or(ReadError::Damaged)
    }

    /// Parses Kafka's checkpoint text (see the module docs).
    fn decode(bytes: &[u8]) -> Option<EpochCache> {
        let text = std::str::from_utf8(bytes).ok()?.strip_suffix('\n')?;
        let mut lines = text.split('\n');
        if lines.next()? != VERSION {
            return None;
        }
        let n: u64 = decimal(lines.next()?)?;
        if n > MAX_ENTRIES {
            return None;
        }
        let mut cache = EpochCache::default();
        for _ in 0..n {
            let (epoch, start) = lines.next()?.split_once(' ')?;
            let (epoch, start): (i32, u64) = (decimal(epoch)?, decimal(start)?);
            if epoch < 0 || cache.entries.last().is_some_and(|&(e, s)| epoch <= e || start <= s) {
                return None;
            }
            cache.entries.push((epoch, start));
        }
        lines.next().is_none().then_some(cache)
    }

    /// Kafka's checkpoint text for these entries.
    fn encode(&self) -> Vec<u8> {
        let mut text = format!("{VERSION}\n{}\n", self.entries.len());
        for &(epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        text.into_bytes()
    }

    /// Writes the checkpoint durably (a temp file, fsynced, renamed, the
    /// directory fsynced: `io::write_file_atomic`).
    pub(crate) fn write(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        write_file_atomic(fs, dir, LEADER_EPOCH_FILE, &self.encode())
            .map_err(Error::io("write leader epoch checkpoint", &dir.join(LEADER_EPOCH_FILE)))
    }

    /// The entries, oldest first.
    pub(crate) fn entries(&self) -> &[(i32, u64)] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub(crate) fn latest(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Notes a batch of leader epoch `epoch` at `offset` (epochs below 0:
    /// none, nothing to note). `Ok(true)`: a new entry, to be written out
    /// before the batch. `epoch` below the latest is refused.
    pub(crate) fn assign(&mut self, epoch: i32, offset: u64) -> Result<bool> {
        if epoch < 0 {
            return Ok(false);
        }
        match self.entries.last() {
            Some(&(latest, _)) if epoch < latest => {
                Err(Error::Append(AppendError::StaleLeaderEpoch { epoch, latest }))
            }
            Some(&(latest, _)) if epoch == latest => Ok(false),
            Some(&(_, start)) if offset <= start => {
                // A new epoch cannot start at or before the previous one's
                // first offset (the log below it is never rewritten).
                Err(Error::Append(AppendError::StaleLeaderEpoch {
                    epoch,
                    latest: self.latest().unwrap_or(-1),
                }))
            }
            _ => {
                self.entries.push((epoch, offset));
                Ok(true)
            }
        }
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `epoch` and
    /// the offset after its last record (the start of the next epoch, or
    /// `log_end` for the latest epoch). For an epoch below the first one,
    /// `epoch` itself and the first epoch's start offset. `None` when no
    /// epoch is known at or above it.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end: u64) -> Option<(i32, u64)> {
        if epoch < 0 {
            return None;
        }
        if self.latest() == Some(epoch) {
            return Some((epoch, log_end));
        }
        let higher = self.entries.iter().position(|&(e, _)| e > epoch)?;
        let end = self.entries[higher].1;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].0, end)),
            None => Some((epoch, end)),
        }
    }

    /// Drops entries starting at or past `offset` (the log was cut there).
    /// `true` when anything changed.
    pub(crate) fn truncate_from_end(&mut self, offset: u64) -> bool {
        let keep = self.entries.iter().take_while(|&&(_, s)| s < offset).count();
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log now starts at `offset`: entries wholly below it go, and the
    /// epoch holding `offset` starts there. `true` when anything changed.
    pub(crate) fn truncate_from_start(&mut self, offset: u64) -> bool {
        let below = self.entries.iter().take_while(|&&(_, s)| s <= offset).count();
        if below == 0 {
            return false;
        }
        let floor = self.entries[below - 1];
        let changed = below > 1 || floor.1 != offset;
        self.entries.drain(..below - 1);
        self.entries[0].1 = offset;
        changed
    }

    /// Rebuilds the cache from the epochs of the log's batches, given as
    /// `(leader_epoch, base_offset)` in log order.
    pub(crate) fn rebuild(batches: impl IntoIterator<Item = (i32, u64)>) -> EpochCache {
        let mut cache = EpochCache::default();
        for (epoch, offset) in batches {
            // Out-of-order epochs in a damaged log are skipped, not fatal.
            let _ = cache.assign(epoch, offset);
        }
        cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimFs;

    fn cache(entries: &[(i32, u64)]) -> EpochCache {
        EpochCache { entries: entries.to_vec() }
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(c.end_offset_for(4, 40), Some((4, 40)), "latest: the log end");
        assert_eq!(c.end_offset_for(3, 40), Some((3, 25)));
        assert_eq!(c.end_offset_for(2, 40), Some((1, 10)), "an epoch never seen: the one below it");
        assert_eq!(c.end_offset_for(0, 40), Some((0, 0)), "below the first epoch");
        assert_eq!(c.end_offset_for(5, 40), None, "above the latest");
        assert_eq!(c.end_offset_for(-1, 40), None);
        assert_eq!(EpochCache::default().end_offset_for(0, 7), None);
    }

    #[test]
    fn assign_truncate_and_persist() {
        let mut c = EpochCache::default();
        assert!(!c.assign(-1, 0).unwrap(), "no epoch");
        assert!(c.assign(1, 0).unwrap());
        assert!(!c.assign(1, 5).unwrap(), "same epoch");
        assert!(matches!(
            c.assign(0, 6),
            Err(Error::Append(AppendError::StaleLeaderEpoch { epoch: 0, latest: 1 }))
        ));
        assert!(c.assign(3, 10).unwrap());
        assert!(c.assign(4, 25).unwrap());
        assert!(!c.truncate_from_end(26), "nothing starts at or past 26");
        assert_eq!(c.entries(), [(1, 0), (3, 10), (4, 25)]);
        assert!(c.truncate_from_end(25));
        assert_eq!(c.entries(), [(1, 0), (3, 10)]);
        assert!(!c.truncate_from_end(30));
        assert!(c.truncate_from_start(12));
        assert_eq!(c.entries(), [(3, 12)]);
        assert!(!c.truncate_from_start(12));

        let fs = SimFs::new();
        let dir = Path::new("/p");
        fs.create_dir_all(dir).unwrap();
        assert!(matches!(EpochCache::read(&fs, dir), Err(ReadError::Missing)));
        let c = cache(&[(1, 0), (3, 10), (7, 99)]);
        c.write(&fs, dir).unwrap();
        assert_eq!(EpochCache::read(&fs, dir).ok(), Some(c.clone()));
        // Kafka's LeaderEpochCheckpointFile text, byte for byte.
        assert_eq!(
            crate::io::read_small_file(&fs, &dir.join(LEADER_EPOCH_FILE), 100).unwrap(),
            b"0\n3\n1 0\n3 10\n7 99\n"
        );
        for bad in [
            &b"1\n1\n1 0\n"[..], // another version
            b"0\n2\n1 0\n",      // fewer entries than counted
            b"0\n1\n1 0\n2 5\n", // more
            b"0\n2\n3 0\n2 5\n", // epochs going back
            b"0\n1\n1 +0\n",     // not Kafka's plain decimal
            b"0\n1\n1 0",        // no final newline
            b"0\n1\n-1 0\n",     // a negative epoch
        ] {
            assert!(EpochCache::decode(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(EpochCache::decode(b"0\n0\n"), Some(EpochCache::default()));
        let f = fs.open(&dir.join(LEADER_EPOCH_FILE), crate::io::OpenMode::Existing).unwrap();
        f.write_all_at(b"x", 40).unwrap();
        assert!(matches!(EpochCache::read(&fs, dir), Err(ReadError::Damaged)));
        assert_eq!(
            EpochCache::rebuild([(-1, 0), (1, 3), (1, 5), (0, 7), (2, 9)]).entries(),
            [(1, 3), (2, 9)]
        );
    }
}
