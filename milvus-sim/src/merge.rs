//! Merge as Milvus 1.1.1 does it (`DBImpl::BackgroundMerge`, `MergeManagerImpl::MergeFiles`,
//! `MergeLayeredStrategy`, `MergeAdaptiveStrategy`, `MergeTask::Execute`; source notes §4.5–4.7).
//!
//! Candidates are the RAW files of one table_id under its `index_file_size`
//! (`FilesToMerge`). LAYERED is the default; ADAPTIVE (`force_merge_all`) is used at
//! startup and by create/drop index. Merge runs after a flush that wrote data, at startup
//! and in create/drop index, never on a timer. Each table is merged under the engine's
//! merge lock (`flush_merge_compact_mutex_`).

use milvus_tier::meta::{FileRow, FileType, TableRow, TableState};

use crate::catalog;
use crate::error::Result;
use crate::faults::{CRASH_EXIT_CODE, EngineFault};
use crate::ids;
use crate::sim::Sim;
use crate::storage::RawData;

/// `FORCE_MERGE_THREASHOLD` of `MergeLayeredStrategy.cpp`: a lone file older than this is
/// merged with the next layer.
pub const FORCE_MERGE_SECS: i64 = 300;

/// The strategy of one merge pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `MergeLayeredStrategy` (the default).
    Layered,
    /// `MergeAdaptiveStrategy` (`force_merge_all`).
    Adaptive,
}

/// Size layers of `MergeLayeredStrategy::RegroupFiles` (4 MB … 64 GB).
const LAYERS: [i64; 8] = [
    1 << 22,
    1 << 24,
    1 << 26,
    1 << 28,
    1 << 30,
    1 << 32,
    1 << 34,
    1 << 36,
];

/// Group merge candidates (RAW files of one table, `row_count` descending) as the strategy
/// does; `now` in microseconds.
pub fn regroup(
    files: Vec<FileRow>,
    index_file_size: i64,
    strategy: Strategy,
    now: i64,
) -> Vec<Vec<FileRow>> {
    if files.len() < 2 {
        return Vec::new();
    }
    match strategy {
        Strategy::Layered => layered(files, index_file_size, now),
        Strategy::Adaptive => adaptive(files, index_file_size),
    }
}

fn by_size_desc(files: &mut [FileRow]) {
    files.sort_by_key(|f| std::cmp::Reverse(f.file_size));
}

fn layered(mut files: Vec<FileRow>, ifs: i64, now: i64) -> Vec<Vec<FileRow>> {
    let mut groups = Vec::new();
    by_size_desc(&mut files);
    // Pair the biggest file with the smallest one that takes it over index_file_size.
    let biggest = files[0].file_size;
    for i in (2..files.len()).rev() {
        if files[i].file_size + biggest > ifs {
            let small = files.remove(i);
            let big = files.remove(0);
            groups.push(vec![big, small]);
            break;
        }
    }
    let mut layers: Vec<Vec<FileRow>> = vec![Vec::new(); LAYERS.len()];
    let mut huge = Vec::new();
    for f in files.into_iter().rev() {
        if ifs > 0 && f.file_size > ifs {
            continue;
        }
        match LAYERS.iter().position(|l| f.file_size < *l) {
            Some(i) => layers[i].push(f),
            None => huge.push(f),
        }
    }
    let mut force: Vec<FileRow> = Vec::new();
    for layer in layers.iter_mut().filter(|l| !l.is_empty()) {
        layer.append(&mut force);
        if layer.len() == 1 && now - layer[0].created_on > FORCE_MERGE_SECS * 1_000_000 {
            force.append(layer);
        }
    }
    if !force.is_empty() && !huge.is_empty() {
        huge.append(&mut force);
    }
    groups.extend(layers.into_iter().filter(|l| l.len() > 1));
    huge.append(&mut force);
    if huge.len() >= 2 {
        groups.push(huge);
    }
    groups
}

fn adaptive(files: Vec<FileRow>, ifs: i64) -> Vec<Vec<FileRow>> {
    let mut sort: Vec<FileRow> = files
        .into_iter()
        .rev()
        .filter(|f| !(ifs > 0 && f.file_size > ifs))
        .collect();
    if sort.len() < 2 {
        return Vec::new();
    }
    if sort.len() == 2 {
        return vec![sort];
    }
    by_size_desc(&mut sort);
    let mut groups = Vec::new();
    while !sort.is_empty() {
        let mut group = Vec::new();
        let mut sum = 0;
        let mut i = 0;
        while i < sort.len() {
            if sum + sort[i].file_size <= ifs {
                sum += sort[i].file_size;
                group.push(sort.remove(i));
            } else if i + 1 == sort.len() && sum < ifs {
                group.push(sort.remove(i));
                break;
            } else {
                i += 1;
            }
        }
        if group.is_empty() {
            // Only files over index_file_size are left (not candidates).
            break;
        }
        groups.push(group);
    }
    groups
}

/// `BackgroundMerge` over `table_ids`: merge each live table's candidates with `strategy`.
/// Returns whether anything was merged. A failure in one table is logged; the others go on.
pub async fn merge_tables(sim: &Sim, table_ids: &[String], strategy: Strategy) -> Result<bool> {
    let tables = sim.db.tables_by_id(table_ids).await?;
    let mut worked = false;
    for t in tables.iter().filter(|t| t.state == TableState::Normal) {
        let _merge = sim.locks.merge.lock().await;
        match merge_table(sim, t, strategy).await {
            Ok(w) => worked |= w,
            Err(e) => tracing::warn!(table_id = %t.table_id, error = %e, "merge failed"),
        }
    }
    Ok(worked)
}

/// Every live table (collections and partitions), as `AllCollections` lists them.
pub async fn all_table_ids(sim: &Sim) -> Result<Vec<String>> {
    Ok(catalog::live_tables(&sim.db)
        .await?
        .into_iter()
        .map(|t| t.table_id)
        .collect())
}

async fn merge_table(sim: &Sim, t: &TableRow, strategy: Strategy) -> Result<bool> {
    let mut files: Vec<FileRow> = sim
        .db
        .files(std::slice::from_ref(&t.table_id), &[FileType::Raw])
        .await?
        .into_iter()
        .filter(|f| f.file_size < t.index_file_size)
        .collect();
    files.sort_by(|a, b| b.row_count.cmp(&a.row_count).then(a.id.cmp(&b.id)));
    if files.len() < 2 {
        return Ok(false);
    }
    let groups = regroup(files, t.index_file_size, strategy, ids::now_micros());
    let mut worked = false;
    for g in groups {
        merge_group(sim, t, &g).await?;
        worked = true;
    }
    Ok(worked)
}

async fn merge_group(sim: &Sim, t: &TableRow, sources: &[FileRow]) -> Result<()> {
    let mut row = catalog::create_file(&sim.db, t, FileType::NewMerge).await?;
    let file_id = row.file_id.clone();
    tracing::info!(table_id = %t.table_id, file_id = %file_id, sources = sources.len(), "merge start");
    let result = merge_into(sim, t, sources, &mut row).await;
    if result.is_err() {
        crate::engine::abandon(sim, &row).await;
    }
    result
}

async fn merge_into(sim: &Sim, t: &TableRow, sources: &[FileRow], row: &mut FileRow) -> Result<()> {
    let file_id = row.file_id.clone();
    let dim = t.dimension as usize;
    let mut merged = RawData::default();
    let mut used = Vec::new();
    for s in sources {
        // Rows listed in deleted_docs are left out (`SegmentWriter::Merge`).
        let d = sim
            .storage
            .read_live(&s.table_id, &s.segment_id, &s.file_id, dim)?;
        merged.extend(d);
        used.push(s);
        // MergeTask stops once the result reaches index_file_size.
        if merged.file_size() >= t.index_file_size {
            break;
        }
    }
    crate::engine::throttle(merged.file_size(), sim.cfg.merge_mb_per_s).await;
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
    for s in &used {
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
    if moved as usize != used.len() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use milvus_tier::meta::{EngineType, MilvusDate};

    const MB: i64 = 1 << 20;

    fn f(n: i64, size: i64, created_on: i64) -> FileRow {
        FileRow {
            id: n,
            table_id: "t".into(),
            segment_id: n.to_string(),
            engine_type: EngineType::Flat,
            file_id: n.to_string(),
            file_type: FileType::Raw,
            file_size: size,
            row_count: size / 100,
            updated_time: created_on,
            created_on,
            date: MilvusDate(0),
            flush_lsn: 0,
        }
    }

    fn ids(groups: &[Vec<FileRow>]) -> Vec<Vec<i64>> {
        groups
            .iter()
            .map(|g| g.iter().map(|f| f.id).collect())
            .collect()
    }

    #[test]
    fn layered_keeps_a_young_lone_file_and_force_merges_an_old_one() {
        let now = 1_000 * 1_000_000;
        let young = now - 10 * 1_000_000;
        let old = now - (FORCE_MERGE_SECS + 1) * 1_000_000;
        // One file per layer, all young: nothing to merge.
        let files = vec![f(1, 20 * MB, young), f(2, MB, young)];
        assert!(regroup(files, 1024 * MB, Strategy::Layered, now).is_empty());
        // The small one is old: it joins the next non-empty layer.
        let files = vec![f(1, 20 * MB, young), f(2, MB, old)];
        assert_eq!(
            ids(&regroup(files, 1024 * MB, Strategy::Layered, now)),
            [[1, 2]]
        );
        // Two files in one layer merge whatever their age.
        let files = vec![f(1, MB, young), f(2, 2 * MB, young)];
        assert_eq!(
            ids(&regroup(files, 1024 * MB, Strategy::Layered, now)),
            [[1, 2]]
        );
    }

    #[test]
    fn adaptive_packs_files_up_to_index_file_size() {
        let now = 0;
        let files = vec![f(1, 3 * MB, now), f(2, 2 * MB, now), f(3, 2 * MB, now)];
        assert_eq!(
            ids(&regroup(files, 4 * MB, Strategy::Adaptive, now)),
            vec![vec![1, 2], vec![3]]
        );
        let files = vec![f(1, MB, now), f(2, MB, now), f(3, MB, now)];
        assert_eq!(
            ids(&regroup(files, 1024 * MB, Strategy::Adaptive, now)),
            [[3, 2, 1]]
        );
    }
}
