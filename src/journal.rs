//! The run journal: one row per collection, day and step in milvus-tier's own table
//! (`milvus_tier_journal`, in the long-term metadata database).
//!
//! A rerun reads it to resume: finished steps are verified, not redone blindly; a step left
//! `running` by a crash is cleaned and redone. The publish step's row is written in the same
//! transaction as the published Milvus rows, so "rows present" and "journal says published"
//! never disagree.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::day::Day;
use crate::error::{Error, Result};
use crate::lock::Fence;
use crate::meta::MetaDb;

/// Steps of a day's migration, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Segment folders and rows staged into the local engine.
    Stage,
    /// The engine merged and indexed the day.
    Build,
    /// Files copied to long-term storage and rows inserted.
    Publish,
    /// Files and manifest backed up.
    Backup,
}

impl Step {
    /// Name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Stage => "stage",
            Step::Build => "build",
            Step::Publish => "publish",
            Step::Backup => "backup",
        }
    }
}

/// State of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Started, not finished (or crashed).
    Running,
    /// Finished.
    Done,
    /// Failed with an error.
    Failed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
    fn parse(s: &str) -> State {
        match s {
            "done" => State::Done,
            "failed" => State::Failed,
            _ => State::Running,
        }
    }
}

/// One journal row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// Long-term collection.
    pub collection: String,
    /// Day, YYYY-MM-DD.
    pub day: String,
    /// Step.
    pub step: Step,
    /// State.
    pub state: State,
    /// The run that wrote it.
    pub run_id: String,
    /// Microseconds since the epoch.
    pub started_at: i64,
    /// Microseconds since the epoch.
    pub updated_at: i64,
    /// Microseconds since the epoch, when done or failed.
    pub finished_at: Option<i64>,
    /// Files handled.
    pub files: i64,
    /// Vectors handled.
    pub rows: i64,
    /// Bytes handled.
    pub bytes: i64,
    /// Combined BLAKE3 digest of the files (and, for publish, the rows).
    pub checksum_digest: String,
    /// JSON detail (error message, segment folders written, …).
    pub detail: Option<String>,
}

/// A nullable TEXT column: MySQL reports TEXT as a BLOB type through sqlx's Any driver.
fn text_or_blob(
    r: &sqlx::any::AnyRow,
    idx: usize,
) -> std::result::Result<Option<String>, sqlx::Error> {
    match r.try_get::<Option<String>, _>(idx) {
        Ok(v) => Ok(v),
        Err(_) => Ok(r
            .try_get::<Option<Vec<u8>>, _>(idx)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())),
    }
}

pub use crate::lock::now_micros;

/// Journal access on the long-term metadata database.
#[derive(Debug, Clone)]
pub struct Journal {
    db: MetaDb,
    fence: Option<Fence>,
}

impl Journal {
    /// Open the journal, creating or upgrading its tables.
    pub async fn open(db: &MetaDb) -> Result<Journal> {
        db.migrate_journal().await?;
        Ok(Journal {
            db: db.clone(),
            fence: None,
        })
    }

    /// This journal with every write fenced by `fence`: a write commits only while the
    /// lease is held (and extends it); otherwise it is [`crate::error::Error::LockLost`].
    pub fn fenced(&self, fence: &Fence) -> Journal {
        Journal {
            db: self.db.clone(),
            fence: Some(fence.clone()),
        }
    }

    /// Every entry of a collection and day, in step order.
    pub async fn entries(&self, collection: &str, day: &str) -> Result<Vec<Entry>> {
        let rows = sqlx::query(
            "SELECT collection, day, step, state, run_id, started_at, updated_at, finished_at, files, \
             row_count, bytes, checksum_digest, detail FROM milvus_tier_journal WHERE collection = ? AND day = ?",
        )
        .bind(collection)
        .bind(day)
        .fetch_all(self.db.pool())
        .await
        .map_err(self.db.err(format!("read journal of {collection} {day}")))?;
        let mut out = Vec::new();
        for r in rows {
            let step: String = r.try_get(2).map_err(self.db.err("decode journal"))?;
            let step = match step.as_str() {
                "stage" => Step::Stage,
                "build" => Step::Build,
                "publish" => Step::Publish,
                "backup" => Step::Backup,
                _ => continue,
            };
            let state: String = r.try_get(3).map_err(self.db.err("decode journal"))?;
            out.push(Entry {
                collection: r.try_get(0).map_err(self.db.err("decode journal"))?,
                day: r.try_get(1).map_err(self.db.err("decode journal"))?,
                step,
                state: State::parse(&state),
                run_id: r.try_get(4).map_err(self.db.err("decode journal"))?,
                started_at: r.try_get(5).map_err(self.db.err("decode journal"))?,
                updated_at: r.try_get(6).map_err(self.db.err("decode journal"))?,
                finished_at: r.try_get(7).map_err(self.db.err("decode journal"))?,
                files: r.try_get(8).map_err(self.db.err("decode journal"))?,
                rows: r.try_get(9).map_err(self.db.err("decode journal"))?,
                bytes: r.try_get(10).map_err(self.db.err("decode journal"))?,
                checksum_digest: r.try_get(11).map_err(self.db.err("decode journal"))?,
                detail: text_or_blob(&r, 12).map_err(self.db.err("decode journal"))?,
            });
        }
        out.sort_by_key(|e| e.step);
        Ok(out)
    }

    /// The entry of one step, if any.
    pub async fn get(&self, collection: &str, day: &str, step: Step) -> Result<Option<Entry>> {
        Ok(self
            .entries(collection, day)
            .await?
            .into_iter()
            .find(|e| e.step == step))
    }

    /// Write (insert or overwrite) an entry.
    pub async fn put(&self, e: &Entry) -> Result<()> {
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(self.db.err("begin journal write"))?;
        self.put_in(&mut tx, e).await?;
        tx.commit()
            .await
            .map_err(self.db.err("commit journal write"))
    }

    /// Write an entry inside a caller's transaction (delete + insert: portable upsert),
    /// after proving the lease is held when the journal is fenced.
    pub async fn put_in(&self, tx: &mut Transaction<'static, Any>, e: &Entry) -> Result<()> {
        if let Some(f) = &self.fence {
            f.hold(tx).await?;
        }
        sqlx::query(
            "DELETE FROM milvus_tier_journal WHERE collection = ? AND day = ? AND step = ?",
        )
        .bind(&e.collection)
        .bind(&e.day)
        .bind(e.step.as_str())
        .execute(&mut **tx)
        .await
        .map_err(self.db.err("write journal"))?;
        sqlx::query(
            "INSERT INTO milvus_tier_journal (collection, day, step, state, run_id, started_at, updated_at, \
             finished_at, files, row_count, bytes, checksum_digest, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&e.collection)
        .bind(&e.day)
        .bind(e.step.as_str())
        .bind(e.state.as_str())
        .bind(&e.run_id)
        .bind(e.started_at)
        .bind(e.updated_at)
        .bind(e.finished_at)
        .bind(e.files)
        .bind(e.rows)
        .bind(e.bytes)
        .bind(&e.checksum_digest)
        .bind(&e.detail)
        .execute(&mut **tx)
        .await
        .map_err(self.db.err("write journal"))?;
        Ok(())
    }

    /// Remove every entry of a collection and day from `step` on (a redo from there).
    pub async fn reset_from(&self, collection: &str, day: &str, step: Step) -> Result<()> {
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(self.db.err("begin journal reset"))?;
        if let Some(f) = &self.fence {
            f.hold(&mut tx).await?;
        }
        for s in [Step::Stage, Step::Build, Step::Publish, Step::Backup]
            .into_iter()
            .filter(|s| *s >= step)
        {
            sqlx::query(
                "DELETE FROM milvus_tier_journal WHERE collection = ? AND day = ? AND step = ?",
            )
            .bind(collection)
            .bind(day)
            .bind(s.as_str())
            .execute(&mut *tx)
            .await
            .map_err(self.db.err("reset journal"))?;
        }
        tx.commit()
            .await
            .map_err(self.db.err("commit journal reset"))
    }
}

/// What the publish step records in its journal `detail`: enough to verify the day later
/// and to clean up after a crash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublishDetail {
    /// Digest of the published Tables and TableFiles rows ([`crate::meta::rows_digest`]:
    /// `v2:<hex>`; a bare hex value was recorded before digests had versions).
    pub rows_digest: String,
    /// Segment folders written to long-term storage, as `table_id/segment_id`.
    pub segments: Vec<String>,
    /// Every published file with size and BLAKE3.
    pub files: Vec<crate::segments::FileDigest>,
}

impl Entry {
    /// The publish detail, if any. A detail that does not parse is an error naming the entry:
    /// what it records (rows digest, files, segment folders) decides what later runs trust.
    pub fn publish_detail(&self) -> Result<Option<PublishDetail>> {
        let Some(d) = self.detail.as_deref() else {
            return Ok(None);
        };
        serde_json::from_str(d).map(Some).map_err(|e| {
            Error::Conflict(format!(
                "journal entry {}/{}/{} (run {}): detail is not a publish record ({e}); \
                 inspect milvus_tier_journal before rerunning",
                self.collection,
                self.day,
                self.step.as_str(),
                self.run_id
            ))
        })
    }

    /// The rows digest recorded by a publish entry.
    pub fn detail_rows_digest(&self) -> Result<Option<String>> {
        Ok(self.publish_detail()?.map(|d| d.rows_digest))
    }

    /// Whether `tables` and `files` are the rows this publish entry recorded: its rows digest
    /// checked with [`crate::meta::check_rows_digest`], in the encoding the recorded value
    /// names (a digest from before encodings had versions still matches its rows). `None`
    /// when the entry records no detail; a digest of no known encoding is an error naming the
    /// entry.
    pub fn rows_match(
        &self,
        tables: &[crate::meta::TableRow],
        files: &[crate::meta::FileRow],
    ) -> Result<Option<bool>> {
        let Some(recorded) = self.detail_rows_digest()? else {
            return Ok(None);
        };
        match crate::meta::check_rows_digest(&recorded, tables, files) {
            crate::meta::RowsDigestCheck::Matches(_) => Ok(Some(true)),
            crate::meta::RowsDigestCheck::Differs { .. } => Ok(Some(false)),
            crate::meta::RowsDigestCheck::UnknownVersion => Err(Error::Conflict(format!(
                "journal entry {}/{}/{} (run {}): rows digest `{recorded}` is of no encoding \
                 this version of milvus-tier reads (written by a newer version?); \
                 inspect milvus_tier_journal before rerunning",
                self.collection,
                self.day,
                self.step.as_str(),
                self.run_id
            ))),
        }
    }

    /// The files recorded by a publish entry.
    pub fn detail_files(&self) -> Result<Vec<crate::segments::FileDigest>> {
        Ok(self.publish_detail()?.map(|d| d.files).unwrap_or_default())
    }

    /// The segment folders recorded by a publish entry.
    pub fn detail_segments(&self) -> Result<Vec<String>> {
        Ok(self
            .publish_detail()?
            .map(|d| d.segments)
            .unwrap_or_default())
    }
}
/// The journal records of a run's steps.
impl Journal {
    /// Record that `run_id` is at `state` of `step` for a day, keeping the step's start
    /// time when this run began it; `figures` are `(files, rows, bytes, digest)`.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark(
        &self,
        collection: &str,
        day: &str,
        step: Step,
        state: State,
        run_id: &str,
        figures: Option<(usize, i64, u64, &str)>,
    ) -> Result<()> {
        let now = now_micros();
        let started = match self.get(collection, day, step).await? {
            Some(e) if e.run_id == run_id => e.started_at,
            _ => now,
        };
        let (files, rows, bytes, digest) = figures.unwrap_or((0, 0, 0, ""));
        self.put(&Entry {
            collection: collection.to_string(),
            day: day.to_string(),
            step,
            state,
            run_id: run_id.to_string(),
            started_at: started,
            updated_at: now,
            finished_at: (state != State::Running).then_some(now),
            files: files as i64,
            rows,
            bytes: bytes as i64,
            checksum_digest: digest.to_string(),
            detail: None,
        })
        .await
    }

    /// Mark `run_id`'s running entries of a day failed with the error and its kind; a day
    /// found not ready between steps is recorded on the step the run was about to begin.
    pub async fn record_failure(
        &self,
        collection: &str,
        day: Day,
        run_id: &str,
        e: &Error,
    ) -> Result<()> {
        let with_error = |detail: Option<&str>, base: serde_json::Value| {
            let mut detail: serde_json::Value = detail
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(base);
            detail["error"] = serde_json::Value::String(e.to_string());
            // `status` tells a day that is not ready yet (retried later) from a failure.
            detail["kind"] = serde_json::Value::String(e.kind().name().to_string());
            detail.to_string()
        };
        let entries = self.entries(collection, &day.to_string()).await?;
        let mut marked = false;
        for mut entry in entries.iter().cloned() {
            if entry.run_id != run_id || entry.state != State::Running {
                continue;
            }
            entry.state = State::Failed;
            entry.finished_at = Some(now_micros());
            entry.updated_at = now_micros();
            entry.detail = Some(with_error(entry.detail.as_deref(), serde_json::json!({})));
            self.put(&entry).await?;
            marked = true;
        }
        if marked || e.kind() != crate::error::ErrorKind::NotReady {
            return Ok(());
        }
        // A day found not ready between steps (the check before publish, or the plan) has no
        // running step to mark: record it on the step the run was about to begin, so `status`
        // shows the day waiting. A publish entry left by an earlier crashed run keeps its
        // folder list (the next run cleans those folders up).
        let done = |step: Step| {
            entries
                .iter()
                .any(|x| x.step == step && x.run_id == run_id && x.state == State::Done)
        };
        let Some(step) = [Step::Stage, Step::Build, Step::Publish, Step::Backup]
            .into_iter()
            .find(|s| !done(*s))
        else {
            return Ok(());
        };
        let prev = entries
            .iter()
            .find(|x| x.step == step && x.state != State::Done);
        let base = if step == Step::Publish {
            serde_json::to_value(crate::journal::PublishDetail::default()).expect("serializes")
        } else {
            serde_json::json!({})
        };
        let now = now_micros();
        self.put(&Entry {
            collection: collection.to_string(),
            day: day.to_string(),
            step,
            state: State::Failed,
            run_id: run_id.to_string(),
            started_at: now,
            updated_at: now,
            finished_at: Some(now),
            files: 0,
            rows: 0,
            bytes: 0,
            checksum_digest: String::new(),
            detail: Some(with_error(prev.and_then(|p| p.detail.as_deref()), base)),
        })
        .await
    }
}
