//! The opt-in write buffer of the active segment (`LogConfig::
//! write_buffer_bytes`): an append copies its batches here and returns; the
//! buffer is written to the segment file with one `write` when the next
//! append would overflow it, when its oldest byte is
//! `write_buffer_max_delay_ms` old (one timer thread for the process), and
//! before anything that needs the bytes in the file: a read of the segment,
//! an fsync (so `Durability::Always` and `Interval` lose nothing they
//! acknowledge), a seal (roll, close) and a truncation.
//!
//! The price is the loss window on a *process* crash (`kill -9`, a panic
//! that aborts): appends acknowledged within the delay, and never more than
//! the buffer holds, are lost, as with any user-space buffer (seglog's
//! `BufWriter`, a Kafka producer's `linger.ms`). What is lost is always a
//! suffix of whole batches: the log recovers to a consistent prefix.
//!
//! Only the partition's writer appends (holding its writer lock); readers,
//! the syncer and the timer write the buffer out. Every write of buffered
//! bytes happens under `pending`, in file order.
//!
//! The delay is the timer's aim, not a hard bound: one thread writes every
//! due buffer of the process in turn, so a slow disk delays the others,
//! and if the thread cannot be started buffers are written only when full
//! and by reads, fsyncs, rolls and closes (logged as an error).
//!
//! Memory: a buffer holds its capacity while it is in use; the timer
//! releases it once no append came for a whole delay, and a seal does.

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::SegmentConfig;
use crate::error::{Error, Result};
use crate::io::FileHandle;

use super::log_segment::LogSegment;

/// The `op` of a failed write of buffered bytes.
const BUFFERED_WRITE: &str = "write buffered appends";

/// Whether `e` is a failed write of buffered bytes: those appends were
/// acknowledged, so whatever the cause (a full disk too) the log is out of
/// step with its file and the partition must poison (never `DiskFull`,
/// which promises nothing changed).
pub(crate) fn is_buffered_write(e: &Error) -> bool {
    matches!(e, Error::Io { op: BUFFERED_WRITE, .. })
}

/// A segment file's write buffer (see the module docs).
#[derive(Debug)]
pub(crate) struct WriteBuffer {
    file: Arc<dyn FileHandle>,
    path: PathBuf,
    capacity: usize,
    max_delay: Duration,
    /// The file's length as written: the segment's bytes below it are in
    /// the file, those from it up to the segment's size are in `pending`.
    written: AtomicU64,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    /// The segment's bytes from `written` on.
    bytes: Vec<u8>,
    /// When the oldest of them arrived.
    since: Option<Instant>,
    /// Whether the timer holds an entry for this buffer.
    scheduled: bool,
    /// Whether an append came since the timer's last visit.
    appended: bool,
    /// The first failed write: every later append, read and fsync of this
    /// segment fails with it, and the partition poisons itself on the
    /// first of them (see [`is_buffered_write`]).
    failed: Option<Error>,
}

impl WriteBuffer {
    /// A buffer of `capacity` bytes for `file` (at `path`), whose first
    /// `written` bytes are in the file.
    pub(crate) fn new(
        file: Arc<dyn FileHandle>,
        path: &Path,
        capacity: usize,
        max_delay: Duration,
        written: u64,
    ) -> Self {
        WriteBuffer {
            file,
            path: path.to_path_buf(),
            capacity,
            max_delay,
            written: AtomicU64::new(written),
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Bytes of the segment in the file (the rest are pending).
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Takes `bytes`, the segment's bytes at `position` (its size before
    /// them). Writer only; the caller publishes them after this returns.
    /// Large appends (at least the capacity) are written at once, after
    /// what is pending.
    ///
    /// # Errors
    /// [`Error::Io`] of a write (this one's, or the first that failed).
    pub(crate) fn append(self: &Arc<Self>, bytes: &[u8], position: u64) -> Result<()> {
        let mut pending = self.pending.lock();
        if let Some(e) = &pending.failed {
            return Err(e.clone());
        }
        if pending.bytes.len() + bytes.len() > self.capacity {
            self.write_out_locked(&mut pending)?;
        }
        debug_assert_eq!(self.written() + pending.bytes.len() as u64, position, "appends are contiguous");
        if bytes.len() >= self.capacity {
            // Nothing is pending: one write, as without a buffer (a failure
            // here changes nothing the log published).
            self.file.write_all_at(bytes, position).map_err(Error::io("append", &self.path))?;
            self.written.store(position + bytes.len() as u64, Ordering::Release);
            return Ok(());
        }
        if pending.bytes.is_empty() {
            if pending.bytes.capacity() == 0 {
                pending.bytes.reserve_exact(self.capacity);
            }
            let now = Instant::now();
            pending.since = Some(now);
            if !pending.scheduled {
                pending.scheduled = true;
                schedule(now + self.max_delay, Arc::downgrade(self));
            }
        }
        pending.bytes.extend_from_slice(bytes);
        pending.appended = true;
        Ok(())
    }

    /// Writes what is pending to the file.
    ///
    /// # Errors
    /// [`Error::Io`] of the write, or of the first that failed.
    pub(crate) fn write_out(&self) -> Result<()> {
        self.write_out_locked(&mut self.pending.lock())
    }

    fn write_out_locked(&self, pending: &mut Pending) -> Result<()> {
        if let Some(e) = &pending.failed {
            return Err(e.clone());
        }
        if pending.bytes.is_empty() {
            return Ok(());
        }
        let at = self.written();
        if let Err(source) = self.file.write_all_at(&pending.bytes, at) {
            let e = Error::Io { op: BUFFERED_WRITE, path: self.path.clone(), source };
            pending.failed = Some(e.clone());
            return Err(e);
        }
        self.written.store(at + pending.bytes.len() as u64, Ordering::Release);
        pending.bytes.clear();
        pending.since = None;
        Ok(())
    }

    /// Gives the buffer's memory back (nothing may be pending): a sealed
    /// segment is never appended to again.
    pub(crate) fn release(&self) {
        let mut pending = self.pending.lock();
        debug_assert!(pending.bytes.is_empty(), "written out before release");
        pending.bytes = Vec::new();
    }

    /// Forgets what is pending, as a killed process would (a crash test's
    /// abandon, a close that failed), or for a segment whose files are
    /// being deleted.
    pub(crate) fn discard(&self) {
        let mut pending = self.pending.lock();
        pending.bytes = Vec::new();
        pending.since = None;
    }

    /// After a truncation (which wrote the buffer out first): the file is
    /// `len` bytes long.
    pub(crate) fn truncated(&self, len: u64) {
        let pending = self.pending.lock();
        debug_assert!(pending.bytes.is_empty(), "written out before the truncation");
        self.written.store(len, Ordering::Release);
    }

    /// The timer's call: writes the buffer out if its oldest byte is due at
    /// `now`, and gives its memory back once no append came for a whole
    /// delay; returns when to come back.
    fn write_if_due(&self, now: Instant) -> Option<Instant> {
        let mut pending = self.pending.lock();
        if let Some(at) = pending.since.map(|since| since + self.max_delay) {
            if at > now && pending.failed.is_none() {
                return Some(at);
            }
            if let Err(e) = self.write_out_locked(&mut pending) {
                // Kept in `failed`: the next append, read or fsync returns
                // it and poisons the partition.
                tracing::error!(segment = %self.path.display(), error = %e, "writing a write buffer out on its delay failed");
                pending.scheduled = false;
                return None;
            }
        }
        if std::mem::take(&mut pending.appended) {
            // Still in use: back in a delay to see whether it idles.
            return Some(now + self.max_delay);
        }
        pending.bytes = Vec::new();
        pending.scheduled = false;
        None
    }
}

/// The segment's side of its buffer (`LogSegment::buffer`).
impl LogSegment {
    /// The size a read of the file may go up to: the write buffer, if it
    /// holds any of those bytes, is written out first (a read never sees
    /// less than what was published, nor a file shorter than the size).
    ///
    /// # Errors
    /// [`Error::Io`] of writing the buffer out.
    pub(super) fn readable_size(&self) -> Result<u64> {
        let size = self.size_bytes();
        match self.buffer.get() {
            Some(buffer) if buffer.written() < size => buffer.write_out().map(|()| size),
            _ => Ok(size),
        }
    }

    /// Writes the write buffer out (if there is one): before an fsync,
    /// a seal and a truncation.
    ///
    /// # Errors
    /// [`Error::Io`] of the write (or of an earlier one that failed).
    pub(crate) fn write_buffered(&self) -> Result<()> {
        self.buffer.get().map_or(Ok(()), |buffer| buffer.write_out())
    }

    /// Forgets what the write buffer holds, as a killed process would.
    pub(crate) fn discard_buffered(&self) {
        if let Some(buffer) = self.buffer.get() {
            buffer.discard();
        }
    }

    /// Gives the segment a write buffer when `config` asks for one (it
    /// is, or becomes, the active segment).
    pub(super) fn buffer_appends(&self, config: &SegmentConfig) {
        if config.write_buffer_bytes > 0 {
            self.buffer.get_or_init(|| {
                Arc::new(WriteBuffer::new(
                    self.log.clone(),
                    &self.log_path,
                    config.write_buffer_bytes,
                    config.write_buffer_max_delay,
                    self.size_bytes(),
                ))
            });
        }
    }

    /// After a truncation to `len` bytes (with the buffer written out).
    pub(super) fn buffer_truncated(&self, len: u64) {
        if let Some(buffer) = self.buffer.get() {
            buffer.truncated(len);
        }
    }
}

/// A buffer the timer writes out at `at` (if still pending then).
#[derive(Debug)]
struct Due {
    at: Instant,
    buffer: Weak<WriteBuffer>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// The earliest first out of the (max-)heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

/// The process's one timer: at most one entry per buffer with bytes pending.
struct Timer {
    due: Mutex<BinaryHeap<Due>>,
    wake: Condvar,
}

static TIMER: Timer = Timer { due: Mutex::new(BinaryHeap::new()), wake: Condvar::new() };
static TIMER_THREAD: Once = Once::new();

fn schedule(at: Instant, buffer: Weak<WriteBuffer>) {
    TIMER_THREAD.call_once(|| {
        let spawned = std::thread::Builder::new().name("annals-write-buffer".into()).spawn(run_timer);
        if let Err(e) = spawned {
            // Buffers are then written when full and by reads, fsyncs,
            // rolls and closes, not on their delay.
            tracing::error!(error = %e, "could not start the write-buffer timer thread: buffers are not written on their delay");
        }
    });
    let mut due = TIMER.due.lock();
    let earliest = due.peek().is_none_or(|first| at < first.at);
    due.push(Due { at, buffer });
    if earliest {
        TIMER.wake.notify_one();
    }
}

/// The timer thread: sleeps until the earliest entry is due, writes its
/// buffer out (or puts it back for when its bytes are due). It runs as
/// long as the process; its entries hold no buffer alive.
fn run_timer() {
    let mut due = TIMER.due.lock();
    loop {
        let now = Instant::now();
        match due.peek().map(|first| first.at) {
            None => TIMER.wake.wait(&mut due),
            Some(at) if at > now => {
                TIMER.wake.wait_until(&mut due, at);
            }
            Some(_) => {
                let Some(first) = due.pop() else { continue };
                drop(due);
                let again = first.buffer.upgrade().and_then(|b| b.write_if_due(now).map(|at| (at, b)));
                due = TIMER.due.lock();
                if let Some((at, buffer)) = again {
                    due.push(Due { at, buffer: Arc::downgrade(&buffer) });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FileSystem, OpenMode, StdFileSystem};

    fn buffer(dir: &Path, capacity: usize, max_delay: Duration) -> (Arc<WriteBuffer>, PathBuf) {
        let path = dir.join("00000000000000000000.log");
        let file = StdFileSystem.open(&path, OpenMode::Create).unwrap();
        (Arc::new(WriteBuffer::new(file, &path, capacity, max_delay, 0)), path)
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn bytes_reach_the_file_when_the_next_would_overflow_and_when_written_out() {
        let dir = tempfile::tempdir().unwrap();
        let (b, path) = buffer(dir.path(), 10, Duration::from_secs(3600));
        b.append(b"abcd", 0).unwrap();
        b.append(b"efgh", 4).unwrap();
        assert_eq!((file_len(&path), b.written()), (0, 0), "both fit");
        b.append(b"ijk", 8).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefgh", "the first two, written before the third");
        // One at least the capacity goes straight after what is pending.
        b.append(b"0123456789", 11).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefghijk0123456789");
        b.append(b"x", 21).unwrap();
        b.write_out().unwrap();
        assert_eq!((file_len(&path), b.written()), (22, 22));
        b.append(b"lost", 22).unwrap();
        b.discard();
        b.write_out().unwrap();
        assert_eq!(file_len(&path), 22, "discarded bytes are never written");
    }

    #[test]
    fn the_timer_writes_a_buffer_out_on_its_delay() {
        let dir = tempfile::tempdir().unwrap();
        let (b, path) = buffer(dir.path(), 1 << 20, Duration::from_millis(20));
        b.append(b"abc", 0).unwrap();
        // Bounded: 10 s for a 20 ms delay on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(10);
        while file_len(&path) < 3 {
            assert!(Instant::now() < deadline, "not written on its delay");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(b.written(), 3);
        // Its memory goes back once it idles a whole delay.
        while b.pending.lock().bytes.capacity() > 0 {
            assert!(Instant::now() < deadline, "an idle buffer kept its memory");
            std::thread::sleep(Duration::from_millis(5));
        }
        // A refill is scheduled again.
        b.append(b"de", 3).unwrap();
        while file_len(&path) < 5 {
            assert!(Instant::now() < deadline, "the refill was not written on its delay");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_failed_write_out_fails_every_later_call_with_an_error_that_poisons() {
        let fs = crate::io::sim::SimFs::new();
        let path = Path::new("/p.log");
        let file = fs.open(path, OpenMode::Create).unwrap();
        let b = Arc::new(WriteBuffer::new(file, path, 8, Duration::from_secs(3600), 0));
        fs.set_capacity(Some(2));
        b.append(b"abc", 0).unwrap(); // buffered: not yet written
        let e = b.write_out().unwrap_err();
        assert!(is_buffered_write(&e) && e.io_kind() == Some(std::io::ErrorKind::StorageFull), "{e:?}");
        fs.set_capacity(None);
        assert!(b.write_out().is_err() && b.append(b"d", 3).is_err(), "the failure sticks");
    }
}
