//! One sparse index over an [`EntryFile`]: the offset index and the time
//! index are both this, with the entry type as the only difference (how
//! an entry is encoded, what bounds it, what a lookup searches for).
//!
//! Entries increase strictly in both of their fields. Appends that would
//! not are ignored (a rescan may revisit the last entry's batch), and so
//! is an append to a full index (lookups then scan further: correct, only
//! slower). The index is derived data: recovery rebuilds it, a failed
//! check makes lookups start at the segment start, and it is never trusted
//! over the log.

use std::marker::PhantomData;
use std::path::Path;

use super::entry_file::{EntryFile, EntryView, LazyCheck};
use crate::error::Result;
use crate::io::FileSystem;

/// What a sparse index stores: a fixed-size entry of two fields that both
/// increase strictly from one entry to the next.
pub trait SparseEntry: Copy + std::fmt::Debug + PartialEq {
    /// Bytes per stored entry.
    const BYTES: usize;
    /// Writes the entry, relative to the segment's `base_offset`, into
    /// `out` (`BYTES` long); false when it does not fit the format.
    fn encode(self, base_offset: u64, out: &mut [u8]) -> bool;
    /// The entry stored as `bytes` (`BYTES` of them).
    fn decode(bytes: &[u8], base_offset: u64) -> Self;
    /// Whether this entry may follow `prev` (both fields strictly larger).
    fn follows(self, prev: Self) -> bool;
    /// Why this entry cannot belong to a segment bounded by `bound` (log
    /// bytes for the offset index, the next offset for the time index).
    fn out_of_bounds(self, bound: u64) -> Option<&'static str>;
}

/// The stored bytes of `entry` if an index whose last entry is `last`
/// takes it (it follows `last` and fits the format): the one rule for
/// what an index stores, for live indexes and for files written whole.
fn admit<E: SparseEntry, const N: usize>(last: Option<E>, entry: E, base_offset: u64) -> Option<[u8; N]> {
    if last.is_some_and(|last| !entry.follows(last)) {
        return None;
    }
    let mut bytes = [0u8; N];
    entry.encode(base_offset, &mut bytes).then_some(bytes)
}

/// The bytes of an index file holding `entries` (those it takes, as
/// [`SparseIndex`] appends would), for a segment at `base_offset`.
pub(crate) fn encode_entries<E: SparseEntry, const N: usize>(entries: &[E], base_offset: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * N);
    let mut last = None;
    for &e in entries {
        if let Some(bytes) = admit::<E, N>(last, e, base_offset) {
            out.extend_from_slice(&bytes);
            last = Some(e);
        }
    }
    out
}

/// A sparse index of `E` entries, `N` bytes each.
#[derive(Debug)]
pub struct SparseIndex<E: SparseEntry, const N: usize> {
    file: EntryFile<N>,
    base_offset: u64,
    /// A full check deferred to the first lookup (see [`SparseIndex::defer_check`]).
    lazy: LazyCheck,
    /// The last entry, kept by appends so they need not read the mapping.
    last: Last<E>,
    entry: PhantomData<E>,
}

/// What [`SparseIndex`] knows of its last entry without reading the file.
#[derive(Debug, Clone, Copy)]
enum Last<E> {
    /// Not read yet, or the entries changed in a way that loses it.
    Unknown,
    /// The last entry (`None`: the index is empty).
    Known(Option<E>),
}

impl<E: SparseEntry, const N: usize> SparseIndex<E, N> {
    /// Opens (or creates) the index at `path` with room for `capacity`
    /// entries (0 = exactly its current entries, for a sealed segment); see
    /// `EntryFile::open` for how a damaged length is handled. Call
    /// [`SparseIndex::sanity_check`] before trusting the entries.
    pub fn open(
        fs: &dyn FileSystem,
        path: &Path,
        base_offset: u64,
        capacity: usize,
        entries_bound: usize,
    ) -> Result<Self> {
        assert_eq!(E::BYTES, N, "an entry type is stored in entries of its size");
        Ok(SparseIndex {
            file: EntryFile::open(fs, path, capacity, entries_bound)?,
            base_offset,
            lazy: LazyCheck::default(),
            last: Last::Unknown,
            entry: PhantomData,
        })
    }

    /// The segment's base offset, which entries are relative to.
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.file.len()
    }

    /// True when no entry can be added.
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `i` (`i < entries()`); `None` when the index cannot be read
    /// now (see `EntryFile::view`).
    pub(super) fn entry(&self, i: usize) -> Option<E> {
        let view = self.file.view()?;
        (i < view.len()).then(|| E::decode(view.get(i), self.base_offset))
    }

    /// The last entry.
    pub fn last_entry(&self) -> Option<E> {
        self.entries().checked_sub(1).and_then(|i| self.entry(i))
    }

    /// The last entry, from memory when known; `Err` when the index has
    /// entries but cannot be read now.
    fn known_last(&mut self) -> Result<Option<E>, ()> {
        if let Last::Known(last) = self.last {
            return Ok(last);
        }
        let last = self.last_entry();
        if last.is_none() && self.entries() > 0 {
            return Err(()); // unreadable now: the entry cannot be ordered
        }
        self.last = Last::Known(last);
        Ok(last)
    }

    /// The stored bytes of `entry` if the index takes it after its last
    /// entry (see [`admit`]).
    fn admitted(&mut self, entry: E) -> Option<[u8; N]> {
        let last = self.known_last().ok()?;
        admit::<E, N>(last, entry, self.base_offset)
    }

    /// Appends `entry` unless it does not fit the format, does not follow
    /// the last entry, or the index is full (see the module docs).
    pub(super) fn push(&mut self, entry: E) {
        if self.is_full() {
            return;
        }
        if let Some(bytes) = self.admitted(entry) {
            let pushed = self.file.push(&bytes);
            self.last = if pushed { Last::Known(Some(entry)) } else { Last::Unknown };
        }
    }

    /// The number of leading entries before the first one `past` holds for
    /// (entries increase, so `past` flips once): a binary search. 0 when
    /// the index cannot be read now (lookups then start at the segment
    /// start, which is always correct).
    pub(super) fn count_before(&self, past: impl Fn(E) -> bool) -> usize {
        let Some(view) = self.file.view() else { return 0 };
        Self::flip_in(&view, self.base_offset, past)
    }

    /// The binary search behind [`SparseIndex::count_before`] and
    /// [`SparseIndex::bracket`], on `view`.
    fn flip_in(view: &EntryView<'_, N>, base_offset: u64, past: impl Fn(E) -> bool) -> usize {
        let (mut lo, mut hi) = (0usize, view.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if past(E::decode(view.get(mid), base_offset)) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// The entries on either side of where `past` flips (entries
    /// increase, so it flips once): the last one it does not hold for and
    /// the first one it holds for, found through one view of the file.
    /// `None` when the entries failed their (deferred) check or cannot be
    /// read now: lookups then start at the segment start, always correct.
    pub(super) fn bracket(&self, past: impl Fn(E) -> bool) -> Option<(Option<E>, Option<E>)> {
        let view = self.file.view()?;
        let entries = self.entries();
        let checked =
            |n: usize, bound| Self::check_in(&view, self.base_offset, 0..n.min(entries), bound).is_ok();
        if !self.lazy.passed(checked) {
            return None;
        }
        let lo = Self::flip_in(&view, self.base_offset, past);
        let at = |i: usize| (i < view.len()).then(|| E::decode(view.get(i), self.base_offset));
        Some((lo.checked_sub(1).and_then(at), at(lo)))
    }

    /// Keeps the first `n` entries (the dropped ones are zeroed: see
    /// `EntryFile::truncate`).
    pub(super) fn keep(&mut self, n: usize) -> Result<()> {
        if n < self.entries() {
            self.last = Last::Unknown;
        }
        self.file.truncate(n)
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.last = Last::Known(None);
        self.lazy.clear();
        self.file.truncate(0)
    }

    /// Checks that entries increase strictly and lie within `bound`;
    /// returns a reason when they do not.
    pub fn sanity_check(&self, bound: u64) -> Result<(), &'static str> {
        self.check(0..self.entries(), bound)
    }

    /// The O(1) part of [`SparseIndex::sanity_check`]: the same rules on
    /// the first and last entries only. Pair it with [`SparseIndex::defer_check`].
    pub fn quick_check(&self, bound: u64) -> Result<(), &'static str> {
        let last = self.entries().checked_sub(1);
        let ends = last.into_iter().flat_map(|l| std::iter::once(0).chain((l > 0).then_some(l)));
        self.check(ends, bound)
    }

    /// Defers the full check of the current entries (against `bound`) to
    /// the first lookup; if it fails then, lookups start at the segment
    /// start instead of trusting the entries.
    pub fn defer_check(&mut self, bound: u64) {
        self.lazy.defer(self.entries(), bound);
    }

    /// Checks the entries at `indexes` (ascending): each within `bound`,
    /// each following the one checked before.
    fn check(&self, indexes: impl Iterator<Item = usize>, bound: u64) -> Result<(), &'static str> {
        let view = self.file.view().ok_or("index could not be mapped")?;
        Self::check_in(&view, self.base_offset, indexes, bound)
    }

    /// [`SparseIndex::check`] on `view`, entries relative to `base_offset`.
    fn check_in(
        view: &EntryView<'_, N>,
        base_offset: u64,
        indexes: impl Iterator<Item = usize>,
        bound: u64,
    ) -> Result<(), &'static str> {
        let mut prev: Option<E> = None;
        for i in indexes {
            if i >= view.len() {
                return Err("index could not be mapped");
            }
            let e = E::decode(view.get(i), base_offset);
            if let Some(why) = e.out_of_bounds(bound) {
                return Err(why);
            }
            if prev.is_some_and(|p| !e.follows(p)) {
                return Err("entries not strictly increasing");
            }
            prev = Some(e);
        }
        Ok(())
    }

    /// Trims the file to its entries (sealing or clean close).
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.seal(None)
    }

    /// Trims the file to its entries and appends `last` (when it follows
    /// the last entry) as the final one, written through the file (see
    /// `EntryFile::seal`): sealing or clean close.
    pub(crate) fn seal(&mut self, last: Option<E>) -> Result<()> {
        let bytes = last.and_then(|e| self.admitted(e));
        let sealed = self.file.seal(bytes.as_ref());
        self.last = match (&sealed, bytes) {
            (Ok(()), Some(_)) => Last::Known(last),
            (Ok(()), None) => self.last,
            (Err(_), _) => Last::Unknown,
        };
        sealed
    }

    /// Lets the file grow to `capacity` entries, so appends can add
    /// entries (it grows at the first one that needs the room).
    pub(crate) fn reserve(&mut self, capacity: usize) {
        self.file.reserve(capacity);
    }

    /// Makes the entries durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    /// The index file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}
