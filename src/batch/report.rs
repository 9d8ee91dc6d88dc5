//! Reading a finished job's JSON reports back (what the job entrypoint uploaded to its
//! `REPORT_TARGET`), so notices can say how many rows and bytes were migrated.
//!
//! The entrypoint names each report `milvus-tier-report-<job id>.json`, with every character
//! outside `[A-Za-z0-9_.-]` replaced by `-` (an array child `<id>:<n>` becomes `<id>-<n>`).
//! Reports under `s3://` are read with the `[backup]` section's S3 settings.

use serde_json::Value;

use crate::config::BackupConfig;
use crate::error::{Error, Result};

/// Rows and bytes a job migrated, summed over its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Rows of the days migrated now.
    pub rows: i64,
    /// Bytes published for those days.
    pub bytes: u64,
}

/// The report file name of `job_id`.
pub fn report_name(job_id: &str) -> String {
    let safe: String = job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("milvus-tier-report-{safe}.json")
}

/// Add the migrated days of one report (`{"days":[…]}` as `migrate --report` writes it).
pub fn add_report(totals: &mut Totals, report: &Value) {
    for day in report["days"].as_array().into_iter().flatten() {
        if day["outcome"] != "migrated" {
            continue;
        }
        totals.rows += day["plan"]["rows"].as_i64().unwrap_or(0);
        totals.bytes += day["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["step"] == "publish")
            .filter_map(|s| s["bytes"].as_u64())
            .sum::<u64>();
    }
}

/// The totals of job `job_id` (an array job: its `array_size` children) from the reports
/// under `target` (`file:///dir` or `s3://bucket/prefix`). An error names the missing report.
pub async fn job_totals(
    target: &str,
    s3: Option<&BackupConfig>,
    job_id: &str,
    array_size: Option<i32>,
) -> Result<Totals> {
    let ids: Vec<String> = match array_size {
        Some(n) => (0..n).map(|i| format!("{job_id}:{i}")).collect(),
        None => vec![job_id.to_string()],
    };
    let mut totals = Totals::default();
    let client = match target.strip_prefix("s3://") {
        Some(_) => Some(s3_client(s3).await),
        None => None,
    };
    for id in ids {
        let name = report_name(&id);
        let text = if let Some(dir) = target.strip_prefix("file://") {
            let path = std::path::Path::new(dir).join(&name);
            std::fs::read(&path).map_err(|e| Error::io("read report", path, e))?
        } else if let (Some(rest), Some(client)) = (target.strip_prefix("s3://"), &client) {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", prefix.trim_end_matches('/'))
            };
            let out = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| {
                    Error::Batch(format!(
                        "report s3://{bucket}/{key}: {}",
                        crate::error::aws_reason(&e)
                    ))
                })?;
            out.body
                .collect()
                .await
                .map_err(|e| Error::Batch(format!("report s3://{bucket}/{key}: {e}")))?
                .into_bytes()
                .to_vec()
        } else {
            return Err(Error::Config(format!(
                "key `batch.report_target`: `{target}` must start with s3:// or file://"
            )));
        };
        let report: Value = serde_json::from_slice(&text)
            .map_err(|e| Error::BadInput(format!("report {name}: not JSON: {e}")))?;
        add_report(&mut totals, &report);
    }
    Ok(totals)
}

async fn s3_client(s3: Option<&BackupConfig>) -> aws_sdk_s3::Client {
    let shared = crate::aws::loader(
        s3.and_then(|b| b.region.as_deref()),
        s3.and_then(|b| b.endpoint.as_deref()),
    )
    .load()
    .await;
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(s3.is_some_and(|b| b.force_path_style))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_entrypoint_and_totals_count_migrated_days_only() {
        assert_eq!(
            report_name("abc-123:4"),
            "milvus-tier-report-abc-123-4.json"
        );
        let r = serde_json::json!({"days": [
            {"outcome": "migrated", "plan": {"rows": 3000},
             "steps": [{"step": "stage", "bytes": 5}, {"step": "publish", "bytes": 120}]},
            {"outcome": "already_done", "plan": {"rows": 9}, "steps": []},
        ]});
        let mut t = Totals::default();
        add_report(&mut t, &r);
        assert_eq!(
            t,
            Totals {
                rows: 3000,
                bytes: 120
            }
        );
    }
}
