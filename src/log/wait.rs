//! A runtime-agnostic future that resolves when a partition log grows (or
//! its high watermark rises).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::partition::PartitionLog;
use super::types::ReadBound;

/// Resolves (to the bound's offset) once the bound it was made with (see
/// [`PartitionLog::wait_for_async`]) is above `offset`: for
/// [`ReadBound::LogEnd`], once a record at `offset` can be read. Woken by
/// appends, fsyncs and high-watermark moves; needs no async runtime.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use annals::{LogConfig, PartitionLog, ReadBound, Record};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
/// let dir = tempfile::tempdir()?;
/// let log = Arc::new(PartitionLog::open(dir.path(), LogConfig::default())?);
/// let wait = PartitionLog::wait_for_async(&log, 0, ReadBound::LogEnd);
/// log.append(&[Record::new("hello")])?;
/// assert_eq!(block_on(wait), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WaitForOffset {
    log: Arc<PartitionLog>,
    offset: u64,
    id: u64,
    registered: bool,
    bound: ReadBound,
}

impl WaitForOffset {
    pub(super) fn new(log: Arc<PartitionLog>, offset: u64, bound: ReadBound) -> Self {
        let id = log.notifier.new_waiter_id();
        WaitForOffset { log, offset, id, registered: false, bound }
    }

    fn bound(&self) -> u64 {
        self.log.bound_offset(self.bound)
    }
}

impl Future for WaitForOffset {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let end = self.bound();
        if end > self.offset {
            return Poll::Ready(end);
        }
        let first = !self.registered;
        self.registered = true;
        self.log.notifier.register(self.id, cx.waker(), first);
        // Re-check after registering: an append in between has either been
        // seen here or will wake the waker just registered.
        let end = self.bound();
        if end > self.offset {
            return Poll::Ready(end);
        }
        Poll::Pending
    }
}

impl Drop for WaitForOffset {
    fn drop(&mut self) {
        if self.registered {
            self.log.notifier.unregister(self.id);
        }
    }
}
