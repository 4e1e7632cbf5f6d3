//! DescribeConfigs of topics: every topic config of Kafka's, as
//! `topic_configs` lists them (annals' settings under Kafka's names, and
//! the pass-through configs the topic was created with), its source
//! DYNAMIC_TOPIC_CONFIG when it differs from the default and
//! DEFAULT_CONFIG otherwise (annals keeps values, not where they came
//! from). Broker resources have no configs to describe here.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::api::{blocking, Answer};
use crate::Shared;

const TOPIC: i8 = 2;
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

pub(crate) async fn describe(
    shared: &Arc<Shared>,
    request: DescribeConfigsRequest,
    version: i16,
) -> Answer<DescribeConfigsResponse> {
    let results = blocking(shared, ApiKey::DescribeConfigs, move |shared| {
        request
            .resources
            .into_iter()
            .map(|r| {
                let result = DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone());
                if r.resource_type != TOPIC {
                    return result;
                }
                let topic = match shared.store.topic(&r.resource_name) {
                    Ok(topic) => topic,
                    Err(e) => {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(crate::errors::message(&e)))
                    }
                };
                // Null or empty: every config, as Kafka's ConfigHelper reads it.
                let keys = r.configuration_keys.as_ref().filter(|keys| !keys.is_empty());
                let wanted = |name: &str| keys.is_none_or(|keys| keys.iter().any(|k| &**k == name));
                let defaults = shared.config.topic_defaults();
                let configs = crate::topic_configs::describe(
                    &topic.config().log,
                    topic.passthrough_configs(),
                    &defaults,
                )
                .into_iter()
                .filter(|d| wanted(d.name))
                .map(|d| {
                    let source = if d.default { DEFAULT_CONFIG } else { DYNAMIC_TOPIC_CONFIG };
                    let config = DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str(d.name))
                        .with_value(Some(StrBytes::from_string(d.value)))
                        .with_config_source(source);
                    if version >= 3 {
                        config.with_config_type(d.kind as i8)
                    } else {
                        config
                    }
                })
                .collect();
                result.with_configs(configs)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(DescribeConfigsResponse::default().with_results(results))
}
