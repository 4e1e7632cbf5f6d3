//! The simulated file system's `FileSystem`, `FileHandle`, `FileLock` and
//! `Mapping` implementations: each operation ticks the fault clock, then
//! changes what the process sees and records what is pending.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::super::{FileHandle, FileLock, FileSystem, MappedBytes, MappedBytesMut, Mapping, OpenMode};
use super::*;

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let mut id = ROOT;
        for name in names(dir) {
            let existing = state.dir(id)?.entries.get(&name).copied();
            id = match existing {
                Some(child) => child,
                None => {
                    state.tick()?;
                    state.link(id, name, Node::Dir(SimDir::default()))?
                }
            };
        }
        state.dir(id).map(drop)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let mut state = self.state.lock();
        state.alive()?;
        let existing = state.lookup(path).ok();
        let id = match (existing, mode) {
            (Some(_), OpenMode::CreateNew) => return Err(io::ErrorKind::AlreadyExists.into()),
            (Some(id), _) => id,
            (None, OpenMode::Existing) => return Err(io::ErrorKind::NotFound.into()),
            (None, _) => {
                state.tick()?;
                let (dir, name) = state.parent(path)?;
                state.link(dir, name, Node::File(SimFile::default()))?
            }
        };
        state.file_mut(id)?;
        Ok(Arc::new(SimHandle { fs: self.clone(), id }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.alive()?;
        let (dir, name) = state.parent(path)?;
        state.dir(dir)?.entries.get(&name).ok_or(io::ErrorKind::NotFound)?;
        state.tick()?;
        let d = state.dir_mut(dir)?;
        d.entries.remove(&name);
        d.pending.push(DirOp::Unlink(name));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.alive()?;
        let (from_dir, from_name) = state.parent(from)?;
        let (to_dir, to_name) = state.parent(to)?;
        let id = *state.dir(from_dir)?.entries.get(&from_name).ok_or(io::ErrorKind::NotFound)?;
        state.tick()?;
        if from_dir == to_dir {
            let d = state.dir_mut(from_dir)?;
            d.entries.remove(&from_name);
            d.entries.insert(to_name.clone(), id);
            d.pending.push(DirOp::Rename(from_name, to_name, id));
        } else {
            let d = state.dir_mut(from_dir)?;
            d.entries.remove(&from_name);
            d.pending.push(DirOp::Unlink(from_name));
            let d = state.dir_mut(to_dir)?;
            d.entries.insert(to_name.clone(), id);
            d.pending.push(DirOp::Link(to_name, id));
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        state.alive()?;
        let id = state.lookup(dir)?;
        Ok(state.dir(id)?.entries.keys().cloned().collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.alive()?;
        let id = state.lookup(dir)?;
        state.tick()?;
        if !state.ignore_dir_sync {
            let d = state.dir_mut(id)?;
            d.durable = d.entries.clone();
            d.pending.clear();
        }
        Ok(())
    }

    fn sync_all(&self, _dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.alive()?;
        state.tick()?;
        let (files, dirs) = (!state.ignore_file_sync, !state.ignore_dir_sync);
        for node in state.nodes.values_mut() {
            match node {
                Node::File(f) if files => {
                    f.durable = f.data.clone();
                    f.pending.clear();
                }
                Node::Dir(d) if dirs => {
                    d.durable = d.entries.clone();
                    d.pending.clear();
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let state = self.state.lock();
        state.alive()?;
        Ok(state.lookup(path).is_ok())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.alive()?;
        let (parent, name) = state.parent(dir)?;
        state.dir(parent)?.entries.get(&name).ok_or(io::ErrorKind::NotFound)?;
        state.tick()?;
        // Unlinking the directory from its parent is what matters for the
        // image; its contents become unreachable with it.
        let d = state.dir_mut(parent)?;
        d.entries.remove(&name);
        d.pending.push(DirOp::Unlink(name));
        Ok(())
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.open(path, OpenMode::Create)?;
        let mut state = self.state.lock();
        if !state.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(SimLock { fs: self.clone(), path: path.to_path_buf() }))
    }
}

#[derive(Debug)]
struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl FileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.state.lock().locks.remove(&self.path);
    }
}

#[derive(Debug)]
struct SimHandle {
    fs: SimFs,
    id: u64,
}

impl FileHandle for SimHandle {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut state = self.fs.state.lock();
        state.alive()?;
        let data = &state.file_mut(self.id)?.data;
        let start = (pos as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        state.tick()?;
        state.write(self.id, pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        let mut state = self.fs.state.lock();
        state.alive()?;
        Ok(state.file_mut(self.id)?.data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        state.tick()?;
        let old = state.file_mut(self.id)?.data.len() as u64;
        state.check_space(old, len)?;
        let f = state.file_mut(self.id)?;
        apply(&mut f.data, &FileOp::SetLen(len));
        f.pending.push(FileOp::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        state.alive()?;
        let result = state.tick();
        if state.crashed {
            return result; // the process died here: nothing changes any more
        }
        let ignore = state.ignore_file_sync;
        let f = state.file_mut(self.id)?;
        match result {
            Ok(()) if !ignore => {
                f.durable = f.data.clone();
                f.pending.clear();
                Ok(())
            }
            Ok(()) => Ok(()),
            Err(e) => {
                // fsyncgate: the failed writeback's pages are gone from what
                // can reach the disk, though reads still see them.
                f.pending.clear();
                Err(e)
            }
        }
    }

    // A copy, not a mapping: nothing here is unsafe, whatever the caller.
    #[expect(unsafe_code, reason = "the trait's method is unsafe for real mappings")]
    unsafe fn map(&self, len: usize) -> io::Result<Box<dyn Mapping>> {
        let mut state = self.fs.state.lock();
        state.alive()?;
        let data = &state.file_mut(self.id)?.data;
        let mut buf = data[..len.min(data.len())].to_vec();
        buf.resize(len, 0);
        Ok(Box::new(SimMapping { fs: self.fs.clone(), id: self.id, buf, dirty: false }))
    }
}

/// A private copy of the mapped range, written back as a pending write when
/// flushed (then synced) or dropped (unsynced): unflushed mapped writes may
/// be lost by a crash, as with a real mmap.
#[derive(Debug)]
struct SimMapping {
    fs: SimFs,
    id: u64,
    buf: Vec<u8>,
    dirty: bool,
}

impl SimMapping {
    fn write_back(&self, state: &mut State) -> io::Result<()> {
        if self.dirty && !state.crashed {
            let f = state.file_mut(self.id)?;
            apply(&mut f.data, &FileOp::Write { pos: 0, bytes: self.buf.clone() });
            f.pending.push(FileOp::Write { pos: 0, bytes: self.buf.clone() });
        }
        Ok(())
    }
}

impl Mapping for SimMapping {
    fn bytes(&self) -> io::Result<MappedBytes<'_>> {
        Ok(MappedBytes::slice(&self.buf))
    }

    fn bytes_mut(&mut self) -> io::Result<MappedBytesMut<'_>> {
        self.dirty = true;
        Ok(MappedBytesMut::slice(&mut self.buf))
    }

    fn flush(&self) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        state.tick()?;
        self.write_back(&mut state)?;
        if !state.ignore_file_sync {
            let f = state.file_mut(self.id)?;
            f.durable = f.data.clone();
            f.pending.clear();
        }
        Ok(())
    }
}

impl Drop for SimMapping {
    fn drop(&mut self) {
        let mut state = self.fs.state.lock();
        let _ = self.write_back(&mut state);
    }
}
