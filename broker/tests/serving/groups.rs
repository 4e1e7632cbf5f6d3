//! The group coordinator over the wire: member ids that stay unique across
//! restarts, OffsetCommit as one append carrying each partition's leader
//! epoch and metadata, FindCoordinator's answer for a transactional id and
//! its batched (v4) form, DeleteGroups and OffsetDelete with Kafka's rules.

use crate::common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use annals_broker::{Broker, BrokerConfig};
use bytes::{Bytes, BytesMut};
use common::{call, connect, name};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

/// A broker that can be stopped (store closed cleanly) and started again on
/// the same directory.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(dir: &Path) -> Running {
        let config = BrokerConfig {
            dir: dir.to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            default_partitions: 3,
            group_initial_rebalance_delay: Duration::ZERO,
            shutdown_drain_timeout: Duration::from_secs(5),
            metrics_log_interval: None,
            ..BrokerConfig::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let broker = Broker::open(config).await.unwrap();
                tx.send(broker.local_addr().unwrap()).unwrap();
                broker
                    .serve(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Running { addr: rx.recv().unwrap(), stop: Some(stop), thread: Some(thread) }
    }

    /// Stops the broker and waits until its store is closed.
    fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Creates `topic` (three partitions, this broker's default).
fn create(s: &mut TcpStream, topic: &str) {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic)))
        ]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = call(s, ApiKey::Metadata, 12, &request).unwrap();
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].partitions.len(), 3);
}

fn text(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn group(x: &str) -> GroupId {
    GroupId(text(x))
}

/// Kafka's ConsumerProtocol subscription bytes: a version, then the
/// subscription at that version.
fn subscription(topics: &[&str]) -> Bytes {
    let subscription =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| text(t)).collect());
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&1i16.to_be_bytes());
    subscription.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

fn join_request(group_id: &str, member_id: &str, protocol_type: &str, metadata: Bytes) -> JoinGroupRequest {
    let protocol = join_group_request::JoinGroupRequestProtocol::default()
        .with_name(text("range"))
        .with_metadata(metadata);
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(text(member_id))
        .with_protocol_type(text(protocol_type))
        .with_protocols(vec![protocol])
}

/// The member id JoinGroup v5 hands a new member (KIP-394).
fn new_member_id(s: &mut TcpStream, group_id: &str) -> String {
    let request = join_request(group_id, "", "consumer", subscription(&["t"]));
    let response: JoinGroupResponse = call(s, ApiKey::JoinGroup, 5, &request).unwrap();
    assert_eq!(response.error_code, E::MemberIdRequired.code());
    response.member_id.to_string()
}

/// Joins `group_id` as its only member and syncs: (member id, generation).
fn join_and_sync(s: &mut TcpStream, group_id: &str, protocol_type: &str, metadata: Bytes) -> (String, i32) {
    let member = new_member_id(s, group_id);
    let request = join_request(group_id, &member, protocol_type, metadata);
    let joined: JoinGroupResponse = call(s, ApiKey::JoinGroup, 5, &request).unwrap();
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id);
    let assignment = sync_group_request::SyncGroupRequestAssignment::default()
        .with_member_id(text(&member))
        .with_assignment(Bytes::from_static(b"assignment"));
    let request = SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(joined.generation_id)
        .with_member_id(text(&member))
        .with_assignments(vec![assignment]);
    let synced: SyncGroupResponse = call(s, ApiKey::SyncGroup, 3, &request).unwrap();
    assert_eq!(synced.error_code, 0);
    (member, joined.generation_id)
}

/// One partition of an OffsetCommit: (topic, partition, offset, leader epoch, metadata).
type Commit<'a> = (&'a str, i32, i64, i32, Option<&'a str>);

fn commit_request(group_id: &str, member: &str, generation: i32, commits: &[Commit]) -> OffsetCommitRequest {
    let mut topics: Vec<offset_commit_request::OffsetCommitRequestTopic> = Vec::new();
    for &(topic, partition, offset, epoch, metadata) in commits {
        let p = offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(partition)
            .with_committed_offset(offset)
            .with_committed_leader_epoch(epoch)
            .with_committed_metadata(metadata.map(text));
        match topics.iter_mut().find(|t| *t.name.0 == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member))
        .with_topics(topics)
}

/// Each partition's answer, as (topic, partition, error code).
fn commit(s: &mut TcpStream, request: &OffsetCommitRequest) -> Vec<(String, i32, i16)> {
    let response: OffsetCommitResponse = call(s, ApiKey::OffsetCommit, 8, request).unwrap();
    let mut answers = Vec::new();
    for t in &response.topics {
        for p in &t.partitions {
            answers.push((t.name.0.to_string(), p.partition_index, p.error_code));
        }
    }
    answers
}

/// What OffsetFetch v7 answers: (offset, leader epoch, metadata) per asked
/// (topic, partition).
fn fetch_offsets(s: &mut TcpStream, group_id: &str, asked: &[(&str, i32)]) -> Vec<(i64, i32, String)> {
    let topics = asked
        .iter()
        .map(|&(t, p)| {
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(name(t))
                .with_partition_indexes(vec![p])
        })
        .collect();
    let request = OffsetFetchRequest::default().with_group_id(group(group_id)).with_topics(Some(topics));
    let response: OffsetFetchResponse = call(s, ApiKey::OffsetFetch, 7, &request).unwrap();
    assert_eq!(response.error_code, 0);
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            assert_eq!(p.error_code, 0);
            (p.committed_offset, p.committed_leader_epoch, short(p.metadata.as_deref().unwrap_or("?")))
        })
        .collect()
}

/// Metadata as an assertion shows it: a long run of one character as
/// `{char}×{count}`.
fn short(metadata: &str) -> String {
    match metadata.chars().next() {
        Some(c) if metadata.len() > 100 && metadata.chars().all(|x| x == c) => {
            format!("{c}×{}", metadata.chars().count())
        }
        _ => metadata.to_string(),
    }
}

/// (batches, records) in the consumer-offsets topic's segment files, read
/// off the disk: Kafka's batch layout, a base offset (8 bytes) and a length
/// (4, not counting those 12), the record count at byte 57.
fn offsets_topic_batches(dir: &Path) -> (usize, usize) {
    let (mut batches, mut records) = (0, 0);
    for entry in std::fs::read_dir(dir.join("store")).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_name().to_string_lossy().starts_with("__consumer_offsets-") {
            continue;
        }
        for file in std::fs::read_dir(entry.path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let mut at = 0;
            while let Some(header) = bytes.get(at..at + 61) {
                let length = i32::from_be_bytes(header[8..12].try_into().unwrap());
                if length <= 0 {
                    break;
                }
                batches += 1;
                records += i32::from_be_bytes(header[57..61].try_into().unwrap()) as usize;
                at += 12 + length as usize;
            }
        }
    }
    (batches, records)
}

#[test]
fn member_ids_differ_across_restarts_of_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let broker = Running::start(dir.path());
        let mut s = connect(broker.addr);
        ids.push(new_member_id(&mut s, "g"));
        ids.push(new_member_id(&mut s, "g"));
        drop(s);
        broker.stop();
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    for id in &ids {
        // Kafka's form: the client id, a dash, a UUID.
        let uuid = id.strip_prefix("protocol-test-").unwrap_or_else(|| panic!("{id}"));
        assert_eq!(uuid.len(), 36, "{id}");
        assert_eq!(uuid.matches('-').count(), 4, "{id}");
    }
}

#[test]
fn an_offset_commit_is_one_append_with_each_partitions_epoch_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    create(&mut s, "t");
    create(&mut s, "u");
    let before = offsets_topic_batches(dir.path());
    // Kafka's limit (offset.metadata.max.bytes, 4096) counts UTF-16 code
    // units, as Java's `String.length()`: 4096 "é" (8192 bytes) are taken.
    let too_large = "m".repeat(4097);
    let largest = "é".repeat(4096);
    let request = commit_request(
        "streams",
        "",
        -1,
        &[
            ("t", 0, 10, 7, Some("stream-time=1000")),
            ("t", 1, 11, 8, Some("stream-time=1001")),
            ("t", 2, 12, -1, None),
            ("u", 0, 5, 1, Some(&too_large)),
            ("u", 1, -5, 1, None),
            ("u", 2, 6, 2, Some(&largest)),
            ("u", 9, 1, 1, None),
            ("nope", 0, 1, 1, None),
        ],
    );
    let answers = commit(&mut s, &request);
    let code = |t: &str, p: i32| answers.iter().find(|a| a.0 == t && a.1 == p).unwrap().2;
    assert_eq!([code("t", 0), code("t", 1), code("t", 2), code("u", 2)], [0; 4], "{answers:?}");
    assert_eq!(code("u", 0), E::OffsetMetadataTooLarge.code());
    assert_eq!(code("u", 1), E::OffsetOutOfRange.code());
    assert_eq!(code("u", 9), E::UnknownTopicOrPartition.code());
    assert_eq!(code("nope", 0), E::UnknownTopicOrPartition.code());
    // One batch holds the four accepted partitions: one append, one fsync.
    let after = offsets_topic_batches(dir.path());
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 4), "{before:?} -> {after:?}");
    let asked = [("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1), ("u", 2)];
    let expected = vec![
        (10, 7, "stream-time=1000".to_string()),
        (11, 8, "stream-time=1001".to_string()),
        (12, -1, String::new()),
        (-1, -1, String::new()),
        (-1, -1, String::new()),
        (6, 2, "é×4096".to_string()),
    ];
    assert_eq!(fetch_offsets(&mut s, "streams", &asked), expected);
    // Durable: the same after a restart.
    drop(s);
    broker.stop();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    assert_eq!(fetch_offsets(&mut s, "streams", &asked), expected);
    // All of the group's offsets (no topics asked), with their metadata.
    let request = OffsetFetchRequest::default().with_group_id(group("streams")).with_topics(None);
    let response: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, 7, &request).unwrap();
    let all: Vec<(String, i32, i64, i32, String)> = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .map(|(t, p)| {
            let metadata = p.metadata.as_deref().unwrap_or("?").to_string();
            (t.name.0.to_string(), p.partition_index, p.committed_offset, p.committed_leader_epoch, metadata)
        })
        .filter(|a| a.4.len() < 100)
        .collect();
    assert_eq!(all[0], ("t".to_string(), 0, 10, 7, "stream-time=1000".to_string()));
    assert_eq!(all.len(), 3, "{all:?}");
    // Every version answers the metadata; the epoch from v5 (before, the
    // field is not on the wire and decodes as -1).
    for version in 1..=7 {
        let topics = vec![offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![0, 2])];
        let request = OffsetFetchRequest::default().with_group_id(group("streams")).with_topics(Some(topics));
        let response: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, version, &request).unwrap();
        let got: Vec<(i64, i32, String)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.as_deref().unwrap_or("?").to_string(),
                )
            })
            .collect();
        let epoch = if version >= 5 { 7 } else { -1 };
        assert_eq!(got, [(10, epoch, "stream-time=1000".to_string()), (12, -1, String::new())], "v{version}");
    }
    broker.stop();
}

#[test]
fn an_offset_commit_before_v6_has_no_epoch_and_a_refused_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    create(&mut s, "t");
    let request = commit_request("g", "", -1, &[("t", 0, 3, -1, Some("a")), ("t", 1, 4, -1, None)]);
    let response: OffsetCommitResponse = call(&mut s, ApiKey::OffsetCommit, 2, &request).unwrap();
    assert!(response.topics[0].partitions.iter().all(|p| p.error_code == 0), "{response:?}");
    assert_eq!(
        fetch_offsets(&mut s, "g", &[("t", 0), ("t", 1)]),
        [(3, -1, "a".into()), (4, -1, String::new())]
    );
    // A member of no generation of a live group: every partition refused,
    // nothing appended.
    let mut live = connect(broker.addr);
    join_and_sync(&mut live, "g", "consumer", subscription(&["t"]));
    let before = offsets_topic_batches(dir.path());
    let answers =
        commit(&mut s, &commit_request("g", "stranger", 1, &[("t", 0, 9, 1, None), ("t", 1, 9, 1, None)]));
    assert!(answers.iter().all(|a| a.2 == E::UnknownMemberId.code()), "{answers:?}");
    assert_eq!(offsets_topic_batches(dir.path()), before);
    assert_eq!(fetch_offsets(&mut s, "g", &[("t", 0)])[0].0, 3);
    // A group id no group can have.
    let answers = commit(&mut s, &commit_request("", "", -1, &[("t", 0, 1, 1, None)]));
    assert_eq!(answers[0].2, E::InvalidGroupId.code());
    drop((s, live));
    broker.stop();
}

#[test]
fn find_coordinator_refuses_transactional_ids_at_once_and_batches_group_keys() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    let fatal = E::TransactionalIdAuthorizationFailed.code();
    // v1 to v3: one key, the answer at the top level.
    for version in 1..=3 {
        let request = FindCoordinatorRequest::default().with_key(text("tx")).with_key_type(1);
        let response: FindCoordinatorResponse =
            call(&mut s, ApiKey::FindCoordinator, version, &request).unwrap();
        assert_eq!(response.error_code, fatal, "v{version}");
        assert_eq!((response.node_id.0, response.port), (-1, -1));
        let message = response.error_message.as_deref().unwrap_or("");
        assert!(message.contains("transactions are not served by annals-broker"), "{message}");
    }
    // v4 (KIP-699): each key its own answer.
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![text("g1"), text("g2")]);
    let response: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, 4, &request).unwrap();
    let found: Vec<(String, i32, i32, i16)> = response
        .coordinators
        .iter()
        .map(|c| (c.key.to_string(), c.node_id.0, c.port, c.error_code))
        .collect();
    let port = i32::from(broker.addr.port());
    assert_eq!(found, [("g1".to_string(), 0, port, 0), ("g2".to_string(), 0, port, 0)]);
    assert!(response.coordinators.iter().all(|c| *c.host == *broker.addr.ip().to_string()));
    let request = FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![text("tx")]);
    let response: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, 4, &request).unwrap();
    let c = &response.coordinators[0];
    assert_eq!((&*c.key, c.error_code, c.node_id.0, c.port), ("tx", fatal, -1, -1));
    assert!(c.error_message.as_deref().is_some_and(|m| m.contains("transactions")), "{c:?}");
    // A key type Kafka does not know: INVALID_REQUEST.
    let request = FindCoordinatorRequest::default().with_key_type(9).with_coordinator_keys(vec![text("x")]);
    let response: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, 4, &request).unwrap();
    assert_eq!(response.coordinators[0].error_code, E::InvalidRequest.code());
    // Groups at v0-v3, as before.
    for version in 0..=3 {
        let request = FindCoordinatorRequest::default().with_key(text("g"));
        let response: FindCoordinatorResponse =
            call(&mut s, ApiKey::FindCoordinator, version, &request).unwrap();
        assert_eq!((response.error_code, response.node_id.0, response.port), (0, 0, port), "v{version}");
    }
    broker.stop();
}

#[test]
fn delete_groups_removes_an_empty_groups_offsets_and_refuses_a_live_or_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    create(&mut s, "t");
    let answers =
        commit(&mut s, &commit_request("idle", "", -1, &[("t", 0, 3, 1, Some("x")), ("t", 1, 4, 1, None)]));
    assert!(answers.iter().all(|a| a.2 == 0), "{answers:?}");
    let mut live = connect(broker.addr);
    let (member, generation) = join_and_sync(&mut live, "busy", "consumer", subscription(&["t"]));
    let answers = commit(&mut live, &commit_request("busy", &member, generation, &[("t", 0, 9, 1, None)]));
    assert!(answers.iter().all(|a| a.2 == 0), "{answers:?}");
    for version in [0, 2] {
        // A name given twice is answered once, as Kafka does.
        let names = vec![group("idle"), group("missing"), group("busy"), group("idle")];
        let request = DeleteGroupsRequest::default().with_groups_names(names);
        let response: DeleteGroupsResponse = call(&mut s, ApiKey::DeleteGroups, version, &request).unwrap();
        let results: Vec<(String, i16)> =
            response.results.iter().map(|r| (r.group_id.0.to_string(), r.error_code)).collect();
        // The second time, "idle" is gone too.
        let idle = if version == 0 { 0 } else { E::GroupIdNotFound.code() };
        let expected =
            [("idle", idle), ("missing", E::GroupIdNotFound.code()), ("busy", E::NonEmptyGroup.code())];
        let expected: Vec<(String, i16)> = expected.iter().map(|&(g, c)| (g.to_string(), c)).collect();
        assert_eq!(results, expected, "v{version}");
    }
    assert_eq!(
        fetch_offsets(&mut s, "idle", &[("t", 0), ("t", 1)]),
        [(-1, -1, String::new()), (-1, -1, String::new())]
    );
    assert_eq!(fetch_offsets(&mut s, "busy", &[("t", 0)])[0].0, 9);
    let listed: ListGroupsResponse =
        call(&mut s, ApiKey::ListGroups, 2, &ListGroupsRequest::default()).unwrap();
    let listed: Vec<&str> = listed.groups.iter().map(|g| &*g.group_id.0).collect();
    assert_eq!(listed, ["busy"]);
    // Once its member left, the group goes, offsets and all.
    let leave = LeaveGroupRequest::default().with_group_id(group("busy")).with_member_id(text(&member));
    let left: LeaveGroupResponse = call(&mut live, ApiKey::LeaveGroup, 0, &leave).unwrap();
    assert_eq!(left.error_code, 0);
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group("busy")]);
    let response: DeleteGroupsResponse = call(&mut s, ApiKey::DeleteGroups, 2, &request).unwrap();
    assert_eq!(response.results[0].error_code, 0);
    let described: DescribeGroupsResponse = call(
        &mut s,
        ApiKey::DescribeGroups,
        4,
        &DescribeGroupsRequest::default().with_groups(vec![group("busy")]),
    )
    .unwrap();
    assert_eq!(&*described.groups[0].group_state, "Dead");
    // Durably: nothing comes back after a restart.
    drop((s, live));
    broker.stop();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    assert_eq!(fetch_offsets(&mut s, "idle", &[("t", 0)])[0].0, -1);
    assert_eq!(fetch_offsets(&mut s, "busy", &[("t", 0)])[0].0, -1);
    let listed: ListGroupsResponse =
        call(&mut s, ApiKey::ListGroups, 2, &ListGroupsRequest::default()).unwrap();
    assert!(listed.groups.is_empty(), "{listed:?}");
    broker.stop();
}

fn offset_delete(group_id: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteRequest {
    let topics = topics
        .iter()
        .map(|&(t, partitions)| {
            let partitions = partitions
                .iter()
                .map(|&p| {
                    offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(p)
                })
                .collect();
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(name(t))
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteRequest::default().with_group_id(group(group_id)).with_topics(topics)
}

/// (top-level error, [(topic, partition, error)]).
fn delete_offsets(s: &mut TcpStream, request: &OffsetDeleteRequest) -> (i16, Vec<(String, i32, i16)>) {
    let response: OffsetDeleteResponse = call(s, ApiKey::OffsetDelete, 0, request).unwrap();
    let partitions = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    (response.error_code, partitions)
}

#[test]
fn offset_delete_follows_kafkas_rules_and_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    create(&mut s, "t");
    create(&mut s, "u");
    // A live consumer group subscribed to "t", with offsets on t and u.
    let mut live = connect(broker.addr);
    let (member, generation) = join_and_sync(&mut live, "c", "consumer", subscription(&["t"]));
    let commits = [("t", 0, 5, 1, None), ("u", 0, 6, 1, None), ("u", 1, 7, 1, None)];
    assert!(commit(&mut live, &commit_request("c", &member, generation, &commits)).iter().all(|a| a.2 == 0));
    let (error, partitions) =
        delete_offsets(&mut s, &offset_delete("c", &[("t", &[0]), ("u", &[0, 9]), ("nope", &[0])]));
    assert_eq!(error, 0);
    let code = |t: &str, p: i32| partitions.iter().find(|a| a.0 == t && a.1 == p).map(|a| a.2);
    assert_eq!(code("t", 0), Some(E::GroupSubscribedToTopic.code()), "{partitions:?}");
    assert_eq!(code("u", 0), Some(0));
    assert_eq!(code("u", 9), Some(E::UnknownTopicOrPartition.code()));
    assert_eq!(code("nope", 0), Some(E::UnknownTopicOrPartition.code()));
    assert_eq!(
        fetch_offsets(&mut s, "c", &[("t", 0), ("u", 0), ("u", 1)]).iter().map(|f| f.0).collect::<Vec<_>>(),
        [5, -1, 7]
    );
    // An unknown group: GROUP_ID_NOT_FOUND for the whole request.
    let (error, partitions) = delete_offsets(&mut s, &offset_delete("nobody", &[("u", &[1])]));
    assert_eq!((error, partitions.len()), (E::GroupIdNotFound.code(), 0));
    // A live group of another protocol type: Kafka cannot tell what it
    // reads, so NON_EMPTY_GROUP.
    let mut connect_member = connect(broker.addr);
    join_and_sync(&mut connect_member, "k", "connect", Bytes::from_static(b"opaque"));
    let (error, _) = delete_offsets(&mut s, &offset_delete("k", &[("u", &[1])]));
    assert_eq!(error, E::NonEmptyGroup.code());
    // A consumer whose subscription does not parse: every topic counts as
    // subscribed.
    let mut odd = connect(broker.addr);
    let (odd_member, odd_generation) =
        join_and_sync(&mut odd, "odd", "consumer", Bytes::from_static(b"\x00"));
    assert!(commit(&mut odd, &commit_request("odd", &odd_member, odd_generation, &[("u", 0, 1, 1, None)]))
        .iter()
        .all(|a| a.2 == 0));
    let (error, partitions) = delete_offsets(&mut s, &offset_delete("odd", &[("u", &[0])]));
    assert_eq!((error, partitions), (0, vec![("u".to_string(), 0, E::GroupSubscribedToTopic.code())]));
    // Once the member left (Empty), "t" may go too.
    let leave = LeaveGroupRequest::default().with_group_id(group("c")).with_member_id(text(&member));
    let left: LeaveGroupResponse = call(&mut live, ApiKey::LeaveGroup, 0, &leave).unwrap();
    assert_eq!(left.error_code, 0);
    let (error, partitions) = delete_offsets(&mut s, &offset_delete("c", &[("t", &[0])]));
    assert_eq!((error, partitions), (0, vec![("t".to_string(), 0, 0)]));
    drop((s, live, connect_member, odd));
    broker.stop();
    let broker = Running::start(dir.path());
    let mut s = connect(broker.addr);
    let offsets = fetch_offsets(&mut s, "c", &[("t", 0), ("u", 0), ("u", 1)]);
    assert_eq!(offsets.iter().map(|f| f.0).collect::<Vec<_>>(), [-1, -1, 7]);
    // A group known by its offsets alone (after a restart) is Empty to
    // Kafka: its offsets may go.
    let (error, partitions) = delete_offsets(&mut s, &offset_delete("c", &[("u", &[1])]));
    assert_eq!((error, partitions), (0, vec![("u".to_string(), 1, 0)]));
    broker.stop();
}
