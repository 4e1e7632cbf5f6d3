use super::*;

/// Compressible records-like bytes: repeated keys, small counters.
fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"key-0000 value of a record "[i % 27].wrapping_add((i / 1000) as u8)).collect()
}

fn enabled() -> impl Iterator<Item = Codec> {
    Codec::ALL.into_iter().filter(|c| *c != Codec::None && c.is_enabled())
}

#[test]
fn every_codec_round_trips_and_compresses() {
    for codec in enabled() {
        for len in [1, 100, 32 << 10, (64 << 10) + 1, 300_000] {
            let src = sample(len);
            let mut packed = Vec::new();
            compress(Compression::new(codec), &src, &mut packed).unwrap();
            let mut back = vec![7u8; 3]; // cleared first
            decompress(codec, &packed, &mut back, src.len()).unwrap();
            assert_eq!(back, src, "{codec} at {len} bytes");
            if len >= 32 << 10 {
                assert!(packed.len() * 2 < src.len(), "{codec}: {} of {len}", packed.len());
            }
        }
    }
}

#[test]
fn levels_are_kafkas_and_checked() {
    for codec in enabled() {
        let src = sample(50_000);
        if let Some((range, default)) = codec.levels() {
            assert!(range.contains(&default));
            for level in [*range.start(), default, *range.end()] {
                let mut packed = Vec::new();
                compress(Compression { codec, level: Some(level) }, &src, &mut packed).unwrap();
                let mut back = Vec::new();
                decompress(codec, &packed, &mut back, src.len()).unwrap();
                assert_eq!(back, src, "{codec} level {level}");
            }
            let over = Compression { codec, level: Some(range.end() + 1) };
            assert_eq!(
                compress(over, &src, &mut Vec::new()),
                Err(CodecError::BadLevel { codec, level: range.end() + 1 })
            );
        }
    }
}

#[test]
fn a_stream_past_the_cap_is_refused_while_inflating() {
    for codec in enabled() {
        let src = vec![0u8; 4 << 20]; // a bomb: 4 MiB of zeros packs small
        let mut packed = Vec::new();
        compress(Compression::new(codec), &src, &mut packed).unwrap();
        assert!(packed.len() < 256 << 10, "{codec}: {}", packed.len());
        let mut out = Vec::new();
        let cap = 1 << 20;
        assert_eq!(decompress(codec, &packed, &mut out, cap), Err(CodecError::TooLarge { codec, cap }));
        assert!(out.capacity() <= cap + 1, "{codec} grew to {}", out.capacity());
        // Exactly at the cap is fine.
        decompress(codec, &packed, &mut out, src.len()).unwrap();
    }
}

#[test]
fn cut_or_damaged_streams_are_typed_errors() {
    for codec in enabled() {
        let src = sample(100_000);
        let mut packed = Vec::new();
        compress(Compression::new(codec), &src, &mut packed).unwrap();
        for cut in [0, 1, 5, 16, packed.len() / 2, packed.len() - 1] {
            let mut out = Vec::new();
            let got = decompress(codec, &packed[..cut], &mut out, 1 << 20);
            assert!(got.is_err() || out != src, "{codec} cut at {cut} of {} read whole", packed.len());
            // A xerial header alone is an empty stream.
            if codec != Codec::Snappy || cut > 16 {
                assert!(got.is_err(), "{codec} cut at {cut}: {got:?}");
            }
        }
        // Every single-byte flip either fails or (at worst) inflates to
        // other bytes; none panics.
        for at in (0..packed.len()).step_by(97) {
            let mut bad = packed.clone();
            bad[at] ^= 0x5a;
            let _ = decompress(codec, &bad, &mut Vec::new(), 1 << 20);
        }
    }
}

#[test]
fn lz4_frames_kafka_refuses_are_refused() {
    if !Codec::Lz4.is_enabled() {
        return;
    }
    let mut packed = Vec::new();
    compress(Compression::new(Codec::Lz4), &sample(1000), &mut packed).unwrap();
    // Kafka's framing: version 1, independent blocks, no checksums, no
    // content size; block size 64 KiB.
    assert_eq!(&packed[..4], &0x184D_2204u32.to_le_bytes());
    assert_eq!(packed[4], 0b0110_0000);
    assert_eq!(packed[5], 4 << 4);
    let mut dependent = packed.clone();
    dependent[4] &= !(1 << 5);
    assert!(matches!(
        decompress(Codec::Lz4, &dependent, &mut Vec::new(), 1 << 20),
        Err(CodecError::Unsupported { codec: Codec::Lz4, .. })
    ));
    let mut small_blocks = packed.clone();
    small_blocks[5] = 3 << 4;
    assert!(matches!(
        decompress(Codec::Lz4, &small_blocks, &mut Vec::new(), 1 << 20),
        Err(CodecError::Unsupported { .. })
    ));
}

#[cfg(feature = "snappy")]
#[test]
fn snappy_writes_xerial_framing_and_reads_raw_blocks_too() {
    let src = sample(70_000);
    let mut packed = Vec::new();
    compress(Compression::new(Codec::Snappy), &src, &mut packed).unwrap();
    assert_eq!(&packed[..16], b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01");
    let raw = snap::raw::Encoder::new().compress_vec(&src).unwrap();
    let mut back = Vec::new();
    decompress(Codec::Snappy, &raw, &mut back, src.len()).unwrap();
    assert_eq!(back, src);
    // A block claiming more than the cap is refused before allocation.
    assert_eq!(
        decompress(Codec::Snappy, &raw, &mut back, 1000),
        Err(CodecError::TooLarge { codec: Codec::Snappy, cap: 1000 })
    );
}

#[test]
fn names_and_ids_are_kafkas() {
    let names: Vec<_> = Codec::ALL.iter().map(|c| (c.id(), c.name())).collect();
    assert_eq!(names, [(0, "none"), (1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")]);
    assert_eq!(Codec::from_id(5), None);
    assert_eq!(Codec::parse("lz4"), Some(Codec::Lz4));
}

#[cfg(feature = "zstd")]
#[test]
fn a_zstd_stream_needing_a_window_past_the_bound_is_unsupported() {
    let mut encoder = ::zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    encoder.window_log(27).unwrap();
    std::io::Write::write_all(&mut encoder, &sample(1 << 20)).unwrap();
    let packed = encoder.finish().unwrap();
    let got = decompress(Codec::Zstd, &packed, &mut Vec::new(), 8 << 20);
    assert!(matches!(got, Err(CodecError::Unsupported { codec: Codec::Zstd, .. })), "{got:?}");
    // The thread's context works on after the refusal.
    let mut ok = Vec::new();
    compress(Compression::new(Codec::Zstd), b"fine", &mut ok).unwrap();
    decompress(Codec::Zstd, &ok, &mut Vec::new(), 100).unwrap();
}

#[test]
fn a_codec_compiled_out_is_a_typed_error_naming_it() {
    // Meaningful in a build without some codec feature (.ci/run runs the
    // library's tests with none): every codec not in it is refused both
    // ways, by name.
    for codec in Codec::ALL.into_iter().filter(|c| !c.is_enabled()) {
        assert_eq!(
            compress(Compression::new(codec), b"x", &mut Vec::new()),
            Err(CodecError::Disabled(codec))
        );
        assert_eq!(decompress(codec, b"x", &mut Vec::new(), 10), Err(CodecError::Disabled(codec)));
        let message = CodecError::Disabled(codec).to_string();
        assert!(message.contains(codec.name()) && message.contains("feature"), "{message}");
    }
    assert_eq!(
        Codec::ALL.iter().filter(|c| c.is_enabled()).count() == 5,
        cfg!(all(feature = "gzip", feature = "snappy", feature = "lz4", feature = "zstd"))
    );
}
