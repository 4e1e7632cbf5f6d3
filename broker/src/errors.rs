//! annals' errors as the codes a Kafka broker answers with.

use kafka_protocol::error::ResponseError as E;

/// The Kafka error code for an engine error on a partition.
pub(crate) fn code(e: &annals::Error) -> i16 {
    use annals::Error::*;
    match e {
        InvalidBatch { problem, .. } => problem.kafka_error_code(),
        OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber.code(),
        ProducerFenced { .. } => E::InvalidProducerEpoch.code(),
        StaleLeaderEpoch { .. } => E::FencedLeaderEpoch.code(),
        OffsetOutOfRange { .. } => E::OffsetOutOfRange.code(),
        UnknownTopic { .. } | PartitionOutOfRange { .. } => E::UnknownTopicOrPartition.code(),
        InvalidTopicName { .. } => E::InvalidTopicException.code(),
        TopicExists { .. } => E::TopicAlreadyExists.code(),
        InvalidPartitionCount { .. } => E::InvalidPartitions.code(),
        InvalidTimestamp { .. } => E::InvalidTimestamp.code(),
        UnkeyedRecordInCompactedLog { .. } => E::InvalidRecord.code(),
        Encode(_) | NonContiguousBatch { .. } => E::CorruptMessage.code(),
        Io { .. } | DiskFull { .. } | Poisoned { .. } | Corruption { .. } | PartitionOffline { .. } => {
            E::KafkaStorageError.code()
        }
        Closed => E::NotLeaderOrFollower.code(),
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
