//! A token bucket shared by every copy of one call, capping the bytes read per second.
//!
//! Readers take tokens after each read; the bucket may go into debt, and the reader that
//! pushed it into debt sleeps until the debt is paid at the configured rate. The bucket
//! starts empty and keeps at most [`BURST`] worth of tokens while idle, so over any
//! window of `t` seconds at most `rate * (t + BURST)` bytes (plus one chunk per reader)
//! are read.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle time whose tokens the bucket may store.
const BURST: Duration = Duration::from_millis(100);

/// Smallest read while capped; larger reads make coarser but cheaper accounting.
const MIN_CHUNK: usize = 64 * 1024;

/// Shared token bucket.
#[derive(Debug)]
pub(crate) struct Throttle {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl Throttle {
    /// A bucket refilled with `bytes_per_s` tokens per second (at least 1).
    pub(crate) fn new(bytes_per_s: u64) -> Self {
        let rate = bytes_per_s.max(1) as f64;
        Throttle {
            rate,
            burst: rate * BURST.as_secs_f64(),
            state: Mutex::new(State {
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    /// How many bytes to read at a time with a buffer of `buf_len`: about 1/16 s worth,
    /// so the flow stays smooth, within `[MIN_CHUNK, buf_len]`.
    pub(crate) fn chunk_len(&self, buf_len: usize) -> usize {
        ((self.rate / 16.0) as usize).clamp(MIN_CHUNK.min(buf_len), buf_len)
    }

    /// Account for `n` bytes just read; sleeps (blocking the thread) while in debt.
    pub(crate) fn take(&self, n: u64) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(s.last).as_secs_f64() * self.rate;
            s.tokens = (s.tokens + refill).min(self.burst) - n as f64;
            s.last = now;
            if s.tokens < 0.0 {
                Duration::from_secs_f64(-s.tokens / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn shared_between_threads_caps_the_total() {
        // 4 threads x 512 KiB at 2 MiB/s total: 1 s.
        let t = Arc::new(Throttle::new(2 * 1024 * 1024));
        let start = Instant::now();
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
        let secs = start.elapsed().as_secs_f64();
        assert!((0.9..=1.1).contains(&secs), "took {secs} s");
    }

    #[test]
    fn chunk_len_is_bounded() {
        assert_eq!(Throttle::new(1).chunk_len(1 << 20), MIN_CHUNK);
        assert_eq!(Throttle::new(u64::MAX).chunk_len(1 << 20), 1 << 20);
        assert_eq!(Throttle::new(16 << 20).chunk_len(4 << 20), 1 << 20);
        assert_eq!(Throttle::new(1).chunk_len(1024), 1024);
    }
}
