//! The background engine of a writable node: auto flush, merge, index build and TTL cleanup,
//! one pass per tick, each pass re-reading the metadata (rows inserted by other programs are
//! picked up on the next tick).
//!
//! Merge follows `MergeTask::Execute`, index build `XBuildIndexTask::Execute`, cleanup
//! `CleanUpFilesWithTTL` (source notes §4, §5). Work takes time proportional to its bytes at
//! the configured MB/s. One log line per event; `engine idle` when all pending work is done.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use milvus_tier::meta::{FileRow, FileType, TableRow};

use crate::catalog;
use crate::error::Result;
use crate::faults::{CRASH_EXIT_CODE, EngineFault};
use crate::ids;
use crate::index;
use crate::sim::Sim;
use crate::storage::RawData;

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

/// Run ticks forever.
pub async fn run(sim: Arc<Sim>) {
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

/// One pass; returns whether any flush, merge or index work was done or is still pending.
/// A failure in one table is logged and does not stop the others.
pub async fn tick(sim: &Sim) -> Result<bool> {
    let mut worked = sim.auto_flush().await? > 0;
    let tables = catalog::live_tables(&sim.db).await?;
    let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
    let mut by_table: HashMap<String, Vec<FileRow>> = HashMap::new();
    for f in sim.db.files(&ids, &[FileType::Raw]).await? {
        by_table.entry(f.table_id.clone()).or_default().push(f);
    }
    for t in &tables {
        let raw = by_table.remove(&t.table_id).unwrap_or_default();
        match merge_table(sim, t, raw).await {
            Ok(w) => worked |= w,
            Err(e) => tracing::warn!(table_id = %t.table_id, error = %e, "merge failed"),
        }
    }
    let indexed: Vec<&TableRow> = tables.iter().filter(|t| !t.engine_type.is_raw()).collect();
    if indexed.is_empty() {
        clean_up_ttl(sim).await?;
        return Ok(worked || sim.has_buffered());
    }
    let hang = sim.faults.get().fault == EngineFault::Hang;
    let mut c = sim.db.pool().acquire().await?;
    for t in &indexed {
        let promoted =
            catalog::raw_to_index(&mut c, &t.table_id, sim.cfg.build_index_threshold).await?;
        if promoted > 0 {
            tracing::info!(table_id = %t.table_id, files = promoted, "RAW -> TO_INDEX");
            worked = true;
        }
    }
    drop(c);
    if !hang {
        let ids: Vec<String> = indexed.iter().map(|t| t.table_id.clone()).collect();
        for f in sim.db.files(&ids, &[FileType::ToIndex]).await? {
            let Some(t) = indexed.iter().find(|t| t.table_id == f.table_id) else {
                continue;
            };
            worked = true;
            if let Err(e) = build_one(sim, t, &f).await {
                tracing::warn!(file_id = %f.file_id, error = %e, "index build failed");
            }
        }
    }
    clean_up_ttl(sim).await?;
    Ok(worked || sim.has_buffered())
}

async fn throttle(bytes: i64, mb_per_s: f64) {
    if mb_per_s > 0.0 && bytes > 0 {
        let secs = bytes as f64 / (mb_per_s * 1024.0 * 1024.0);
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
}

/// Merge groups of RAW files of one table (`FilesToMerge` + `MergeTask`).
async fn merge_table(sim: &Sim, t: &TableRow, raw: Vec<FileRow>) -> Result<bool> {
    let mut files: Vec<FileRow> = raw
        .into_iter()
        .filter(|f| f.file_size < t.index_file_size)
        .collect();
    if files.len() < 2 {
        return Ok(false);
    }
    files.sort_by(|a, b| b.row_count.cmp(&a.row_count).then(a.id.cmp(&b.id)));
    let mut groups: Vec<Vec<FileRow>> = vec![Vec::new()];
    let mut size = 0;
    for f in files {
        size += f.file_size;
        if let Some(g) = groups.last_mut() {
            g.push(f);
        }
        if size >= t.index_file_size {
            groups.push(Vec::new());
            size = 0;
        }
    }
    let mut worked = false;
    for g in groups.into_iter().filter(|g| g.len() >= 2) {
        merge_group(sim, t, &g).await?;
        worked = true;
    }
    Ok(worked)
}

async fn merge_group(sim: &Sim, t: &TableRow, sources: &[FileRow]) -> Result<()> {
    let now = ids::now_micros();
    let file_id = ids::next_id();
    let mut row = FileRow {
        id: 0,
        table_id: t.table_id.clone(),
        segment_id: file_id.clone(),
        engine_type: t.engine_type,
        file_id: file_id.clone(),
        file_type: FileType::NewMerge,
        file_size: 0,
        row_count: 0,
        updated_time: now,
        created_on: now,
        date: ids::today(),
        flush_lsn: 0,
    };
    let mut c = sim.db.pool().acquire().await?;
    catalog::insert_file(&mut c, &row).await?;
    drop(c);
    tracing::info!(table_id = %t.table_id, file_id = %file_id, sources = sources.len(), "merge start");
    let result = merge_into(sim, t, sources, &mut row).await;
    if result.is_err() {
        abandon(sim, &row).await;
    }
    result
}

/// A NEW_MERGE or NEW_INDEX row whose work failed becomes TO_DELETE (as in Milvus).
async fn abandon(sim: &Sim, row: &FileRow) {
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

async fn merge_into(sim: &Sim, t: &TableRow, sources: &[FileRow], row: &mut FileRow) -> Result<()> {
    let file_id = row.file_id.clone();
    let dim = t.dimension as usize;
    let mut merged = RawData::default();
    for s in sources {
        let d = sim
            .storage
            .read_raw(&s.table_id, &s.segment_id, &s.file_id, dim)?;
        merged.ids.extend(d.ids);
        merged.vectors.extend(d.vectors);
    }
    throttle(merged.file_size(), sim.cfg.merge_mb_per_s).await;
    if sim.faults.get().fault == EngineFault::Crash {
        sim.storage
            .write_partial(&t.table_id, &row.segment_id, &row.file_id, &merged)?;
        tracing::error!(file_id = %file_id, "injected crash in the middle of a merge");
        std::process::exit(CRASH_EXIT_CODE);
    }
    row.file_size = sim
        .storage
        .write_raw(&t.table_id, &row.segment_id, &row.file_id, &merged)?;
    row.row_count = merged.rows() as i64;
    let result = if !t.engine_type.is_raw() && row.file_size >= t.index_file_size {
        FileType::ToIndex
    } else {
        FileType::Raw
    };
    let now = ids::now_micros();
    let mut tx = sim.db.pool().begin().await?;
    let mut moved = 0;
    for s in sources {
        moved += catalog::move_file(
            &mut tx,
            &s.table_id,
            &s.file_id,
            FileType::Raw,
            FileType::ToDelete,
            now,
        )
        .await?;
    }
    if moved as usize != sources.len() {
        // A source changed under us (drop, index): abandon the merged file.
        drop(tx);
        let mut c = sim.db.pool().acquire().await?;
        catalog::finish_file(&mut c, row, FileType::ToDelete, now).await?;
        tracing::warn!(file_id = %file_id, "merge abandoned: sources changed");
        return Ok(());
    }
    catalog::finish_file(&mut tx, row, result, now).await?;
    tx.commit().await?;
    tracing::info!(table_id = %t.table_id, file_id = %file_id, rows = row.row_count,
        bytes = row.file_size, "merge done -> {result}");
    Ok(())
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

/// `CleanUpFilesWithTTL`: TO_DELETE rows older than the TTL go with their files; segment
/// folders without rows and soft-deleted tables without files are removed. BACKUP stays.
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
    for (table_id, segment_id) in &segments {
        if catalog::rows_with_segment(&sim.db, segment_id).await? == 0 {
            let dir = sim.storage.segment_dir(table_id, segment_id);
            sim.storage.remove_dir(&dir)?;
        }
    }
    for table_id in catalog::deleted_tables(&sim.db).await? {
        if catalog::rows_of_table(&sim.db, &table_id).await? == 0 {
            catalog::delete_table_row(&sim.db, &table_id).await?;
            sim.storage.remove_dir(&sim.storage.table_dir(&table_id))?;
            tracing::info!(table_id = %table_id, "ttl delete table");
        }
    }
    for table_id in &tables {
        if catalog::rows_of_table(&sim.db, table_id).await? == 0 {
            let dir = sim.storage.table_dir(table_id);
            let empty = std::fs::read_dir(&dir).map(|mut d| d.next().is_none());
            if empty.unwrap_or(false) {
                sim.storage.remove_dir(&dir)?;
            }
        }
    }
    Ok(())
}
