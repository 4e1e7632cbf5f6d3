//! A partition directory built from a valid fixture, then mutated by the
//! input (bit flips, truncations, garbage appended, files duplicated,
//! removed or renamed), opened: no panic, no hang; either a typed error or
//! a log in which every record returned is byte-identical to the one the
//! fixture wrote at that offset. The fixture's segments hold batches of
//! every codec (none, gzip, snappy, lz4, zstd).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use annals::io::sim::{CrashMode, SimFs};
use annals::io::{FileSystem, OpenMode};
use annals::format::Codec;
use annals::{CompressionType, LogConfig, PartitionLog, ReadBound, Record};
use libfuzzer_sys::fuzz_target;

const DIR: &str = "/p";

fn config() -> LogConfig {
    LogConfig { segment_bytes: 600, index_interval_bytes: 100, segment_index_bytes: 128, ..LogConfig::default() }
}

/// The fixture: three or more segments, cleanly closed; and what it holds.
fn fixture() -> &'static (SimFs, Vec<(Option<Vec<u8>>, Option<Vec<u8>>, i64)>) {
    static FIXTURE: OnceLock<(SimFs, Vec<(Option<Vec<u8>>, Option<Vec<u8>>, i64)>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let fs = SimFs::new();
        let mut written = Vec::new();
        // Segments of every codec: eight appends each, the log reopened with
        // the next `compression.type` (reads need none of it).
        let mut log = PartitionLog::open_with(DIR, config(), annals::OpenOptions::default().with_fs(Arc::new(fs.clone()))).unwrap();
        for i in 0..40u64 {
            if i % 8 == 0 && i > 0 {
                log.close().unwrap();
                drop(log);
                let codec = [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd][(i / 8 - 1) as usize];
                let compressed = LogConfig { compression_type: CompressionType::Codec(codec), ..config() };
                log = PartitionLog::open_with(DIR, compressed, annals::OpenOptions::default().with_fs(Arc::new(fs.clone()))).unwrap();
            }
            let r = match i % 4 {
                0 => Record::with_key(format!("k{}", i % 5), format!("value-{i}")),
                1 => Record::tombstone(format!("k{}", i % 5)),
                _ => Record::new(format!("v{i}-{}", "x".repeat(i as usize % 13))),
            }
            .timestamp_ms(1_000 + i as i64);
            written.push((r.key.as_ref().map(|k| k.to_vec()), r.value.as_ref().map(|v| v.to_vec()), 1_000 + i as i64));
            log.append(&[r]).unwrap();
        }
        log.close().unwrap();
        drop(log);
        (fs, written)
    })
}

fn files(fs: &SimFs) -> Vec<PathBuf> {
    fs.list_dir(Path::new(DIR)).unwrap_or_default().into_iter().map(|n| Path::new(DIR).join(n)).collect()
}

/// Applies one 4-byte mutation: op, file, and two position/value bytes.
fn mutate(fs: &SimFs, m: &[u8]) {
    let files = files(fs);
    if files.is_empty() {
        return;
    }
    let file = &files[m[1] as usize % files.len()];
    let Ok(handle) = fs.open(file, OpenMode::Existing) else { return };
    let len = handle.size().unwrap_or(0);
    let pos = |b: u8| if len == 0 { 0 } else { (u64::from(b) * 7919 + u64::from(m[3])) % len };
    match m[0] % 6 {
        0 => {
            let at = pos(m[2]);
            let mut byte = [0u8];
            if handle.read_at(&mut byte, at).unwrap_or(0) == 1 {
                let _ = handle.write_all_at(&[byte[0] ^ m[3].max(1)], at);
            }
        }
        1 => {
            let _ = handle.set_len(pos(m[2]));
        }
        2 => {
            let garbage: Vec<u8> = (0..m[2]).map(|i| i.wrapping_mul(m[3]) ^ 0x5a).collect();
            let _ = handle.write_all_at(&garbage, len);
        }
        3 => {
            // Duplicate under another segment's name.
            let target = &files[m[2] as usize % files.len()];
            let mut bytes = vec![0u8; len as usize];
            if handle.read_at(&mut bytes, 0).is_ok() {
                if let Ok(t) = fs.open(target, OpenMode::Create) {
                    let _ = t.set_len(0);
                    let _ = t.write_all_at(&bytes, 0);
                }
            }
        }
        4 => {
            let _ = fs.remove_file(file);
        }
        _ => {
            let name = format!("{:020}.{}", u64::from(m[2]) * 3, ["log", "index", "timeindex"][m[3] as usize % 3]);
            let _ = fs.rename(file, &Path::new(DIR).join(name));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (fixture, written) = fixture();
    let fs = fixture.crash_image(CrashMode::AllPending);
    for m in data.chunks_exact(4).take(16) {
        mutate(&fs, m);
    }
    let Ok(log) = PartitionLog::open_with(DIR, config(), annals::OpenOptions::default().with_fs(Arc::new(fs))) else { return };
    let mut next = log.log_start_offset();
    // Bounded: each read advances or stops.
    for _ in 0..1000 {
        if next >= log.log_end_offset() {
            break;
        }
        let Ok(fetched) = log.read(next, 4096, ReadBound::LogEnd) else { return };
        for r in fetched.records() {
            let want = written.get(r.offset as usize).expect("an offset the fixture never wrote was returned");
            assert_eq!(r.key.map(<[u8]>::to_vec), want.0, "key at {}", r.offset);
            assert_eq!(r.value.map(<[u8]>::to_vec), want.1, "value at {}", r.offset);
            assert_eq!(r.timestamp_ms, want.2, "timestamp at {}", r.offset);
        }
        match fetched.next_offset() {
            Some(n) if n > next => next = n,
            _ => break,
        }
    }
});
