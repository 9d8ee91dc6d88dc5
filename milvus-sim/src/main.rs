//! `milvus-sim`: a simulator of a Milvus 1.1.1 node (metadata, segment files, web API and
//! background engine) for tests and benchmarks. It is not Milvus; see `docs/milvus-sim.md`.

mod api;
mod catalog;
mod compact;
mod delete;
mod engine;
mod error;
mod faults;
mod group_signal;
mod http;
mod ids;
mod index;
mod indexing;
mod locks;
mod memory;
mod merge;
mod metric;
mod query;
mod seed;
mod sim;
mod storage;
mod validate;
mod wal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use milvus_tier::meta::{Backend, ConnectOptions, MetaDb};

use crate::faults::{FaultSettings, Faults};
use crate::sim::{Role, Sim, SimConfig};
use crate::storage::Storage;

#[derive(Debug, Parser)]
#[command(
    name = "milvus-sim",
    version,
    about = "Milvus 1.1.1 simulator (test support)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Args)]
struct Node {
    /// Metadata URL (mysql://user:pass@host:port/db or sqlite://path?mode=rwc).
    #[arg(long, env = "MILVUS_SIM_META")]
    meta: String,
    /// Storage path (segment files live under <storage>/db/tables/).
    #[arg(long, env = "MILVUS_SIM_STORAGE")]
    storage: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the web API and run the background engine.
    Serve {
        #[command(flatten)]
        node: Node,
        /// HTTP port.
        #[arg(long, env = "MILVUS_SIM_PORT", default_value_t = 19121)]
        port: u16,
        /// HTTP bind address.
        #[arg(long, env = "MILVUS_SIM_HOST", default_value = "127.0.0.1")]
        host: String,
        /// Node role: rw runs flush, merge, index and cleanup; ro only serves reads.
        #[arg(long, env = "MILVUS_SIM_ROLE", value_enum, default_value = "rw")]
        role: Role,
        /// RAW files with at least this many rows are indexed.
        #[arg(long, env = "MILVUS_SIM_BUILD_INDEX_THRESHOLD", default_value_t = 4096)]
        build_index_threshold: i64,
        /// Merge throughput, MB/s (0 = unlimited).
        #[arg(long, env = "MILVUS_SIM_MERGE_MB_PER_S", default_value_t = 0.0)]
        merge_mb_per_s: f64,
        /// Index build throughput, MB/s (0 = unlimited).
        #[arg(long, env = "MILVUS_SIM_INDEX_MB_PER_S", default_value_t = 0.0)]
        index_mb_per_s: f64,
        /// Background engine tick, milliseconds.
        #[arg(long, env = "MILVUS_SIM_TICK_MS", default_value_t = 100)]
        tick_ms: u64,
        /// TO_DELETE files older than this many seconds are removed.
        #[arg(long, env = "MILVUS_SIM_TTL_SECS", default_value_t = 10)]
        ttl_secs: i64,
        /// Pause of a TTL pass between removing rows and removing folders, milliseconds
        /// (widens the window in which other writers race the pass).
        #[arg(long, env = "MILVUS_SIM_TTL_PAUSE_MS", default_value_t = 0)]
        ttl_pause_ms: u64,
        /// `wal.enable`: check Tables.flush_lsn and Environment.global_lsn at start-up as
        /// `WalManager::Init` does (on by default, as in Milvus 1.1.1).
        #[arg(long, env = "MILVUS_SIM_WAL_ENABLE", default_value_t = true, action = clap::ArgAction::Set)]
        wal_enable: bool,
        /// `wal.recovery_error_ignore`: reset the WAL instead of failing to start.
        #[arg(long, env = "MILVUS_SIM_WAL_RECOVERY_ERROR_IGNORE", default_value_t = false, action = clap::ArgAction::Set)]
        wal_recovery_error_ignore: bool,
        /// Injected fault: none, hang, crash, http-500:<share 0..1>, slow:<ms>.
        #[arg(long, env = "MILVUS_SIM_FAULT", default_value = "none", value_parser = FaultSettings::parse)]
        fault: FaultSettings,
    },
    /// Build a short-term collection with one partition per day.
    Seed {
        #[command(flatten)]
        node: Node,
        /// Collection name.
        #[arg(long)]
        collection: String,
        /// Number of days (partitions).
        #[arg(long)]
        days: u32,
        /// Rows per day.
        #[arg(long)]
        rows_per_day: i64,
        /// Vector dimension.
        #[arg(long)]
        dim: i64,
        /// strftime format of the partition tags.
        #[arg(long, default_value = "day_%Y-%m-%d")]
        tag_format: String,
        /// index_file_size in MB.
        #[arg(long, default_value_t = 256)]
        index_file_size: i64,
        /// Rows per flushed segment (default: one segment per day).
        #[arg(long)]
        segment_rows: Option<i64>,
        /// First day, YYYY-MM-DD (default: `days` days before today).
        #[arg(long)]
        first_day: Option<NaiveDate>,
        /// PRNG seed of the vectors.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Metric: L2 or IP.
        #[arg(long, default_value = "L2")]
        metric: String,
    },
    /// Delete ids by id as a client's delete request and the following flush do (rows
    /// listed in the segments' deleted_docs, row_count lowered), without serving.
    Delete {
        #[command(flatten)]
        node: Node,
        /// Collection name.
        #[arg(long)]
        collection: String,
        /// Partition tag (default: the collection and all its partitions).
        #[arg(long)]
        tag: Option<String>,
        /// Ids to delete, comma-separated; `FIRST..END` ranges (end excluded) allowed.
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<String>,
    },
    /// Create an empty long-term collection with its index set.
    SeedLongTerm {
        #[command(flatten)]
        node: Node,
        /// Collection name.
        #[arg(long)]
        collection: String,
        /// Vector dimension.
        #[arg(long)]
        dim: i64,
        /// index_file_size in MB.
        #[arg(long, default_value_t = 4096)]
        index_file_size: i64,
        /// Index type.
        #[arg(long, default_value = "IVF_PQ")]
        index_type: String,
        /// Index parameters, JSON.
        #[arg(long, default_value = r#"{"m":16,"nlist":1024}"#)]
        params: String,
        /// Metric: L2 or IP.
        #[arg(long, default_value = "L2")]
        metric: String,
    },
}

async fn open(node: &Node, cfg: SimConfig, faults: FaultSettings) -> anyhow::Result<Sim> {
    // As `SqliteMetaImpl`: one connection whose statements run one at a time (the pool of
    // one is the mutex; waiting for it never times out) and no busy timeout, so another
    // program's write lock makes the node's own write fail. MySQL keeps a small pool.
    let sqlite = milvus_tier::meta::backend_of(&node.meta)? == Backend::Sqlite;
    let opts = ConnectOptions {
        timeout: Duration::from_secs(24 * 3600),
        max_connections: if sqlite { 1 } else { 4 },
        sqlite_no_busy_timeout: true,
    };
    let db = MetaDb::connect_with(&node.meta, &opts).await?;
    if sqlite {
        // `SqliteMetaImpl::Initialize` puts the file in WAL mode before anything else, so
        // other programs' reads never block the engine's writes (only their writes do).
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(db.pool())
            .await
            .with_context(|| format!("set WAL journal mode on {}", db.target()))?;
    }
    db.install_milvus_schema().await?;
    std::fs::create_dir_all(node.storage.join("db").join("tables"))
        .with_context(|| format!("create storage {}", node.storage.display()))?;
    Ok(Sim::new(
        db,
        Storage::new(&node.storage),
        cfg,
        Faults::new(faults),
    ))
}

/// Ids and `FIRST..END` ranges.
fn parse_ids(items: &[String]) -> anyhow::Result<Vec<i64>> {
    let mut out = Vec::new();
    for item in items {
        let bad = || anyhow::anyhow!("--ids: `{item}` is not an id or a FIRST..END range");
        match item.split_once("..") {
            Some((a, b)) => {
                let (a, b): (i64, i64) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                out.extend(a..b);
            }
            None => out.push(item.trim().parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    memory::limit_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MILVUS_SIM_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    match Cli::parse().cmd {
        Cmd::Serve {
            node,
            port,
            host,
            role,
            build_index_threshold,
            merge_mb_per_s,
            index_mb_per_s,
            tick_ms,
            ttl_secs,
            ttl_pause_ms,
            wal_enable,
            wal_recovery_error_ignore,
            fault,
        } => {
            group_signal::fail_at_start_if_set();
            let cfg = SimConfig {
                role,
                build_index_threshold,
                merge_mb_per_s,
                index_mb_per_s,
                tick: Duration::from_millis(tick_ms.max(1)),
                ttl_secs,
                ttl_pause: Duration::from_millis(ttl_pause_ms),
                ..SimConfig::default()
            };
            let sim = Arc::new(open(&node, cfg, fault).await?);
            if role == Role::Rw {
                engine::clean_up_shadow_files(&sim).await?;
            }
            let wal = wal::WalSettings {
                enable: wal_enable,
                recovery_error_ignore: wal_recovery_error_ignore,
            };
            wal::init(&sim, &node.storage, wal).await?;
            if role == Role::Rw {
                tokio::spawn(engine::run(sim.clone()));
            }
            let listener = tokio::net::TcpListener::bind((host.as_str(), port))
                .await
                .with_context(|| format!("bind {host}:{port}"))?;
            tracing::info!(%host, port, ?role, "milvus-sim serving");
            axum::serve(listener, http::router(sim)).await?;
        }
        Cmd::Seed {
            node,
            collection,
            days,
            rows_per_day,
            dim,
            tag_format,
            index_file_size,
            segment_rows,
            first_day,
            seed,
            metric,
        } => {
            let sim = open(&node, SimConfig::default(), FaultSettings::default()).await?;
            let first_day = first_day.unwrap_or_else(|| {
                chrono::Local::now().date_naive() - chrono::Days::new(days.into())
            });
            let plan = seed::SeedPlan {
                collection,
                first_day,
                days,
                rows_per_day,
                segment_rows: segment_rows.unwrap_or(rows_per_day),
                dim,
                tag_format,
                index_file_size_mb: index_file_size,
                seed,
                metric,
            };
            let s = seed::seed(&sim, &plan).await?;
            println!(
                "seeded {}: {} partitions, {} files, {} rows, {} bytes",
                plan.collection, s.partitions, s.files, s.rows, s.bytes
            );
        }
        Cmd::Delete {
            node,
            collection,
            tag,
            ids,
        } => {
            let sim = open(&node, SimConfig::default(), FaultSettings::default()).await?;
            let ids = parse_ids(&ids)?;
            sim.delete_by_id(&collection, tag.as_deref(), &ids).await?;
            let rows = sim.apply_deletes(|_, _| true).await?;
            println!("deleted {rows} rows of {} ids from {collection}", ids.len());
        }
        Cmd::SeedLongTerm {
            node,
            collection,
            dim,
            index_file_size,
            index_type,
            params,
            metric,
        } => {
            let sim = open(&node, SimConfig::default(), FaultSettings::default()).await?;
            let params: serde_json::Value =
                serde_json::from_str(&params).context("--params is not JSON")?;
            seed::seed_long_term(
                &sim,
                &collection,
                dim,
                index_file_size,
                &index_type,
                &params,
                &metric,
            )
            .await?;
            println!("created long-term collection {collection} ({index_type} {params})");
        }
    }
    Ok(())
}
