//! Group commit and poisoning: how appends become durable, and what happens
//! when the disk says no.
//!
//! Group commit: one thread at a time runs an fsync; it first notes the log
//! end offset, so its fsync covers every batch written before it. Appenders
//! that need an offset covered either find it already synced, join the
//! fsync in flight and wait, or start the next one. N concurrent durable
//! producers therefore share fsyncs instead of paying one each.
//!
//! Filling each fsync: when an fsync ends, the appends it covered return,
//! and their producers append again while the next fsync would already be
//! running; left alone, each producer then rides every other fsync. So the
//! appender that starts the next fsync first waits for as many appends as
//! the last one covered to arrive, for at most as long as the last fsync
//! took and never longer than `LogConfig::commit_delay_us` (PostgreSQL's
//! `commit_delay`, bounded by what the disk takes anyway). A lone producer
//! never waits: its own append is the one the last fsync covered. (The
//! record API's and `append_batches`' appends under `Always` gather the
//! same way in the write combiner, `combine.rs`, whose writer fsyncs for
//! them; this gathering serves appends completed later, as a broker's.)
//!
//! Poisoning: after a failed fsync the kernel may have dropped the dirty
//! pages ("fsyncgate"), so retrying could report success for lost data. The
//! first failure poisons the partition: that append and every later append
//! or flush fail; only reopening (which runs recovery) clears it.

use std::path::Path;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// What a poisoned partition keeps of its first failure: a copy (the
/// error itself is the caller's).
fn poison_cause(e: &Error) -> std::sync::Arc<Error> {
    std::sync::Arc::new(e.clone())
}

/// What the last gathering fsync covered and how long it took: what the
/// next one's starter gathers for, and for how long at most (see the
/// module docs). The syncer and the write combiner (`combine.rs`) each
/// keep one for their own fsyncs.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LastGroup {
    /// The appends it covered.
    pub(super) appends: u64,
    /// How long its fsync took.
    pub(super) took: Duration,
}

impl LastGroup {
    /// Whether `have` appends fill the next group.
    pub(super) fn filled_by(&self, have: u64) -> bool {
        have >= self.appends
    }

    /// Until when the next fsync's starter, starting now, gathers: as long
    /// as the last fsync took, never past `max_delay`.
    pub(super) fn deadline(&self, max_delay: Duration) -> Instant {
        Instant::now() + self.took.min(max_delay)
    }
}

#[derive(Debug)]
pub(crate) struct Syncer {
    state: Mutex<SyncState>,
    synced: Condvar,
    /// The gathering fsync starter waits on this alone, woken once when
    /// the arrivals it waits for are all in (not at each one).
    gathered: Condvar,
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
    /// Appends that asked for an fsync since the last one began (written:
    /// the next fsync covers them).
    arrived: u64,
    /// What the last gathering fsync covered and took.
    last: LastGroup,
    /// An fsync's starter waits for arrivals (they wake it).
    gathering: bool,
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
                arrived: 0,
                last: LastGroup::default(),
                gathering: false,
            }),
            synced: Condvar::new(),
            gathered: Condvar::new(),
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

    /// An append's durability step under `Durability::Always`: returns
    /// once every offset below `target()` (its last offset + 1, or the log
    /// end if a truncation cut below that; its bytes are written) is
    /// durable, through [`Syncer::sync_to`], an fsync it starts gathering
    /// first for up to `max_delay` (see the module docs).
    pub(crate) fn sync_appended(
        &self,
        dir: &Path,
        target: impl Fn() -> u64,
        max_delay: Duration,
        flush: impl Fn() -> Result<u64>,
    ) -> Result<()> {
        let mut state = self.state.lock();
        state.arrived += 1;
        if state.gathering && state.last.filled_by(state.arrived) {
            self.gathered.notify_one();
        }
        self.sync_locked(state, dir, target, Some(max_delay), flush)
    }

    /// Returns once every offset below `target()` is durable, running (or
    /// joining) a group fsync. `target` is asked at each pass: a truncation
    /// meanwhile may lower it to the log end (no fsync can cover offsets
    /// that are gone). `flush` fsyncs and returns the offset it covers: the
    /// log end offset it read before starting.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if the partition is (or becomes) poisoned; the
    /// fsync's own error for the caller whose fsync failed.
    pub(crate) fn sync_to(
        &self,
        dir: &Path,
        target: impl Fn() -> u64,
        flush: impl Fn() -> Result<u64>,
    ) -> Result<()> {
        self.sync_locked(self.state.lock(), dir, target, None, flush)
    }

    /// [`Syncer::sync_to`] with the state locked; an fsync this call starts
    /// gathers arrivals first when `gather` is given.
    fn sync_locked(
        &self,
        mut state: parking_lot::MutexGuard<'_, SyncState>,
        dir: &Path,
        target: impl Fn() -> u64,
        gather: Option<Duration>,
        flush: impl Fn() -> Result<u64>,
    ) -> Result<()> {
        // Bounded: each pass either returns, waits for an fsync in flight to
        // finish, or runs one fsync that covers at least what was written
        // before `target` was published.
        loop {
            if let Some(cause) = &state.poisoned {
                return Err(Error::Poisoned { dir: dir.to_path_buf(), cause: cause.clone() });
            }
            if state.synced_offset >= target() {
                return Ok(());
            }
            if state.in_progress {
                self.synced.wait(&mut state);
                continue;
            }
            state.in_progress = true;
            if let Some(max_delay) = gather {
                // Bounded by the deadline; arrivals wake it early.
                let deadline = state.last.deadline(max_delay);
                state.gathering = true;
                while !state.last.filled_by(state.arrived)
                    && !self.gathered.wait_until(&mut state, deadline).timed_out()
                {}
                state.gathering = false;
            }
            let group = std::mem::take(&mut state.arrived);
            let unflushed_before = state.unflushed_records;
            let started = Instant::now();
            let result = parking_lot::MutexGuard::unlocked(&mut state, &flush);
            state.in_progress = false;
            self.synced.notify_all();
            match result {
                Ok(covered) => {
                    state.synced_offset = state.synced_offset.max(covered);
                    state.unflushed_records -= unflushed_before.min(state.unflushed_records);
                    state.last_flush = Instant::now();
                    if gather.is_some() {
                        state.last = LastGroup { appends: group, took: started.elapsed() };
                    }
                }
                Err(e) => {
                    state.poisoned.get_or_insert_with(|| poison_cause(&e));
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;

    #[test]
    fn an_fsync_after_a_group_gathers_as_many_appends_before_it_starts() {
        let syncer = Syncer::new(0);
        let (end, flushes) = (AtomicU64::new(0), AtomicU64::new(0));
        let flush = || {
            flushes.fetch_add(1, Ordering::SeqCst);
            let covered = end.load(Ordering::SeqCst);
            thread::sleep(Duration::from_millis(150));
            Ok(covered)
        };
        let dir = Path::new("p");
        let delay = Duration::from_secs(10);
        // An append `n` is written (the log end moves), then asks.
        let append = |n: u64| {
            end.fetch_max(n, Ordering::SeqCst);
            syncer.sync_appended(dir, || n, delay, flush)
        };
        thread::scope(|s| {
            // Two appends arrive while the first fsync runs: the second
            // fsync covers both, so the last group was two.
            let first = s.spawn(|| append(1));
            thread::sleep(Duration::from_millis(50));
            let (second, third) = (s.spawn(|| append(2)), s.spawn(|| append(3)));
            for h in [first, second, third] {
                h.join().unwrap().unwrap();
            }
        });
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
        thread::scope(|s| {
            // The next starter waits for a second append (up to the last
            // fsync's 150 ms) instead of leaving it to an fsync of its own.
            let lone = s.spawn(|| append(4));
            thread::sleep(Duration::from_millis(60));
            assert_eq!(flushes.load(Ordering::SeqCst), 2, "the starter gathers");
            append(5).unwrap();
            lone.join().unwrap().unwrap();
        });
        assert_eq!(flushes.load(Ordering::SeqCst), 3, "one fsync covered both");
        assert_eq!(syncer.synced_offset(), 5);
    }
}
