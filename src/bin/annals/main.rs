//! `annals`: the operator's tools, after Kafka's: producer and consumer
//! perf tests, topics, a segment dump, a read-only verifier, repair, and
//! consumer group offsets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// The data directory the perf commands use when none is given.
const DEFAULT_DIR: &str = "annals-perf-data";

#[derive(Parser)]
#[command(name = "annals", version, about = "Tools for annals partitioned commit logs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Producer and consumer performance tests.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// List, create, describe and delete topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Print every batch (and with --print-data every record) of a segment file.
    Dump(dump::DumpArgs),
    /// Check every segment of a store without changing anything.
    Verify(verify::VerifyArgs),
    /// Cut a partition at damage to fsynced records (kept in quarantine files).
    Repair(repair::RepairArgs),
    /// Committed consumer-group offsets and lag per partition.
    Offsets(topics::OffsetsArgs),
}

/// `--dir` for commands that need an existing store.
#[derive(Args, Clone)]
struct StoreDir {
    /// The store's data directory.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

/// Why a command stopped.
#[derive(Debug)]
enum CliError {
    /// A write to a closed pipe (`annals dump ... | head`): the reader has
    /// what it wanted, so the command stops quietly.
    BrokenPipe,
    /// A one-line error for the user.
    Failed(String),
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Failed(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        CliError::Failed(message.to_owned())
    }
}

impl From<annals::Error> for CliError {
    fn from(e: annals::Error) -> Self {
        CliError::Failed(report(&e))
    }
}

/// An error and its causes on one line (each `Display` shows only its own
/// level; `source()` has the rest).
fn report(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    // Bounded by the chain's length.
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

type CliResult<T = ()> = Result<T, CliError>;

/// Writes one line to stdout; a closed pipe ends the command quietly
/// instead of panicking as `println!` would.
fn write_line(args: std::fmt::Arguments<'_>) -> CliResult {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.write_all(b"\n")).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Failed(format!("writing output: {e}"))
        }
    })
}

/// `println!` that returns a closed pipe or write error to the caller.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))?
    };
}

mod dump;
mod perf;
mod repair;
mod topics;
mod verify;

/// Fails unless `dir` is an existing directory (opening a store would
/// create it).
fn existing_dir(dir: &Path) -> CliResult {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!("{}: no such data directory", dir.display()).into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Perf(c) => perf::run(c),
        Command::Topics(c) => topics::run(c),
        Command::Dump(a) => dump::run(&a),
        Command::Verify(a) => verify::run(&a),
        Command::Repair(a) => repair::run(&a),
        Command::Offsets(a) => topics::offsets(&a),
    };
    match result {
        Ok(code) => code,
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CliError::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
