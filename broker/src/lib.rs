//! A Kafka-compatible broker on an annals store: one node, the leader of
//! every partition, whose every byte on disk is annals'. Requests and
//! responses are Kafka's wire protocol through the `kafka-protocol` crate
//! (generated from Kafka's message specs); produced batches go to the
//! engine's pass-through append as the client sent them, compressed or
//! not, and fetches hand out the stored bytes unchanged.
//!
//! Layers: `connection` (frames, limits, timeouts) → `api` (header,
//! versions, dispatch) → one module per API → the annals [`Store`].

mod admin;
mod api;
mod cluster;
mod configs;
mod connection;
mod consumer_protocol;
mod durable;
mod errors;
mod fetch;
mod fetch_frame;
mod frame;
mod groups;
mod list_offsets;
mod metadata;
mod offsets;
mod produce;
mod producer_ids;
mod sasl;
#[cfg(discard_sink)]
mod sink;
mod storage;
mod topic_configs;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use annals::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use api::SUPPORTED;

/// The broker's settings (Kafka's broker config names in the docs).
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Data directory (`log.dirs`).
    pub dir: PathBuf,
    /// The store's settings (file limits, partitions per topic, recovery
    /// threads); its default is annals'.
    pub store: StoreConfig,
    /// Address to listen on (`listeners`); port 0 picks a free one.
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to
    /// (`advertised.listeners`); `None`: the bound address.
    pub advertised: Option<(String, u16)>,
    /// Partitions of an auto-created topic (`num.partitions`).
    pub default_partitions: u32,
    /// Create topics on first use (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Largest request frame, refused before it is read
    /// (`socket.request.max.bytes`, 100 MiB).
    pub socket_request_max_bytes: usize,
    /// Most open connections (`max.connections`); more wait to be accepted.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed
    /// (`connections.max.idle.ms`, 10 minutes).
    pub connections_max_idle: Duration,
    /// A request frame that takes longer than this to arrive is dropped
    /// with its connection (a client that stalls mid-request).
    pub request_read_timeout: Duration,
    /// On shutdown, how long in-flight requests (a long-polling fetch, a
    /// join waiting for its rebalance) may take to finish before their
    /// connections are dropped and the store is closed anyway. Default 30 s
    /// (Kafka's controlled shutdown has its own timeouts; this is the
    /// request drain of one node).
    pub shutdown_drain_timeout: Duration,
    /// How long an empty group's first rebalance waits for more members
    /// (`group.initial.rebalance.delay.ms`, 3 s).
    pub group_initial_rebalance_delay: Duration,
    /// How often the store's metrics are logged (one `info` line of
    /// `annals::StoreMetrics`: partitions, offline ones, bytes, appends,
    /// fsyncs and their p99, open files, maintenance errors); `None`: never.
    /// Default 60 s (`--metrics-log-interval-ms`, 0 turns it off).
    pub metrics_log_interval: Option<Duration>,
    /// acks=-1 is answered only once its batches are fsynced (group
    /// commit), and the high watermark of such a topic follows the durable
    /// offset, so no consumer reads what a power cut can take back. The
    /// default for topics created without `write.caching` (Redpanda's
    /// topic config; `true` is Kafka's page-cache acknowledgement). Default
    /// `true` (`--acks-all-durable`).
    pub acks_all_durable: bool,
    /// On a topic whose high watermark follows the durable offset, the
    /// longest records may wait to be fsynced (and so be seen by
    /// consumers) when no acks=-1 produce fsyncs them: acks=1 and acks=0
    /// records (Redpanda's `raft_replica_max_flush_delay_ms`). Default
    /// 100 ms.
    pub max_flush_delay: Duration,
    /// Requests of one connection read ahead of the response being sent
    /// (see `connection.rs`): each one's ordered step (appends, commits)
    /// runs in arrival order, their waits (fsyncs, long polls) overlap,
    /// responses go in order. 1 is Kafka's one request at a time. Default
    /// 16 (`--max-in-flight-requests-per-connection`).
    pub max_in_flight_requests_per_connection: usize,
    /// Bytes of requests read and not yet answered, across connections
    /// (`queued.max.request.bytes`); a larger frame waits for all of it.
    /// Default 512 MiB.
    pub queued_max_request_bytes: usize,
}

impl BrokerConfig {
    /// What a topic created with no configs gets: annals' defaults, with
    /// the high watermark following the durable offset under
    /// [`BrokerConfig::acks_all_durable`].
    pub fn topic_defaults(&self) -> annals::LogConfig {
        annals::LogConfig { durable_high_watermark: self.acks_all_durable, ..annals::LogConfig::default() }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            dir: PathBuf::from("./annals-broker-data"),
            store: StoreConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised: None,
            default_partitions: 1,
            auto_create_topics: true,
            metrics_log_interval: Some(Duration::from_secs(60)),
            socket_request_max_bytes: 100 << 20,
            max_connections: 1024,
            connections_max_idle: Duration::from_secs(600),
            request_read_timeout: Duration::from_secs(30),
            shutdown_drain_timeout: Duration::from_secs(30),
            group_initial_rebalance_delay: groups::INITIAL_REBALANCE_DELAY,
            acks_all_durable: true,
            max_flush_delay: Duration::from_millis(100),
            max_in_flight_requests_per_connection: 16,
            queued_max_request_bytes: 512 << 20,
        }
    }
}

/// `host:port`, as `--advertised-listener` takes it.
///
/// # Errors
/// A message when it is not `host:port` with a port number.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?} is not host:port"))?;
    let port = port.parse().map_err(|_| format!("{s:?}: bad port"))?;
    if host.is_empty() {
        return Err(format!("{s:?}: no host"));
    }
    Ok((host.to_string(), port))
}

/// What every connection shares.
pub(crate) struct Shared {
    pub store: Store,
    pub producer_ids: producer_ids::ProducerIds,
    pub groups: Arc<groups::Groups>,
    /// Where Produce and Fetch go: the store (or the benchmark's sink).
    pub data: Box<dyn storage::DataPath>,
    pub config: BrokerConfig,
    /// This node as clients reach it.
    pub host: String,
    pub port: u16,
    /// What `queued_max_request_bytes` has left.
    pub request_bytes: connection::RequestBytes,
}

/// Partition `index` of `topic` (a lookup's result): the one lookup behind
/// every per-partition answer. Its error is the code Kafka answers with:
/// UNKNOWN_TOPIC_OR_PARTITION when either does not exist,
/// KAFKA_STORAGE_ERROR for a partition whose log is offline.
pub(crate) fn partition(topic: &annals::Result<annals::Topic>, index: i32) -> Result<annals::Partition, i16> {
    let unknown = kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code();
    let topic = topic.as_ref().map_err(errors::code)?;
    let index = u32::try_from(index).map_err(|_| unknown)?;
    topic.partition(index).map_err(|e| errors::code(&e))
}

/// The store's partitions as the data path.
#[cfg(not(discard_sink))]
fn data_path() -> Box<dyn storage::DataPath> {
    Box::new(storage::Stored)
}

/// The benchmark's build (`--cfg discard_sink`): produced records are
/// discarded.
#[cfg(discard_sink)]
fn data_path() -> Box<dyn storage::DataPath> {
    tracing::warn!("built with discard-sink: produced records are DISCARDED (benchmark only)");
    Box::new(sink::Sink::default())
}

/// The node's id in metadata (one node).
pub(crate) const NODE_ID: i32 = 0;

/// A broker, bound and with its store open.
pub struct Broker {
    shared: Arc<Shared>,
    listener: TcpListener,
    /// Raised once at shutdown: connections read no further request and
    /// answer the ones read.
    stopping: tokio::sync::watch::Sender<bool>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Broker {
    /// Opens the store in `config.dir/store` (annals') and the broker's
    /// own state beside it (`producer-ids`), and binds `config.listen`.
    ///
    /// # Errors
    /// The store's open error or the bind's.
    pub async fn open(config: BrokerConfig) -> Result<Broker, BoxError> {
        let (dir, store_config) = (config.dir.clone(), config.store.clone());
        let store = tokio::task::spawn_blocking(move || -> Result<_, BoxError> {
            std::fs::create_dir_all(&dir)?;
            Ok(Store::open(dir.join("store"), store_config)?)
        })
        .await??;
        Broker::with_store(config, store).await
    }

    /// A broker on `store`, already open (for instance on a simulated file
    /// system whose faults a test injects); `config.store` is not used.
    /// The broker's own state is kept in `config.dir`, as by
    /// [`Broker::open`], and `config.listen` is bound.
    ///
    /// # Errors
    /// The broker state's open error or the bind's.
    pub async fn with_store(config: BrokerConfig, store: Store) -> Result<Broker, BoxError> {
        let dir = config.dir.clone();
        let producer_ids = tokio::task::spawn_blocking(move || -> Result<_, BoxError> {
            std::fs::create_dir_all(&dir)?;
            Ok(producer_ids::ProducerIds::open(&dir)?)
        })
        .await??;
        let listener = TcpListener::bind(config.listen).await?;
        let bound = listener.local_addr()?;
        let (host, port) = config.advertised.clone().unwrap_or((bound.ip().to_string(), bound.port()));
        tracing::info!(dir = %config.dir.display(), listen = %bound, advertised = %format!("{host}:{port}"), "annals-broker started");
        let groups = Arc::new(groups::Groups::new(config.group_initial_rebalance_delay));
        let request_bytes = connection::RequestBytes::new(config.queued_max_request_bytes);
        let shared =
            Shared { store, producer_ids, groups, data: data_path(), config, host, port, request_bytes };
        let (stopping, _) = tokio::sync::watch::channel(false);
        Ok(Broker { shared: Arc::new(shared), listener, stopping })
    }

    /// Serves one connection on `stream`, any byte stream that carries
    /// Kafka's framing (the listener's TCP connections are served the same
    /// way: its requests pipelined, their waits spawned on the caller's
    /// runtime), until the client closes it, a limit does or the broker
    /// stops, and returns once the requests read are answered: how a fuzz
    /// target or a test drives the broker without sockets. `peer` names it
    /// in logs.
    pub async fn serve_stream<S>(&self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        connection::run(stream, peer, self.shared.clone(), self.stopping.subscribe()).await;
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// The socket's.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until `shutdown` completes; then stops accepting,
    /// lets each connection answer the requests it has read (up to
    /// [`BrokerConfig::shutdown_drain_timeout`]) and closes it, and closes
    /// the store cleanly.
    ///
    /// # Errors
    /// The store's close error.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), BoxError> {
        let slots = Arc::new(Semaphore::new(self.shared.config.max_connections));
        let mut tasks = tokio::task::JoinSet::new();
        let metrics = self.shared.config.metrics_log_interval.map(|every| {
            let store = self.shared.store.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await; // the first tick is immediate
                loop {
                    tick.tick().await;
                    log_metrics(&store.metrics());
                }
            })
        });
        let flusher = tokio::spawn(durable::flush_every(self.shared.clone()));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = slots.clone().acquire_owned() => p?,
            };
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = self.listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (shared, stopping) = (self.shared.clone(), self.stopping.subscribe());
                    tasks.spawn(async move {
                        connection::run(stream, peer, shared, stopping).await;
                        drop(permit);
                    });
                }
                // Too many open files and the like: log, back off, go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            while let Some(done) = tasks.try_join_next() {
                log_panic(done);
            }
        }
        // ORDER: stop accepting, drain the requests in flight, then close
        // the store, so that every answered append is in the clean close.
        drop(self.listener);
        tracing::info!(connections = tasks.len(), "shutting down: draining in-flight requests");
        let _ = self.stopping.send(true);
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                log_panic(done);
            }
        };
        if tokio::time::timeout(self.shared.config.shutdown_drain_timeout, drain).await.is_err() {
            tracing::warn!(
                connections = tasks.len(),
                "requests still in flight at the drain timeout; dropping them"
            );
            tasks.shutdown().await;
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        flusher.abort();
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || store.close()).await??;
        tracing::info!("store closed cleanly");
        Ok(())
    }
}

/// A connection task's end: a panic outside the blocking handlers (a
/// group handler's, say) ended its connection; log it.
fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "a connection's task panicked; its connection is closed");
        }
    }
}

/// One line of the store's metrics (see [`BrokerConfig::metrics_log_interval`]).
fn log_metrics(m: &annals::StoreMetrics) {
    tracing::info!(
        partitions = m.partitions,
        offline_partitions = m.offline_partitions,
        size_bytes = m.size_bytes,
        segments = m.segments,
        records_appended = m.records_appended,
        bytes_appended = m.bytes_appended,
        fsyncs = m.fsyncs,
        fsync_p99_us_below = m.fsync_latency.quantile_upper_us(0.99).unwrap_or(0),
        open_files = m.files.open_files,
        max_open_files = m.files.capacity,
        mappings = m.files.mappings,
        maintenance_errors = m.maintenance_errors,
        "store metrics"
    );
}
