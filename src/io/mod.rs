//! The I/O seam: the only way the engine reaches files, directories and
//! memory maps.
//!
//! Everything above this module holds a `dyn FileSystem`, so crash tests can
//! swap [`StdFileSystem`] for a simulated file system that loses unsynced
//! writes. Nothing outside `io/` touches `std::fs` or `memmap2`.
//!
//! Assumptions about the media (see `docs/FORMAT.md`): a successful
//! `sync_data` makes the bytes written before it durable; `rename` is atomic
//! and durable once the directory is synced; a write torn by a crash leaves a
//! prefix of new bytes and possibly zeros or garbage after it, never changes
//! bytes that were synced before.

mod listed;
mod mapped;
mod pool;
mod read_map;
#[cfg(any(test, feature = "test-util"))]
pub mod sim;
mod std_fs;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub(crate) use listed::ListedDir;
pub use mapped::{MappedBytes, MappedBytesMut};
pub use pool::{FilePool, PoolStats};
pub use std_fs::{open_file_limit, StdFileSystem};

/// How [`FileSystem::open`] treats an existing or missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Fail if the file exists.
    CreateNew,
    /// Create the file if missing.
    Create,
    /// Fail if the file is missing.
    Existing,
}

/// A directory tree of files: create, open, rename, remove, list, sync.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Opens a file for reading and writing.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Makes everything written so far on the file system holding `dir`
    /// durable, data and directories alike (`syncfs(2)`): one call where a
    /// store would otherwise fsync thousands of files and directories. The
    /// standard file system relies on Linux 5.8 or later, where `syncfs`
    /// reports writeback errors.
    fn sync_all(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing), held until the
    /// returned guard drops. Fails with `WouldBlock` when another holder,
    /// in this process or another, has it.
    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
}

/// A held exclusive lock (see [`FileSystem::lock_exclusive`]).
pub trait FileLock: Send + Sync + fmt::Debug {}

/// An open file, shared between threads; all I/O is positional.
pub trait FileHandle: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `pos`; returns how many (0 at end).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `pos`.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// The file's current size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Grows (with zeros) or shrinks the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// A hint that `read_at` will be called often on this file, below
    /// `capacity` bytes: the standard file system then copies reads out of
    /// a read-only mapping instead of calling `pread` per read (same bytes,
    /// the same errors at the end of the file; see `io/read_map.rs`).
    ///
    /// # Safety
    /// From this call until the handle drops, the file must change only
    /// through this handle: no other handle, in this process or another,
    /// may shrink it (a read of a mapped page past its end raises SIGBUS).
    /// The engine holds its partition directory's exclusive lock for that
    /// whole time.
    #[expect(unsafe_code, reason = "mmap's contract, passed on to the caller")]
    unsafe fn map_for_reads(&self, capacity: u64) {
        let _ = capacity;
    }
    /// Appends exactly `len` bytes read at `pos` to `buf` (`UnexpectedEof`
    /// when the file is shorter; `buf` may then hold part of them). The
    /// standard file system copies straight from its read mapping, without
    /// zeroing the space first.
    fn read_exact_into(&self, buf: &mut Vec<u8>, pos: u64, len: usize) -> io::Result<()> {
        read_exact_appending(self, buf, pos, len)
    }
    /// Maps bytes `[0, len)` of the file shared and writable.
    ///
    /// # Safety
    /// The file must be at least `len` long, and while the mapping lives:
    /// - nothing may shrink it below `len` (an access past its end raises
    ///   SIGBUS), through this handle or any other;
    /// - nothing else may write it or map it, through another handle, in
    ///   this process or another (the bytes handed out by
    ///   [`Mapping::bytes_mut`] would race).
    ///
    /// The engine maps only index files of a partition whose directory lock
    /// it holds, and drops a mapping before it resizes the file.
    #[expect(unsafe_code, reason = "mmap's contract, passed on to the caller")]
    unsafe fn map(&self, len: usize) -> io::Result<Box<dyn Mapping>>;
}

/// A writable view of the start of a file (see [`FileHandle::map`]).
///
/// Access goes through a guard: a [`FilePool`] may let an idle mapping go
/// and map it again on the next access, which can then fail (the error of
/// reopening the file or of `mmap`).
pub trait Mapping: Send + Sync + fmt::Debug {
    /// The mapped bytes.
    fn bytes(&self) -> io::Result<MappedBytes<'_>>;
    /// The mapped bytes, writable; writes reach the file.
    fn bytes_mut(&mut self) -> io::Result<MappedBytesMut<'_>>;
    /// Makes writes through the mapping durable (`msync`).
    fn flush(&self) -> io::Result<()>;
}

/// A mapping of no bytes: what an empty file maps to (mmap(2) rejects zero
/// lengths), and a placeholder while no mapping is held.
#[derive(Debug)]
pub struct EmptyMapping;

impl Mapping for EmptyMapping {
    fn bytes(&self) -> io::Result<MappedBytes<'_>> {
        Ok(MappedBytes::slice(&[]))
    }

    fn bytes_mut(&mut self) -> io::Result<MappedBytesMut<'_>> {
        Ok(MappedBytesMut::slice(&mut []))
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes at `pos`, failing with `UnexpectedEof`
/// when the file is shorter.
pub fn read_exact_at<F: FileHandle + ?Sized>(file: &F, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, pos) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends exactly `len` bytes read at `pos` to `buf` through `read_at`
/// (the space is zeroed first).
pub(crate) fn read_exact_appending<F: FileHandle + ?Sized>(
    file: &F,
    buf: &mut Vec<u8>,
    pos: u64,
    len: usize,
) -> io::Result<()> {
    let have = buf.len();
    buf.resize(have + len, 0);
    read_exact_at(file, &mut buf[have..], pos)
}

/// Reads a whole small file, refusing one over `max_bytes` (the length on
/// disk never sizes an allocation beyond what the caller allows).
pub fn read_small_file(fs: &dyn FileSystem, path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let file = fs.open(path, OpenMode::Existing)?;
    let len = file.size()?;
    if len > max_bytes {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{len} bytes, over {max_bytes}")));
    }
    let mut buf = vec![0u8; len as usize];
    read_exact_at(&*file, &mut buf, 0)?;
    Ok(buf)
}

/// Replaces `dir/name` with `bytes` atomically and durably.
///
/// ORDER: write `name.tmp`, fsync it, rename over `name`, fsync `dir`. A
/// crash leaves either the old or the new file (and maybe a stray `.tmp`,
/// which opens remove: a temp file is never the truth). A write that fails
/// (a full disk) removes its temp file before returning the error.
pub fn write_file_atomic(fs: &dyn FileSystem, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let file = fs.open(&tmp, OpenMode::Create)?;
        file.set_len(0)?;
        file.write_all_at(bytes, 0)?;
        file.sync_data()
    })();
    if let Err(e) = written {
        // Best effort: the error that matters is the write's.
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    fs.rename(&tmp, &dir.join(name))?;
    fs.sync_dir(dir)
}

/// Rewrites the file at `path` with `bytes` in place (created if missing),
/// and syncs it when `sync` is set (else the caller does, with a
/// `sync_all`): no new inode, unlike [`write_file_atomic`], but a crash
/// during the write may leave a mix of old and new bytes, so only for files
/// whose readers detect that (a checksum) and can do without them.
pub(crate) fn write_file_in_place(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
    sync: bool,
) -> io::Result<()> {
    let file = fs.open(path, OpenMode::Create)?;
    file.write_all_at(bytes, 0)?;
    file.set_len(bytes.len() as u64)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

/// Creates `dir` and any missing parents durably: each directory created is
/// followed by an fsync of its parent, so it survives a crash.
pub(crate) fn create_dir_all_durable(fs: &dyn FileSystem, dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    // Bounded by the path's depth.
    while let Some(d) = at {
        if d.as_os_str().is_empty() || fs.exists(d)? {
            break;
        }
        missing.push(d);
        at = d.parent();
    }
    for d in missing.into_iter().rev() {
        fs.create_dir_all(d)?;
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent)?;
        }
    }
    Ok(())
}

/// The shared handle to a file system.
pub type SharedFs = Arc<dyn FileSystem>;
