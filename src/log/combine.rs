//! Write combining: while one append is writing, appends that arrive
//! queue their checked batches here, and the next writer writes all of
//! them with one write (LevelDB's and RocksDB's write groups; Kafka's log
//! has one writer lock and no such queue).
//!
//! The contract is unchanged: offsets are assigned in arrival order (the
//! queue's order), and each caller returns once its own batches are
//! written (under group commit, below, once its fsync ran), with its own
//! answer (a producer refused, a retry's first offsets), so one caller's
//! refusal never fails another's append.
//!
//! Turns: the append that finds no writer and an empty queue writes its
//! own batches from where they lie (no copy), then the queue. Any other
//! copies its batches into the queue and waits, either for its answer or
//! for no writer to be left, when it writes the queue (its own among it).
//! Each waiter parks on its own and is woken alone: by its answer, or, the
//! first of a queue a writer leaves behind, to write it.
//!
//! Group commit (`Durability::Always`, for appends whose callers complete
//! them at once): the writer answers those only after one fsync for all
//! it wrote, which first gathers arrivals ([`Combiner::gather`]); it stays
//! the writer meanwhile, so what arrives during the fsync queues and forms
//! the next group at once. Each such append then sleeps once, for its
//! answer, not once for its write and again for its fsync. A broker's
//! appends that complete later (`append_batches_written`) are answered
//! when written, and make their own group commits (`durability.rs`).

use std::thread::Thread;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::format::BatchHeader;

use super::durability::LastGroup;
use super::types::AppendInfo;

/// Queued bytes past this make an arrival wait for the group in flight
/// before it joins the next one: the bound on a group, and so on how far a
/// group written whole overshoots `segment.bytes` (a single append can
/// overshoot by its own size).
pub(super) const GROUP_MAX_BYTES: usize = 1 << 20;

/// An answer to a queued append, by ticket.
pub(super) type Answer = (u64, Result<AppendInfo>);

/// The queue and its turns (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Combiner {
    queue: Mutex<Queue>,
    /// Arrivals held back by a full group wait on this.
    room: Condvar,
    /// A writer gathering arrivals for its fsync waits on this alone,
    /// woken once, when they are all in (not at each one).
    gathered: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// An append is writing (from its arrival until it posts its answers).
    writing: bool,
    /// What waits for the next write.
    group: Group,
    /// Answers to queued appends, by ticket, until each takes its own.
    answers: Vec<Answer>,
    /// The appends the writer took and has not answered yet: each one's
    /// ticket and the thread to wake with its answer.
    taken: Vec<(u64, Thread)>,
    next_ticket: u64,
    /// Arrivals waiting for room in a full group.
    held: usize,
    /// A gathering writer, with this many appends of its own to fsync,
    /// waits until the group fills what the last fsync covered.
    gathering: Option<usize>,
    /// What the last turn that fsynced covered and took.
    last: LastGroup,
}

impl Queue {
    /// Whether `have` appends and the group queued fill what the last
    /// fsync covered, or the group is full (arrivals wait for room).
    fn filled(&self, have: usize) -> bool {
        self.last.filled_by((have + self.group.members.len()) as u64)
            || self.group.bytes.len() >= GROUP_MAX_BYTES
    }
}

/// Appends queued for one write, in arrival order: their batches back to
/// back, and what each is.
#[derive(Debug, Default)]
pub(super) struct Group {
    pub(super) bytes: Vec<u8>,
    pub(super) members: Vec<Member>,
}

/// One queued append.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) ticket: u64,
    /// Its batches' headers (base offsets not yet assigned).
    pub(super) headers: Vec<BatchHeader>,
    /// The leader epoch to stamp (`None`: as encoded).
    pub(super) leader_epoch: Option<i32>,
    /// Its bytes in [`Group::bytes`].
    pub(super) len: usize,
    /// Answered after the writer's fsync for it (see [`Combiner::gather`]);
    /// if that failed, its completion finds the log poisoned.
    pub(super) sync: bool,
    /// The thread waiting for its answer.
    thread: Thread,
}

/// What an arriving append does.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Arrival {
    /// Write its own batches now, then the queue.
    Write,
    /// Queued under this ticket: wait.
    Queued(u64),
}

/// What a queued append finds when it wakes.
#[derive(Debug)]
pub(super) enum Woken {
    /// Its answer: its batches were written (or refused).
    Answer(Result<AppendInfo>),
    /// No writer is left: write the queue (its own batches among it).
    Write,
}

impl Combiner {
    /// An append with these checked batches arrives; `sync`: it is to be
    /// answered after the writer's fsync for it ([`Member::sync`]).
    pub(super) fn arrive(
        &self,
        bytes: &[u8],
        headers: &[BatchHeader],
        leader_epoch: Option<i32>,
        sync: bool,
    ) -> Arrival {
        let mut queue = self.queue.lock();
        if !queue.writing && queue.group.members.is_empty() {
            queue.writing = true;
            return Arrival::Write;
        }
        // Bounded: each wait follows a writer taking the group, or leaving.
        while queue.writing && queue.group.bytes.len() >= GROUP_MAX_BYTES {
            queue.held += 1;
            self.room.wait(&mut queue);
            queue.held -= 1;
        }
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.group.bytes.extend_from_slice(bytes);
        let thread = std::thread::current();
        let member =
            Member { ticket, headers: headers.to_vec(), leader_epoch, len: bytes.len(), sync, thread };
        queue.group.members.push(member);
        if queue.gathering.is_some_and(|have| queue.filled(have)) {
            self.gathered.notify_one();
        }
        Arrival::Queued(ticket)
    }

    /// Waits until `ticket` has its answer, or no writer is left. Each
    /// waiter parks on its own and is woken alone: by its answer, or to
    /// take over the queue a writer left (see [`Combiner::finish`]).
    pub(super) fn wait(&self, ticket: u64) -> Woken {
        // Bounded: a writer answers what it took; a writer that leaves a
        // queue wakes one of its members, who writes it.
        loop {
            let mut queue = self.queue.lock();
            if let Some(i) = queue.answers.iter().position(|(t, _)| *t == ticket) {
                return Woken::Answer(queue.answers.swap_remove(i).1);
            }
            if !queue.writing {
                queue.writing = true;
                return Woken::Write;
            }
            drop(queue);
            // An unpark that came before this returns it at once; a stray
            // one only makes it look again.
            std::thread::park();
        }
    }

    /// The writer takes what is queued (under the writer lock, so no
    /// append it has not taken can be placed before the ones it has).
    /// `spare` is an emptied group whose buffers the queue reuses.
    pub(super) fn take(&self, spare: Group) -> Group {
        let mut queue = self.queue.lock();
        let taken = std::mem::replace(&mut queue.group, spare);
        let threads = taken.members.iter().map(|m| (m.ticket, m.thread.clone()));
        queue.taken.extend(threads);
        if queue.held > 0 && !taken.members.is_empty() {
            self.room.notify_all();
        }
        taken
    }

    /// The writer, having written `have` appends to be answered after its
    /// fsync (its own among them), waits for more to queue before the
    /// fsync, as the syncer's fsync starter does (`durability.rs`, "Filling
    /// each fsync"; [`LastGroup`]), bounded by `max_delay`. Returns
    /// whether anything is queued (for the writer to take).
    pub(super) fn gather(&self, have: usize, max_delay: Duration) -> bool {
        let mut queue = self.queue.lock();
        if !queue.filled(have) {
            let deadline = queue.last.deadline(max_delay);
            queue.gathering = Some(have);
            // Bounded by the deadline; the arrival that fills it wakes it.
            while !queue.filled(have) && !self.gathered.wait_until(&mut queue, deadline).timed_out() {}
            queue.gathering = None;
        }
        !queue.group.members.is_empty()
    }

    /// The writer waited `took` for the fsync of `appends` appends (its own
    /// fsync, or one in flight it joined, failed or not): what the next
    /// turn gathers for, and for how long at most.
    pub(super) fn synced(&self, appends: usize, took: Duration) {
        let mut queue = self.queue.lock();
        queue.last = LastGroup { appends: appends as u64, took };
    }

    /// The writer posts the answers so far (and stays the writer).
    pub(super) fn answer(&self, answers: &mut Vec<Answer>) {
        if answers.is_empty() {
            return;
        }
        let mut queue = self.queue.lock();
        post(&mut queue, answers.drain(..));
    }

    /// The writer posts the answers to what it took and leaves. Anything
    /// it took and did not answer (it panicked on the way) is answered
    /// with an error, so that no queued append waits forever. What queued
    /// meanwhile gets a writer: the first of it is woken to write it.
    pub(super) fn finish(&self, answers: Vec<Answer>) {
        let mut queue = self.queue.lock();
        post(&mut queue, answers);
        let lost: Vec<_> = queue.taken.iter().map(|(ticket, _)| (*ticket, Err(writer_stopped()))).collect();
        post(&mut queue, lost);
        queue.writing = false;
        if let Some(next) = queue.group.members.first() {
            next.thread.unpark();
        }
        if queue.held > 0 {
            self.room.notify_all();
        }
    }
}

/// Posts `answers` and wakes each one's thread.
fn post(queue: &mut Queue, answers: impl IntoIterator<Item = Answer>) {
    for (ticket, answer) in answers {
        if let Some(i) = queue.taken.iter().position(|(t, _)| *t == ticket) {
            queue.taken.swap_remove(i).1.unpark();
        }
        queue.answers.push((ticket, answer));
    }
}

/// The answer of an append whose writer stopped before answering it.
fn writer_stopped() -> crate::Error {
    let source = std::io::Error::other("the thread writing it stopped (panicked) before it was written");
    crate::Error::Io { op: "combined append", path: std::path::PathBuf::new(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_first_arrival_writes_and_later_ones_queue_in_order() {
        let c = Combiner::default();
        assert_eq!(c.arrive(b"a", &[], None, false), Arrival::Write);
        assert_eq!(c.arrive(b"bb", &[], None, false), Arrival::Queued(0));
        assert_eq!(c.arrive(b"ccc", &[], Some(3), false), Arrival::Queued(1));
        let group = c.take(Group::default());
        assert_eq!(group.bytes, b"bbccc");
        let lens: Vec<_> = group.members.iter().map(|m| (m.ticket, m.len, m.leader_epoch)).collect();
        assert_eq!(lens, [(0, 2, None), (1, 3, Some(3))]);
        let info = AppendInfo { first_offset: 1, last_offset: 1, max_timestamp_ms: -1 };
        c.finish(vec![(1, Ok(info)), (0, Err(crate::Error::Closed))]);
        assert!(matches!(c.wait(1), Woken::Answer(Ok(i)) if i == info));
        assert!(matches!(c.wait(0), Woken::Answer(Err(crate::Error::Closed))));
        // Nothing queued, no writer: the next arrival writes.
        assert_eq!(c.arrive(b"d", &[], None, false), Arrival::Write);
    }

    #[test]
    fn a_queue_left_without_a_writer_is_written_by_a_member() {
        let c = Combiner::default();
        assert_eq!(c.arrive(b"a", &[], None, false), Arrival::Write);
        assert_eq!(c.arrive(b"b", &[], None, false), Arrival::Queued(0));
        c.finish(Vec::new()); // the writer left before taking the queue
                              // A new arrival queues behind it, in order, and either member may
                              // write the queue once no writer is left.
        assert_eq!(c.arrive(b"c", &[], None, false), Arrival::Queued(1));
        assert!(matches!(c.wait(0), Woken::Write));
        assert_eq!(c.take(Group::default()).bytes, b"bc");
    }

    #[test]
    fn a_writer_gathers_as_many_as_the_last_fsync_covered_within_its_time() {
        use std::thread;
        let c = Combiner::default();
        let long = Duration::from_secs(20);
        c.synced(3, long);
        assert_eq!(c.arrive(b"a", &[], None, true), Arrival::Write);
        // As many as the last group already: no wait.
        let started = Instant::now();
        assert!(!c.gather(3, long));
        assert!(started.elapsed() < long / 2);
        // One short: woken by the arrival that completes it.
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(100));
                c.arrive(b"b", &[], None, true)
            });
            let started = Instant::now();
            assert!(c.gather(2, long));
            assert!(started.elapsed() < long / 2);
        });
        // Nothing comes: it waits `max_delay`, then goes on.
        c.take(Group::default());
        let started = Instant::now();
        assert!(!c.gather(1, Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Nor longer than the last fsync took, whatever `max_delay`.
        c.synced(3, Duration::from_millis(50));
        let started = Instant::now();
        assert!(!c.gather(1, long));
        assert!((Duration::from_millis(50)..long / 2).contains(&started.elapsed()));
    }

    #[test]
    fn what_a_writer_took_and_did_not_answer_is_answered_with_an_error() {
        let c = Combiner::default();
        assert_eq!(c.arrive(b"a", &[], None, false), Arrival::Write);
        assert_eq!(c.arrive(b"b", &[], None, false), Arrival::Queued(0));
        assert_eq!(c.arrive(b"c", &[], None, false), Arrival::Queued(1));
        c.take(Group::default());
        let info = AppendInfo { first_offset: 1, last_offset: 1, max_timestamp_ms: -1 };
        c.finish(vec![(0, Ok(info))]); // as a panicking writer's guard would
        assert!(matches!(c.wait(0), Woken::Answer(Ok(_))));
        assert!(matches!(c.wait(1), Woken::Answer(Err(crate::Error::Io { .. }))));
    }
}
