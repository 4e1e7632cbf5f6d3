//! One client connection: length-prefixed frames (Kafka's `int32 size`
//! then the request), answered in the order they arrived. A frame over
//! `socket.request.max.bytes` or a negative size closes the connection
//! before anything is allocated for it, as Kafka's `NetworkReceive` does,
//! and a frame's buffer grows with the bytes received, not the size claimed;
//! so does a request Kafka would not parse (unknown API key, unsupported
//! version of an API other than ApiVersions, malformed bytes).
//!
//! A pipeline, as Redpanda's two-phase handlers: the reader runs each
//! request's ordered step (`api::handle`: parsing, a produce's appends,
//! every other API whole) in arrival order, so idempotent sequences and a
//! commit before a fetch stay in order; the waits a request leaves (a
//! produce's fsyncs, a fetch's long poll) run as tasks of their own, so
//! they overlap the next requests; the writer sends the responses in
//! request order. The reader reads ahead at most
//! `max_in_flight_requests_per_connection` requests (1: Kafka's one at a
//! time) and holds each frame's bytes against the broker-wide
//! `queued.max.request.bytes` until its response is sent.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::api::{self, Handled, Outcome};
use crate::Shared;

/// What a frame's buffer starts with before its bytes arrive; it grows
/// (doubling) with them, up to the frame's size.
const FRAME_PREALLOCATE_BYTES: usize = 64 << 10;

/// The connection's read buffer.
const READ_BUFFER_BYTES: usize = 8 << 10;

/// A request read and past its ordered step, in arrival order, with what
/// it holds of the read-ahead bounds until its response is sent.
struct InFlight {
    response: Response,
    _slot: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

enum Response {
    Done(Outcome),
    Waiting(Wait),
}

/// A request's wait, running as a task of its own; aborted when dropped
/// (its connection closed or was dropped at the drain timeout), so no
/// wait outlives its connection.
struct Wait(JoinHandle<Outcome>);

impl Drop for Wait {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Most requests a connection reads ahead, whatever the config says.
const MAX_IN_FLIGHT: usize = 1024;

/// Serves `stream` until the client closes it, a limit closes it, or the
/// broker is `stopping`: then it reads no further request and returns once
/// the ones read are answered.
pub(crate) async fn run<S: AsyncRead + AsyncWrite>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let (reader, writer) = tokio::io::split(stream);
    let (queue, answers) = mpsc::unbounded_channel();
    let writing = write_responses(writer, answers, peer);
    tokio::pin!(writing);
    tokio::select! {
        // The reader is done (the client, a limit, shutdown): answer what
        // it read (its queue's sender is dropped with it).
        () = read_requests(reader, queue, peer, &shared, stopping) => writing.await,
        // The writer closed the connection: read nothing more.
        () = &mut writing => {}
    }
}

/// Reads requests and runs their ordered steps, in order, queueing each
/// for the writer; returns when the connection is to be read no further.
async fn read_requests<R: AsyncRead>(
    reader: R,
    queue: mpsc::UnboundedSender<InFlight>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    // A request's size and a small request arrive in one read; a frame
    // larger than the buffer is read past it, straight into its own.
    let reader = tokio::io::BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    tokio::pin!(reader);
    let config = &shared.config;
    let slots =
        Arc::new(Semaphore::new(config.max_in_flight_requests_per_connection.clamp(1, MAX_IN_FLIGHT)));
    loop {
        let next = async {
            // A slot first: the read-ahead bound holds before anything is read.
            let slot = slots.clone().acquire_owned().await.ok()?;
            let mut size = [0u8; 4];
            let read = tokio::time::timeout(config.connections_max_idle, reader.read_exact(&mut size)).await;
            Some((slot, read, size))
        };
        let (slot, read, size) = tokio::select! {
            next = next => match next {
                Some(next) => next,
                None => return,
            },
            _ = stopping.wait_for(|&stop| stop) => return,
        };
        match read {
            Err(_) => {
                tracing::info!(%peer, "closing an idle connection");
                return;
            }
            Ok(Err(_)) => return, // closed by the client
            Ok(Ok(_)) => {}
        }
        let size = i32::from_be_bytes(size);
        let Some(size) = usize::try_from(size).ok().filter(|&s| s <= config.socket_request_max_bytes) else {
            tracing::warn!(%peer, size, max = config.socket_request_max_bytes, "request frame size refused; closing");
            return;
        };
        // The budget is taken for the size claimed (as Kafka's memory pool
        // does): a client that claims much and sends little holds it until
        // `request_read_timeout` drops it.
        let bytes = tokio::select! {
            bytes = shared.request_bytes.acquire(size) => match bytes {
                Some(bytes) => bytes,
                None => return,
            },
            _ = stopping.wait_for(|&stop| stop) => return,
        };
        // The frame's memory follows the bytes that arrive, not the size
        // claimed: a client that claims 100 MiB and sends 4 bytes costs
        // 64 KiB of memory.
        let mut frame = Vec::with_capacity(size.min(FRAME_PREALLOCATE_BYTES));
        let mut body = (&mut reader).take(size as u64);
        match tokio::time::timeout(config.request_read_timeout, body.read_to_end(&mut frame)).await {
            Ok(Ok(n)) if n == size => {}
            Ok(_) => return, // closed by the client mid-frame, or failed
            Err(_) => {
                tracing::warn!(%peer, "request frame not received in time; closing");
                return;
            }
        }
        let (response, last) = match api::handle(shared, bytes::Bytes::from(frame)).await {
            Handled::Done(outcome) => {
                let last = matches!(outcome, Outcome::Close(_));
                (Response::Done(outcome), last)
            }
            Handled::Waiting(wait) => (Response::Waiting(Wait(tokio::spawn(wait))), false),
        };
        if queue.send(InFlight { response, _slot: slot, _bytes: bytes }).is_err() || last {
            return; // the writer closed the connection, or this request does
        }
    }
}

/// Sends each request's response in the order they were read, awaiting
/// its wait when it has one; returns when the reader is done and every
/// response is sent, or when the connection is to be closed (then the
/// waits not yet answered are aborted, as they are when the connection
/// is dropped).
async fn write_responses<W: AsyncWrite>(
    writer: W,
    mut answers: mpsc::UnboundedReceiver<InFlight>,
    peer: SocketAddr,
) {
    tokio::pin!(writer);
    while let Some(in_flight) = answers.recv().await {
        let outcome = match in_flight.response {
            Response::Done(outcome) => outcome,
            Response::Waiting(mut wait) => match (&mut wait.0).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Close(format!("a request's wait failed: {e}")),
            },
        };
        match outcome {
            Outcome::Respond(mut frame) => {
                // Vectored: a fetch's record sets are pieces of their own.
                if writer.write_all_buf(&mut frame).await.is_err() {
                    break;
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(why) => {
                tracing::warn!(%peer, "{why}; closing the connection");
                break;
            }
        }
    }
    // The waits still queued are aborted as they are dropped, with the
    // channel.
}

/// The broker-wide budget of request bytes read and not yet answered
/// (Kafka's `queued.max.request.bytes`): a frame's reader waits for its
/// size of it (all of it, for a frame larger than the budget) before it
/// reads the frame.
pub(crate) struct RequestBytes {
    budget: Arc<Semaphore>,
    capacity: usize,
}

impl RequestBytes {
    pub(crate) fn new(capacity: usize) -> Self {
        // Tokio's semaphores hold at most `MAX_PERMITS`, and a frame takes
        // at most `u32::MAX` at once.
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        RequestBytes { budget: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// `size` bytes of the budget, held until dropped; `None` only if the
    /// budget is closed (never, while the broker runs).
    async fn acquire(&self, size: usize) -> Option<OwnedSemaphorePermit> {
        let n = size.min(self.capacity) as u32;
        self.budget.clone().acquire_many_owned(n).await.ok()
    }
}
