//! The one append pipeline (Kafka's `UnifiedLog.append`): the record,
//! produce and replica paths check their batches outside the writer lock,
//! then hand them here, where every append takes the same steps:
//!
//! 1. the write gate (closed or poisoned logs take nothing);
//! 2. placement at the log end: base offsets stamped from it (records and
//!    producer batches, encoded at 0), or checked to continue it (a
//!    leader's batches), and the one check that offsets stay within
//!    Kafka's `i64`;
//! 3. the idempotent-producer check (a retry answers the first append's
//!    offsets);
//! 4. one write per segment (a new leader epoch noted durably first; a
//!    roll when the active segment cannot take them);
//! 5. waiters woken, after the writer lock is released;
//! 6. the durability policy (under `Durability::Always`, for appends
//!    whose callers complete at once, the combiner's writer runs the group
//!    fsync before it answers them: see `write_turn`).

use crate::config::Durability;
use crate::error::{AppendError, Error, Result};
use crate::format::batch::{set_base_offset, set_leader_epoch};
use crate::format::{BatchHeader, EncodeError};
use crate::segment::{LogSegment, OFFSET_MAX};

use super::combine::{Answer, Arrival, Group, Woken};
use super::partition::{PartitionLog, Writer};
use super::types::{AppendInfo, Completion, Written};

/// Groups one writer's turn writes at most before its fsync, if any (see
/// `write_turn`; the group gathered for the fsync is one more).
const GROUPS_PER_TURN: usize = 8;

/// An append's own batches, written by it if it finds no writer.
struct Own<'a> {
    bytes: &'a mut [u8],
    headers: &'a mut [BatchHeader],
    leader_epoch: Option<i32>,
    /// Answered after the writer's fsync for it (see [`Checked::Stamp`]).
    sync: bool,
}

/// A group's members placed since its last write: their batches lie back
/// to back from `start` in the group's bytes.
#[derive(Debug, Default)]
struct Run {
    start: usize,
    headers: Vec<BatchHeader>,
    /// Each member's ticket and its first header in `headers`.
    members: Vec<(u64, usize)>,
    /// The producer ids with a batch in the run.
    producers: Vec<i64>,
}

/// When the caller of a stamped append applies its durability policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Completes {
    /// As soon as it has the [`Written`] (the record API, `append_batches`).
    AtOnce,
    /// Later, as a broker does (`append_batches_written`).
    Later,
}

/// Checked batches, back to back, and how they take their offsets.
pub(super) enum Checked<'a> {
    /// Encoded at base offset 0 (the record API's batch, a producer's
    /// batches): each gets its base offset from the log end, and the
    /// leader epoch when one is given; producers are checked.
    Stamp {
        /// The batches.
        bytes: &'a mut [u8],
        /// The leader epoch to stamp (`None`: as encoded).
        leader_epoch: Option<i32>,
        /// When the caller applies the durability policy. At once (it
        /// completes the [`Written`] as soon as it has it): under
        /// `Durability::Always` the writer fsyncs for it before it answers,
        /// so that it waits once, not for its write and then its fsync. Its
        /// `complete` must follow at once: that is where an append whose
        /// fsync failed finds the log poisoned.
        completes: Completes,
    },
    /// A leader's batches at its offsets (a follower's append): the first
    /// must start at the log end. Written in as many segments as they
    /// need; a failure leaves those before it appended.
    Placed {
        /// The batches.
        bytes: &'a [u8],
    },
}

impl PartitionLog {
    /// Appends checked batches (`headers` describes `batches`, in order)
    /// through the pipeline's steps (see the module docs), up to the
    /// durability policy, which the caller applies ([`Written`]). Batches
    /// to be stamped go through the write combiner (`combine.rs`).
    pub(super) fn append_checked(
        &self,
        batches: Checked<'_>,
        headers: &mut [BatchHeader],
    ) -> Result<Written> {
        let Some(first_base) = headers.first().map(|h| h.base_offset) else {
            return Err(EncodeError::Empty.into());
        };
        match batches {
            Checked::Stamp { bytes, leader_epoch, completes } => {
                let sync = completes == Completes::AtOnce && self.config.durability == Durability::Always;
                self.append_combined(Own { bytes, headers, leader_epoch, sync }).map(Written)
            }
            Checked::Placed { bytes } => {
                let mut writer = self.writable()?;
                let end = self.log_end_offset();
                if first_base != end {
                    return Err(Error::Append(AppendError::NonContiguousBatch {
                        expected: end,
                        found: first_base,
                    }));
                }
                self.check_offset_limit(headers)?;
                let written = self.write_batches_locked(&mut writer, bytes, headers, false);
                let moved = self.log_end_offset() != end;
                drop(writer);
                if moved {
                    self.notify_appended();
                }
                self.counters.appended();
                written.map(Written)
            }
        }
    }

    /// Appends batches encoded at 0 through the combiner: written now with
    /// what is queued, or queued for the writer in turn.
    fn append_combined(&self, own: Own<'_>) -> Result<AppendInfo> {
        let ticket = match self.combiner.arrive(own.bytes, own.headers, own.leader_epoch, own.sync) {
            Arrival::Write => return self.write_turn(Some(own)),
            Arrival::Queued(ticket) => ticket,
        };
        // Bounded: each turn written answers the tickets it took, and a
        // queued append is taken by the first turn after it arrived.
        loop {
            match self.combiner.wait(ticket) {
                Woken::Answer(answer) => return answer,
                Woken::Write => {
                    // Its own answer is posted with the others'.
                    let _ = self.write_turn(None);
                }
            }
        }
    }

    /// One writer's turn: its own batches (if it arrived to an idle
    /// combiner), then everything queued when it holds the writer lock.
    /// Appends to be answered once durable (`Own::sync`, `Member::sync`)
    /// are answered after one fsync for all of them, which first gathers
    /// more (`Combiner::gather`); the others as soon as they are written.
    /// What queues during the fsync forms the next group, written by one
    /// of its members once this turn ends. The queued answers are posted
    /// even if this panics.
    fn write_turn(&self, own: Option<Own<'_>>) -> Result<AppendInfo> {
        struct Finish<'a>(&'a super::combine::Combiner, Vec<Answer>);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.finish(std::mem::take(&mut self.1));
            }
        }
        let mut finish = Finish(&self.combiner, Vec::new());
        let own_sync = own.as_ref().is_some_and(|own| own.sync);
        let own = self.write_groups(own, &mut finish.1, GROUPS_PER_TURN);
        // Its own append was written and waits for this turn's fsync.
        let own_waits = own_sync && own.is_ok();
        if !own_waits && finish.1.is_empty() {
            return own;
        }
        let max_delay = std::time::Duration::from_micros(self.config.commit_delay_us);
        if self.combiner.gather(finish.1.len() + usize::from(own_waits), max_delay) {
            let _ = self.write_groups(None, &mut finish.1, 1);
        }
        let own_info = own.as_ref().ok().filter(|_| own_waits);
        let written = finish.1.iter().filter_map(|(_, answer)| answer.as_ref().ok());
        let Some(last) = written.chain(own_info).map(|info| info.last_offset).max() else {
            return own;
        };
        let started = std::time::Instant::now();
        let synced = self.sync_to(last + 1);
        self.combiner.synced(finish.1.len() + usize::from(own_waits), started.elapsed());
        // A member's completion finds its records durable, or, if this
        // fsync failed, the log poisoned (`make_durable`).
        match synced {
            Err(e) if own_waits => Err(e),
            _ => own,
        }
    }

    /// Writes `own` (if any), then up to `groups` of what queues, under
    /// the writer lock. Answers to appends to be answered once durable,
    /// when written, go to `durable`; the others are posted at once.
    fn write_groups(
        &self,
        own: Option<Own<'_>>,
        durable: &mut Vec<Answer>,
        groups: usize,
    ) -> Result<AppendInfo> {
        let mut answers = Vec::new();
        let mut writer = match self.writable() {
            Ok(writer) => writer,
            Err(e) => {
                let group = self.combiner.take(Group::default());
                answers.extend(group.members.iter().map(|m| (m.ticket, Err(e.clone()))));
                self.combiner.answer(&mut answers);
                return Err(e);
            }
        };
        let end = self.log_end_offset();
        let own = own.map_or(Err(Error::Closed), |own| {
            self.write_stamped(&mut writer, own.bytes, own.headers, own.leader_epoch)
        });
        // What arrives while a group is written forms the next one: the
        // writer stays on while there is any (up to a bound, so that its own
        // caller is not kept waiting), and each waiting append is answered
        // without a turn of its own.
        let mut spare = Group::default();
        for _ in 0..groups {
            let mut group = self.combiner.take(spare);
            if group.members.is_empty() {
                break;
            }
            self.write_group(&mut writer, &mut group, &mut answers);
            if group.members.iter().any(|m| m.sync) {
                // Tickets rise in arrival order.
                let syncs = |ticket: &u64| {
                    let found = group.members.binary_search_by_key(ticket, |m| m.ticket);
                    found.is_ok_and(|i| group.members[i].sync)
                };
                let (to_sync, now): (Vec<_>, Vec<_>) =
                    answers.drain(..).partition(|(ticket, answer)| answer.is_ok() && syncs(ticket));
                durable.extend(to_sync);
                answers = now;
            }
            self.combiner.answer(&mut answers);
            group.bytes.clear();
            group.members.clear();
            spare = group;
        }
        let moved = self.log_end_offset() != end;
        drop(writer);
        if moved {
            self.notify_appended();
        }
        own
    }

    /// Places, checks and writes one append's batches (all in one write):
    /// a producer's retry answers the first append's offsets, unwritten.
    fn write_stamped(
        &self,
        writer: &mut Writer,
        bytes: &mut [u8],
        headers: &mut [BatchHeader],
        leader_epoch: Option<i32>,
    ) -> Result<AppendInfo> {
        match self.stamp(writer, bytes, headers, leader_epoch, self.log_end_offset())? {
            Some(retry) => Ok(retry),
            None => {
                let written = self.write_batches_locked(writer, bytes, headers, true)?;
                self.counters.appended();
                Ok(written)
            }
        }
    }

    /// Places `headers` at `end` and checks their producers (against the
    /// producer state as written so far); if they are to be written,
    /// stamps their base offsets (and leader epoch) into `bytes`. Returns
    /// a retry's first append, which is not written again.
    fn stamp(
        &self,
        writer: &Writer,
        bytes: &mut [u8],
        headers: &mut [BatchHeader],
        leader_epoch: Option<i32>,
        end: u64,
    ) -> Result<Option<AppendInfo>> {
        self.place(headers, end, leader_epoch)?;
        if let Some(info) = writer.producers.check_all(headers)? {
            // A retry: already in the log at these offsets, and
            // acknowledged as durably as the first append.
            return Ok(Some(info));
        }
        let mut at = 0;
        for h in headers.iter() {
            let batch = &mut bytes[at..at + h.batch_len as usize];
            set_base_offset(batch, h.base_offset);
            if leader_epoch.is_some() {
                set_leader_epoch(batch, h.leader_epoch);
            }
            at += batch.len();
        }
        Ok(None)
    }

    /// Writes a queued group in arrival order, answering each member.
    /// Members are placed one after another and written together in runs:
    /// a run ends before a member that is refused or is a retry (it is
    /// answered and not written), and before a member whose producer has
    /// a batch in the run (its sequence is checked against the run as
    /// written). A failed write answers every member of its run with the
    /// error; the members after it are placed at the log end as it stands.
    fn write_group(&self, writer: &mut Writer, group: &mut Group, answers: &mut Vec<Answer>) {
        let mut run = Run::default();
        let mut at = 0;
        for member in &mut group.members {
            let len = member.len;
            if member.headers.iter().any(|h| h.producer_id >= 0 && run.producers.contains(&h.producer_id)) {
                self.write_run(writer, &group.bytes, &mut run, answers);
            }
            // A run is of one leader epoch: a stale epoch is refused in its
            // write, and must fail no other member.
            let epoch = member.leader_epoch.or(member.headers.first().map(|h| h.leader_epoch));
            if run.headers.last().is_some_and(|h| Some(h.leader_epoch) != epoch) {
                self.write_run(writer, &group.bytes, &mut run, answers);
            }
            if run.members.is_empty() {
                run.start = at;
            }
            let end = run.headers.last().map_or_else(|| self.log_end_offset(), BatchHeader::next_offset);
            let bytes = &mut group.bytes[at..at + len];
            match self.stamp(writer, bytes, &mut member.headers, member.leader_epoch, end) {
                Ok(None) => {
                    run.headers.extend_from_slice(&member.headers);
                    let producers = member.headers.iter().map(|h| h.producer_id);
                    run.producers.extend(producers.filter(|&id| id >= 0));
                    run.members.push((member.ticket, run.headers.len() - member.headers.len()));
                }
                answer => {
                    self.write_run(writer, &group.bytes, &mut run, answers);
                    answers.push((member.ticket, answer.map(|retry| retry.expect("a retry"))));
                    run.start = at + len;
                }
            }
            at += len;
        }
        self.write_run(writer, &group.bytes, &mut run, answers);
    }

    /// Writes a run of a group in one write (whole), answers its members,
    /// and empties it.
    fn write_run(&self, writer: &mut Writer, bytes: &[u8], run: &mut Run, answers: &mut Vec<Answer>) {
        if run.members.is_empty() {
            return;
        }
        let len: usize = run.headers.iter().map(|h| h.batch_len as usize).sum();
        // A write before this one in the turn may have poisoned the log.
        let written = self.points.syncer().check(&self.dir).and_then(|()| {
            self.write_batches_locked(writer, &bytes[run.start..run.start + len], &run.headers, true)
        });
        let ends = run.members.iter().skip(1).map(|&(_, first)| first).chain([run.headers.len()]);
        for (&(ticket, first), end) in run.members.iter().zip(ends) {
            let answer = written.as_ref().map_err(Clone::clone).map(|_| {
                let headers = &run.headers[first..end];
                self.counters.appended();
                AppendInfo {
                    first_offset: headers[0].base_offset,
                    last_offset: headers[headers.len() - 1].last_offset(),
                    max_timestamp_ms: headers.iter().map(|h| h.max_timestamp_ms).max().unwrap_or(-1),
                }
            });
            answers.push((ticket, answer));
        }
        run.start += len;
        run.headers.clear();
        run.members.clear();
        run.producers.clear();
    }

    /// Stamps `headers` with base offsets from `end` (and `leader_epoch`),
    /// then checks the offset limit.
    fn place(&self, headers: &mut [BatchHeader], end: u64, leader_epoch: Option<i32>) -> Result<()> {
        let mut next = end;
        for h in headers.iter_mut() {
            h.base_offset = next;
            if let Some(epoch) = leader_epoch {
                h.leader_epoch = epoch;
            }
            next = next.saturating_add(u64::from(h.last_offset_delta) + 1);
        }
        self.check_offset_limit(headers)
    }

    /// The one offset-overflow check: the log end offset stays at most
    /// `OFFSET_MAX` (Kafka's offsets are `i64`).
    fn check_offset_limit(&self, headers: &[BatchHeader]) -> Result<()> {
        match headers.iter().find(|h| {
            h.base_offset.checked_add(u64::from(h.last_offset_delta) + 1).is_none_or(|end| end > OFFSET_MAX)
        }) {
            None => Ok(()),
            Some(h) => Err(Error::OffsetOutOfRange {
                offset: h.base_offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: self.log_end_offset(),
            }),
        }
    }

    /// Writes placed batches back to back at the log end: notes each new
    /// leader epoch (durably, before its first batch), rolls when the
    /// active segment cannot take them, appends each run with one write,
    /// publishes. `whole`: all in one write (one segment, rolled first if
    /// needed), so a failure appends nothing; otherwise in as many runs as
    /// the segments need. The caller wakes waiters after releasing the
    /// writer lock.
    pub(super) fn write_batches_locked(
        &self,
        writer: &mut Writer,
        bytes: &[u8],
        headers: &[BatchHeader],
        whole: bool,
    ) -> Result<AppendInfo> {
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(EncodeError::Empty.into());
        };
        for header in headers {
            if header.leader_epoch >= 0 && writer.epochs.latest() != Some(header.leader_epoch) {
                let mut next = writer.epochs.clone();
                if next.assign(header.leader_epoch, header.base_offset)? {
                    // ORDER: the epoch's entry is durable before its first batch.
                    next.write(&*self.fs, &self.dir).map_err(|e| self.write_failed(e))?;
                    writer.epochs = next;
                }
            }
        }
        let now_ms = self.clock.now_ms();
        let (mut at, mut done) = (0usize, 0usize);
        // Bounded by the batches: each pass writes at least one.
        while done < headers.len() {
            let rest = &headers[done..];
            let mut active = self.active();
            let mut run = if whole {
                self.takes_whole(&active, rest, now_ms)
            } else {
                self.run_fitting(&active, rest, now_ms)
            };
            if run == 0 {
                active = self.roll_locked(writer).map_err(|e| self.write_failed(e))?;
                run = if whole { rest.len() } else { self.run_fitting(&active, rest, now_ms).max(1) };
            }
            let run = &rest[..run];
            let len: usize = run.iter().map(|h| h.batch_len as usize).sum();
            active
                .append_batches(&mut writer.indexing, &bytes[at..at + len], run, &self.segment_config, now_ms)
                .map_err(|e| self.write_failed(e))?;
            let run_last = run.last().expect("a run holds a batch");
            self.segments.publish_end(writer, run_last.next_offset());
            self.counters.wrote(run_last.next_offset() - run[0].base_offset, len as u64);
            for header in run.iter().filter(|h| h.producer_id >= 0) {
                writer.producers.update(header);
            }
            (at, done) = (at + len, done + run.len());
        }
        let max_timestamp_ms = headers.iter().map(|h| h.max_timestamp_ms).max().unwrap_or(-1);
        Ok(AppendInfo { first_offset: first.base_offset, last_offset: last.last_offset(), max_timestamp_ms })
    }

    /// All of `headers` when the active segment takes them in one write, else 0.
    fn takes_whole(&self, active: &LogSegment, headers: &[BatchHeader], now_ms: i64) -> usize {
        let bytes: u64 = headers.iter().map(|h| u64::from(h.batch_len)).sum();
        let last = headers.last().map_or(0, BatchHeader::last_offset);
        if active.needs_roll(bytes, last, &self.segment_config, now_ms) {
            0
        } else {
            headers.len()
        }
    }

    /// How many of `headers`, from the first, the active segment takes in
    /// one write: an empty segment takes the first whatever it is, and
    /// more only within the size and the index's 31-bit relative offsets.
    fn run_fitting(&self, active: &LogSegment, headers: &[BatchHeader], now_ms: i64) -> usize {
        let config = &self.segment_config;
        let mut bytes = 0u64;
        for (k, h) in headers.iter().enumerate() {
            bytes += u64::from(h.batch_len);
            let fits = !active.needs_roll(bytes, h.last_offset(), config, now_ms)
                && (k == 0
                    || (active.size_bytes() + bytes <= config.segment_bytes
                        && h.last_offset() - active.base_offset() <= i32::MAX as u64));
            if !fits {
                return k;
            }
        }
        headers.len()
    }

    /// Completes an append that was written: applies the durability
    /// policy (what [`PartitionLog::append`] and
    /// [`PartitionLog::append_batches`] do before they return), and with
    /// [`Completion::Durable`] returns only once its records are durable
    /// (group commit, gathering as `Durability::Always` does).
    ///
    /// A broker that keeps several requests of a connection in flight
    /// appends them in order with [`PartitionLog::append_batches_written`]
    /// and completes each on its own, so their fsyncs overlap the next
    /// appends.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`] of the fsync
    /// (which poisons the log): the records were written but are not known
    /// durable.
    pub fn complete(&self, written: Written, completion: Completion) -> Result<AppendInfo> {
        let info = self.make_durable(written.0)?;
        if completion == Completion::Durable && self.durable_offset() <= info.last_offset {
            self.points.syncer().check_open(&self.dir)?;
            self.sync_appended(info.last_offset + 1)?;
        }
        Ok(info)
    }

    /// Whether [`PartitionLog::complete`] with `completion` may fsync (and
    /// so is worth running where a wait does not hold anything up); when
    /// not, it returns at once.
    pub fn completion_waits(&self, completion: Completion) -> bool {
        completion == Completion::Durable || self.config.durability != Durability::None
    }

    /// Applies the durability policy to an append that was written.
    fn make_durable(&self, info: AppendInfo) -> Result<AppendInfo> {
        match self.config.durability {
            Durability::None => {}
            // An append the combiner's writer fsynced for is durable already.
            Durability::Always if self.durable_offset() > info.last_offset => {}
            Durability::Always => self.sync_appended(info.last_offset + 1)?,
            Durability::Interval { flush_messages, flush_ms } => {
                let records = info.last_offset + 1 - info.first_offset;
                if self.points.syncer().note_appended(records, flush_messages, flush_ms) {
                    self.flush_points()?;
                }
            }
        }
        Ok(info)
    }
}
