//! The spliced frame against kafka-protocol's encoding of the whole
//! response, which is the oracle: the same bytes at every version served,
//! and the large record sets sent from the engine's own buffers.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData, SnapshotId,
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
    (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), aborted, any::<i32>(), records(), tag())
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
            // A tagged field (v12): the whole response is encoded as one.
            let (which, a, b) = tag;
            match which {
                0 => {
                    p.current_leader =
                        LeaderIdAndEpoch::default().with_leader_id(BrokerId(a)).with_leader_epoch(b)
                }
                1 => p.diverging_epoch = EpochEndOffset::default().with_epoch(a).with_end_offset(b.into()),
                2 => p.snapshot_id = SnapshotId::default().with_epoch(a).with_end_offset(b.into()),
                3 => p = p.with_unknown_tagged_field(10 + (a & 7), Bytes::from(b.to_be_bytes().to_vec())),
                _ => {}
            }
            p
        })
}

/// Which tagged field to set (0 to 3; none for most), and the values to set
/// it to: small ones as often as any, since a zero byte at the end of a
/// tagged field is what the layout check alone could not tell.
fn tag() -> impl Strategy<Value = (u8, i32, i32)> {
    let value = || prop_oneof![-1..=1i32, any::<i32>()];
    (0..16u8, value(), value())
}

fn response() -> impl Strategy<Value = (i16, FetchResponse)> {
    (4i16..=12).prop_flat_map(|version| {
        let topic = ("[a-z._-]{0,12}", prop::collection::vec(partition(version), 0..4), 0..12u8).prop_map(
            |(name, ps, tag)| {
                let t = FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ps);
                if tag == 0 {
                    return t.with_unknown_tagged_field(7, Bytes::from_static(&[1, 0]));
                }
                t
            },
        );
        let session = if version >= 7 { any::<i32>().boxed() } else { Just(0).boxed() };
        let tag = 0..12u8;
        (Just(version), prop::collection::vec(topic, 0..4), any::<i32>(), any::<i16>(), session, tag)
            .prop_map(|(version, topics, throttle, error, session, tag)| {
                let mut r = FetchResponse::default().with_throttle_time_ms(throttle).with_responses(topics);
                if tag == 0 {
                    r = r.with_unknown_tagged_field(9, Bytes::from_static(&[0]));
                }
                if version >= 7 {
                    r = r.with_error_code(error).with_session_id(session);
                }
                (version, r)
            })
    })
}

/// Whether any tagged field is set, which v12 writes.
fn tagged(response: &FetchResponse) -> bool {
    let partition = |p: &PartitionData| {
        p.current_leader != Default::default()
            || p.diverging_epoch != Default::default()
            || p.snapshot_id != Default::default()
            || !p.unknown_tagged_fields.is_empty()
    };
    !response.unknown_tagged_fields.is_empty()
        || response
            .responses
            .iter()
            .any(|t| !t.unknown_tagged_fields.is_empty() || t.partitions.iter().any(partition))
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
        let mut frame = fetch_frame(correlation_id, version, response).unwrap();
        // The engine's buffers themselves are pieces of the frame.
        let pieces: Vec<*const u8> = frame.pieces().map(|p| p.as_ptr()).collect();
        for records in &large {
            prop_assert_eq!(pieces.contains(&records.as_ptr()), spliced);
        }
        let sent = frame.copy_to_bytes(frame.remaining());
        prop_assert_eq!(&sent[..], &expected[..]);
    }
}
