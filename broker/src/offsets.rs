//! FindCoordinator (this node, for every group) and committed offsets in
//! annals' consumer offsets: OffsetCommit (from a member at the group's
//! generation, or a standalone consumer's at -1 while the group has no
//! members, as Kafka takes them) and OffsetFetch.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::api::{blocking, Answer};
use crate::{Shared, NODE_ID};

pub(crate) fn find_coordinator(
    shared: &Shared,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    // Key type 0 is a group; 1 (transactions) is not served.
    if request.key_type != 0 {
        let response =
            FindCoordinatorResponse::default().with_error_code(ResponseError::CoordinatorNotAvailable.code());
        return response.with_node_id(BrokerId(-1)).with_port(-1);
    }
    let response = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(shared.host.clone()))
        .with_port(i32::from(shared.port));
    if version >= 1 {
        response.with_error_message(None)
    } else {
        response
    }
}

pub(crate) async fn commit(
    shared: &Arc<Shared>,
    request: OffsetCommitRequest,
) -> Answer<OffsetCommitResponse> {
    let topics = blocking(shared, ApiKey::OffsetCommit, move |shared| {
        let group = request.group_id.0.to_string();
        let allowed = crate::groups::may_commit(
            shared,
            &group,
            &request.member_id,
            request.generation_id_or_member_epoch,
        );
        let offsets = shared.store.offsets();
        request
            .topics
            .into_iter()
            .map(|t| {
                let topic = shared.store.topic(&t.name.0);
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let response =
                            OffsetCommitResponsePartition::default().with_partition_index(p.partition_index);
                        let code = if allowed != 0 {
                            allowed
                        } else if let Err(code) = crate::partition(&topic, p.partition_index) {
                            code
                        } else {
                            match u64::try_from(p.committed_offset) {
                                Ok(o) => match offsets.commit(&group, &t.name.0, p.partition_index as u32, o)
                                {
                                    Ok(()) => 0,
                                    Err(e) => crate::errors::code(&e),
                                },
                                Err(_) => ResponseError::OffsetOutOfRange.code(),
                            }
                        };
                        response.with_error_code(code)
                    })
                    .collect();
                OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(OffsetCommitResponse::default().with_topics(topics))
}

pub(crate) async fn fetch(shared: &Arc<Shared>, request: OffsetFetchRequest) -> Answer<OffsetFetchResponse> {
    let topics = blocking(shared, ApiKey::OffsetFetch, move |shared| {
        let group = request.group_id.0.to_string();
        let offsets = shared.store.offsets();
        let asked: Vec<(TopicName, Vec<i32>)> = match request.topics {
            Some(topics) => topics.into_iter().map(|t| (t.name, t.partition_indexes)).collect(),
            // All the group's committed offsets.
            None => {
                let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
                for ((topic, partition), _) in offsets.group_offsets(&group) {
                    by_topic.entry(topic).or_default().push(partition as i32);
                }
                by_topic.into_iter().map(|(t, p)| (TopicName(StrBytes::from_string(t)), p)).collect()
            }
        };
        asked
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|p| {
                        let committed = u32::try_from(p)
                            .ok()
                            .and_then(|i| offsets.fetch(&group, &name.0, i).ok().flatten());
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(committed.map_or(-1, |o| o as i64))
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(StrBytes::default()))
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(name).with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(OffsetFetchResponse::default().with_topics(topics))
}
