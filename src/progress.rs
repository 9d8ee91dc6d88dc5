//! Progress of a run: bars on a terminal (indicatif), a log line every few seconds
//! elsewhere (structured, via `tracing`), nothing when hidden.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::segments::ProgressFn;

/// How often a meter logs when not drawing bars.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Where progress goes.
#[derive(Clone, Default)]
pub struct Progress {
    mode: Mode,
}

#[derive(Clone, Default)]
enum Mode {
    /// No progress output (tests, JSON-only runs).
    #[default]
    Hidden,
    /// `tracing` info events, at most one per meter every [`LOG_EVERY`].
    Log,
    /// Bars on standard error.
    Bars(MultiProgress),
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.mode {
            Mode::Hidden => "Progress::Hidden",
            Mode::Log => "Progress::Log",
            Mode::Bars(_) => "Progress::Bars",
        })
    }
}

impl Progress {
    /// No progress output.
    pub fn hidden() -> Self {
        Progress::default()
    }

    /// Periodic log events (for a job whose standard error is collected, e.g. on Batch).
    pub fn log() -> Self {
        Progress { mode: Mode::Log }
    }

    /// Bars drawn on standard error (for a person at a terminal).
    pub fn bars() -> Self {
        Progress {
            mode: Mode::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// A byte meter for `step` with `total` bytes to go.
    pub fn bytes(&self, step: &'static str, total: u64) -> Arc<Meter> {
        let bar = match &self.mode {
            Mode::Bars(m) => {
                let bar = m.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(step);
                Some(bar)
            }
            _ => None,
        };
        Arc::new(Meter {
            step,
            total,
            done: AtomicU64::new(0),
            log: matches!(self.mode, Mode::Log),
            last_log: Mutex::new(Instant::now()),
            bar,
        })
    }

    /// A status line for `step` (e.g. the engine's file states while it builds).
    pub fn status(&self, step: &'static str) -> Status {
        let bar = match &self.mode {
            Mode::Bars(m) => {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>8} {spinner} {elapsed} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(step);
                bar.enable_steady_tick(Duration::from_millis(200));
                Some(bar)
            }
            _ => None,
        };
        Status { bar }
    }
}

/// Counts bytes of one step.
pub struct Meter {
    step: &'static str,
    total: u64,
    done: AtomicU64,
    log: bool,
    last_log: Mutex<Instant>,
    bar: Option<ProgressBar>,
}

impl Meter {
    /// Count `n` more bytes.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if self.log
            && let Ok(mut last) = self.last_log.lock()
            && last.elapsed() >= LOG_EVERY
        {
            *last = Instant::now();
            tracing::info!(
                step = self.step,
                bytes_done = done,
                bytes_total = self.total,
                "progress"
            );
        }
    }

    /// The meter as a copy callback.
    pub fn callback(self: &Arc<Self>) -> ProgressFn {
        let me = Arc::clone(self);
        Arc::new(move |n| me.inc(n))
    }

    /// Bytes counted so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stop drawing.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A status line of one step.
pub struct Status {
    bar: Option<ProgressBar>,
}

impl Status {
    /// Show `msg`.
    pub fn set(&self, msg: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
        }
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_counts_through_its_callback() {
        for p in [Progress::hidden(), Progress::log()] {
            let m = p.bytes("stage", 100);
            let cb = m.callback();
            cb(40);
            cb(60);
            assert_eq!(m.done(), 100);
            m.finish();
        }
    }
}
