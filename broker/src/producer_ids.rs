//! InitProducerId: producer ids for idempotent producers, never handed out
//! twice, across restarts too. Ids are taken in blocks (Kafka's
//! `ProducerIdManager`): the end of the current block is written to
//! `producer-ids` (annals' `kv` text with a CRC, replaced atomically and
//! fsynced) before any id of it is given, so a restart starts past it.
//!
//! ```text
//! annals-broker-producer-ids 1
//! next_block=2000
//! crc32=...
//! ```

use std::path::{Path, PathBuf};

use crate::api::{blocking, Answer};
use annals::format::kv;
use annals::io::{write_file_atomic, StdFileSystem};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use parking_lot::Mutex;

const FILE: &str = "producer-ids";
const HEADER: &str = "annals-broker-producer-ids 1";
const BLOCK: i64 = 1000;

/// The ids of this run's current block.
pub(crate) struct ProducerIds {
    dir: PathBuf,
    next_and_end: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Starts at the block after the one the file records.
    pub(crate) fn open(dir: &Path) -> std::io::Result<ProducerIds> {
        let start = match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => {
                let bad =
                    |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{FILE}: {e}"));
                let pairs = kv::decode(&bytes, HEADER).map_err(bad)?;
                let (_, value) = pairs
                    .iter()
                    .find(|(k, _)| *k == "next_block")
                    .ok_or_else(|| bad("no next_block".into()))?;
                kv::number("next_block", value).map_err(bad)? as i64
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let ids = ProducerIds { dir: dir.to_path_buf(), next_and_end: Mutex::new((start, start)) };
        Ok(ids)
    }

    /// A new id, the block past it recorded first when it starts one.
    fn next(&self) -> std::io::Result<i64> {
        let mut ids = self.next_and_end.lock();
        if ids.0 == ids.1 {
            let end = ids.1 + BLOCK;
            let bytes = kv::encode(HEADER, &[("next_block", end.to_string())]);
            write_file_atomic(&StdFileSystem, &self.dir, FILE, &bytes)?;
            ids.1 = end;
        }
        ids.0 += 1;
        Ok(ids.0 - 1)
    }
}

pub(crate) async fn handle(
    shared: &std::sync::Arc<crate::Shared>,
    request: InitProducerIdRequest,
) -> Answer<InitProducerIdResponse> {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        // Transactions are not served yet.
        return Ok(response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()));
    }
    // KIP-360: a producer that has an id asks for its epoch to be bumped.
    if request.producer_id.0 >= 0 && request.producer_epoch >= 0 {
        let epoch = request.producer_epoch.checked_add(1).filter(|&e| e < i16::MAX);
        if let Some(epoch) = epoch {
            return Ok(response.with_producer_id(request.producer_id).with_producer_epoch(epoch));
        }
    }
    match blocking(shared, ApiKey::InitProducerId, |shared| shared.producer_ids.next()).await? {
        Ok(id) => Ok(response.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(e) => {
            tracing::error!(error = %e, "producer ids: the next block could not be recorded");
            Ok(response.with_error_code(ResponseError::KafkaStorageError.code()))
        }
    }
}
