//! create_index and drop_index as `DBImpl` does them (source notes §4.11):
//!
//! `DBImpl::CreateIndex`: flush, merge what the flush wrote, force-merge (ADAPTIVE) the
//! collection and its partitions; an empty collection only gets its index recorded. Then,
//! under the build lock, compare the **root** collection's index with the requested one
//! (`DescribeIndex` + `IsSameIndex`); when they differ, drop the index of the root and every
//! partition (`DropIndex` → `DropCollectionIndexRecursively`, then a force merge) and record
//! the new one on all of them (`UpdateCollectionIndexRecursively`). Finally wait
//! (`WaitCollectionIndexRecursively`), root first, then each partition, until no RAW with
//! at least the build threshold rows, NEW, NEW_MERGE, NEW_INDEX or TO_INDEX file is left,
//! promoting RAW files to TO_INDEX (`UpdateCollectionFilesToIndex`) on every round. The
//! promotion happens only here: the background index thread builds TO_INDEX files and
//! nothing else.

use milvus_tier::meta::{EngineType, FileRow, FileType, TableRow};

use crate::catalog;
use crate::error::Result;
use crate::index;
use crate::merge::{self, Strategy};
use crate::sim::{Role, Sim};
use crate::validate;

fn same_index(t: &TableRow, engine: EngineType, params: &serde_json::Value) -> bool {
    t.engine_type == engine
        && serde_json::from_str::<serde_json::Value>(&t.index_params)
            .ok()
            .as_ref()
            == Some(params)
}

fn ids_of(tables: &[TableRow]) -> Vec<String> {
    tables.iter().map(|t| t.table_id.clone()).collect()
}

/// INDEX → TO_DELETE, BACKUP → RAW for one table (`DropCollectionIndex`; TO_INDEX rows are
/// left as they are).
async fn drop_index_rows(c: &mut sqlx::AnyConnection, table_id: &str, now: i64) -> Result<()> {
    catalog::move_table_files(c, table_id, FileType::Index, FileType::ToDelete, now).await?;
    catalog::move_table_files(c, table_id, FileType::Backup, FileType::Raw, now).await?;
    Ok(())
}

/// Record `engine`/`params` on every table (`UpdateCollectionIndex`, recursively).
async fn set_index_all(
    sim: &Sim,
    tables: &[TableRow],
    engine: EngineType,
    params: &str,
) -> Result<()> {
    let mut tx = sim.db.pool().begin().await?;
    for t in tables {
        catalog::set_table_index(&mut tx, &t.table_id, engine, params).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `DropCollectionIndexRecursively`: every table's index files go, BACKUP turns RAW, the
/// engine becomes FLAT with params `{}`.
async fn drop_all(sim: &Sim, tables: &[TableRow]) -> Result<()> {
    let now = crate::ids::now_micros();
    let mut tx = sim.db.pool().begin().await?;
    for t in tables {
        drop_index_rows(&mut tx, &t.table_id, now).await?;
        catalog::set_table_index(&mut tx, &t.table_id, EngineType::Flat, "{}").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `DBImpl::CreateIndex` (see the module documentation). Blocks until the build is done.
pub async fn create_index(
    sim: &Sim,
    name: &str,
    index_type: &str,
    params: &serde_json::Value,
) -> Result<()> {
    let root = catalog::live_collection(&sim.db, name).await?;
    if !root.owner_table.is_empty() {
        return Err(crate::error::SimError::no_collection(name));
    }
    // CreateIndexRequest: web names only, IVFSQ8H refused on CPU, ValidateIndexParams, and
    // FLAT/IVFFLAT turned into their binary engines for a binary metric.
    let engine = validate::index_type(index_type)?;
    validate::index_params(engine, params, root.dimension)?;
    let engine = validate::adapt_to_metric(engine, root.metric_type)?;
    let params_text = params.to_string();
    let tables = catalog::collection_tables(&sim.db, name).await?;
    if sim.cfg.role == Role::Ro {
        // A read-only node runs no flush, merge or build: only the index is recorded.
        if !same_index(&root, engine, params) {
            set_index_all(sim, &tables, engine, &params_text).await?;
        }
        return Ok(());
    }
    // Step 1: flush, let the merges finish, force-merge the collection and its partitions.
    let flushed = sim.flush(&[]).await?;
    merge::merge_tables(sim, &flushed, Strategy::Layered).await?;
    let ids = ids_of(&tables);
    merge::merge_tables(sim, &ids, Strategy::Adaptive).await?;
    // An empty collection only gets its index recorded (fix of issue #4838).
    let rows: i64 = sim
        .db
        .files(&ids, &[FileType::Raw, FileType::ToIndex, FileType::Index])
        .await?
        .iter()
        .map(|f| f.row_count)
        .sum();
    if rows == 0 {
        set_index_all(sim, &tables, engine, &params_text).await?;
        tracing::info!(collection = name, index = index::web_name(engine), params = %params_text, "create index (empty collection)");
        return Ok(());
    }
    {
        let _build = sim.locks.build.lock().await;
        // Only the root's index is compared; a change drops and rebuilds every partition.
        if !same_index(&root, engine, params) {
            drop_all(sim, &tables).await?;
            tracing::info!(
                collection = name,
                tables = tables.len(),
                "drop index (recursive)"
            );
            merge::merge_tables(sim, &ids, Strategy::Adaptive).await?;
            set_index_all(sim, &tables, engine, &params_text).await?;
        }
    }
    tracing::info!(collection = name, index = index::web_name(engine), params = %params_text, "create index");
    wait_built(sim, name, engine).await?;
    tracing::info!(collection = name, "create index done");
    Ok(())
}

/// Whether `f` still keeps `WaitCollectionIndexRecursively` waiting.
fn pending(f: &FileRow, raw_engine: bool, threshold: i64) -> bool {
    match f.file_type {
        FileType::New | FileType::NewMerge => true,
        FileType::Raw | FileType::NewIndex | FileType::ToIndex if raw_engine => false,
        FileType::Raw => f.row_count >= threshold,
        FileType::NewIndex | FileType::ToIndex => true,
        _ => false,
    }
}

/// `WaitCollectionIndexRecursively`: the root, then each live partition.
async fn wait_built(sim: &Sim, name: &str, engine: EngineType) -> Result<()> {
    let root = catalog::live_collection(&sim.db, name).await?;
    wait_table(sim, &root.table_id, engine).await?;
    for p in catalog::live_partitions(&sim.db, name).await? {
        wait_table(sim, &p.table_id, engine).await?;
    }
    Ok(())
}

async fn wait_table(sim: &Sim, table_id: &str, engine: EngineType) -> Result<()> {
    let threshold = sim.cfg.build_index_threshold;
    let ids = [table_id.to_string()];
    loop {
        let files = sim.db.files(&ids, &[]).await?;
        if !files.iter().any(|f| pending(f, engine.is_raw(), threshold)) {
            return Ok(());
        }
        if !engine.is_raw() {
            let mut c = sim.db.pool().acquire().await?;
            let n = catalog::raw_to_index(&mut c, table_id, threshold).await?;
            if n > 0 {
                tracing::info!(table_id, files = n, "RAW -> TO_INDEX");
            }
        }
        tokio::time::sleep(sim.cfg.tick).await;
    }
}

/// `DBImpl::DropIndex`: drop the index of the collection and its partitions, then
/// force-merge them (a writable node only).
pub async fn drop_index(sim: &Sim, name: &str) -> Result<()> {
    let tables = catalog::collection_tables(&sim.db, name).await?;
    drop_all(sim, &tables).await?;
    tracing::info!(collection = name, "drop index");
    if sim.cfg.role == Role::Rw {
        merge::merge_tables(sim, &ids_of(&tables), Strategy::Adaptive).await?;
    }
    Ok(())
}
