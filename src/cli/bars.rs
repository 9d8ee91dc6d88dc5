//! Progress bars on standard error (indicatif) for a person at a terminal: the binary's
//! view of the library's [`Progress`](milvus_tier::progress::Progress).

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use milvus_tier::progress::{ByteBar, ProgressView, StatusLine};

/// Bars and spinners drawn together on standard error.
pub struct Bars(MultiProgress);

impl Bars {
    /// Bars on standard error.
    pub fn stderr() -> Self {
        Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
    }
}

impl ProgressView for Bars {
    fn bytes(&self, step: &'static str, total: u64) -> Box<dyn ByteBar> {
        let bar = self.0.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(step);
        Box::new(Bar(bar))
    }

    fn status(&self, step: &'static str) -> Box<dyn StatusLine> {
        let bar = self.0.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} {spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(step);
        bar.enable_steady_tick(Duration::from_millis(200));
        Box::new(Bar(bar))
    }
}

/// One indicatif bar or spinner.
struct Bar(ProgressBar);

impl ByteBar for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl StatusLine for Bar {
    fn set(&self, msg: String) {
        self.0.set_message(msg);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
