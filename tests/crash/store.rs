//! Crash enumeration of topic metadata and the store's checkpoint table:
//! creating, filling, deleting and re-creating topics, deleting records
//! (a log start inside a segment, kept only by the table) and truncating,
//! killed at every mutating operation. After recovery the store must open,
//! and each topic must exist exactly as a state the model allows: created
//! topics with their acknowledged records from their acknowledged log
//! start, deleted topics gone (or whole, if the delete was in flight), a
//! topic created again under a deleted one's name starting from zero.

use annals_testkit as common;

use std::collections::BTreeMap;
use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::ReadBound;
use annals::{Durability, LogConfig, Record, Store, StoreConfig, TopicConfig};
use common::crash::record;

/// One partition: its log start offset and its records by offset (those
/// below the start are deleted).
#[derive(Clone, Debug, Default)]
struct Log {
    start: usize,
    records: Vec<Vec<u8>>,
}

/// Topic name -> each partition's acknowledged (durable) state.
type Model = BTreeMap<String, Vec<Log>>;

fn topic_config(partitions: u32) -> TopicConfig {
    TopicConfig {
        partitions,
        log: LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 128,
            segment_index_bytes: 256,
            durability: Durability::Always,
            ..LogConfig::default()
        },
    }
}

fn value(r: &Record) -> Vec<u8> {
    r.value.as_deref().unwrap_or(b"<tombstone>").to_vec()
}

struct Run {
    current: Model,
    in_flight: Option<Model>,
}

impl Run {
    fn step<T>(&mut self, after: Model, op: impl FnOnce() -> annals::Result<T>) -> annals::Result<T> {
        self.in_flight = Some(after.clone());
        let out = op()?;
        self.current = after;
        self.in_flight = None;
        Ok(out)
    }
}

/// A store whose internal offsets topic is small, so images stay small.
pub fn store_config() -> StoreConfig {
    // The fewest descriptors a store takes: every crash point also runs
    // with files closed and reopened under it (issue 20).
    let mut config = StoreConfig { max_open_files: annals::store::MIN_OPEN_FILES, ..StoreConfig::default() };
    config.offsets_topic.partitions = 1;
    config.offsets_topic.log.segment_bytes = 600;
    config.offsets_topic.log.index_interval_bytes = 128;
    config.offsets_topic.log.segment_index_bytes = 256;
    config
}

fn workload(fs: &SimFs, run: &mut Run) -> annals::Result<()> {
    let store = Store::open_with(
        "/data",
        store_config(),
        annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
    )?;
    let create = |run: &mut Run, name: &str, partitions: u32| {
        let mut after = run.current.clone();
        after.insert(name.to_owned(), vec![Log::default(); partitions as usize]);
        run.step(after, || store.create_topic(name, topic_config(partitions)))
    };
    let append = |run: &mut Run, name: &str, partition: u32, from: u64, n: u64| {
        let records: Vec<Record> = (from..from + n).map(record).collect();
        let mut after = run.current.clone();
        after.get_mut(name).unwrap()[partition as usize].records.extend(records.iter().map(value));
        // In flight, the records may or may not be there: the durable
        // check below accepts any prefix between the two.
        let topic = store.topic(name)?;
        run.step(after, || topic.append_to(partition, &records))
    };
    let delete_records = |run: &mut Run, name: &str, partition: u32, before: u64| {
        let mut after = run.current.clone();
        after.get_mut(name).unwrap()[partition as usize].start = before as usize;
        let partition = store.topic(name)?.partition(partition)?;
        run.step(after, || partition.delete_records_before(before))
    };
    let truncate = |run: &mut Run, name: &str, partition: u32, to: u64| {
        let mut after = run.current.clone();
        after.get_mut(name).unwrap()[partition as usize].records.truncate(to as usize);
        let partition = store.topic(name)?.partition(partition)?;
        run.step(after, || partition.truncate_to(to))
    };
    create(run, "a", 2)?;
    append(run, "a", 0, 0, 3)?;
    append(run, "a", 1, 3, 2)?;
    create(run, "b", 1)?;
    append(run, "b", 0, 5, 4)?;
    append(run, "b", 0, 9, 4)?;
    // Inside b's first segment: only the checkpoint table keeps it.
    delete_records(run, "b", 0, 2)?;
    truncate(run, "b", 0, 6)?;
    append(run, "b", 0, 13, 2)?;
    delete_records(run, "a", 0, 2)?;
    let mut after = run.current.clone();
    after.remove("a");
    run.step(after, || store.delete_topic("a"))?;
    create(run, "a", 1)?;
    append(run, "a", 0, 7, 1)?;
    // A clean close: seals and points unsynced, one syncfs, the table, the
    // markers, a second syncfs (every one of them a crash point).
    store.close()
}

/// Whether the recovered store matches `model`, where `floor` (the state
/// before the op in flight, if any) gives the records that must be there
/// and the log start offsets that must hold.
fn matches(store: &Store, model: &Model, floor: &Model) -> bool {
    if store.list_topics() != model.keys().cloned().collect::<Vec<_>>() {
        return false;
    }
    model.iter().all(|(name, partitions)| {
        let Ok(topic) = store.topic(name) else { return false };
        if topic.partition_count() as usize != partitions.len() {
            return false;
        }
        partitions.iter().enumerate().all(|(p, want)| {
            let partition = topic.partition(p as u32).unwrap();
            let start = partition.log_start_offset() as usize;
            let got: Vec<Vec<u8>> = match partition.read(start as u64, 1 << 20, ReadBound::LogEnd) {
                Ok(f) if partition.log_end_offset() as usize > start => {
                    f.records().map(|r| r.value.unwrap_or(b"<tombstone>").to_vec()).collect()
                }
                Ok(_) => Vec::new(),
                Err(_) => return false,
            };
            // The floor's log start holds and every acknowledged record of
            // the floor state is there, and nothing beyond what the model
            // allows.
            let floor = floor.get(name).filter(|f| f.len() == partitions.len()).map(|f| &f[p]);
            let (must_start, must_end) = floor.map_or((0, 0), |f| (f.start, f.records.len()));
            let end = start + got.len();
            start >= must_start
                && start <= want.start.max(must_start)
                && end >= must_end.max(start).min(want.records.len())
                && end <= want.records.len()
                && got[..] == want.records[start..end]
        })
    })
}

/// Crash points, images checked, failures.
fn enumerate(weaken: Option<fn(&SimFs)>) -> (u64, u64, Vec<String>) {
    let total = {
        let fs = SimFs::new();
        workload(&fs, &mut Run { current: Model::new(), in_flight: None }).unwrap();
        fs.op_count()
    };
    let (mut images, mut failures) = (0u64, Vec::new());
    for point in 0..=total {
        let fs = SimFs::new();
        if let Some(weaken) = weaken {
            weaken(&fs);
        }
        fs.crash_at(point);
        let mut run = Run { current: Model::new(), in_flight: None };
        let _ = workload(&fs, &mut run);
        let modes = [CrashMode::DurableOnly, CrashMode::AllPending]
            .into_iter()
            .chain((0..4).map(|s| CrashMode::Seeded(point * 10 + s)));
        for mode in modes {
            images += 1;
            let image = fs.crash_image(mode);
            let store = match Store::open_with(
                "/data",
                store_config(),
                annals::OpenOptions::default().with_fs(Arc::new(image)),
            ) {
                Ok(store) => store,
                Err(e) => {
                    failures.push(format!("op {point} {mode:?}: open failed: {e}"));
                    continue;
                }
            };
            let ok = matches(&store, &run.current, &run.current)
                || run.in_flight.as_ref().is_some_and(|m| matches(&store, m, &run.current));
            if !ok {
                failures.push(format!("op {point} {mode:?}: topics {:?}", store.list_topics()));
            }
        }
    }
    (total + 1, images, failures)
}

#[test]
fn topic_metadata_changes_survive_every_crash() {
    let (points, images, failures) = enumerate(None);
    eprintln!("metadata: {points} crash points, {images} images, {} failures", failures.len());
    assert!(points > 50);
    assert!(failures.is_empty(), "{:#?}", &failures[..failures.len().min(8)]);
}

/// Negative control: without directory fsyncs, topics and their data
/// vanish or half-exist after a crash, and the harness must see it.
#[test]
fn the_metadata_harness_catches_missing_directory_fsyncs() {
    let (_, _, failures) = enumerate(Some(|fs| fs.ignore_dir_sync(true)));
    eprintln!("metadata negative control (no dir fsync): {} failures", failures.len());
    assert!(!failures.is_empty());
}

/// Negative control: a checkpoint table not written when a log start moves
/// inside a segment (`delete_records`) lets that log start fall back to the
/// segment's base after a crash, deleted records coming back, and the
/// harness must see it.
#[cfg(feature = "mutation-testing")]
#[test]
fn the_store_harness_catches_a_log_start_the_table_does_not_keep() {
    annals::mutation::set(Some(annals::mutation::Mutation::LazyLogStart));
    let (_, _, failures) = enumerate(None);
    annals::mutation::set(None);
    eprintln!("checkpoint table negative control (lazy log start): {} failures", failures.len());
    assert!(!failures.is_empty());
}
