//! The raft state kept beside the log: the vote, the last committed log
//! id and the last purged log id, one small file each in the store's
//! directory (the log itself is in `log/`).
//!
//! Format: `format::kv`, one `json=` line holding openraft's own serde
//! form of the value (its node ids are generic), under a header naming the
//! file:
//!
//! ```text
//! annals-raft-vote 1
//! json={"leader_id":{"term":3,"node_id":1},"committed":true}
//! crc32=...
//! ```
//!
//! ORDER: each is replaced atomically and durably (temp file, fsync,
//! rename, fsync directory) before the call that changed it returns. A
//! missing file means the value was never set; a damaged one is an error,
//! never a guess: a vote forgotten could let the node vote twice in a term.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::format::kv;
use crate::io::{read_small_file, write_file_atomic, FileSystem};

use super::error::RaftStoreError;

/// One state file: its name, header line, and the largest size believed.
#[derive(Clone, Copy, Debug)]
pub(super) struct StateFile {
    pub name: &'static str,
    header: &'static str,
    max_bytes: u64,
}

/// Larger log-store state files are not read (a log id or vote is well
/// under 1 KiB).
const SMALL_FILE_BYTES: u64 = 64 * 1024;

/// The vote (openraft `Vote`).
pub(super) const VOTE: StateFile =
    StateFile { name: "vote", header: "annals-raft-vote 1", max_bytes: SMALL_FILE_BYTES };
/// The last committed log id (openraft `LogId`).
pub(super) const COMMITTED: StateFile =
    StateFile { name: "committed", header: "annals-raft-committed 1", max_bytes: SMALL_FILE_BYTES };
/// The last purged log id (openraft `LogId`).
pub(super) const PURGED: StateFile =
    StateFile { name: "purged", header: "annals-raft-purged 1", max_bytes: SMALL_FILE_BYTES };
/// The example state machine's last snapshot (its metadata and state), in
/// the state machine's own directory.
pub(super) const SNAPSHOT: StateFile =
    StateFile { name: "snapshot", header: "annals-kv-snapshot 1", max_bytes: 1 << 30 };

/// The log store's state files, for cleaning up temp files an interrupted
/// write left.
pub(super) const LOG_STORE_FILES: [StateFile; 3] = [VOTE, COMMITTED, PURGED];

/// Reads `file` from `dir`; `None` when it does not exist.
pub(super) fn read<T: DeserializeOwned>(
    fs: &dyn FileSystem,
    dir: &Path,
    file: StateFile,
) -> Result<Option<T>, RaftStoreError> {
    let path = dir.join(file.name);
    if !fs.exists(&path).map_err(Error::io("stat raft state", &path))? {
        return Ok(None);
    }
    let invalid = |reason: String| RaftStoreError::InvalidState { path: path.clone(), reason };
    let bytes = read_small_file(fs, &path, file.max_bytes).map_err(Error::io("read raft state", &path))?;
    let pairs = kv::decode(&bytes, file.header).map_err(invalid)?;
    let json = match pairs.as_slice() {
        [("json", json)] => *json,
        _ => return Err(invalid("expected exactly one json= line".into())),
    };
    serde_json::from_str(json).map(Some).map_err(|e| invalid(e.to_string()))
}

/// Replaces `file` in `dir` with `value`, atomically and durably.
pub(super) fn write<T: Serialize>(
    fs: &dyn FileSystem,
    dir: &Path,
    file: StateFile,
    value: &T,
) -> Result<(), RaftStoreError> {
    let path = dir.join(file.name);
    // One line: serde_json escapes newlines inside strings.
    let json = serde_json::to_string(value)
        .map_err(|e| RaftStoreError::InvalidState { path: path.clone(), reason: e.to_string() })?;
    let bytes = kv::encode(file.header, &[("json", json)]);
    write_file_atomic(fs, dir, file.name, &bytes).map_err(Error::io("write raft state", &path))?;
    Ok(())
}

/// Removes the temp files of writes of `files` a crash interrupted (the
/// previous file stands).
pub(super) fn remove_temps(
    fs: &dyn FileSystem,
    dir: &Path,
    files: &[StateFile],
) -> Result<(), RaftStoreError> {
    for file in files {
        let tmp = dir.join(format!("{}.tmp", file.name));
        if fs.exists(&tmp).map_err(Error::io("stat", &tmp))? {
            fs.remove_file(&tmp).map_err(Error::io("remove temp file", &tmp))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimFs;
    use openraft::Vote;

    #[test]
    fn every_flipped_byte_of_a_vote_is_refused_never_misread() {
        let fs = SimFs::new();
        let dir = Path::new("/r");
        crate::io::create_dir_all_durable(&fs, dir).unwrap();
        let vote = Vote::<u64>::new_committed(7, 3);
        write(&fs, dir, VOTE, &vote).unwrap();
        assert_eq!(read::<Vote<u64>>(&fs, dir, VOTE).unwrap(), Some(vote));
        let good = fs.read_file(&dir.join(VOTE.name)).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            let file = fs.open(&dir.join(VOTE.name), crate::io::OpenMode::Create).unwrap();
            file.set_len(0).unwrap();
            file.write_all_at(&bad, 0).unwrap();
            let got = read::<Vote<u64>>(&fs, dir, VOTE);
            assert!(matches!(got, Err(RaftStoreError::InvalidState { .. })), "flip at {i}: {got:?}");
        }
        assert_eq!(
            read::<Vote<u64>>(&fs, Path::new("/elsewhere"), VOTE).unwrap(),
            None,
            "missing: never set"
        );
    }
}
