use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::io::{read_exact_at, StdFileSystem};

fn pool(capacity: usize) -> FilePool {
    FilePool::new(Arc::new(StdFileSystem), capacity)
}

fn read(file: &dyn FileHandle, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    read_exact_at(file, &mut buf, 0).unwrap();
    buf
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn many_files_share_few_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(3);
    let files: Vec<_> = (0..20)
        .map(|i| {
            let f = pool.open(&dir.path().join(format!("f{i}")), OpenMode::CreateNew).unwrap();
            f.write_all_at(format!("file {i:02}").as_bytes(), 0).unwrap();
            f
        })
        .collect();
    assert!(pool.stats().open_files <= 3);
    for round in 0..3 {
        for (i, f) in files.iter().enumerate() {
            assert_eq!(read(&**f, 7), format!("file {i:02}").as_bytes(), "round {round}");
            f.sync_data().unwrap();
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.peak_open_files, 3, "{stats:?}");
    assert!(stats.evictions >= 57, "{stats:?}");
    drop(files);
    assert_eq!(pool.stats().open_files, 0, "dropping a handle gives its descriptor back");
    assert_eq!(
        pool.open(&dir.path().join("f1"), OpenMode::CreateNew).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
}

#[test]
fn descriptors_really_close() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(2);
    let before = open_fds();
    let files: Vec<_> =
        (0..50).map(|i| pool.open(&dir.path().join(format!("f{i}")), OpenMode::Create).unwrap()).collect();
    // Other tests run in parallel and open files too: a margin, far below 50.
    assert!(open_fds() < before + 10, "{} open, {before} before", open_fds());
    drop(files);
}

#[test]
fn mappings_come_back_after_eviction_with_their_writes() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(2);
    let idx = pool.open(&dir.path().join("i"), OpenMode::Create).unwrap();
    idx.set_len(4096).unwrap();
    // SAFETY: a file of this test's own temp directory, sized first; nothing
    // else opens it.
    #[expect(unsafe_code, reason = "a test mapping")]
    let mut map = unsafe { idx.map(4096) }.unwrap();
    assert_eq!(pool.stats().mappings, 0, "mapped at first access only");
    map.bytes_mut().unwrap()[..4].copy_from_slice(b"abcd");
    assert_eq!(pool.stats().mappings, 1);
    assert_eq!(pool.stats().mapped_bytes, 4096);
    // Two other files push the index out of the pool.
    let others: Vec<_> =
        (0..2).map(|i| pool.open(&dir.path().join(format!("o{i}")), OpenMode::Create).unwrap()).collect();
    for o in &others {
        o.write_all_at(b"x", 0).unwrap();
    }
    assert_eq!(pool.stats().mappings, 0, "evicted with its descriptor");
    assert_eq!(&map.bytes().unwrap()[..4], b"abcd", "the unmapped writes stayed with the file");
    map.flush().unwrap();
    drop(map);
    assert_eq!(pool.stats().mapped_bytes, 0);
    assert_eq!(&read(&*idx, 4), b"abcd");
}

#[test]
fn removed_and_replaced_files_stay_readable_through_live_handles() {
    let dir = tempfile::tempdir().unwrap();
    // Pins may hold a quarter of the pool: room for the two removed or
    // replaced.
    let pool = pool(8);
    let path = |n: &str| dir.path().join(n);
    let old = pool.open(&path("seg"), OpenMode::Create).unwrap();
    old.write_all_at(b"old bytes", 0).unwrap();
    let moving = pool.open(&path("seg.cleaned"), OpenMode::Create).unwrap();
    moving.write_all_at(b"new bytes", 0).unwrap();
    let gone = pool.open(&path("deleted"), OpenMode::Create).unwrap();
    gone.write_all_at(b"last read", 0).unwrap();
    // Replaced and removed while their descriptors are open: pinned.
    pool.rename(&path("seg.cleaned"), &path("seg")).unwrap();
    pool.remove_file(&path("deleted")).unwrap();
    // Push everything else out of the pool.
    let filler: Vec<_> =
        (0..4).map(|i| pool.open(&path(&format!("f{i}")), OpenMode::Create).unwrap()).collect();
    for f in &filler {
        f.write_all_at(b"f", 0).unwrap();
    }
    drop(filler);
    assert_eq!(read(&*old, 9), b"old bytes", "replaced: the handle keeps the old file");
    assert_eq!(read(&*moving, 9), b"new bytes", "renamed: the handle follows its file");
    assert_eq!(read(&*gone, 9), b"last read", "removed: still readable");
    let fresh = pool.open(&path("seg"), OpenMode::Existing).unwrap();
    assert_eq!(read(&*fresh, 9), b"new bytes");
    assert!(!Path::new(&path("deleted")).exists());
    // A file removed while its descriptor was closed is never reopened by
    // its old name (which may name another file by then).
    let closed = pool.open(&path("closed"), OpenMode::Create).unwrap();
    let filler: Vec<_> =
        (0..4).map(|i| pool.open(&path(&format!("g{i}")), OpenMode::Create).unwrap()).collect();
    for f in &filler {
        f.write_all_at(b"g", 0).unwrap();
    }
    drop(filler);
    pool.remove_file(&path("closed")).unwrap();
    std::fs::write(path("closed"), b"another file").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(closed.read_at(&mut buf, 0).unwrap_err().kind(), io::ErrorKind::NotFound);
}

#[test]
fn concurrent_use_stays_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(4);
    let files: Vec<_> = (0..16)
        .map(|i| {
            let f = pool.open(&dir.path().join(format!("f{i}")), OpenMode::Create).unwrap();
            f.write_all_at(&[i as u8; 64], 0).unwrap();
            f
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let files = &files;
            s.spawn(move || {
                for round in 0..500 {
                    let i = (round * 7 + t * 3) % files.len();
                    assert_eq!(read(&*files[i], 64), vec![i as u8; 64]);
                }
            });
        }
    });
    assert!(pool.stats().peak_open_files <= 4, "{:?}", pool.stats());
}

/// The pool remembers paths only for entries that live: opening and
/// dropping handles (a store's close opens every partition's marker once)
/// leaves nothing behind, a renamed entry is found under its new name, and
/// a mapping keeps its entry's record while it lives.
#[test]
fn paths_are_forgotten_with_their_last_handle() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(4);
    let remembered = |pool: &FilePool| pool.shared.by_path.lock().map.len();
    for round in 0..3 {
        for i in 0..100 {
            let f = pool.open(&dir.path().join(format!("f{i}")), OpenMode::Create).unwrap();
            f.write_all_at(&[round], 0).unwrap();
        }
        assert_eq!(remembered(&pool), 0, "round {round}");
    }
    let kept = pool.open(&dir.path().join("kept"), OpenMode::Create).unwrap();
    kept.set_len(16).unwrap();
    // SAFETY: a file of this test's own temp directory, sized first; nothing
    // else opens it.
    #[expect(unsafe_code, reason = "a test mapping")]
    let map = unsafe { kept.map(16) }.unwrap();
    pool.rename(&dir.path().join("kept"), &dir.path().join("moved")).unwrap();
    assert_eq!(remembered(&pool), 1);
    assert_eq!(pool.entries_at(&dir.path().join("moved"), false).len(), 1);
    drop(kept);
    assert_eq!(remembered(&pool), 1, "the mapping still holds the entry");
    drop(map);
    assert_eq!(remembered(&pool), 0);
}
