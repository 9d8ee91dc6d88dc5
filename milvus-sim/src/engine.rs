//! The background engine of a writable node: a force merge at startup, then per tick auto
//! flush (and the merge each flush starts), the index thread's batch and TTL cleanup, each
//! pass re-reading the metadata (rows inserted by other programs are picked up).
//!
//! Merge is in [`crate::merge`], index build follows `XBuildIndexTask::Execute`, cleanup
//! `CleanUpFilesWithTTL` (source notes §4, §5). Work takes time proportional to its bytes at
//! the configured MB/s. One log line per event; `engine idle` when all pending work is done.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use milvus_tier::meta::{FileRow, FileType, TableRow};

use crate::catalog;
use crate::error::Result;
use crate::faults::EngineFault;
use crate::ids;
use crate::index;
use crate::merge::{self, Strategy};
use crate::sim::Sim;

/// Remove NEW, NEW_MERGE and NEW_INDEX rows left by an earlier process (`CleanUpShadowFiles`;
/// rows only, folders stay).
pub async fn clean_up_shadow_files(sim: &Sim) -> Result<u64> {
    let n = catalog::delete_files_of_types(
        &sim.db,
        &[FileType::New, FileType::NewMerge, FileType::NewIndex],
    )
    .await?;
    tracing::info!(rows = n, "clean up shadow files");
    Ok(n)
}

/// Run the engine forever: first the startup force merge of every table
/// (`DBImpl::Start`), then one tick per interval.
pub async fn run(sim: Arc<Sim>) {
    match merge::all_table_ids(&sim).await {
        Ok(ids) => {
            if let Err(e) = merge::merge_tables(&sim, &ids, Strategy::Adaptive).await {
                tracing::warn!(error = %e, "startup merge failed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "startup merge failed"),
    }
    let mut had_work = false;
    loop {
        match tick(&sim).await {
            Ok(true) => had_work = true,
            Ok(false) => {
                if had_work {
                    tracing::info!(
                        at = %chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "engine idle"
                    );
                    had_work = false;
                }
            }
            Err(e) => tracing::warn!(error = %e, "engine tick failed"),
        }
        tokio::time::sleep(sim.cfg.tick).await;
    }
}

/// One pass: auto flush (then a LAYERED merge of the tables it wrote, as each flush starts
/// a merge task), the index thread's batch, and TTL cleanup. Returns whether any flush,
/// merge or build was done or vectors are still buffered. Nothing is merged on a timer and
/// nothing is promoted to TO_INDEX here (only create_index does that).
pub async fn tick(sim: &Sim) -> Result<bool> {
    let flushed = sim.auto_flush().await?;
    let mut worked = !flushed.is_empty();
    if worked {
        merge::merge_tables(sim, &flushed, Strategy::Layered).await?;
    }
    worked |= build_batch(sim).await?;
    clean_up_ttl(sim).await?;
    Ok(worked || sim.has_buffered())
}

/// `BackgroundBuildIndex`: build every TO_INDEX file of an indexed table, holding the
/// build lock for the whole batch.
async fn build_batch(sim: &Sim) -> Result<bool> {
    if sim.faults.get().fault == EngineFault::Hang {
        return Ok(false);
    }
    let _build = sim.locks.build.lock().await;
    let tables = catalog::live_tables(&sim.db).await?;
    let indexed: Vec<&TableRow> = tables.iter().filter(|t| !t.engine_type.is_raw()).collect();
    if indexed.is_empty() {
        return Ok(false);
    }
    let ids: Vec<String> = indexed.iter().map(|t| t.table_id.clone()).collect();
    let mut worked = false;
    for f in sim.db.files(&ids, &[FileType::ToIndex]).await? {
        let Some(t) = indexed.iter().find(|t| t.table_id == f.table_id) else {
            continue;
        };
        worked = true;
        if let Err(e) = build_one(sim, t, &f).await {
            tracing::warn!(file_id = %f.file_id, error = %e, "index build failed");
        }
    }
    Ok(worked)
}

/// Sleep for `bytes` at `mb_per_s` (0 = no wait).
pub(crate) async fn throttle(bytes: i64, mb_per_s: f64) {
    if mb_per_s > 0.0 && bytes > 0 {
        let secs = bytes as f64 / (mb_per_s * 1024.0 * 1024.0);
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
}

/// A NEW_MERGE or NEW_INDEX row whose work failed becomes TO_DELETE (as in Milvus).
pub(crate) async fn abandon(sim: &Sim, row: &FileRow) {
    let now = ids::now_micros();
    // Already on an error path: a failure here leaves the row for startup shadow cleanup,
    // exactly what a crash would leave, so it is logged and not raised.
    match sim.db.pool().acquire().await {
        Ok(mut c) => {
            if let Err(e) = catalog::finish_file(&mut c, row, FileType::ToDelete, now).await {
                tracing::warn!(file_id = %row.file_id, error = %e, "could not mark an abandoned file TO_DELETE");
            }
        }
        Err(e) => {
            tracing::warn!(file_id = %row.file_id, error = %e, "could not mark an abandoned file TO_DELETE")
        }
    }
}

async fn build_one(sim: &Sim, t: &TableRow, src: &FileRow) -> Result<()> {
    let now = ids::now_micros();
    let mut row = FileRow {
        id: 0,
        table_id: t.table_id.clone(),
        segment_id: src.segment_id.clone(),
        engine_type: t.engine_type,
        file_id: ids::next_id(),
        file_type: FileType::NewIndex,
        file_size: 0,
        row_count: 0,
        updated_time: now,
        created_on: now,
        date: src.date,
        flush_lsn: 0,
    };
    let mut c = sim.db.pool().acquire().await?;
    catalog::insert_file(&mut c, &row).await?;
    drop(c);
    tracing::info!(table_id = %t.table_id, file_id = %row.file_id, source = %src.file_id,
        index = index::web_name(t.engine_type), "index build start");
    let result = build_into(sim, t, src, &mut row).await;
    if result.is_err() {
        abandon(sim, &row).await;
    }
    result
}

async fn build_into(sim: &Sim, t: &TableRow, src: &FileRow, row: &mut FileRow) -> Result<()> {
    let data = sim.storage.read_raw(
        &src.table_id,
        &src.segment_id,
        &src.file_id,
        t.dimension as usize,
    )?;
    throttle(src.file_size, sim.cfg.index_mb_per_s).await;
    let bytes = index::build(t.engine_type, &t.index_params, t.dimension as usize, &data);
    row.file_size =
        sim.storage
            .write_index(&row.table_id, &row.segment_id, &row.file_id, &bytes)?;
    row.row_count = src.row_count;
    let now = ids::now_micros();
    let mut tx = sim.db.pool().begin().await?;
    let moved = catalog::move_file(
        &mut tx,
        &src.table_id,
        &src.file_id,
        FileType::ToIndex,
        FileType::Backup,
        now,
    )
    .await?;
    if moved != 1 {
        drop(tx);
        let mut c = sim.db.pool().acquire().await?;
        catalog::finish_file(&mut c, row, FileType::ToDelete, now).await?;
        tracing::warn!(file_id = %row.file_id, "index build abandoned: source changed");
        return Ok(());
    }
    catalog::finish_file(&mut tx, row, FileType::Index, now).await?;
    tx.commit().await?;
    tracing::info!(table_id = %t.table_id, file_id = %row.file_id, rows = row.row_count,
        bytes = row.file_size, "index build done -> INDEX, source -> BACKUP");
    Ok(())
}

/// `CleanUpFilesWithTTL`: TO_DELETE rows older than the TTL go with their files; a segment
/// folder no row names any more is removed whole, a table folder once the table has no file
/// row; soft-deleted (state 1) Tables rows are removed at once. BACKUP is never removed.
pub async fn clean_up_ttl(sim: &Sim) -> Result<()> {
    let limit = ids::now_micros() - sim.cfg.ttl_secs * 1_000_000;
    let table_ids = catalog::file_table_ids(&sim.db).await?;
    let old: Vec<FileRow> = sim
        .db
        .files(&table_ids, &[FileType::ToDelete])
        .await?
        .into_iter()
        .filter(|f| f.updated_time < limit)
        .collect();
    let mut segments = BTreeSet::new();
    let mut tables = BTreeSet::new();
    for f in &old {
        catalog::delete_file_row(&sim.db, &f.table_id, &f.file_id).await?;
        if f.file_id != f.segment_id {
            let p = sim
                .storage
                .index_path(&f.table_id, &f.segment_id, &f.file_id);
            sim.storage.remove_file(&p)?;
        }
        segments.insert((f.table_id.clone(), f.segment_id.clone()));
        tables.insert(f.table_id.clone());
        tracing::info!(table_id = %f.table_id, file_id = %f.file_id, "ttl delete");
    }
    if !old.is_empty() && !sim.cfg.ttl_pause.is_zero() {
        tokio::time::sleep(sim.cfg.ttl_pause).await;
    }
    for (table_id, segment_id) in &segments {
        if catalog::rows_with_segment(&sim.db, segment_id).await? == 0 {
            let dir = sim.storage.segment_dir(table_id, segment_id);
            sim.storage.remove_dir(&dir)?;
        }
    }
    // Soft-deleted Tables rows go at once, whatever files they still have; their folder
    // only when empty (`DeleteCollectionPath(.., false)`), else once its last file row goes.
    for table_id in catalog::deleted_tables(&sim.db).await? {
        catalog::delete_table_row(&sim.db, &table_id).await?;
        let dir = sim.storage.table_dir(&table_id);
        let empty = std::fs::read_dir(&dir).map(|mut d| d.next().is_none());
        if empty.unwrap_or(false) {
            sim.storage.remove_dir(&dir)?;
        }
        tracing::info!(table_id = %table_id, "ttl delete table");
    }
    // A table that lost its last file row loses its folder (`DeleteCollectionPath`).
    for table_id in &tables {
        if catalog::rows_of_table(&sim.db, table_id).await? == 0 {
            sim.storage.remove_dir(&sim.storage.table_dir(table_id))?;
        }
    }
    Ok(())
}
