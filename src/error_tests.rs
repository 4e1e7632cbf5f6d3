//! Every error variant's message, checked against its source chain.

use std::error::Error as _;
use std::sync::Arc;

use super::*;
use crate::error::{AdminError, AppendError, OpenError};
use crate::format::{BatchProblem, DecodeErrorKind};

/// One of every variant. `covered` has no wildcard arm, so a new
/// variant does not compile until it is added here too.
fn every_variant() -> Vec<Error> {
    let path = PathBuf::from("/data/orders-0/00000000000000000000.log");
    let io = || io::Error::other("the device said no");
    let decode = DecodeError { kind: DecodeErrorKind::Truncated, position: 7 };
    let all = vec![
        Error::Io { op: "write", path: path.clone(), source: io() },
        Error::Corruption { path: path.clone(), position: 9, detail: Corruption::Batch(decode.clone()) },
        Error::OffsetOutOfRange { offset: 9, log_start_offset: 1, log_end_offset: 5 },
        Error::Append(AppendError::Encode(EncodeError::Empty)),
        Error::Closed,
        Error::Admin(AdminError::PartitionOffline {
            topic: "orders".into(),
            partition: 3,
            cause: Arc::new(Error::Io { op: "open", path: path.clone(), source: io() }),
        }),
        Error::Admin(AdminError::TopicIncomplete {
            topic: "orders".into(),
            created: 2,
            partitions: 4,
            cause: Arc::new(Error::DiskFull { path: path.clone() }),
        }),
        Error::Append(AppendError::UnkeyedRecordInCompactedLog { index: 2 }),
        Error::Admin(AdminError::NotCompacted),
        Error::Admin(AdminError::CleanerMemoryTooSmall { segment_base_offset: 0, cleaner_memory_bytes: 10 }),
        Error::Admin(AdminError::InvalidGroupName { group: String::new() }),
        Error::Poisoned {
            dir: path.clone(),
            cause: Arc::new(Error::Io { op: "fsync", path: path.clone(), source: io() }),
        },
        Error::DiskFull { path: path.clone() },
        Error::Open(OpenError::UnexpectedFile { path: path.clone() }),
        Error::Admin(AdminError::UnknownTopic { topic: "x".into() }),
        Error::Admin(AdminError::TopicExists { topic: "x".into() }),
        Error::Admin(AdminError::InvalidTopicName { topic: "..".into(), reason: "is . or .." }),
        Error::Admin(AdminError::PartitionOutOfRange { topic: "x".into(), partition: 4, partitions: 4 }),
        Error::Admin(AdminError::InvalidPartitionCount { partitions: 0, max: 10 }),
        Error::Open(OpenError::StoreLocked { path: path.clone() }),
        Error::Open(OpenError::LogLocked { dir: path.clone() }),
        Error::Open(OpenError::InvalidMetadata { path: path.clone(), reason: "bad checksum".into() }),
        Error::InvalidConfig { field: "segment_bytes", reason: "too small".into() },
        Error::Append(AppendError::StaleLeaderEpoch { epoch: 1, latest: 2 }),
        Error::Append(AppendError::NonContiguousBatch { expected: 5, found: 7 }),
        Error::Append(AppendError::OutOfOrderSequence { producer_id: 1, expected: 2, found: 4 }),
        Error::Append(AppendError::ProducerFenced { producer_id: 1, epoch: 0, current: 1 }),
        Error::Append(AppendError::InvalidBatch {
            batch: 1,
            position: 61,
            problem: BatchProblem::Corrupt(decode),
        }),
        Error::Append(AppendError::InvalidTimestamp { index: 0, timestamp_ms: 1, now_ms: 2 }),
        Error::Open(OpenError::PreKafkaFormat { path }),
    ];
    for e in &all {
        covered(e);
    }
    all
}

fn covered(e: &Error) {
    match e {
        Error::Io { .. }
        | Error::Corruption { .. }
        | Error::OffsetOutOfRange { .. }
        | Error::Append(AppendError::Encode(_))
        | Error::Closed
        | Error::Admin(AdminError::PartitionOffline { .. })
        | Error::Admin(AdminError::TopicIncomplete { .. })
        | Error::Append(AppendError::UnkeyedRecordInCompactedLog { .. })
        | Error::Admin(AdminError::NotCompacted)
        | Error::Admin(AdminError::CleanerMemoryTooSmall { .. })
        | Error::Admin(AdminError::InvalidGroupName { .. })
        | Error::Poisoned { .. }
        | Error::DiskFull { .. }
        | Error::Open(OpenError::UnexpectedFile { .. })
        | Error::Admin(AdminError::UnknownTopic { .. })
        | Error::Admin(AdminError::TopicExists { .. })
        | Error::Admin(AdminError::InvalidTopicName { .. })
        | Error::Admin(AdminError::PartitionOutOfRange { .. })
        | Error::Admin(AdminError::InvalidPartitionCount { .. })
        | Error::Open(OpenError::StoreLocked { .. })
        | Error::Open(OpenError::LogLocked { .. })
        | Error::Open(OpenError::InvalidMetadata { .. })
        | Error::InvalidConfig { .. }
        | Error::Append(AppendError::StaleLeaderEpoch { .. })
        | Error::Append(AppendError::NonContiguousBatch { .. })
        | Error::Append(AppendError::OutOfOrderSequence { .. })
        | Error::Append(AppendError::ProducerFenced { .. })
        | Error::Append(AppendError::InvalidBatch { .. })
        | Error::Append(AppendError::InvalidTimestamp { .. })
        | Error::Open(OpenError::PreKafkaFormat { .. }) => {}
    }
}

#[test]
fn display_never_repeats_the_source() {
    let mut with_source = 0;
    for e in every_variant() {
        let shown = e.to_string();
        assert!(!shown.is_empty(), "{e:?}");
        // Every level below, not just the first.
        let mut cause = e.source();
        while let Some(c) = cause {
            with_source += 1;
            let below = c.to_string();
            assert!(!shown.contains(&below), "{shown:?} repeats its source {below:?}");
            cause = c.source();
        }
    }
    assert_eq!(
        with_source, 6,
        "Io, PartitionOffline and Poisoned (each an Io and its OS error), TopicIncomplete"
    );
}

/// A copy is the same error: the same message and chain, an OS error's
/// code kept (what a poisoned partition reports of its first failure).
#[test]
fn a_copy_is_the_same_error() {
    for e in every_variant() {
        let copy = e.clone();
        assert_eq!(copy.to_string(), e.to_string());
        assert_eq!(copy.source().map(|s| s.to_string()), e.source().map(|s| s.to_string()));
        assert_eq!(format!("{copy:?}"), format!("{e:?}"));
    }
    let os = Error::Io { op: "write", path: PathBuf::from("/x"), source: io::Error::from_raw_os_error(28) };
    let Error::Io { source, .. } = os.clone() else { unreachable!() };
    assert_eq!(source.raw_os_error(), Some(28), "ENOSPC stays ENOSPC");
    assert_eq!(source.kind(), io::ErrorKind::StorageFull);
}
