//! Command-line arguments (clap derive) and dispatch; one file per command.
//!
//! The library computes typed reports; these modules only format them as text or JSON.

/// `println!` for command output: a closed stdout (`milvus-tier … | head`) ends the output
/// instead of panicking, and the command finishes with its own exit code.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for command output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

mod archive;
mod backup;
mod bars;
mod config_check;
mod days;
mod gc;
mod meta_show;
mod migrate;
mod partitions;
mod report;
mod restore;
mod status;
mod submit;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use milvus_tier::config::{Config, Tier};
use milvus_tier::error::{Error, exit};

/// Operations sidecar and day-by-day migrator for two-tier Milvus 1.1.1 clusters.
#[derive(Debug, Parser)]
#[command(name = "milvus-tier", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "MILVUS_TIER_CONFIG",
        default_value = "milvus-tier.toml"
    )]
    pub config: PathBuf,
    /// Log format: text on a terminal, json otherwise by default.
    #[arg(long, global = true, env = "MILVUS_TIER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect Milvus metadata.
    #[command(subcommand)]
    Meta(MetaCommand),
    /// Move one day (or a range) from short-term to long-term: plan, stage, build, publish.
    Migrate(migrate::MigrateArgs),
    /// Run the migration of a day (or a range, as an array job) on AWS Batch; `--wait`
    /// watches it and notifies Slack.
    Submit(submit::SubmitArgs),
    /// Manage the short-term cluster's daily partitions.
    #[command(subcommand)]
    Partitions(PartitionsCommand),
    /// Back up already-published days to the configured backup target.
    Backup(backup::BackupArgs),
    /// Restore backed-up days into long-term (same publish as migrate).
    Restore(restore::RestoreArgs),
    /// Check published days: long-term rows, files, backup and short-term counts.
    Verify(verify::VerifyArgs),
    /// Remove segment folders on long-term storage that no row needs.
    Gc(gc::GcArgs),
    /// Move days older than `archive.after_days` out of long-term (they stay in the backup);
    /// exit 5 when a due day is kept.
    Archive(archive::ArchiveArgs),
    /// Where each day is: both tiers, the journal, backup, verify, archive, and its phase;
    /// exit 5 when a day is behind.
    Status(status::StatusArgs),
    /// Handle JSON reports.
    #[command(subcommand)]
    Report(ReportCommand),
}

/// `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Upload a JSON report to S3 or a folder (what the Batch job does with migrate's report).
    Upload(report::UploadArgs),
}

/// `partitions` subcommands.
#[derive(Debug, Subcommand)]
pub enum PartitionsCommand {
    /// Create the coming days' partitions; drop old ones confirmed in long-term.
    Rotate(partitions::RotateArgs),
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and check every database,
    /// storage path and collection it names.
    Check,
}

/// `meta` subcommands.
#[derive(Debug, Subcommand)]
pub enum MetaCommand {
    /// List one day's partitions and their files by type, with rows and bytes.
    Show(MetaShowArgs),
}

/// Arguments of `meta show`.
#[derive(Debug, clap::Args)]
pub struct MetaShowArgs {
    /// Which cluster to read.
    #[arg(long, value_parser = parse_tier)]
    pub tier: Tier,
    /// The day, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    /// Collection to read instead of the configured one.
    #[arg(long)]
    pub collection: Option<String>,
    /// Print a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--tier`: one of [`Tier::ALL`], as the library spells it.
fn parse_tier(s: &str) -> std::result::Result<Tier, String> {
    s.parse()
}

/// The JSON report of a command over days: `{"days": [...]}`.
#[derive(serde::Serialize)]
struct Days<'a, T> {
    days: &'a [T],
}

/// Run the parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let pushed = cli.command.metrics_group(&config);
    let started = std::time::Instant::now();
    let result = match cli.command {
        Command::Config(ConfigCommand::Check) => config_check::run(&cli.config, &config).await,
        Command::Meta(MetaCommand::Show(args)) => meta_show::run(&config, &args).await,
        Command::Migrate(args) => migrate::run(&config, &args, progress_for(cli.log_format)).await,
        Command::Submit(args) => submit::run(&config, &args).await,
        Command::Partitions(PartitionsCommand::Rotate(args)) => {
            partitions::run(&config, &args).await
        }
        Command::Backup(args) => backup::run(&config, &args).await,
        Command::Restore(args) => restore::run(&config, &args).await,
        Command::Verify(args) => verify::run(&config, &args).await,
        Command::Gc(args) => gc::run(&config, &args).await,
        Command::Status(args) => status::run(&config, &args).await,
        Command::Archive(args) => archive::run(&config, &args).await,
        Command::Report(ReportCommand::Upload(args)) => report::upload(&config, &args).await,
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => fail(&e),
    };
    if let Some((command, collection)) = pushed {
        let end = milvus_tier::metrics::RunEnd {
            command,
            collection: &collection,
            exit_code: code,
            seconds: started.elapsed().as_secs_f64(),
            ended_at: chrono::Utc::now().timestamp_micros() as f64 / 1e6,
        };
        milvus_tier::metrics::push_run(&config, &end).await;
    }
    code
}

impl Command {
    /// The Pushgateway group (command, collection) of a run whose figures are pushed.
    fn metrics_group(&self, config: &Config) -> Option<(&'static str, String)> {
        let long = || config.long_term.collection.clone();
        match self {
            Command::Migrate(_) => Some(("migrate", long())),
            Command::Backup(_) => Some(("backup", long())),
            Command::Restore(a) => Some(("restore", a.to_collection.clone().unwrap_or_else(long))),
            Command::Verify(_) => Some(("verify", long())),
            Command::Partitions(PartitionsCommand::Rotate(_)) => {
                Some(("partitions_rotate", config.short_term.collection.clone()))
            }
            Command::Submit(a) if a.wait => Some(("submit", long())),
            Command::Archive(_) => Some(("archive", long())),
            _ => None,
        }
    }
}

/// The first 16 hex digits of a digest, as reports print it.
fn short_digest(d: &str) -> &str {
    &d[..16.min(d.len())]
}

/// A byte count as a person reads it (`2.59 MiB`); a count that is not one reads `?`.
fn human<N: TryInto<u64>>(n: N) -> String {
    n.try_into()
        .map_or_else(|_| "?".into(), |b| indicatif::HumanBytes(b).to_string())
}

/// One step line of a day's text report; `bytes` labels the byte count.
fn print_step(s: &milvus_tier::run_report::StepReport, bytes: &str) {
    outln!(
        "  {:<8} {:>8.2}s  files {:>5}  rows {:>10}  {bytes:<4} {:>11}  {}{}",
        s.step,
        s.seconds,
        s.files,
        s.rows,
        human(s.bytes),
        s.outcome,
        if s.digest.is_empty() {
            String::new()
        } else {
            format!("  blake3 {}", short_digest(&s.digest))
        }
    );
}

/// Write command output to stdout. A reader that went away (broken pipe) is the end of the
/// output: the rest is dropped silently; any other write error is told once on stderr.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static GONE: AtomicBool = AtomicBool::new(false);
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to stdout: {e}");
        }
    }
}

/// Print an error as one line on stderr and return its exit code.
pub fn fail(e: &Error) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}

/// Exit code for a command whose checks did not all pass.
pub const CHECKS_FAILED: i32 = exit::FAILURE;

/// Bars for a person at a terminal (text logs); periodic log events otherwise.
fn progress_for(format: Option<LogFormat>) -> milvus_tier::progress::Progress {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() && format != Some(LogFormat::Json) {
        milvus_tier::progress::Progress::view(std::sync::Arc::new(bars::Bars::stderr()))
    } else {
        milvus_tier::progress::Progress::log()
    }
}
