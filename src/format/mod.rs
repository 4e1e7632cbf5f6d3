//! Pure encoding and decoding of records and batches: no file I/O here.
//!
//! The layouts are documented next to their code (`batch.rs`, `record.rs`)
//! and in `docs/FORMAT.md`.

pub mod batch;
pub mod compression;
mod encode;
pub mod error;
pub mod fetched;
pub mod kv;
pub mod record;
pub mod validate;
pub mod varint;

pub use batch::{
    check_batch, check_batch_with, encode_batch, peek_batch_len, BatchHeader, BatchMeta, EncodeError,
    EncodeLimits, Inflater, RecordIter, BATCH_HEADER_BYTES,
};
pub use compression::{Codec, CodecError, Compression};
pub use error::{DecodeError, DecodeErrorKind};
pub use fetched::{BatchIter, FetchedRecords};
pub use record::{Header, HeaderIter, Record, RecordView, StoredRecord};
pub use validate::{BatchProblem, ClientBatch, ClientRules, Correction};
