//! A connection's pipeline: requests read ahead run their ordered steps
//! in arrival order (an idempotent producer's sequences stay in order),
//! their waits overlap (a long-polling fetch is woken by a produce sent
//! after it on the same connection), and responses come in request order.
//! With one request in flight (Kafka's way) the same fetch waits out its
//! `max_wait_ms`: the negative control.

use std::time::{Duration, Instant};

use annals_broker::BrokerConfig;
use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::common::*;
use crate::data_path::create_topic;

fn broker(dir: &std::path::Path, in_flight: usize) -> std::net::SocketAddr {
    start_with(BrokerConfig {
        dir: dir.to_path_buf(),
        max_in_flight_requests_per_connection: in_flight,
        ..BrokerConfig::default()
    })
}

/// Sends a long-polling fetch of the empty partition, an ApiVersions and a
/// produce of 3 records on one connection, without reading; returns the
/// responses' correlation ids, the records the fetch returned, and how
/// long the fetch took.
fn fetch_then_produce(in_flight: usize) -> (Vec<i32>, usize, Duration) {
    const MAX_WAIT_MS: i32 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let mut s = connect(broker(dir.path(), in_flight));
    create(&mut s, "p");
    let started = Instant::now();
    send_request_as(&mut s, 1, ApiKey::Fetch, 12, &fetch("p", 0).with_max_wait_ms(MAX_WAIT_MS));
    send_request_as(&mut s, 2, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    send_request_as(&mut s, 3, ApiKey::Produce, 9, &produce("p", batch(3)));
    let (first, fetched): (i32, FetchResponse) = read_response(&mut s, ApiKey::Fetch, 12);
    let waited = started.elapsed();
    let (second, _): (i32, ApiVersionsResponse) = read_response(&mut s, ApiKey::ApiVersions, 3);
    let (third, produced): (i32, ProduceResponse) = read_response(&mut s, ApiKey::Produce, 9);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let records = fetched.responses[0].partitions[0].records.as_ref().map_or(0, Bytes::len);
    (vec![first, second, third], records, waited)
}

#[test]
fn a_waiting_fetch_lets_the_requests_behind_it_run_and_answers_stay_in_order() {
    let (order, records, waited) = fetch_then_produce(16);
    assert_eq!(order, [1, 2, 3], "responses in request order");
    assert!(records > 0, "the fetch was woken by the produce sent after it");
    assert!(waited < Duration::from_millis(2_500), "woken before max_wait_ms: {waited:?}");

    // One request at a time: the produce is read only once the fetch has
    // waited out its max_wait_ms, empty.
    let (order, records, waited) = fetch_then_produce(1);
    assert_eq!(order, [1, 2, 3]);
    assert_eq!(records, 0, "nothing to fetch before the produce was read");
    assert!(waited >= Duration::from_millis(3_000), "{waited:?}");
}

/// An idempotent producer's batches, sent back to back without reading,
/// on a topic that fsyncs every append: each is appended in order (no
/// OUT_OF_ORDER_SEQUENCE) at the offsets its position gives, and the log
/// holds them in that order.
#[test]
fn pipelined_produces_append_in_arrival_order() {
    const REQUESTS: i32 = 40;
    const RECORDS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let mut s = connect(broker(dir.path(), 8));
    assert_eq!(create_topic(&mut s, "seq", &[("flush.messages", "1")]).0, 0);
    let init: InitProducerIdResponse = call(
        &mut s,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
    )
    .unwrap();
    assert_eq!(init.error_code, 0);
    for i in 0..REQUESTS {
        let meta = annals::BatchMeta {
            producer_id: init.producer_id.0,
            producer_epoch: init.producer_epoch,
            base_sequence: i * RECORDS as i32,
            ..annals::BatchMeta::default()
        };
        let records: Vec<annals::Record> =
            (0..RECORDS).map(|r| annals::Record::new(format!("{i}.{r}")).timestamp_ms(1_000)).collect();
        let mut bytes = Vec::new();
        let limits = annals::format::EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 1 << 20 };
        annals::format::encode_batch(&mut bytes, 0, meta, &records, 1_000, limits).unwrap();
        send_request_as(&mut s, 100 + i, ApiKey::Produce, 9, &produce("seq", bytes));
    }
    for i in 0..REQUESTS {
        let (correlation, response): (i32, ProduceResponse) = read_response(&mut s, ApiKey::Produce, 9);
        assert_eq!(correlation, 100 + i);
        let p = &response.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i64::from(i) * RECORDS as i64), "request {i}");
    }
    let mut values = Vec::new();
    let mut offset = 0;
    while offset < i64::from(REQUESTS) * RECORDS as i64 {
        let response: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch("seq", offset)).unwrap();
        let bytes = response.responses[0].partitions[0].records.clone().unwrap();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let header = annals::format::BatchHeader::parse(rest).unwrap();
            let (one, after) = rest.split_at(header.batch_len as usize);
            for record in annals::format::RecordIter::new(one, header) {
                values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
                offset = record.offset as i64 + 1;
            }
            rest = after;
        }
    }
    let expected: Vec<String> =
        (0..REQUESTS).flat_map(|i| (0..RECORDS).map(move |r| format!("{i}.{r}"))).collect();
    assert_eq!(values, expected);
}

/// A failed acks=0 produce closes the connection before the requests read
/// behind it run, also when another of its partitions waits for an fsync:
/// a good produce pipelined after it is never appended.
#[test]
fn a_failed_acks_0_produce_stops_the_requests_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let addr = broker(dir.path(), 16);
    let mut s = connect(addr);
    // The high watermark at the log end, whatever is fsynced.
    assert_eq!(create_topic(&mut s, "z", &[("write.caching", "true")]).0, 0);
    assert_eq!(create_topic(&mut s, "w", &[("flush.messages", "1")]).0, 0);
    let mut bad = batch(2);
    bad[30] ^= 0xff; // the CRC-32C no longer matches
    let mut failed = produce("z", bad).with_acks(0);
    // A partition that is appended and waits for its fsync.
    failed.topic_data.extend(produce("w", batch(1)).topic_data);
    send_request_as(&mut s, 1, ApiKey::Produce, 9, &failed);
    send_request_as(&mut s, 2, ApiKey::Produce, 9, &produce("z", batch(3)).with_acks(1));
    assert!(closed(&mut s), "no answer to the good produce: the connection closed");
    let mut t = connect(addr);
    let response: FetchResponse = call(&mut t, ApiKey::Fetch, 12, &fetch("z", 0)).unwrap();
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 0), "nothing appended after the failed acks=0");
}
