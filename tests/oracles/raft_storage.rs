//! openraft's own storage test suite (`openraft::testing::Suite::test_all`)
//! on an annals-backed `LogStore` and the example state machine, plus what
//! the suite does not check: reopening, purging past the log end, damaged
//! state files and refused appends.

use std::sync::Arc;

use annals::io::sim::{CrashMode, SimFs};
use annals::raft::{KvConfig, KvStateMachine, LogStore, RaftStoreError};
use annals::ReadBound;
use annals::{LogConfig, OpenOptions};
use openraft::entry::RaftEntry;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, LogId, StorageError, Vote};
use tempfile::TempDir;

type Store = LogStore<KvConfig>;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 4096, segment_index_bytes: 4096, ..LogConfig::default() }
}

struct Builder;

impl StoreBuilder<KvConfig, Store, KvStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, Store, KvStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("raft"), config()).expect("open store");
        let fs = Arc::new(annals::io::StdFileSystem);
        let machine = KvStateMachine::open(fs, dir.path().join("sm")).expect("open state machine");
        Ok((dir, store, machine))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).unwrap();
}

/// The example state machine keeps its last snapshot on disk and starts
/// from it; a damaged snapshot file is an error, not an empty state.
#[test]
fn a_persistent_state_machine_starts_from_its_last_snapshot() {
    use openraft::storage::RaftStateMachine;
    use openraft::RaftSnapshotBuilder;
    let dir = tempfile::tempdir().unwrap();
    let fs: annals::io::SharedFs = Arc::new(annals::io::StdFileSystem);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut machine = KvStateMachine::open(fs.clone(), dir.path()).unwrap();
        let set = |i: u64| Entry {
            log_id: id(1, i),
            payload: openraft::EntryPayload::Normal(annals::raft::KvRequest::Set {
                key: format!("k{i}"),
                value: format!("v{i}"),
            }),
        };
        machine.apply((0..5).map(set)).await.unwrap();
        let snapshot = machine.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(id(1, 4)));
        machine.apply((5..7).map(set)).await.unwrap(); // after the snapshot: not kept
        drop(machine);

        let mut machine = KvStateMachine::open(fs.clone(), dir.path()).unwrap();
        assert_eq!(machine.last_applied(), Some(id(1, 4)));
        assert_eq!(machine.get("k4").as_deref(), Some("v4"));
        assert_eq!(machine.get("k5"), None);
        let current = machine.get_current_snapshot().await.unwrap().expect("the snapshot");
        assert_eq!(current.meta, snapshot.meta);
    });
    let file = dir.path().join("snapshot");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert!(matches!(KvStateMachine::open(fs, dir.path()), Err(RaftStoreError::InvalidState { .. })));
}

fn id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn blanks(term: u64, range: std::ops::Range<u64>) -> Vec<Entry<KvConfig>> {
    range.map(|i| Entry::new_blank(id(term, i))).collect()
}

fn indexes(store: &Store) -> Vec<(u64, u64)> {
    store.entries(..).unwrap().iter().map(|e| (e.log_id.leader_id.term, e.log_id.index)).collect()
}

#[test]
fn state_and_entries_survive_reopen_and_terms_become_leader_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), config()).unwrap();
    store.write_vote(&Vote::new_committed(3, 1)).unwrap();
    store.append_entries(blanks(1, 0..4)).unwrap();
    store.append_entries(blanks(1, 4..6).into_iter().chain(blanks(3, 6..9))).unwrap();
    store.write_committed(Some(id(3, 6))).unwrap();
    assert_eq!(store.log().high_watermark(), 7, "committed entries end at 7");
    assert_eq!(store.log().leader_epochs(), [(1, 0), (3, 6)]);
    store.truncate_since(8).unwrap();
    drop(store);

    let store = Store::open(dir.path(), config()).unwrap();
    assert_eq!(store.vote(), Some(&Vote::new_committed(3, 1)));
    assert_eq!(store.committed(), Some(&id(3, 6)));
    assert_eq!(store.last_log_id().unwrap(), Some(id(3, 7)));
    assert_eq!(indexes(&store).len(), 8);
    assert_eq!(store.log().high_watermark(), 7);
    let committed: Vec<u64> =
        store.log().read(0, 1 << 20, ReadBound::HighWatermark).unwrap().records().map(|r| r.offset).collect();
    assert_eq!(committed, (0..6).collect::<Vec<_>>(), "whole batches below the high watermark");
}

#[test]
fn purging_past_the_last_entry_starts_the_log_over_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), config()).unwrap();
    store.append_entries(blanks(2, 0..5)).unwrap();
    store.purge_upto(id(4, 20)).unwrap();
    assert_eq!(store.last_log_id().unwrap(), None);
    assert!(store.log().leader_epochs().is_empty());
    // A term below the cut entries' is fine after a snapshot past them.
    store.append_entries(blanks(3, 21..23)).unwrap();
    drop(store);
    let store = Store::open(dir.path(), config()).unwrap();
    assert_eq!(store.last_purged_log_id(), Some(&id(4, 20)));
    assert_eq!(indexes(&store), [(3, 21), (3, 22)]);
    assert_eq!(store.log().log_start_offset(), 21);
}

#[test]
fn bad_appends_and_damaged_state_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), config()).unwrap();
    store.append_entries(blanks(1, 0..3)).unwrap();
    let gap = store.append_entries(blanks(1, 4..5));
    assert!(matches!(gap, Err(RaftStoreError::NonContiguous { expected: 3, found: 4 })), "{gap:?}");
    let again = store.append_entries(blanks(1, 2..3));
    assert!(matches!(again, Err(RaftStoreError::NonContiguous { expected: 3, found: 2 })), "{again:?}");
    let huge = store.append_entries(blanks(1, 3..4).into_iter().chain(blanks(1 << 40, 4..5)));
    assert!(matches!(huge, Err(RaftStoreError::TermTooLarge { .. })), "{huge:?}");
    assert_eq!(store.last_log_id().unwrap(), Some(id(1, 2)), "nothing of that call written");
    // Entries before a gap in one call are appended; the rest is not.
    let partial = store.append_entries(blanks(1, 3..5).into_iter().chain(blanks(1, 6..7)));
    assert!(matches!(partial, Err(RaftStoreError::NonContiguous { expected: 5, found: 6 })));
    assert_eq!(store.last_log_id().unwrap(), Some(id(1, 4)));
    assert!(matches!(store.truncate_since(0), Ok(())));
    store.write_vote(&Vote::new(2, 1)).unwrap();
    drop(store);

    std::fs::write(dir.path().join("vote"), b"annals-raft-vote 1\njson={}\ncrc32=00000000\n").unwrap();
    let damaged = Store::open(dir.path(), config());
    assert!(matches!(damaged, Err(RaftStoreError::InvalidState { .. })), "{damaged:?}");

    let compacted = LogConfig { cleanup_policy: annals::CleanupPolicy::Compact, ..config() };
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(other.path(), compacted),
        Err(RaftStoreError::Log(annals::Error::InvalidConfig { .. }))
    ));
}

/// A record in the log that is not the entry for its offset (another
/// codec tag, a damaged or padded body, an entry of another index, a
/// tombstone) is a typed error naming the offset, never a panic or a wrong
/// entry.
#[test]
fn records_that_are_not_entries_are_refused() {
    let entry5 = [vec![1u8], postcard::to_stdvec(&blanks(1, 5..6)[0]).unwrap()].concat();
    let good2 = [vec![1u8], postcard::to_stdvec(&blanks(1, 2..3)[0]).unwrap()].concat();
    let cases: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("unknown tag", Some([&[9u8][..], &good2[1..]].concat())),
        ("truncated", Some(good2[..good2.len() - 1].to_vec())),
        ("trailing bytes", Some([&good2[..], &[0u8][..]].concat())),
        ("another index", Some(entry5)),
        ("empty", Some(Vec::new())),
        ("tombstone", None),
    ];
    for (what, value) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), config()).unwrap();
        store.append_entries(blanks(1, 0..2)).unwrap();
        let record =
            annals::Record { key: Some("k".into()), value: value.map(Into::into), ..Default::default() };
        store.log().append(&[record]).unwrap();
        let got = store.entries(..);
        assert!(matches!(got, Err(RaftStoreError::InvalidEntry { offset: 2, .. })), "{what}: {got:?}");
        assert_eq!(store.entries(..2).unwrap().len(), 2, "{what}: the entries before it still read");
    }
}

/// Readers on other threads (openraft's replication tasks) while the store
/// appends, truncates and purges: every read returns dense entries with
/// the log ids written, never an error for entries that went meanwhile.
#[test]
fn readers_race_appends_truncation_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), config()).unwrap();
    store.append_entries(blanks(1, 0..50)).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (reader, stop) = (store.reader(), &stop);
            s.spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads < 10 {
                    let got = reader.entries(..).expect("a read racing a purge or truncation");
                    for w in got.windows(2) {
                        assert_eq!(w[0].log_id.index + 1, w[1].log_id.index);
                    }
                    // Term 1 below index 1000, term 2 from there: as written.
                    for e in &got {
                        assert_eq!(e.log_id.leader_id.term, if e.log_id.index < 1000 { 1 } else { 2 });
                    }
                    reads += 1;
                }
            });
        }
        let mut end = 50;
        for round in 0..40u64 {
            store.append_entries(blanks(1, end..end + 20)).unwrap();
            end += 20;
            store.truncate_since(end - 5).unwrap();
            end -= 5;
            store.purge_upto(id(1, round * 10)).unwrap();
        }
        store.purge_upto(id(1, 1500)).unwrap();
        store.append_entries(blanks(2, 1501..1510)).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(store.entries(..).unwrap().len(), 9);
}

/// A crash at every I/O operation of a store's life (votes, appends across
/// terms, commits, a truncated suffix, a purge inside the log and one past
/// its end): every image reopens; the vote is the last one saved or the
/// one before; every entry acknowledged durable and not since truncated or
/// purged is there, with the log id it was written with; entries are dense
/// and never below the last purged id.
#[test]
fn crash_anywhere_keeps_every_durable_entry_and_the_vote() {
    #[derive(Default, Clone)]
    struct Acked {
        vote: Option<Vote<u64>>,
        prev_vote: Option<Vote<u64>>,
        /// Log ids acknowledged durable and not being truncated or purged.
        entries: Vec<LogId<u64>>,
        /// The last purge that returned.
        purged: Option<u64>,
    }
    fn workload(fs: &SimFs, acked: &mut Acked) -> Result<(), RaftStoreError> {
        let mut store =
            Store::open_with("/raft", config(), OpenOptions::default().with_fs(Arc::new(fs.clone())))?;
        let vote = |acked: &mut Acked, store: &mut Store, v: Vote<u64>| -> Result<(), RaftStoreError> {
            acked.prev_vote = acked.vote.replace(v);
            store.write_vote(&v)?;
            Ok(())
        };
        let append = |acked: &mut Acked, store: &mut Store, e: Vec<Entry<KvConfig>>| {
            let ids: Vec<_> = e.iter().map(|e| e.log_id).collect();
            store.append_entries(e)?;
            acked.entries.extend(ids);
            Ok::<(), RaftStoreError>(())
        };
        vote(acked, &mut store, Vote::new(1, 1))?;
        append(acked, &mut store, blanks(1, 0..6))?;
        store.write_committed(Some(id(1, 3)))?;
        vote(acked, &mut store, Vote::new(2, 2))?;
        acked.entries.truncate(4);
        store.truncate_since(4)?;
        append(acked, &mut store, blanks(2, 4..9))?;
        acked.entries.retain(|e| e.index > 5);
        store.purge_upto(id(2, 5))?;
        acked.purged = Some(5);
        vote(acked, &mut store, Vote::new_committed(3, 2))?;
        acked.entries.clear();
        store.purge_upto(id(3, 12))?;
        acked.purged = Some(12);
        append(acked, &mut store, blanks(3, 13..15))?;
        Ok(())
    }
    let probe = SimFs::new();
    workload(&probe, &mut Acked::default()).unwrap();
    let ops = probe.op_count();
    let mut images = 0;
    for crash_at in 1..=ops {
        let fs = SimFs::new();
        fs.crash_at(crash_at);
        let mut acked = Acked::default();
        let _ = workload(&fs, &mut acked);
        for mode in [CrashMode::DurableOnly, CrashMode::AllPending, CrashMode::Seeded(crash_at)] {
            images += 1;
            let image = fs.crash_image(mode);
            let at = format!("crash at {crash_at}/{ops} ({mode:?})");
            let store = Store::open_with("/raft", config(), OpenOptions::default().with_fs(Arc::new(image)))
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            let vote = store.vote().copied();
            assert!(vote == acked.vote || vote == acked.prev_vote, "{at}: vote {vote:?}");
            let got: Vec<LogId<u64>> = store.entries(..).unwrap().iter().map(|e| e.log_id).collect();
            for (i, w) in got.windows(2).enumerate() {
                assert_eq!(w[0].index + 1, w[1].index, "{at}: gap after entry {i}");
            }
            for want in &acked.entries {
                assert!(got.contains(want), "{at}: acknowledged {want:?} lost; have {got:?}");
            }
            let purged = store.last_purged_log_id().map(|p| p.index);
            assert!(purged >= acked.purged, "{at}: purged {purged:?}, acknowledged {:?}", acked.purged);
            if let (Some(p), Some(first)) = (purged, got.first()) {
                assert!(first.index > p, "{at}: entry {} at or below purged {p}", first.index);
            }
        }
    }
    assert!(images > 100, "{images} images");
}
