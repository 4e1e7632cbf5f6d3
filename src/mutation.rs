//! Deliberate defects for the crate's own negative controls (feature
//! `mutation-testing`, never in a user's build): a crash test turns one on
//! for its thread and must then see the harness fail, which proves the
//! harness can catch that defect. Without the feature every check is a
//! constant `false`.

/// A defect a negative control may switch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mutation {
    /// Recovery ignores the synced extent and cuts at the first invalid
    /// batch past the recovery point, keeping nothing (the rule before the
    /// synced extent).
    CutAtFirstBadBatch,
    /// The synced extent is written without its fsync.
    UnsyncedExtent,
    /// A store's checkpoint table is not persisted when a log start moves
    /// inside a segment (`delete_records`) before segments are deleted.
    LazyLogStart,
}

#[cfg(feature = "mutation-testing")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Mutation>> = const { std::cell::Cell::new(None) };
}

/// Switches `mutation` on (or all off with `None`) for this thread.
#[cfg(feature = "mutation-testing")]
pub fn set(mutation: Option<Mutation>) {
    ACTIVE.with(|a| a.set(mutation));
}

/// Whether `mutation` is on for this thread.
pub(crate) fn on(mutation: Mutation) -> bool {
    #[cfg(feature = "mutation-testing")]
    {
        ACTIVE.with(|a| a.get()) == Some(mutation)
    }
    #[cfg(not(feature = "mutation-testing"))]
    {
        let _ = mutation;
        false
    }
}
