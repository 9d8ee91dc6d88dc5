//! What a Batch job's end tells Slack: the notice of a finished (or failed) job.

use std::time::Duration;

use super::{JobInfo, JobState};
use crate::day::Day;
use crate::notify::{Level, Notice};

/// `first..last` of a run's days (one day: that day).
pub fn days_label(days: &[Day]) -> String {
    match (days.first(), days.last()) {
        (Some(f), Some(l)) if f != l => format!("{f}..{l}"),
        (Some(f), _) => f.to_string(),
        _ => String::new(),
    }
}

/// The job's run time by Batch's own clock (start to stop), when it has both.
pub fn job_duration(info: &JobInfo) -> Option<Duration> {
    match (info.started_at, info.stopped_at) {
        (Some(a), Some(b)) if b >= a && a > 0 => {
            Some(Duration::from_millis(u64::try_from(b - a).ok()?))
        }
        _ => None,
    }
}

/// The Slack notice of a finished job (rows and bytes are added by the caller when the
/// job's reports are readable).
pub fn notice_for(collection: &str, days: &[Day], info: &JobInfo, duration: Duration) -> Notice {
    let failed = info.state != JobState::Succeeded;
    let mut extra = Vec::new();
    if let Some(s) = &info.log_stream {
        extra.push(("Log stream".to_string(), s.clone()));
    }
    if let Some(c) = info.exit_code {
        extra.push(("Container exit code".to_string(), c.to_string()));
    }
    Notice {
        level: if failed {
            Level::Failure
        } else {
            Level::Success
        },
        what: "migration".into(),
        collection: collection.to_string(),
        days: days_label(days),
        job_id: Some(info.id.clone()),
        status: info.state.to_string(),
        reason: if failed {
            Some(
                info.reason
                    .clone()
                    .unwrap_or_else(|| "no reason given by Batch".into()),
            )
        } else {
            None
        },
        duration: Some(duration),
        rows: None,
        bytes: None,
        extra,
    }
}
