//! A request: its header, whether this broker serves its API at its
//! version, the handler, and the response frame. What ApiVersions
//! advertises is [`SUPPORTED`], exactly what the handlers implement.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};

use crate::frame::Frame;
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
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 3),
    (ApiKey::ListGroups, 0, 2),
    (ApiKey::DescribeGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::DescribeConfigs, 1, 3),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// Why a handler closes the connection instead of answering: a panic in
/// it (logged where it is caught), or a failed acks=0 produce, which has
/// no response to carry its error (Kafka closes the connection so that the
/// producer refreshes its metadata).
#[derive(Debug)]
pub(crate) struct Close(pub(crate) String);

/// A handler's answer, or why the connection closes instead.
pub(crate) type Answer<T> = Result<T, Close>;

/// Runs `f` on tokio's blocking pool (store calls block on disk). A panic
/// in it is logged and closes the connection: it is never answered as an
/// empty, well-formed success.
pub(crate) async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    api: ApiKey,
    f: impl FnOnce(&Shared) -> T + Send + 'static,
) -> Answer<T> {
    let shared = shared.clone();
    match tokio::task::spawn_blocking(move || f(&shared)).await {
        Ok(t) => Ok(t),
        Err(e) => {
            let why = match e.try_into_panic() {
                Ok(payload) => panic_message(payload.as_ref()),
                Err(e) => e.to_string(),
            };
            tracing::error!(?api, panic = %why, "request handler panicked");
            Err(Close(format!("the {api:?} handler panicked")))
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// What to do with a request.
pub(crate) enum Outcome {
    /// Send this frame: the response's `int32` size, header and body.
    Respond(Frame),
    /// Send nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection, as Kafka does with a request it cannot parse.
    Close(String),
}

/// A request after its ordered step: its outcome, or the wait that will
/// give it, which may overlap the next requests' ordered steps.
pub(crate) enum Handled {
    /// Answered in the ordered step.
    Done(Outcome),
    /// What is left is a wait: a produce's fsyncs, a fetch's long poll.
    Waiting(Pin<Box<dyn Future<Output = Outcome> + Send>>),
}

impl From<Outcome> for Handled {
    fn from(outcome: Outcome) -> Self {
        Handled::Done(outcome)
    }
}

/// A request's ordered step (see `connection.rs`): parsing, and every
/// effect later requests of the connection must see (a produce's appends,
/// a commit, a join), run in arrival order; then the wait it leaves, if
/// any. Only Produce (its completions) and Fetch (a read and its long
/// poll, which orders nothing) leave one.
pub(crate) async fn handle(shared: &Arc<Shared>, mut frame: Bytes) -> Handled {
    if frame.len() < 8 {
        return Outcome::Close("a frame shorter than a request header".into()).into();
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return Outcome::Close(format!("unknown API key {key}")).into();
    };
    let Some(&(_, min, max)) = SUPPORTED.iter().find(|(k, _, _)| *k == api) else {
        return Outcome::Close(format!("{api:?} is not served")).into();
    };
    if !(min..=max).contains(&version) {
        if api == ApiKey::ApiVersions {
            // Kafka's answer to a newer client: UNSUPPORTED_VERSION in a v0
            // response that lists what is served, so it retries lower.
            let body = api_versions().with_error_code(ResponseError::UnsupportedVersion.code());
            return respond(api, 0, correlation_id, &body).into();
        }
        return Outcome::Close(format!("{api:?} v{version} is not served (v{min} to v{max})")).into();
    }
    let header = match decode_request_header_from_buffer(&mut frame) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("malformed {api:?} v{version} header: {e}")).into(),
    };
    tracing::debug!(?api, version, correlation_id, client = ?header.client_id, "request");
    // The body, by the API's schema at this version: kafka-protocol's one
    // decoder per message (bounded: see vendor/kafka-protocol/PATCHED.md).
    let request = match RequestKind::decode(api, &mut frame, version) {
        Ok(r) => r,
        Err(e) => return Outcome::Close(format!("malformed {api:?} v{version} request: {e}")).into(),
    };
    macro_rules! respond_with {
        ($body:expr) => {
            respond(api, version, correlation_id, $body)
        };
    }
    // A handler's `Answer`: its response, or the connection closed.
    macro_rules! answer {
        ($e:expr) => {
            match $e {
                Ok(response) => respond_with!(&response),
                Err(Close(why)) => Outcome::Close(why),
            }
        };
    }
    use crate::{admin, cluster, configs, groups, offsets};
    let outcome = match request {
        RequestKind::ApiVersions(_) => respond_with!(&api_versions()),
        RequestKind::Metadata(r) => answer!(crate::metadata::handle(shared, r, version).await),
        RequestKind::Produce(r) => {
            let produced = match crate::produce::write(shared, r, version).await {
                Ok(produced) => produced,
                Err(Close(why)) => return Outcome::Close(why).into(),
            };
            // A failed acks=0 produce closes the connection before any
            // later request of it runs.
            if let Some(why) = produced.failed_unanswered() {
                return Outcome::Close(format!("an acks=0 produce failed ({why})")).into();
            }
            let produced_waits = produced.waits();
            let shared = shared.clone();
            let completed = async move {
                match crate::produce::complete(&shared, produced).await {
                    Ok(Some(response)) => respond_with!(&response),
                    Ok(None) => Outcome::NoResponse,
                    Err(Close(why)) => Outcome::Close(why),
                }
            };
            if !produced_waits {
                return completed.await.into();
            }
            return Handled::Waiting(Box::pin(completed));
        }
        RequestKind::Fetch(r) => {
            let shared = shared.clone();
            return Handled::Waiting(Box::pin(async move {
                match crate::fetch::handle(&shared, r, version).await {
                    Ok(response) => respond_fetch(version, correlation_id, response),
                    Err(Close(why)) => Outcome::Close(why),
                }
            }));
        }
        RequestKind::ListOffsets(r) => answer!(crate::list_offsets::handle(shared, r, version).await),
        RequestKind::InitProducerId(r) => answer!(crate::producer_ids::handle(shared, r).await),
        RequestKind::CreateTopics(r) => answer!(admin::create_topics(shared, r).await),
        RequestKind::DeleteTopics(r) => answer!(admin::delete_topics(shared, r, version).await),
        RequestKind::DeleteRecords(r) => answer!(admin::delete_records(shared, r).await),
        RequestKind::FindCoordinator(r) => respond_with!(&offsets::find_coordinator(shared, &r, version)),
        RequestKind::OffsetCommit(r) => answer!(offsets::commit(shared, r).await),
        RequestKind::OffsetFetch(r) => answer!(offsets::fetch(shared, r).await),
        RequestKind::OffsetDelete(r) => answer!(offsets::delete_offsets(shared, r).await),
        RequestKind::DeleteGroups(r) => answer!(offsets::delete_groups(shared, r).await),
        RequestKind::JoinGroup(r) => {
            let client = header.client_id.as_deref().unwrap_or("").to_string();
            respond_with!(&groups::join(shared, r, version, client).await)
        }
        RequestKind::SyncGroup(r) => respond_with!(&groups::sync(shared, r).await),
        RequestKind::Heartbeat(r) => respond_with!(&groups::heartbeat(shared, &r)),
        RequestKind::LeaveGroup(r) => respond_with!(&groups::leave(shared, &r, version)),
        RequestKind::ListGroups(_) => respond_with!(&groups::list(shared)),
        RequestKind::DescribeGroups(r) => respond_with!(&groups::describe(shared, &r)),
        RequestKind::DescribeConfigs(r) => answer!(configs::describe(shared, r, version).await),
        RequestKind::DescribeCluster(r) => respond_with!(&cluster::describe_cluster(shared, &r)),
        RequestKind::DescribeLogDirs(r) => answer!(cluster::describe_log_dirs(shared, r).await),
        RequestKind::OffsetForLeaderEpoch(r) => answer!(cluster::offset_for_leader_epoch(shared, r).await),
        RequestKind::SaslHandshake(_) => respond_with!(&crate::sasl::handshake()),
        RequestKind::SaslAuthenticate(_) => respond_with!(&crate::sasl::authenticate()),
        // SUPPORTED above let only the APIs matched here through.
        _ => Outcome::Close(format!("{api:?} is not served")),
    };
    Handled::Done(outcome)
}

/// What a response's buffer starts with: most answers fit, larger ones
/// grow it (a fetch's large record sets are pieces of their own).
pub(crate) const RESPONSE_PREALLOCATE_BYTES: usize = 1024;

fn api_versions() -> ApiVersionsResponse {
    let keys = SUPPORTED
        .iter()
        .map(|&(k, min, max)| {
            ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(keys)
}

/// A response frame: its size is written in place once the header and
/// body are encoded behind it (no second buffer to prepend it).
fn respond(api: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Outcome {
    let mut out = BytesMut::with_capacity(RESPONSE_PREALLOCATE_BYTES);
    out.extend_from_slice(&[0; 4]);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(&mut out, api.response_header_version(version))
        .and_then(|()| body.encode(&mut out, version));
    match encoded {
        Ok(()) => match i32::try_from(out.len() - 4) {
            Ok(size) => {
                out[..4].copy_from_slice(&size.to_be_bytes());
                Outcome::Respond(out.into())
            }
            Err(_) => Outcome::Close(format!("{api:?} v{version} response over 2 GiB")),
        },
        Err(e) => Outcome::Close(format!("{api:?} v{version} response did not encode: {e}")),
    }
}

/// A Fetch response's frame, its large record sets sent as they were read
/// (`fetch_frame.rs`).
fn respond_fetch(
    version: i16,
    correlation_id: i32,
    body: kafka_protocol::messages::FetchResponse,
) -> Outcome {
    match crate::fetch_frame::fetch_frame(correlation_id, version, body) {
        Ok(frame) => Outcome::Respond(frame),
        Err(why) => Outcome::Close(format!("Fetch v{version}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataResponse;

    /// A broker's shared state on a store in `dir`, without a listener.
    fn shared(dir: &std::path::Path) -> Arc<Shared> {
        let store = annals::Store::open(dir.join("store"), annals::StoreConfig::default()).unwrap();
        Arc::new(Shared {
            store,
            producer_ids: crate::producer_ids::ProducerIds::open(dir).unwrap(),
            groups: Arc::new(crate::groups::Groups::new(crate::groups::INITIAL_REBALANCE_DELAY)),
            data: Box::new(crate::storage::Stored),
            config: crate::BrokerConfig::default(),
            host: "127.0.0.1".into(),
            port: 9092,
            request_bytes: crate::connection::RequestBytes::new(1 << 20),
        })
    }

    #[tokio::test]
    async fn a_panicking_handler_closes_the_connection_instead_of_answering_an_empty_success() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        let answer: Answer<MetadataResponse> =
            blocking(&shared, ApiKey::Metadata, |_| panic!("a handler's bug")).await;
        let Err(Close(why)) = answer else { panic!("a panic was answered: {answer:?}") };
        assert!(why.contains("Metadata handler panicked"), "{why}");
        // The blocking pool and the store go on serving.
        let topics = blocking(&shared, ApiKey::Metadata, |s| s.store.list_topics()).await.unwrap();
        assert!(topics.iter().all(|t| t != "x"));
    }
}
