//! The cheap descriptions tools ask for: DescribeCluster (this node, the
//! controller of its one-node cluster), DescribeLogDirs (the store's data
//! directory, each partition's size) and OffsetForLeaderEpoch (from the
//! engine's leader-epoch cache, as Kafka's `LeaderEpochFileCache.endOffsetFor`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::api::{blocking, Answer};
use crate::produce::LEADER_EPOCH;
use crate::{Shared, NODE_ID};

/// DescribeCluster's `endpoint_type` for brokers (KIP-919; 2 is controllers).
const ENDPOINT_BROKERS: i8 = 1;
/// Kafka's answer for operations a client did not ask for.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Kafka's "unknown" for a log directory's total and usable bytes.
const UNKNOWN_VOLUME_BYTES: i64 = -1;

pub(crate) fn describe_cluster(shared: &Shared, request: &DescribeClusterRequest) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_static_str(crate::metadata::CLUSTER_ID))
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
    // Before v1 the field is absent and reads as brokers.
    if request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_controller_id(BrokerId(-1))
            .with_error_code(E::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str("annals-broker lists brokers only")));
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(shared.host.clone()))
        .with_port(i32::from(shared.port));
    response.with_controller_id(BrokerId(NODE_ID)).with_brokers(vec![broker])
}

/// One log directory, the store's: every partition asked for (all of
/// them for `topics: null`) with its size; a topic or partition the store
/// does not have is left out, as Kafka leaves it out.
pub(crate) async fn describe_log_dirs(
    shared: &Arc<Shared>,
    request: DescribeLogDirsRequest,
) -> Answer<DescribeLogDirsResponse> {
    blocking(shared, ApiKey::DescribeLogDirs, move |shared| {
        let asked: Vec<(String, Option<Vec<i32>>)> = match request.topics {
            Some(topics) => topics.into_iter().map(|t| (t.topic.0.to_string(), Some(t.partitions))).collect(),
            None => shared.store.list_topics().into_iter().map(|t| (t, None)).collect(),
        };
        let topics = asked
            .into_iter()
            .filter_map(|(name, partitions)| {
                let described = shared.store.describe_topic(&name).ok()?;
                let wanted = |p: u32| partitions.as_ref().is_none_or(|ps| ps.contains(&(p as i32)));
                let partitions: Vec<DescribeLogDirsPartition> = described
                    .partitions
                    .iter()
                    .filter(|p| p.offline.is_none() && wanted(p.partition))
                    .map(|p| {
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p.partition as i32)
                            .with_partition_size(i64::try_from(p.size_bytes).unwrap_or(i64::MAX))
                    })
                    .collect();
                let name = TopicName(StrBytes::from_string(name));
                (!partitions.is_empty())
                    .then(|| DescribeLogDirsTopic::default().with_name(name).with_partitions(partitions))
            })
            .collect();
        let dir = shared.store.dir().display().to_string();
        let result = DescribeLogDirsResult::default()
            .with_log_dir(StrBytes::from_string(dir))
            .with_topics(topics)
            .with_total_bytes(UNKNOWN_VOLUME_BYTES)
            .with_usable_bytes(UNKNOWN_VOLUME_BYTES);
        DescribeLogDirsResponse::default().with_results(vec![result])
    })
    .await
}

/// Each partition's end offset for the epoch asked for: FENCED_LEADER_EPOCH
/// or UNKNOWN_LEADER_EPOCH when the client's current epoch is older or
/// newer than this leader's (not checked for -1), then the largest epoch
/// at or below the one asked for and where it ends; -1 and -1 when the log
/// has none at or above it.
pub(crate) async fn offset_for_leader_epoch(
    shared: &Arc<Shared>,
    request: OffsetForLeaderEpochRequest,
) -> Answer<OffsetForLeaderEpochResponse> {
    blocking(shared, ApiKey::OffsetForLeaderEpoch, move |shared| {
        let topics = request
            .topics
            .into_iter()
            .map(|t| {
                let topic = shared.store.topic(&t.topic.0);
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let answer = EpochEndOffset::default()
                            .with_partition(p.partition)
                            .with_leader_epoch(-1)
                            .with_end_offset(-1);
                        let partition = match crate::partition(&topic, p.partition) {
                            Ok(partition) => partition,
                            Err(code) => return answer.with_error_code(code),
                        };
                        match p.current_leader_epoch {
                            -1 => {}
                            e if e < LEADER_EPOCH => {
                                return answer.with_error_code(E::FencedLeaderEpoch.code())
                            }
                            e if e > LEADER_EPOCH => {
                                return answer.with_error_code(E::UnknownLeaderEpoch.code())
                            }
                            _ => {}
                        }
                        match partition.end_offset_for_epoch(p.leader_epoch) {
                            Some((epoch, end)) => answer.with_leader_epoch(epoch).with_end_offset(end as i64),
                            None => answer,
                        }
                    })
                    .collect();
                OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
            })
            .collect();
        OffsetForLeaderEpochResponse::default().with_topics(topics)
    })
    .await
}
