//! The background maintenance thread: retention and compaction every
//! interval, stopped
//! cleanly when the store closes or is dropped.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::store::StoreInner;

#[derive(Debug, Default)]
pub(super) struct Maintenance {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Maintenance {
    /// Starts the thread. It holds only a weak reference, so it never keeps
    /// a dropped store alive.
    pub(super) fn start(&self, store: Weak<StoreInner>, every: Duration) {
        let stop = self.stop.clone();
        let handle = std::thread::Builder::new()
            .name("annals-maintenance".into())
            .spawn(move || {
                let (stopped, wake) = &*stop;
                let mut next = Instant::now() + every;
                loop {
                    {
                        let mut stopped = stopped.lock();
                        // Bounded: each wait ends at `next` or on stop.
                        while !*stopped && Instant::now() < next {
                            wake.wait_until(&mut stopped, next);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    let Some(store) = store.upgrade() else { return };
                    // Every error is logged and counted (see `metrics`); a
                    // failing partition stays as it was and the pass goes on.
                    store.maintain();
                    drop(store);
                    next = Instant::now() + every;
                }
            })
            .ok();
        *self.thread.lock() = handle;
    }

    /// Stops the thread; joins it unless called from it.
    pub(super) fn stop(&self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(handle) = self.thread.lock().take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    /// Whether the thread is running.
    pub(super) fn is_running(&self) -> bool {
        self.thread.lock().as_ref().is_some_and(|h| !h.is_finished())
    }
}
