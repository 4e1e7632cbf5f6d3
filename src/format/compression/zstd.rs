//! zstd (codec 4): zstd frames, as zstd-jni's `ZstdOutputStream` writes
//! them for Kafka (`ZstdCompression`). Read as one stream across frames,
//! with the decoder's window bounded by [`super::ZSTD_WINDOW_LOG_MAX`],
//! through one decompression context per thread (its window is allocated
//! once, not per batch).

use std::cell::RefCell;

use ::zstd::zstd_safe::{DCtx, DParameter, ResetDirective};

use super::{corrupt, read_bounded, Codec, CodecError, ZSTD_WINDOW_LOG_MAX};

thread_local! {
    static CONTEXT: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

pub(super) fn compress(level: i32, src: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let fail = |e| corrupt(Codec::Zstd, e);
    let mut encoder = ::zstd::stream::write::Encoder::new(out, level).map_err(fail)?;
    // With the size known, zstd sizes the window to the input; levels 20-22
    // would still ask for more than a reader here allows on big inputs.
    encoder.set_pledged_src_size(Some(src.len() as u64)).map_err(fail)?;
    if level >= 20 {
        encoder.window_log(ZSTD_WINDOW_LOG_MAX).map_err(fail)?;
    }
    std::io::Write::write_all(&mut encoder, src).map_err(fail)?;
    encoder.finish().map_err(fail)?;
    Ok(())
}

pub(super) fn decompress(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), CodecError> {
    let code = |c: usize| corrupt(Codec::Zstd, ::zstd::zstd_safe::get_error_name(c));
    CONTEXT.with_borrow_mut(|slot| {
        let context = match slot {
            Some(context) => context,
            None => {
                let mut context =
                    DCtx::try_create().ok_or_else(|| corrupt(Codec::Zstd, "no memory for a context"))?;
                context.set_parameter(DParameter::WindowLogMax(ZSTD_WINDOW_LOG_MAX)).map_err(code)?;
                slot.insert(context)
            }
        };
        // A stream that failed midway leaves the session behind: start anew.
        context.reset(ResetDirective::SessionOnly).map_err(code)?;
        // A frame that states its size (annals' do) inflates in one call
        // straight into `out`, when that size is within the cap; a claim
        // past it is refused before anything is allocated.
        if let Ok(Some(size)) = ::zstd::zstd_safe::get_frame_content_size(src) {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > cap {
                return Err(CodecError::TooLarge { codec: Codec::Zstd, cap });
            }
            out.clear();
            out.reserve_exact(size);
            // More frames after it, or a false size: the stream below decides.
            if context.decompress(out, src).is_ok_and(|n| n == size && n == out.len()) {
                return Ok(());
            }
            out.clear();
            context.reset(ResetDirective::SessionOnly).map_err(code)?;
        }
        let decoder = ::zstd::stream::read::Decoder::with_context(src, context);
        read_bounded(Codec::Zstd, decoder, out, cap, src.len()).map_err(|e| match e {
            CodecError::Corrupt { what, .. } if what.contains("Frame requires too much memory") => {
                CodecError::Unsupported { codec: Codec::Zstd, what: "window larger than 16 MiB" }
            }
            other => other,
        })
    })
}
