//! Uploading a JSON report (`milvus-tier report upload`): the Batch job's entrypoint sends
//! the migrate report to S3 or a folder through the backup store, so the job image needs no
//! AWS CLI.

use std::path::Path;

use crate::backup::store::Store;
use crate::config::BackupConfig;
use crate::error::{Error, Result};

/// Where a report goes: the store's target (everything up to the last `/`) and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    /// `s3://bucket[/prefix]` or `file:///dir`.
    pub store: String,
    /// Object key or file name under it.
    pub name: String,
}

impl ReportTarget {
    /// Parse `to` (`s3://bucket/key`, `file:///path`); a target ending in `/` takes the
    /// file's own name.
    pub fn parse(to: &str, file: &Path) -> Result<ReportTarget> {
        let bad = |why: &str| {
            Error::BadInput(format!(
                "report target `{to}`: {why} (expected s3://bucket/key or file:///path)"
            ))
        };
        let rest = if let Some(r) = to.strip_prefix("s3://") {
            r
        } else if let Some(r) = to.strip_prefix("file://") {
            if !r.starts_with('/') {
                return Err(bad("a file:// target must be an absolute path"));
            }
            r
        } else {
            return Err(bad("unknown scheme"));
        };
        let scheme_len = to.len() - rest.len();
        let Some(slash) = rest.rfind('/') else {
            return Err(bad("names no object key"));
        };
        let (dir, name) = (&rest[..slash], &rest[slash + 1..]);
        let name = if name.is_empty() {
            file.file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| bad("the report file has no name"))?
        } else {
            name
        };
        if to.starts_with("s3://") && (dir.is_empty() || dir.starts_with('/')) {
            return Err(bad("names no bucket"));
        }
        Ok(ReportTarget {
            store: format!(
                "{}{}",
                &to[..scheme_len],
                if dir.is_empty() { "/" } else { dir }
            ),
            name: name.to_string(),
        })
    }
}

/// Upload the JSON report at `file` to `to`, with the S3 endpoint, region and addressing of
/// `backup` when given (the SDK's defaults otherwise). Returns where it went. A file that is
/// missing or not JSON is bad input naming it; nothing is written then.
pub async fn upload(file: &Path, to: &str, backup: Option<&BackupConfig>) -> Result<String> {
    let target = ReportTarget::parse(to, file)?;
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|e| Error::BadInput(format!("report {}: cannot read: {e}", file.display())))?;
    serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
        Error::BadInput(format!(
            "report {}: not a JSON document: {e}",
            file.display()
        ))
    })?;
    let cfg = BackupConfig {
        target: target.store.clone(),
        endpoint: backup.and_then(|b| b.endpoint.clone()),
        region: backup.and_then(|b| b.region.clone()),
        force_path_style: backup.is_some_and(|b| b.force_path_style),
        max_attempts: backup.map_or(5, |b| b.max_attempts),
        part_concurrency: 1,
    };
    let store = Store::open(&cfg).await?;
    store.put_bytes(&target.name, bytes).await?;
    Ok(store.describe(&target.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_store_and_name() {
        let f = Path::new("/tmp/milvus-tier-report-1.json");
        let t = ReportTarget::parse("s3://b/reports/x.json", f).unwrap();
        assert_eq!(
            (t.store.as_str(), t.name.as_str()),
            ("s3://b/reports", "x.json")
        );
        let t = ReportTarget::parse("s3://b/reports/", f).unwrap();
        assert_eq!(
            (t.store.as_str(), t.name.as_str()),
            ("s3://b/reports", "milvus-tier-report-1.json")
        );
        let t = ReportTarget::parse("s3://b/x.json", f).unwrap();
        assert_eq!((t.store.as_str(), t.name.as_str()), ("s3://b", "x.json"));
        let t = ReportTarget::parse("file:///var/reports/", f).unwrap();
        assert_eq!(t.store, "file:///var/reports");
        for bad in [
            "s3://bucket",
            "s3:///x.json",
            "ftp://h/x",
            "file://rel/x",
            "/tmp/x",
        ] {
            assert!(ReportTarget::parse(bad, f).is_err(), "{bad}");
        }
    }
}
