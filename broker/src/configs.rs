//! DescribeConfigs of topics: each of annals' topic settings under
//! Kafka's name, its source DYNAMIC_TOPIC_CONFIG when it differs from the
//! default and DEFAULT_CONFIG otherwise (annals keeps values, not where
//! they came from). Broker resources have no configs to describe here.

use std::sync::Arc;

use annals::{CleanupPolicy, LogConfig};
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
// Kafka's `ConfigType` ids.
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const DOUBLE: i8 = 6;
const LIST: i8 = 7;

/// (Kafka's name, value, Kafka's type) of each topic setting.
fn settings(l: &LogConfig) -> Vec<(&'static str, String, i8)> {
    let policy = match l.cleanup_policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
        CleanupPolicy::CompactDelete => "compact,delete",
    };
    vec![
        ("cleanup.policy", policy.into(), LIST),
        ("compression.type", l.compression_type.name().into(), STRING),
        ("compression.gzip.level", l.compression_gzip_level.to_string(), INT),
        ("compression.lz4.level", l.compression_lz4_level.to_string(), INT),
        ("compression.zstd.level", l.compression_zstd_level.to_string(), INT),
        ("delete.retention.ms", l.delete_retention_ms.to_string(), LONG),
        ("index.interval.bytes", l.index_interval_bytes.to_string(), INT),
        ("max.message.bytes", l.max_batch_bytes.to_string(), INT),
        ("message.timestamp.after.max.ms", l.message_timestamp_after_max_ms.to_string(), LONG),
        ("message.timestamp.before.max.ms", l.message_timestamp_before_max_ms.to_string(), LONG),
        ("message.timestamp.type", l.message_timestamp_type.name().into(), STRING),
        (
            "min.cleanable.dirty.ratio",
            format!("{}", f64::from(l.min_cleanable_dirty_percent) / 100.0),
            DOUBLE,
        ),
        ("retention.bytes", l.retention_bytes.to_string(), LONG),
        ("retention.ms", l.retention_ms.to_string(), LONG),
        ("segment.bytes", l.segment_bytes.to_string(), INT),
        ("segment.index.bytes", l.segment_index_bytes.to_string(), INT),
        ("segment.ms", l.segment_ms.to_string(), LONG),
    ]
}

pub(crate) async fn describe(
    shared: &Arc<Shared>,
    request: DescribeConfigsRequest,
    version: i16,
) -> Answer<DescribeConfigsResponse> {
    let results = blocking(shared, ApiKey::DescribeConfigs, move |shared| {
        let defaults = settings(&LogConfig::default());
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
                let described = match shared.store.describe_topic(&r.resource_name) {
                    Ok(d) => d,
                    Err(e) => {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(crate::errors::message(&e)))
                    }
                };
                let wanted = |name: &str| {
                    r.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| &**k == name))
                };
                let configs = settings(&described.config.log)
                    .into_iter()
                    .zip(&defaults)
                    .filter(|((name, _, _), _)| wanted(name))
                    .map(|((name, value, kind), (_, default, _))| {
                        let source = if value == *default { DEFAULT_CONFIG } else { DYNAMIC_TOPIC_CONFIG };
                        let config = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_value(Some(StrBytes::from_string(value)))
                            .with_config_source(source);
                        if version >= 3 {
                            config.with_config_type(kind)
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
