//! Every served API at every served version, sent as a request that is
//! valid and then spoiled: each 16- and 32-bit field set to its largest
//! value and each byte replaced by the largest varint (so every array and
//! string count, whatever its width, is at its maximum once), and each bit
//! flipped in turn. The seeds are a populated request per API and real
//! clients' frames from the fuzz corpus. Each spoiled frame is served on a
//! connection of its own by one broker, which must not abort (an
//! allocation sized by a count off the wire), not panic, answer only with
//! bytes a client can decode (`common/replay.rs`), allocate no more than a
//! bounded amount per frame, and serve a valid request after it all.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use annals::StoreConfig;
use annals_broker::{Broker, BrokerConfig, SUPPORTED};
use bytes::{Bytes, BytesMut};
use common::replay;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{encode_request_header_into_buffer, StrBytes};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Most bytes one spoiled frame (at most 4 KiB) may make the broker hold
/// at once beyond what it held before: its buffers, a topic it creates
/// (the most measured, about 205 KiB), a response. A count that sized an
/// allocation would be gigabytes.
const PER_FRAME_BYTES_MAX: usize = 2 << 20;

/// Seeds longer than this get one bit flipped per byte, not eight (the
/// sweep stays within a minute or two in a debug build).
const EVERY_BIT_MAX: usize = 256;

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// Requests of `api` with their arrays populated where it has them (so the
/// counts nested in them are reached too): one for the versions that have
/// each field set, the other for those that have other fields instead.
fn samples(api: ApiKey) -> Vec<RequestKind> {
    match api {
        // v4 batches its keys; before v4, one key.
        ApiKey::LeaveGroup => vec![
            sample(api),
            RequestKind::LeaveGroup(
                LeaveGroupRequest::default().with_group_id(GroupId(s("g"))).with_member_id(s("m")),
            ),
        ],
        ApiKey::FindCoordinator => vec![
            sample(api),
            RequestKind::FindCoordinator(
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")]),
            ),
        ],
        _ => vec![sample(api)],
    }
}

/// A request of `api` with its arrays populated where it has them.
fn sample(api: ApiKey) -> RequestKind {
    match api {
        ApiKey::Produce => {
            let records = Bytes::from(common::batch(2));
            let partition = produce_request::PartitionProduceData::default().with_records(Some(records));
            let data = produce_request::TopicProduceData::default()
                .with_name(topic("t"))
                .with_partition_data(vec![partition]);
            RequestKind::Produce(
                ProduceRequest::default().with_acks(1).with_timeout_ms(1000).with_topic_data(vec![data]),
            )
        }
        ApiKey::Fetch => RequestKind::Fetch(common::fetch("t", 0).with_max_wait_ms(100)),
        ApiKey::ListOffsets => {
            let p = list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1);
            let t = list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![p]);
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![t]))
        }
        ApiKey::Metadata => {
            let t = metadata_request::MetadataRequestTopic::default().with_name(Some(topic("t")));
            RequestKind::Metadata(
                MetadataRequest::default().with_topics(Some(vec![t])).with_allow_auto_topic_creation(true),
            )
        }
        ApiKey::OffsetCommit => {
            let p = offset_commit_request::OffsetCommitRequestPartition::default()
                .with_committed_offset(1)
                .with_committed_metadata(Some(s("m")));
            let t = offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![p]);
            RequestKind::OffsetCommit(
                OffsetCommitRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![t]),
            )
        }
        ApiKey::OffsetFetch => {
            let t = offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(topic("t"))
                .with_partition_indexes(vec![0]);
            RequestKind::OffsetFetch(
                OffsetFetchRequest::default().with_group_id(GroupId(s("g"))).with_topics(Some(vec![t])),
            )
        }
        ApiKey::CreateTopics => {
            let c = create_topics_request::CreatableTopicConfig::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("1000")));
            let t = create_topics_request::CreatableTopic::default()
                .with_name(topic("c"))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(vec![c]);
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![t]))
        }
        ApiKey::DeleteRecords => {
            let p = delete_records_request::DeleteRecordsPartition::default().with_offset(0);
            let t = delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![p]);
            RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![t]))
        }
        ApiKey::DescribeConfigs => {
            let r = describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configuration_keys(Some(vec![s("retention.ms")]));
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![r]))
        }
        ApiKey::JoinGroup => {
            let p = join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"\0\x01\0\0\0\x01\0\x01t\0\0\0\0"));
            RequestKind::JoinGroup(
                JoinGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_session_timeout_ms(10_000)
                    .with_rebalance_timeout_ms(10_000)
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![p]),
            )
        }
        ApiKey::SyncGroup => {
            let a = sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s("m"))
                .with_assignment(Bytes::from_static(b"\0\x01"));
            RequestKind::SyncGroup(
                SyncGroupRequest::default().with_group_id(GroupId(s("g"))).with_assignments(vec![a]),
            )
        }
        ApiKey::DescribeGroups => {
            RequestKind::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]))
        }
        ApiKey::DeleteTopics => {
            RequestKind::DeleteTopics(DeleteTopicsRequest::default().with_topic_names(vec![topic("d")]))
        }
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::FindCoordinator => {
            RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(s("g")))
        }
        ApiKey::Heartbeat => {
            RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(GroupId(s("g"))))
        }
        ApiKey::LeaveGroup => {
            let m = leave_group_request::MemberIdentity::default().with_member_id(s("m"));
            RequestKind::LeaveGroup(
                LeaveGroupRequest::default().with_group_id(GroupId(s("g"))).with_members(vec![m]),
            )
        }
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::SaslHandshake => {
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("PLAIN")))
        }
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default()),
        ApiKey::DeleteGroups => {
            RequestKind::DeleteGroups(DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]))
        }
        ApiKey::OffsetDelete => {
            let p = offset_delete_request::OffsetDeleteRequestPartition::default();
            let t = offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![p]);
            RequestKind::OffsetDelete(
                OffsetDeleteRequest::default().with_group_id(GroupId(s("g"))).with_topics(vec![t]),
            )
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeLogDirs => {
            let t = describe_log_dirs_request::DescribableLogDirTopic::default()
                .with_topic(topic("t"))
                .with_partitions(vec![0]);
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(Some(vec![t])))
        }
        ApiKey::OffsetForLeaderEpoch => {
            let p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            let t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(topic("t"))
                .with_partitions(vec![p]);
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(vec![t]))
        }
        other => panic!("{other:?} is served but has no sample here: add one"),
    }
}

/// `api`'s request with every field at its default (arrays empty).
fn default_request(api: ApiKey) -> RequestKind {
    macro_rules! defaults {
        ($($name:ident),*) => {
            match api {
                $(ApiKey::$name => RequestKind::$name(Default::default()),)*
                other => panic!("{other:?} is served but has no default here: add it"),
            }
        };
    }
    defaults!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        ApiVersions,
        InitProducerId,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        FindCoordinator,
        OffsetCommit,
        OffsetFetch,
        JoinGroup,
        SyncGroup,
        Heartbeat,
        LeaveGroup,
        ListGroups,
        DescribeGroups,
        DescribeConfigs,
        SaslHandshake,
        SaslAuthenticate,
        DeleteGroups,
        OffsetDelete,
        DescribeCluster,
        DescribeLogDirs,
        OffsetForLeaderEpoch
    )
}

/// `request` as a frame body (header, then body) at `version`, or `None`
/// when a field it holds does not exist at that version.
fn encode(api: ApiKey, version: i16, request: &RequestKind) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(0x0102_0304)
        .with_client_id(Some(s("sweep")));
    encode_request_header_into_buffer(&mut buf, &header).ok()?;
    request.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

/// Frames (bodies) of the real clients' connections in the fuzz corpus.
fn corpus_frames() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/broker_protocol");
    let mut frames = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return frames };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let mut rest = &bytes[..];
        while rest.len() >= 4 {
            let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let Some(frame) = rest.get(4..4 + size) else { break };
            frames.push(frame.to_vec());
            rest = &rest[4 + size..];
        }
    }
    frames
}

/// Every spoiled variant of `body` (a frame without its size).
fn spoiled(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for at in 0..body.len() {
        for max in [&0x7fffu16.to_be_bytes()[..], &0x7fff_ffffu32.to_be_bytes()[..]] {
            if at + max.len() <= body.len() {
                let mut v = body.to_vec();
                v[at..at + max.len()].copy_from_slice(max);
                out.push(v);
            }
        }
        // The largest unsigned varint (a compact count) in place of this byte.
        let mut v = body[..at].to_vec();
        v.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        v.extend_from_slice(&body[at + 1..]);
        out.push(v);
        let bits: Vec<u8> = if body.len() <= EVERY_BIT_MAX { (0..8).collect() } else { vec![(at % 8) as u8] };
        for bit in bits {
            let mut v = body.to_vec();
            v[at] ^= 1 << bit;
            out.push(v);
        }
    }
    out
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The tests here measure one counter: one at a time.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_claimed_frame_size_costs_the_bytes_that_arrive_not_the_size_claimed() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        // Kafka's default socket.request.max.bytes, 100 MiB.
        let config = BrokerConfig {
            dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_log_interval: None,
            ..BrokerConfig::default()
        };
        let claimed = config.socket_request_max_bytes;
        let broker = Arc::new(Broker::open(config).await.unwrap());
        let before = LIVE.load(Ordering::Relaxed);
        let mut clients = Vec::new();
        for _ in 0..8 {
            let (mut client, server) = tokio::io::duplex(64 << 10);
            let serving = broker.clone();
            let peer = "127.0.0.1:1".parse().unwrap();
            tokio::spawn(async move { serving.serve_stream(server, peer).await });
            // A full-size frame claimed, 1 KiB of it sent, then nothing.
            tokio::io::AsyncWriteExt::write_all(&mut client, &(claimed as u32).to_be_bytes()).await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut client, &[0u8; 1024]).await.unwrap();
            clients.push(client);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let held = LIVE.load(Ordering::Relaxed).saturating_sub(before);
        println!(
            "8 connections each claiming a {claimed}-byte frame and sending 1 KiB: {} KiB held",
            held >> 10
        );
        assert!(held < 8 << 20, "{held} bytes held for 8 KiB received");
    });
}

#[test]
fn no_spoiled_frame_of_any_served_api_aborts_panics_or_answers_bytes_a_client_cannot_decode() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));

    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for &(api, min, max) in SUPPORTED {
        for version in min..=max {
            // A populated sample where one has only this version's fields
            // (LeaveGroup v0-2 names one member, v3 a list), and the
            // default (empty arrays), which every version encodes.
            seeds.extend(samples(api).iter().filter_map(|r| encode(api, version, r)));
            let default = encode(api, version, &default_request(api));
            seeds.push(default.unwrap_or_else(|| panic!("{api:?} v{version}: the default does not encode")));
        }
    }
    let from_clients = corpus_frames();
    seeds.extend(from_clients.iter().filter(|f| f.len() <= 4096).cloned());
    seeds.sort();
    seeds.dedup();

    // Virtual time: a long poll or a rebalance wait costs no real time.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let max_frame = 1 << 20;
    let (mut frames, mut worst) = (0usize, (0usize, Vec::new()));
    runtime.block_on(async {
        let config = BrokerConfig {
            dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            socket_request_max_bytes: max_frame,
            metrics_log_interval: None,
            store: StoreConfig { max_partitions: 8, ..StoreConfig::default() },
            ..BrokerConfig::default()
        };
        let broker = Broker::open(config).await.unwrap();
        for seed in &seeds {
            for body in std::iter::once(seed.clone()).chain(spoiled(seed)) {
                let input = framed(&body);
                let before = LIVE.load(Ordering::Relaxed);
                PEAK.store(before, Ordering::Relaxed);
                let responses = replay::serve(&broker, &input).await;
                let grown = PEAK.load(Ordering::Relaxed).saturating_sub(before);
                if grown > worst.0 {
                    worst = (grown, body.clone());
                }
                let sent = replay::requests(&input, max_frame);
                if let Err(fault) = replay::check(&sent, &responses, SUPPORTED) {
                    panic!("{fault}\nframe: {body:02x?}");
                }
                frames += 1;
            }
        }
        // Still serving: a valid Metadata is answered.
        let request = sample(ApiKey::Metadata);
        let input = framed(&encode(ApiKey::Metadata, 12, &request).unwrap());
        let responses = replay::serve(&broker, &input).await;
        assert_eq!(responses.len(), 1, "the broker stopped answering");
    });
    let peak_rss_kib = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches(" kB").trim().to_string()))
        .unwrap_or_default();
    println!(
        "{frames} frames from {} seeds ({} from real clients): 0 aborts, {} panics; \
         most held by one frame {} KiB (a {}-byte frame of API key {}); peak RSS {peak_rss_kib} KiB",
        seeds.len(),
        from_clients.len(),
        panics.load(Ordering::Relaxed),
        worst.0 >> 10,
        worst.1.len(),
        worst.1.get(..2).map_or(-1, |k| i16::from_be_bytes([k[0], k[1]])),
    );
    assert_eq!(panics.load(Ordering::Relaxed), 0, "the broker panicked on a spoiled frame");
    assert!(
        worst.0 <= PER_FRAME_BYTES_MAX,
        "a {}-byte frame made the broker hold {} bytes: {:02x?}",
        worst.1.len(),
        worst.0,
        worst.1
    );
}
