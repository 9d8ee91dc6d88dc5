//! The steps of a migrate run in order, plan → stage → build → publish → backup, each
//! journaled by the [`Recorder`], each taking the previous step's typed result.

use std::time::{Duration, Instant};

use super::{Sources, build, idle, stage};
use crate::backup::day::backup_step;
use crate::config::{Config, Tier};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::journal::Step;
use crate::lock::Lease;
use crate::meta::{ConnectOptions, MetaDb};
use crate::plan::{self, DayPlan, LongTermState};
use crate::progress::Progress;
use crate::publish;
use crate::run_report::{Figures, Outcome, Recorder};

/// One run of a day, holding its lease.
pub(super) struct Run<'a> {
    pub config: &'a Config,
    pub src: &'a Sources,
    pub lease: &'a Lease,
    pub progress: &'a Progress,
}

impl Run<'_> {
    /// Plan, then (unless long-term already holds the day) stage, build and publish; then
    /// back up.
    pub async fn run(
        &self,
        rec: &mut Recorder<'_>,
        planned: &mut Option<DayPlan>,
    ) -> Result<Outcome> {
        let (config, src) = (self.config, self.src);
        let t = Instant::now();
        let p = plan::plan(src.long.day, &src.plan_input(Some(rec.journal))).await?;
        *planned = Some(p.clone());
        let planned_figures = Figures {
            files: p.input_files.len(),
            rows: p.rows,
            bytes: p.stage_bytes,
            digest: String::new(),
        };
        rec.line("plan", t.elapsed().as_secs_f64(), &planned_figures, "done");
        if let LongTermState::Done { files_digest, .. } = &p.long_term {
            let f = Figures {
                rows: p.rows,
                digest: files_digest.clone(),
                ..Figures::default()
            };
            rec.line("publish", 0.0, &f, "verified");
            backup_step(config, &src.long, rec, false).await?;
            return Ok(Outcome::AlreadyDone);
        }
        failpoint("plan.done");

        let local = self.local_engine(&p).await?;
        rec.step(Step::Stage, self.stage(&p, &local), |s| Figures {
            files: s.files.len(),
            rows: p.rows,
            bytes: s.bytes,
            digest: s.digest.clone(),
        })
        .await?;
        let built = rec
            .step(Step::Build, self.build(&p, &local), |b| Figures {
                files: b.files.len(),
                rows: p.rows,
                bytes: b.files.iter().map(|f| f.file_size.max(0) as u64).sum(),
                digest: String::new(),
            })
            .await?;

        // The short-term day must still be what was planned, else part of a growing day
        // would be published.
        plan::recheck_source(&p, &src.plan_input(None)).await?;

        // Publish journals itself: its entry commits with the rows.
        let t = Instant::now();
        let published = self.publish(&p, &built, rec).await?;
        let f = Figures {
            files: published.files.len(),
            rows: p.rows,
            bytes: published.bytes_copied + published.bytes_verified,
            digest: published.digest.clone(),
        };
        rec.line("publish", t.elapsed().as_secs_f64(), &f, "done");
        backup_step(config, &src.long, rec, true).await?;
        failpoint("migrate.done");
        Ok(Outcome::Migrated)
    }

    /// The local engine's metadata, once the engine is idle: its own metadata writes fail
    /// on SQLite while we hold a write lock, so staging waits for it.
    async fn local_engine(&self, p: &DayPlan) -> Result<MetaDb> {
        let config = self.config;
        let local_target = config.tier(Tier::Local)?;
        let local = MetaDb::connect_with(
            &local_target.meta_url,
            &ConnectOptions {
                timeout: config.connect_timeout(),
                max_connections: 4,
                ..ConnectOptions::default()
            },
        )
        .await?;
        local.check_schema().await?;
        let waited = idle::wait_idle(
            &local,
            &p.long_collection.table_id,
            Duration::from_secs(config.limits.index_timeout_secs),
            Duration::from_millis(200),
        )
        .await?;
        tracing::info!(
            waited_s = waited.as_secs_f64(),
            "local engine idle, staging"
        );
        Ok(local)
    }

    fn bandwidth(&self) -> Option<u64> {
        let mb = self.config.limits.bandwidth_mb_per_s;
        (mb > 0).then(|| mb * 1_000_000)
    }

    async fn stage(&self, p: &DayPlan, local: &MetaDb) -> Result<stage::StageReport> {
        let meter = self.progress.bytes("stage", p.stage_bytes);
        let staged = stage::stage(
            p,
            &self.src.short_storage,
            local,
            &self.config.engine.storage_path,
            self.config.limits.copy_concurrency,
            self.bandwidth(),
            Some(meter.callback()),
        )
        .await;
        meter.finish();
        staged
    }

    async fn build(&self, p: &DayPlan, local: &MetaDb) -> Result<build::BuildReport> {
        let config = self.config;
        let engine = Engine::new(&config.engine.http_url);
        let limits = build::BuildLimits {
            merge: Duration::from_secs(config.limits.merge_timeout_secs),
            index: Duration::from_secs(config.limits.index_timeout_secs),
            no_progress: Duration::from_secs(config.limits.no_progress_timeout_secs),
            threshold: config.engine.build_index_threshold,
        };
        // A build can wait on the engine for hours: a lost lease stops it at once.
        let status = self.progress.status("build");
        let fence = self.lease.fence();
        tokio::select! {
            built = build::build(p, local, &engine, limits, &status) => built,
            () = fence.lost() => Err(Error::LockLost(fence.name().to_string())),
        }
    }

    async fn publish(
        &self,
        p: &DayPlan,
        built: &build::BuildReport,
        rec: &Recorder<'_>,
    ) -> Result<publish::PublishReport> {
        let (config, cx) = (self.config, &self.src.long);
        let tables = p.target_tables();
        let meter = self.progress.bytes(
            "publish",
            built.files.iter().map(|f| f.file_size.max(0) as u64).sum(),
        );
        let published = publish::publish(&publish::PublishInput {
            collection: &cx.collection,
            day: &rec.day,
            tables: &tables,
            files: &built.files,
            source_storage: &config.engine.storage_path,
            long_storage: &cx.long_storage,
            long: &cx.long,
            journal: rec.journal,
            lease: self.lease,
            run_id: rec.run_id,
            concurrency: config.limits.copy_concurrency,
            bandwidth: self.bandwidth(),
            progress: Some(meter.callback()),
            prehashed: None,
            gc_wait: config.lock_wait(),
        })
        .await;
        meter.finish();
        published
    }
}
