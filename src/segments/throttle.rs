//! A token bucket shared by every copy of one call, capping the bytes read per second.
//!
//! Readers take tokens after each read; the bucket may go into debt, and the reader that
//! pushed it into debt sleeps until the debt is paid at the configured rate. The bucket
//! starts empty and keeps at most [`BURST`] worth of tokens while idle, so over any
//! window of `t` seconds at most `rate * (t + BURST)` bytes (plus one chunk per reader)
//! are read.
//!
//! Time comes from a [`Clock`]: the system clock in every build, a simulated one in tests,
//! which then assert on the sleeps the bucket asked for rather than on wall time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle time whose tokens the bucket may store.
const BURST: Duration = Duration::from_millis(100);

/// Smallest read while capped; larger reads make coarser but cheaper accounting.
const MIN_CHUNK: usize = 64 * 1024;

/// Where the bucket reads the time and how it waits.
pub(crate) trait Clock: Send + Sync + std::fmt::Debug {
    /// The time now.
    fn now(&self) -> Instant;
    /// Block the thread until `deadline`.
    fn sleep_until(&self, deadline: Instant);
}

/// The system's monotonic clock; sleeps block the thread.
#[derive(Debug)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) {
        let wait = deadline.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Shared token bucket.
#[derive(Debug)]
pub(crate) struct Throttle {
    rate: f64,
    burst: f64,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl Throttle {
    /// A bucket refilled with `bytes_per_s` tokens per second (at least 1), on the
    /// system clock.
    pub(crate) fn new(bytes_per_s: u64) -> Self {
        Self::with_clock(bytes_per_s, Arc::new(SystemClock))
    }

    /// [`Throttle::new`] on the given clock.
    pub(crate) fn with_clock(bytes_per_s: u64, clock: Arc<dyn Clock>) -> Self {
        let rate = bytes_per_s.max(1) as f64;
        let last = clock.now();
        Throttle {
            rate,
            burst: rate * BURST.as_secs_f64(),
            clock,
            state: Mutex::new(State { tokens: 0.0, last }),
        }
    }

    /// How many bytes to read at a time with a buffer of `buf_len`: about 1/16 s worth,
    /// so the flow stays smooth, within `[MIN_CHUNK, buf_len]`.
    pub(crate) fn chunk_len(&self, buf_len: usize) -> usize {
        ((self.rate / 16.0) as usize).clamp(MIN_CHUNK.min(buf_len), buf_len)
    }

    /// Account for `n` bytes just read; sleeps (blocking the thread) while in debt, until
    /// the moment the debt is paid.
    pub(crate) fn take(&self, n: u64) {
        let deadline = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock.now();
            let refill = now.saturating_duration_since(s.last).as_secs_f64() * self.rate;
            s.tokens = (s.tokens + refill).min(self.burst) - n as f64;
            s.last = now;
            (s.tokens < 0.0).then(|| now + Duration::from_secs_f64(-s.tokens / self.rate))
        };
        if let Some(deadline) = deadline {
            self.clock.sleep_until(deadline);
        }
    }
}

/// A simulated clock for tests: time stands still except when a sleeper's deadline moves
/// it forward (never back), so what the bucket asks for is what the tests see.
#[cfg(test)]
pub(crate) mod sim {
    use super::*;

    /// Simulated time, recording every sleep.
    #[derive(Default)]
    pub(crate) struct SimClock {
        inner: Mutex<Sim>,
        /// Called (outside the lock) with the length of each sleep, once it has passed.
        on_sleep: Option<Box<dyn Fn(Duration) + Send + Sync>>,
    }

    #[derive(Debug)]
    struct Sim {
        start: Instant,
        now: Instant,
        sleeps: Vec<Duration>,
    }

    impl Default for Sim {
        fn default() -> Self {
            let start = Instant::now();
            Sim {
                start,
                now: start,
                sleeps: Vec::new(),
            }
        }
    }

    impl std::fmt::Debug for SimClock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SimClock")
                .field("inner", &self.inner)
                .finish_non_exhaustive()
        }
    }

    impl SimClock {
        /// A clock that calls `hook` with the length of each sleep, as it ends: the
        /// sleeper goes on once the hook returns.
        pub(crate) fn with_hook(hook: impl Fn(Duration) + Send + Sync + 'static) -> Self {
            SimClock {
                on_sleep: Some(Box::new(hook)),
                ..Self::default()
            }
        }

        /// Let `by` pass, as an idle reader would.
        pub(crate) fn advance(&self, by: Duration) {
            self.inner.lock().unwrap().now += by;
        }

        /// Simulated time since the clock was made.
        pub(crate) fn elapsed(&self) -> Duration {
            let s = self.inner.lock().unwrap();
            s.now - s.start
        }

        /// Every sleep asked for, in order (deadline minus the time when asked).
        pub(crate) fn sleeps(&self) -> Vec<Duration> {
            self.inner.lock().unwrap().sleeps.clone()
        }
    }

    impl Clock for SimClock {
        fn now(&self) -> Instant {
            self.inner.lock().unwrap().now
        }

        fn sleep_until(&self, deadline: Instant) {
            let wait = {
                let mut s = self.inner.lock().unwrap();
                let wait = deadline.saturating_duration_since(s.now);
                s.sleeps.push(wait);
                s.now = s.now.max(deadline);
                wait
            };
            if let Some(hook) = &self.on_sleep {
                hook(wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sim::SimClock;
    use super::*;

    #[test]
    fn shared_between_threads_caps_the_total() {
        // 4 threads x 512 KiB at 2 MiB/s total: the last reader may go on after 1 s.
        let clock = Arc::new(SimClock::default());
        let t = Arc::new(Throttle::with_clock(2 * 1024 * 1024, clock.clone()));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for _ in 0..8 {
                        t.take(64 * 1024);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // Every read went into debt (the bucket starts empty and time moves only by
        // sleeps), and the debts add up to exactly the bytes at the rate.
        assert_eq!(clock.sleeps().len(), 32);
        let secs = clock.elapsed().as_secs_f64();
        assert!((secs - 1.0).abs() < 1e-6, "simulated {secs} s");
    }

    #[test]
    fn idle_time_is_credited_up_to_the_burst() {
        let clock = Arc::new(SimClock::default());
        let t = Throttle::with_clock(1024 * 1024, clock.clone());
        // 1 s in debt, paid by the sleep it asks for.
        t.take(1024 * 1024);
        assert_eq!(clock.sleeps(), [Duration::from_secs(1)]);
        // 10 s idle store only BURST (0.1 s) worth of tokens: a read of that size goes
        // through without a sleep, the next one waits for all of itself.
        clock.advance(Duration::from_secs(10));
        t.take(1024 * 1024 / 10);
        assert_eq!(clock.sleeps().len(), 1, "{:?}", clock.sleeps());
        t.take(1024 * 1024 / 10);
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 2, "{sleeps:?}");
        assert!((sleeps[1].as_secs_f64() - 0.1).abs() < 1e-5, "{sleeps:?}");
    }

    #[test]
    fn chunk_len_is_bounded() {
        assert_eq!(Throttle::new(1).chunk_len(1 << 20), MIN_CHUNK);
        assert_eq!(Throttle::new(u64::MAX).chunk_len(1 << 20), 1 << 20);
        assert_eq!(Throttle::new(16 << 20).chunk_len(4 << 20), 1 << 20);
        assert_eq!(Throttle::new(1).chunk_len(1024), 1024);
    }
}
