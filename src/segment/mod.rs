//! Segments: the files of a partition log and their sparse indexes.

pub(crate) mod clean;
pub(crate) mod cursor;
mod entry_file;
mod index;
pub(crate) mod index_check;
mod indexing;
mod inspect;
mod log_segment;
mod lookup;
mod quarantine;
mod recover;
mod rewrite;
mod scan;
mod sparse_index;
mod time_index;
mod truncate;
pub(crate) mod verify;
mod write_buffer;

pub use index::{IndexEntry, INDEX_ENTRY_BYTES};
pub(crate) use indexing::Indexing;
pub use inspect::{InspectedBatch, SegmentBatches};
pub(crate) use log_segment::{LogSegment, Recovery, SegmentPoint, SegmentRole};
pub(crate) use quarantine::{quarantine, Cut};
pub use quarantine::{quarantine_file_name, Quarantine};
pub use sparse_index::SparseEntry;
pub use time_index::{TimeEntry, TIME_INDEX_ENTRY_BYTES};
pub(crate) use write_buffer::is_buffered_write;

/// Finishes a truncation inside a batch that a crash interrupted (see
/// `rewrite.rs`); call before opening the segment. Returns whether there
/// was one.
///
/// # Errors
/// [`crate::Error::Io`].
pub fn finish_rewrite(
    fs: &dyn crate::io::FileSystem,
    dir: &std::path::Path,
    base_offset: u64,
) -> crate::Result<bool> {
    rewrite::finish_intent(fs, &dir.join(log_file_name(base_offset)))
}

/// Digits in a segment file name: Kafka's zero-padded base offset.
const NAME_DIGITS: usize = 20;

/// `{base_offset:020}.log`
pub fn log_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

/// `{base_offset:020}.index`
pub fn index_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.index")
}

/// `{base_offset:020}.timeindex`
pub fn time_index_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.timeindex")
}

/// The kinds of file a partition directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFile {
    /// A `.log` file.
    Log,
    /// An `.index` file.
    Index,
    /// A `.timeindex` file.
    TimeIndex,
    /// A `.rewrite` intent (see `rewrite.rs`).
    Rewrite,
    /// Bytes cut by recovery or repair, kept (see `quarantine.rs`).
    Quarantine,
}

/// Parses `{base_offset:020}.log` / `.index`; anything else is `None`.
pub fn parse_file_name(name: &str) -> Option<(u64, SegmentFile)> {
    let (stem, ext) = name.split_once('.')?;
    let kind = match ext {
        "log" => SegmentFile::Log,
        "index" => SegmentFile::Index,
        "timeindex" => SegmentFile::TimeIndex,
        "rewrite" => SegmentFile::Rewrite,
        _ if quarantine::parse_quarantine_name(stem, ext).is_some() => SegmentFile::Quarantine,
        _ => return None,
    };
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Kafka's offsets are i64: a larger base offset is no segment of ours
    // (and offset arithmetic on it could overflow).
    let base: u64 = stem.parse().ok()?;
    (base <= OFFSET_MAX).then_some((base, kind))
}

/// The largest log end offset (so the largest base offset too): Kafka's
/// offsets are `i64`.
pub const OFFSET_MAX: u64 = i64::MAX as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        assert_eq!(log_file_name(42), "00000000000000000042.log");
        assert_eq!(parse_file_name(&log_file_name(42)), Some((42, SegmentFile::Log)));
        assert_eq!(parse_file_name(&index_file_name(OFFSET_MAX)), Some((OFFSET_MAX, SegmentFile::Index)));
        assert_eq!(parse_file_name(&index_file_name(OFFSET_MAX + 1)), None);
        assert_eq!(parse_file_name(&log_file_name(u64::MAX)), None);
        assert_eq!(parse_file_name(&quarantine_file_name(42, 7)), Some((42, SegmentFile::Quarantine)));
        for bad in [
            "42.log",
            "0000000000000000004x.log",
            "00000000000000000042.txt",
            "clean_shutdown",
            "99999999999999999999.log",
            "00000000000000000042..quarantine",
            "00000000000000000042.x.quarantine",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }
}
