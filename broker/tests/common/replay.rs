//! One connection's bytes, as a client would send them, served by a broker
//! without sockets, and what must hold of what comes back. Shared by the
//! hostile-frame sweep (`tests/hostile_frames.rs`) and the protocol fuzz
//! target (`fuzz/fuzz_targets/broker_protocol.rs`, which includes this file
//! by path), so that both check the same thing.
//!
//! What must hold: the broker answers requests in order, each response
//! carries the correlation id of the request it answers, and each decodes,
//! through `kafka-protocol`'s client side, as that API's response at that
//! version. Requests may go unanswered (a produce with acks=0, or the
//! request that made the broker close the connection), never answered out
//! of order or with bytes a client cannot parse.

use std::net::SocketAddr;

use annals_broker::Broker;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request frame's header fields, read without `kafka-protocol`.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub api_key: i16,
    pub version: i16,
    pub correlation_id: i32,
}

/// The requests in `input`: each whole size-prefixed frame with room for
/// the header's fixed part, up to the first size the broker would refuse
/// (it closes the connection there). `max_frame` is its
/// `socket_request_max_bytes`.
pub fn requests(mut input: &[u8], max_frame: usize) -> Vec<Sent> {
    let mut sent = Vec::new();
    while input.len() >= 4 {
        let size = i32::from_be_bytes([input[0], input[1], input[2], input[3]]);
        let Some(size) = usize::try_from(size).ok().filter(|&s| s <= max_frame) else { break };
        let Some(frame) = input.get(4..4 + size) else { break };
        if frame.len() >= 8 {
            sent.push(Sent {
                api_key: i16::from_be_bytes([frame[0], frame[1]]),
                version: i16::from_be_bytes([frame[2], frame[3]]),
                correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
            });
        }
        input = &input[4 + size..];
    }
    sent
}

/// Serves `input` as one connection's client-to-broker bytes (the client
/// then half-closes), and returns the response frames, sizes removed.
pub async fn serve(broker: &Broker, input: &[u8]) -> Vec<Bytes> {
    let (client, server) = tokio::io::duplex(64 << 10);
    let (mut from_broker, mut to_broker) = tokio::io::split(client);
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let write = async {
        // A broker that closes early makes this fail: the rest is unsent.
        let _ = to_broker.write_all(input).await;
        let _ = to_broker.shutdown().await;
    };
    let read = async {
        let mut received = Vec::new();
        let _ = from_broker.read_to_end(&mut received).await;
        received
    };
    let ((), (), received) = tokio::join!(broker.serve_stream(server, peer), write, read);
    frames(&received)
}

/// The size-prefixed frames of `bytes` (a broker's output is whole frames).
fn frames(mut bytes: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let Some(frame) = bytes.get(4..4 + size) else {
            out.push(Bytes::copy_from_slice(bytes)); // a torn frame: `check` reports it
            return out;
        };
        out.push(Bytes::copy_from_slice(frame));
        bytes = &bytes[4 + size..];
    }
    if !bytes.is_empty() {
        out.push(Bytes::copy_from_slice(bytes));
    }
    out
}

/// Whether `responses` answer `sent` as a Kafka broker must (see the
/// module's doc); the first fault found otherwise.
pub fn check(sent: &[Sent], responses: &[Bytes], served: &[(ApiKey, i16, i16)]) -> Result<(), String> {
    let mut next = 0;
    'responses: for (i, response) in responses.iter().enumerate() {
        if response.len() < 4 {
            return Err(format!("response {i} is {} bytes, shorter than a correlation id", response.len()));
        }
        let correlation_id = (&response[..4]).get_i32();
        // The earliest unanswered request this can answer: requests between
        // went unanswered (acks=0), and a client may reuse an id.
        let mut fault = format!("response {i} (correlation id {correlation_id}) answers no request sent");
        while next < sent.len() {
            let request = sent[next];
            next += 1;
            if request.correlation_id != correlation_id {
                continue;
            }
            match decodes(request, response.clone(), served) {
                Ok(()) => continue 'responses,
                Err(e) => fault = format!("response {i} to {request:?}: {e}"),
            }
        }
        return Err(fault);
    }
    Ok(())
}

/// Whether `response` decodes as the answer to `request`.
fn decodes(request: Sent, mut response: Bytes, served: &[(ApiKey, i16, i16)]) -> Result<(), String> {
    let api = ApiKey::try_from(request.api_key).map_err(|_| "an answer to an unknown API key".to_string())?;
    let (_, min, max) = *served.iter().find(|(k, _, _)| *k == api).ok_or("an answer to an API not served")?;
    let version = match (api, (min..=max).contains(&request.version)) {
        (_, true) => request.version,
        // Kafka answers a newer ApiVersions in v0 (so the client retries).
        (ApiKey::ApiVersions, false) => 0,
        (_, false) => return Err("an answer to a version not served".into()),
    };
    ResponseHeader::decode(&mut response, api.response_header_version(version))
        .map_err(|e| format!("header: {e}"))?;
    ResponseKind::decode(api, &mut response, version).map_err(|e| format!("body: {e}"))?;
    if response.has_remaining() {
        return Err(format!("{} bytes past the {api:?} v{version} response", response.remaining()));
    }
    Ok(())
}
