//! Guards over mapped bytes: a plain borrow for a mapping that lives as
//! long as its owner, a lock guard for one a [`super::FilePool`] may let go.

use std::ops::{Deref, DerefMut};

use parking_lot::{MappedRwLockReadGuard, MappedRwLockWriteGuard};

/// Mapped bytes, readable while this lives.
pub struct MappedBytes<'a>(Read<'a>);

enum Read<'a> {
    Slice(&'a [u8]),
    Guard(MappedRwLockReadGuard<'a, [u8]>),
}

impl<'a> MappedBytes<'a> {
    /// Bytes borrowed from a mapping its owner keeps.
    pub fn slice(bytes: &'a [u8]) -> Self {
        MappedBytes(Read::Slice(bytes))
    }

    pub(super) fn guard(guard: MappedRwLockReadGuard<'a, [u8]>) -> Self {
        MappedBytes(Read::Guard(guard))
    }

    /// The borrow, if these bytes are one (not a lock guard).
    pub(super) fn into_slice(self) -> Option<&'a [u8]> {
        match self.0 {
            Read::Slice(s) => Some(s),
            Read::Guard(_) => None,
        }
    }
}

impl Deref for MappedBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Read::Slice(s) => s,
            Read::Guard(g) => g,
        }
    }
}

/// Mapped bytes, writable while this lives.
pub struct MappedBytesMut<'a>(Write<'a>);

enum Write<'a> {
    Slice(&'a mut [u8]),
    Guard(MappedRwLockWriteGuard<'a, [u8]>),
}

impl<'a> MappedBytesMut<'a> {
    /// Bytes borrowed from a mapping its owner keeps.
    pub fn slice(bytes: &'a mut [u8]) -> Self {
        MappedBytesMut(Write::Slice(bytes))
    }

    pub(super) fn guard(guard: MappedRwLockWriteGuard<'a, [u8]>) -> Self {
        MappedBytesMut(Write::Guard(guard))
    }

    /// The borrow, if these bytes are one (not a lock guard).
    pub(super) fn into_slice(self) -> Option<&'a mut [u8]> {
        match self.0 {
            Write::Slice(s) => Some(s),
            Write::Guard(_) => None,
        }
    }
}

impl Deref for MappedBytesMut<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Write::Slice(s) => s,
            Write::Guard(g) => g,
        }
    }
}

impl DerefMut for MappedBytesMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Write::Slice(s) => s,
            Write::Guard(g) => g,
        }
    }
}
