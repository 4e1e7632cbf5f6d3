//! Topic administration: CreateTopics (Kafka's topic configs, as
//! `topic_configs` takes them), DeleteTopics and DeleteRecords.

use std::sync::Arc;

use annals::TopicConfig;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::api::{blocking, Answer};
use crate::Shared;

pub(crate) async fn create_topics(
    shared: &Arc<Shared>,
    request: CreateTopicsRequest,
) -> Answer<CreateTopicsResponse> {
    let topics = blocking(shared, ApiKey::CreateTopics, move |shared| {
        request
            .topics
            .into_iter()
            .map(|t| {
                // Kafka answers a null message on success.
                let result =
                    CreatableTopicResult::default().with_name(t.name.clone()).with_error_message(None);
                let fail = |code: i16, message: String| {
                    result
                        .clone()
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message)))
                };
                if t.replication_factor > 1 || !t.assignments.is_empty() {
                    return fail(
                        ResponseError::InvalidReplicationFactor.code(),
                        "one node: replication factor 1".into(),
                    );
                }
                let partitions = match t.num_partitions {
                    -1 => shared.config.default_partitions,
                    n => match u32::try_from(n) {
                        Ok(n) if n > 0 => n,
                        _ => return fail(ResponseError::InvalidPartitions.code(), format!("{n} partitions")),
                    },
                };
                let configs = t.configs.iter().map(|c| (&*c.name, c.value.as_deref()));
                let parsed = match crate::topic_configs::parse(&shared.config.topic_defaults(), configs) {
                    Ok(parsed) => parsed,
                    Err(e) => return fail(ResponseError::InvalidConfig.code(), e),
                };
                if request.validate_only {
                    return match annals::validate_topic_name(&t.name.0) {
                        Ok(()) if shared.store.topic(&t.name.0).is_ok() => {
                            fail(ResponseError::TopicAlreadyExists.code(), "exists".into())
                        }
                        Ok(()) => result,
                        Err(e) => fail(crate::errors::code(&e), e.to_string()),
                    };
                }
                let config = TopicConfig { partitions, log: parsed.log };
                match shared.store.create_topic_with_passthrough(&t.name.0, config, parsed.passthrough) {
                    Ok(_) => {
                        tracing::info!(topic = %&*t.name.0, partitions, "topic created");
                        result
                    }
                    Err(e) => fail(crate::errors::code(&e), e.to_string()),
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(CreateTopicsResponse::default().with_topics(topics))
}

pub(crate) async fn delete_topics(
    shared: &Arc<Shared>,
    request: DeleteTopicsRequest,
    version: i16,
) -> Answer<DeleteTopicsResponse> {
    let responses = blocking(shared, ApiKey::DeleteTopics, move |shared| {
        request
            .topic_names
            .into_iter()
            .map(|name| {
                let result = DeletableTopicResult::default().with_name(Some(name.clone()));
                match shared.store.delete_topic(&name.0) {
                    Ok(()) => {
                        tracing::info!(topic = %&*name.0, "topic deleted");
                        result
                    }
                    Err(e) => {
                        let message = (version >= 5).then(|| crate::errors::message(&e));
                        result.with_error_code(crate::errors::code(&e)).with_error_message(message)
                    }
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(DeleteTopicsResponse::default().with_responses(responses))
}

pub(crate) async fn delete_records(
    shared: &Arc<Shared>,
    request: DeleteRecordsRequest,
) -> Answer<DeleteRecordsResponse> {
    let topics = blocking(shared, ApiKey::DeleteRecords, move |shared| {
        request
            .topics
            .into_iter()
            .map(|t| {
                let topic = shared.store.topic(&t.name.0);
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let result = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1);
                        let partition = match crate::partition(&topic, p.partition_index) {
                            Ok(partition) => partition,
                            Err(code) => return result.with_error_code(code),
                        };
                        // -1: up to the high watermark, as Kafka's.
                        let before = match p.offset {
                            -1 => partition.high_watermark(),
                            o => match u64::try_from(o) {
                                Ok(o) if o <= partition.high_watermark() => o,
                                _ => return result.with_error_code(ResponseError::OffsetOutOfRange.code()),
                            },
                        };
                        match partition.delete_records_before(before) {
                            Ok(low) => result.with_low_watermark(low as i64),
                            Err(e) => result.with_error_code(crate::errors::code(&e)),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(DeleteRecordsResponse::default().with_topics(topics))
}
