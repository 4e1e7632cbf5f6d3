//! Fetch: the stored batches from the one holding each fetch offset, as
//! they are on disk (a Kafka record set), within the partition's and the
//! response's byte limits (the first batch always, as Kafka's KIP-74);
//! long polling until `min_bytes` are there or `max_wait_ms` has passed,
//! woken by the engine's appends. No fetch sessions: every fetch is a full
//! one (session id 0), which clients accept.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use annals::WaitForOffset;
use kafka_protocol::error::ResponseError;
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
    let request = Arc::new(request);
    loop {
        let request2 = request.clone();
        let (response, bytes, waits) =
            blocking(shared, ApiKey::Fetch, move |shared| answer(shared, &request2, version)).await?;
        let now = Instant::now();
        if bytes >= request.min_bytes.max(0) as usize || now >= deadline || waits.is_empty() {
            return Ok(response);
        }
        // Wait for an append to any partition asked for, or the deadline.
        let _ = tokio::time::timeout(deadline - now, any(waits)).await;
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

/// The response as the log stands, the record bytes in it, and a wait
/// for each partition read at its end.
// With the benchmark's sink, the store's path below it is dead code.
#[cfg_attr(discard_sink, allow(unreachable_code, unused_variables))]
fn answer(
    shared: &Shared,
    request: &FetchRequest,
    version: i16,
) -> (FetchResponse, usize, Vec<WaitForOffset>) {
    // The log start offset is in the response from v5 on.
    let start_of = |start: u64| if version >= 5 { start as i64 } else { -1 };
    let mut budget = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let (mut total, mut waits, mut first) = (0usize, Vec::new(), true);
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let topic = shared.store.topic(&t.topic.0);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let response =
                        PartitionData::default().with_partition_index(p.partition).with_high_watermark(-1);
                    let partition = match crate::partition(&topic, p.partition) {
                        Ok(partition) => partition,
                        Err(code) => return response.with_error_code(code),
                    };
                    #[cfg(discard_sink)]
                    {
                        let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                        let (end, bytes) =
                            shared.sink.fetch(&t.topic.0, p.partition, p.fetch_offset.max(0) as u64, limit);
                        budget = budget.saturating_sub(bytes.len());
                        total += bytes.len();
                        let response =
                            response.with_high_watermark(end as i64).with_last_stable_offset(end as i64);
                        return response.with_records(Some(bytes));
                    }
                    let (start, end) = (partition.log_start_offset(), partition.high_watermark());
                    let response = response
                        .with_high_watermark(end as i64)
                        .with_last_stable_offset(end as i64)
                        .with_log_start_offset(start_of(start));
                    let Some(offset) = u64::try_from(p.fetch_offset).ok().filter(|&o| o >= start && o <= end)
                    else {
                        return response.with_error_code(ResponseError::OffsetOutOfRange.code());
                    };
                    if offset == end {
                        waits.push(partition.wait_for_async(offset));
                        return response.with_records(Some(bytes::Bytes::new()));
                    }
                    // The first batch of the response goes out whatever its size.
                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                    let limit = if first { limit.max(1) } else { limit };
                    if limit == 0 {
                        return response.with_records(Some(bytes::Bytes::new()));
                    }
                    match partition.read(offset, limit) {
                        Ok(fetched) => {
                            let bytes = fetched.bytes().clone();
                            first &= bytes.is_empty();
                            total += bytes.len();
                            budget = budget.saturating_sub(bytes.len());
                            response.with_records(Some(bytes))
                        }
                        Err(e) => response.with_error_code(crate::errors::code(&e)),
                    }
                })
                .collect();
            FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    (FetchResponse::default().with_responses(topics), total, waits)
}
