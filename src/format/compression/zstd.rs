//! zstd (codec 4): zstd frames, as zstd-jni's `ZstdOutputStream` writes
//! them for Kafka (`ZstdCompression`). Read as one stream across frames,
//! with the decoder's window bounded by [`super::ZSTD_WINDOW_LOG_MAX`].

use super::{corrupt, read_bounded, Codec, CodecError, ZSTD_WINDOW_LOG_MAX};

pub(super) fn compress(level: i32, src: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let fail = |e| corrupt(Codec::Zstd, e);
    let mut encoder = ::zstd::stream::write::Encoder::new(out, level).map_err(fail)?;
    // With the size known, zstd sizes the window to the input; levels 20-22
    // would still ask for more than a reader here allows on big inputs.
    encoder.set_pledged_src_size(Some(src.len() as u64)).map_err(fail)?;
    if level >= 20 {
        encoder.window_log(ZSTD_WINDOW_LOG_MAX).map_err(fail)?;
    }
    std::io::Write::write_all(&mut encoder, src).map_err(|e| corrupt(Codec::Zstd, e))?;
    encoder.finish().map_err(|e| corrupt(Codec::Zstd, e))?;
    Ok(())
}

pub(super) fn decompress(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), CodecError> {
    let mut decoder = ::zstd::stream::read::Decoder::with_buffer(src).map_err(|e| corrupt(Codec::Zstd, e))?;
    decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(|e| corrupt(Codec::Zstd, e))?;
    read_bounded(Codec::Zstd, decoder, out, cap).map_err(|e| match e {
        CodecError::Corrupt { what, .. } if what.contains("Frame requires too much memory") => {
            CodecError::Unsupported { codec: Codec::Zstd, what: "window larger than 16 MiB" }
        }
        other => other,
    })
}
