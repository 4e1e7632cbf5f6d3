//! snappy (codec 2) in xerial's block framing, what Kafka's clients write
//! (`SnappyCompression` wraps xerial's `SnappyOutputStream`; kafka-python's
//! `snappy_encode(xerial_compatible=True)`):
//!
//! ```text
//! 0   8  magic   0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
//! 8   4  version i32 (1)        ignored on read, as xerial and
//! 12  4  compat  i32 (1)        kafka-python ignore them
//! 16  .. blocks: compressed length i32 (big-endian), then one raw snappy
//!        block of at most 32 KiB of input
//! ```
//!
//! A stream without the magic is read as one raw snappy block, as
//! xerial's `SnappyInputStream` and kafka-python do.

use super::{corrupt, Codec, CodecError};

const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const HEADER_BYTES: usize = 16;
/// Input bytes per block (xerial's default, and kafka-python's).
const BLOCK_BYTES: usize = 32 << 10;

pub(super) fn compress(src: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for block in src.chunks(BLOCK_BYTES) {
        let at = out.len();
        out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
        let n = encoder.compress(block, &mut out[at + 4..]).map_err(|e| corrupt(Codec::Snappy, e))?;
        out[at..at + 4].copy_from_slice(&(n as i32).to_be_bytes());
        out.truncate(at + 4 + n);
    }
    Ok(())
}

pub(super) fn decompress(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), CodecError> {
    let mut decoder = snap::raw::Decoder::new();
    let Some(mut rest) = src.strip_prefix(&MAGIC).filter(|_| src.len() >= HEADER_BYTES) else {
        return block(&mut decoder, src, out, cap);
    };
    rest = &rest[HEADER_BYTES - MAGIC.len()..];
    while !rest.is_empty() {
        let (len, after) =
            rest.split_first_chunk::<4>().ok_or_else(|| corrupt(Codec::Snappy, "block length cut short"))?;
        let len = usize::try_from(i32::from_be_bytes(*len))
            .ok()
            .filter(|&l| l <= after.len())
            .ok_or_else(|| corrupt(Codec::Snappy, "block length negative or past the stream"))?;
        block(&mut decoder, &after[..len], out, cap)?;
        rest = &after[len..];
    }
    Ok(())
}

/// Appends one raw snappy block: its claimed length is checked against
/// the cap before anything is allocated for it.
fn block(
    decoder: &mut snap::raw::Decoder,
    src: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
) -> Result<(), CodecError> {
    let len = snap::raw::decompress_len(src).map_err(|e| corrupt(Codec::Snappy, e))?;
    let at = out.len();
    if len > cap - at {
        return Err(CodecError::TooLarge { codec: Codec::Snappy, cap });
    }
    super::reserve_within(out, len, cap);
    out.resize(at + len, 0);
    match decoder.decompress(src, &mut out[at..]) {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err(corrupt(Codec::Snappy, "block shorter than its length")),
        Err(e) => Err(corrupt(Codec::Snappy, e)),
    }
}
