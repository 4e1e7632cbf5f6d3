//! `annals dump`: a segment's `.log`, `.index` or `.timeindex` file, as
//! Kafka's `kafka-dump-log --print-data-log` prints it, with its checks:
//! every batch's CRC and records; every offset-index entry names the batch
//! at its position and that batch's last offset; every time-index entry
//! names a batch's last offset whose maxTimestamp is the entry's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use annals::format::{BatchHeader, Inflater};
use annals::inspect::{offset_entry_problem, stored_entries, time_entry_problem, BatchSummary};
use annals::inspect::{IndexEntry, SegmentBatches, TimeEntry};
use annals::io::{read_small_file, StdFileSystem};
use clap::Args;

use crate::CliResult;

#[derive(Args)]
pub struct DumpArgs {
    /// A segment's `.log`, `.index` or `.timeindex` file.
    file: PathBuf,
    /// Print every record too (Kafka's `--print-data-log`).
    #[arg(long, alias = "print-data-log")]
    print_data: bool,
}

/// Bytes shown as text when printable, else as hex.
fn show(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".into(),
        Some(b) if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') => {
            String::from_utf8_lossy(b).into_owned()
        }
        Some(b) => b.iter().map(|c| format!("{c:02x}")).collect(),
    }
}

fn timestamp_type(h: &BatchHeader) -> &'static str {
    if h.is_log_append_time() {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

fn last_sequence(h: &BatchHeader) -> i64 {
    if h.base_sequence < 0 {
        -1
    } else {
        (i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (i64::from(i32::MAX) + 1)
    }
}

pub fn run(a: &DumpArgs) -> CliResult<ExitCode> {
    let path = &a.file;
    outln!("Dumping {}", path.display());
    match path.extension().and_then(|e| e.to_str()) {
        Some("index") => dump_index(path, false),
        Some("timeindex") => dump_index(path, true),
        _ => dump_log(path, a.print_data),
    }
}

/// Every batch of a `.log` file (and its records with `print_data`).
fn dump_log(path: &Path, print_data: bool) -> CliResult<ExitCode> {
    let mut walk = SegmentBatches::open(&StdFileSystem, path)?;
    let len = walk.file_len();
    let (mut batches, mut records) = (0u64, 0u64);
    // Bounded: each step advances by a whole batch (at least a header).
    while let Some(b) = walk.next_batch()? {
        let (h, pos) = (b.header, b.position);
        let horizon =
            h.delete_horizon_ms().map_or("OptionalLong.empty".into(), |t| format!("OptionalLong[{t}]"));
        outln!(
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} \
             producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} deleteHorizonMs: {horizon} \
             position: {pos} {}: {} size: {} magic: {} compresscodec: {} crc: {} isvalid: {}",
            h.base_offset,
            h.last_offset(),
            h.record_count,
            h.base_sequence,
            last_sequence(&h),
            h.producer_id,
            h.producer_epoch,
            h.leader_epoch,
            h.is_transactional(),
            h.is_control(),
            timestamp_type(&h),
            h.max_timestamp_ms,
            h.batch_len,
            h.magic,
            h.compression(),
            h.crc,
            b.check.is_ok()
        );
        if let Err(e) = b.check {
            return Err(format!("{}: corrupt batch at position {pos}: {e}", path.display()).into());
        }
        if print_data {
            let mut inflater = Inflater::default();
            let records = inflater
                .records(b.bytes, h)
                .map_err(|e| format!("{}: batch at {pos}: {e}", path.display()))?;
            for (i, r) in records.enumerate() {
                let sequence = if h.base_sequence < 0 { -1 } else { i64::from(h.base_sequence) + i as i64 };
                let keys: Vec<&str> = r.headers().map(|(k, _)| k).collect();
                outln!(
                    "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {sequence} headerKeys: [{}] key: {} payload: {}",
                    r.offset,
                    timestamp_type(&h),
                    r.timestamp_ms,
                    r.key.map_or(-1, |k| k.len() as i64),
                    r.value.map_or(-1, |v| v.len() as i64),
                    keys.join(","),
                    show(r.key),
                    show(r.value)
                );
            }
        }
        batches += 1;
        records += u64::from(h.record_count);
    }
    outln!("{batches} batches, {records} records, {len} bytes: all valid");
    Ok(ExitCode::SUCCESS)
}

/// The batches of the `.log` file beside an index, as the checks see them.
fn summaries(log: &Path) -> CliResult<Vec<BatchSummary>> {
    let mut walk = SegmentBatches::open(&StdFileSystem, log)?;
    let (mut out, mut largest) = (Vec::new(), -1i64);
    // Bounded: each step advances by a whole batch.
    while let Some(b) = walk.next_batch()? {
        if let Err(e) = b.check {
            return Err(format!("{}: corrupt batch at position {}: {e}", log.display(), b.position).into());
        }
        largest = largest.max(b.header.max_timestamp_ms);
        out.push(BatchSummary {
            position: b.position,
            base_offset: b.header.base_offset,
            last_offset: b.header.last_offset(),
            max_timestamp_ms: b.header.max_timestamp_ms,
            largest_so_far_ms: largest,
        });
    }
    Ok(out)
}

/// Every entry of an `.index` or `.timeindex` file, each checked against
/// the segment's `.log` file; an error when one does not hold.
fn dump_index(path: &Path, time: bool) -> CliResult<ExitCode> {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let base: u64 = name.parse().map_err(|_| format!("{}: not a segment file name", path.display()))?;
    let bytes =
        read_small_file(&StdFileSystem, path, 1 << 30).map_err(|e| format!("{}: {e}", path.display()))?;
    let batches = summaries(&path.with_extension("log"))?;
    let mut problems = Vec::new();
    if time {
        for (_, e) in stored_entries::<TimeEntry>(&bytes, base) {
            outln!("timestamp: {} offset: {}", e.timestamp_ms, e.offset);
            problems.extend(time_entry_problem(&batches, e));
        }
    } else {
        for (_, e) in stored_entries::<IndexEntry>(&bytes, base) {
            outln!("offset: {} position: {}", e.offset, e.position);
            problems.extend(offset_entry_problem(&batches, e));
        }
    }
    for p in &problems {
        outln!("Mismatch: {p}");
    }
    if !problems.is_empty() {
        let log = path.with_extension("log");
        return Err(
            format!("{}: {} entries do not match {}", path.display(), problems.len(), log.display()).into()
        );
    }
    outln!("all entries match {}", path.with_extension("log").display());
    Ok(ExitCode::SUCCESS)
}
