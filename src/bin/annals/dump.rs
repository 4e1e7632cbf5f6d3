//! `annals dump`: every batch of a segment file, like `kafka-dump-log`.

use std::path::PathBuf;
use std::process::ExitCode;

use annals::config::MAX_BATCH_BYTES_LIMIT;
use annals::format::{check_batch, BatchHeader, RecordIter, BATCH_HEADER_BYTES};
use annals::io::{read_exact_at, FileSystem, OpenMode, StdFileSystem};
use clap::Args;

use crate::CliResult;

#[derive(Args)]
pub struct DumpArgs {
    /// A segment's `.log` file.
    file: PathBuf,
    /// Print every record too.
    #[arg(long)]
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

pub fn run(a: &DumpArgs) -> CliResult<ExitCode> {
    let path = &a.file;
    let file =
        StdFileSystem.open(path, OpenMode::Existing).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.size().map_err(|e| format!("{}: {e}", path.display()))?;
    outln!("Dumping {}", path.display());
    let (mut pos, mut batches, mut records) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    // Bounded: each step advances by a whole batch (at least a header).
    while pos < len {
        let damaged = |what: String| format!("{}: corrupt batch at position {pos}: {what}", path.display());
        let mut head = [0u8; BATCH_HEADER_BYTES];
        if len - pos < BATCH_HEADER_BYTES as u64 {
            return Err(
                damaged(format!("{} bytes left, a header needs {BATCH_HEADER_BYTES}", len - pos)).into()
            );
        }
        read_exact_at(&*file, &mut head, pos).map_err(|e| format!("{}: {e}", path.display()))?;
        let header = BatchHeader::parse(&head).map_err(|e| damaged(e.to_string()))?;
        let batch_len = u64::from(header.batch_len);
        if batch_len > len - pos || batch_len > MAX_BATCH_BYTES_LIMIT as u64 {
            return Err(
                damaged(format!("batch of {batch_len} bytes runs past the end of the file ({len})")).into()
            );
        }
        buf.resize(header.batch_len as usize, 0);
        read_exact_at(&*file, &mut buf, pos).map_err(|e| format!("{}: {e}", path.display()))?;
        let valid = check_batch(&buf);
        outln!(
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} partitionLeaderEpoch: {} position: {pos} CreateTime: {} size: {} magic: {} attributes: {} crc: {} isvalid: {}",
            header.base_offset,
            header.last_offset(),
            header.record_count,
            header.base_sequence,
            if header.base_sequence < 0 { -1 } else { header.base_sequence + header.last_offset_delta as i32 },
            header.producer_id,
            header.producer_epoch,
            header.leader_epoch,
            header.max_timestamp_ms,
            header.batch_len,
            header.magic,
            header.attributes,
            header.crc,
            valid.is_ok()
        );
        if let Err(e) = valid {
            return Err(damaged(e.to_string()).into());
        }
        if a.print_data {
            for r in RecordIter::new(&buf, header) {
                let headers: Vec<String> = r.headers().map(|(k, v)| format!("{k}:{}", show(v))).collect();
                outln!(
                    "| offset: {} CreateTime: {} keySize: {} valueSize: {} headers: [{}] key: {} payload: {}",
                    r.offset,
                    r.timestamp_ms,
                    r.key.map_or(-1, |k| k.len() as i64),
                    r.value.map_or(-1, |v| v.len() as i64),
                    headers.join(","),
                    show(r.key),
                    show(r.value)
                );
            }
        }
        batches += 1;
        records += u64::from(header.record_count);
        pos += batch_len;
    }
    outln!("{batches} batches, {records} records, {len} bytes: all valid");
    Ok(ExitCode::SUCCESS)
}
