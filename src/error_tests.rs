//! Every error variant's message, checked against its source chain.

use std::error::Error as _;
use std::sync::Arc;

use super::*;
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
        Error::Encode(EncodeError::Empty),
        Error::Closed,
        Error::PartitionOffline {
            topic: "orders".into(),
            partition: 3,
            cause: Arc::new(Error::Io { op: "open", path: path.clone(), source: io() }),
        },
        Error::TopicIncomplete {
            topic: "orders".into(),
            created: 2,
            partitions: 4,
            cause: Arc::new(Error::DiskFull { path: path.clone() }),
        },
        Error::UnkeyedRecordInCompactedLog { index: 2 },
        Error::NotCompacted,
        Error::CleanerMemoryTooSmall { segment_base_offset: 0, cleaner_memory_bytes: 10 },
        Error::InvalidGroupName { group: String::new() },
        Error::Poisoned {
            dir: path.clone(),
            cause: Arc::new(Error::Io { op: "fsync", path: path.clone(), source: io() }),
        },
        Error::DiskFull { path: path.clone() },
        Error::UnexpectedFile { path: path.clone() },
        Error::UnknownTopic { topic: "x".into() },
        Error::TopicExists { topic: "x".into() },
        Error::InvalidTopicName { topic: "..".into(), reason: "is . or .." },
        Error::PartitionOutOfRange { topic: "x".into(), partition: 4, partitions: 4 },
        Error::InvalidPartitionCount { partitions: 0, max: 10 },
        Error::StoreLocked { path: path.clone() },
        Error::LogLocked { dir: path.clone() },
        Error::InvalidMetadata { path: path.clone(), reason: "bad checksum".into() },
        Error::InvalidConfig { field: "segment_bytes", reason: "too small".into() },
        Error::StaleLeaderEpoch { epoch: 1, latest: 2 },
        Error::NonContiguousBatch { expected: 5, found: 7 },
        Error::OutOfOrderSequence { producer_id: 1, expected: 2, found: 4 },
        Error::ProducerFenced { producer_id: 1, epoch: 0, current: 1 },
        Error::InvalidBatch { batch: 1, position: 61, problem: BatchProblem::Corrupt(decode) },
        Error::InvalidTimestamp { index: 0, timestamp_ms: 1, now_ms: 2 },
        Error::PreKafkaFormat { path },
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
        | Error::Encode(_)
        | Error::Closed
        | Error::PartitionOffline { .. }
        | Error::TopicIncomplete { .. }
        | Error::UnkeyedRecordInCompactedLog { .. }
        | Error::NotCompacted
        | Error::CleanerMemoryTooSmall { .. }
        | Error::InvalidGroupName { .. }
        | Error::Poisoned { .. }
        | Error::DiskFull { .. }
        | Error::UnexpectedFile { .. }
        | Error::UnknownTopic { .. }
        | Error::TopicExists { .. }
        | Error::InvalidTopicName { .. }
        | Error::PartitionOutOfRange { .. }
        | Error::InvalidPartitionCount { .. }
        | Error::StoreLocked { .. }
        | Error::LogLocked { .. }
        | Error::InvalidMetadata { .. }
        | Error::InvalidConfig { .. }
        | Error::StaleLeaderEpoch { .. }
        | Error::NonContiguousBatch { .. }
        | Error::OutOfOrderSequence { .. }
        | Error::ProducerFenced { .. }
        | Error::InvalidBatch { .. }
        | Error::InvalidTimestamp { .. }
        | Error::PreKafkaFormat { .. } => {}
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
