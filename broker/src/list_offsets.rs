//! ListOffsets: earliest (-2), latest (-1), the record with the largest
//! timestamp (-3, v7+, KIP-734) or the first offset whose record has at
//! least a timestamp, with that record's timestamp.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use crate::api::{blocking, Answer};
use crate::Shared;
use annals::ReadBound;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub(crate) async fn handle(
    shared: &Arc<Shared>,
    request: ListOffsetsRequest,
    version: i16,
) -> Answer<ListOffsetsResponse> {
    blocking(shared, ApiKey::ListOffsets, move |shared| answer(shared, request, version)).await
}

fn answer(shared: &Shared, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    // The leader epoch is in the response from v4 on.
    let epoch = if version >= 4 { crate::produce::LEADER_EPOCH } else { -1 };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = shared.store.topic(&t.name.0);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(epoch);
                    let partition = match crate::partition(&topic, p.partition_index) {
                        Ok(partition) => partition,
                        Err(code) => return response.with_error_code(code),
                    };
                    match p.timestamp {
                        LATEST => response.with_offset(partition.high_watermark() as i64),
                        EARLIEST => response.with_offset(partition.log_start_offset() as i64),
                        MAX_TIMESTAMP if version >= 7 => match partition.max_timestamp() {
                            Ok(Some((ts, offset))) => response.with_offset(offset as i64).with_timestamp(ts),
                            Ok(None) => response,
                            Err(e) => response.with_error_code(crate::errors::code(&e)),
                        },
                        ts if ts >= 0 => match at_timestamp(&partition, ts) {
                            Ok(Some((offset, timestamp))) => {
                                response.with_offset(offset).with_timestamp(timestamp)
                            }
                            Ok(None) => response,
                            Err(e) => response.with_error_code(crate::errors::code(&e)),
                        },
                        _ => response.with_error_code(ResponseError::UnsupportedVersion.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The first offset at or after `ts` and its record's timestamp.
fn at_timestamp(partition: &annals::Partition, ts: i64) -> annals::Result<Option<(i64, i64)>> {
    let Some(offset) = partition.offset_for_timestamp(ts)? else { return Ok(None) };
    let fetched = partition.read(offset, 1 << 16, ReadBound::LogEnd)?;
    let timestamp = fetched.records().find(|r| r.offset >= offset).map_or(-1, |r| r.timestamp_ms);
    Ok(Some((offset as i64, timestamp)))
}
