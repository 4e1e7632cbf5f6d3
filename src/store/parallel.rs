//! Work over many partitions on a bounded set of threads (Kafka's
//! `num.recovery.threads.per.data.dir`): opening and closing a store.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Runs `job(i)` for every `i < jobs` on at most `threads` threads (the
/// caller's among them) and returns the results in order.
pub(super) fn run<T: Send>(jobs: usize, threads: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.clamp(1, jobs.max(1));
    if threads == 1 {
        return (0..jobs).map(job).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs).map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= jobs {
            return;
        }
        let out = job(i);
        results.lock()[i] = Some(out);
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            // A thread that cannot be spawned leaves its share to the others.
            let _ = std::thread::Builder::new().name("annals-recovery".into()).spawn_scoped(s, work);
        }
        work();
    });
    // Every index below `jobs` was taken by exactly one worker, and the
    // scope joined them all.
    results.into_inner().into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_their_order() {
        for threads in [1, 2, 7] {
            let out = super::run(100, threads, |i| i * 2);
            assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>(), "{threads} threads");
        }
        assert!(super::run(0, 4, |i| i).is_empty());
    }
}
