//! The group coordinator's state machine (Kafka's `GroupCoordinator` and
//! `GroupMetadata` for the classic protocol), with no wire types and no
//! timers of its own: requests come in as plain values with the time they
//! arrived, answers go out as values (or through a channel, for a join or
//! sync that waits for the rebalance), and whoever drives it calls
//! [`Coordinator::tick`] at [`Coordinator::next_deadline`] and every few
//! hundred milliseconds for expired sessions. The handlers in `mod.rs`
//! translate Kafka's messages; the tests below drive it with no socket.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use bytes::Bytes;
// tokio's clock type: the broker passes tokio's `Instant::now()`, paused
// and jumped ahead in the hostile-frame sweep and the fuzz target.
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Why a request is refused (each is one of Kafka's error codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GroupError {
    InvalidGroupId,
    InvalidSessionTimeout,
    InconsistentGroupProtocol,
    /// KIP-394: rejoin with this member id.
    MemberIdRequired(String),
    UnknownMemberId,
    IllegalGeneration,
    RebalanceInProgress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// A JoinGroup, as the coordinator needs it.
pub(crate) struct Join {
    pub group: String,
    /// Empty for a new member.
    pub member_id: String,
    pub client_id: String,
    pub protocol_type: String,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// The request's version hands out member ids first (v4+, KIP-394).
    pub member_id_first: bool,
}

/// What a member hears when the rebalance it joined completes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Joined {
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// Every member's metadata for the chosen protocol: the leader's only.
    pub members: Vec<(String, Bytes)>,
}

/// What a member's SyncGroup gets: its assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Assigned {
    pub assignment: Bytes,
    pub protocol_type: String,
    pub protocol: Option<String>,
}

/// A join or sync answered at once, or once the rebalance gets there (a
/// dropped sender means the rebalance went on without it).
pub(crate) enum Answer<T> {
    Now(Result<T, GroupError>),
    Later(oneshot::Receiver<Result<T, GroupError>>),
}

pub(crate) struct Member {
    pub client_id: String,
    pub client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_seen: Instant,
    joining: Option<oneshot::Sender<Result<Joined, GroupError>>>,
    syncing: Option<oneshot::Sender<Result<Assigned, GroupError>>>,
}

impl Member {
    /// Its metadata for `protocol` (empty when it has none).
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, b)| b.clone()).unwrap_or_default()
    }
}

pub(crate) struct Group {
    pub state: State,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: Option<String>,
    leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: HashSet<String>,
    /// The topics the members subscribed to, as of the current generation
    /// (Kafka's `subscribedTopics`): `None` while unknown (no generation
    /// yet, a protocol type other than "consumer", or metadata that does
    /// not parse as the consumer protocol).
    pub subscribed: Option<BTreeSet<String>>,
    /// When a PreparingRebalance completes, whoever has rejoined.
    deadline: Instant,
    started: Instant,
    /// The first rebalance of an empty group (it waits the initial delay).
    initial: bool,
}

impl Group {
    fn new(protocol_type: String, now: Instant) -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashSet::new(),
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

    /// Starts (or extends) a rebalance: its deadline is the longest
    /// rebalance timeout, or for an empty group's first one the initial
    /// delay, extended by each new member up to that timeout.
    fn prepare(&mut self, id: &str, initial_delay: Duration, now: Instant) {
        let longest = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO);
        if self.state != State::PreparingRebalance {
            self.initial = self.state == State::Empty;
            self.state = State::PreparingRebalance;
            self.started = now;
            self.deadline = if self.initial { now + initial_delay.min(longest) } else { now + longest };
            tracing::info!(group = id, generation = self.generation, "rebalance started");
        } else if self.initial {
            // A new member of an empty group's first rebalance: wait on.
            self.deadline = (now + initial_delay).min(self.started + longest).max(self.deadline);
        }
    }

    /// Ends a rebalance: members that did not rejoin go; the rest hear the
    /// new generation.
    fn complete_join(&mut self, id: &str, now: Instant) {
        self.members.retain(|_, m| m.joining.is_some());
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.protocol = None;
            self.subscriptions_changed();
            return;
        }
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().unwrap_or_default();
        // The leader's first protocol every member supports.
        let candidates: Vec<String> =
            self.members[&leader].protocols.iter().map(|(n, _)| n.clone()).collect();
        self.protocol = candidates
            .into_iter()
            .find(|p| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == p)));
        self.subscriptions_changed();
        let protocol = self.protocol.clone().unwrap_or_default();
        let listing: Vec<(String, Bytes)> =
            self.members.iter().map(|(mid, m)| (mid.clone(), m.metadata(&protocol))).collect();
        self.state = State::CompletingRebalance;
        tracing::info!(group = id, generation = self.generation, members = self.members.len(), leader = %leader, "rebalance: joined");
        for (mid, m) in self.members.iter_mut() {
            m.last_seen = now;
            m.assignment = Bytes::new();
            let joined = Joined {
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol: protocol.clone(),
                leader: leader.clone(),
                member_id: mid.clone(),
                members: if *mid == leader { listing.clone() } else { Vec::new() },
            };
            if let Some(tx) = m.joining.take() {
                let _ = tx.send(Ok(joined));
            }
        }
    }

    /// Whether every member has rejoined a rebalance that need not wait.
    fn all_rejoined(&self) -> bool {
        self.state == State::PreparingRebalance
            && !self.initial
            && self.members.values().all(|m| m.joining.is_some())
    }

    /// After members left or expired: a rebalance for the rest, or Empty.
    fn members_changed(&mut self, id: &str, initial_delay: Duration, now: Instant) {
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.generation += 1;
            self.subscriptions_changed();
            return;
        }
        if self.state == State::PreparingRebalance {
            if self.all_rejoined() {
                self.complete_join(id, now);
            }
            return;
        }
        for m in self.members.values_mut() {
            if let Some(tx) = m.syncing.take() {
                let _ = tx.send(Err(GroupError::RebalanceInProgress));
            }
        }
        self.prepare(id, initial_delay, now);
    }

    /// Whether `member` at `generation` may act now (a heartbeat, a commit).
    fn check(&mut self, member: &str, generation: i32, now: Instant) -> Result<(), GroupError> {
        let m = self.members.get_mut(member).ok_or(GroupError::UnknownMemberId)?;
        m.last_seen = now;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if self.state == State::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }
}

/// Every group this node coordinates.
pub(crate) struct Coordinator {
    pub groups: BTreeMap<String, Group>,
    /// Kafka's `group.initial.rebalance.delay.ms`.
    initial_delay: Duration,
}

impl Coordinator {
    pub(crate) fn new(initial_delay: Duration) -> Coordinator {
        Coordinator { groups: BTreeMap::new(), initial_delay }
    }

    /// JoinGroup (Kafka's `handleJoinGroup`). A new member's id is
    /// `{client_id}-{UUID v4}`, unique across restarts.
    pub(crate) fn join(&mut self, join: Join, now: Instant) -> Answer<Joined> {
        let Join { group: id, member_id, client_id, protocol_type, protocols, .. } = join;
        if id.is_empty() {
            return Answer::Now(Err(GroupError::InvalidGroupId));
        }
        // Kafka's group.min/max.session.timeout.ms defaults.
        if !(Duration::from_millis(6_000)..=Duration::from_millis(1_800_000)).contains(&join.session_timeout)
        {
            return Answer::Now(Err(GroupError::InvalidSessionTimeout));
        }
        let g = self.groups.entry(id.clone()).or_insert_with(|| Group::new(protocol_type.clone(), now));
        if g.state != State::Empty && g.protocol_type != protocol_type {
            return Answer::Now(Err(GroupError::InconsistentGroupProtocol));
        }
        g.protocol_type = protocol_type;
        let mut member_id = member_id;
        if member_id.is_empty() {
            member_id = format!("{client_id}-{}", uuid::Uuid::new_v4());
            if join.member_id_first {
                g.pending.insert(member_id.clone());
                return Answer::Now(Err(GroupError::MemberIdRequired(member_id)));
            }
        } else if !g.members.contains_key(&member_id) && !g.pending.remove(&member_id) {
            return Answer::Now(Err(GroupError::UnknownMemberId));
        }
        let (tx, rx) = oneshot::channel();
        let known = g.members.contains_key(&member_id);
        let member = g.members.entry(member_id).or_insert_with(|| Member {
            client_id,
            client_host: String::new(),
            session_timeout: join.session_timeout,
            rebalance_timeout: join.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_seen: now,
            joining: None,
            syncing: None,
        });
        member.protocols = protocols;
        member.session_timeout = join.session_timeout;
        member.rebalance_timeout = join.rebalance_timeout;
        member.last_seen = now;
        member.joining = Some(tx);
        if let Some(sync) = member.syncing.take() {
            let _ = sync.send(Err(GroupError::RebalanceInProgress));
        }
        if !known || g.state != State::PreparingRebalance {
            g.prepare(&id, self.initial_delay, now);
        }
        // Everyone is back: no need to wait for the deadline.
        if g.all_rejoined() {
            g.complete_join(&id, now);
        }
        Answer::Later(rx)
    }

    /// SyncGroup: the leader's assignments end the rebalance; every member
    /// hears its own.
    pub(crate) fn sync(
        &mut self,
        id: &str,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Answer<Assigned> {
        let Some(g) = self.groups.get_mut(id) else { return Answer::Now(Err(GroupError::UnknownMemberId)) };
        let Some(member) = g.members.get_mut(member_id) else {
            return Answer::Now(Err(GroupError::UnknownMemberId));
        };
        member.last_seen = now;
        if generation != g.generation {
            return Answer::Now(Err(GroupError::IllegalGeneration));
        }
        match g.state {
            State::PreparingRebalance | State::Empty => {
                return Answer::Now(Err(GroupError::RebalanceInProgress))
            }
            State::Stable => {
                return Answer::Now(Ok(Assigned {
                    assignment: member.assignment.clone(),
                    protocol_type: g.protocol_type.clone(),
                    protocol: g.protocol.clone(),
                }))
            }
            State::CompletingRebalance => {}
        }
        let (tx, rx) = oneshot::channel();
        member.syncing = Some(tx);
        if g.leader.as_deref() == Some(member_id) {
            for (to, assignment) in assignments {
                if let Some(m) = g.members.get_mut(&to) {
                    m.assignment = assignment;
                }
            }
            g.state = State::Stable;
            tracing::info!(group = %id, generation = g.generation, "rebalance: assigned");
            for m in g.members.values_mut() {
                if let Some(tx) = m.syncing.take() {
                    let _ = tx.send(Ok(Assigned {
                        assignment: m.assignment.clone(),
                        protocol_type: g.protocol_type.clone(),
                        protocol: g.protocol.clone(),
                    }));
                }
            }
        }
        Answer::Later(rx)
    }

    /// Heartbeat: the member is alive; an error tells it to rejoin.
    pub(crate) fn heartbeat(
        &mut self,
        id: &str,
        member: &str,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        self.groups.get_mut(id).ok_or(GroupError::UnknownMemberId)?.check(member, generation, now)
    }

    /// Whether an OffsetCommit at `generation` by `member` is taken: a
    /// standalone one (-1) only while the group has no members; a member's
    /// at the current generation while the group is Stable or preparing a
    /// rebalance (a member commits what it processed before it rejoins), as
    /// Kafka's coordinator takes them; REBALANCE_IN_PROGRESS while the
    /// assignment is being made.
    pub(crate) fn may_commit(
        &mut self,
        id: &str,
        member: &str,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        match self.groups.get_mut(id) {
            None if generation < 0 => Ok(()),
            Some(g) if generation < 0 && g.members.is_empty() => Ok(()),
            None => Err(GroupError::UnknownMemberId),
            Some(g) => match g.check(member, generation, now) {
                Err(GroupError::RebalanceInProgress) => Ok(()),
                Ok(()) if g.state == State::CompletingRebalance => Err(GroupError::RebalanceInProgress),
                other => other,
            },
        }
    }

    /// LeaveGroup: each member's result, or `None` for an unknown group.
    pub(crate) fn leave(
        &mut self,
        id: &str,
        leaving: &[String],
        now: Instant,
    ) -> Option<Vec<Result<(), GroupError>>> {
        let g = self.groups.get_mut(id)?;
        let results: Vec<_> = leaving
            .iter()
            .map(|m| g.members.remove(m).map(drop).ok_or(GroupError::UnknownMemberId))
            .collect();
        if results.iter().any(Result::is_ok) {
            tracing::info!(group = %id, members = ?leaving, "members left");
            g.members_changed(id, self.initial_delay, now);
        }
        Some(results)
    }

    /// The timers: completes rebalances whose deadline has passed, and
    /// removes members whose session timed out (a member waiting in a join
    /// is alive: the rebalance deadline decides).
    pub(crate) fn tick(&mut self, now: Instant) {
        for (id, g) in self.groups.iter_mut() {
            if g.state == State::PreparingRebalance && now >= g.deadline {
                g.complete_join(id, now);
            }
            let before = g.members.len();
            g.members.retain(|mid, m| {
                let alive = m.joining.is_some() || now.duration_since(m.last_seen) < m.session_timeout;
                if !alive {
                    tracing::info!(group = %id, member = %mid, "session expired");
                }
                alive
            });
            if g.members.len() != before {
                g.members_changed(id, self.initial_delay, now);
            }
        }
    }

    /// The earliest rebalance deadline, for the driver's next tick.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().filter(|g| g.state == State::PreparingRebalance).map(|g| g.deadline).min()
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
