//! Committed consumer-group offsets, stored in the store's own compacted
//! topic `__consumer_offsets` (as Kafka does): a commit is an append, the
//! latest commit per (group, topic, partition) wins, and compaction keeps
//! the topic small. Commits honour that topic's durability policy (default
//! `Always`). An in-memory table, rebuilt from the topic at open, answers
//! fetches.
//!
//! Record format (`format::batch` records in that topic):
//! key `{ version: u8 = 1 | group_len: u16 | group | topic_len: u16 | topic
//! | partition: u32 }`, value `{ version: u8 = 1 | offset: u64 |
//! commit_timestamp_ms: i64 }` (little-endian); a tombstone deletes the key.
//! A group's commits all go to the partition its name hashes to.
//!
//! Like Kafka, an offset past the log end may be committed (the consumer
//! owns its position; a reader seeking there gets `OffsetOutOfRange`).

use std::collections::BTreeMap;

use byteorder::{ByteOrder, LittleEndian as LE};
use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::format::Record;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Commit {
    /// The committed offset; `None` once the group was deleted (kept so an
    /// older commit that lands after the delete cannot revive the key).
    offset: Option<u64>,
    /// Where the commit's record sits in its offsets partition: a key's
    /// commits all go to one partition, so this orders them.
    log_offset: u64,
}

/// Applies a commit appended at `log_offset` unless a later one is in the
/// table already (commits append without the table lock, so they may
/// reach it out of log order).
fn apply(table: &mut OffsetTable, key: (String, String, u32), offset: Option<u64>, log_offset: u64) {
    let commit = Commit { offset, log_offset };
    table
        .entry(key)
        .and_modify(|c| {
            if c.log_offset < log_offset {
                *c = commit;
            }
        })
        .or_insert(commit);
}

/// The committed offsets of consumer groups (see the module docs).
///
/// # Examples
///
/// ```
/// use annals::{Store, StoreConfig, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), StoreConfig::default())?;
/// store.create_topic("orders", TopicConfig::with_partitions(2))?;
/// let offsets = store.offsets();
/// offsets.commit("billing", "orders", 1, 42)?;
/// assert_eq!(offsets.fetch("billing", "orders", 1)?, Some(42));
/// assert_eq!(offsets.list_groups(), ["billing"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConsumerOffsets {
    pub(super) store: Store,
}

fn encode_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + group.len() + topic.len());
    key.push(1);
    key.extend_from_slice(&(group.len() as u16).to_le_bytes());
    key.extend_from_slice(group.as_bytes());
    key.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    key.extend_from_slice(topic.as_bytes());
    key.extend_from_slice(&partition.to_le_bytes());
    key
}

fn decode_key(key: &[u8]) -> Option<(String, String, u32)> {
    let (&version, rest) = key.split_first()?;
    if version != 1 {
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

fn encode_value(offset: u64, timestamp_ms: i64) -> Vec<u8> {
    let mut value = vec![1u8];
    value.extend_from_slice(&offset.to_le_bytes());
    value.extend_from_slice(&timestamp_ms.to_le_bytes());
    value
}

fn decode_value(value: &[u8]) -> Option<u64> {
    (value.len() == 17 && value[0] == 1).then(|| LE::read_u64(&value[1..9]))
}

fn check_group(group: &str) -> Result<()> {
    if group.is_empty() || group.len() > GROUP_NAME_MAX {
        return Err(Error::InvalidGroupName { group: group.to_owned() });
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
            let fetched = partition.read(next, 1 << 20)?;
            for r in fetched.records() {
                let bad = || Error::InvalidMetadata {
                    path: partition.log_handle().dir().to_path_buf(),
                    reason: format!("undecodable consumer offset record at offset {}", r.offset),
                };
                let key = decode_key(r.key.unwrap_or(&[])).ok_or_else(bad)?;
                let offset = r.value.map(|v| decode_value(v).ok_or_else(bad)).transpose()?;
                apply(&mut table, key, offset, r.offset);
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
            return Err(Error::UnknownTopic { topic: topic.to_owned() });
        }
        self.store.topic(topic)?.partition(partition).map(drop)
    }

    /// Commits `offset` (the next offset the group will read) for a group
    /// on one partition. Returns once the commit is as durable as the
    /// offsets topic's policy makes it.
    ///
    /// # Errors
    /// [`Error::InvalidGroupName`], [`Error::UnknownTopic`],
    /// [`Error::PartitionOutOfRange`], or the append's errors.
    pub fn commit(&self, group: &str, topic: &str, partition: u32, offset: u64) -> Result<()> {
        self.commit_many(group, &[(topic, partition, offset)])
    }

    /// Commits several offsets of one group at once (one append).
    ///
    /// # Errors
    /// As [`ConsumerOffsets::commit`]; nothing is committed on error.
    pub fn commit_many(&self, group: &str, offsets: &[(&str, u32, u64)]) -> Result<()> {
        check_group(group)?;
        for &(topic, partition, _) in offsets {
            self.check_target(topic, partition)?;
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let now = self.store.now_ms();
        let records: Vec<Record> = offsets
            .iter()
            .map(|&(t, p, o)| {
                Record::with_key(encode_key(group, t, p), encode_value(o, now)).timestamp_ms(now)
            })
            .collect();
        // The append (and its fsync) runs without the table lock, so
        // commits of many groups share group fsyncs; the table changes
        // only after it succeeded, and a commit older in the log than the
        // one in the table is not applied.
        let first = self.append(group, &records)?;
        let mut table = self.table().lock();
        for (i, &(t, p, o)) in offsets.iter().enumerate() {
            apply(&mut table, (group.to_owned(), t.to_owned(), p), Some(o), first + i as u64);
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
    /// [`Error::InvalidGroupName`].
    pub fn fetch(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        check_group(group)?;
        let key = (group.to_owned(), topic.to_owned(), partition);
        Ok(self.table().lock().get(&key).and_then(|c| c.offset))
    }

    /// Every committed offset of a group, by (topic, partition).
    pub fn group_offsets(&self, group: &str) -> BTreeMap<(String, u32), u64> {
        self.table()
            .lock()
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .filter_map(|((_, t, p), c)| Some(((t.clone(), *p), c.offset?)))
            .collect()
    }

    /// Groups with at least one committed offset, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        let table = self.table().lock();
        let live = table.iter().filter(|(_, c)| c.offset.is_some());
        let mut groups: Vec<String> = live.map(|((g, _, _), _)| g.clone()).collect();
        groups.dedup();
        groups
    }

    /// Deletes a group's committed offsets (tombstones, compacted away).
    ///
    /// # Errors
    /// [`Error::InvalidGroupName`], or the append's errors.
    pub fn delete_group(&self, group: &str) -> Result<()> {
        check_group(group)?;
        let keys: Vec<(String, String, u32)> = {
            let table = self.table().lock();
            let live = table.iter().filter(|((g, _, _), c)| g == group && c.offset.is_some());
            live.map(|(k, _)| k.clone()).collect()
        };
        if keys.is_empty() {
            return Ok(());
        }
        let records: Vec<Record> =
            keys.iter().map(|(g, t, p)| Record::tombstone(Bytes::from(encode_key(g, t, *p)))).collect();
        let first = self.append(group, &records)?;
        let mut table = self.table().lock();
        for (i, key) in keys.into_iter().enumerate() {
            apply(&mut table, key, None, first + i as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_roundtrip_and_garbage_is_refused() {
        let key = encode_key("g", "orders.eu", 7);
        assert_eq!(decode_key(&key), Some(("g".into(), "orders.eu".into(), 7)));
        assert_eq!(decode_value(&encode_value(42, 5)), Some(42));
        for cut in 0..key.len() {
            assert_eq!(decode_key(&key[..cut]), None);
        }
        let mut long = key.clone();
        long.push(0);
        assert_eq!(decode_key(&long), None);
        assert_eq!(decode_value(&[2; 17]), None);
    }
}
