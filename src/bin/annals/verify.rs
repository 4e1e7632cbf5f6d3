//! `annals verify`: every segment of every partition checked, read-only,
//! with a progress bar on a terminal (plain lines otherwise).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use annals::inspect::{log_bytes, verify_store_partition, VerifyReport};
use annals::io::StdFileSystem;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{existing_dir, CliResult, DEFAULT_DIR};

/// Problems printed per file before the rest are counted.
const PROBLEMS_SHOWN_PER_FILE: usize = 5;

#[derive(Args)]
pub struct VerifyArgs {
    /// The store's data directory.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

/// Partition directories: `<topic>-<partition>`.
fn partition_dirs(dir: &Path) -> CliResult<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_partition = name.rsplit_once('-').is_some_and(|(topic, n)| {
            !topic.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        });
        if is_partition && entry.path().is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

pub fn run(a: &VerifyArgs) -> CliResult<ExitCode> {
    existing_dir(&a.dir)?;
    let dirs = partition_dirs(&a.dir)?;
    let fs = StdFileSystem;
    let mut total_bytes = 0;
    for d in &dirs {
        // For the progress bar only: an unreadable partition is reported below.
        total_bytes += log_bytes(&fs, d).unwrap_or(0);
    }
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal {
        let bar = ProgressBar::new(total_bytes);
        let style = ProgressStyle::with_template(
            "{msg:24} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> ");
        bar.set_style(style);
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut report = VerifyReport::default();
    // Partitions that could not be read, which a store's next open takes
    // offline (it serves the others), with why; and damaged ones.
    let mut offline: Vec<(String, String)> = Vec::new();
    let mut damaged: Vec<(String, usize)> = Vec::new();
    for d in &dirs {
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        bar.set_message(name.clone());
        let r = match verify_store_partition(&fs, &a.dir, &name, &mut |n| bar.inc(n)) {
            Ok(r) => r,
            Err(e) => {
                // One unreadable partition does not stop the check of the rest.
                if !terminal {
                    eprintln!("{name}: unreadable: {e}");
                }
                offline.push((name, e.to_string()));
                continue;
            }
        };
        if !terminal {
            let status = status(&r);
            eprintln!("{name}: {} segments, {} records, {} bytes: {status}", r.segments, r.records, r.bytes);
        }
        if !r.problems.is_empty() {
            damaged.push((name, r.problems.len()));
        }
        report.absorb(r);
    }
    bar.finish_and_clear();
    // A damaged index can have an entry wrong per batch: show the first few
    // per file.
    let mut shown: Vec<(&Path, usize)> = Vec::new();
    for p in &report.problems {
        match shown.iter_mut().find(|(path, _)| *path == p.path.as_path()) {
            Some((_, n)) if *n >= PROBLEMS_SHOWN_PER_FILE => {
                *n += 1;
                continue;
            }
            Some((_, n)) => *n += 1,
            None => shown.push((p.path.as_path(), 1)),
        }
        outln!("CORRUPT {} at position {}: {}", p.path.display(), p.position, p.detail);
    }
    for (path, n) in shown.iter().filter(|(_, n)| *n > PROBLEMS_SHOWN_PER_FILE) {
        outln!("CORRUPT {}: {} more problem(s)", path.display(), n - PROBLEMS_SHOWN_PER_FILE);
    }
    for t in &report.tails {
        if t.quarantine {
            outln!(
                "QUARANTINE {} at position {}: the next open moves {} bytes (offsets from {}) to a quarantine \
                 file and cuts them: they are not a plain torn write and may hold acknowledged records",
                t.path.display(),
                t.position,
                t.bytes,
                t.first_offset
            );
        } else {
            outln!(
                "TORN TAIL {} at position {}: the next open cuts {} bytes (offsets from {}), written after \
                 the last fsync (nothing acknowledged)",
                t.path.display(),
                t.position,
                t.bytes,
                t.first_offset
            );
        }
    }
    for (name, n) in &damaged {
        outln!(
            "DAMAGED {name}: {n} problem(s) above: reads of those bytes fail with a corruption error, and an \
             open that has to scan them (after an unclean shutdown) takes the partition offline"
        );
    }
    for (name, why) in &offline {
        outln!(
            "OFFLINE {name}: unreadable; the store's next open takes it offline and serves the others: {why}"
        );
    }
    let summary = match (offline.len(), status(&report)) {
        (0, status) => status,
        (n, status) if status == "ok" => format!("{n} partition(s) offline"),
        (n, status) => format!("{n} partition(s) offline, {status}"),
    };
    outln!(
        "verified {} partitions, {} segments, {} batches, {} records, {} bytes in {:.2} s: {}",
        dirs.len(),
        report.segments,
        report.batches,
        report.records,
        report.bytes,
        started.elapsed().as_secs_f64(),
        summary
    );
    // A plain torn tail is no damage to act on; anything else is.
    Ok(if report.needs_attention() || !offline.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `ok`, or what was found.
fn status(r: &VerifyReport) -> String {
    let quarantined = r.tails.iter().filter(|t| t.quarantine).count();
    let torn = r.tails.len() - quarantined;
    let mut parts = Vec::new();
    if !r.problems.is_empty() {
        parts.push(format!("{} problem(s)", r.problems.len()));
    }
    if quarantined > 0 {
        parts.push(format!("{quarantined} tail(s) the next open quarantines"));
    }
    if torn > 0 {
        parts.push(format!("{torn} torn tail(s) the next open cuts"));
    }
    if parts.is_empty() {
        "ok".to_string()
    } else if r.needs_attention() {
        parts.join(", ")
    } else {
        format!("ok, {}", parts.join(", "))
    }
}
