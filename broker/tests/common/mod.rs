//! What the broker's protocol tests share: a broker on a free port in a
//! thread of its own, framed calls through `kafka-protocol` as the client,
//! and the requests the tests build.
#![allow(dead_code)] // each test file uses its own part

pub mod replay;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use annals_broker::{Broker, BrokerConfig};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, Encodable, HeaderVersion, StrBytes,
};

/// A broker on a free port, in a runtime of its own thread.
pub fn start(dir: &std::path::Path) -> SocketAddr {
    start_with(BrokerConfig { dir: dir.to_path_buf(), ..BrokerConfig::default() })
}

pub fn start_with(config: BrokerConfig) -> SocketAddr {
    let config =
        BrokerConfig { listen: "127.0.0.1:0".parse().unwrap(), socket_request_max_bytes: 1 << 20, ..config };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let broker = Broker::open(config).await.unwrap();
            tx.send(broker.local_addr().unwrap()).unwrap();
            broker.serve(std::future::pending()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// A broker serving `store` (opened by the test, e.g. on a simulated file
/// system), its own state in `dir`.
pub fn start_on_store(dir: &std::path::Path, store: annals::Store) -> SocketAddr {
    let config = BrokerConfig {
        dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        socket_request_max_bytes: 1 << 20,
        ..BrokerConfig::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let broker = Broker::with_store(config, store).await.unwrap();
            tx.send(broker.local_addr().unwrap()).unwrap();
            broker.serve(std::future::pending()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

pub fn send_frame(s: &mut TcpStream, frame: &[u8]) {
    s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
    s.write_all(frame).unwrap();
}

/// The response frame, or `None` when the broker closed the connection.
pub fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut frame).ok()?;
    Some(Bytes::from(frame))
}

/// Sends `request` (correlation id 7) without waiting for its answer.
pub fn send_request<Q: Encodable + HeaderVersion>(s: &mut TcpStream, key: ApiKey, version: i16, request: &Q) {
    send_request_as(s, 7, key, version, request);
}

/// Sends `request` with `correlation_id`, without waiting for its answer.
pub fn send_request_as<Q: Encodable + HeaderVersion>(
    s: &mut TcpStream,
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    request: &Q,
) {
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("protocol-test")));
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    request.encode(&mut buf, version).unwrap();
    send_frame(s, &buf);
}

pub fn call<Q: Encodable + HeaderVersion, R: Decodable + HeaderVersion>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Q,
) -> Option<R> {
    send_request(s, key, version, request);
    let mut frame = read_frame(s)?;
    let header = ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    Some(R::decode(&mut frame, version).unwrap())
}

/// The next response: its correlation id and body (of `key` at `version`).
pub fn read_response<R: Decodable>(s: &mut TcpStream, key: ApiKey, version: i16) -> (i32, R) {
    let mut frame = read_frame(s).expect("a response");
    let header = ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
    (header.correlation_id, R::decode(&mut frame, version).unwrap())
}

pub fn closed(s: &mut TcpStream) -> bool {
    read_frame(s).is_none()
}

pub fn batch(n: usize) -> Vec<u8> {
    let records: Vec<annals::Record> = (0..n)
        .map(|i| annals::Record::with_key(format!("k{i}"), format!("v{i}")).timestamp_ms(1_000 + i as i64))
        .collect();
    let mut out = Vec::new();
    let limits = annals::format::EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 1 << 20 };
    annals::format::encode_batch(&mut out, 0, annals::BatchMeta::default(), &records, 1_000, limits).unwrap();
    out
}

pub fn produce(topic: &str, records: Vec<u8>) -> ProduceRequest {
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(records)));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![partition]);
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(vec![topic])
}

pub fn fetch(topic: &str, offset: i64) -> FetchRequest {
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_string(topic.into())))
        .with_partitions(vec![partition]);
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![topic])
}

pub fn create(s: &mut TcpStream, topic: &str) {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.into()))))]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = call(s, ApiKey::Metadata, 12, &request).unwrap();
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].partitions.len(), 1);
}

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}
