//! What a migrate (or backup) run reports of each day: how it ended and each step's
//! figures, and the recorder that journals a step and adds its report line. Shared by the
//! steps, so none of them reaches into the orchestrator for it.

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::day::Day;
use crate::error::Result;
use crate::journal::{Journal, State, Step};
use crate::plan::DayPlan;

/// How a day ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Migrated now.
    Migrated,
    /// Already in long-term exactly; nothing done.
    AlreadyDone,
    /// Dry run: planned only.
    Planned,
    /// Failed.
    Failed,
    /// Not migrated: the day is not over yet (still being written); a later run can do it.
    NotReady,
}

/// One step's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Step name.
    pub step: &'static str,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Files handled.
    pub files: usize,
    /// Vectors handled.
    pub rows: i64,
    /// Bytes handled.
    pub bytes: u64,
    /// Combined checksum of the files.
    pub digest: String,
    /// What happened (`done`, `verified`, `skipped`).
    pub outcome: &'static str,
}

/// The report of one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayReport {
    /// The day.
    pub day: Day,
    /// Long-term collection.
    pub collection: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The plan (None if planning failed).
    pub plan: Option<DayPlan>,
    /// Steps run.
    pub steps: Vec<StepReport>,
    /// Error message, if failed.
    pub error: Option<String>,
    /// Exit code this day maps to.
    pub exit_code: i32,
}

/// Figures of a finished step, for its journal entry and report line.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Files handled.
    pub files: usize,
    /// Vectors handled.
    pub rows: i64,
    /// Bytes handled.
    pub bytes: u64,
    /// Combined checksum of the files ("" when the step has none).
    pub digest: String,
}

/// Journals a run's steps of one day and collects their report lines.
pub(crate) struct Recorder<'a> {
    pub journal: &'a Journal,
    pub collection: &'a str,
    pub day: String,
    pub run_id: &'a str,
    pub steps: &'a mut Vec<StepReport>,
}

impl Recorder<'_> {
    /// Run one journaled step: mark it running, run `work`, mark it done with the figures
    /// `figures` reads off its result, add its report line. An error leaves the entry
    /// running (the caller marks the run's running entries failed).
    pub async fn step<T>(
        &mut self,
        step: Step,
        work: impl Future<Output = Result<T>>,
        figures: impl FnOnce(&T) -> Figures,
    ) -> Result<T> {
        let t = Instant::now();
        self.mark(step, State::Running, None).await?;
        let out = work.await?;
        let f = figures(&out);
        self.mark(step, State::Done, Some(&f)).await?;
        self.line(step.as_str(), t.elapsed().as_secs_f64(), &f, "done");
        Ok(out)
    }

    /// Journal `state` of `step` for this run.
    pub async fn mark(&self, step: Step, state: State, f: Option<&Figures>) -> Result<()> {
        self.journal
            .mark(
                self.collection,
                &self.day,
                step,
                state,
                self.run_id,
                f.map(|f| (f.files, f.rows, f.bytes, f.digest.as_str())),
            )
            .await
    }

    /// Add a report line for `step`, which took `seconds`.
    pub fn line(&mut self, step: &'static str, seconds: f64, f: &Figures, outcome: &'static str) {
        self.steps.push(StepReport {
            step,
            seconds,
            files: f.files,
            rows: f.rows,
            bytes: f.bytes,
            digest: f.digest.clone(),
            outcome,
        });
    }
}
