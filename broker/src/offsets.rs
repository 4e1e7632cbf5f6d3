//! FindCoordinator (this node, for every group; no node for a
//! transactional id) and committed offsets in annals' consumer offsets:
//! OffsetCommit (from a member at the group's generation, or a standalone
//! consumer's at -1 while the group has no members, as Kafka takes them),
//! OffsetFetch, DeleteGroups and OffsetDelete.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use annals::store::{CommittedOffset, OffsetCommit, GROUP_NAME_MAX};

use crate::api::{blocking, Answer};
use crate::groups::InUse;
use crate::{Shared, NODE_ID};

/// Kafka's `offset.metadata.max.bytes` default. Kafka compares it with the
/// metadata's Java `String.length()`, in UTF-16 code units, not bytes;
/// so does this broker, so that it takes what Kafka takes.
pub(crate) const OFFSET_METADATA_MAX: usize = 4096;

/// FindCoordinator's key types (Kafka's `CoordinatorType`).
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The answer for a transactional id. Kafka answers COORDINATOR_NOT_AVAILABLE
/// while its transaction coordinator is loading, which clients retry until
/// their timeout (a minute by default). This broker has no transaction
/// coordinator to wait for: TRANSACTIONAL_ID_AUTHORIZATION_FAILED is the
/// one error that the Java client, librdkafka and kafka-python all treat
/// as fatal for a FindCoordinator of a transactional id, so
/// `initTransactions()` fails at once, with the message below where the
/// version carries one.
const NO_TRANSACTIONS: &str = "transactions are not served by annals-broker: \
     use an idempotent producer without a transactional.id";

/// One key's answer: (error code, message, whether it is this node).
fn coordinator_for(key_type: i8) -> (i16, Option<&'static str>, bool) {
    match key_type {
        KEY_TYPE_GROUP => (0, None, true),
        KEY_TYPE_TRANSACTION => (E::TransactionalIdAuthorizationFailed.code(), Some(NO_TRANSACTIONS), false),
        // Kafka's answer for a type it does not know (share groups, 2,
        // are not served either).
        _ => (E::InvalidRequest.code(), Some("unknown coordinator key type"), false),
    }
}

pub(crate) fn find_coordinator(
    shared: &Shared,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (code, message, found) = coordinator_for(request.key_type);
    let (node, host, port) = if found {
        (NODE_ID, StrBytes::from_string(shared.host.clone()), i32::from(shared.port))
    } else {
        (-1, StrBytes::default(), -1)
    };
    let message = message.map(StrBytes::from_static_str);
    if version >= 4 {
        // KIP-699: a batch of keys, each its own answer.
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(node))
        .with_host(host)
        .with_port(port);
    // v0 has no message (and no key type: always a group).
    if version >= 1 {
        response.with_error_message(message)
    } else {
        response
    }
}

/// The group id's own error, for every partition of a request: Kafka's
/// INVALID_GROUP_ID for a name no group can have here.
fn invalid_group(group: &str) -> Option<i16> {
    (group.is_empty() || group.len() > GROUP_NAME_MAX).then(|| E::InvalidGroupId.code())
}

/// One partition's answer while its request is checked: its own error,
/// or `None` while it waits for the append's.
struct Pending {
    index: i32,
    refused: Option<i16>,
}

/// Each topic's [`Pending`] answers, in request order.
type PendingTopics = Vec<(TopicName, Vec<Pending>)>;

/// Kafka's code for a failed offsets append: a batch over the offsets
/// topic's size limit is INVALID_COMMIT_OFFSET_SIZE (as Kafka maps
/// MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE); the rest as elsewhere.
fn append_error(e: &annals::Error) -> i16 {
    match e {
        annals::Error::Append(annals::AppendError::Encode(_)) => E::InvalidCommitOffsetSize.code(),
        e => crate::errors::code(e),
    }
}

/// OffsetCommit: each partition checked, then every accepted one in one
/// `commit_many`, one append and one fsync, so that they are committed
/// together or not at all.
pub(crate) async fn commit(
    shared: &Arc<Shared>,
    request: OffsetCommitRequest,
) -> Answer<OffsetCommitResponse> {
    let topics = blocking(shared, ApiKey::OffsetCommit, move |shared| {
        let group = request.group_id.0.to_string();
        let allowed = invalid_group(&group).unwrap_or_else(|| {
            crate::groups::may_commit(
                shared,
                &group,
                &request.member_id,
                request.generation_id_or_member_epoch,
            )
        });
        // Each partition's answer: its own error, or `None` while it waits
        // for the append.
        let mut answers: PendingTopics = Vec::with_capacity(request.topics.len());
        let mut accepted: Vec<OffsetCommit> = Vec::new();
        for t in &request.topics {
            let topic = shared.store.topic(&t.name.0);
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let metadata = p.committed_metadata.as_deref().unwrap_or("");
                let refused = if allowed != 0 {
                    Some(allowed)
                } else if let Err(code) = crate::partition(&topic, p.partition_index) {
                    Some(code)
                } else if metadata.encode_utf16().count() > OFFSET_METADATA_MAX {
                    Some(E::OffsetMetadataTooLarge.code())
                } else if p.committed_offset < 0 {
                    Some(E::OffsetOutOfRange.code())
                } else {
                    None
                };
                if refused.is_none() {
                    // Both checked above: a partition of the topic, an
                    // offset that is not negative.
                    let commit =
                        OffsetCommit::new(&t.name.0, p.partition_index as u32, p.committed_offset as u64)
                            .metadata(metadata);
                    // Before v6 there is no epoch (-1); a negative one is none.
                    accepted.push(match p.committed_leader_epoch {
                        e if e >= 0 => commit.leader_epoch(e),
                        _ => commit,
                    });
                }
                partitions.push(Pending { index: p.partition_index, refused });
            }
            answers.push((t.name.clone(), partitions));
        }
        let appended = match shared.store.offsets().commit_many(&group, &accepted) {
            Ok(()) => 0,
            Err(e) => append_error(&e),
        };
        answers
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|Pending { index, refused }| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(refused.unwrap_or(appended))
                    })
                    .collect();
                OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(OffsetCommitResponse::default().with_topics(topics))
}

/// OffsetFetch: each partition's committed offset, with its metadata and
/// (v5 and later) its leader epoch; -1, -1 and "" where there is none.
pub(crate) async fn fetch(shared: &Arc<Shared>, request: OffsetFetchRequest) -> Answer<OffsetFetchResponse> {
    let topics = blocking(shared, ApiKey::OffsetFetch, move |shared| {
        let group = request.group_id.0.to_string();
        // One snapshot: the answer is the group's offsets at one instant.
        let committed: BTreeMap<(String, u32), CommittedOffset> =
            shared.store.offsets().group_committed(&group);
        let asked: Vec<(TopicName, Vec<i32>)> = match request.topics {
            Some(topics) => topics.into_iter().map(|t| (t.name, t.partition_indexes)).collect(),
            // All the group's committed offsets.
            None => {
                let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in committed.keys() {
                    by_topic.entry(topic).or_default().push(*partition as i32);
                }
                let by_topic = by_topic.into_iter();
                by_topic.map(|(t, p)| (TopicName(StrBytes::from_string(t.to_owned())), p)).collect()
            }
        };
        asked
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|p| {
                        let key = u32::try_from(p).ok().map(|i| (name.0.to_string(), i));
                        let c = key.and_then(|k| committed.get(&k));
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(c.map_or(-1, |c| c.offset as i64))
                            // Encoded from v5 only.
                            .with_committed_leader_epoch(c.and_then(|c| c.leader_epoch).unwrap_or(-1))
                            .with_metadata(Some(StrBytes::from_string(
                                c.map(|c| c.metadata.clone()).unwrap_or_default(),
                            )))
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(name).with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(OffsetFetchResponse::default().with_topics(topics))
}

/// DeleteGroups: each group, once, if it has no members (Kafka's
/// NON_EMPTY_GROUP otherwise), with its committed offsets (one append);
/// GROUP_ID_NOT_FOUND for a group neither in memory nor with offsets.
pub(crate) async fn delete_groups(
    shared: &Arc<Shared>,
    request: DeleteGroupsRequest,
) -> Answer<DeleteGroupsResponse> {
    let results = blocking(shared, ApiKey::DeleteGroups, move |shared| {
        let mut seen = std::collections::HashSet::new();
        // Kafka answers each name once.
        let names = request.groups_names.into_iter().filter(|g| seen.insert(g.clone()));
        names
            .map(|id| {
                let code = crate::groups::remove_empty(shared, &id.0, |in_memory| {
                    let offsets = shared.store.offsets();
                    let committed = !offsets.group_offsets(&id.0).is_empty();
                    if !committed {
                        return if in_memory { 0 } else { E::GroupIdNotFound.code() };
                    }
                    match offsets.delete_group(&id.0) {
                        Ok(()) => 0,
                        Err(e) => crate::errors::code(&e),
                    }
                });
                DeletableGroupResult::default().with_group_id(id).with_error_code(code)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(DeleteGroupsResponse::default().with_results(results))
}

/// OffsetDelete (Kafka's rules): GROUP_ID_NOT_FOUND for a group unknown
/// here, NON_EMPTY_GROUP for a live group of another protocol than
/// "consumer"; then per partition UNKNOWN_TOPIC_OR_PARTITION,
/// GROUP_SUBSCRIBED_TO_TOPIC for a topic the live group reads, or deleted
/// (all in one append; a partition without an offset is answered 0 too).
pub(crate) async fn delete_offsets(
    shared: &Arc<Shared>,
    request: OffsetDeleteRequest,
) -> Answer<OffsetDeleteResponse> {
    blocking(shared, ApiKey::OffsetDelete, move |shared| {
        let group = request.group_id.0.to_string();
        crate::groups::offsets_in_use(shared, &group, |in_use| {
            let offsets = shared.store.offsets();
            let subscribed = match in_use {
                InUse::Absent if offsets.group_offsets(&group).is_empty() => {
                    return OffsetDeleteResponse::default().with_error_code(E::GroupIdNotFound.code());
                }
                // Known by its offsets alone: Empty, as Kafka has it.
                InUse::Absent => Some(Default::default()),
                InUse::Opaque => {
                    return OffsetDeleteResponse::default().with_error_code(E::NonEmptyGroup.code());
                }
                InUse::Topics(topics) => topics,
            };
            let mut answers: PendingTopics = Vec::new();
            let mut deleted: Vec<(&str, u32)> = Vec::new();
            for t in &request.topics {
                let topic = shared.store.topic(&t.name.0);
                let read = subscribed.as_ref().is_none_or(|s| s.contains(&*t.name.0));
                let mut partitions = Vec::with_capacity(t.partitions.len());
                for p in &t.partitions {
                    let refused = if let Err(code) = crate::partition(&topic, p.partition_index) {
                        Some(code)
                    } else if read {
                        Some(E::GroupSubscribedToTopic.code())
                    } else {
                        deleted.push((&t.name.0, p.partition_index as u32));
                        None
                    };
                    partitions.push(Pending { index: p.partition_index, refused });
                }
                answers.push((t.name.clone(), partitions));
            }
            // A group whose name no commit can have (a member's join does
            // not check the length) has nothing to delete.
            let appended = match invalid_group(&group)
                .map_or_else(|| offsets.delete_offsets(&group, &deleted), |_| Ok(0))
            {
                Ok(_) => 0,
                Err(e) => crate::errors::code(&e),
            };
            let topics = answers
                .into_iter()
                .map(|(name, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|Pending { index, refused }| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(refused.unwrap_or(appended))
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default().with_name(name).with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        })
    })
    .await
}
