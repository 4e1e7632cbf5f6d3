//! The produce and fetch path as Kafka's broker runs it: a failed acks=0
//! produce closes the connection, a poisoned partition is listed without
//! a leader, CreateTopics takes Kafka's configs and DescribeConfigs shows
//! them, `log_append_time_ms` is answered, KIP-74's limits and
//! `fetch.min.bytes` are applied as Kafka applies them; and the cheap
//! descriptions tools call (DescribeCluster, DescribeLogDirs,
//! OffsetForLeaderEpoch).

use crate::common;

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// Whether the broker closed `s` (EOF or a reset) rather than leaving it
/// open and silent for `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("an answer where none was due"),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

fn api_versions(s: &mut TcpStream) -> Option<ApiVersionsResponse> {
    call(s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
}

#[test]
fn a_failed_acks_0_produce_closes_the_connection_and_a_good_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    create(&mut s, "t");
    let mut good = produce("t", batch(2));
    good.acks = 0;
    send_request(&mut s, ApiKey::Produce, 9, &good);
    assert!(api_versions(&mut s).is_some(), "no answer to acks=0, and the connection serves on");
    // Partition 7 of a one-partition topic: Kafka closes the connection,
    // so that the producer refreshes its metadata.
    let mut bad = good.clone();
    bad.topic_data[0].partition_data[0].index = 7;
    send_request(&mut s, ApiKey::Produce, 9, &bad);
    assert!(closed_within(&mut s, Duration::from_secs(5)), "the failed acks=0 produce closed the connection");
    let mut s = connect(addr);
    // acks=0 records are fsynced in the background (within the broker's
    // max flush delay), and the high watermark follows them there.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let high_watermark = loop {
        let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("t", 0)).unwrap();
        let hw = response.responses[0].partitions[0].high_watermark;
        if hw == 2 || std::time::Instant::now() > deadline {
            break hw;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(high_watermark, 2, "the good produce was appended");
}

fn metadata(s: &mut TcpStream, topic: &str) -> MetadataResponse {
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    call(s, ApiKey::Metadata, 12, &request).unwrap()
}

/// A failed write poisons a partition's log (it refuses writes until a
/// reopen): Metadata lists it as Kafka lists a partition on a failed log
/// directory, with no leader and the replica offline, and the other
/// partition is served as before.
#[test]
fn a_poisoned_partition_is_listed_without_a_leader_and_its_replica_offline() {
    let fs = annals::io::sim::SimFs::new();
    let store = annals::Store::open_with(
        "/store",
        annals::StoreConfig::default(),
        annals::OpenOptions::default().with_fs(Arc::new(fs.clone())),
    )
    .unwrap();
    let topic = store.create_topic("t", annals::TopicConfig::with_partitions(2)).unwrap();
    for p in 0..2 {
        topic.append_to(p, &[annals::Record::new("before")]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = start_on_store(dir.path(), store);
    let mut s = connect(addr);
    let leaders: Vec<i32> =
        metadata(&mut s, "t").topics[0].partitions.iter().map(|p| p.leader_id.0).collect();
    assert_eq!(leaders, [0, 0]);

    fs.fail_at(fs.op_count() + 1, std::io::ErrorKind::Other, true);
    let mut request = produce("t", batch(2));
    request.topic_data[0].partition_data[0].index = 1;
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &request).unwrap();
    let code = response.responses[0].partition_responses[0].error_code;
    assert_eq!(code, ResponseError::KafkaStorageError.code());
    fs.clear_faults();

    let response = metadata(&mut s, "t");
    let parts = &response.topics[0].partitions;
    assert_eq!((parts[0].error_code, parts[0].leader_id.0), (0, 0), "partition 0 is served");
    assert_eq!(parts[1].error_code, ResponseError::LeaderNotAvailable.code());
    assert_eq!(parts[1].leader_id.0, -1, "no leader");
    assert_eq!(parts[1].offline_replicas.iter().map(|b| b.0).collect::<Vec<_>>(), [0], "the replica offline");
    let mut request = fetch("t", 0);
    request.topics[0].partitions[0].partition = 1;
    let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &request).unwrap();
    assert_eq!(response.responses[0].partitions[0].error_code, ResponseError::KafkaStorageError.code());
    let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("t", 0)).unwrap();
    assert_eq!(response.responses[0].partitions[0].high_watermark, 1, "partition 0 reads on");
}

pub(super) fn create_topic(
    s: &mut TcpStream,
    topic: &str,
    configs: &[(&str, &str)],
) -> (i16, Option<String>) {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let topic = create_topics_request::CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(configs);
    let request = CreateTopicsRequest::default().with_timeout_ms(5_000).with_topics(vec![topic]);
    let response: CreateTopicsResponse = call(s, ApiKey::CreateTopics, 4, &request).unwrap();
    let t = &response.topics[0];
    (t.error_code, t.error_message.as_ref().map(|m| m.to_string()))
}

/// `(value, source)` of each config of `topic`, by name.
fn described(s: &mut TcpStream, topic: &str) -> std::collections::BTreeMap<String, (String, i8)> {
    let resource = describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.into()));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response: DescribeConfigsResponse = call(s, ApiKey::DescribeConfigs, 3, &request).unwrap();
    assert_eq!(response.results[0].error_code, 0);
    let configs = response.results[0].configs.iter();
    configs
        .map(|c| (c.name.to_string(), (c.value.as_deref().unwrap_or("").to_string(), c.config_source)))
        .collect()
}

const LONG_MAX: &str = "9223372036854775807";
const DYNAMIC: i8 = 1;
const DEFAULT: i8 = 5;

#[test]
fn create_topics_takes_kafkas_configs_and_describe_configs_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    // What clients commonly send: Kafka's defaults, spelled out.
    let kafkas = [
        ("max.message.bytes", "1048588"),
        ("min.insync.replicas", "1"),
        ("flush.messages", LONG_MAX),
        ("flush.ms", LONG_MAX),
        ("index.interval.bytes", "4096"),
        ("segment.index.bytes", "10485760"),
        ("min.compaction.lag.ms", "0"),
        ("max.compaction.lag.ms", LONG_MAX),
        ("unclean.leader.election.enable", "false"),
        ("compression.gzip.level", "-1"),
        ("compression.lz4.level", "9"),
        ("compression.zstd.level", "3"),
    ];
    assert_eq!(create_topic(&mut s, "kafkas", &kafkas), (0, None));
    let configs = described(&mut s, "kafkas");
    assert_eq!(configs["max.message.bytes"].0, "1048588", "Kafka's default taken");
    assert_eq!(configs["min.insync.replicas"], ("1".into(), DYNAMIC), "accepted and shown as given");
    assert_eq!(configs["unclean.leader.election.enable"], ("false".into(), DYNAMIC));
    // flush.messages=1 is Kafka's fsync of every append: annals' durability.
    assert_eq!(create_topic(&mut s, "durable", &[("flush.messages", "1")]), (0, None));
    let durable = described(&mut s, "durable");
    assert_eq!(durable["flush.messages"], ("1".into(), DYNAMIC));
    assert_eq!(durable["min.insync.replicas"], ("1".into(), DEFAULT), "Kafka's default, not given");
    // What needs behaviour annals lacks, or is no config: INVALID_CONFIG naming it.
    for (config, value) in
        [("min.insync.replicas", "2"), ("remote.storage.enable", "true"), ("no.such.config", "1")]
    {
        let (code, message) = create_topic(&mut s, "refused", &[(config, value)]);
        assert_eq!(code, ResponseError::InvalidConfig.code(), "{config}={value}");
        assert!(message.as_deref().unwrap_or("").contains(config), "{message:?} names {config}");
    }
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name("refused")))
        ]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &request).unwrap();
    assert_eq!(response.topics[0].error_code, ResponseError::UnknownTopicOrPartition.code(), "not created");
}

/// The broker's clock is the machine's: the append time lies between the
/// times read before and after the call.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn log_append_time_ms_is_the_time_stamped_on_a_log_append_time_topic() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path());
    let mut s = connect(addr);
    assert_eq!(create_topic(&mut s, "lat", &[("message.timestamp.type", "LogAppendTime")]).0, 0);
    assert_eq!(create_topic(&mut s, "ct", &[]).0, 0);
    let before = now_ms();
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("lat", batch(2))).unwrap();
    let after = now_ms();
    let answered = &response.responses[0].partition_responses[0];
    assert_eq!(answered.error_code, 0);
    let stamped = answered.log_append_time_ms;
    assert!((before..=after).contains(&stamped), "{before} <= {stamped} <= {after}");
    let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("lat", 0)).unwrap();
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    let header = annals::format::BatchHeader::parse(&records).unwrap();
    assert_eq!(header.max_timestamp_ms, stamped, "the batch's maxTimestamp");
    let response: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &produce("ct", batch(2))).unwrap();
    assert_eq!(response.responses[0].partition_responses[0].log_append_time_ms, -1, "CreateTime");
}

/// A batch of `n` records of `value_bytes` each.
fn sized_batch(n: usize, value_bytes: usize) -> Vec<u8> {
    let records: Vec<annals::Record> = (0..n)
        .map(|i| annals::Record::with_key(format!("k{i}"), vec![b'v'; value_bytes]).timestamp_ms(1_000))
        .collect();
    let mut out = Vec::new();
    let limits = annals::format::EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 1 << 20 };
    annals::format::encode_batch(&mut out, 0, annals::BatchMeta::default(), &records, 1_000, limits).unwrap();
    out
}

fn produce_to(s: &mut TcpStream, topic: &str, partition: i32, batch: Vec<u8>) {
    let mut request = produce(topic, batch);
    request.topic_data[0].partition_data[0].index = partition;
    let response: ProduceResponse = call(s, ApiKey::Produce, 9, &request).unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

/// A Fetch of `topic`'s partitions in `order`, each from offset 0.
fn fetch_partitions(
    order: &[i32],
    partition_max: i32,
    max_bytes: i32,
    min_bytes: i32,
    wait_ms: i32,
) -> FetchRequest {
    let partitions = order
        .iter()
        .map(|&p| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(0)
                .with_partition_max_bytes(partition_max)
        })
        .collect();
    let topic = FetchTopic::default().with_topic(name("k")).with_partitions(partitions);
    FetchRequest::default()
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_topics(vec![topic])
}

/// Record bytes returned per partition, in the response's order.
fn sizes(response: &FetchResponse) -> Vec<usize> {
    let partitions = response.responses[0].partitions.iter();
    partitions.map(|p| p.records.as_ref().map_or(0, Bytes::len)).collect()
}

/// A broker whose topics get two partitions, with topic `k` created, and a
/// connection to it.
fn two_partitions_of_k(dir: &std::path::Path) -> (std::net::SocketAddr, TcpStream) {
    let addr = start_with(annals_broker::BrokerConfig {
        dir: dir.to_path_buf(),
        default_partitions: 2,
        ..annals_broker::BrokerConfig::default()
    });
    let mut s = connect(addr);
    let _ = metadata(&mut s, "k");
    (addr, s)
}

/// KIP-74 as Kafka's `ReplicaManager.readFromLog` applies it: each
/// partition reads at most `min(partition_max_bytes, what is left of
/// max_bytes)`; only until a partition has returned records may a first
/// batch larger than that go out whole.
#[test]
fn fetch_limits_let_only_the_first_partition_with_data_overshoot() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut s) = two_partitions_of_k(dir.path());
    let small = sized_batch(1, 900);
    let large = sized_batch(3, 900);
    for _ in 0..3 {
        produce_to(&mut s, "k", 0, small.clone());
    }
    produce_to(&mut s, "k", 1, large.clone());
    let (small, large) = (small.len(), large.len());
    assert!(small < 1500 && large > 1500 && 2 * small > 1500);
    let cases = [
        // (order, partition_max, max_bytes) -> bytes per partition
        ((vec![0, 1], 1500, 1 << 20), vec![small, 0]),
        ((vec![1, 0], 1500, 1 << 20), vec![large, small]),
        ((vec![0, 1], 1 << 20, 1500), vec![small, 0]),
        ((vec![1, 0], 1 << 20, 1500), vec![large, 0]),
        ((vec![0, 1], 1 << 20, 1 << 20), vec![3 * small, large]),
    ];
    for ((order, partition_max, max_bytes), want) in cases {
        let request = fetch_partitions(&order, partition_max, max_bytes, 1, 0);
        let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &request).unwrap();
        assert_eq!(
            sizes(&response),
            want,
            "order {order:?}, partition_max_bytes {partition_max}, max_bytes {max_bytes}"
        );
    }
}

/// `fetch.min.bytes`: a fetch that finds fewer bytes waits for more, up to
/// `max_wait_ms`, and answers with what is there then; one that finds
/// enough answers at once.
#[test]
fn a_fetch_waits_for_min_bytes_up_to_max_wait_ms() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, mut s) = two_partitions_of_k(dir.path());
    produce_to(&mut s, "k", 0, sized_batch(1, 100));
    let timed = |s: &mut TcpStream, min_bytes: i32, wait_ms: i32| {
        let started = Instant::now();
        let response: FetchResponse =
            call(s, ApiKey::Fetch, 12, &fetch_partitions(&[0], 1 << 20, 1 << 20, min_bytes, wait_ms))
                .unwrap();
        (started.elapsed(), sizes(&response)[0])
    };
    let (waited, bytes) = timed(&mut s, 1 << 16, 700);
    assert!(waited >= Duration::from_millis(650), "answered after {waited:?}, before max_wait_ms");
    assert!(bytes > 0, "with the bytes there were");
    let (waited, bytes) = timed(&mut s, 1, 8_000);
    assert!(waited < Duration::from_secs(6), "min_bytes reached: answered after {waited:?}");
    assert!(bytes > 0);
    // An append during the wait that brings min_bytes ends it.
    let mut producer = connect(addr);
    let waiter = std::thread::spawn(move || timed(&mut s, 1500, 8_000));
    std::thread::sleep(Duration::from_millis(300));
    produce_to(&mut producer, "k", 0, sized_batch(2, 900));
    let (waited, bytes) = waiter.join().unwrap();
    assert!(waited < Duration::from_secs(6), "woken by the append after {waited:?}");
    assert!(bytes >= 1500);
}

#[test]
fn describe_cluster_log_dirs_and_offset_for_leader_epoch_answer_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, mut s) = two_partitions_of_k(dir.path());
    produce_to(&mut s, "k", 0, sized_batch(3, 100));

    for version in 0..=2 {
        let response: DescribeClusterResponse = call(
            &mut s,
            ApiKey::DescribeCluster,
            version,
            &DescribeClusterRequest::default().with_endpoint_type(1),
        )
        .unwrap();
        assert_eq!((response.error_code, &*response.cluster_id, response.controller_id.0), (0, "annals", 0));
        let brokers: Vec<(i32, i32)> = response.brokers.iter().map(|b| (b.broker_id.0, b.port)).collect();
        assert_eq!(brokers, [(0, i32::from(addr.port()))], "v{version}");
    }
    let controllers = DescribeClusterRequest::default().with_endpoint_type(2);
    let response: DescribeClusterResponse = call(&mut s, ApiKey::DescribeCluster, 1, &controllers).unwrap();
    assert_eq!(response.error_code, ResponseError::UnsupportedEndpointType.code());

    for version in 1..=4 {
        let response: DescribeLogDirsResponse = call(
            &mut s,
            ApiKey::DescribeLogDirs,
            version,
            &DescribeLogDirsRequest::default().with_topics(None),
        )
        .unwrap();
        assert_eq!(response.results.len(), 1);
        let topics = &response.results[0].topics;
        assert_eq!(topics.len(), 1, "the one topic (not the internal one)");
        let sizes: Vec<(i32, i64)> =
            topics[0].partitions.iter().map(|p| (p.partition_index, p.partition_size)).collect();
        assert_eq!(sizes.len(), 2);
        assert!(sizes[0].1 > 300 && sizes[1] == (1, 0), "v{version}: {sizes:?}");
    }
    let only = describe_log_dirs_request::DescribableLogDirTopic::default()
        .with_topic(name("k"))
        .with_partitions(vec![1]);
    let missing = describe_log_dirs_request::DescribableLogDirTopic::default()
        .with_topic(name("nope"))
        .with_partitions(vec![0]);
    let request = DescribeLogDirsRequest::default().with_topics(Some(vec![only, missing]));
    let response: DescribeLogDirsResponse = call(&mut s, ApiKey::DescribeLogDirs, 4, &request).unwrap();
    let topics = &response.results[0].topics;
    assert_eq!(
        (topics.len(), topics[0].partitions.len(), topics[0].partitions[0].partition_index),
        (1, 1, 1)
    );

    let epoch = |partition: i32, current: i32, asked: i32| {
        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
            .with_partition(partition)
            .with_current_leader_epoch(current)
            .with_leader_epoch(asked)
    };
    let topic = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
        .with_topic(name("k"))
        .with_partitions(vec![
            epoch(0, -1, 0),
            epoch(0, 0, 0),
            epoch(0, 1, 0),
            epoch(0, -1, 5),
            epoch(1, -1, 0),
            epoch(9, -1, 0),
        ]);
    for version in 2..=4 {
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![topic.clone()]);
        let response: OffsetForLeaderEpochResponse =
            call(&mut s, ApiKey::OffsetForLeaderEpoch, version, &request).unwrap();
        let answers: Vec<(i16, i32, i64)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        assert_eq!(
            answers,
            [
                (0, 0, 3),
                (0, 0, 3),
                (ResponseError::UnknownLeaderEpoch.code(), -1, -1),
                (0, -1, -1),
                (0, -1, -1),
                (ResponseError::UnknownTopicOrPartition.code(), -1, -1),
            ],
            "v{version}"
        );
    }
}
