//! Progress of a run: a view drawn for a person (bars, supplied by the binary), a log line
//! every few seconds elsewhere (structured, via `tracing`), nothing when hidden.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::segments::ProgressFn;

/// How often a meter logs when not drawing a view.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Draws progress for a person at a terminal; the binary implements it (bars on stderr).
pub trait ProgressView: Send + Sync {
    /// A byte bar for `step` with `total` bytes to go.
    fn bytes(&self, step: &'static str, total: u64) -> Box<dyn ByteBar>;
    /// A status line for `step`.
    fn status(&self, step: &'static str) -> Box<dyn StatusLine>;
}

/// One drawn byte bar.
pub trait ByteBar: Send + Sync {
    /// `n` more bytes done.
    fn inc(&self, n: u64);
    /// Stop drawing it.
    fn finish(&self);
}

/// One drawn status line.
pub trait StatusLine: Send + Sync {
    /// Show `msg`.
    fn set(&self, msg: String);
    /// Stop drawing it.
    fn finish(&self);
}

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
    /// Drawn by a view.
    View(Arc<dyn ProgressView>),
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.mode {
            Mode::Hidden => "Progress::Hidden",
            Mode::Log => "Progress::Log",
            Mode::View(_) => "Progress::View",
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

    /// Progress drawn by `view` (for a person at a terminal).
    pub fn view(view: Arc<dyn ProgressView>) -> Self {
        Progress {
            mode: Mode::View(view),
        }
    }

    /// A byte meter for `step` with `total` bytes to go.
    pub fn bytes(&self, step: &'static str, total: u64) -> Arc<Meter> {
        let bar = match &self.mode {
            Mode::View(v) => Some(v.bytes(step, total)),
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
        let line = match &self.mode {
            Mode::View(v) => Some(v.status(step)),
            _ => None,
        };
        Status { line }
    }
}

/// Counts bytes of one step.
pub struct Meter {
    step: &'static str,
    total: u64,
    done: AtomicU64,
    log: bool,
    last_log: Mutex<Instant>,
    bar: Option<Box<dyn ByteBar>>,
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
            bar.finish();
        }
    }
}

/// A status line of one step.
pub struct Status {
    line: Option<Box<dyn StatusLine>>,
}

impl Status {
    /// Show `msg`.
    pub fn set(&self, msg: String) {
        if let Some(line) = &self.line {
            line.set(msg);
        }
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        if let Some(line) = &self.line {
            line.finish();
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

    /// Records what a view is asked to draw.
    #[derive(Default)]
    struct Recording(Arc<Mutex<Vec<String>>>);

    impl ProgressView for Recording {
        fn bytes(&self, step: &'static str, total: u64) -> Box<dyn ByteBar> {
            self.0.lock().unwrap().push(format!("bar {step} {total}"));
            Box::new(Recording(Arc::clone(&self.0)))
        }
        fn status(&self, step: &'static str) -> Box<dyn StatusLine> {
            self.0.lock().unwrap().push(format!("status {step}"));
            Box::new(Recording(Arc::clone(&self.0)))
        }
    }

    impl ByteBar for Recording {
        fn inc(&self, n: u64) {
            self.0.lock().unwrap().push(format!("inc {n}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    impl StatusLine for Recording {
        fn set(&self, msg: String) {
            self.0.lock().unwrap().push(format!("set {msg}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("done".into());
        }
    }

    #[test]
    fn a_view_sees_every_increment_and_status() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let p = Progress::view(Arc::new(Recording(Arc::clone(&seen))));
        let m = p.bytes("publish", 10);
        m.callback()(4);
        m.inc(6);
        assert_eq!(m.done(), 10);
        m.finish();
        {
            let s = p.status("build");
            s.set("1 NEW_INDEX".into());
        }
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "bar publish 10",
                "inc 4",
                "inc 6",
                "finish",
                "status build",
                "set 1 NEW_INDEX",
                "done"
            ]
        );
    }
}
