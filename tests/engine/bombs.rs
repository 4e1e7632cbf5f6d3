//! Compression bombs, one per codec: small batches whose records inflate
//! (or claim to inflate) to far more than the cap. A producer's is refused
//! with a typed error (Kafka's MESSAGE_TOO_LARGE) and nothing is stored; a
//! stored one fails the full check as corruption; and the process's peak
//! RSS stays bounded by the cap, not by what the stream would inflate to.
//!
//! One test in this binary, so the peak RSS it reads is its own.

use std::io::Write;

use annals::format::rewrite_header;
use annals::format::MAX_INFLATED_BYTES;
use annals::format::{
    check_batch, BatchMeta, BatchProblem, Codec, CodecError, DecodeErrorKind, EncodeLimits,
};
use annals::{AppendError, Error, LogConfig, PartitionLog, ProduceMeta, Record};

/// What each bomb inflates to: 32x the pass-through cap (8 MiB, the
/// default `max_batch_bytes`), 4x the stored-batch cap.
const BOMB_BYTES: usize = 256 << 20;

/// Feeds `BOMB_BYTES` zeros to `w` a MiB at a time (the bomb is built
/// without holding what it inflates to).
fn zeros(mut w: impl Write) {
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..BOMB_BYTES >> 20 {
        w.write_all(&chunk).unwrap();
    }
}

/// The compressed streams: each inflates to `BOMB_BYTES` (snappy's also
/// claims 1 GiB in a block header).
fn bombs() -> Vec<(Codec, Vec<u8>)> {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    zeros(&mut gzip);
    let gzip = gzip.finish().unwrap();

    let mut lz4 =
        lz4::EncoderBuilder::new().block_mode(lz4::BlockMode::Independent).build(Vec::new()).unwrap();
    zeros(&mut lz4);
    let (lz4, done) = lz4.finish();
    done.unwrap();

    let mut zstd = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    zeros(&mut zstd);
    let zstd = zstd.finish().unwrap();

    // Xerial framing: one real 32 KiB block of zeros, then a block whose
    // header claims 1 GiB (a varint) and holds nothing behind the claim.
    let mut snappy = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    let block = snap::raw::Encoder::new().compress_vec(&[0u8; 32 << 10]).unwrap();
    snappy.extend_from_slice(&(block.len() as i32).to_be_bytes());
    snappy.extend_from_slice(&block);
    let claim = [0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x00];
    snappy.extend_from_slice(&(claim.len() as i32).to_be_bytes());
    snappy.extend_from_slice(&claim);
    vec![(Codec::Gzip, gzip), (Codec::Snappy, snappy), (Codec::Lz4, lz4), (Codec::Zstd, zstd)]
}

/// A producer's batch of one record whose records are `stream`.
fn batch_with(codec: Codec, stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let limits = EncodeLimits { max_record_bytes: 1 << 20, max_batch_bytes: 8 << 20 };
    let mut header =
        annals::format::encode_batch(&mut out, 0, BatchMeta::default(), &[Record::new("x")], 1_000, limits)
            .unwrap();
    out.truncate(annals::format::BATCH_HEADER_BYTES);
    out.extend_from_slice(stream);
    header.batch_len = out.len() as u32;
    header.attributes |= codec.id();
    rewrite_header(&mut out, &mut header);
    out
}

/// Peak resident set of this process so far (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn every_codecs_bomb_is_refused_with_a_typed_error_and_bounded_memory() {
    if !cfg!(target_os = "linux") {
        eprintln!("*** SKIPPED: the peak-RSS check reads /proc/self/status (Linux) ***");
        return;
    }
    let bombs = bombs();
    let before = peak_rss();
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path().join("p"), LogConfig::default()).unwrap();
    let cap = LogConfig::default().max_batch_bytes;
    let mut batches: Vec<(Codec, Vec<u8>)> = bombs.iter().map(|(c, s)| (*c, batch_with(*c, s))).collect();
    for (codec, batch) in &mut batches {
        assert!(batch.len() < 2 << 20, "{codec}: a small batch ({} bytes)", batch.len());
        // A producer's: refused, MESSAGE_TOO_LARGE, nothing stored.
        match log.append_batches(batch, ProduceMeta::default()) {
            Err(Error::Append(AppendError::InvalidBatch { batch: 0, position: 61, problem })) => {
                assert_eq!(problem, BatchProblem::InflatesTooLarge { max: cap }, "{codec}");
                assert_eq!(problem.kafka_error_code(), 10);
            }
            other => panic!("{codec}: {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 0, "{codec}");
    }
    let producer_peak = peak_rss().saturating_sub(before);
    for (codec, batch) in &batches {
        // A stored one (recovery's and verify's full check): corruption,
        // at the stored-batch cap.
        let err = check_batch(batch).unwrap_err();
        let too_large = CodecError::TooLarge { codec: *codec, cap: MAX_INFLATED_BYTES };
        assert_eq!(err.kind, DecodeErrorKind::Compression(too_large), "{codec}");
        assert_eq!(err.position, 61);
    }
    let grew = peak_rss().saturating_sub(before);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "bombs of {} MiB each ({}): peak RSS grew by {:.1} MiB refusing them as producer batches (cap {} MiB), \
         by {:.1} MiB in all once checked as stored batches too (cap {} MiB)",
        BOMB_BYTES >> 20,
        batches.iter().map(|(c, b)| format!("{c} {} B", b.len())).collect::<Vec<_>>().join(", "),
        mib(producer_peak),
        cap >> 20,
        mib(grew),
        MAX_INFLATED_BYTES >> 20
    );
    assert!(producer_peak < 48 << 20, "producer bombs: peak RSS grew by {producer_peak} bytes");
    // The stored-batch cap (64 MiB), the buffer's doubling up to it, the
    // codecs' windows: far below what one bomb inflates to.
    assert!(grew < 160 << 20, "peak RSS grew by {grew} bytes");
}
