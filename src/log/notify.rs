//! Waking consumers that wait at the log end: blocked threads (condvar) and
//! futures (wakers), with no async runtime.
//!
//! Appends pay one atomic load when nobody waits. No wake-up is lost: a
//! waiter registers (counter, then lock) before it re-checks the log end,
//! and the appender publishes the log end before it reads the counter, both
//! `SeqCst`; the appender then takes the lock, so a waiter between its check
//! and its sleep has either seen the new end or is already asleep.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
pub(crate) struct Notifier {
    waiting: AtomicUsize,
    wakers: Mutex<Vec<(u64, Waker)>>,
    condvar: Condvar,
    next_id: AtomicU64,
}

impl Notifier {
    /// Wakes every waiter. Call after publishing new data.
    pub(crate) fn notify(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let wakers = std::mem::take(&mut *self.wakers.lock());
        self.condvar.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Blocks until `ready()` or `deadline`; returns the last `ready()`.
    pub(crate) fn wait_until(&self, deadline: Instant, ready: impl Fn() -> bool) -> bool {
        if ready() {
            return true;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.wakers.lock();
        let result = loop {
            if ready() {
                break true;
            }
            if self.condvar.wait_until(&mut guard, deadline).timed_out() {
                break ready();
            }
        };
        drop(guard);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// A fresh id for a future's waker slot.
    pub(crate) fn new_waiter_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers (or refreshes) the waker of future `id`. The first
    /// registration of an id counts it as waiting until [`Self::unregister`].
    pub(crate) fn register(&self, id: u64, waker: &Waker, first: bool) {
        if first {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        let mut wakers = self.wakers.lock();
        match wakers.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => w.clone_from(waker),
            None => wakers.push((id, waker.clone())),
        }
    }

    /// Forgets future `id` (it completed or was dropped).
    pub(crate) fn unregister(&self, id: u64) {
        self.wakers.lock().retain(|(i, _)| *i != id);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
