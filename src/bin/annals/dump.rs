//! `annals dump`: every batch of a segment file, like `kafka-dump-log`.

use std::path::PathBuf;
use std::process::ExitCode;

use annals::format::RecordIter;
use annals::io::StdFileSystem;
use annals::segment::SegmentBatches;
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
    let mut walk = SegmentBatches::open(&StdFileSystem, path)?;
    let len = walk.file_len();
    outln!("Dumping {}", path.display());
    let (mut batches, mut records) = (0u64, 0u64);
    // Bounded: each step advances by a whole batch (at least a header).
    while let Some(b) = walk.next_batch()? {
        let (header, pos) = (b.header, b.position);
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
            b.check.is_ok()
        );
        if let Err(e) = b.check {
            return Err(format!("{}: corrupt batch at position {pos}: {e}", path.display()).into());
        }
        if a.print_data {
            for r in RecordIter::new(b.bytes, header) {
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
    }
    outln!("{batches} batches, {records} records, {len} bytes: all valid");
    Ok(ExitCode::SUCCESS)
}
