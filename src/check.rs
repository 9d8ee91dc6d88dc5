//! `config check`: is each configured database, storage path and collection usable?

use std::path::Path;

use serde::Serialize;

use crate::config::{Config, Tier};
use crate::meta::{ConnectOptions, MetaDb, TableState};

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found (or what is wrong).
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, result: Result<String, String>) -> Check {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        Check {
            name: name.into(),
            ok,
            detail,
        }
    }
}

/// Run every check; one entry per check, in a fixed order.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let opts = ConnectOptions {
        timeout: config.connect_timeout(),
        max_connections: 1,
        ..ConnectOptions::default()
    };
    for tier in [Tier::ShortTerm, Tier::LongTerm, Tier::Local] {
        let target = match config.tier(tier) {
            Ok(t) => t,
            Err(e) => {
                out.push(Check::new(
                    format!("{tier} configuration"),
                    Err(e.to_string()),
                ));
                continue;
            }
        };
        let db = match MetaDb::connect_with(&target.meta_url, &opts).await {
            Ok(db) => {
                out.push(Check::new(
                    format!("{tier} metadata {}", target.redacted_url),
                    Ok("reachable".into()),
                ));
                Some(db)
            }
            Err(e) => {
                out.push(Check::new(
                    format!("{tier} metadata {}", target.redacted_url),
                    Err(e.to_string()),
                ));
                None
            }
        };
        if let Some(db) = &db {
            let schema = db.check_schema().await.map(|_| {
                "Tables, TableFiles, Environment, Fields as Milvus 1.1.1 creates them".to_string()
            });
            let schema_ok = schema.is_ok();
            out.push(Check::new(
                format!("{tier} Milvus 1.1.1 schema"),
                schema.map_err(|e| e.to_string()),
            ));
            if schema_ok && tier != Tier::Local {
                let name = format!("{tier} collection `{}`", target.collection);
                let result = match db.collection(&target.collection).await {
                    Ok(Some(c)) if c.state == TableState::Normal => {
                        match db.partitions(&c.table_id).await {
                            Ok(parts) => Ok(format!(
                                "dimension {}, metric {}, engine {}, index_file_size {} bytes, {} partitions",
                                c.dimension,
                                c.metric_type,
                                c.engine_type,
                                c.index_file_size,
                                parts
                                    .iter()
                                    .filter(|p| p.state == TableState::Normal)
                                    .count()
                            )),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Ok(Some(_)) => Err("collection is soft-deleted (state TO_DELETE)".to_string()),
                    Ok(None) => Err("not found".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                out.push(Check::new(name, result));
            }
            db.close().await;
        }
        out.push(Check::new(
            format!("{tier} storage {}", target.storage_path.display()),
            storage(&target.storage_path),
        ));
    }
    if let Some(b) = &config.backup
        && let Some(path) = b.target.strip_prefix("file://")
    {
        out.push(Check::new(
            format!("backup target {}", b.target),
            writable_dir(Path::new(path)),
        ));
    }
    out
}

fn storage(path: &Path) -> Result<String, String> {
    storage_root(path).map(|()| "exists, db/tables present".into())
}

/// A Milvus `storage.path` milvus-tier may read or write: an existing folder holding
/// `db/tables` (Milvus creates it with the first collection). milvus-tier never creates
/// one: a missing root is an unmounted volume or a wrong path, and files written there
/// would be invisible to the Milvus nodes. `Err` says what is wrong.
pub fn storage_root(path: &Path) -> Result<(), String> {
    if !path.is_dir() {
        return Err("does not exist or is not a directory".into());
    }
    if !path.join("db").join("tables").is_dir() {
        return Err("has no db/tables folder: not a Milvus storage.path".into());
    }
    Ok(())
}

/// [`storage_root`] for every configured storage path (short-term, long-term, local
/// engine): bad input naming the first one that is not usable.
pub fn require_storage_roots(config: &Config) -> crate::error::Result<()> {
    for tier in [Tier::ShortTerm, Tier::LongTerm, Tier::Local] {
        require_storage_root(tier, &config.tier(tier)?.storage_path)?;
    }
    Ok(())
}

/// [`storage_root`] for one tier's storage path: bad input naming it.
pub fn require_storage_root(tier: Tier, path: &Path) -> crate::error::Result<()> {
    storage_root(path).map_err(|why| {
        crate::error::Error::BadInput(format!(
            "{tier} storage {}: {why}; milvus-tier never creates a storage path (is the volume mounted?)",
            path.display()
        ))
    })
}

fn writable_dir(path: &Path) -> Result<String, String> {
    if !path.is_dir() {
        return Err(
            "does not exist or is not a directory (milvus-tier never creates the backup target: create it or mount its volume)".into(),
        );
    }
    let probe = path.join(format!(".milvus-tier-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe").map_err(|e| format!("not writable: {e}"))?;
    std::fs::remove_file(&probe).map_err(|e| format!("cannot remove probe file: {e}"))?;
    Ok("exists, writable".into())
}
