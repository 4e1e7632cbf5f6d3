//! The broker's whole request path, from the bytes a client sends to the
//! responses it gets: the input is one connection's client-to-broker byte
//! stream (size-prefixed request frames, as on the wire; the seeds are real
//! connections of kcat, kafka-python, confluent-kafka and sarama, captured
//! by `capture_frames.py`), served by a broker on a fresh store. Every
//! served API is reachable, stateful sequences too (join, then sync).
//!
//! What must hold: no panic (libFuzzer aborts on one, including inside the
//! handlers' blocking tasks), no abort (an allocation sized by a count off
//! the wire), no hang (tokio's clock is paused and jumps to the next timer,
//! so a long poll or a rebalance wait costs no real time), and responses
//! that answer the requests in order and decode as Kafka's
//! (`broker/tests/common/replay.rs`).
#![no_main]

#[path = "../../broker/tests/common/replay.rs"]
mod replay;

use annals::StoreConfig;
use annals_broker::{Broker, BrokerConfig, SUPPORTED};
use libfuzzer_sys::fuzz_target;

/// Frames past this close the connection unread (the broker's
/// `socket.request.max.bytes`, lowered from 100 MiB so that an input's
/// claimed size costs the fuzzer little).
const MAX_FRAME: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    // A tmpfs when there is one: every input gets a store of its own.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("a temp dir");
    runtime.block_on(async {
        let config = BrokerConfig {
            dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().expect("an address"),
            socket_request_max_bytes: MAX_FRAME,
            metrics_log_interval: None,
            // Few partitions per topic: a topic created by the input costs
            // little disk time.
            store: StoreConfig { max_partitions: 8, ..StoreConfig::default() },
            ..BrokerConfig::default()
        };
        let broker = Broker::open(config).await.expect("the broker opens on a fresh directory");
        let responses = replay::serve(&broker, data).await;
        let sent = replay::requests(data, MAX_FRAME);
        if let Err(fault) = replay::check(&sent, &responses, SUPPORTED) {
            panic!("{fault}");
        }
    });
});
