//! Consumer-group offsets: commit, fetch, reopen, crash, many groups, bad
//! input, and compaction of the offsets topic.

use std::path::Path;
use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::store::OffsetCommit;
use annals::{AdminError, Error, Store, StoreConfig, TopicConfig};

fn small_store_config() -> StoreConfig {
    let mut config = StoreConfig::default();
    config.offsets_topic.log.segment_bytes = 2048;
    config.offsets_topic.log.index_interval_bytes = 256;
    config.offsets_topic.log.segment_index_bytes = 1024;
    config
}

#[test]
fn commits_survive_reopen_and_groups_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.create_topic("orders", TopicConfig::with_partitions(3)).unwrap();
    store.create_topic("audit", TopicConfig::default()).unwrap();
    let offsets = store.offsets();
    for g in 0..50 {
        let group = format!("group-{g}");
        let commits = [
            OffsetCommit::new("orders", 0, g),
            OffsetCommit::new("orders", 2, g * 2),
            OffsetCommit::new("audit", 0, 7),
        ];
        offsets.commit_many(&group, &commits).unwrap();
    }
    offsets.commit("group-3", "orders", 0, 1000).unwrap(); // later commits win
    offsets.delete_group("group-4").unwrap();
    assert_eq!(offsets.list_groups().len(), 49);
    assert!(!store.list_topics().contains(&annals::OFFSETS_TOPIC.to_owned()), "internal topic hidden");
    store.close().unwrap();
    drop((offsets, store));

    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let offsets = store.offsets();
    assert_eq!(offsets.list_groups().len(), 49);
    assert_eq!(offsets.fetch("group-3", "orders", 0).unwrap(), Some(1000));
    assert_eq!(offsets.fetch("group-7", "orders", 2).unwrap(), Some(14));
    assert_eq!(offsets.fetch("group-7", "orders", 1).unwrap(), None, "never committed");
    assert_eq!(offsets.fetch("group-4", "orders", 0).unwrap(), None, "deleted group");
    let g9 = offsets.group_offsets("group-9");
    assert_eq!(g9.len(), 3);
    assert_eq!(g9[&("audit".to_owned(), 0)], 7);
}

#[test]
fn a_commit_of_many_partitions_keeps_epochs_and_metadata_across_reopen_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.create_topic("orders", TopicConfig::with_partitions(3)).unwrap();
    let offsets = store.offsets();
    let long = "é".repeat(2048);
    let commits = [
        OffsetCommit::new("orders", 0, 10).leader_epoch(7).metadata("stream-time=1000"),
        OffsetCommit::new("orders", 1, 11).leader_epoch(8),
        OffsetCommit::new("orders", 2, 12).metadata(&long),
    ];
    // One batch: the same three commits, one by one (another group of a
    // name as long), take two more 61-byte batch headers.
    let size = store.offsets_topic_size();
    offsets.commit_many("streams", &commits).unwrap();
    let together = store.offsets_topic_size() - size;
    for c in &commits {
        offsets.commit_many("streamz", std::slice::from_ref(c)).unwrap();
    }
    let apart = store.offsets_topic_size() - size - together;
    assert_eq!(apart - together, 2 * 61, "{together} bytes together, {apart} apart");
    offsets.delete_group("streamz").unwrap();
    let bad = [OffsetCommit::new("orders", 0, 99), OffsetCommit::new("orders", 3, 1)];
    assert!(matches!(
        offsets.commit_many("streams", &bad),
        Err(Error::Admin(AdminError::PartitionOutOfRange { .. }))
    ));
    store.close().unwrap();
    drop((offsets, store));

    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let offsets = store.offsets();
    assert_eq!(offsets.list_groups(), ["streams"]);
    let all = offsets.group_committed("streams");
    let got: Vec<(u64, Option<i32>, usize)> =
        all.values().map(|c| (c.offset, c.leader_epoch, c.metadata.chars().count())).collect();
    assert_eq!(got, [(10, Some(7), 16), (11, Some(8), 0), (12, None, 2048)], "nothing of the refused commit");
    let first = offsets.fetch_committed("streams", "orders", 0).unwrap().unwrap();
    assert_eq!(first.metadata, "stream-time=1000");
    assert!(first.commit_timestamp_ms > 0);
    assert_eq!(offsets.group_offsets("streams")[&("orders".to_owned(), 2)], 12);
    // Deleting some of them (those committed; each once) is durable.
    assert_eq!(offsets.delete_offsets("streams", &[("orders", 0), ("orders", 0), ("nope", 5)]).unwrap(), 1);
    store.close().unwrap();
    drop((offsets, store));
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.offsets().fetch("streams", "orders", 0).unwrap(), None);
    assert_eq!(store.offsets().fetch("streams", "orders", 1).unwrap(), Some(11));
}

#[test]
fn bad_commits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.create_topic("t", TopicConfig::with_partitions(2)).unwrap();
    let offsets = store.offsets();
    assert!(matches!(offsets.commit("", "t", 0, 1), Err(Error::Admin(AdminError::InvalidGroupName { .. }))));
    assert!(matches!(
        offsets.commit(&"g".repeat(256), "t", 0, 1),
        Err(Error::Admin(AdminError::InvalidGroupName { .. }))
    ));
    assert!(matches!(offsets.commit("g", "nope", 0, 1), Err(Error::Admin(AdminError::UnknownTopic { .. }))));
    assert!(matches!(
        offsets.commit("g", "t", 2, 1),
        Err(Error::Admin(AdminError::PartitionOutOfRange { .. }))
    ));
    assert!(matches!(
        offsets.commit("g", annals::OFFSETS_TOPIC, 0, 1),
        Err(Error::Admin(AdminError::UnknownTopic { .. }))
    ));
    assert!(matches!(
        store.create_topic(annals::OFFSETS_TOPIC, TopicConfig::default()),
        Err(Error::Admin(AdminError::InvalidTopicName { .. }))
    ));
    // Like Kafka: past the log end is the consumer's business.
    offsets.commit("g", "t", 1, 1_000_000).unwrap();
    assert_eq!(offsets.fetch("g", "t", 1).unwrap(), Some(1_000_000));
    assert!(offsets.list_groups() == ["g"], "refused commits left nothing");
}

#[test]
fn the_offsets_topic_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_store_config()).unwrap();
    store.create_topic("t", TopicConfig::default()).unwrap();
    let offsets = store.offsets();
    for i in 0..2000u64 {
        offsets.commit(&format!("g{}", i % 4), "t", 0, i).unwrap();
    }
    let before = store.offsets_topic_size();
    let report = store.compact().unwrap();
    let after = store.offsets_topic_size();
    eprintln!("offsets topic: {before} -> {after} bytes, {report:?}");
    assert!(report.records_removed > 1500, "{report:?}");
    assert!(after * 4 < before, "{before} -> {after}");
    drop((offsets, store));
    let store = Store::open(dir.path(), small_store_config()).unwrap();
    for g in 0..4u64 {
        assert_eq!(store.offsets().fetch(&format!("g{g}"), "t", 0).unwrap(), Some(1996 + g));
    }
}

#[test]
fn acknowledged_commits_survive_every_crash() {
    let run = |fs: &SimFs, acked: &mut Vec<(String, u64)>| -> annals::Result<()> {
        let store = Store::open_with(
            Path::new("/data"),
            crash_config(),
            annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
        )?;
        store.create_topic("t", TopicConfig::default())?;
        let offsets = store.offsets();
        for i in 0..8u64 {
            let group = format!("g{}", i % 3);
            offsets.commit(&group, "t", 0, i)?;
            acked.push((group, i));
        }
        Ok(())
    };
    let total = {
        let fs = SimFs::new();
        run(&fs, &mut Vec::new()).unwrap();
        fs.op_count()
    };
    let mut failures = Vec::new();
    for point in 0..=total {
        let fs = SimFs::new();
        fs.crash_at(point);
        let mut acked = Vec::new();
        let _ = run(&fs, &mut acked);
        for mode in [CrashMode::DurableOnly, CrashMode::AllPending, CrashMode::Seeded(point)] {
            let image = fs.crash_image(mode);
            let store = match Store::open_with(
                Path::new("/data"),
                crash_config(),
                annals::OpenOptions::default().with_fs(Arc::new(image)),
            ) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!("op {point} {mode:?}: {e}"));
                    continue;
                }
            };
            for g in 0..3 {
                let group = format!("g{g}");
                let last_acked = acked.iter().filter(|(gr, _)| *gr == group).map(|(_, o)| *o).max();
                let got = store.offsets().fetch(&group, "t", 0).unwrap();
                // The last acknowledged commit, or a later one in flight.
                if got < last_acked {
                    failures.push(format!(
                        "op {point} {mode:?}: {group} at {got:?}, acknowledged {last_acked:?}"
                    ));
                }
            }
        }
    }
    eprintln!("offsets: {} crash points, {} failures", total + 1, failures.len());
    assert!(failures.is_empty(), "{:#?}", &failures[..failures.len().min(5)]);
}

fn crash_config() -> StoreConfig {
    let mut config = small_store_config();
    config.offsets_topic.partitions = 1;
    config.offsets_topic.log.segment_index_bytes = 256;
    config
}
