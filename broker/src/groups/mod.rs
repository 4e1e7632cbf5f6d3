//! The classic consumer-group protocol (Kafka's `GroupCoordinator` for
//! `protocol_type` "consumer" and any other): JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, ListGroups, DescribeGroups, and the generation
//! checks of OffsetCommit. Groups live in memory, as a coordinator's do
//! between restarts; committed offsets are annals' consumer offsets and
//! survive restarts.
//!
//! A rebalance: the first join moves the group to PreparingRebalance;
//! it completes when every member has rejoined, or at its deadline (the
//! largest rebalance timeout; an empty group waits
//! `group.initial.rebalance.delay.ms`, extended by each new member up to
//! the rebalance timeout), dropping members that did not. Then the
//! generation goes up, every joiner hears the leader and the protocol
//! (the leader also the members' metadata), and the group waits in
//! CompletingRebalance for the leader's SyncGroup with the assignment.
//! A member whose heartbeats stop for its session timeout is removed.
//!
//! What ListGroups and DescribeGroups show, and what DeleteGroups and
//! OffsetDelete may remove, is in `admin.rs`
//! ([`remove_empty`], [`offsets_in_use`]), from the group's state and the
//! topics its members subscribed to at the current generation.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;
// tokio's clock, not std's: the same in a running broker, and paused (and
// jumped ahead) in the hostile-frame sweep and the fuzz target.
use tokio::time::Instant;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::Shared;

mod admin;
pub(crate) use admin::{describe, list, offsets_in_use, remove_empty, InUse};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

struct Member {
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_seen: Instant,
    joining: Option<oneshot::Sender<JoinGroupResponse>>,
    syncing: Option<oneshot::Sender<SyncGroupResponse>>,
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: String,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: HashSet<String>,
    /// Bumped at each rebalance start: a timer for an older one is stale.
    rebalance: u64,
    /// The topics the members subscribed to, as of the current generation
    /// (Kafka's `subscribedTopics`): `None` while unknown (no generation
    /// yet, a protocol type other than "consumer", or metadata that does
    /// not parse as the consumer protocol).
    subscribed: Option<BTreeSet<String>>,
    deadline: Instant,
    started: Instant,
    initial: bool,
}

impl Group {
    fn new(protocol_type: String) -> Group {
        let now = Instant::now();
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashSet::new(),
            rebalance: 0,
            subscribed: None,
            deadline: now,
            started: now,
            initial: false,
        }
    }

    /// A new generation: what its members subscribe to (Kafka computes it
    /// in `initNextGeneration`, from the chosen protocol's metadata).
    fn subscriptions_changed(&mut self) {
        self.subscribed = if self.protocol_type != crate::consumer_protocol::PROTOCOL_TYPE {
            None
        } else if self.members.is_empty() {
            Some(BTreeSet::new())
        } else if let Some(protocol) = &self.protocol {
            let mut topics = BTreeSet::new();
            let every = self.members.values().all(|m| {
                let metadata = m.protocols.iter().find(|(n, _)| n == protocol).map(|(_, b)| b);
                metadata
                    .and_then(crate::consumer_protocol::subscribed_topics)
                    .map(|t| topics.extend(t))
                    .is_some()
            });
            every.then_some(topics)
        } else {
            None
        };
    }
}

/// Every group this node coordinates.
#[derive(Default)]
pub(crate) struct Groups {
    groups: Mutex<BTreeMap<String, Group>>,
}

/// Kafka's `group.initial.rebalance.delay.ms` default.
pub(crate) const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(3000);

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

impl Groups {
    /// Starts (or extends) a rebalance of `group` and arms its timer.
    fn prepare(self: &Arc<Self>, id: &str, g: &mut Group, shared: &Arc<Shared>) {
        let now = Instant::now();
        let longest = g.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO);
        if g.state != State::PreparingRebalance {
            g.initial = g.state == State::Empty;
            g.state = State::PreparingRebalance;
            g.started = now;
            g.rebalance += 1;
            g.deadline = if g.initial {
                now + shared.config.group_initial_rebalance_delay.min(longest)
            } else {
                now + longest
            };
            tracing::info!(group = id, generation = g.generation, "rebalance started");
        } else if g.initial {
            // A new member of an empty group's first rebalance: wait on.
            let delay = shared.config.group_initial_rebalance_delay;
            g.deadline = (now + delay).min(g.started + longest).max(g.deadline);
        }
        let (groups, id, seq, at) = (self.clone(), id.to_string(), g.rebalance, g.deadline);
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let mut all = groups.groups.lock();
            if let Some(g) = all.get_mut(&id) {
                if g.state == State::PreparingRebalance && g.rebalance == seq && Instant::now() >= g.deadline
                {
                    complete_join(&id, g);
                }
            }
        });
    }
}

/// Ends a rebalance: members that did not rejoin go; the rest hear the
/// new generation.
fn complete_join(id: &str, g: &mut Group) {
    g.members.retain(|_, m| m.joining.is_some());
    if g.members.is_empty() {
        g.state = State::Empty;
        g.generation += 1;
        g.leader = None;
        g.protocol = None;
        g.subscriptions_changed();
        return;
    }
    g.generation += 1;
    if g.leader.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
        g.leader = g.members.keys().next().cloned();
    }
    let leader = g.leader.clone().unwrap_or_default();
    // The leader's first protocol every member supports.
    let candidates: Vec<String> = g.members[&leader].protocols.iter().map(|(n, _)| n.clone()).collect();
    g.protocol =
        candidates.into_iter().find(|p| g.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == p)));
    g.subscriptions_changed();
    let protocol = g.protocol.clone().unwrap_or_default();
    let listing: Vec<JoinGroupResponseMember> = g
        .members
        .iter()
        .map(|(mid, m)| {
            let metadata =
                m.protocols.iter().find(|(n, _)| *n == protocol).map(|(_, b)| b.clone()).unwrap_or_default();
            JoinGroupResponseMember::default().with_member_id(s(mid)).with_metadata(metadata)
        })
        .collect();
    g.state = State::CompletingRebalance;
    tracing::info!(group = id, generation = g.generation, members = g.members.len(), leader = %leader, "rebalance: joined");
    for (mid, m) in g.members.iter_mut() {
        m.last_seen = Instant::now();
        m.assignment = Bytes::new();
        let members = if *mid == leader { listing.clone() } else { Vec::new() };
        let response = JoinGroupResponse::default()
            .with_generation_id(g.generation)
            .with_protocol_type(Some(s(&g.protocol_type)))
            .with_protocol_name(Some(s(&protocol)))
            .with_leader(s(&leader))
            .with_member_id(s(mid))
            .with_members(members);
        if let Some(tx) = m.joining.take() {
            let _ = tx.send(response);
        }
    }
}

fn join_error(code: i16, member: &str) -> JoinGroupResponse {
    JoinGroupResponse::default().with_error_code(code).with_generation_id(-1).with_member_id(s(member))
}

pub(crate) async fn join(
    shared: &Arc<Shared>,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
) -> JoinGroupResponse {
    let groups = shared.groups.clone();
    let id = request.group_id.0.to_string();
    if id.is_empty() {
        return join_error(E::InvalidGroupId.code(), "");
    }
    let session = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    if !(Duration::from_millis(6_000)..=Duration::from_millis(1_800_000)).contains(&session) {
        // Kafka's group.min/max.session.timeout.ms defaults.
        return join_error(E::InvalidSessionTimeout.code(), &request.member_id);
    }
    // v0 has no rebalance timeout: the session timeout serves.
    let rebalance = if version >= 1 {
        Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64)
    } else {
        session
    };
    let rx = {
        let mut all = groups.groups.lock();
        let g = all.entry(id.clone()).or_insert_with(|| Group::new(request.protocol_type.to_string()));
        if g.state != State::Empty && g.protocol_type != *request.protocol_type {
            return join_error(E::InconsistentGroupProtocol.code(), &request.member_id);
        }
        g.protocol_type = request.protocol_type.to_string();
        let mut member_id = request.member_id.to_string();
        if member_id.is_empty() {
            // Kafka's form, unique across restarts: a counter would hand a
            // new member the id of one from before the restart.
            member_id = format!("{client_id}-{}", uuid::Uuid::new_v4());
            if version >= 4 {
                // KIP-394: the client rejoins with the id.
                g.pending.insert(member_id.clone());
                return join_error(E::MemberIdRequired.code(), &member_id);
            }
        } else if !g.members.contains_key(&member_id) && !g.pending.remove(&member_id) {
            return join_error(E::UnknownMemberId.code(), &member_id);
        }
        let (tx, rx) = oneshot::channel();
        let protocols = request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect();
        let known = g.members.contains_key(&member_id);
        let member = g.members.entry(member_id.clone()).or_insert_with(|| Member {
            client_id: client_id.clone(),
            client_host: String::new(),
            session_timeout: session,
            rebalance_timeout: rebalance,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_seen: Instant::now(),
            joining: None,
            syncing: None,
        });
        member.protocols = protocols;
        member.session_timeout = session;
        member.rebalance_timeout = rebalance;
        member.last_seen = Instant::now();
        member.joining = Some(tx);
        if let Some(sync) = member.syncing.take() {
            let _ = sync.send(SyncGroupResponse::default().with_error_code(E::RebalanceInProgress.code()));
        }
        if !known || g.state != State::PreparingRebalance {
            groups.prepare(&id, g, shared);
        }
        // Everyone is back: no need to wait for the deadline.
        if g.state == State::PreparingRebalance
            && !g.initial
            && g.members.values().all(|m| m.joining.is_some())
        {
            complete_join(&id, g);
        }
        rx
    };
    rx.await.unwrap_or_else(|_| join_error(E::RebalanceInProgress.code(), ""))
}

pub(crate) async fn sync(shared: &Arc<Shared>, request: SyncGroupRequest) -> SyncGroupResponse {
    let error = |code: i16| SyncGroupResponse::default().with_error_code(code);
    let id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let rx = {
        let mut all = shared.groups.groups.lock();
        let Some(g) = all.get_mut(&id) else { return error(E::UnknownMemberId.code()) };
        let Some(member) = g.members.get_mut(&member_id) else { return error(E::UnknownMemberId.code()) };
        member.last_seen = Instant::now();
        if request.generation_id != g.generation {
            return error(E::IllegalGeneration.code());
        }
        match g.state {
            State::PreparingRebalance | State::Empty => return error(E::RebalanceInProgress.code()),
            State::Stable => {
                let assignment = member.assignment.clone();
                return SyncGroupResponse::default()
                    .with_assignment(assignment)
                    .with_protocol_type(Some(s(&g.protocol_type)))
                    .with_protocol_name(g.protocol.as_deref().map(s));
            }
            State::CompletingRebalance => {}
        }
        let (tx, rx) = oneshot::channel();
        member.syncing = Some(tx);
        if g.leader.as_deref() == Some(member_id.as_str()) {
            for a in &request.assignments {
                if let Some(m) = g.members.get_mut(&*a.member_id) {
                    m.assignment = a.assignment.clone();
                }
            }
            g.state = State::Stable;
            tracing::info!(group = %id, generation = g.generation, "rebalance: assigned");
            let (protocol_type, protocol) = (g.protocol_type.clone(), g.protocol.clone());
            for m in g.members.values_mut() {
                if let Some(tx) = m.syncing.take() {
                    let response = SyncGroupResponse::default()
                        .with_assignment(m.assignment.clone())
                        .with_protocol_type(Some(s(&protocol_type)))
                        .with_protocol_name(protocol.as_deref().map(s));
                    let _ = tx.send(response);
                }
            }
        }
        rx
    };
    rx.await.unwrap_or_else(|_| error(E::RebalanceInProgress.code()))
}

/// Whether `member` of `group` at `generation` may act now: 0, or the
/// error Kafka answers a heartbeat or commit with.
fn check(g: Option<&mut Group>, member: &str, generation: i32) -> i16 {
    let Some(g) = g else { return E::UnknownMemberId.code() };
    let Some(m) = g.members.get_mut(member) else { return E::UnknownMemberId.code() };
    m.last_seen = Instant::now();
    if generation != g.generation {
        return E::IllegalGeneration.code();
    }
    if g.state == State::PreparingRebalance {
        return E::RebalanceInProgress.code();
    }
    0
}

pub(crate) fn heartbeat(shared: &Shared, request: &HeartbeatRequest) -> HeartbeatResponse {
    let mut all = shared.groups.groups.lock();
    let code = check(all.get_mut(&*request.group_id.0), &request.member_id, request.generation_id);
    HeartbeatResponse::default().with_error_code(code)
}

/// Whether an OffsetCommit at `generation` by `member` is taken: a
/// standalone one (-1) only while the group has no members; a member's at
/// the current generation while the group is Stable or preparing a
/// rebalance (a member commits what it processed before it rejoins), as
/// Kafka's coordinator takes them; REBALANCE_IN_PROGRESS while the
/// assignment is being made.
pub(crate) fn may_commit(shared: &Shared, group: &str, member: &str, generation: i32) -> i16 {
    let mut all = shared.groups.groups.lock();
    match all.get_mut(group) {
        None if generation < 0 => 0,
        Some(g) if generation < 0 && g.members.is_empty() => 0,
        None => E::UnknownMemberId.code(),
        Some(g) => match check(Some(&mut *g), member, generation) {
            c if c == E::RebalanceInProgress.code() => 0,
            0 if g.state == State::CompletingRebalance => E::RebalanceInProgress.code(),
            c => c,
        },
    }
}

pub(crate) fn leave(shared: &Arc<Shared>, request: &LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let leaving: Vec<String> = if version >= 3 {
        request.members.iter().map(|m| m.member_id.to_string()).collect()
    } else {
        vec![request.member_id.to_string()]
    };
    let id = request.group_id.0.to_string();
    let mut all = shared.groups.groups.lock();
    let Some(g) = all.get_mut(&id) else {
        return LeaveGroupResponse::default().with_error_code(E::UnknownMemberId.code());
    };
    let mut results = Vec::new();
    let mut any = false;
    for m in &leaving {
        let code = match g.members.remove(m) {
            Some(_) => {
                any = true;
                0
            }
            None => E::UnknownMemberId.code(),
        };
        results
            .push(leave_group_response::MemberResponse::default().with_member_id(s(m)).with_error_code(code));
    }
    if any {
        tracing::info!(group = %id, members = ?leaving, "members left");
        members_changed(shared, &id, g);
    }
    let response = LeaveGroupResponse::default();
    if version >= 3 {
        response.with_members(results)
    } else {
        response.with_error_code(results.first().map_or(0, |r| r.error_code))
    }
}

/// After members left or expired: a rebalance for the rest, or Empty.
fn members_changed(shared: &Arc<Shared>, id: &str, g: &mut Group) {
    if g.members.is_empty() {
        g.state = State::Empty;
        g.leader = None;
        g.generation += 1;
        g.subscriptions_changed();
        return;
    }
    if g.state == State::PreparingRebalance {
        if !g.initial && g.members.values().all(|m| m.joining.is_some()) {
            complete_join(id, g);
        }
        return;
    }
    for m in g.members.values_mut() {
        if let Some(tx) = m.syncing.take() {
            let _ = tx.send(SyncGroupResponse::default().with_error_code(E::RebalanceInProgress.code()));
        }
    }
    shared.groups.clone().prepare(id, g, shared);
}

/// Removes members whose session timed out; run every few hundred ms.
pub(crate) fn expire(shared: &Arc<Shared>) {
    let mut all = shared.groups.groups.lock();
    let now = Instant::now();
    for (id, g) in all.iter_mut() {
        let before = g.members.len();
        // A member waiting in a join is alive; the rebalance deadline decides.
        g.members.retain(|mid, m| {
            let alive = m.joining.is_some() || now.duration_since(m.last_seen) < m.session_timeout;
            if !alive {
                tracing::info!(group = %id, member = %mid, "session expired");
            }
            alive
        });
        if g.members.len() != before {
            members_changed(shared, id, g);
        }
    }
}
