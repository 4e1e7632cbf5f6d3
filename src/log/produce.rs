//! The pass-through append a Kafka broker needs as leader (Kafka's
//! `UnifiedLog.appendAsLeader` for v2 batches): the bytes a producer sent
//! are validated in full (compressed records inflated into a reused
//! buffer to be walked), then handed to the one pipeline
//! (`pipeline.rs`), which stamps their offsets and the leader epoch in
//! place (outside the CRC) and writes them as they are, compressed or not,
//! with one write. No record is decoded into values or re-encoded;
//! only a topic whose `compression.type` names another codec than the
//! producer's recompresses the records' bytes (as Kafka's `LogValidator`
//! does).

use crate::error::{AppendError, Error, Result};
use crate::format::batch::rewrite_header;
use crate::format::validate::{rebuild_client_batch, validate_client_batch, Correction};
use crate::format::{BatchHeader, BatchProblem, EncodeError, Inflater};

use super::partition::PartitionLog;
use super::pipeline::{Checked, Completes};
use super::types::{AppendInfo, Completion, Written};

/// What the broker stamps on a produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProduceMeta {
    /// The partition leader epoch stamped on every batch (-1: none).
    pub leader_epoch: i32,
}

impl Default for ProduceMeta {
    fn default() -> Self {
        ProduceMeta { leader_epoch: -1 }
    }
}

impl ProduceMeta {
    /// Stamps `leader_epoch`.
    pub fn leader_epoch(leader_epoch: i32) -> Self {
        ProduceMeta { leader_epoch }
    }
}

impl PartitionLog {
    /// Appends one or more RecordBatch v2 batches as a producer built
    /// them (the records of a Produce request for this partition), as
    /// leader. Each batch is validated fully before anything is written
    /// (CRC-32C, header fields, every record, sizes, timestamps against
    /// `message_timestamp_*`, producer fields; the client's offsets are
    /// not trusted: a batch must start at base offset 0, as Kafka's
    /// broker requires). What Kafka's broker corrects is corrected: the
    /// maxTimestamp is recomputed from the records (a producer such as
    /// sarama sends -1), or is the append time on a LogAppendTime topic
    /// (header rewritten, CRC recomputed, records untouched), and records
    /// whose offset deltas are not 0, 1, 2, ... are encoded again at
    /// those (docs/FORMAT.md lists every field). Then, under the writer
    /// lock, each batch gets its base offset and the leader epoch stamped
    /// in place in `batches`, and all are written with one write. An idempotent producer's retry of a batch already in the log
    /// returns that batch's offsets and appends nothing (as Kafka does
    /// with a duplicate in a produce).
    ///
    /// # Errors
    /// [`crate::AppendError::InvalidBatch`] (batch index, byte, and the Kafka
    /// error code through [`crate::format::BatchProblem::kafka_error_code`]);
    /// [`crate::AppendError::Encode`] for no batch; [`crate::AppendError::OutOfOrderSequence`],
    /// [`crate::AppendError::ProducerFenced`], [`crate::AppendError::StaleLeaderEpoch`],
    /// [`Error::OffsetOutOfRange`] past `i64::MAX`: nothing appended in
    /// any of these. [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`].
    pub fn append_batches(&self, batches: &mut [u8], meta: ProduceMeta) -> Result<AppendInfo> {
        let written = self.append_client_batches(batches, meta, Completes::AtOnce)?;
        self.complete(written, Completion::Policy)
    }

    /// [`PartitionLog::append_batches`] up to its durability policy: the
    /// batches are validated, stamped and written (readable up to the high
    /// watermark), and [`PartitionLog::complete`] applies the policy (under
    /// `Durability::Always`, the fsync). Appends are ordered by this call,
    /// so a broker can keep a connection's requests in order here and let
    /// their fsyncs overlap.
    ///
    /// # Errors
    /// As [`PartitionLog::append_batches`] before its fsync: nothing
    /// appended.
    pub fn append_batches_written(&self, batches: &mut [u8], meta: ProduceMeta) -> Result<Written> {
        self.append_client_batches(batches, meta, Completes::Later)
    }

    /// Validates and appends a client's batches, to be completed as
    /// `completes` says (see `Checked::Stamp`).
    fn append_client_batches(
        &self,
        batches: &mut [u8],
        meta: ProduceMeta,
        completes: Completes,
    ) -> Result<Written> {
        let now_ms = self.clock.now_ms();
        let rules = self.config.client_rules(now_ms);
        let target = self.config.compression();
        // Compressed records inflate into a buffer kept across appends; a
        // producer that finds it taken (another validating) uses its own.
        let mut shared = self.inflater.try_lock();
        let mut own = None;
        let inflater = match shared.as_deref_mut() {
            Some(inflater) => inflater,
            None => own.insert(Inflater::default()),
        };
        // Validate (and correct) outside the writer lock. The
        // batches lie back to back: each one's position is the sum of the
        // lengths before it.
        let mut headers: Vec<BatchHeader> = Vec::with_capacity(1);
        // Batches rebuilt (in a codec other than the producer's, the
        // topic's `compression.type`, or at consecutive offset deltas),
        // with those before them copied: then all of them are written
        // from here.
        let mut rebuilt: Option<Vec<u8>> = None;
        let mut at = 0usize;
        while at < batches.len() {
            let batch = headers.len();
            let refuse = |(position, problem)| {
                Error::Append(AppendError::InvalidBatch { batch, position: at + position, problem })
            };
            let valid = validate_client_batch(&batches[at..], &rules, inflater).map_err(refuse)?;
            let mut header = valid.header;
            let (before, rest) = batches.split_at_mut(at);
            let bytes = &mut rest[..header.batch_len as usize];
            let recompress = target.filter(|t| t.codec != header.compression());
            if recompress.is_some() || valid.correction == Correction::Records {
                // Kafka's broker rebuilds the batch: its records in another
                // codec, or encoded again at consecutive offsets.
                let out = rebuilt.get_or_insert_with(|| before.to_vec());
                let to = recompress.unwrap_or_else(|| self.config.compression_for(header.compression()));
                let start = out.len();
                let limits = self.config.encode_limits();
                let problem =
                    |problem| Error::Append(AppendError::InvalidBatch { batch, position: at, problem });
                header = rebuild_client_batch(out, bytes, &valid, inflater, to, limits).map_err(problem)?;
                if out.len() - start > rules.max_batch_bytes {
                    let size = out.len() - start;
                    return Err(problem(BatchProblem::BatchTooLarge { size, max: rules.max_batch_bytes }));
                }
            } else {
                if valid.correction == Correction::Header {
                    // maxTimestamp recomputed (or the append time), as
                    // Kafka's `setMaxTimestamp`: the records untouched.
                    rewrite_header(bytes, &mut header);
                }
                if let Some(out) = rebuilt.as_mut() {
                    out.extend_from_slice(bytes);
                }
            }
            debug_assert_eq!(header.base_offset, 0, "stamped at the append");
            at += bytes.len();
            headers.push(header);
        }
        drop(shared);
        if headers.is_empty() {
            return Err(EncodeError::Empty.into());
        }
        let to_write = match rebuilt.as_mut() {
            Some(out) => &mut out[..],
            None => batches,
        };
        let leader_epoch = Some(meta.leader_epoch);
        self.append_checked(Checked::Stamp { bytes: to_write, leader_epoch, completes }, &mut headers)
    }
}
