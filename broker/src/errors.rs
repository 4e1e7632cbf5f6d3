//! annals' errors as the codes a Kafka broker answers with.

use kafka_protocol::error::ResponseError as E;

/// The Kafka error code for an engine error on a partition.
pub(crate) fn code(e: &annals::Error) -> i16 {
    use annals::{AdminError as Admin, AppendError as Append, Error};
    match e {
        Error::Append(e) => match e {
            Append::InvalidBatch { problem, .. } => problem.kafka_error_code(),
            Append::OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber.code(),
            Append::ProducerFenced { .. } => E::InvalidProducerEpoch.code(),
            Append::StaleLeaderEpoch { .. } => E::FencedLeaderEpoch.code(),
            Append::InvalidTimestamp { .. } => E::InvalidTimestamp.code(),
            Append::UnkeyedRecordInCompactedLog { .. } => E::InvalidRecord.code(),
            Append::Encode(_) | Append::NonContiguousBatch { .. } => E::CorruptMessage.code(),
            _ => E::UnknownServerError.code(),
        },
        Error::Admin(e) => match e {
            Admin::UnknownTopic { .. } | Admin::PartitionOutOfRange { .. } => {
                E::UnknownTopicOrPartition.code()
            }
            Admin::InvalidTopicName { .. } => E::InvalidTopicException.code(),
            Admin::TopicExists { .. } => E::TopicAlreadyExists.code(),
            Admin::InvalidPartitionCount { .. } => E::InvalidPartitions.code(),
            Admin::PartitionOffline { .. } => E::KafkaStorageError.code(),
            _ => E::UnknownServerError.code(),
        },
        Error::OffsetOutOfRange { .. } => E::OffsetOutOfRange.code(),
        Error::Io { .. } | Error::DiskFull { .. } | Error::Poisoned { .. } | Error::Corruption { .. } => {
            E::KafkaStorageError.code()
        }
        Error::Closed => E::NotLeaderOrFollower.code(),
        _ => E::UnknownServerError.code(),
    }
}

/// `annals::Error` and its causes (each `Display` is its own level only)
/// as the message a response may carry.
pub(crate) fn message(e: &annals::Error) -> kafka_protocol::protocol::StrBytes {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    // Bounded by the chain's depth (a few levels).
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    kafka_protocol::protocol::StrBytes::from_string(text)
}
