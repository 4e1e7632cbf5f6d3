//! A response frame as the connection's writer sends it: the response's
//! `int32` size, header and body, held as pieces that are written in order
//! by vectored writes. Most frames are one piece. A Fetch response's large
//! record sets are pieces of their own, the bytes the engine read, so they
//! are not copied into the frame (`fetch_frame.rs`).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// A whole frame, or what is left of it to send.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    /// No piece is empty.
    pieces: VecDeque<Bytes>,
}

impl Frame {
    /// The frame with its pieces in order; empty ones are dropped.
    pub(crate) fn from_pieces(pieces: impl IntoIterator<Item = Bytes>) -> Self {
        Frame { pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect() }
    }

    /// The frame's pieces, in order.
    #[cfg(test)]
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        self.pieces.iter()
    }
}

impl From<BytesMut> for Frame {
    fn from(bytes: BytesMut) -> Self {
        Frame::from_pieces([bytes.freeze()])
    }
}

impl Buf for Frame {
    fn remaining(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    fn chunk(&self) -> &[u8] {
        self.pieces.front().map_or(&[], |p| &p[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.pieces.front_mut() else {
                panic!("advanced {cnt} bytes past the end of a frame");
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.pieces.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, piece) in dst.iter_mut().zip(&self.pieces) {
            *slot = IoSlice::new(piece);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame::from_pieces([
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"h"),
        ])
    }

    #[test]
    fn a_frame_is_its_pieces_in_order_whatever_the_steps_it_is_advanced_by() {
        for step in 1..=9 {
            let mut frame = frame();
            let mut sent = Vec::new();
            while frame.has_remaining() {
                let n = step.min(frame.chunk().len());
                sent.extend_from_slice(&frame.chunk()[..n]);
                frame.advance(n);
            }
            assert_eq!(sent, b"abcdefgh", "step {step}");
        }
    }

    #[test]
    fn a_vectored_write_sees_the_pieces_left_from_where_the_last_one_stopped() {
        let mut frame = frame();
        frame.advance(4);
        assert_eq!(frame.remaining(), 4);
        let mut slices = [IoSlice::new(&[]); 1];
        assert_eq!(frame.chunks_vectored(&mut slices), 1, "as many as the slots");
        assert_eq!(&*slices[0], b"efg");
        let mut slices = [IoSlice::new(&[]); 4];
        let n = frame.chunks_vectored(&mut slices);
        let seen: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(seen, b"efgh");
    }
}
