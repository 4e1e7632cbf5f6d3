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
//! The state machine is `coordinator.rs`, with no wire types and no
//! timers of its own; this file translates Kafka's messages to it and
//! drives its timers ([`Groups::drive`]). What ListGroups and
//! DescribeGroups show, and what DeleteGroups and OffsetDelete may
//! remove, is in `admin.rs` ([`remove_empty`], [`offsets_in_use`]), from
//! the group's state and the topics its members subscribed to at the
//! current generation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::{Mutex, MutexGuard};
use tokio::time::Instant;

use crate::Shared;

mod admin;
mod coordinator;
pub(crate) use admin::{describe, list, offsets_in_use, remove_empty, InUse};
use coordinator::{Answer, Coordinator, GroupError, Join};

/// Kafka's `group.initial.rebalance.delay.ms` default.
pub(crate) const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(3000);

/// How often expired sessions are looked for (between deadlines).
const SESSION_SWEEP: Duration = Duration::from_millis(250);

/// The node's coordinator and what drives its timers.
pub(crate) struct Groups {
    coordinator: Mutex<Coordinator>,
    /// Wakes the driver: a rebalance deadline may have come closer.
    wake: Arc<tokio::sync::Notify>,
    driving: AtomicBool,
}

impl Groups {
    pub(crate) fn new(initial_rebalance_delay: Duration) -> Groups {
        Groups {
            coordinator: Mutex::new(Coordinator::new(initial_rebalance_delay)),
            wake: Arc::default(),
            driving: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Coordinator> {
        self.coordinator.lock()
    }

    /// Tells the driver the deadlines changed, starting it on the current
    /// runtime the first time (a listener's broker, or one a test or the
    /// fuzz target serves streams with).
    fn changed(self: &Arc<Self>) {
        if !self.driving.swap(true, Ordering::AcqRel) {
            tokio::spawn(drive(Arc::downgrade(self), self.wake.clone()));
        }
        self.wake.notify_one();
    }
}

/// The coordinator's timers: a tick at each rebalance deadline, and every
/// [`SESSION_SWEEP`] for sessions that expired. Holds the groups only while
/// it ticks, and ends once the broker has dropped them.
async fn drive(groups: Weak<Groups>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let Some(next) = groups.upgrade().map(|g| {
            let mut c = g.lock();
            c.tick(Instant::now());
            c.next_deadline()
        }) else {
            return;
        };
        let sweep = Instant::now() + SESSION_SWEEP;
        let at = next.map_or(sweep, |d| d.min(sweep));
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = wake.notified() => {}
        }
    }
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// Kafka's code for a coordinator refusal.
fn code(e: &GroupError) -> i16 {
    match e {
        GroupError::InvalidGroupId => E::InvalidGroupId.code(),
        GroupError::InvalidSessionTimeout => E::InvalidSessionTimeout.code(),
        GroupError::InconsistentGroupProtocol => E::InconsistentGroupProtocol.code(),
        GroupError::MemberIdRequired(_) => E::MemberIdRequired.code(),
        GroupError::UnknownMemberId => E::UnknownMemberId.code(),
        GroupError::IllegalGeneration => E::IllegalGeneration.code(),
        GroupError::RebalanceInProgress => E::RebalanceInProgress.code(),
    }
}

fn result_code(r: Result<(), GroupError>) -> i16 {
    r.map_or_else(|e| code(&e), |()| 0)
}

pub(crate) async fn join(
    shared: &Arc<Shared>,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
) -> JoinGroupResponse {
    let session = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: the session timeout serves.
    let rebalance = if version >= 1 {
        Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64)
    } else {
        session
    };
    let join = Join {
        group: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        client_id,
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        session_timeout: session,
        rebalance_timeout: rebalance,
        // KIP-394: the client rejoins with the id.
        member_id_first: version >= 4,
    };
    let answer = shared.groups.lock().join(join, Instant::now());
    let joined = match answer {
        Answer::Now(r) => r,
        Answer::Later(rx) => {
            shared.groups.changed();
            rx.await.unwrap_or(Err(GroupError::RebalanceInProgress))
        }
    };
    match joined {
        Ok(j) => {
            let members = j
                .members
                .into_iter()
                .map(|(mid, metadata)| {
                    JoinGroupResponseMember::default().with_member_id(s(&mid)).with_metadata(metadata)
                })
                .collect();
            JoinGroupResponse::default()
                .with_generation_id(j.generation)
                .with_protocol_type(Some(s(&j.protocol_type)))
                .with_protocol_name(Some(s(&j.protocol)))
                .with_leader(s(&j.leader))
                .with_member_id(s(&j.member_id))
                .with_members(members)
        }
        Err(e) => {
            let member = match &e {
                GroupError::MemberIdRequired(id) => id.clone(),
                GroupError::InvalidGroupId | GroupError::RebalanceInProgress => String::new(),
                _ => request.member_id.to_string(),
            };
            JoinGroupResponse::default()
                .with_error_code(code(&e))
                .with_generation_id(-1)
                .with_member_id(s(&member))
        }
    }
}

pub(crate) async fn sync(shared: &Arc<Shared>, request: SyncGroupRequest) -> SyncGroupResponse {
    let assignments =
        request.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect();
    let answer = shared.groups.lock().sync(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
        assignments,
        Instant::now(),
    );
    let assigned = match answer {
        Answer::Now(r) => r,
        Answer::Later(rx) => rx.await.unwrap_or(Err(GroupError::RebalanceInProgress)),
    };
    match assigned {
        Ok(a) => SyncGroupResponse::default()
            .with_assignment(a.assignment)
            .with_protocol_type(Some(s(&a.protocol_type)))
            .with_protocol_name(a.protocol.as_deref().map(s)),
        Err(e) => SyncGroupResponse::default().with_error_code(code(&e)),
    }
}

pub(crate) fn heartbeat(shared: &Shared, request: &HeartbeatRequest) -> HeartbeatResponse {
    let r = shared.groups.lock().heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
        Instant::now(),
    );
    HeartbeatResponse::default().with_error_code(result_code(r))
}

/// Whether an OffsetCommit at `generation` by `member` is taken (see
/// [`Coordinator::may_commit`]): 0 or Kafka's error code.
pub(crate) fn may_commit(shared: &Shared, group: &str, member: &str, generation: i32) -> i16 {
    result_code(shared.groups.lock().may_commit(group, member, generation, Instant::now()))
}

pub(crate) fn leave(shared: &Arc<Shared>, request: &LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let leaving: Vec<String> = if version >= 3 {
        request.members.iter().map(|m| m.member_id.to_string()).collect()
    } else {
        vec![request.member_id.to_string()]
    };
    let results = shared.groups.lock().leave(&request.group_id.0, &leaving, Instant::now());
    let Some(results) = results else {
        return LeaveGroupResponse::default().with_error_code(E::UnknownMemberId.code());
    };
    shared.groups.changed();
    let results: Vec<_> = leaving
        .iter()
        .zip(results)
        .map(|(m, r)| {
            leave_group_response::MemberResponse::default()
                .with_member_id(s(m))
                .with_error_code(result_code(r))
        })
        .collect();
    let response = LeaveGroupResponse::default();
    if version >= 3 {
        response.with_members(results)
    } else {
        response.with_error_code(results.first().map_or(0, |r| r.error_code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver ends once the broker's groups are gone (it holds them
    /// only while it ticks), rather than ticking for the runtime's life.
    #[tokio::test(start_paused = true)]
    async fn the_driver_ends_with_its_groups() {
        let groups = Arc::new(Groups::new(INITIAL_REBALANCE_DELAY));
        let driver = tokio::spawn(drive(Arc::downgrade(&groups), groups.wake.clone()));
        tokio::time::sleep(SESSION_SWEEP * 3).await;
        assert!(!driver.is_finished(), "ticks while the groups live");
        drop(groups);
        tokio::time::timeout(SESSION_SWEEP * 2, driver).await.expect("the driver ended").unwrap();
    }
}
