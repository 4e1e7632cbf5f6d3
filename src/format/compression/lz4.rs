//! lz4 (codec 3): the LZ4 frame format under Kafka's rules
//! (`Lz4BlockOutputStream` / `Lz4BlockInputStream` in apache/kafka):
//! independent blocks of at most 64 KiB, no block or content checksum,
//! no content size, a correct header checksum. On read Kafka accepts
//! block sizes 64 KiB, 256 KiB, 1 MiB and 4 MiB, a content size, block
//! checksums (verified) and a content checksum (skipped), and refuses
//! dependent blocks, another version and reserved bits; so does this.
//!
//! Compression goes through liblz4's frame API. Reading walks the frame
//! here (blocks are independent, so each is one `LZ4_decompress_safe`
//! into a reused buffer): no decompression context per batch.
//!
//! ```text
//! magic 0x184D2204 (LE) | FLG | BD | [content size u64 LE] | HC
//! blocks: size u32 LE (high bit: stored uncompressed) | data | [xxh32 u32 LE]
//! end mark 0u32 | [content xxh32 u32 LE]
//! ```
//! HC is byte 1 of the xxh32 (seed 0) of FLG through the content size.

use std::cell::RefCell;
use std::io::Write;

use lz4::liblz4::BlockChecksum;
use lz4::{BlockMode, BlockSize, ContentChecksum, EncoderBuilder};

use super::{corrupt, Codec, CodecError};

const MAGIC: u32 = 0x184D_2204;
/// Kafka's default level, at which it uses lz4's fast compressor; other
/// levels are lz4 HC (liblz4 caps HC at 12).
const FAST_LEVEL: i32 = 9;
const STORED: u32 = 1 << 31;

thread_local! {
    /// Where blocks inflate before they are appended: zeroed once, grown
    /// to the largest block size met (at most 4 MiB).
    static BLOCK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

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

/// What the frame descriptor says.
struct Frame {
    /// Bytes of magic and descriptor.
    header_bytes: usize,
    max_block: usize,
    block_checksums: bool,
    content_checksum: bool,
}

pub(super) fn decompress(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), CodecError> {
    let frame = descriptor(src)?;
    let bad = |what| Err(corrupt(Codec::Lz4, what));
    let mut rest = &src[frame.header_bytes..];
    BLOCK.with_borrow_mut(|scratch| {
        if scratch.len() < frame.max_block {
            scratch.resize(frame.max_block, 0);
        }
        // Bounded: each step consumes a block's size field at least.
        loop {
            let Some((size, after)) = rest.split_first_chunk::<4>() else {
                return bad("stream ends before the end mark");
            };
            let size = u32::from_le_bytes(*size);
            if size == 0 {
                if frame.content_checksum && after.len() < 4 {
                    return bad("content checksum cut short");
                }
                return Ok(());
            }
            let len = (size & !STORED) as usize;
            if len > frame.max_block {
                return bad("block larger than the frame's block size");
            }
            let trailer = if frame.block_checksums { 4 } else { 0 };
            let Some(block) = after.get(..len) else { return bad("block runs past the stream") };
            if frame.block_checksums {
                let Some(sum) = after.get(len..len + 4) else { return bad("block checksum cut short") };
                if xxh32(block) != u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]) {
                    return bad("block checksum mismatch");
                }
            }
            let inflated = if size & STORED != 0 {
                block
            } else {
                let max = frame.max_block as i32;
                let n = lz4::block::decompress_to_buffer(block, Some(max), &mut scratch[..frame.max_block])
                    .map_err(|e| corrupt(Codec::Lz4, e))?;
                &scratch[..n]
            };
            if inflated.len() > cap - out.len() {
                return Err(CodecError::TooLarge { codec: Codec::Lz4, cap });
            }
            super::reserve_within(out, inflated.len(), cap);
            out.extend_from_slice(inflated);
            rest = &after[len + trailer..];
        }
    })
}

/// Kafka's checks of the frame descriptor (magic, FLG, BD, HC).
fn descriptor(src: &[u8]) -> Result<Frame, CodecError> {
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
    let max_block = match bd >> 4 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return unsupported("block size other than 64 KiB, 256 KiB, 1 MiB or 4 MiB"),
    };
    let descriptor_end = if flg & (1 << 3) != 0 { 14 } else { 6 };
    let Some(&hc) = src.get(descriptor_end) else {
        return Err(corrupt(Codec::Lz4, "frame header cut short"));
    };
    if hc != (xxh32(&src[4..descriptor_end]) >> 8) as u8 {
        return Err(corrupt(Codec::Lz4, "frame descriptor checksum mismatch"));
    }
    Ok(Frame {
        header_bytes: descriptor_end + 1,
        max_block,
        block_checksums: flg & (1 << 4) != 0,
        content_checksum: flg & (1 << 2) != 0,
    })
}

/// xxHash32 with seed 0 (the LZ4 frame format's checksum).
fn xxh32(input: &[u8]) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let round =
        |acc: u32, lane: u32| acc.wrapping_add(lane.wrapping_mul(P2)).rotate_left(13).wrapping_mul(P1);
    let mut stripes = input.chunks_exact(16);
    let mut h = if input.len() >= 16 {
        let mut v = [P1.wrapping_add(P2), P2, 0, 0u32.wrapping_sub(P1)];
        for stripe in &mut stripes {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, word(&stripe[i * 4..]));
            }
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        P5
    };
    h = h.wrapping_add(input.len() as u32);
    let tail = stripes.remainder();
    let mut words = tail.chunks_exact(4);
    for w in &mut words {
        h = h.wrapping_add(word(w).wrapping_mul(P3)).rotate_left(17).wrapping_mul(P4);
    }
    for &b in words.remainder() {
        h = h.wrapping_add(u32::from(b).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh32_matches_the_reference_vectors() {
        // xxHash's published values for seed 0.
        assert_eq!(xxh32(b""), 0x02CC_5D05);
        assert_eq!(xxh32(b"a"), 0x550D_7456);
        assert_eq!(xxh32(b"abc"), 0x32D1_53FF);
        assert_eq!(xxh32(b"Nobody inspects the spammish repetition"), 0xE229_3B2F);
    }

    #[test]
    fn block_checksums_and_content_size_frames_from_liblz4_read() {
        let src: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 ^ (i / 7000) as u8).collect();
        let mut encoder = EncoderBuilder::new()
            .block_size(BlockSize::Max256KB)
            .block_mode(BlockMode::Independent)
            .block_checksum(BlockChecksum::BlockChecksumEnabled)
            .checksum(ContentChecksum::ChecksumEnabled)
            .content_size(src.len() as u64)
            .build(Vec::new())
            .unwrap();
        encoder.write_all(&src).unwrap();
        let (framed, done) = encoder.finish();
        done.unwrap();
        let mut out = Vec::new();
        decompress(&framed, &mut out, src.len()).unwrap();
        assert_eq!(out, src);
        let mut flipped = framed.clone();
        let last_block_byte = framed.len() - 16;
        flipped[last_block_byte] ^= 1;
        assert!(decompress(&flipped, &mut Vec::new(), src.len()).is_err());
        let mut bad_hc = framed;
        bad_hc[4 + 1 + 1 + 8] ^= 1;
        assert!(matches!(decompress(&bad_hc, &mut Vec::new(), src.len()), Err(CodecError::Corrupt { .. })));
    }
}
