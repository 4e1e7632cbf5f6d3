//! How the broker stops (SIGTERM in the binary, a future here): it stops
//! accepting, lets each connection answer the requests it has read, then
//! closes the store cleanly.

use crate::common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use annals_broker::{Broker, BrokerConfig};
use common::*;
use kafka_protocol::messages::*;

/// A broker that stops when `stop` is sent; `done` reports `serve`'s result.
pub(super) fn start_stoppable(
    dir: &std::path::Path,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, std::sync::mpsc::Receiver<Result<(), String>>) {
    let config = BrokerConfig {
        dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_log_interval: None,
        ..BrokerConfig::default()
    };
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let broker = Broker::open(config).await.unwrap();
            addr_tx.send(broker.local_addr().unwrap()).unwrap();
            let result = broker
                .serve(async {
                    let _ = stopped.await;
                })
                .await;
            done_tx.send(result.map_err(|e| e.to_string())).unwrap();
        });
    });
    (addr_rx.recv().unwrap(), stop, done)
}

#[test]
fn shutdown_answers_the_request_in_flight_then_refuses_connections_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop, done) = start_stoppable(dir.path());
    let mut s = connect(addr);
    create(&mut s, "t");
    // A long poll at the log end: in flight until its max wait.
    let wait = fetch("t", 0).with_max_wait_ms(1_500);
    let started = Instant::now();
    send_request(&mut s, ApiKey::Fetch, 12, &wait);
    std::thread::sleep(Duration::from_millis(300));
    stop.send(()).unwrap();

    let answer = read_frame(&mut s);
    assert!(answer.is_some(), "the fetch in flight at shutdown was dropped, not answered");
    assert!(started.elapsed() >= Duration::from_millis(1_400), "the long poll was cut short");
    // After its answer the connection closes: no new requests are read.
    assert!(closed(&mut s), "a connection stayed open after shutdown");
    assert_eq!(done.recv_timeout(Duration::from_secs(30)).unwrap(), Ok(()));
    assert!(TcpStream::connect(addr).is_err(), "a connection was accepted after shutdown");

    // The store was closed cleanly: it reopens without recovery.
    let store = annals::Store::open(dir.path().join("store"), annals::StoreConfig::default()).unwrap();
    let recovered = store.topic("t").unwrap().partition(0).unwrap().recovery_report();
    assert!(recovered.clean_shutdown, "{recovered:?}");
}
