//! Metadata: this node as the only broker and the leader of every
//! partition it serves (an offline or poisoned one is listed without a
//! leader, as Kafka lists a partition on a failed log directory); topics
//! auto-created on first use when the broker allows it
//! (`auto.create.topics.enable`) and the client asks (v4+) or always (v0-3).

use std::sync::Arc;

use annals::TopicConfig;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::api::{blocking, Answer};
use crate::{Shared, NODE_ID};

/// annals' own topic of consumer offsets: not in Kafka's format, not listed.
const INTERNAL: &str = "__consumer_offsets";

pub(crate) async fn handle(
    shared: &Arc<Shared>,
    request: MetadataRequest,
    version: i16,
) -> Answer<MetadataResponse> {
    blocking(shared, ApiKey::Metadata, move |shared| answer(shared, &request, version)).await
}

fn answer(shared: &Shared, request: &MetadataRequest, version: i16) -> MetadataResponse {
    let names: Vec<Option<String>> = match &request.topics {
        None => all(shared),
        Some(t) if t.is_empty() && version == 0 => all(shared),
        Some(t) => t.iter().map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect(),
    };
    let create = shared.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let topics = names.into_iter().map(|name| topic(shared, name, create, version)).collect();
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(shared.host.clone()))
        .with_port(i32::from(shared.port));
    // Fields a version has: the controller from v1, the cluster id from v2.
    let response = MetadataResponse::default().with_brokers(vec![broker]).with_topics(topics);
    let response = if version >= 1 { response.with_controller_id(BrokerId(NODE_ID)) } else { response };
    if version >= 2 {
        response.with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
    } else {
        response
    }
}

/// The cluster id in Metadata and DescribeCluster (one node, one cluster).
pub(crate) const CLUSTER_ID: &str = "annals";

fn all(shared: &Shared) -> Vec<Option<String>> {
    shared.store.list_topics().into_iter().filter(|n| n != INTERNAL).map(Some).collect()
}

fn topic(shared: &Shared, name: Option<String>, create: bool, version: i16) -> MetadataResponseTopic {
    // The leader epoch is in the response from v7 on.
    let epoch = if version >= 7 { crate::produce::LEADER_EPOCH } else { -1 };
    let Some(name) = name else {
        // v10+ by topic id: topics have no ids here.
        return MetadataResponseTopic::default().with_error_code(ResponseError::UnknownTopicId.code());
    };
    let response =
        MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
    let topic = match shared.store.topic(&name) {
        Ok(t) => Ok(t),
        Err(annals::Error::Admin(annals::AdminError::UnknownTopic { .. })) if create && name != INTERNAL => {
            let config = TopicConfig {
                partitions: shared.config.default_partitions,
                log: shared.config.topic_defaults(),
            };
            match shared.store.create_topic(&name, config) {
                Ok(t) => {
                    tracing::info!(topic = %name, partitions = shared.config.default_partitions, "topic auto-created");
                    Ok(t)
                }
                // Created by another request meanwhile.
                Err(annals::Error::Admin(annals::AdminError::TopicExists { .. })) => {
                    shared.store.topic(&name)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match topic {
        Ok(t) => {
            let partitions = (0..t.partition_count())
                .map(|p| {
                    let partition = MetadataResponsePartition::default()
                        .with_partition_index(p as i32)
                        .with_leader_epoch(epoch)
                        .with_replica_nodes(vec![BrokerId(NODE_ID)]);
                    if !online(&t, p) {
                        // As Kafka answers for a partition whose only
                        // replica's log is offline: no leader, the
                        // replica listed offline; clients wait and retry.
                        return partition
                            .with_error_code(ResponseError::LeaderNotAvailable.code())
                            .with_leader_id(BrokerId(-1))
                            .with_offline_replicas(vec![BrokerId(NODE_ID)]);
                    }
                    partition.with_leader_id(BrokerId(NODE_ID)).with_isr_nodes(vec![BrokerId(NODE_ID)])
                })
                .collect();
            response.with_partitions(partitions)
        }
        Err(e) => response.with_error_code(crate::errors::code(&e)),
    }
}

/// Whether partition `p` is served: its log opened, and no failed fsync or
/// write has poisoned it since (Kafka takes a replica on a failed log
/// directory offline; here the log refuses writes until a reopen).
fn online(topic: &annals::Topic, p: u32) -> bool {
    topic.partition(p).is_ok_and(|partition| partition.poisoned().is_none())
}
