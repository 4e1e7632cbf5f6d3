//! Why a byte range failed to decode as a batch.

use std::fmt;

/// A decoding failure, with the byte position (relative to the start of the
/// buffer handed to the decoder) where it was detected.
///
/// The segment layer turns this into [`crate::Error::Corruption`] with the
/// file path and the absolute file position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What is wrong.
    pub kind: DecodeErrorKind,
    /// Byte position in the decoded buffer.
    pub position: usize,
}

/// The kinds of [`DecodeError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The buffer ends before the structure it holds does.
    Truncated,
    /// The magic byte is not a format version this build reads.
    UnknownMagic(u8),
    /// The batch length field is below the header size or past the buffer.
    BadBatchLength(u32),
    /// The stored CRC does not match the bytes.
    CrcMismatch {
        /// CRC stored in the batch header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// The batch's codec bits name no codec Kafka has (5-7).
    UnsupportedCodec(u16),
    /// The compressed records did not inflate (damaged, past the cap, a
    /// form Kafka refuses, or a codec not in this build).
    Compression(super::compression::CodecError),
    /// A header field is outside its allowed range.
    BadHeader(&'static str),
    /// A record inside the batch is malformed.
    BadRecord(&'static str),
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, position: usize) -> Self {
        DecodeError { kind, position }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Truncated => write!(f, "truncated batch"),
            DecodeErrorKind::UnknownMagic(m) => write!(f, "unknown magic byte {m}"),
            DecodeErrorKind::BadBatchLength(n) => write!(f, "bad batch length {n}"),
            DecodeErrorKind::CrcMismatch { stored, computed } => {
                write!(f, "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            DecodeErrorKind::UnsupportedCodec(c) => write!(f, "unsupported compression codec {c}"),
            DecodeErrorKind::Compression(e) => write!(f, "compressed records: {e}"),
            DecodeErrorKind::BadHeader(what) => write!(f, "bad batch header: {what}"),
            DecodeErrorKind::BadRecord(what) => write!(f, "bad record: {what}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.position)
    }
}

impl std::error::Error for DecodeError {}
