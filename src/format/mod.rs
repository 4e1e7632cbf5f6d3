//! Pure encoding and decoding of records and batches: no file I/O here.
//!
//! The layouts are documented next to their code (`batch.rs`, `record.rs`)
//! and in `docs/FORMAT.md`.

pub(crate) mod batch;
pub(crate) mod compression;
mod encode;
pub(crate) mod error;
pub(crate) mod fetched;
pub mod kv;
pub(crate) mod record;
pub(crate) mod validate;
pub(crate) mod varint;

/// Test doubles only: rewrites a batch header's fields in place (to forge
/// hostile batches).
#[cfg(feature = "test-util")]
pub use batch::rewrite_header;
pub use batch::{
    check_batch, crc32c, encode_batch, inflated_records, peek_batch_len, set_base_offset, BatchHeader,
    BatchMeta, EncodeError, EncodeLimits, Inflater, RecordIter, BATCH_HEADER_BYTES,
};
pub use compression::{Codec, CodecError, Compression, MAX_INFLATED_BYTES};
pub use error::{DecodeError, DecodeErrorKind};
pub use fetched::{BatchIter, FetchedRecords};
pub use record::{Header, HeaderIter, Record, RecordView, StoredRecord};
pub use validate::{validate_client_batch, BatchProblem, ClientBatch, ClientRules, Correction};
pub use varint::get_varint;
