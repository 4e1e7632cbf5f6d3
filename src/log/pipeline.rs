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
//! 6. the durability policy.

use crate::config::Durability;
use crate::error::{AppendError, Error, Result};
use crate::format::batch::{set_base_offset, set_leader_epoch};
use crate::format::{BatchHeader, EncodeError};
use crate::segment::{LogSegment, OFFSET_MAX};

use super::partition::{PartitionLog, Writer};
use super::types::AppendInfo;

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
    /// through the pipeline's steps (see the module docs).
    pub(super) fn append_checked(
        &self,
        batches: Checked<'_>,
        headers: &mut [BatchHeader],
    ) -> Result<AppendInfo> {
        let Some(first_base) = headers.first().map(|h| h.base_offset) else {
            return Err(EncodeError::Empty.into());
        };
        let mut writer = self.writable()?;
        let end = self.log_end_offset();
        let (bytes, whole): (&[u8], bool) = match batches {
            Checked::Stamp { bytes, leader_epoch } => {
                self.place(headers, end, leader_epoch)?;
                if let Some(info) = writer.producers.check_all(headers)? {
                    // A retry: already in the log at these offsets, and
                    // acknowledged as durably as the first append.
                    drop(writer);
                    return self.make_durable(info);
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
                (bytes, true)
            }
            Checked::Placed { bytes } => {
                if first_base != end {
                    return Err(Error::Append(AppendError::NonContiguousBatch {
                        expected: end,
                        found: first_base,
                    }));
                }
                self.check_offset_limit(headers)?;
                (bytes, false)
            }
        };
        let written = self.write_batches_locked(&mut writer, bytes, headers, whole);
        let moved = self.log_end_offset() != end;
        drop(writer);
        if moved {
            self.notify_appended();
        }
        self.make_durable(written?)
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
            self.counters.appended(run_last.next_offset() - run[0].base_offset, len as u64);
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

    /// Applies the durability policy to an append that was written.
    pub(super) fn make_durable(&self, info: AppendInfo) -> Result<AppendInfo> {
        match self.config.durability {
            Durability::None => {}
            Durability::Always => self.sync_to(info.last_offset + 1)?,
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
