//! The recheck of the short-term day right before publish: refused as not ready when it
//! changed since the plan (the day is still growing).

use std::collections::BTreeSet;

use super::folders::check_segments;
use super::{DayPlan, PlanInput};
use crate::error::{Error, Result};
use crate::meta::{FileRow, TableState};
use crate::segments::layout::{IN_FLIGHT_TYPES, INPUT_TYPES};

/// Read the day from short-term again and compare it with the plan: a day still being
/// written (a partition, a file row, a row count or a segment folder added or changed since
/// the plan) is not over yet, and publishing the plan would put part of it in long-term.
pub async fn recheck_source(plan: &DayPlan, input: &PlanInput<'_>) -> Result<()> {
    let day = plan.day;
    let parts: Vec<String> = input
        .short
        .partitions_tagged(&plan.short_collection.table_id, &input.tag)
        .await?
        .into_iter()
        .filter(|p| p.state == TableState::Normal)
        .map(|p| p.table_id)
        .collect();
    let changed = |what: String| {
        Err(Error::NotReady(format!(
            "short-term day {day} changed after it was planned ({what}): the day is still growing; nothing published, retry when it is over"
        )))
    };
    if parts != plan.partition_ids() {
        return changed(format!(
            "partitions now {}, planned {}",
            parts.join(", "),
            plan.partition_ids().join(", ")
        ));
    }
    let all = input.short.files(&parts, &[]).await?;
    if let Some(f) = all.iter().find(|f| IN_FLIGHT_TYPES.contains(&f.file_type)) {
        return changed(format!(
            "TableFiles row {}/{} is {}",
            f.table_id, f.file_id, f.file_type
        ));
    }
    let key = |f: &FileRow| {
        (
            f.table_id.clone(),
            f.segment_id.clone(),
            f.file_id.clone(),
            f.row_count,
            f.file_size,
        )
    };
    let now: BTreeSet<_> = all
        .iter()
        .filter(|f| INPUT_TYPES.contains(&f.file_type))
        .map(key)
        .collect();
    let planned: BTreeSet<_> = plan.input_files.iter().map(key).collect();
    if let Some((t, _, f, rows, _)) = now.symmetric_difference(&planned).next() {
        let how = if planned.iter().any(|p| p.0 == *t && p.2 == *f) {
            "changed"
        } else if now.iter().any(|p| p.0 == *t && p.2 == *f) {
            "added"
        } else {
            "gone"
        };
        return changed(format!(
            "TableFiles row {t}/{f} ({rows} rows) {how}; {} input files now, {} planned",
            now.len(),
            planned.len()
        ));
    }
    let (root, input_files) = (input.short_storage.to_path_buf(), plan.input_files.clone());
    let at = root.clone();
    let bytes = tokio::task::spawn_blocking(move || check_segments(&root, &all, &input_files))
        .await
        .map_err(|e| Error::Io {
            op: "check segment folders",
            path: at,
            source: std::io::Error::other(e.to_string()),
        })?;
    match bytes {
        Ok(b) if b == plan.stage_bytes => Ok(()),
        Ok(b) => changed(format!(
            "segment folders hold {b} bytes, planned {}",
            plan.stage_bytes
        )),
        Err(e) => changed(e.to_string()),
    }
}
