//! One client connection: length-prefixed frames (Kafka's `int32 size`
//! then the request), read and answered in order. A frame over
//! `socket.request.max.bytes` or a negative size closes the connection
//! before anything is allocated for it, as Kafka's `NetworkReceive` does,
//! and a frame's buffer grows with the bytes received, not the size claimed;
//! so does a request Kafka would not parse (unknown API key, unsupported
//! version of an API other than ApiVersions, malformed bytes).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::api::{self, Outcome};
use crate::Shared;

/// What a frame's buffer starts with before its bytes arrive; it grows
/// (doubling) with them, up to the frame's size.
const FRAME_PREALLOCATE_BYTES: usize = 64 << 10;

/// The connection's read buffer.
const READ_BUFFER_BYTES: usize = 8 << 10;

/// Serves `stream` until the client closes it, a limit closes it, or the
/// broker is `stopping`: then it returns before reading another request,
/// having answered the one it was serving.
pub(crate) async fn run<S: AsyncRead + AsyncWrite>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let (reader, mut writer) = tokio::io::split(stream);
    // A request's size and a small request arrive in one read; a frame
    // larger than the buffer is read past it, straight into its own.
    let mut reader = tokio::io::BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let config = &shared.config;
    loop {
        let mut size = [0u8; 4];
        let next = tokio::time::timeout(config.connections_max_idle, reader.read_exact(&mut size));
        let read = tokio::select! {
            read = next => read,
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
        // The frame's memory follows the bytes that arrive, not the size
        // claimed: a client that claims 100 MiB and sends 4 bytes costs
        // 64 KiB, not 100 MiB per connection (Kafka bounds the same with
        // its `queued.max.request.bytes` pool).
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
        match api::handle(&shared, bytes::Bytes::from(frame)).await {
            Outcome::Respond(frame) => {
                if writer.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(why) => {
                tracing::warn!(%peer, "{why}; closing the connection");
                return;
            }
        }
    }
}
