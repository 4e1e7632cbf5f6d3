//! Kafka's compression codecs for the records of a batch (attribute bits
//! 0-2): gzip, snappy (xerial block framing), lz4 (Kafka's frame rules)
//! and zstd, each behind the cargo feature of its name (all on by
//! default). A batch's header stays uncompressed; everything after it,
//! the records, is one compressed stream (Kafka's `DefaultRecordBatch`
//! with a `Compression` other than none).
//!
//! Decompression is bounded: no stream inflates past the cap its caller
//! passes (a producer's batch: `max_batch_bytes`; a stored batch:
//! [`MAX_INFLATED_BYTES`]). A stream that would is
//! [`CodecError::TooLarge`], found while inflating, never by trusting a
//! length the stream claims; nothing is allocated beyond the cap (and the
//! codecs' own bounded windows: lz4 4 MiB, zstd [`ZSTD_WINDOW_LOG_MAX`]).

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
mod lz4;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(feature = "zstd")]
mod zstd;

/// The most a stored batch's records may inflate to. The record API
/// refuses to compress more than this, and a producer's batch inflates to
/// at most `max_batch_bytes` and this.
pub const MAX_INFLATED_BYTES: usize = 64 << 20;

/// The largest zstd window a stream may need (2^24 = 16 MiB): what the
/// decoder may allocate. Producers at Kafka's levels up to 19 stay below
/// it; a stream asking for more (levels 20-22 with no pledged size) is
/// [`CodecError::Unsupported`].
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// A compression codec, by Kafka's id (attribute bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// 0: records stored as they are.
    None,
    /// 1: gzip (RFC 1952), Java's `GZIPOutputStream`.
    Gzip,
    /// 2: snappy in xerial's block framing.
    Snappy,
    /// 3: lz4 frame format with independent blocks.
    Lz4,
    /// 4: zstd frames.
    Zstd,
}

impl Codec {
    /// Every codec, by id.
    pub const ALL: [Codec; 5] = [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];

    /// The codec with Kafka's id `id` (0-4).
    pub fn from_id(id: u16) -> Option<Codec> {
        Codec::ALL.get(usize::from(id)).copied()
    }

    /// Kafka's id: the attribute bits.
    pub fn id(self) -> u16 {
        self as u16
    }

    /// Kafka's name (`compression.type` values).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// The codec named `name` (Kafka's names).
    pub fn parse(name: &str) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether this build has the codec (its cargo feature is on).
    pub fn is_enabled(self) -> bool {
        match self {
            Codec::None => true,
            Codec::Gzip => cfg!(feature = "gzip"),
            Codec::Snappy => cfg!(feature = "snappy"),
            Codec::Lz4 => cfg!(feature = "lz4"),
            Codec::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// Kafka's range of levels for the codec and its default
    /// (`compression.gzip.level`, `compression.lz4.level`,
    /// `compression.zstd.level`); `None` for a codec without levels.
    pub fn levels(self) -> Option<(std::ops::RangeInclusive<i32>, i32)> {
        match self {
            Codec::Gzip => Some((1..=9, 6)),
            Codec::Lz4 => Some((1..=17, 9)),
            Codec::Zstd => Some((-131_072..=22, 3)),
            Codec::None | Codec::Snappy => None,
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a batch is compressed with: a codec and its level (`None`: Kafka's
/// default for the codec).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    /// The codec.
    pub codec: Codec,
    /// Its level, within [`Codec::levels`].
    pub level: Option<i32>,
}

impl Compression {
    /// `codec` at Kafka's default level.
    pub fn new(codec: Codec) -> Self {
        Compression { codec, level: None }
    }

    /// The level to compress at: the one set, or the codec's default.
    fn level_or_default(&self) -> i32 {
        self.level.or(self.codec.levels().map(|(_, default)| default)).unwrap_or(0)
    }
}

/// Why records could not be compressed or decompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The codec's cargo feature is off in this build.
    Disabled(Codec),
    /// The stream is damaged or truncated.
    Corrupt {
        /// The codec.
        codec: Codec,
        /// What the codec said.
        what: String,
    },
    /// The stream inflates past `cap` bytes.
    TooLarge {
        /// The codec.
        codec: Codec,
        /// The cap it reached.
        cap: usize,
    },
    /// A valid stream of a form Kafka does not accept (or this build does
    /// not bound): lz4 dependent blocks, an unknown lz4 block size, a zstd
    /// window over 2^`ZSTD_WINDOW_LOG_MAX` (2^24) bytes.
    Unsupported {
        /// The codec.
        codec: Codec,
        /// What is unsupported.
        what: &'static str,
    },
    /// A level outside the codec's range.
    BadLevel {
        /// The codec.
        codec: Codec,
        /// The level.
        level: i32,
    },
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Disabled(c) => {
                write!(f, "codec {c} is not in this build (cargo feature \"{c}\" is off)")
            }
            CodecError::Corrupt { codec, what } => write!(f, "corrupt {codec} stream: {what}"),
            CodecError::TooLarge { codec, cap } => write!(f, "{codec} stream inflates past {cap} bytes"),
            CodecError::Unsupported { codec, what } => write!(f, "unsupported {codec} stream: {what}"),
            CodecError::BadLevel { codec, level } => write!(f, "level {level} is outside {codec}'s range"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Inflates `src`, the records of a batch compressed with `codec`, into
/// `out` (cleared first; reuse it across calls), refusing past `cap` bytes.
///
/// # Errors
/// [`CodecError`]: a damaged or truncated stream, one inflating past `cap`,
/// an unsupported form, or a codec not in this build. Never panics.
pub fn decompress(codec: Codec, src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), CodecError> {
    out.clear();
    match codec {
        Codec::None => {
            if src.len() > cap {
                return Err(CodecError::TooLarge { codec, cap });
            }
            out.extend_from_slice(src);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Codec::Gzip => gzip::decompress(src, out, cap),
        #[cfg(feature = "snappy")]
        Codec::Snappy => snappy::decompress(src, out, cap),
        #[cfg(feature = "lz4")]
        Codec::Lz4 => lz4::decompress(src, out, cap),
        #[cfg(feature = "zstd")]
        Codec::Zstd => zstd::decompress(src, out, cap),
        #[allow(unreachable_patterns, reason = "reached when a codec's feature is off")]
        other => Err(CodecError::Disabled(other)),
    }
}

/// Compresses `src` (a batch's records) with `compression`, appending the
/// stream to `out`.
///
/// # Errors
/// [`CodecError::Disabled`] for a codec not in this build,
/// [`CodecError::BadLevel`] for a level outside its range.
pub fn compress(compression: Compression, src: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let codec = compression.codec;
    let level = compression.level_or_default();
    if let (Some((range, _)), Some(l)) = (codec.levels(), compression.level) {
        if !range.contains(&l) {
            return Err(CodecError::BadLevel { codec, level: l });
        }
    }
    match codec {
        Codec::None => {
            out.extend_from_slice(src);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Codec::Gzip => gzip::compress(level, src, out),
        #[cfg(feature = "snappy")]
        Codec::Snappy => snappy::compress(src, out),
        #[cfg(feature = "lz4")]
        Codec::Lz4 => lz4::compress(level, src, out),
        #[cfg(feature = "zstd")]
        Codec::Zstd => zstd::compress(level, src, out),
        #[allow(unreachable_patterns, reason = "reached when a codec's feature is off")]
        other => {
            let _ = level;
            Err(CodecError::Disabled(other))
        }
    }
}

/// Reads `reader` (a stream of `compressed_len` bytes) to its end into
/// `out`, refusing past `cap` bytes: the bound for the codecs that stream
/// (gzip, zstd). `out` grows by at most one chunk past what was inflated.
#[cfg(any(feature = "gzip", feature = "zstd"))]
fn read_bounded(
    codec: Codec,
    mut reader: impl std::io::Read,
    out: &mut Vec<u8>,
    cap: usize,
    compressed_len: usize,
) -> Result<(), CodecError> {
    const CHUNK: usize = 64 << 10;
    // Reads start near what the stream likely inflates to (each read's
    // room is zeroed first) and double up to 64 KiB.
    let mut chunk = compressed_len.saturating_mul(4).clamp(4 << 10, CHUNK);
    loop {
        let at = out.len();
        // One byte past the cap tells a stream that ends exactly there
        // from one that goes on.
        let want = chunk.min(cap + 1 - at);
        chunk = (chunk * 2).min(CHUNK);
        reserve_within(out, want, cap + 1);
        out.resize(at + want, 0);
        let n = match reader.read(&mut out[at..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                out.truncate(at);
                continue;
            }
            Err(e) => {
                out.truncate(at);
                return Err(corrupt(codec, e));
            }
        };
        out.truncate(at + n);
        if n == 0 {
            return Ok(());
        }
        if out.len() > cap {
            return Err(CodecError::TooLarge { codec, cap });
        }
    }
}

/// Makes room in `out` for `additional` more bytes, doubling its capacity
/// but never past `cap` (unless `additional` itself needs more): what a
/// bomb can make an inflater allocate is the cap.
#[cfg(any(feature = "gzip", feature = "snappy", feature = "lz4", feature = "zstd"))]
fn reserve_within(out: &mut Vec<u8>, additional: usize, cap: usize) {
    let need = out.len() + additional;
    if out.capacity() < need {
        let grown = out.capacity().saturating_mul(2).clamp(need, cap.max(need));
        out.reserve_exact(grown - out.len());
    }
}

#[cfg(any(feature = "gzip", feature = "snappy", feature = "lz4", feature = "zstd"))]
fn corrupt(codec: Codec, what: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt { codec, what: what.to_string() }
}

#[cfg(test)]
mod tests;
