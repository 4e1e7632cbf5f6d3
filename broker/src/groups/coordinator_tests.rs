//! The coordinator's state machine driven with no socket: time passed in,
//! answers read off their channels.

use super::*;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn join(group: &str, member: &str, metadata: &'static str) -> Join {
    Join {
        group: group.into(),
        member_id: member.into(),
        client_id: "c".into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(metadata.as_bytes()))],
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        member_id_first: true,
    }
}

/// A new member's two-step join (KIP-394): its id, then its wait.
fn join_new(
    c: &mut Coordinator,
    group: &str,
    metadata: &'static str,
    now: Instant,
) -> (String, Wait<Joined>) {
    let Answer::Now(Err(GroupError::MemberIdRequired(id))) = c.join(join(group, "", metadata), now) else {
        panic!("a new member gets its id first")
    };
    assert!(id.starts_with("c-"), "{id}");
    let Answer::Later(rx) = c.join(join(group, &id, metadata), now) else { panic!("a join waits") };
    (id, Wait(rx))
}

struct Wait<T>(oneshot::Receiver<Result<T, GroupError>>);

impl<T> Wait<T> {
    fn answered(&mut self) -> Option<Result<T, GroupError>> {
        self.0.try_recv().ok()
    }
}

#[test]
fn a_rebalance_waits_the_initial_delay_then_every_member_hears_the_generation() {
    let t0 = Instant::now();
    let mut c = Coordinator::new(Duration::from_secs(3));
    let (a, mut wa) = join_new(&mut c, "g", "a-meta", t0);
    let (b, mut wb) = join_new(&mut c, "g", "b-meta", t0 + Duration::from_secs(1));
    c.tick(t0 + Duration::from_secs(2));
    assert!(wa.answered().is_none(), "the initial delay, extended by the second member, has not passed");
    // The delay counts from the last join (to the rebalance timeout).
    assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(4)));
    c.tick(t0 + Duration::from_secs(4));
    let ja = wa.answered().unwrap().unwrap();
    let jb = wb.answered().unwrap().unwrap();
    assert_eq!((ja.generation, jb.generation), (1, 1));
    assert_eq!(ja.leader, jb.leader);
    let (leader, follower) = if ja.leader == a { (&ja, &jb) } else { (&jb, &ja) };
    assert_eq!(leader.members.len(), 2, "the leader hears every member's metadata");
    assert!(follower.members.is_empty());
    assert_eq!(ja.protocol, "range");
    assert_eq!(c.groups["g"].state, State::CompletingRebalance);
    // The follower's sync waits for the leader's.
    let follower_id = if ja.leader == a { b.clone() } else { a.clone() };
    let Answer::Later(rx) = c.sync("g", &follower_id, 1, Vec::new(), t0 + Duration::from_secs(4)) else {
        panic!("the follower waits")
    };
    let mut follower_sync = Wait(rx);
    assert!(follower_sync.answered().is_none());
    let assignments =
        vec![(a.clone(), Bytes::from_static(b"to-a")), (b.clone(), Bytes::from_static(b"to-b"))];
    let Answer::Later(rx) = c.sync("g", &ja.leader, 1, assignments, t0 + Duration::from_secs(4)) else {
        panic!("the leader hears its own through the channel too")
    };
    let mut leader_sync = Wait(rx);
    assert_eq!(c.groups["g"].state, State::Stable);
    let mine = |id: &str| if id == a { &b"to-a"[..] } else { &b"to-b"[..] };
    assert_eq!(&*leader_sync.answered().unwrap().unwrap().assignment, mine(&ja.leader));
    assert_eq!(&*follower_sync.answered().unwrap().unwrap().assignment, mine(&follower_id));
}

#[test]
fn heartbeats_keep_members_and_a_silent_one_is_dropped_with_a_rebalance_for_the_rest() {
    let t0 = Instant::now();
    let mut c = Coordinator::new(Duration::ZERO);
    let (a, mut wa) = join_new(&mut c, "g", "m", t0);
    c.tick(t0);
    assert_eq!(wa.answered().unwrap().unwrap().generation, 1);
    let _ = c.sync("g", &a, 1, vec![(a.clone(), Bytes::new())], t0);
    // A second member joins a Stable group: a rebalance (not initial)
    // that completes as soon as the first member rejoins too.
    let (b, mut wb) = join_new(&mut c, "g", "m", t0);
    assert_eq!(c.heartbeat("g", &a, 1, t0), Err(GroupError::RebalanceInProgress));
    let Answer::Later(rx) = c.join(join("g", &a, "m"), t0) else { panic!() };
    let mut wa = Wait(rx);
    assert_eq!(wa.answered().unwrap().unwrap().generation, 2, "both back: no wait for the deadline");
    assert_eq!(wb.answered().unwrap().unwrap().generation, 2);
    let _ = c.sync("g", &a, 2, vec![], t0);
    let _ = c.sync("g", &b, 2, vec![], t0);
    assert_eq!(c.heartbeat("g", &a, 1, t0), Err(GroupError::IllegalGeneration));
    assert_eq!(c.heartbeat("g", "nobody", 2, t0), Err(GroupError::UnknownMemberId));
    // `a` heartbeats; `b` goes silent for its session timeout.
    let later = t0 + SESSION - Duration::from_secs(1);
    assert_eq!(c.heartbeat("g", &a, 2, later), Ok(()));
    c.tick(t0 + SESSION);
    assert!(!c.groups["g"].members.contains_key(&b), "b's session expired");
    assert!(c.groups["g"].members.contains_key(&a));
    assert_eq!(c.groups["g"].state, State::PreparingRebalance);
    assert_eq!(c.may_commit("g", &a, 2, t0 + SESSION), Ok(()), "a member commits while it rejoins");
    assert_eq!(c.leave("g", std::slice::from_ref(&a), t0 + SESSION), Some(vec![Ok(())]));
    assert_eq!(c.groups["g"].state, State::Empty);
    assert_eq!(c.may_commit("g", "", -1, t0 + SESSION), Ok(()), "a standalone commit on an empty group");
}

#[test]
fn joins_refuse_what_kafka_refuses() {
    let now = Instant::now();
    let mut c = Coordinator::new(Duration::ZERO);
    let refused = |c: &mut Coordinator, j: Join| match c.join(j, now) {
        Answer::Now(Err(e)) => e,
        _ => panic!("not refused"),
    };
    assert_eq!(refused(&mut c, join("", "", "m")), GroupError::InvalidGroupId);
    let short = Join { session_timeout: Duration::from_secs(1), ..join("g", "", "m") };
    assert_eq!(refused(&mut c, short), GroupError::InvalidSessionTimeout);
    assert_eq!(refused(&mut c, join("g", "made-up", "m")), GroupError::UnknownMemberId);
    let (_id, _wait) = join_new(&mut c, "g", "m", now);
    let other = Join { protocol_type: "connect".into(), ..join("g", "", "m") };
    assert_eq!(refused(&mut c, other), GroupError::InconsistentGroupProtocol);
}
