//! Write combining: while one append is writing, appends that arrive
//! queue their checked batches here, and the next writer writes all of
//! them with one write (LevelDB's and RocksDB's write groups; Kafka's log
//! has one writer lock and no such queue).
//!
//! The contract is unchanged: offsets are assigned in arrival order (the
//! queue's order), and each caller returns once its own batches are
//! written, with its own answer (a producer refused, a retry's first
//! offsets), so one caller's refusal never fails another's append.
//!
//! Turns: the append that finds no writer and an empty queue writes its
//! own batches from where they lie (no copy), then the queue. Any other
//! copies its batches into the queue and waits, either for its answer or
//! for no writer to be left, when it writes the queue (its own among it).

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::format::BatchHeader;

use super::types::AppendInfo;

/// Queued bytes past this make an arrival wait for the group in flight
/// before it joins the next one: the bound on a group, and so on how far a
/// group written whole overshoots `segment.bytes` (a single append can
/// overshoot by its own size).
pub(super) const GROUP_MAX_BYTES: usize = 1 << 20;

/// The queue and its turns (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Combiner {
    queue: Mutex<Queue>,
    /// Signalled when a writer finishes: answers are posted, and the
    /// queue may need a writer.
    turn: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// An append is writing (from its arrival until it posts its answers).
    writing: bool,
    /// What waits for the next write.
    group: Group,
    /// Answers to queued appends, by ticket, until each takes its own.
    answers: Vec<(u64, Result<AppendInfo>)>,
    /// Tickets the writer took and has not answered yet.
    taken: Vec<u64>,
    next_ticket: u64,
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
    /// An append with these checked batches arrives.
    pub(super) fn arrive(&self, bytes: &[u8], headers: &[BatchHeader], leader_epoch: Option<i32>) -> Arrival {
        let mut queue = self.queue.lock();
        if !queue.writing && queue.group.members.is_empty() {
            queue.writing = true;
            return Arrival::Write;
        }
        // Bounded: each wait follows a writer taking the group.
        while queue.writing && queue.group.bytes.len() >= GROUP_MAX_BYTES {
            self.turn.wait(&mut queue);
        }
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.group.bytes.extend_from_slice(bytes);
        let member = Member { ticket, headers: headers.to_vec(), leader_epoch, len: bytes.len() };
        queue.group.members.push(member);
        Arrival::Queued(ticket)
    }

    /// Waits until `ticket` has its answer, or no writer is left.
    pub(super) fn wait(&self, ticket: u64) -> Woken {
        let mut queue = self.queue.lock();
        // Bounded: a writer answers what it took; the queue gets a writer
        // whenever none is left.
        loop {
            if let Some(i) = queue.answers.iter().position(|(t, _)| *t == ticket) {
                return Woken::Answer(queue.answers.swap_remove(i).1);
            }
            if !queue.writing {
                queue.writing = true;
                return Woken::Write;
            }
            self.turn.wait(&mut queue);
        }
    }

    /// The writer takes what is queued (under the writer lock, so no
    /// append it has not taken can be placed before the ones it has).
    /// `spare` is an emptied group whose buffers the queue reuses.
    pub(super) fn take(&self, spare: Group) -> Group {
        let mut queue = self.queue.lock();
        let taken = std::mem::replace(&mut queue.group, spare);
        queue.taken.extend(taken.members.iter().map(|m| m.ticket));
        if !taken.members.is_empty() {
            self.turn.notify_all(); // arrivals held back by a full group
        }
        taken
    }

    /// The writer posts the answers so far (and stays the writer).
    pub(super) fn answer(&self, answers: &mut Vec<(u64, Result<AppendInfo>)>) {
        if answers.is_empty() {
            return;
        }
        let mut queue = self.queue.lock();
        queue.taken.retain(|t| !answers.iter().any(|(a, _)| a == t));
        queue.answers.append(answers);
        self.turn.notify_all();
    }

    /// The writer posts the answers to what it took and leaves. Anything
    /// it took and did not answer (it panicked on the way) is answered
    /// with an error, so that no queued append waits for it forever.
    pub(super) fn finish(&self, mut answers: Vec<(u64, Result<AppendInfo>)>) {
        let mut queue = self.queue.lock();
        queue.taken.retain(|t| !answers.iter().any(|(a, _)| a == t));
        let lost = std::mem::take(&mut queue.taken).into_iter().map(|ticket| (ticket, Err(writer_stopped())));
        answers.extend(lost);
        queue.writing = false;
        queue.answers.extend(answers);
        self.turn.notify_all();
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

    #[test]
    fn the_first_arrival_writes_and_later_ones_queue_in_order() {
        let c = Combiner::default();
        assert_eq!(c.arrive(b"a", &[], None), Arrival::Write);
        assert_eq!(c.arrive(b"bb", &[], None), Arrival::Queued(0));
        assert_eq!(c.arrive(b"ccc", &[], Some(3)), Arrival::Queued(1));
        let group = c.take(Group::default());
        assert_eq!(group.bytes, b"bbccc");
        let lens: Vec<_> = group.members.iter().map(|m| (m.ticket, m.len, m.leader_epoch)).collect();
        assert_eq!(lens, [(0, 2, None), (1, 3, Some(3))]);
        let info = AppendInfo { first_offset: 1, last_offset: 1, max_timestamp_ms: -1 };
        c.finish(vec![(1, Ok(info)), (0, Err(crate::Error::Closed))]);
        assert!(matches!(c.wait(1), Woken::Answer(Ok(i)) if i == info));
        assert!(matches!(c.wait(0), Woken::Answer(Err(crate::Error::Closed))));
        // Nothing queued, no writer: the next arrival writes.
        assert_eq!(c.arrive(b"d", &[], None), Arrival::Write);
    }

    #[test]
    fn a_queue_left_without_a_writer_is_written_by_a_member() {
        let c = Combiner::default();
        assert_eq!(c.arrive(b"a", &[], None), Arrival::Write);
        assert_eq!(c.arrive(b"b", &[], None), Arrival::Queued(0));
        c.finish(Vec::new()); // the writer left before taking the queue
                              // A new arrival queues behind it, in order, and either member may
                              // write the queue once no writer is left.
        assert_eq!(c.arrive(b"c", &[], None), Arrival::Queued(1));
        assert!(matches!(c.wait(0), Woken::Write));
        assert_eq!(c.take(Group::default()).bytes, b"bc");
    }

    #[test]
    fn what_a_writer_took_and_did_not_answer_is_answered_with_an_error() {
        let c = Combiner::default();
        assert_eq!(c.arrive(b"a", &[], None), Arrival::Write);
        assert_eq!(c.arrive(b"b", &[], None), Arrival::Queued(0));
        assert_eq!(c.arrive(b"c", &[], None), Arrival::Queued(1));
        c.take(Group::default());
        let info = AppendInfo { first_offset: 1, last_offset: 1, max_timestamp_ms: -1 };
        c.finish(vec![(0, Ok(info))]); // as a panicking writer's guard would
        assert!(matches!(c.wait(0), Woken::Answer(Ok(_))));
        assert!(matches!(c.wait(1), Woken::Answer(Err(crate::Error::Io { .. }))));
    }
}
