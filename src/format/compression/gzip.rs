//! gzip (codec 1): RFC 1952 members, as Java's `GZIPOutputStream` writes
//! them (Kafka's `GzipCompression`). Concatenated members are read as
//! one stream, as `GZIPInputStream` reads them.

use std::io::Write;

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{corrupt, read_bounded, Codec, CodecError};

pub(super) fn compress(level: i32, src: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let level = flate2::Compression::new(level.clamp(1, 9) as u32);
    let mut encoder = GzEncoder::new(out, level);
    encoder.write_all(src).map_err(|e| corrupt(Codec::Gzip, e))?;
    encoder.finish().map_err(|e| corrupt(Codec::Gzip, e))?;
    Ok(())
}

pub(super) fn decompress(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), CodecError> {
    read_bounded(Codec::Gzip, MultiGzDecoder::new(src), out, cap, src.len())
}
