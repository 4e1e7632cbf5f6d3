//! lz4 (codec 3): the LZ4 frame format under Kafka's rules
//! (`Lz4BlockOutputStream` / `Lz4BlockInputStream` in apache/kafka):
//! independent blocks of at most 64 KiB, no block or content checksum,
//! no content size, a correct header checksum. On read Kafka accepts
//! block sizes 64 KiB, 256 KiB, 1 MiB and 4 MiB, a content size and
//! checksums, and refuses dependent blocks, another version and reserved
//! bits; so does this. The header checksum, block bounds and the frame's
//! end are checked by liblz4.

use std::io::Write;

use lz4::liblz4::BlockChecksum;
use lz4::{BlockMode, BlockSize, ContentChecksum, Decoder, EncoderBuilder};

use super::{corrupt, read_bounded, Codec, CodecError};

const MAGIC: u32 = 0x184D_2204;
/// Kafka's default level, at which it uses lz4's fast compressor; other
/// levels are lz4 HC (liblz4 caps HC at 12).
const FAST_LEVEL: i32 = 9;

pub(super) fn compress(level: i32, src: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let level = if level == FAST_LEVEL { 0 } else { level.clamp(3, 12) as u32 };
    let mut encoder = EncoderBuilder::new()
        .level(level)
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent)
        .block_checksum(BlockChecksum::NoBlockChecksum)
        .checksum(ContentChecksum::NoChecksum)
        .build(out)
        .map_err(|e| corrupt(Codec::Lz4, e))?;
    encoder.write_all(src).map_err(|e| corrupt(Codec::Lz4, e))?;
    let (_, done) = encoder.finish();
    done.map_err(|e| corrupt(Codec::Lz4, e))
}

pub(super) fn decompress(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), CodecError> {
    check_descriptor(src)?;
    let mut decoder = Decoder::new(src).map_err(|e| corrupt(Codec::Lz4, e))?;
    read_bounded(Codec::Lz4, &mut decoder, out, cap)?;
    // A stream cut before its end mark reads as a short one: liblz4 knows.
    let (_, ended) = decoder.finish();
    ended.map_err(|_| corrupt(Codec::Lz4, "stream ends before the frame's end mark"))
}

/// Kafka's checks of the frame descriptor (magic, FLG, BD).
fn check_descriptor(src: &[u8]) -> Result<(), CodecError> {
    let unsupported = |what| Err(CodecError::Unsupported { codec: Codec::Lz4, what });
    let (Some(magic), Some(&flg), Some(&bd)) = (src.first_chunk::<4>(), src.get(4), src.get(5)) else {
        return Err(corrupt(Codec::Lz4, "frame header cut short"));
    };
    if u32::from_le_bytes(*magic) != MAGIC {
        return unsupported("not an LZ4 frame (bad magic)");
    }
    if flg >> 6 != 1 {
        return unsupported("frame version other than 1");
    }
    if flg & 0b11 != 0 || bd & 0b1000_1111 != 0 {
        return unsupported("reserved descriptor bits set");
    }
    if flg & (1 << 5) == 0 {
        return unsupported("dependent blocks (Kafka requires independent ones)");
    }
    if !(4..=7).contains(&(bd >> 4)) {
        return unsupported("block size other than 64 KiB, 256 KiB, 1 MiB or 4 MiB");
    }
    Ok(())
}
