//! `milvus-tier migrate`.

use std::path::{Path, PathBuf};

use milvus_tier::config::Config;
use milvus_tier::day::Day;
use milvus_tier::error::{Result, exit};
use milvus_tier::migrate::{self, DayReport, MigrateOptions, Outcome};
use milvus_tier::progress::Progress;

/// Arguments of `migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The days.
    #[command(flatten)]
    pub days: super::days::DayArgs,
    /// With --from/--to: run only day `from + $AWS_BATCH_JOB_ARRAY_INDEX` (a child of the
    /// Batch array job `submit` makes for a range).
    #[arg(long, requires = "from")]
    pub day_from_array_index: bool,
    /// Print the plan and write nothing anywhere.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Environment variable AWS Batch sets in each child of an array job (0-based).
pub const ARRAY_INDEX_ENV: &str = "AWS_BATCH_JOB_ARRAY_INDEX";

/// The day of an array job's child: `days[index]`.
pub fn array_day(days: &[Day], index: Option<&str>) -> Result<Day> {
    let raw = index.ok_or_else(|| {
        milvus_tier::Error::Usage(format!(
            "--day-from-array-index: {ARRAY_INDEX_ENV} is not set (this runs as a child of a Batch array job)"
        ))
    })?;
    raw.trim()
        .parse::<usize>()
        .ok()
        .and_then(|i| days.get(i).copied())
        .ok_or_else(|| {
            milvus_tier::Error::Usage(format!(
                "--day-from-array-index: {ARRAY_INDEX_ENV}={raw} is not an index into the {} day(s) of the range",
                days.len()
            ))
        })
}

/// Run the days in order; stop at the first failure.
pub async fn run(config: &Config, args: &MigrateArgs, progress: Progress) -> Result<i32> {
    // A report that cannot be written would fail the run after the day is published, and a
    // retry would only fail again: refuse before any work.
    if let Some(path) = &args.report {
        check_writable("--report", path)?;
    }
    let mut days = args.days.days(config)?;
    if args.day_from_array_index {
        days = vec![array_day(
            &days,
            std::env::var(ARRAY_INDEX_ENV).ok().as_deref(),
        )?];
    }
    let opts = MigrateOptions {
        dry_run: args.dry_run,
        progress,
    };
    let mut reports: Vec<DayReport> = Vec::new();
    for day in days {
        let report = migrate::migrate_day(config, day, &opts).await;
        for st in &report.steps {
            milvus_tier::metrics::note_step(report.day, st);
        }
        if !args.json {
            print_text(&report);
        }
        let failed = matches!(report.outcome, Outcome::Failed | Outcome::NotReady);
        reports.push(report);
        if failed {
            break;
        }
    }
    let json =
        serde_json::to_string_pretty(&super::Days { days: &reports }).expect("report serializes");
    if args.json {
        outln!("{json}");
    }
    if let Some(path) = &args.report {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| milvus_tier::Error::io("write report", path, e))?;
    }
    let code = reports
        .iter()
        .map(|r| r.exit_code)
        .find(|c| *c != exit::OK)
        .unwrap_or(exit::OK);
    if let Some(err) = reports.iter().find_map(|r| r.error.as_ref()) {
        eprintln!("error: {err}");
    }
    Ok(code)
}

/// Whether the file `path` can be written later, checked without writing anything: an
/// existing file must open for writing, a new one needs an existing writable folder.
pub fn check_writable(flag: &str, path: &Path) -> Result<()> {
    let refuse = |reason: String| {
        Err(milvus_tier::Error::Usage(format!(
            "{flag} {}: {reason}",
            path.display()
        )))
    };
    if path.is_dir() {
        return refuse("is a folder, not a file".into());
    }
    if path.exists() {
        return match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(_) => Ok(()),
            Err(e) => refuse(format!("cannot be written: {e}")),
        };
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return refuse(format!("folder {} does not exist", parent.display()));
    }
    let c = std::ffi::CString::new(parent.as_os_str().as_encoded_bytes())
        .map_err(|_| milvus_tier::Error::Usage(format!("{flag} {}: bad path", path.display())))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return refuse(format!(
            "folder {} is not writable: {}",
            parent.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn print_text(r: &DayReport) {
    let outcome = match r.outcome {
        Outcome::Migrated => "migrated",
        Outcome::AlreadyDone => "already in long-term (verified), nothing to do",
        Outcome::Planned => "planned (dry run, nothing written)",
        Outcome::Failed => "FAILED",
        Outcome::NotReady => "NOT READY (the day is still being written; retry later)",
    };
    outln!(
        "day {} → long-term collection `{}`: {outcome}",
        r.day,
        r.collection
    );
    if let Some(p) = &r.plan {
        outln!(
            "  plan: {} partition(s) tagged {}, {} input files, {} rows, {} ({} on disk to stage); long-term: {}",
            p.partitions.len(),
            p.tag,
            p.input_files.len(),
            p.rows,
            super::human(p.bytes),
            super::human(p.stage_bytes),
            match &p.long_term {
                milvus_tier::plan::LongTermState::Empty => "empty",
                milvus_tier::plan::LongTermState::Done { .. } => "already holds this day",
            }
        );
        for part in &p.partitions {
            outln!(
                "    partition {} tag {}: {} files, {} rows, {} → owner `{}`, engine {}, index_file_size {}",
                part.source.table_id,
                part.source.partition_tag,
                part.files,
                part.rows,
                super::human(part.bytes),
                part.target.owner_table,
                part.target.engine_type,
                part.target.index_file_size
            );
        }
        if !p.skipped.is_empty() {
            let s: Vec<String> = p.skipped.iter().map(|(t, n)| format!("{n} {t}")).collect();
            outln!("    not copied: {} (rebuilt or superseded)", s.join(", "));
        }
    }
    for s in &r.steps {
        super::print_step(s, "size");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_child_picks_its_day_by_index() {
        let d = |s: &str| s.parse::<Day>().unwrap();
        let days = Day::range(d("2026-11-20"), d("2026-11-24")).unwrap();
        assert_eq!(array_day(&days, Some("0")).unwrap(), d("2026-11-20"));
        assert_eq!(array_day(&days, Some("4")).unwrap(), d("2026-11-24"));
        let e = array_day(&days, Some("5")).unwrap_err();
        assert_eq!(e.exit_code(), exit::BAD_INPUT);
        assert!(e.to_string().contains("AWS_BATCH_JOB_ARRAY_INDEX=5"), "{e}");
        assert!(
            array_day(&days, None)
                .unwrap_err()
                .to_string()
                .contains("not set")
        );
        assert!(array_day(&days, Some("x")).is_err());
    }
}
