//! `annals repair`: cut a partition at damage the engine refuses to cut on
//! its own (fsynced, possibly acknowledged, records), keeping every cut
//! byte in a quarantine file. Without `--accept-data-loss` it only says
//! what it would do.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use annals::inspect::verify_store_partition;
use annals::io::StdFileSystem;
use annals::{AcceptDataLoss, Store};
use clap::Args;

use crate::{existing_dir, CliResult, DEFAULT_DIR};

#[derive(Args)]
pub struct RepairArgs {
    /// The store's data directory (the store must not be open).
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// The topic.
    #[arg(long)]
    topic: String,
    /// The partition.
    #[arg(long)]
    partition: u32,
    /// Cut the log at the damage: the records from there on leave the log
    /// (their bytes are kept in quarantine files). Without it, nothing is
    /// changed.
    #[arg(long)]
    accept_data_loss: bool,
}

pub fn run(a: &RepairArgs) -> CliResult<ExitCode> {
    existing_dir(&a.dir)?;
    annals::store::validate_topic_name(&a.topic)?;
    let name = annals::store::partition_dir_name(&a.topic, a.partition);
    let partition_dir = a.dir.join(&name);
    if !a.accept_data_loss {
        let report = verify_store_partition(&StdFileSystem, &a.dir, &name, &mut |_| {})?;
        for p in &report.problems {
            outln!("DAMAGE {} at position {}: {}", p.path.display(), p.position, p.detail);
        }
        if report.problems.is_empty() {
            outln!("{}: nothing a repair would cut", partition_dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        outln!("nothing was changed; run again with --accept-data-loss to cut there (the bytes are kept)");
        return Ok(ExitCode::FAILURE);
    }
    let fs = Arc::new(StdFileSystem);
    let report = Store::repair_partition(fs, &a.dir, &a.topic, a.partition, AcceptDataLoss)?;
    for damage in &report.damage {
        outln!("DAMAGE {damage}");
    }
    for q in &report.quarantined {
        outln!(
            "CUT {} at position {}: {} bytes, offsets {} to {} (and any after), kept in {}",
            q.segment.display(),
            q.position,
            q.bytes,
            q.first_offset,
            q.end_offset,
            q.path.display()
        );
    }
    let cut: u64 = report.quarantined.iter().map(|q| q.bytes).sum();
    outln!(
        "repaired {}: {} bytes cut into {} quarantine file(s); the log now ends at offset {}",
        partition_dir.display(),
        cut,
        report.quarantined.len(),
        report.log_end_offset
    );
    Ok(ExitCode::SUCCESS)
}
