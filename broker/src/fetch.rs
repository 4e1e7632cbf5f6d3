//! Fetch: the stored batches from the one holding each fetch offset, as
//! they are on disk (a Kafka record set), within the partition's and the
//! response's byte limits; long polling until `min_bytes` are there or
//! `max_wait_ms` has passed, woken by the engine's appends. No fetch
//! sessions: every fetch is a full one (session id 0), which clients
//! accept.
//!
//! Limits, as Kafka's `ReplicaManager.readFromLog` (KIP-74): each
//! partition reads at most `min(partition_max_bytes, what is left of
//! max_bytes)`. Until a partition has returned records (`minOneMessage`),
//! the first batch is returned whatever its size, so a batch larger than
//! the limits never stalls a consumer; from then on a partition whose
//! first batch does not fit returns nothing (Kafka answers an incomplete
//! first batch with an empty record set for Fetch v3+).
//!
//! Waiting, as Kafka's `DelayedFetch`: answered at once when `max_wait_ms`
//! is 0, a partition answered with an error, or the bytes available reach
//! `min_bytes` (each partition counting at most its `partition_max_bytes`);
//! otherwise after the next append to a partition asked for brings them
//! there, or at `max_wait_ms`, with whatever is there then.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use annals::WaitForOffset;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};

use crate::api::{blocking, Answer};
use crate::Shared;

pub(crate) async fn handle(
    shared: &Arc<Shared>,
    request: FetchRequest,
    version: i16,
) -> Answer<FetchResponse> {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let request = Arc::new(request);
    // Bounded by the deadline: each pass answers, or waits for an append
    // or the deadline.
    loop {
        let request2 = request.clone();
        let read = blocking(shared, ApiKey::Fetch, move |shared| answer(shared, &request2, version)).await?;
        let now = Instant::now();
        if read.complete(min_bytes) || now >= deadline {
            return Ok(read.response);
        }
        let _ = tokio::time::timeout(deadline - now, any(read.waits)).await;
    }
}

/// Ready when any of the waits is.
async fn any(mut waits: Vec<WaitForOffset>) {
    std::future::poll_fn(|cx| {
        if waits.iter_mut().any(|w| Pin::new(w).poll(cx).is_ready()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// One pass over the partitions asked for, as the logs stand.
struct Read {
    response: FetchResponse,
    /// Bytes available, as Kafka's `DelayedFetch` counts them: what each
    /// partition returned, or its `partition_max_bytes` when it had more
    /// than that.
    available: usize,
    /// The response holds what `max_bytes` lets it: a partition had more
    /// than was left of it. Waiting cannot add to such a response.
    full: bool,
    /// A partition answered with an error (Kafka answers at once).
    error: bool,
    /// A wait for the next append, for each partition read without error.
    waits: Vec<WaitForOffset>,
}

impl Read {
    /// Whether to answer now rather than wait for appends.
    fn complete(&self, min_bytes: usize) -> bool {
        self.available >= min_bytes || self.full || self.error || self.waits.is_empty()
    }
}

/// What is left of the response's `max_bytes`, and whether a partition has
/// returned records yet (Kafka's `minOneMessage` is true until one has).
struct Budget {
    left: usize,
    min_one_message: bool,
}

fn answer(shared: &Shared, request: &FetchRequest, version: i16) -> Read {
    let left = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let mut budget = Budget { left, min_one_message: true };
    let mut read = Read {
        response: FetchResponse::default(),
        available: 0,
        full: false,
        error: false,
        waits: Vec::new(),
    };
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let topic = shared.store.topic(&t.topic.0);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let response = partition(shared, &topic, p, version, &mut budget, &mut read);
                    read.error |= response.error_code != 0;
                    response
                })
                .collect();
            FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    read.response = FetchResponse::default().with_responses(topics);
    read
}

/// One partition's part of the response; notes what it read in `read`.
fn partition(
    shared: &Shared,
    topic: &annals::Result<annals::Topic>,
    p: &FetchPartition,
    version: i16,
    budget: &mut Budget,
    read: &mut Read,
) -> PartitionData {
    // The log start offset is in the response from v5 on.
    let start_of = |start: u64| if version >= 5 { start as i64 } else { -1 };
    let response = PartitionData::default().with_partition_index(p.partition).with_high_watermark(-1);
    let partition = match crate::partition(topic, p.partition) {
        Ok(partition) => partition,
        Err(code) => return response.with_error_code(code),
    };
    let partition_max = p.partition_max_bytes.max(0) as usize;
    let data = &*shared.data;
    // A poisoned log (a failed fsync or write) is offline, as metadata
    // lists it: Kafka answers KAFKA_STORAGE_ERROR for a replica on a
    // failed log directory.
    if let Some(e) = data.offline(&partition) {
        return response.with_error_code(crate::errors::code(&e));
    }
    let (start, end, log_end) = data.offsets(&partition);
    let response = response
        .with_high_watermark(end as i64)
        .with_last_stable_offset(end as i64)
        .with_log_start_offset(start_of(start));
    // In range up to the log end, as Kafka's: a consumer at or past the
    // high watermark (which may wait below the log end for an fsync) gets
    // nothing yet, not an error that would reset its position.
    let Some(offset) = u64::try_from(p.fetch_offset).ok().filter(|&o| o >= start && o <= log_end) else {
        return response.with_error_code(ResponseError::OffsetOutOfRange.code());
    };
    read.waits.extend(data.wait(&partition, offset.max(end)));
    if offset >= end {
        return response.with_records(Some(bytes::Bytes::new()));
    }
    let limit = partition_max.min(budget.left);
    let fetched = if budget.min_one_message {
        // The first batch goes out whatever its size.
        data.read(&partition, offset, limit.max(1)).map(Some)
    } else if limit == 0 {
        Ok(None)
    } else {
        // The engine returns whole batches, the first whatever its size:
        // one larger than the limit is not sent (Kafka's incomplete first
        // batch, answered with no records).
        data.read(&partition, offset, limit).map(|f| Some(f).filter(|(bytes, _)| bytes.len() <= limit))
    };
    match fetched {
        Ok(fetched) => {
            let (bytes, next) = fetched.unwrap_or_default();
            let next = next.unwrap_or(offset);
            if next < end {
                // More than the limits let out. Kafka's DelayedFetch counts
                // such a partition as its partition_max_bytes; one cut by
                // what was left of max_bytes fills the response.
                read.full |= limit < partition_max;
                read.available += partition_max.max(bytes.len());
            } else {
                read.available += bytes.len();
            }
            budget.min_one_message &= bytes.is_empty();
            budget.left = budget.left.saturating_sub(bytes.len());
            response.with_records(Some(bytes))
        }
        Err(e) => response.with_error_code(crate::errors::code(&e)),
    }
}
