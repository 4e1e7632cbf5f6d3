//! Committed consumer-group offsets, stored in the store's own compacted
//! topic `__consumer_offsets` (as Kafka does): a commit is an append, the
//! latest commit per (group, topic, partition) wins, and compaction keeps
//! the topic small. Commits honour that topic's durability policy (default
//! `Always`). An in-memory table, rebuilt from the topic at open, answers
//! fetches.
//!
//! A commit carries what Kafka's `OffsetAndMetadata` does: the offset, the
//! leader epoch of the last record consumed (KIP-320) and a metadata
//! string (Kafka Streams keeps its stream time there). The record format
//! is documented at [`encode_key`] and [`encode_value`], and in
//! `docs/FORMAT.md`. A group's commits all go to the partition its name
//! hashes to, and one [`ConsumerOffsets::commit_many`] is one append.
//!
//! Like Kafka, an offset past the log end may be committed (the consumer
//! owns its position; a reader seeking there gets `OffsetOutOfRange`).

use std::collections::BTreeMap;

use byteorder::{ByteOrder, LittleEndian as LE};
use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{AdminError, AppendError, Error, OpenError, Result};
use crate::format::{EncodeError, Record};

use super::partitioner::partition_for_key;
use super::store::Store;
use super::topic::Topic;

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Longest group name, in bytes.
pub const GROUP_NAME_MAX: usize = 255;

/// `(group, topic, partition)` -> its latest commit (or deletion).
pub(super) type OffsetTable = BTreeMap<(String, String, u32), Commit>;

/// The latest commit of one key, as of its record in the offsets topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Commit {
    /// What was committed; `None` once deleted (kept so an older commit
    /// that lands after the delete cannot revive the key).
    committed: Option<CommittedOffset>,
    /// Where the commit's record sits in its offsets partition: a key's
    /// commits all go to one partition, so this orders them.
    log_offset: u64,
}

/// One partition's offset to commit, with what Kafka's OffsetCommit
/// carries beside it.
///
/// # Examples
///
/// ```
/// use annals::store::OffsetCommit;
/// let commit = OffsetCommit::new("orders", 1, 42).leader_epoch(3).metadata("stream-time=17");
/// assert_eq!((commit.offset, commit.leader_epoch, commit.metadata), (42, Some(3), "stream-time=17"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetCommit<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: u32,
    /// The next offset the group will read.
    pub offset: u64,
    /// The leader epoch of the last record consumed, when the client knows
    /// it (Kafka's `committedLeaderEpoch`; a negative one is stored as none).
    pub leader_epoch: Option<i32>,
    /// Free-form text stored with the offset (Kafka's `committedMetadata`);
    /// empty for none. Bounded only by the offsets topic's record size
    /// (`max_record_bytes`); Kafka's broker limit is the caller's to apply.
    pub metadata: &'a str,
}

impl<'a> OffsetCommit<'a> {
    /// `offset` for `topic`/`partition`, without epoch or metadata.
    pub fn new(topic: &'a str, partition: u32, offset: u64) -> Self {
        OffsetCommit { topic, partition, offset, leader_epoch: None, metadata: "" }
    }

    /// With the leader epoch of the last record consumed.
    pub fn leader_epoch(self, leader_epoch: i32) -> Self {
        OffsetCommit { leader_epoch: Some(leader_epoch), ..self }
    }

    /// With metadata.
    pub fn metadata(self, metadata: &'a str) -> Self {
        OffsetCommit { metadata, ..self }
    }
}

/// A group's committed position on one partition (Kafka's
/// `OffsetAndMetadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: u64,
    /// The leader epoch committed with it; `None` when the client gave none
    /// (and for every commit written before epochs were stored).
    pub leader_epoch: Option<i32>,
    /// The metadata committed with it; empty for none.
    pub metadata: String,
    /// When it was committed, by the store's clock (ms since the epoch).
    pub commit_timestamp_ms: i64,
}

/// Applies a commit appended at `log_offset` unless a later one is in the
/// table already (commits append without the table lock, so they may
/// reach it out of log order).
fn apply(
    table: &mut OffsetTable,
    key: (String, String, u32),
    committed: Option<CommittedOffset>,
    log_offset: u64,
) {
    let commit = Commit { committed, log_offset };
    match table.entry(key) {
        std::collections::btree_map::Entry::Occupied(mut e) => {
            if e.get().log_offset < log_offset {
                e.insert(commit);
            }
        }
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(commit);
        }
    }
}

/// The committed offsets of consumer groups (see the module docs).
///
/// # Examples
///
/// ```
/// use annals::store::OffsetCommit;
/// use annals::{Store, StoreConfig, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), StoreConfig::default())?;
/// store.create_topic("orders", TopicConfig::with_partitions(2))?;
/// let offsets = store.offsets();
/// offsets.commit("billing", "orders", 1, 42)?;
/// assert_eq!(offsets.fetch("billing", "orders", 1)?, Some(42));
/// // Several partitions in one append, with epoch and metadata.
/// offsets.commit_many(
///     "streams",
///     &[OffsetCommit::new("orders", 0, 7).leader_epoch(2).metadata("t=9"), OffsetCommit::new("orders", 1, 8)],
/// )?;
/// let committed = offsets.fetch_committed("streams", "orders", 0)?.unwrap();
/// assert_eq!((committed.offset, committed.leader_epoch, committed.metadata.as_str()), (7, Some(2), "t=9"));
/// assert_eq!(offsets.list_groups(), ["billing", "streams"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConsumerOffsets {
    pub(super) store: Store,
}

/// A record key, little-endian:
///
/// ```text
/// { version u8 = 1 | group_len u16 | group | topic_len u16 | topic | partition u32 }
/// ```
///
/// Group names are at most [`GROUP_NAME_MAX`] bytes and topic names at
/// most 249 (both checked before a commit), so the lengths fit a `u16`.
fn encode_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    debug_assert!(group.len() <= GROUP_NAME_MAX && topic.len() <= usize::from(u16::MAX));
    let mut key = Vec::with_capacity(KEY_FIXED_BYTES + group.len() + topic.len());
    key.push(KEY_VERSION);
    key.extend_from_slice(&(group.len() as u16).to_le_bytes());
    key.extend_from_slice(group.as_bytes());
    key.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    key.extend_from_slice(topic.as_bytes());
    key.extend_from_slice(&partition.to_le_bytes());
    key
}

const KEY_VERSION: u8 = 1;
/// version, the two lengths and the partition.
const KEY_FIXED_BYTES: usize = 1 + 2 + 2 + 4;

fn decode_key(key: &[u8]) -> Option<(String, String, u32)> {
    let (&version, rest) = key.split_first()?;
    if version != KEY_VERSION {
        return None;
    }
    let take_str = |buf: &[u8]| -> Option<(String, usize)> {
        let len = usize::from(LE::read_u16(buf.get(..2)?));
        let s = std::str::from_utf8(buf.get(2..2 + len)?).ok()?;
        Some((s.to_owned(), 2 + len))
    };
    let (group, used) = take_str(rest)?;
    let rest = &rest[used..];
    let (topic, used) = take_str(rest)?;
    let rest = &rest[used..];
    let partition = LE::read_u32(rest.get(..4).filter(|_| rest.len() == 4)?);
    Some((group, topic, partition))
}

// A record value, little-endian. Version 2 (written since offsets carry
// their epoch and metadata) extends version 1 (still read: stores written
// before hold it) after the same first 17 bytes:
//
// | field               | at | bytes | v1 | v2 |
// |---------------------|----|-------|----|----|
// | version             |  0 | 1     | 1  | 2  |
// | offset              |  1 | 8     | x  | x  |
// | commit_timestamp_ms |  9 | 8     | x  | x  |
// | leader_epoch (-1: none) | 17 | 4 |    | x  |
// | metadata_len        | 21 | 4     |    | x  |
// | metadata (UTF-8)    | 25 | metadata_len | | x |
//
// A v1 value is exactly 17 bytes, a v2 value exactly 25 + metadata_len.
const OFFSET_AT: usize = 1;
const TIMESTAMP_AT: usize = OFFSET_AT + 8;
const V1_BYTES: usize = TIMESTAMP_AT + 8;
const LEADER_EPOCH_AT: usize = V1_BYTES;
const METADATA_LEN_AT: usize = LEADER_EPOCH_AT + 4;
const METADATA_AT: usize = METADATA_LEN_AT + 4;
const _: () = assert!(V1_BYTES == 17 && METADATA_AT == 25);
const VALUE_V1: u8 = 1;
const VALUE_V2: u8 = 2;
/// The leader epoch field of a commit without one.
const NO_LEADER_EPOCH: i32 = -1;

/// A commit's value (v2; see the layout above). `index` names the commit
/// in an error.
fn encode_value(commit: &OffsetCommit, timestamp_ms: i64, index: usize) -> Result<Vec<u8>> {
    // A length over u32 could never pass the record limit; refuse it as
    // the append would.
    let size = METADATA_AT + commit.metadata.len();
    let too_large = || {
        Error::Append(AppendError::Encode(EncodeError::RecordTooLarge {
            index,
            size,
            max: u32::MAX as usize,
        }))
    };
    let metadata_len = u32::try_from(commit.metadata.len()).map_err(|_| too_large())?;
    let mut value = Vec::with_capacity(size);
    value.push(VALUE_V2);
    value.extend_from_slice(&commit.offset.to_le_bytes());
    value.extend_from_slice(&timestamp_ms.to_le_bytes());
    let epoch = commit.leader_epoch.filter(|e| *e >= 0).unwrap_or(NO_LEADER_EPOCH);
    value.extend_from_slice(&epoch.to_le_bytes());
    value.extend_from_slice(&metadata_len.to_le_bytes());
    value.extend_from_slice(commit.metadata.as_bytes());
    debug_assert_eq!(value.len(), size);
    Ok(value)
}

/// A value of either version; `None` when it is neither.
fn decode_value(value: &[u8]) -> Option<CommittedOffset> {
    let (&version, _) = value.split_first()?;
    let fixed = |at: usize| value.get(at..at + 8);
    let offset = LE::read_u64(fixed(OFFSET_AT)?);
    let commit_timestamp_ms = LE::read_i64(fixed(TIMESTAMP_AT)?);
    match version {
        VALUE_V1 if value.len() == V1_BYTES => {
            Some(CommittedOffset { offset, leader_epoch: None, metadata: String::new(), commit_timestamp_ms })
        }
        VALUE_V2 => {
            let epoch = LE::read_i32(value.get(LEADER_EPOCH_AT..METADATA_LEN_AT)?);
            let metadata_len = LE::read_u32(value.get(METADATA_LEN_AT..METADATA_AT)?);
            // The length is checked against the bytes there before use.
            let metadata = value.get(METADATA_AT..)?;
            if u64::from(metadata_len) != metadata.len() as u64 {
                return None;
            }
            let metadata = std::str::from_utf8(metadata).ok()?.to_owned();
            Some(CommittedOffset {
                offset,
                leader_epoch: (epoch >= 0).then_some(epoch),
                metadata,
                commit_timestamp_ms,
            })
        }
        _ => None,
    }
}

fn check_group(group: &str) -> Result<()> {
    if group.is_empty() || group.len() > GROUP_NAME_MAX {
        return Err(Error::Admin(AdminError::InvalidGroupName { group: group.to_owned() }));
    }
    Ok(())
}

/// Rebuilds the table from the offsets topic.
pub(super) fn load(topic: &Topic) -> Result<OffsetTable> {
    let mut table = OffsetTable::new();
    for partition in topic.partitions() {
        let mut next = partition.log_start_offset();
        // Bounded by the log end.
        while next < partition.log_end_offset() {
            let fetched = partition.read(next, 1 << 20, crate::log::ReadBound::LogEnd)?;
            for r in fetched.records() {
                let bad = || {
                    Error::Open(OpenError::InvalidMetadata {
                        path: partition.dir().to_path_buf(),
                        reason: format!("undecodable consumer offset record at offset {}", r.offset),
                    })
                };
                let key = decode_key(r.key.unwrap_or(&[])).ok_or_else(bad)?;
                let committed = r.value.map(|v| decode_value(v).ok_or_else(bad)).transpose()?;
                apply(&mut table, key, committed, r.offset);
            }
            next = fetched.next_offset().unwrap_or(partition.log_end_offset());
        }
    }
    Ok(table)
}

impl ConsumerOffsets {
    fn table(&self) -> &Mutex<OffsetTable> {
        self.store.offset_table()
    }

    fn check_target(&self, topic: &str, partition: u32) -> Result<()> {
        if topic == OFFSETS_TOPIC {
            return Err(Error::Admin(AdminError::UnknownTopic { topic: topic.to_owned() }));
        }
        self.store.topic(topic)?.partition(partition).map(drop)
    }

    /// Commits `offset` (the next offset the group will read) for a group
    /// on one partition. Returns once the commit is as durable as the
    /// offsets topic's policy makes it.
    ///
    /// # Errors
    /// [`crate::AdminError::InvalidGroupName`], [`crate::AdminError::UnknownTopic`],
    /// [`crate::AdminError::PartitionOutOfRange`], or the append's errors.
    pub fn commit(&self, group: &str, topic: &str, partition: u32, offset: u64) -> Result<()> {
        self.commit_many(group, &[OffsetCommit::new(topic, partition, offset)])
    }

    /// Commits several offsets of one group at once, with their leader
    /// epochs and metadata: one append (one batch, one fsync), so all of
    /// them are committed or none. A partition named twice keeps its last.
    ///
    /// # Errors
    /// As [`ConsumerOffsets::commit`], and [`crate::AppendError::Encode`] when a commit
    /// or the whole batch is over the offsets topic's record or batch size;
    /// nothing is committed on error.
    pub fn commit_many(&self, group: &str, commits: &[OffsetCommit]) -> Result<()> {
        check_group(group)?;
        for c in commits {
            self.check_target(c.topic, c.partition)?;
        }
        if commits.is_empty() {
            return Ok(());
        }
        let now = self.store.now_ms();
        let mut records = Vec::with_capacity(commits.len());
        for (i, c) in commits.iter().enumerate() {
            let value = encode_value(c, now, i)?;
            records.push(Record::with_key(encode_key(group, c.topic, c.partition), value).timestamp_ms(now));
        }
        // The append (and its fsync) runs without the table lock, so
        // commits of many groups share group fsyncs; the table changes
        // only after it succeeded, and a commit older in the log than the
        // one in the table is not applied.
        let first = self.append(group, &records)?;
        let mut table = self.table().lock();
        for (i, c) in commits.iter().enumerate() {
            let committed = CommittedOffset {
                offset: c.offset,
                leader_epoch: c.leader_epoch.filter(|e| *e >= 0),
                metadata: c.metadata.to_owned(),
                commit_timestamp_ms: now,
            };
            let key = (group.to_owned(), c.topic.to_owned(), c.partition);
            apply(&mut table, key, Some(committed), first + i as u64);
        }
        Ok(())
    }

    /// Appends a group's records to its offsets partition; returns the
    /// first record's offset there.
    fn append(&self, group: &str, records: &[Record]) -> Result<u64> {
        let topic = self.store.topic_internal(OFFSETS_TOPIC)?;
        let partition = partition_for_key(group.as_bytes(), topic.partition_count());
        topic.append_to(partition, records).map(|info| info.first_offset)
    }

    /// The committed offset of a group on one partition.
    ///
    /// # Errors
    /// [`crate::AdminError::InvalidGroupName`].
    pub fn fetch(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        Ok(self.fetch_committed(group, topic, partition)?.map(|c| c.offset))
    }

    /// The committed offset of a group on one partition, with its leader
    /// epoch, metadata and commit time.
    ///
    /// # Errors
    /// [`crate::AdminError::InvalidGroupName`].
    pub fn fetch_committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<CommittedOffset>> {
        check_group(group)?;
        let key = (group.to_owned(), topic.to_owned(), partition);
        Ok(self.table().lock().get(&key).and_then(|c| c.committed.clone()))
    }

    /// Every committed offset of a group, by (topic, partition).
    pub fn group_offsets(&self, group: &str) -> BTreeMap<(String, u32), u64> {
        self.group_committed(group).into_iter().map(|(k, c)| (k, c.offset)).collect()
    }

    /// Every committed offset of a group, by (topic, partition), with its
    /// leader epoch, metadata and commit time.
    pub fn group_committed(&self, group: &str) -> BTreeMap<(String, u32), CommittedOffset> {
        self.table()
            .lock()
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .filter_map(|((_, t, p), c)| Some(((t.clone(), *p), c.committed.clone()?)))
            .collect()
    }

    /// Groups with at least one committed offset, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        let table = self.table().lock();
        let live = table.iter().filter(|(_, c)| c.committed.is_some());
        let mut groups: Vec<String> = live.map(|((g, _, _), _)| g.clone()).collect();
        groups.dedup();
        groups
    }

    /// Deletes a group's committed offsets (tombstones, compacted away).
    ///
    /// # Errors
    /// [`crate::AdminError::InvalidGroupName`], or the append's errors.
    pub fn delete_group(&self, group: &str) -> Result<()> {
        check_group(group)?;
        let keys: Vec<(String, String, u32)> = {
            let table = self.table().lock();
            let live = table.iter().filter(|((g, _, _), c)| g == group && c.committed.is_some());
            live.map(|(k, _)| k.clone()).collect()
        };
        self.tombstone(group, keys).map(drop)
    }

    /// Deletes a group's committed offsets on the given (topic, partition)s
    /// in one append (Kafka's OffsetDelete); partitions without one are
    /// skipped. Returns how many were deleted.
    ///
    /// # Errors
    /// [`crate::AdminError::InvalidGroupName`], or the append's errors; nothing is
    /// deleted on error.
    pub fn delete_offsets(&self, group: &str, partitions: &[(&str, u32)]) -> Result<usize> {
        check_group(group)?;
        let keys: Vec<(String, String, u32)> = {
            let table = self.table().lock();
            let mut keys: Vec<_> = partitions
                .iter()
                .map(|&(t, p)| (group.to_owned(), t.to_owned(), p))
                .filter(|k| table.get(k).is_some_and(|c| c.committed.is_some()))
                .collect();
            keys.sort();
            keys.dedup();
            keys
        };
        self.tombstone(group, keys)
    }

    /// Appends one tombstone per key (one append) and applies them.
    fn tombstone(&self, group: &str, keys: Vec<(String, String, u32)>) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let records: Vec<Record> =
            keys.iter().map(|(g, t, p)| Record::tombstone(Bytes::from(encode_key(g, t, *p)))).collect();
        let first = self.append(group, &records)?;
        let mut table = self.table().lock();
        let deleted = keys.len();
        for (i, key) in keys.into_iter().enumerate() {
            apply(&mut table, key, None, first + i as u64);
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StoreConfig, TopicConfig};

    #[test]
    fn keys_and_values_roundtrip_and_garbage_is_refused() {
        let key = encode_key("g", "orders.eu", 7);
        assert_eq!(decode_key(&key), Some(("g".into(), "orders.eu".into(), 7)));
        for cut in 0..key.len() {
            assert_eq!(decode_key(&key[..cut]), None);
        }
        let mut long = key.clone();
        long.push(0);
        assert_eq!(decode_key(&long), None);

        let commit = OffsetCommit::new("orders.eu", 7, 42).leader_epoch(5).metadata("stream-time=é");
        let value = encode_value(&commit, 1_000, 0).unwrap();
        let expected = CommittedOffset {
            offset: 42,
            leader_epoch: Some(5),
            metadata: "stream-time=é".into(),
            commit_timestamp_ms: 1_000,
        };
        assert_eq!(decode_value(&value), Some(expected));
        // No epoch, and a negative one, are stored as none.
        for commit in [OffsetCommit::new("t", 0, 1), OffsetCommit::new("t", 0, 1).leader_epoch(-3)] {
            let decoded = decode_value(&encode_value(&commit, 0, 0).unwrap()).unwrap();
            assert_eq!((decoded.leader_epoch, decoded.metadata.as_str()), (None, ""));
        }
        // Every cut, a byte too many, a length past the end, bad UTF-8 and
        // unknown versions are refused.
        for cut in 0..value.len() {
            assert_eq!(decode_value(&value[..cut]), None, "cut at {cut}");
        }
        let mut long = value.clone();
        long.push(b'x');
        assert_eq!(decode_value(&long), None);
        let mut huge = value.clone();
        huge[METADATA_LEN_AT..METADATA_AT].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_value(&huge), None);
        let mut not_utf8 = encode_value(&OffsetCommit::new("t", 0, 1).metadata("ab"), 0, 0).unwrap();
        let last = not_utf8.len() - 1;
        not_utf8[last] = 0xff;
        assert_eq!(decode_value(&not_utf8), None);
        for version in [0u8, 3, 0xff] {
            let mut other = value.clone();
            other[0] = version;
            assert_eq!(decode_value(&other), None);
        }
        assert_eq!(decode_value(&[1; 25]), None, "a v1 value is 17 bytes exactly");
    }

    /// A version-1 value, byte by byte as stores written before version 2
    /// hold it: `{ 1 | offset u64 | commit_timestamp_ms i64 }`.
    fn v1_value(offset: u64, timestamp_ms: i64) -> Vec<u8> {
        let mut value = vec![1u8];
        value.extend_from_slice(&offset.to_le_bytes());
        value.extend_from_slice(&timestamp_ms.to_le_bytes());
        value
    }

    #[test]
    fn version_1_values_are_still_read() {
        let decoded = decode_value(&v1_value(42, 7)).unwrap();
        let expected = CommittedOffset {
            offset: 42,
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp_ms: 7,
        };
        assert_eq!(decoded, expected);
    }

    #[test]
    fn a_store_with_version_1_commits_reopens_with_them_and_new_commits_win() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.create_topic("orders", TopicConfig::with_partitions(2)).unwrap();
        // Records as a store written before version 2 holds them.
        let offsets_topic = store.topic_internal(OFFSETS_TOPIC).unwrap();
        let partition = partition_for_key(b"old", offsets_topic.partition_count());
        let old = [
            Record::with_key(encode_key("old", "orders", 0), v1_value(10, 5)).timestamp_ms(5),
            Record::with_key(encode_key("old", "orders", 1), v1_value(11, 5)).timestamp_ms(5),
        ];
        offsets_topic.append_to(partition, &old).unwrap();
        store.close().unwrap();
        drop((offsets_topic, store));

        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let offsets = store.offsets();
        let committed = offsets.fetch_committed("old", "orders", 0).unwrap().unwrap();
        assert_eq!((committed.offset, committed.leader_epoch, committed.metadata.as_str()), (10, None, ""));
        assert_eq!(committed.commit_timestamp_ms, 5);
        // A new commit (version 2) on top of an old one wins, across a reopen.
        offsets
            .commit_many("old", &[OffsetCommit::new("orders", 1, 20).leader_epoch(4).metadata("m")])
            .unwrap();
        store.close().unwrap();
        drop((offsets, store));
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let all = store.offsets().group_committed("old");
        assert_eq!(all[&("orders".to_owned(), 0)].offset, 10);
        let new = &all[&("orders".to_owned(), 1)];
        assert_eq!((new.offset, new.leader_epoch, new.metadata.as_str()), (20, Some(4), "m"));
    }
}
