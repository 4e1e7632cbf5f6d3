//! A Fetch response's frame with its large record sets spliced in rather
//! than copied: each is a piece of the frame of its own, the bytes the
//! engine read, sent by the writer's vectored write.
//!
//! Everything else is kafka-protocol's encoding. In Fetch v4 to v12 the
//! collection a message holds is its last field before its tagged fields
//! (the response's topics, a topic's partitions, a partition's records),
//! and the tagged fields are one zero byte when none is set (v12). So each
//! message is encoded with that collection left empty, the empty
//! collection and its zero byte are cut off the end, and what is cut is
//! written again around the collection's own encoding. The bytes are those
//! kafka-protocol would write for the whole response (tested below,
//! against it, at every version served). A response with any tagged field
//! set is encoded by kafka-protocol whole, as one piece.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::frame::Frame;

/// Record sets smaller than this are copied into the frame: a piece of
/// their own would cost a vectored write's slot for less than a page.
pub(crate) const SPLICE_MIN_BYTES: usize = 4096;

/// The first version whose messages are flexible (compact lengths, tagged
/// fields).
const FLEXIBLE: i16 = 12;

/// The frame of `response` at `version`, its size first: with its record
/// sets of at least [`SPLICE_MIN_BYTES`] as pieces of their own unless a
/// tagged field is set.
pub(crate) fn fetch_frame(
    correlation_id: i32,
    version: i16,
    mut response: FetchResponse,
) -> Result<Frame, String> {
    let mut head = BytesMut::with_capacity(crate::api::RESPONSE_PREALLOCATE_BYTES);
    // The size, written in place when the frame is finished.
    head.extend_from_slice(&[0; 4]);
    let mut out = Pieces { first: None, head, pieces: Vec::new(), size: 0 };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut out.head, ApiKey::Fetch.response_header_version(version)).map_err(failed)?;
    if !untagged(&response, version) {
        response.encode(&mut out.head, version).map_err(failed)?;
        return out.finish();
    }
    let flexible = version >= FLEXIBLE;
    let topics = std::mem::take(&mut response.responses);
    encode_before_last(&mut out.head, &response, version, empty_array(flexible))?;
    put_length(&mut out.head, flexible, topics.len());
    for mut topic in topics {
        let partitions = std::mem::take(&mut topic.partitions);
        encode_before_last(&mut out.head, &topic, version, empty_array(flexible))?;
        put_length(&mut out.head, flexible, partitions.len());
        for mut partition in partitions {
            let records = partition.records.take();
            encode_before_last(&mut out.head, &partition, version, null_bytes(flexible))?;
            match records {
                None => out.head.put_slice(null_bytes(flexible)),
                Some(records) => {
                    put_length(&mut out.head, flexible, records.len());
                    out.put_records(records);
                }
            }
            end_tagged_fields(&mut out.head, flexible);
        }
        end_tagged_fields(&mut out.head, flexible);
    }
    end_tagged_fields(&mut out.head, flexible);
    out.finish()
}

/// A frame being built: the pieces so far, and the bytes after them.
struct Pieces {
    /// The first piece, with the hole for the frame's size, once a record
    /// set follows it (else it is `head`).
    first: Option<BytesMut>,
    /// The pieces after `first`.
    pieces: Vec<Bytes>,
    head: BytesMut,
    /// The bytes in `first` and `pieces`.
    size: usize,
}

impl Pieces {
    fn put_records(&mut self, records: Bytes) {
        if records.len() < SPLICE_MIN_BYTES {
            self.head.put_slice(&records);
            return;
        }
        // `split` hands over what is written and keeps the rest of the
        // buffer's capacity for what follows: nothing is copied.
        let written = self.head.split();
        self.size += written.len() + records.len();
        match self.first {
            None => self.first = Some(written),
            Some(_) => self.pieces.push(written.freeze()),
        }
        self.pieces.push(records);
    }

    /// The frame: its size (what follows the `int32`) in place, then the
    /// pieces.
    fn finish(self) -> Result<Frame, String> {
        let Pieces { first, pieces, head, size } = self;
        let size = size + head.len() - 4;
        let size = i32::try_from(size).map_err(|_| format!("a response of {size} bytes, over 2 GiB"))?;
        let (mut first, rest) = match first {
            Some(first) => (first, Some(head.freeze())),
            None => (head, None),
        };
        first[..4].copy_from_slice(&size.to_be_bytes());
        Ok(Frame::from_pieces(std::iter::once(first.freeze()).chain(pieces).chain(rest)))
    }
}

fn failed(e: impl std::fmt::Display) -> String {
    format!("the response did not encode: {e}")
}

/// Writes `message` without its last field, which is encoded empty as
/// `empty`, nor its tagged fields, which must be unset.
fn encode_before_last(
    head: &mut BytesMut,
    message: &impl Encodable,
    version: i16,
    empty: &[u8],
) -> Result<(), String> {
    message.encode(head, version).map_err(failed)?;
    // A layout check, not a proof: tagged fields ending in these bytes
    // would pass it, which is why `untagged` is checked first.
    let tail = empty.len() + usize::from(version >= FLEXIBLE);
    let ends_as_expected = head.len() >= tail
        && head[head.len() - tail..].starts_with(empty)
        && (version < FLEXIBLE || head[head.len() - 1] == 0);
    if !ends_as_expected {
        // kafka-protocol's layout is not the one this module expects.
        return Err("a message did not end with its empty last field".into());
    }
    head.truncate(head.len() - tail);
    Ok(())
}

/// An empty array: `int32` 0, or the compact length 0 + 1.
fn empty_array(flexible: bool) -> &'static [u8] {
    if flexible {
        &[1]
    } else {
        &[0, 0, 0, 0]
    }
}

/// Null bytes: `int32` -1, or the compact length 0.
fn null_bytes(flexible: bool) -> &'static [u8] {
    if flexible {
        &[0]
    } else {
        &[0xff; 4]
    }
}

/// The length of an array or of bytes: `int32`, or the compact
/// `unsigned varint` length + 1 (written here: kafka-protocol's type
/// encoders are behind a trait it does not export). Both sizes fit: the frame's size is
/// checked to fit an `int32` when it is finished.
fn put_length(head: &mut BytesMut, flexible: bool, len: usize) {
    if flexible {
        // Seven bits a byte, low first; the high bit says more follow.
        let mut n = (len as u32).wrapping_add(1);
        while n >= 0x80 {
            head.put_u8(n as u8 | 0x80);
            n >>= 7;
        }
        head.put_u8(n as u8);
    } else {
        head.put_i32(len as i32);
    }
}

/// No tagged field, in a flexible version.
fn end_tagged_fields(head: &mut BytesMut, flexible: bool) {
    if flexible {
        head.put_u8(0);
    }
}

/// Whether no tagged field is set anywhere in `response` (they are
/// written only from v12).
fn untagged(response: &FetchResponse, version: i16) -> bool {
    let topic =
        |t: &FetchableTopicResponse| t.unknown_tagged_fields.is_empty() && t.partitions.iter().all(partition);
    version < FLEXIBLE
        || (response.unknown_tagged_fields.is_empty()
            && response.node_endpoints.is_empty()
            && response.responses.iter().all(topic))
}

fn partition(p: &PartitionData) -> bool {
    p.unknown_tagged_fields.is_empty()
        && p.diverging_epoch == Default::default()
        && p.current_leader == Default::default()
        && p.snapshot_id == Default::default()
}

#[cfg(test)]
#[path = "fetch_frame_tests.rs"]
mod tests;
