//! `milvus-tier gc`: list or remove what long-term storage holds but no row needs.

use std::time::Duration;

use milvus_tier::config::Config;
use milvus_tier::error::Result;
use milvus_tier::gc::{DRY_RUN, GcOptions, gc};

/// Arguments of `gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// List what would be removed, with sizes; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep folders younger than this many hours.
    #[arg(long, default_value_t = 24)]
    pub grace_hours: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run gc.
pub async fn run(config: &Config, args: &GcArgs) -> Result<i32> {
    let r = gc(
        config,
        &GcOptions {
            dry_run: args.dry_run,
            grace: Duration::from_secs(args.grace_hours * 3600),
        },
    )
    .await?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&r).expect("report serializes")
        );
        return Ok(0);
    }
    for e in &r.in_flight {
        outln!("in flight: {e} (nothing is removed while a run is in flight)");
    }
    let unknown = || "?".to_string();
    for c in &r.candidates {
        let state = if c.removed {
            "removed".to_string()
        } else if c.kept.as_deref() == Some(DRY_RUN) {
            "would remove".to_string()
        } else {
            format!("kept ({})", c.kept.as_deref().unwrap_or("not removed"))
        };
        outln!(
            "{state:<26} {:?} {:>11}  age {:>7}s  {}{}",
            c.reason,
            c.bytes.map_or_else(unknown, super::human),
            c.age_secs.map_or_else(unknown, |a| a.to_string()),
            c.path.display(),
            if c.rows.is_empty() {
                String::new()
            } else {
                format!("  (TO_DELETE rows {:?})", c.rows)
            }
        );
    }
    outln!(
        "{} folder(s) found, {} removed, {} removed",
        r.candidates.len(),
        r.removed,
        super::human(r.bytes_removed)
    );
    Ok(0)
}
