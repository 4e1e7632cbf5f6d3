//! `annals-broker`: a one-node Kafka-compatible broker on an annals store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use annals_broker::{Broker, BrokerConfig};
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "A Kafka-compatible broker whose storage is annals")]
struct Args {
    /// Data directory (Kafka's `log.dirs`; created if missing).
    #[arg(long, default_value = "./annals-broker-data")]
    dir: PathBuf,
    /// Address to listen on (Kafka's `listeners`).
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// host:port clients are told to connect to (Kafka's
    /// `advertised.listeners`); default: the listen address.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Partitions of an auto-created topic (Kafka's `num.partitions`).
    #[arg(long, default_value_t = 1)]
    default_partitions: u32,
    /// Create a topic on its first use (Kafka's `auto.create.topics.enable`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Largest request frame (Kafka's `socket.request.max.bytes`).
    #[arg(long, default_value_t = 100 << 20)]
    socket_request_max_bytes: usize,
    /// Most connections at once (Kafka's `max.connections`).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// How long an empty group's first rebalance waits for more members
    /// (Kafka's `group.initial.rebalance.delay.ms`).
    #[arg(long, default_value_t = 3000)]
    group_initial_rebalance_delay_ms: u64,
    /// Log the store's metrics this often (milliseconds; 0: never).
    #[arg(long, default_value_t = 60_000)]
    metrics_log_interval_ms: u64,
    /// At SIGTERM or Ctrl-C, how long requests in flight may take to be
    /// answered before their connections are dropped (milliseconds).
    #[arg(long, default_value_t = 30_000)]
    shutdown_drain_timeout_ms: u64,
    /// Answer acks=-1 only once its batches are fsynced, with the high
    /// watermark following the durable offset: the default of topics
    /// created without `write.caching`. `false` gives Kafka's page-cache
    /// acknowledgement.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    acks_all_durable: bool,
    /// On such topics, the longest acks=1 and acks=0 records wait to be
    /// fsynced and seen by consumers (milliseconds; Redpanda's
    /// `raft_replica_max_flush_delay_ms`).
    #[arg(long, default_value_t = 100)]
    max_flush_delay_ms: u64,
    /// Requests of one connection read ahead while earlier ones wait
    /// (fsyncs, long polls); responses stay in order. 1: Kafka's one
    /// request at a time.
    #[arg(long, default_value_t = 16)]
    max_in_flight_requests_per_connection: usize,
    /// Bytes of requests read and not yet answered, across connections
    /// (Kafka's `queued.max.request.bytes`).
    #[arg(long, default_value_t = 512 << 20)]
    queued_max_request_bytes: usize,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let advertised = match args.advertised_listener.as_deref().map(annals_broker::parse_host_port) {
        Some(Ok(hp)) => Some(hp),
        Some(Err(e)) => {
            eprintln!("error: --advertised-listener: {e}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let config = BrokerConfig {
        dir: args.dir,
        listen: args.listen,
        advertised,
        default_partitions: args.default_partitions,
        auto_create_topics: args.auto_create_topics,
        socket_request_max_bytes: args.socket_request_max_bytes,
        max_connections: args.max_connections,
        group_initial_rebalance_delay: std::time::Duration::from_millis(
            args.group_initial_rebalance_delay_ms,
        ),
        metrics_log_interval: (args.metrics_log_interval_ms > 0)
            .then(|| std::time::Duration::from_millis(args.metrics_log_interval_ms)),
        shutdown_drain_timeout: std::time::Duration::from_millis(args.shutdown_drain_timeout_ms),
        acks_all_durable: args.acks_all_durable,
        max_flush_delay: std::time::Duration::from_millis(args.max_flush_delay_ms.max(1)),
        max_in_flight_requests_per_connection: args.max_in_flight_requests_per_connection.max(1),
        queued_max_request_bytes: args.queued_max_request_bytes,
        ..BrokerConfig::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let broker = Broker::open(config).await?;
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        };
        broker
            .serve(async {
                let _ = shutdown.await;
            })
            .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
