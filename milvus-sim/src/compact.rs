//! Compact (`DBImpl::Compact`, `DBImpl::CompactFile`): a segment whose deleted rows reach the
//! threshold is rewritten without them into a new segment, and every file of the old segment
//! becomes TO_DELETE. The web API always asks with threshold 0.1
//! (`WebRequestHandler::Compact`). The caller holds the index and merge locks, as `Compact`
//! takes `build_index_mutex_` and then `flush_merge_compact_mutex_`.

use milvus_tier::meta::{FileRow, FileType, TableRow};

use crate::catalog;
use crate::error::Result;
use crate::ids;
use crate::sim::Sim;

/// The threshold the web API passes (`compact_threshold = 0.1`).
pub const WEB_THRESHOLD: f64 = 0.1;

/// Compact the RAW, TO_INDEX and BACKUP files of collection `root` and its partitions.
/// A segment whose `deleted_docs` cannot be read is skipped, as Milvus skips it.
pub async fn compact(sim: &Sim, root: &TableRow, threshold: f64) -> Result<()> {
    let mut tables = catalog::live_partitions(&sim.db, &root.table_id).await?;
    tables.push(root.clone());
    let ids: Vec<String> = tables.iter().map(|t| t.table_id.clone()).collect();
    let files = sim
        .db
        .files(&ids, &[FileType::Raw, FileType::ToIndex, FileType::Backup])
        .await?;
    for f in files {
        let Ok(deleted) = sim.storage.read_deleted(&f.table_id, &f.segment_id) else {
            continue;
        };
        if deleted.is_empty() {
            continue;
        }
        let Some(t) = tables.iter().find(|t| t.table_id == f.table_id) else {
            continue;
        };
        if f.row_count > 0 && threshold > 0.0 {
            let rate = deleted.len() as f64 / (deleted.len() as f64 + f.row_count as f64);
            if rate < threshold {
                continue;
            }
        }
        compact_file(sim, t, &f).await?;
    }
    Ok(())
}

async fn compact_file(sim: &Sim, t: &TableRow, f: &FileRow) -> Result<()> {
    let mut row = catalog::create_file(&sim.db, t, FileType::NewMerge).await?;
    let file_id = row.file_id.clone();
    let live =
        match sim
            .storage
            .read_live(&f.table_id, &f.segment_id, &f.file_id, t.dimension as usize)
        {
            Ok(d) => d,
            Err(e) => {
                crate::engine::abandon(sim, &row).await;
                return Err(e);
            }
        };
    row.file_size = match sim
        .storage
        .write_raw(&t.table_id, &row.segment_id, &row.file_id, &live)
    {
        Ok(n) => n,
        Err(e) => {
            crate::engine::abandon(sim, &row).await;
            return Err(e);
        }
    };
    row.row_count = live.rows() as i64;
    let result = if row.row_count == 0 {
        FileType::ToDelete
    } else if matches!(f.file_type, FileType::Backup | FileType::ToIndex)
        && row.row_count > sim.cfg.build_index_threshold
    {
        FileType::ToIndex
    } else {
        FileType::Raw
    };
    let now = ids::now_micros();
    let mut tx = sim.db.pool().begin().await?;
    catalog::finish_file(&mut tx, &row, result, now).await?;
    catalog::segment_to_delete(&mut tx, &f.table_id, &f.segment_id, now).await?;
    tx.commit().await?;
    tracing::info!(table_id = %t.table_id, segment_id = %f.segment_id, file_id = %file_id,
        rows = row.row_count, bytes = row.file_size, from_bytes = f.file_size,
        "compacted segment -> {result}");
    Ok(())
}
