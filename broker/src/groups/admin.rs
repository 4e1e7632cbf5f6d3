//! The groups as the admin APIs see them: ListGroups and DescribeGroups
//! (live groups, and groups known by their committed offsets alone), and
//! what DeleteGroups and OffsetDelete may remove ([`remove_empty`],
//! [`offsets_in_use`]), from a group's state and the topics its members
//! subscribed to at the current generation.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::*;

use super::coordinator::State;
use super::s;
use crate::Shared;

pub(crate) fn list(shared: &Shared) -> ListGroupsResponse {
    let coordinator = shared.groups.lock();
    let all = &coordinator.groups;
    let mut listed: BTreeMap<String, (String, &'static str)> =
        all.iter().map(|(id, g)| (id.clone(), (g.protocol_type.clone(), g.state.name()))).collect();
    for id in shared.store.offsets().list_groups() {
        listed.entry(id).or_insert(("consumer".into(), State::Empty.name()));
    }
    let groups = listed
        .into_iter()
        .map(|(id, (t, _))| {
            list_groups_response::ListedGroup::default()
                .with_group_id(GroupId(s(&id)))
                .with_protocol_type(s(&t))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub(crate) fn describe(shared: &Shared, request: &DescribeGroupsRequest) -> DescribeGroupsResponse {
    let coordinator = shared.groups.lock();
    let all = &coordinator.groups;
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let described = describe_groups_response::DescribedGroup::default().with_group_id(id.clone());
            let Some(g) = all.get(&*id.0) else {
                return described.with_group_state(s("Dead"));
            };
            let protocol = g.protocol.clone().unwrap_or_default();
            let members = g
                .members
                .iter()
                .map(|(mid, m)| {
                    let metadata = m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default();
                    describe_groups_response::DescribedGroupMember::default()
                        .with_member_id(s(mid))
                        .with_client_id(s(&m.client_id))
                        .with_client_host(s(&m.client_host))
                        .with_member_metadata(metadata)
                        .with_member_assignment(m.assignment.clone())
                })
                .collect();
            described
                .with_group_state(s(g.state.name()))
                .with_protocol_type(s(&g.protocol_type))
                .with_protocol_data(s(&protocol))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Deletes group `id` unless it has members (Kafka's `validateDeleteGroup`:
/// only an Empty group may be deleted): NON_EMPTY_GROUP, or what
/// `delete_offsets` answers. `delete_offsets` is told whether the group is
/// in memory, deletes its committed offsets, and answers 0 or an error
/// code; the group is forgotten once it answered 0.
///
/// `delete_offsets` runs with the coordinator's lock held (one append, one
/// fsync, for a rare admin request), so that no member joins, and no
/// commit of a new generation lands, between the check and the deletion.
pub(crate) fn remove_empty(shared: &Shared, id: &str, delete_offsets: impl FnOnce(bool) -> i16) -> i16 {
    let mut coordinator = shared.groups.lock();
    let all = &mut coordinator.groups;
    let in_memory = match all.get(id) {
        Some(g) if g.state != State::Empty => return E::NonEmptyGroup.code(),
        Some(_) => true,
        None => false,
    };
    let code = delete_offsets(in_memory);
    if code == 0 {
        all.remove(id);
    }
    code
}

/// Which of a group's committed offsets its members are reading, for
/// OffsetDelete (Kafka's `validateOffsetDelete` and `isSubscribedToTopic`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InUse {
    /// Not in memory: known by its offsets alone, if at all.
    Absent,
    /// Members of a protocol type other than "consumer": the coordinator
    /// cannot tell what they read (Kafka's NON_EMPTY_GROUP).
    Opaque,
    /// The topics the members subscribe to (none for an Empty group);
    /// `None` when that is unknown, and then every topic counts.
    Topics(Option<BTreeSet<String>>),
}

/// Runs `f` on what group `id`'s members read (see [`InUse`]), with the
/// coordinator's lock held, as [`remove_empty`] does and for the same
/// reason: no member subscribes between the check and the deletion.
pub(crate) fn offsets_in_use<R>(shared: &Shared, id: &str, f: impl FnOnce(InUse) -> R) -> R {
    let coordinator = shared.groups.lock();
    let all = &coordinator.groups;
    let in_use = match all.get(id) {
        None => InUse::Absent,
        // No member reads anything (Kafka's `subscribedTopics` of an
        // Empty generation, or none at all for another protocol type).
        Some(g) if g.state == State::Empty => InUse::Topics(Some(BTreeSet::new())),
        Some(g) if g.protocol_type != crate::consumer_protocol::PROTOCOL_TYPE => InUse::Opaque,
        Some(g) => InUse::Topics(g.subscribed.clone()),
    };
    f(in_use)
}
