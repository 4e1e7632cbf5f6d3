//! The spliced frame against kafka-protocol's encoding of the whole
//! response, which is the oracle: the same bytes at every version served,
//! and the large record sets sent from the engine's own buffers.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;

use super::{fetch_frame, SPLICE_MIN_BYTES};

/// kafka-protocol's frame: size, header, body, in one buffer.
fn oracle(header: &ResponseHeader, response: &FetchResponse, version: i16) -> Vec<u8> {
    let mut out = BytesMut::new();
    header.encode(&mut out, ApiKey::Fetch.response_header_version(version)).unwrap();
    response.encode(&mut out, version).unwrap();
    let mut frame = (out.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&out);
    frame
}

fn records() -> impl Strategy<Value = Option<Bytes>> {
    prop_oneof![
        Just(None),
        (0usize..200).prop_map(|n| Some(Bytes::from(vec![7u8; n]))),
        (SPLICE_MIN_BYTES - 1..SPLICE_MIN_BYTES * 3)
            .prop_map(|n| Some(Bytes::from((0..n).map(|i| i as u8).collect::<Vec<u8>>()))),
    ]
}

fn partition(version: i16) -> impl Strategy<Value = PartitionData> {
    let aborted = prop::option::of(prop::collection::vec((any::<i64>(), any::<i64>()), 0..3));
    (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), aborted, any::<i32>(), records(), 0..8u8)
        .prop_map(move |(index, error, high_watermark, log_start, aborted, replica, records, tag)| {
            let aborted = aborted.map(|a| {
                a.into_iter()
                    .map(|(p, o)| {
                        AbortedTransaction::default().with_producer_id(p.into()).with_first_offset(o)
                    })
                    .collect()
            });
            let mut p = PartitionData::default()
                .with_partition_index(index)
                .with_error_code(error)
                .with_high_watermark(high_watermark)
                .with_last_stable_offset(high_watermark)
                .with_log_start_offset(log_start)
                .with_aborted_transactions(aborted)
                .with_records(records);
            if version >= 11 {
                p = p.with_preferred_read_replica(BrokerId(replica));
            }
            if tag == 0 {
                // A tagged field (v12): the whole response is encoded as one.
                p = p.with_current_leader(
                    LeaderIdAndEpoch::default().with_leader_id(BrokerId(1)).with_leader_epoch(3),
                );
            }
            p
        })
}

fn response() -> impl Strategy<Value = (i16, FetchResponse)> {
    (4i16..=12).prop_flat_map(|version| {
        let topic =
            ("[a-z._-]{0,12}", prop::collection::vec(partition(version), 0..4)).prop_map(|(name, ps)| {
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ps)
            });
        let session = if version >= 7 { any::<i32>().boxed() } else { Just(0).boxed() };
        (Just(version), prop::collection::vec(topic, 0..4), any::<i32>(), any::<i16>(), session).prop_map(
            |(version, topics, throttle, error, session)| {
                let mut r = FetchResponse::default().with_throttle_time_ms(throttle).with_responses(topics);
                if version >= 7 {
                    r = r.with_error_code(error).with_session_id(session);
                }
                (version, r)
            },
        )
    })
}

fn tagged(response: &FetchResponse) -> bool {
    response.responses.iter().flat_map(|t| &t.partitions).any(|p| p.current_leader != Default::default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_spliced_frame_is_kafka_protocols_encoding_and_sends_large_record_sets_uncopied(
        (version, response) in response(),
        correlation_id in any::<i32>(),
    ) {
        let header = ResponseHeader::default().with_correlation_id(correlation_id);
        let expected = oracle(&header, &response, version);
        let large: Vec<Bytes> = response
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.records.clone())
            .filter(|r| r.len() >= SPLICE_MIN_BYTES)
            .collect();
        let spliced = !(version >= 12 && tagged(&response));
        let header_version = ApiKey::Fetch.response_header_version(version);
        let mut frame = fetch_frame(&header, header_version, response, version).unwrap();
        // The engine's buffers themselves are pieces of the frame.
        let pieces: Vec<*const u8> = frame.pieces().map(|p| p.as_ptr()).collect();
        for records in &large {
            prop_assert_eq!(pieces.contains(&records.as_ptr()), spliced);
        }
        let sent = frame.copy_to_bytes(frame.remaining());
        prop_assert_eq!(&sent[..], &expected[..]);
    }
}
