//! A simulated file system for crash and fault tests.
//!
//! It keeps, for every file and directory, what the running process sees
//! *and* what is durable: a file's bytes as of its last `sync_data`, plus the
//! writes and length changes made since; a directory's entries as of its
//! last `sync_dir`, plus the creates, renames and removals made since.
//!
//! [`SimFs::crash_image`] builds the disk a power cut could leave: durable
//! state plus a seeded choice of pending operations. Each pending file write
//! is lost, kept, torn (a prefix survives), left as zeros (the length grew,
//! the data did not), or kept with one 512-byte sector of garbage; length
//! changes apply or not. Each directory keeps a prefix of its pending
//! namespace operations (a rename is one operation: old name or new). The
//! same seed gives the same image.
//!
//! Faults: [`SimFs::crash_at`] makes mutating operation number `n` and
//! everything after it fail (the process "died" there);
//! [`SimFs::fail_at`] injects an error (EIO, ENOSPC, ...) once or from then
//! on; [`SimFs::set_capacity`] makes writes past a total size fail with
//! ENOSPC. A failed `sync_data` drops the file's pending writes from what
//! can become durable while reads still see them, as Linux does.
//!
//! Negative controls for the crash harness: [`SimFs::ignore_file_sync`] and
//! [`SimFs::ignore_dir_sync`] turn fsyncs into no-ops.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

mod fs;

/// The simulated file system. Clones share state.
#[derive(Clone, Debug, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    nodes: HashMap<u64, Node>,
    next_id: u64,
    /// Mutating operations performed (the crash and fault clock).
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    faults: Vec<Fault>,
    capacity: Option<u64>,
    ignore_file_sync: bool,
    ignore_dir_sync: bool,
    locks: HashSet<PathBuf>,
}

#[derive(Clone, Copy, Debug)]
struct Fault {
    at: u64,
    kind: io::ErrorKind,
    persistent: bool,
}

#[derive(Clone, Debug)]
enum Node {
    File(SimFile),
    Dir(SimDir),
}

#[derive(Clone, Debug, Default)]
struct SimFile {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<FileOp>,
}

#[derive(Clone, Debug)]
enum FileOp {
    Write { pos: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct SimDir {
    entries: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    pending: Vec<DirOp>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(String, u64),
    Unlink(String),
    Rename(String, String, u64),
}

const ROOT: u64 = 0;
const SECTOR: usize = 512;

impl Default for State {
    fn default() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(SimDir::default()));
        State {
            nodes,
            next_id: 1,
            ops: 0,
            crash_at: None,
            crashed: false,
            faults: Vec::new(),
            capacity: None,
            ignore_file_sync: false,
            ignore_dir_sync: false,
            locks: HashSet::new(),
        }
    }
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: the process is gone")
}

fn names(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

impl State {
    /// Counts a mutating operation and applies crash and fault injection.
    fn tick(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(crashed());
        }
        let n = self.ops;
        self.ops += 1;
        if self.crash_at == Some(n) {
            self.crashed = true;
            return Err(crashed());
        }
        if let Some(f) = self.faults.iter().find(|f| f.at == n || (f.persistent && f.at <= n)) {
            return Err(io::Error::new(f.kind, format!("injected {:?} at operation {n}", f.kind)));
        }
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.crashed {
            Err(crashed())
        } else {
            Ok(())
        }
    }

    fn dir(&self, id: u64) -> io::Result<&SimDir> {
        match self.nodes.get(&id) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(io::ErrorKind::NotADirectory.into()),
        }
    }

    fn dir_mut(&mut self, id: u64) -> io::Result<&mut SimDir> {
        match self.nodes.get_mut(&id) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(io::ErrorKind::NotADirectory.into()),
        }
    }

    fn file_mut(&mut self, id: u64) -> io::Result<&mut SimFile> {
        match self.nodes.get_mut(&id) {
            Some(Node::File(f)) => Ok(f),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let mut id = ROOT;
        for name in names(path) {
            id = *self.dir(id)?.entries.get(&name).ok_or(io::ErrorKind::NotFound)?;
        }
        Ok(id)
    }

    /// The parent directory's id and the last name of `path`.
    fn parent(&self, path: &Path) -> io::Result<(u64, String)> {
        let mut all = names(path);
        let last = all.pop().ok_or(io::ErrorKind::InvalidInput)?;
        let parent: PathBuf = all.iter().collect();
        Ok((self.lookup(&Path::new("/").join(parent))?, last))
    }

    fn link(&mut self, dir: u64, name: String, node: Node) -> io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, node);
        let d = self.dir_mut(dir)?;
        d.entries.insert(name.clone(), id);
        d.pending.push(DirOp::Link(name, id));
        Ok(id)
    }

    fn used_bytes(&self) -> u64 {
        self.nodes.values().map(|n| if let Node::File(f) = n { f.data.len() as u64 } else { 0 }).sum()
    }

    fn check_space(&self, old_len: u64, new_len: u64) -> io::Result<()> {
        match self.capacity {
            Some(cap) if new_len > old_len && self.used_bytes() + (new_len - old_len) > cap => {
                Err(io::ErrorKind::StorageFull.into())
            }
            _ => Ok(()),
        }
    }

    fn write(&mut self, id: u64, pos: u64, bytes: &[u8]) -> io::Result<()> {
        let old = self.file_mut(id)?.data.len() as u64;
        self.check_space(old, old.max(pos + bytes.len() as u64))?;
        let f = self.file_mut(id)?;
        apply(&mut f.data, &FileOp::Write { pos, bytes: bytes.to_vec() });
        f.pending.push(FileOp::Write { pos, bytes: bytes.to_vec() });
        Ok(())
    }
}

fn apply(data: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write { pos, bytes } => {
            let end = *pos as usize + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[*pos as usize..end].copy_from_slice(bytes);
        }
        FileOp::SetLen(len) => data.resize(*len as usize, 0),
    }
}

/// A small deterministic generator (xorshift64*), so images replay by seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// How a crash image treats pending operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Only what was synced survives.
    DurableOnly,
    /// Everything the process did survives (a process crash, not a power cut).
    AllPending,
    /// A seeded mix: lost, kept, torn, zeroed, garbage, as the module says.
    Seeded(u64),
}

impl SimFs {
    /// An empty file system (just `/`).
    pub fn new() -> Self {
        SimFs::default()
    }

    /// Mutating operations performed so far.
    pub fn op_count(&self) -> u64 {
        self.state.lock().ops
    }

    /// Mutating operation number `n` (counting from 0) and every operation
    /// after it fail, as if the process died there.
    pub fn crash_at(&self, n: u64) {
        self.state.lock().crash_at = Some(n);
    }

    /// Whether the simulated process has died.
    pub fn has_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Mutating operation number `n` fails with `kind`; with `persistent`,
    /// every one after it too.
    pub fn fail_at(&self, n: u64, kind: io::ErrorKind, persistent: bool) {
        self.state.lock().faults.push(Fault { at: n, kind, persistent });
    }

    /// Removes injected faults.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Writes that would grow all files past `bytes` fail with ENOSPC.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().capacity = bytes;
    }

    /// Negative control: `sync_data` succeeds but makes nothing durable.
    pub fn ignore_file_sync(&self, ignore: bool) {
        self.state.lock().ignore_file_sync = ignore;
    }

    /// Negative control: `sync_dir` succeeds but makes nothing durable.
    pub fn ignore_dir_sync(&self, ignore: bool) {
        self.state.lock().ignore_dir_sync = ignore;
    }

    /// The disk a power cut at this moment could leave (see the module
    /// docs), as a fresh file system with no faults and nothing pending.
    pub fn crash_image(&self, mode: CrashMode) -> SimFs {
        let state = self.state.lock();
        let mut rng = Rng::new(match mode {
            CrashMode::Seeded(seed) => seed,
            _ => 0,
        });
        let mut image = State::default();
        image.nodes.clear();
        let mut stack = vec![ROOT];
        // Bounded: each directory is visited once (ids are unique).
        let mut seen = HashSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let node = match state.nodes.get(&id) {
                Some(Node::Dir(d)) => {
                    let entries = crash_entries(d, mode, &mut rng);
                    for &child in entries.values() {
                        stack.push(child);
                    }
                    Node::Dir(SimDir { durable: entries.clone(), entries, pending: Vec::new() })
                }
                Some(Node::File(f)) => {
                    let data = crash_data(f, mode, &mut rng);
                    Node::File(SimFile { durable: data.clone(), data, pending: Vec::new() })
                }
                None => continue,
            };
            image.nodes.insert(id, node);
        }
        image.next_id = state.next_id;
        SimFs { state: Arc::new(Mutex::new(image)) }
    }

    /// The current bytes of a file (what the process sees), for tests.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        let id = state.lookup(path)?;
        match state.nodes.get(&id) {
            Some(Node::File(f)) => Ok(f.data.clone()),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

fn crash_entries(d: &SimDir, mode: CrashMode, rng: &mut Rng) -> BTreeMap<String, u64> {
    let keep = match mode {
        CrashMode::DurableOnly => 0,
        CrashMode::AllPending => d.pending.len(),
        CrashMode::Seeded(_) => rng.below(d.pending.len() as u64 + 1) as usize,
    };
    let mut entries = d.durable.clone();
    for op in &d.pending[..keep] {
        match op {
            DirOp::Link(name, id) => {
                entries.insert(name.clone(), *id);
            }
            DirOp::Unlink(name) => {
                entries.remove(name);
            }
            DirOp::Rename(from, to, id) => {
                entries.remove(from);
                entries.insert(to.clone(), *id);
            }
        }
    }
    entries
}

fn crash_data(f: &SimFile, mode: CrashMode, rng: &mut Rng) -> Vec<u8> {
    let mut data = f.durable.clone();
    for op in &f.pending {
        let choice = match mode {
            CrashMode::DurableOnly => 0,
            CrashMode::AllPending => 1,
            CrashMode::Seeded(_) => rng.below(5),
        };
        match (op, choice) {
            (_, 0) => {}
            (FileOp::SetLen(_), _) | (FileOp::Write { .. }, 1) => apply(&mut data, op),
            (FileOp::Write { pos, bytes }, 2) => {
                let keep = rng.below(bytes.len() as u64 + 1) as usize;
                apply(&mut data, &FileOp::Write { pos: *pos, bytes: bytes[..keep].to_vec() });
            }
            (FileOp::Write { pos, bytes }, 3) => {
                // The length reached the disk, the data did not.
                let end = *pos as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
            }
            (FileOp::Write { pos, bytes }, _) => {
                let mut torn = bytes.clone();
                let sectors = bytes.len().div_ceil(SECTOR) as u64;
                let at = rng.below(sectors) as usize * SECTOR;
                for b in torn.iter_mut().skip(at).take(SECTOR) {
                    *b = rng.next() as u8;
                }
                apply(&mut data, &FileOp::Write { pos: *pos, bytes: torn });
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FileSystem, OpenMode};

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn unsynced_writes_and_entries_may_vanish_synced_ones_stay() {
        let fs = SimFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        fs.sync_dir(&p("/")).unwrap();
        let f = fs.open(&p("/d/a"), OpenMode::CreateNew).unwrap();
        f.write_all_at(b"durable", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(b"+pending", 7).unwrap();

        // The file's directory entry was never synced: gone after a power cut.
        let image = fs.crash_image(CrashMode::DurableOnly);
        assert!(!image.exists(&p("/d/a")).unwrap());
        assert!(image.exists(&p("/d")).unwrap());

        fs.sync_dir(&p("/d")).unwrap();
        let image = fs.crash_image(CrashMode::DurableOnly);
        assert_eq!(image.read_file(&p("/d/a")).unwrap(), b"durable");
        let image = fs.crash_image(CrashMode::AllPending);
        assert_eq!(image.read_file(&p("/d/a")).unwrap(), b"durable+pending");
        // Seeded images never touch synced bytes.
        for seed in 0..50 {
            let data = fs.crash_image(CrashMode::Seeded(seed)).read_file(&p("/d/a")).unwrap();
            assert_eq!(&data[..7], b"durable", "seed {seed}");
        }
        assert_eq!(
            fs.crash_image(CrashMode::Seeded(9)).read_file(&p("/d/a")).unwrap(),
            fs.crash_image(CrashMode::Seeded(9)).read_file(&p("/d/a")).unwrap(),
            "deterministic"
        );
    }

    #[test]
    fn rename_is_atomic_and_needs_a_dir_sync() {
        let fs = SimFs::new();
        let f = fs.open(&p("/old"), OpenMode::CreateNew).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&p("/")).unwrap();
        fs.rename(&p("/old"), &p("/new")).unwrap();
        for seed in 0..20 {
            let image = fs.crash_image(CrashMode::Seeded(seed));
            let (old, new) = (image.exists(&p("/old")).unwrap(), image.exists(&p("/new")).unwrap());
            assert!(old != new, "exactly one name survives (seed {seed})");
        }
        fs.sync_dir(&p("/")).unwrap();
        assert!(fs.crash_image(CrashMode::DurableOnly).exists(&p("/new")).unwrap());
    }

    #[test]
    fn crash_fault_and_capacity_injection() {
        let fs = SimFs::new();
        let f = fs.open(&p("/a"), OpenMode::CreateNew).unwrap(); // op 0
        fs.fail_at(1, io::ErrorKind::Other, false);
        assert!(f.write_all_at(b"1", 0).is_err()); // op 1 fails once
        f.write_all_at(b"2", 0).unwrap(); // op 2
        fs.set_capacity(Some(4));
        assert_eq!(f.write_all_at(b"too long", 0).unwrap_err().kind(), io::ErrorKind::StorageFull);
        fs.set_capacity(None);
        fs.fail_at(5, io::ErrorKind::Other, false);
        f.write_all_at(b"3", 1).unwrap(); // op 4
        assert!(f.sync_data().is_err()); // op 5: fsyncgate drops the pending write
        assert_eq!(fs.read_file(&p("/a")).unwrap(), b"23", "reads still see it");
        assert_eq!(fs.crash_image(CrashMode::AllPending).read_file(&p("/a")).unwrap(), b"");
        fs.crash_at(fs.op_count());
        assert!(f.write_all_at(b"4", 0).is_err());
        assert!(fs.has_crashed());
        assert!(f.read_at(&mut [0u8; 1], 0).is_err(), "a dead process does nothing");
    }
}
