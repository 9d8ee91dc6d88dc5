//! `verify`: check one published day end to end and return typed findings.
//!
//! Long-term rows ↔ files on long-term storage (present, sizes; deep: BLAKE3 against the
//! checksums recorded at publish) ↔ the backup manifest (same rows, sizes, checksums; deep:
//! objects re-read) ↔ short-term (rows per partition) while the short-term partition exists.
//! Partition rotation calls [`Verifier::verify_day`] before dropping a short-term day.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backup::PublishedDay;
use crate::backup::manifest::{Manifest, file_key, read_manifest};
use crate::backup::store::Store;
use crate::config::{Config, Tier};
use crate::day::{Day, TagFormat};
use crate::error::{Error, Result};
use crate::journal::{Journal, State, Step};
use crate::meta::{FileType, MetaDb, TableState};
use crate::segments::layout::{INPUT_TYPES, PUBLISHED_TYPES, raw_names};
use crate::segments::{FileDigest, SegmentRef, segment_dir};

/// One disagreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind (`missing_file`, `not_regular_file`, `size_mismatch`, `checksum_mismatch`, `missing_row`,
    /// `row_mismatch`, `extra_row`, `rows_changed`, `backup_missing`, `backup_invalid`,
    /// `manifest_mismatch`, `object_missing`, `object_mismatch`, `count_mismatch`,
    /// `no_rows`).
    pub kind: &'static str,
    /// The file, row or object at fault.
    pub subject: String,
    /// What differs.
    pub detail: String,
}

/// The result of verifying one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayVerification {
    /// The day.
    pub day: Day,
    /// Long-term collection.
    pub collection: String,
    /// Files checked on long-term storage.
    pub files_checked: usize,
    /// Whether the backup was compared.
    pub backup_checked: bool,
    /// Whether short-term still held the day and was compared.
    pub short_term_checked: bool,
    /// Every disagreement found.
    pub findings: Vec<Finding>,
    /// No findings.
    pub ok: bool,
}

/// Connections `verify` needs; build once, verify many days.
pub struct Verifier {
    long: MetaDb,
    long_storage: std::path::PathBuf,
    long_collection: String,
    long_tags: TagFormat,
    short: MetaDb,
    short_collection: String,
    short_tags: TagFormat,
    store: Option<Store>,
    /// None while the long-term database has no journal yet (verify creates no table).
    journal: Option<Journal>,
}

impl Verifier {
    /// Connect to both tiers (and the backup store, when configured).
    ///
    /// The long-term storage root must exist and hold `db/tables`, as `migrate` and
    /// `restore` require (bad input naming it; it is never created).
    pub async fn connect(config: &Config) -> Result<Verifier> {
        crate::check::require_storage_root(
            Tier::LongTerm,
            &config.tier(Tier::LongTerm)?.storage_path,
        )?;
        let (long, long_storage, long_collection) =
            crate::context::connect(config, Tier::LongTerm).await?;
        let (short, _, short_collection) = crate::context::connect(config, Tier::ShortTerm).await?;
        let store = match &config.backup {
            Some(b) => Some(Store::open(b).await?),
            None => None,
        };
        Ok(Verifier {
            journal: if crate::lifecycle::record::journal_exists(&long).await? {
                Some(Journal::open(&long).await?)
            } else {
                None
            },
            long,
            long_storage,
            long_collection,
            long_tags: config.tier(Tier::LongTerm)?.tag_format,
            short,
            short_collection,
            short_tags: config.tier(Tier::ShortTerm)?.tag_format,
            store,
        })
    }

    /// Verify one day; `deep` re-hashes long-term files and re-reads backup objects.
    pub async fn verify_day(&self, day: Day, deep: bool) -> Result<DayVerification> {
        let day_s = day.to_string();
        let mut v = DayVerification {
            day,
            collection: self.long_collection.clone(),
            files_checked: 0,
            backup_checked: false,
            short_term_checked: false,
            findings: Vec::new(),
            ok: false,
        };
        let tag = self.long_tags.tag(day);
        let Some(pd) = PublishedDay::read(&self.long, &self.long_collection, &tag).await? else {
            v.findings.push(Finding {
                kind: "no_rows",
                subject: format!("collection `{}` day {day_s}", self.long_collection),
                detail: format!("long-term holds no partition tagged {tag}"),
            });
            return Ok(v);
        };
        let publish = match &self.journal {
            Some(j) => j
                .get(&self.long_collection, &day_s, Step::Publish)
                .await?
                .filter(|p| p.state == State::Done),
            None => None,
        };
        let manifest = match &self.store {
            Some(store) => {
                v.backup_checked = true;
                match read_manifest(store, &self.long_collection, &day_s).await {
                    Ok(m) => Some(m),
                    Err(Error::Manifest { target, reason }) => {
                        v.findings.push(Finding {
                            kind: if reason.starts_with("not found") {
                                "backup_missing"
                            } else {
                                "backup_invalid"
                            },
                            subject: target,
                            detail: reason,
                        });
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };

        // Reference checksums: what publish recorded, else the manifest.
        let recorded = match &publish {
            Some(p) => p.detail_files()?,
            None => Vec::new(),
        };
        let reference: Vec<FileDigest> = match (&publish, &manifest) {
            (Some(_), _) if !recorded.is_empty() => recorded,
            (_, Some(m)) => m
                .files
                .iter()
                .map(|f| FileDigest {
                    table_id: f.table_id.clone(),
                    segment_id: f.segment_id.clone(),
                    name: f.name.clone(),
                    size: f.size,
                    blake3: f.blake3.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        if let Some(p) = &publish
            && p.rows_match(&pd.tables, &pd.files)? == Some(false)
        {
            v.findings.push(Finding {
                kind: "rows_changed",
                subject: format!("day {day_s} rows"),
                detail: format!(
                    "long-term rows differ from those published by run {}",
                    p.run_id
                ),
            });
        }
        self.check_storage(&pd, &reference, deep, &mut v).await?;
        if let Some(m) = &manifest {
            compare_manifest(&pd, m, &reference, &mut v);
            self.check_objects(m, deep, &mut v).await?;
        }
        self.check_short_term(&pd, day, &mut v).await?;
        v.ok = v.findings.is_empty();
        Ok(v)
    }

    async fn check_storage(
        &self,
        pd: &PublishedDay,
        reference: &[FileDigest],
        deep: bool,
        v: &mut DayVerification,
    ) -> Result<()> {
        // Every name the rows imply, with the reference size/checksum when known.
        let mut want: BTreeMap<(String, String, String), Option<&FileDigest>> = BTreeMap::new();
        for f in &pd.files {
            let names: Vec<String> = if f.file_type == FileType::Index {
                vec![f.file_id.clone()]
            } else {
                raw_names(f).to_vec()
            };
            for n in names {
                want.insert((f.table_id.clone(), f.segment_id.clone(), n), None);
            }
        }
        for r in reference {
            want.insert(
                (r.table_id.clone(), r.segment_id.clone(), r.name.clone()),
                Some(r),
            );
        }
        for ((table, seg, name), r) in &want {
            let path = segment_dir(&self.long_storage, &SegmentRef::new(table, seg)).join(name);
            v.files_checked += 1;
            // Never followed: a link in long-term is reported, not read through.
            let meta = match tokio::fs::symlink_metadata(&path).await {
                Ok(m) if !m.is_file() => {
                    v.findings.push(Finding {
                        kind: "not_regular_file",
                        subject: path.display().to_string(),
                        detail: if m.file_type().is_symlink() {
                            "is a symbolic link; long-term holds only regular files".into()
                        } else {
                            "is not a regular file".into()
                        },
                    });
                    continue;
                }
                Ok(m) => m,
                Err(e) => {
                    v.findings.push(Finding {
                        kind: "missing_file",
                        subject: path.display().to_string(),
                        detail: format!("long-term file missing: {e}"),
                    });
                    continue;
                }
            };
            let Some(r) = r else { continue };
            if meta.len() != r.size {
                v.findings.push(Finding {
                    kind: "size_mismatch",
                    subject: path.display().to_string(),
                    detail: format!("{} bytes, {} recorded", meta.len(), r.size),
                });
            } else if deep {
                let (_, hash) = crate::backup::store::hash_file(&path).await?;
                if hash != r.blake3 {
                    v.findings.push(Finding {
                        kind: "checksum_mismatch",
                        subject: path.display().to_string(),
                        detail: format!("BLAKE3 {hash}, {} recorded", r.blake3),
                    });
                }
            }
        }
        Ok(())
    }

    async fn check_objects(&self, m: &Manifest, deep: bool, v: &mut DayVerification) -> Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        for f in &m.files {
            let key = file_key(&m.collection, &m.day, &f.path);
            let name = store.describe(&key);
            let Some(info) = store.head(&key).await? else {
                v.findings.push(Finding {
                    kind: "object_missing",
                    subject: name,
                    detail: "listed in the manifest, absent from the backup".into(),
                });
                continue;
            };
            let recorded_bad = info.blake3.as_ref().is_some_and(|b| *b != f.blake3);
            if info.size != f.size || recorded_bad {
                v.findings.push(Finding {
                    kind: "object_mismatch",
                    subject: name,
                    detail: format!(
                        "{} bytes, BLAKE3 {}; the manifest lists {} bytes, BLAKE3 {}",
                        info.size,
                        info.blake3.as_deref().unwrap_or("(not recorded)"),
                        f.size,
                        f.blake3
                    ),
                });
            } else if deep {
                let (size, hash) = store.hash_object(&key).await?;
                if size != f.size || hash != f.blake3 {
                    v.findings.push(Finding {
                        kind: "object_mismatch",
                        subject: name,
                        detail: format!(
                            "reads {size} bytes, BLAKE3 {hash}; the manifest lists {} bytes, BLAKE3 {}",
                            f.size, f.blake3
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    async fn check_short_term(
        &self,
        pd: &PublishedDay,
        day: Day,
        v: &mut DayVerification,
    ) -> Result<()> {
        let tag = self.short_tags.tag(day);
        let parts: Vec<_> = self
            .short
            .partitions_tagged(&self.short_collection, &tag)
            .await?
            .into_iter()
            .filter(|p| p.state == TableState::Normal)
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        v.short_term_checked = true;
        let ids: Vec<String> = parts.iter().map(|p| p.table_id.clone()).collect();
        let short_files = self.short.files(&ids, INPUT_TYPES).await?;
        for p in &parts {
            let short_rows: i64 = short_files
                .iter()
                .filter(|f| f.table_id == p.table_id)
                .map(|f| f.row_count)
                .sum();
            let long_rows: i64 = pd
                .files
                .iter()
                .filter(|f| f.table_id == p.table_id && f.file_type != FileType::Backup)
                .map(|f| f.row_count)
                .sum();
            if short_rows != long_rows {
                v.findings.push(Finding {
                    kind: "count_mismatch",
                    subject: format!("partition {} (tag {tag})", p.table_id),
                    detail: format!("short-term {short_rows} rows, long-term {long_rows}"),
                });
            }
        }
        Ok(())
    }
}

fn compare_manifest(
    pd: &PublishedDay,
    m: &Manifest,
    reference: &[FileDigest],
    v: &mut DayVerification,
) {
    let mut push = |kind, subject: String, detail: String| {
        v.findings.push(Finding {
            kind,
            subject,
            detail,
        })
    };
    for t in &m.tables {
        match pd.tables.iter().find(|h| h.table_id == t.table_id) {
            Some(h) if h.same_content(t) => {}
            Some(h) => push(
                "row_mismatch",
                format!("Tables row {}", t.table_id),
                format!(
                    "long-term and backup differ in {}",
                    h.differing_columns(t).join(", ")
                ),
            ),
            None => push(
                "missing_row",
                format!("Tables row {}", t.table_id),
                "in the backup, not in long-term".into(),
            ),
        }
    }
    for h in &pd.tables {
        if !m.tables.iter().any(|t| t.table_id == h.table_id) {
            push(
                "extra_row",
                format!("Tables row {}", h.table_id),
                "in long-term, not in the backup".into(),
            );
        }
    }
    for f in &m.table_files {
        let subject = format!("TableFiles row {}/{}", f.table_id, f.file_id);
        match pd.files.iter().find(|h| h.key() == f.key()) {
            Some(h) if h.same_content(f) => {}
            Some(h) => push(
                "row_mismatch",
                subject,
                format!(
                    "long-term and backup differ in {}",
                    h.differing_columns(f).join(", ")
                ),
            ),
            None => push(
                "missing_row",
                subject,
                "in the backup, not in long-term".into(),
            ),
        }
    }
    for h in &pd.files {
        if !m.table_files.iter().any(|f| f.key() == h.key())
            && PUBLISHED_TYPES.contains(&h.file_type)
        {
            push(
                "extra_row",
                format!("TableFiles row {}/{}", h.table_id, h.file_id),
                "in long-term, not in the backup".into(),
            );
        }
    }
    for r in reference {
        let path =
            crate::backup::manifest::ManifestFile::path_of(&r.table_id, &r.segment_id, &r.name);
        match m.files.iter().find(|f| f.path == path) {
            Some(f) if f.size == r.size && f.blake3 == r.blake3 => {}
            Some(f) => push(
                "manifest_mismatch",
                format!("{path} in the manifest"),
                format!(
                    "manifest lists {} bytes, BLAKE3 {}; published {} bytes, BLAKE3 {}",
                    f.size, f.blake3, r.size, r.blake3
                ),
            ),
            None => push(
                "manifest_mismatch",
                format!("{path} in the manifest"),
                "published file not listed in the backup".into(),
            ),
        }
    }
}

/// Record the outcome in the journal (where it exists), for `status`.
pub async fn record(
    long: &crate::meta::MetaDb,
    v: &DayVerification,
    deep: bool,
    run_id: &str,
    started_at: i64,
) -> Result<()> {
    use crate::lifecycle::record::{Record, VERIFY, record_verify};
    let kinds: Vec<&str> = v.findings.iter().take(20).map(|f| f.kind).collect();
    record_verify(
        long,
        &Record {
            collection: &v.collection,
            day: v.day,
            step: VERIFY,
            state: "done",
            run_id,
            started_at,
            finished_at: crate::journal::now_micros(),
            files: v.files_checked as i64,
            rows: v.findings.len() as i64,
            bytes: 0,
            detail: Some(serde_json::json!({"deep": deep, "findings": kinds}).to_string()),
        },
    )
    .await?;
    Ok(())
}
