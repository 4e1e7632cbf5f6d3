//! Produce: each partition's records (one or more RecordBatch v2, as the
//! producer built them, compressed or not) go to the engine's
//! pass-through append, which validates them in full, stamps offsets and
//! the leader epoch and writes them as they are. One node holds the only
//! replica: acks=1 answers once the leader has appended (and fsynced, per
//! the topic's durability); acks=-1 too on a `write.caching=true` topic,
//! and otherwise (the default, `durable.rs`) once every partition appended
//! is fsynced. Two steps (`connection.rs`): [`write`] appends all of the
//! request's partitions in the connection's arrival order; [`complete`]
//! makes them durable together, its fsyncs overlapping the connection's
//! next requests. acks=0 answers nothing, and a failed acks=0 produce
//! closes the connection before any later request of it runs, as Kafka's
//! does: there is no response to carry the error, and the producer's
//! reconnect refreshes its metadata. `log_append_time_ms` is the time the log
//! stamped on a LogAppendTime topic, -1 on a CreateTime one (Kafka's).

use std::sync::Arc;

use annals::{Completion, ProduceMeta};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};

use crate::api::{blocking, Answer, Close};
use crate::storage::Appended;
use crate::Shared;

/// The leader epoch stamped on every batch and advertised in metadata
/// (one node, never a new leader).
pub(crate) const LEADER_EPOCH: i32 = 0;

/// A Produce whose batches are written (in the order the connection's
/// requests arrived), waiting for their completions: the durability
/// policy of each partition, and the fsync of a durable acks=-1.
pub(crate) struct Produced {
    response: ProduceResponse,
    pending: Vec<Pending>,
    acks: i16,
    version: i16,
}

/// One partition's written batches and how they are to be completed.
struct Pending {
    at: At,
    partition: annals::Partition,
    appended: Appended,
    completion: Completion,
}

/// Where a partition's answer is in the response.
#[derive(Clone, Copy)]
struct At {
    topic: usize,
    partition: usize,
}

/// The ordered step: validates and writes every partition's batches.
/// What completes without waiting (no fsync in the policy, no durable
/// acks=-1) is completed here.
pub(crate) async fn write(shared: &Arc<Shared>, request: ProduceRequest, version: i16) -> Answer<Produced> {
    let acks = request.acks;
    let (response, pending) =
        blocking(shared, ApiKey::Produce, move |shared| answer(shared, request, version)).await?;
    Ok(Produced { response, pending, acks, version })
}

/// At most this many tasks complete one produce's partitions at once.
const COMPLETION_TASKS: usize = 8;

impl Produced {
    /// Whether completing it waits (an fsync): if not, it is answered in
    /// the ordered step.
    pub(crate) fn waits(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A failed acks=0 produce: why, for the connection's close (Kafka
    /// reads nothing more from that connection).
    pub(crate) fn failed_unanswered(&self) -> Option<String> {
        (self.acks == 0).then(|| failures(&self.response)).flatten()
    }
}

/// The waiting step: completes the written partitions, their fsyncs
/// overlapping (up to [`COMPLETION_TASKS`] blocking tasks; the order of
/// completions does not matter, a later fsync covering an earlier
/// append), and answers; `None` for acks=0.
pub(crate) async fn complete(shared: &Arc<Shared>, produced: Produced) -> Answer<Option<ProduceResponse>> {
    let Produced { mut response, pending, acks, version } = produced;
    let mut chunks: Vec<Vec<Pending>> =
        (0..COMPLETION_TASKS.min(pending.len())).map(|_| Vec::new()).collect();
    let n = chunks.len();
    for (i, p) in pending.into_iter().enumerate() {
        chunks[i % n].push(p);
    }
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let shared = shared.clone();
            tokio::spawn(async move {
                blocking(&shared, ApiKey::Produce, move |shared| {
                    chunk
                        .into_iter()
                        .map(|p| {
                            (p.at, shared.data.complete(&p.partition, p.appended, p.completion), p.partition)
                        })
                        .collect::<Vec<_>>()
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        let done = task.await.map_err(|e| Close(format!("a produce completion failed: {e}")))??;
        for (at, done, partition) in done {
            if let Err(e) = done {
                let log_start = if version >= 5 { shared.data.offsets(&partition).0 as i64 } else { -1 };
                let answer = &mut response.responses[at.topic].partition_responses[at.partition];
                let fresh = PartitionProduceResponse::default().with_index(answer.index);
                *answer = refused(partition.topic(), &partition, version, &e, fresh, log_start);
            }
        }
    }
    if acks != 0 {
        return Ok(Some(response));
    }
    match failures(&response) {
        Some(why) => Err(Close(format!("an acks=0 produce failed ({why})"))),
        None => Ok(None),
    }
}

/// The partitions a produce failed on, `topic-partition: ERROR` each (the
/// first few), or `None` when none did.
fn failures(response: &ProduceResponse) -> Option<String> {
    const LISTED: usize = 8;
    let failed: Vec<String> = response
        .responses
        .iter()
        .flat_map(|t| {
            t.partition_responses.iter().filter(|p| p.error_code != 0).map(move |p| {
                let error = ResponseError::try_from_code(p.error_code)
                    .map_or_else(|| format!("error {}", p.error_code), |e| format!("{e:?}"));
                format!("{}-{}: {error}", &*t.name.0, p.index)
            })
        })
        .collect();
    match failed.len() {
        0 => None,
        n if n <= LISTED => Some(failed.join(", ")),
        n => Some(format!("{}, and {} more", failed[..LISTED].join(", "), n - LISTED)),
    }
}

fn answer(shared: &Shared, request: ProduceRequest, version: i16) -> (ProduceResponse, Vec<Pending>) {
    let data = &*shared.data;
    // Fields a version has: the log start offset from v5, messages from v8.
    let start = |p: &annals::Partition| if version >= 5 { data.offsets(p).0 as i64 } else { -1 };
    let bad_acks = !matches!(request.acks, -1..=1);
    let mut pending: Vec<Pending> = Vec::new();
    let topics: Vec<TopicProduceResponse> = request
        .topic_data
        .into_iter()
        .enumerate()
        .map(|(ti, t)| {
            let name = t.name.0.to_string();
            let topic = shared.store.topic(&name);
            let partitions = t
                .partition_data
                .into_iter()
                .enumerate()
                .map(|(pi, p)| {
                    let response =
                        PartitionProduceResponse::default().with_index(p.index).with_base_offset(-1);
                    if bad_acks {
                        return response.with_error_code(ResponseError::InvalidRequiredAcks.code());
                    }
                    let partition = match crate::partition(&topic, p.index) {
                        Ok(partition) => partition,
                        Err(code) => return response.with_error_code(code),
                    };
                    let Some(records) = p.records else {
                        return response.with_error_code(ResponseError::CorruptMessage.code());
                    };
                    match data.append(&partition, &records, ProduceMeta::leader_epoch(LEADER_EPOCH)) {
                        Ok(appended) => {
                            let info = *appended.info();
                            let completion =
                                if request.acks == -1 && crate::durable::acks_all_durable(&partition) {
                                    Completion::Durable
                                } else {
                                    Completion::Policy
                                };
                            if partition.completion_waits(completion) {
                                let at = At { topic: ti, partition: pi };
                                pending.push(Pending {
                                    at,
                                    partition: partition.clone(),
                                    appended,
                                    completion,
                                });
                            } else if let Err(e) = data.complete(&partition, appended, completion) {
                                return refused(&name, &partition, version, &e, response, start(&partition));
                            }
                            response
                                .with_base_offset(info.first_offset as i64)
                                .with_log_append_time_ms(append_time(&topic, &info))
                                .with_log_start_offset(start(&partition))
                        }
                        Err(e) => refused(&name, &partition, version, &e, response, start(&partition)),
                    }
                })
                .collect();
            TopicProduceResponse::default().with_name(t.name).with_partition_responses(partitions)
        })
        .collect();
    (ProduceResponse::default().with_responses(topics), pending)
}

/// A partition's answer to an append that failed.
fn refused(
    topic: &str,
    partition: &annals::Partition,
    version: i16,
    e: &annals::Error,
    response: PartitionProduceResponse,
    log_start_offset: i64,
) -> PartitionProduceResponse {
    tracing::info!(topic, partition = partition.id(), error = %e, "produce refused");
    let message = (version >= 8).then(|| crate::errors::message(e));
    response
        .with_base_offset(-1)
        .with_error_code(crate::errors::code(e))
        .with_error_message(message)
        .with_log_start_offset(log_start_offset)
}

/// Kafka's `log_append_time_ms`: on a LogAppendTime topic the time the log
/// stamped as the batches' maxTimestamp (for an idempotent retry, the
/// first append's, as Kafka answers a duplicate); -1 on a CreateTime one.
fn append_time(topic: &annals::Result<annals::Topic>, info: &annals::AppendInfo) -> i64 {
    let log_append_time = topic
        .as_ref()
        .is_ok_and(|t| t.config().log.message_timestamp_type == annals::TimestampType::LogAppendTime);
    if log_append_time {
        info.max_timestamp_ms
    } else {
        -1
    }
}
