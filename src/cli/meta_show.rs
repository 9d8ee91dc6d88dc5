//! `milvus-tier meta show`.

use milvus_tier::config::Config;
use milvus_tier::day::Day;
use milvus_tier::error::{Error, Result, exit};
use milvus_tier::meta::{ConnectOptions, DaySummary, MetaDb, TableState};

use super::MetaShowArgs;

/// Read the day's partitions and files in the chosen tier and print them.
pub async fn run(config: &Config, args: &MetaShowArgs) -> Result<i32> {
    let day: Day = args.date.parse()?;
    let target = config.tier(args.tier)?;
    let collection = args.collection.clone().unwrap_or(target.collection.clone());
    let opts = ConnectOptions {
        timeout: config.connect_timeout(),
        max_connections: 2,
        ..ConnectOptions::default()
    };
    let db = MetaDb::connect_with(&target.meta_url, &opts).await?;
    db.check_schema().await?;
    let coll = db.collection(&collection).await?;
    if coll.as_ref().is_none_or(|c| c.state != TableState::Normal) {
        return Err(Error::CollectionNotFound {
            collection,
            tier: args.tier.to_string(),
        });
    }
    let tag = target.tag_format.tag(day);
    let parts = db.partitions_tagged(&collection, &tag).await?;
    if parts.is_empty() {
        return Err(Error::NoPartition {
            collection,
            tag,
            day: day.to_string(),
            tier: args.tier.to_string(),
        });
    }
    let ids: Vec<String> = parts.iter().map(|p| p.table_id.clone()).collect();
    let files = db.files(&ids, &[]).await?;
    db.close().await;
    let summary = DaySummary::new(
        &args.tier.to_string(),
        &collection,
        &day.to_string(),
        &tag,
        &parts,
        &files,
    );
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serializes")
        );
    } else {
        print_text(&summary);
    }
    Ok(exit::OK)
}

fn print_text(s: &DaySummary) {
    outln!(
        "{} collection `{}` day {} (tag {})",
        s.tier,
        s.collection,
        s.day,
        s.tag
    );
    for p in &s.partitions {
        outln!("partition {}  tag {}  state {}", p.table_id, p.tag, p.state);
        for t in &p.by_file_type {
            outln!(
                "  {:<10} files {:>6}  rows {:>12}  size {:>11}",
                t.file_type,
                t.totals.files,
                t.totals.rows,
                super::human(t.totals.bytes)
            );
        }
        outln!(
            "  {:<10} files {:>6}  rows {:>12}  size {:>11}  (searchable rows {})",
            "total",
            p.total.files,
            p.total.rows,
            super::human(p.total.bytes),
            p.searchable_rows
        );
    }
    outln!(
        "total: {} partitions, {} files, {} rows, {}, {} searchable rows",
        s.partitions.len(),
        s.total.files,
        s.total.rows,
        super::human(s.total.bytes),
        s.searchable_rows
    );
}
