//! Group commit and poisoning: how appends become durable, and what happens
//! when the disk says no.
//!
//! Group commit: one thread at a time runs an fsync; it first notes the log
//! end offset, so its fsync covers every batch written before it. Appenders
//! that need an offset covered either find it already synced, join the
//! fsync in flight and wait, or start the next one. N concurrent durable
//! producers therefore share fsyncs instead of paying one each.
//!
//! Poisoning: after a failed fsync the kernel may have dropped the dirty
//! pages ("fsyncgate"), so retrying could report success for lost data. The
//! first failure poisons the partition: that append and every later append
//! or flush fail; only reopening (which runs recovery) clears it.

use std::path::Path;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// What a poisoned partition keeps of its first failure: a copy (the
/// error itself is the caller's).
fn poison_cause(e: &Error) -> std::sync::Arc<Error> {
    std::sync::Arc::new(e.clone())
}

#[derive(Debug)]
pub(crate) struct Syncer {
    state: Mutex<SyncState>,
    synced: Condvar,
}

#[derive(Debug)]
struct SyncState {
    /// Every offset below this is durable.
    synced_offset: u64,
    in_progress: bool,
    /// Why the partition is poisoned, once it is.
    poisoned: Option<std::sync::Arc<Error>>,
    /// Closed: `sync` and `flush` refuse (close made everything durable).
    closed: bool,
    /// For the interval policy: records appended since the last flush.
    unflushed_records: u64,
    last_flush: Instant,
}

impl Syncer {
    pub(crate) fn new(synced_offset: u64) -> Self {
        Syncer {
            state: Mutex::new(SyncState {
                synced_offset,
                in_progress: false,
                poisoned: None,
                closed: false,
                unflushed_records: 0,
                last_flush: Instant::now(),
            }),
            synced: Condvar::new(),
        }
    }

    /// The poison error, if the partition is poisoned.
    pub(crate) fn check(&self, dir: &Path) -> Result<()> {
        match &self.state.lock().poisoned {
            Some(cause) => Err(Error::Poisoned { dir: dir.to_path_buf(), cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// [`Syncer::check`], and [`Error::Closed`] once [`Syncer::close`] ran:
    /// the gate of the public `sync` and `flush`. (An append's own
    /// durability step does not ask it: an append that passed the write
    /// gate before a close is made durable by the close.)
    pub(crate) fn check_open(&self, dir: &Path) -> Result<()> {
        let state = self.state.lock();
        match &state.poisoned {
            Some(cause) => Err(Error::Poisoned { dir: dir.to_path_buf(), cause: cause.clone() }),
            None if state.closed => Err(Error::Closed),
            None => Ok(()),
        }
    }

    /// From now on `check_open` answers [`Error::Closed`].
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
    }

    /// Poisons the partition (keeps the first cause); true when this call
    /// poisoned it.
    pub(crate) fn poison(&self, cause: &Error) -> bool {
        let mut state = self.state.lock();
        let first = state.poisoned.is_none();
        state.poisoned.get_or_insert_with(|| poison_cause(cause));
        self.synced.notify_all();
        first
    }

    /// Notes `records` appended; under the interval policy, says whether
    /// they bring the partition to a flush.
    pub(crate) fn note_appended(&self, records: u64, flush_messages: u64, flush_ms: u64) -> bool {
        let mut state = self.state.lock();
        state.unflushed_records += records;
        state.unflushed_records >= flush_messages
            || state.last_flush.elapsed().as_millis() >= u128::from(flush_ms)
    }

    /// Offsets below the returned one are durable.
    pub(crate) fn synced_offset(&self) -> u64 {
        self.state.lock().synced_offset
    }

    /// After a truncation below the synced offset.
    pub(crate) fn lower_synced_offset(&self, offset: u64) {
        let mut state = self.state.lock();
        state.synced_offset = state.synced_offset.min(offset);
    }

    /// Returns once every offset below `target` is durable, running (or
    /// joining) a group fsync. `flush` fsyncs and returns the offset it
    /// covers: the log end offset it read before starting.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if the partition is (or becomes) poisoned; the
    /// fsync's own error for the caller whose fsync failed.
    pub(crate) fn sync_to(&self, dir: &Path, target: u64, flush: impl Fn() -> Result<u64>) -> Result<()> {
        let mut state = self.state.lock();
        // Bounded: each pass either returns, waits for an fsync in flight to
        // finish, or runs one fsync that covers at least what was written
        // before `target` was published.
        loop {
            if let Some(cause) = &state.poisoned {
                return Err(Error::Poisoned { dir: dir.to_path_buf(), cause: cause.clone() });
            }
            if state.synced_offset >= target {
                return Ok(());
            }
            if state.in_progress {
                self.synced.wait(&mut state);
                continue;
            }
            state.in_progress = true;
            let unflushed_before = state.unflushed_records;
            let result = parking_lot::MutexGuard::unlocked(&mut state, &flush);
            state.in_progress = false;
            self.synced.notify_all();
            match result {
                Ok(covered) => {
                    state.synced_offset = state.synced_offset.max(covered);
                    state.unflushed_records -= unflushed_before.min(state.unflushed_records);
                    state.last_flush = Instant::now();
                }
                Err(e) => {
                    state.poisoned.get_or_insert_with(|| poison_cause(&e));
                    return Err(e);
                }
            }
        }
    }
}
