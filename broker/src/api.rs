//! A request: its header, whether this broker serves its API at its
//! version, the handler, and the response frame. What ApiVersions
//! advertises is [`SUPPORTED`], exactly what the handlers implement.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable};

use crate::Shared;

/// The APIs served and their version ranges. Produce from v3 (the first
/// with RecordBatch v2); Fetch to v12 (v13 names topics by id);
/// ListOffsets to v7 (v8 adds tiered storage's queries).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::CreateTopics, 2, 4),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 3),
    (ApiKey::ListGroups, 0, 2),
    (ApiKey::DescribeGroups, 0, 4),
    (ApiKey::DescribeConfigs, 1, 3),
];

/// What to do with a request.
pub(crate) enum Outcome {
    /// Send this response (header and body, without the size).
    Respond(BytesMut),
    /// Send nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection, as Kafka does with a request it cannot parse.
    Close(String),
}

pub(crate) async fn handle(shared: &Arc<Shared>, mut frame: Bytes) -> Outcome {
    if frame.len() < 8 {
        return Outcome::Close("a frame shorter than a request header".into());
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return Outcome::Close(format!("unknown API key {key}"));
    };
    let Some(&(_, min, max)) = SUPPORTED.iter().find(|(k, _, _)| *k == api) else {
        return Outcome::Close(format!("{api:?} is not served"));
    };
    if !(min..=max).contains(&version) {
        if api == ApiKey::ApiVersions {
            // Kafka's answer to a newer client: UNSUPPORTED_VERSION in a v0
            // response that lists what is served, so it retries lower.
            let body = api_versions().with_error_code(ResponseError::UnsupportedVersion.code());
            return respond(api, 0, correlation_id, &body);
        }
        return Outcome::Close(format!("{api:?} v{version} is not served (v{min} to v{max})"));
    }
    let header = match decode_request_header_from_buffer(&mut frame) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("malformed {api:?} v{version} header: {e}")),
    };
    tracing::debug!(?api, version, correlation_id, client = ?header.client_id, "request");
    macro_rules! body {
        ($t:ty) => {
            match <$t>::decode(&mut frame, version) {
                Ok(b) => b,
                Err(e) => return Outcome::Close(format!("malformed {api:?} v{version} request: {e}")),
            }
        };
    }
    use kafka_protocol::messages as m;
    match api {
        ApiKey::ApiVersions => {
            let _ = body!(m::ApiVersionsRequest);
            respond(api, version, correlation_id, &api_versions())
        }
        ApiKey::Metadata => {
            let response = crate::metadata::handle(shared, body!(m::MetadataRequest), version).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::Produce => match crate::produce::handle(shared, body!(m::ProduceRequest), version).await {
            Some(response) => respond(api, version, correlation_id, &response),
            None => Outcome::NoResponse,
        },
        ApiKey::Fetch => {
            let response = crate::fetch::handle(shared, body!(m::FetchRequest), version).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::ListOffsets => {
            let response = crate::list_offsets::handle(shared, body!(m::ListOffsetsRequest), version).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::InitProducerId => {
            let response = crate::producer_ids::handle(shared, body!(m::InitProducerIdRequest)).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::CreateTopics => {
            let response = crate::admin::create_topics(shared, body!(m::CreateTopicsRequest)).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::DeleteTopics => {
            let response = crate::admin::delete_topics(shared, body!(m::DeleteTopicsRequest), version).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::DeleteRecords => {
            let response = crate::admin::delete_records(shared, body!(m::DeleteRecordsRequest)).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::FindCoordinator => {
            let response =
                crate::offsets::find_coordinator(shared, &body!(m::FindCoordinatorRequest), version);
            respond(api, version, correlation_id, &response)
        }
        ApiKey::OffsetCommit => {
            let response = crate::offsets::commit(shared, body!(m::OffsetCommitRequest)).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::OffsetFetch => {
            let response = crate::offsets::fetch(shared, body!(m::OffsetFetchRequest)).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::JoinGroup => {
            let client = header.client_id.as_deref().unwrap_or("").to_string();
            let response = crate::groups::join(shared, body!(m::JoinGroupRequest), version, client).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::SyncGroup => {
            let response = crate::groups::sync(shared, body!(m::SyncGroupRequest)).await;
            respond(api, version, correlation_id, &response)
        }
        ApiKey::Heartbeat => {
            let response = crate::groups::heartbeat(shared, &body!(m::HeartbeatRequest));
            respond(api, version, correlation_id, &response)
        }
        ApiKey::LeaveGroup => {
            let response = crate::groups::leave(shared, &body!(m::LeaveGroupRequest), version);
            respond(api, version, correlation_id, &response)
        }
        ApiKey::ListGroups => {
            let _ = body!(m::ListGroupsRequest);
            respond(api, version, correlation_id, &crate::groups::list(shared))
        }
        ApiKey::DescribeGroups => {
            let response = crate::groups::describe(shared, &body!(m::DescribeGroupsRequest));
            respond(api, version, correlation_id, &response)
        }
        ApiKey::DescribeConfigs => {
            let response = crate::configs::describe(shared, body!(m::DescribeConfigsRequest), version).await;
            respond(api, version, correlation_id, &response)
        }
        other => Outcome::Close(format!("{other:?} is not served")),
    }
}

fn api_versions() -> ApiVersionsResponse {
    let keys = SUPPORTED
        .iter()
        .map(|&(k, min, max)| {
            ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(keys)
}

fn respond(api: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Outcome {
    let mut out = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(&mut out, api.response_header_version(version))
        .and_then(|()| body.encode(&mut out, version));
    match encoded {
        Ok(()) => Outcome::Respond(out),
        Err(e) => Outcome::Close(format!("{api:?} v{version} response did not encode: {e}")),
    }
}
