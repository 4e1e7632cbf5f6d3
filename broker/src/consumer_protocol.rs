//! The "consumer" embedded protocol: what a consumer puts in its JoinGroup
//! metadata (Kafka's `ConsumerProtocol`). The coordinator reads only the
//! subscribed topics, to tell which committed offsets are in use.

use std::collections::BTreeSet;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

/// The protocol type of Kafka's consumers.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";

/// The newest subscription version this crate decodes. A newer one only
/// adds fields at the end, so it is read as this one (as Kafka's
/// `ConsumerProtocol.deserializeSubscription` does).
const NEWEST: i16 = 3;

/// The topics in a member's subscription metadata: an `int16` version and
/// then the `ConsumerProtocolSubscription` of that version. `None` when the
/// bytes are not one (a client's metadata is not ours to trust).
pub(crate) fn subscribed_topics(metadata: &Bytes) -> Option<BTreeSet<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version.min(NEWEST)).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn metadata(version: i16, topics: &[&str]) -> Bytes {
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(topics.iter().map(|t| StrBytes::from_string(t.to_string())).collect());
        let mut out = bytes::BytesMut::new();
        out.put_i16(version);
        subscription.encode(&mut out, version.min(NEWEST)).unwrap();
        out.freeze()
    }

    #[test]
    fn the_topics_of_every_version_are_read_and_garbage_is_none() {
        for version in 0..=5 {
            let got = subscribed_topics(&metadata(version, &["a", "b"])).unwrap();
            assert_eq!(got, ["a", "b"].iter().map(|s| s.to_string()).collect());
        }
        assert_eq!(subscribed_topics(&Bytes::from_static(&[0])), None);
        assert_eq!(subscribed_topics(&Bytes::from_static(&[0xff, 0xff, 0, 0])), None);
        assert_eq!(subscribed_topics(&Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])), None);
    }
}
