//! The broker's edge cases over the wire, through the `kafka-protocol`
//! crate as the client: what ApiVersions advertises, Kafka's answer to a
//! newer ApiVersions, closed connections for what Kafka would not parse
//! (unknown API key, unsupported version, an oversize frame), and the
//! exact error codes of a corrupt batch, an unknown topic and an
//! out-of-range fetch; the broker serves on after each.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use annals_broker::BrokerConfig;
use bytes::BytesMut;
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};

#[test]
fn api_versions_advertise_what_is_served_and_answer_newer_clients_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    let response: ApiVersionsResponse =
        call(&mut s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(response.error_code, 0);
    let advertised: Vec<(i16, i16, i16)> =
        response.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    let served: Vec<(i16, i16, i16)> =
        annals_broker::SUPPORTED.iter().map(|&(k, a, b)| (k as i16, a, b)).collect();
    assert_eq!(advertised, served);
    // A version past ours: UNSUPPORTED_VERSION in a v0 response, with the list.
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(9);
    header.encode(&mut buf, 1).unwrap();
    send_frame(&mut s, &buf);
    let mut frame = read_frame(&mut s).unwrap();
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 9);
    let response = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(response.error_code, ResponseError::UnsupportedVersion.code());
    assert_eq!(response.api_keys.len(), served.len());
}

#[test]
fn requests_kafka_would_not_parse_close_the_connection_and_the_broker_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    // An unknown API key.
    let mut s = connect(addr);
    send_frame(&mut s, &[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(closed(&mut s), "unknown API key");
    // Produce v2 (before RecordBatch v2): not served.
    let mut s = connect(addr);
    send_frame(&mut s, &[0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0, 1, 0, 0, 0x13, 0x88]);
    assert!(closed(&mut s), "Produce v2");
    // A frame over socket.request.max.bytes (1 MiB here): refused from its
    // size alone, before its bytes are read or allocated.
    let mut s = connect(addr);
    s.write_all(&(64i32 << 20).to_be_bytes()).unwrap();
    assert!(closed(&mut s), "oversize frame");
    let mut s = connect(addr);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(&mut s), "negative size");
    // Malformed bytes after a valid header.
    let mut s = connect(addr);
    let mut buf = BytesMut::new();
    let header =
        RequestHeader::default().with_request_api_key(ApiKey::Metadata as i16).with_request_api_version(12);
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    buf.extend_from_slice(&[0xff; 3]);
    send_frame(&mut s, &buf);
    assert!(closed(&mut s), "malformed request");
    // And a well-behaved client is served as ever.
    let mut s = connect(addr);
    let response: ApiVersionsResponse =
        call(&mut s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(response.error_code, 0);
}

#[test]
fn produce_and_fetch_errors_carry_kafkas_codes_and_store_nothing_bad() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    // Unknown topic (produce does not create topics).
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("nope", batch(1))).unwrap();
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::UnknownTopicOrPartition.code());
    create(&mut s, "t");
    // A corrupt batch: CORRUPT_MESSAGE, nothing stored.
    let mut bad = batch(3);
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("t", bad)).unwrap();
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::CorruptMessage.code());
    assert!(p.error_message.as_ref().is_some_and(|m| m.contains("CRC")), "{:?}", p.error_message);
    // A good one: offsets from 0, the bytes served back as stored.
    let good = batch(3);
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("t", good.clone())).unwrap();
    let p = &response.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset, p.log_start_offset), (0, 0, 0));
    let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("t", 0)).unwrap();
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark, p.log_start_offset), (0, 3, 0));
    let stored = p.records.clone().unwrap();
    assert_eq!(stored.len(), good.len());
    assert_eq!(stored[61..], good[61..], "records as sent");
    assert_eq!(i32::from_be_bytes(stored[12..16].try_into().unwrap()), 0, "leader epoch stamped");
    // Out of range: past the end, and in an older fetch version too.
    for version in [4, 12] {
        let response: FetchResponse = call(&mut s, ApiKey::Fetch, version, &fetch("t", 4)).unwrap();
        assert_eq!(response.responses[0].partitions[0].error_code, ResponseError::OffsetOutOfRange.code());
    }
    // At the end: nothing, no error (after max_wait_ms).
    let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("t", 3)).unwrap();
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    // ListOffsets: earliest, latest, by timestamp.
    for (timestamp, offset) in [(-2, 0), (-1, 3), (1_001, 1), (5_000, -1), (-3, 2)] {
        let partition = list_offsets_request::ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_timestamp(timestamp);
        let topic = list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![partition]);
        let request = ListOffsetsRequest::default().with_topics(vec![topic]);
        let response: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, 7, &request).unwrap();
        let p = &response.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, offset), "timestamp {timestamp}");
        if timestamp == -3 {
            assert_eq!(p.timestamp, 1_002, "the largest timestamp");
        }
    }
}

/// A partition whose log cannot be opened (damage in its fsynced bytes)
/// is offline: Metadata lists it without a leader (LEADER_NOT_AVAILABLE,
/// the replica offline) and Produce and Fetch on it answer
/// KAFKA_STORAGE_ERROR, as Kafka's do for a replica on a failed log
/// directory; the topic's other partition serves.
#[test]
fn an_offline_partition_answers_kafka_storage_error_and_the_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = annals::Store::open(dir.path().join("store"), annals::StoreConfig::default()).unwrap();
        let topic = store.create_topic("t", annals::TopicConfig::with_partitions(2)).unwrap();
        for p in 0..2 {
            for i in 0..20 {
                topic.append_to(p, &[annals::Record::new(format!("record {i} of {p}"))]).unwrap();
            }
        }
        store.close().unwrap();
    }
    let segment = dir.path().join("store").join("t-1").join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    let addr = start(dir.path());
    let mut s = connect(addr);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))]));
    let response: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &request).unwrap();
    let parts = &response.topics[0].partitions;
    assert_eq!((parts[0].error_code, parts[0].leader_id.0), (0, 0));
    assert_eq!(parts[1].error_code, ResponseError::LeaderNotAvailable.code());
    assert_eq!((parts[1].leader_id.0, parts[1].offline_replicas.len()), (-1, 1));

    for p in [0, 1] {
        let mut request = produce("t", batch(2));
        request.topic_data[0].partition_data[0].index = p;
        let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &request).unwrap();
        let code = response.responses[0].partition_responses[0].error_code;
        let mut request = fetch("t", 0);
        request.topics[0].partitions[0].partition = p;
        let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &request).unwrap();
        let fetched = &response.responses[0].partitions[0];
        if p == 0 {
            assert_eq!((code, fetched.error_code, fetched.high_watermark), (0, 0, 22));
        } else {
            let storage = ResponseError::KafkaStorageError.code();
            assert_eq!((code, fetched.error_code), (storage, storage));
        }
    }
}

/// `--metrics-log-interval-ms`: the broker's log carries a `store metrics`
/// line on that interval, with the engine's counters (here the three
/// records just produced) beside the engine's own events.
#[test]
fn the_broker_logs_store_metrics_on_its_interval() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_annals-broker"))
        .args(["--dir", dir.path().to_str().unwrap(), "--listen", &addr.to_string()])
        .args(["--metrics-log-interval-ms", "100"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the broker did not start: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    create(&mut s, "t");
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("t", batch(3))).unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) if line.contains("store metrics") && line.contains("records_appended=3") => {
                break Some(line)
            }
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no store metrics line with the 3 records: {seen:#?}"));
    assert!(line.contains("partitions=") && line.contains("max_open_files="), "{line}");
    assert!(seen.iter().any(|l| l.contains("store opened")), "the engine's events are logged: {seen:#?}");
}

#[test]
fn a_fetch_at_the_end_waits_for_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    create(&mut s, "w");
    let waiter = std::thread::spawn(move || {
        let mut s = connect(addr);
        let request = fetch("w", 0).with_max_wait_ms(5_000);
        let started = std::time::Instant::now();
        let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &request).unwrap();
        (response.responses[0].partitions[0].records.clone().unwrap_or_default().len(), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let _: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("w", batch(2))).unwrap();
    let (bytes, waited) = waiter.join().unwrap();
    assert!(bytes > 61, "the append was returned");
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(4), "{waited:?}");
}

#[test]
fn topics_are_created_with_kafkas_configs_records_deleted_offsets_committed_and_topics_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    let config = |k: &str, v: &str| {
        create_topics_request::CreatableTopicConfig::default()
            .with_name(StrBytes::from_string(k.into()))
            .with_value(Some(StrBytes::from_string(v.into())))
    };
    let topic = |n: &str, partitions: i32, replication: i16, configs| {
        create_topics_request::CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(partitions)
            .with_replication_factor(replication)
            .with_configs(configs)
    };
    let request = CreateTopicsRequest::default().with_timeout_ms(5_000).with_topics(vec![
        topic("made", 3, 1, vec![config("compression.type", "lz4"), config("retention.ms", "3600000")]),
        topic("replicated", 1, 3, vec![]),
        topic("bad-config", 1, 1, vec![config("no.such.config", "1")]),
        topic("bad/name", 1, 1, vec![]),
    ]);
    let response: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 4, &request).unwrap();
    let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        [
            0,
            ResponseError::InvalidReplicationFactor.code(),
            ResponseError::InvalidConfig.code(),
            ResponseError::InvalidTopicException.code()
        ]
    );
    let again: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 4, &request).unwrap();
    assert_eq!(again.topics[0].error_code, ResponseError::TopicAlreadyExists.code());
    // The config was taken: a record-API style produce of a plain batch is
    // stored lz4 (the topic recompresses).
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("made", batch(20))).unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("made", 0)).unwrap();
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(records[22] & 7, 3, "stored lz4");
    // DeleteRecords raises the log start; a fetch below it is out of range.
    let partition =
        delete_records_request::DeleteRecordsPartition::default().with_partition_index(0).with_offset(5);
    let request = DeleteRecordsRequest::default().with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default()
            .with_name(name("made"))
            .with_partitions(vec![partition]),
    ]);
    let response: DeleteRecordsResponse = call(&mut s, ApiKey::DeleteRecords, 2, &request).unwrap();
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 5));
    let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("made", 2)).unwrap();
    assert_eq!(response.responses[0].partitions[0].error_code, ResponseError::OffsetOutOfRange.code());
    // The coordinator is this node; a standalone consumer's commit is kept.
    let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
    let response: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, 3, &request).unwrap();
    assert_eq!((response.error_code, response.node_id.0, response.port), (0, 0, addr.port() as i32));
    let commit = |generation: i32| {
        let partition = offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(1)
            .with_committed_offset(42);
        OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_generation_id_or_member_epoch(generation)
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name("made"))
                .with_partitions(vec![partition])])
    };
    let response: OffsetCommitResponse = call(&mut s, ApiKey::OffsetCommit, 8, &commit(-1)).unwrap();
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
    let response: OffsetCommitResponse = call(&mut s, ApiKey::OffsetCommit, 8, &commit(3)).unwrap();
    assert_eq!(response.topics[0].partitions[0].error_code, ResponseError::UnknownMemberId.code());
    for version in [1, 7] {
        let topics = vec![offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(name("made"))
            .with_partition_indexes(vec![0, 1])];
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(Some(topics));
        let response: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, version, &request).unwrap();
        let got: Vec<i64> = response.topics[0].partitions.iter().map(|p| p.committed_offset).collect();
        assert_eq!(got, [-1, 42], "v{version}");
    }
    // DeleteTopics: gone, and a second delete names it unknown.
    let request = DeleteTopicsRequest::default().with_topic_names(vec![name("made")]).with_timeout_ms(5_000);
    let response: DeleteTopicsResponse = call(&mut s, ApiKey::DeleteTopics, 5, &request).unwrap();
    assert_eq!(response.responses[0].error_code, 0);
    let response: DeleteTopicsResponse = call(&mut s, ApiKey::DeleteTopics, 5, &request).unwrap();
    assert_eq!(response.responses[0].error_code, ResponseError::UnknownTopicOrPartition.code());
}

#[test]
fn topic_configs_are_described_under_kafkas_names() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    let config = create_topics_request::CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("retention.ms"))
        .with_value(Some(StrBytes::from_static_str("60000")));
    let topic = create_topics_request::CreatableTopic::default()
        .with_name(name("described"))
        .with_num_partitions(2)
        .with_replication_factor(1)
        .with_configs(vec![config]);
    let _: CreateTopicsResponse =
        call(&mut s, ApiKey::CreateTopics, 4, &CreateTopicsRequest::default().with_topics(vec![topic]))
            .unwrap();
    let resource = |n: &str, keys: Option<Vec<StrBytes>>| {
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(n.into()))
            .with_configuration_keys(keys)
    };
    let request = DescribeConfigsRequest::default().with_resources(vec![
        resource("described", None),
        resource("described", Some(vec![StrBytes::from_static_str("compression.type")])),
        resource("missing", None),
    ]);
    let response: DescribeConfigsResponse = call(&mut s, ApiKey::DescribeConfigs, 3, &request).unwrap();
    let all = &response.results[0];
    assert_eq!(all.error_code, 0);
    let retention = all.configs.iter().find(|c| &*c.name == "retention.ms").unwrap();
    assert_eq!((retention.value.as_deref(), retention.config_source), (Some("60000"), 1));
    let segment = all.configs.iter().find(|c| &*c.name == "segment.bytes").unwrap();
    assert_eq!(segment.config_source, 5, "a default");
    let one = &response.results[1];
    assert_eq!(one.configs.len(), 1);
    assert_eq!(one.configs[0].value.as_deref(), Some("producer"));
    assert_eq!(response.results[2].error_code, ResponseError::UnknownTopicOrPartition.code());
}

#[test]
fn idle_and_stalled_clients_time_out_and_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_with(BrokerConfig {
        dir: dir.path().to_path_buf(),
        connections_max_idle: Duration::from_millis(300),
        request_read_timeout: Duration::from_millis(300),
        max_connections: 2,
        ..BrokerConfig::default()
    });
    // Idle: closed after connections.max.idle.
    let mut idle = connect(addr);
    let started = std::time::Instant::now();
    assert!(closed(&mut idle));
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    // Stalled mid-request: the size came, the bytes never do.
    let mut stalled = connect(addr);
    stalled.write_all(&100i32.to_be_bytes()).unwrap();
    stalled.write_all(&[0, 18]).unwrap();
    assert!(closed(&mut stalled));
    // Two connections at most: a third waits until one closes.
    let mut a = connect(addr);
    let mut b = connect(addr);
    let _: ApiVersionsResponse =
        call(&mut a, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).unwrap();
    let _: ApiVersionsResponse =
        call(&mut b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).unwrap();
    let mut c = connect(addr);
    c.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
    let mut buf = BytesMut::new();
    let header =
        RequestHeader::default().with_request_api_key(ApiKey::ApiVersions as i16).with_request_api_version(3);
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    ApiVersionsRequest::default().encode(&mut buf, 3).unwrap();
    send_frame(&mut c, &buf);
    let mut size = [0u8; 4];
    assert!(c.read_exact(&mut size).is_err(), "served past max_connections");
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(read_frame(&mut c).is_some(), "served once a slot freed");
}

#[test]
fn sasl_on_a_listener_without_sasl_is_answered_illegal_sasl_state_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    for version in 0..=1 {
        let response: SaslHandshakeResponse =
            call(&mut s, ApiKey::SaslHandshake, version, &handshake).unwrap();
        assert_eq!(response.error_code, ResponseError::IllegalSaslState.code());
        assert!(response.mechanisms.is_empty());
    }
    let authenticate = SaslAuthenticateRequest::default();
    let response: SaslAuthenticateResponse =
        call(&mut s, ApiKey::SaslAuthenticate, 2, &authenticate).expect("answered, not closed");
    assert_eq!(response.error_code, ResponseError::IllegalSaslState.code());
    // The connection serves on.
    create(&mut s, "after-sasl");
}
