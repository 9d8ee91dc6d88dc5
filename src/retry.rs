//! The one retry policy for calls that may fail for a moment: engine HTTP calls, metadata
//! connects and migrations, ranged S3 downloads whose body breaks off, and Slack posts.
//!
//! Exponential backoff with full jitter and a cap: the wait before retry `n` (1 = the first
//! retry) is uniform in `[0, min(cap, base × 2^(n-1))]`, or the wait the other side asked
//! for (Retry-After) when that is longer. A call is tried at most `max_attempts` times and,
//! when a `max_elapsed` is set, no retry starts whose wait would end past it. Only errors
//! whose [`ErrorKind`] is retryable are tried again (the same flag that decides whether Batch
//! retries an exit code); every other error is returned at once. The error returned is the
//! last attempt's, unchanged: its kind and source stay. Every retry is logged once at warn
//! with the call, the attempt number and the error (errors never carry secrets).
//!
//! The AWS SDK calls (S3 requests, Batch) keep the SDK's own standard retry mode, which has
//! the same shape (exponential backoff with full jitter, capped, only transient and
//! throttling errors, `backup.max_attempts` attempts for S3); this policy is not stacked on
//! it, so a request is never tried `max_attempts²` times.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::error::ErrorKind;

/// An error the policy can judge: its kind decides whether another attempt can help.
pub trait Retryable: std::fmt::Display {
    /// The kind of this failure.
    fn kind(&self) -> ErrorKind;

    /// Whether another attempt can succeed: the kind's retryable flag.
    fn retryable(&self) -> bool {
        self.kind().retryable()
    }

    /// A wait the other side asked for (HTTP Retry-After), if any.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl Retryable for crate::error::Error {
    fn kind(&self) -> ErrorKind {
        crate::error::Error::kind(self)
    }
}

/// How often and how long to try a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Upper bound of the first retry's wait; doubles with every retry.
    pub base: Duration,
    /// No wait is longer than this (a Retry-After aside).
    pub cap: Duration,
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// No retry whose wait would end later than this after the first attempt started.
    pub max_elapsed: Option<Duration>,
}

impl Policy {
    /// A policy of `max_attempts` attempts, waits from `base` doubling up to `cap`.
    pub const fn new(base: Duration, cap: Duration, max_attempts: u32) -> Policy {
        Policy {
            base,
            cap,
            max_attempts,
            max_elapsed: None,
        }
    }

    /// The same policy, stopping retries once `limit` would be passed.
    pub const fn with_max_elapsed(mut self, limit: Duration) -> Policy {
        self.max_elapsed = Some(limit);
        self
    }

    /// The longest wait before retry `retry` (1 = the first): `min(cap, base × 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `retry`: full jitter, uniform in `[0, ceiling(retry)]`.
    pub fn delay(&self, retry: u32, jitter: &mut Jitter) -> Duration {
        jitter.up_to(self.ceiling(retry))
    }

    /// Run `op` (given the attempt number, from 1) until it succeeds, fails with an error
    /// that is not retryable, or the attempts or time are spent; `call` names it in the logs.
    pub async fn run<T, E, F, Fut>(&self, call: &str, op: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let start = tokio::time::Instant::now();
        self.run_with(
            call,
            &mut Jitter::random(),
            || start.elapsed(),
            tokio::time::sleep,
            op,
        )
        .await
    }

    /// [`Policy::run`] with the random source, the clock and the sleep given (for tests).
    pub async fn run_with<T, E, F, Fut, C, S, SFut>(
        &self,
        call: &str,
        jitter: &mut Jitter,
        mut elapsed: C,
        mut sleep: S,
        mut op: F,
    ) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnMut() -> Duration,
        S: FnMut(Duration) -> SFut,
        SFut: Future<Output = ()>,
    {
        let mut attempt = 1;
        loop {
            let e = match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !e.retryable() || attempt >= self.max_attempts {
                return Err(e);
            }
            let mut wait = self.delay(attempt, jitter);
            if let Some(asked) = e.retry_after() {
                wait = wait.max(asked);
            }
            if let Some(limit) = self.max_elapsed
                && elapsed().saturating_add(wait) > limit
            {
                return Err(e);
            }
            tracing::warn!(
                call,
                attempt,
                max_attempts = self.max_attempts,
                wait_ms = wait.as_millis() as u64,
                error = %e,
                "call failed; retrying"
            );
            sleep(wait).await;
            attempt += 1;
        }
    }
}

/// The random source of the jitter: SplitMix64, seeded at random or by a test.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A source with a fixed seed (the same seed gives the same waits).
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed)
    }

    /// A source seeded from the process's random hasher keys.
    pub fn random() -> Jitter {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6a09_e667_f3bc_c908);
        Jitter(h.finish())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration uniform in `[0, max]` (to the nanosecond).
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        let x = self.next_u64();
        Duration::from_nanos(match nanos.checked_add(1) {
            Some(n) => x % n,
            None => x,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::{Arc, Mutex};

    const POLICY: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(1), 5);

    /// What a run did: attempts made and waits slept, on a clock that only the sleeps move.
    #[derive(Default)]
    struct Trace {
        attempts: Vec<u32>,
        waits: Vec<Duration>,
    }

    /// Run `policy` over `outcome` (the attempt number to the attempt's result) with a
    /// seeded jitter and a fake clock; the result and the trace.
    fn run<T>(
        policy: Policy,
        seed: u64,
        mut outcome: impl FnMut(u32) -> Result<T, Error>,
    ) -> (Result<T, Error>, Trace) {
        let trace = Arc::new(Mutex::new(Trace::default()));
        let (t1, t2, t3) = (trace.clone(), trace.clone(), trace.clone());
        let result = futures::executor::block_on(policy.run_with(
            "test call",
            &mut Jitter::seeded(seed),
            move || t1.lock().unwrap().waits.iter().sum(),
            move |d| {
                t2.lock().unwrap().waits.push(d);
                std::future::ready(())
            },
            move |attempt| {
                t3.lock().unwrap().attempts.push(attempt);
                std::future::ready(outcome(attempt))
            },
        ));
        let trace = std::mem::take(&mut *trace.lock().unwrap());
        (result, trace)
    }

    fn io_error(attempt: u32) -> Error {
        Error::io(
            "read",
            format!("/data/attempt-{attempt}"),
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"),
        )
    }

    #[test]
    fn ceilings_double_from_base_up_to_the_cap() {
        let ms: Vec<u128> = (1..=8).map(|r| POLICY.ceiling(r).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        // Far retries neither overflow nor pass the cap.
        assert_eq!(POLICY.ceiling(200), Duration::from_secs(1));
    }

    #[test]
    fn delays_stay_within_the_jitter_bounds_and_spread_over_them() {
        let mut j = Jitter::seeded(7);
        for retry in 1..=10 {
            let ceiling = POLICY.ceiling(retry);
            let delays: Vec<Duration> = (0..200).map(|_| POLICY.delay(retry, &mut j)).collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "retry {retry}");
            // Full jitter: waits fall in the lower and the upper half of the range.
            assert!(delays.iter().any(|d| *d < ceiling / 2), "retry {retry}");
            assert!(delays.iter().any(|d| *d > ceiling / 2), "retry {retry}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_waits() {
        let waits = |seed| {
            let mut j = Jitter::seeded(seed);
            (1..=6).map(|r| POLICY.delay(r, &mut j)).collect::<Vec<_>>()
        };
        assert_eq!(waits(42), waits(42));
        assert_ne!(waits(42), waits(43));
    }

    #[test]
    fn a_retryable_error_is_tried_max_attempts_times_and_the_last_error_returned() {
        let (result, trace) = run(POLICY, 1, |a| Err::<(), _>(io_error(a)));
        assert_eq!(trace.attempts, [1, 2, 3, 4, 5]);
        assert_eq!(trace.waits.len(), 4);
        for (i, w) in trace.waits.iter().enumerate() {
            assert!(*w <= POLICY.ceiling(i as u32 + 1), "wait {i}: {w:?}");
        }
        // The last attempt's error, with its kind and source.
        let err = result.unwrap_err();
        assert!(err.to_string().contains("attempt-5"), "{err}");
        assert_eq!(err.kind(), ErrorKind::Failure);
        let source = std::error::Error::source(&err).expect("source kept");
        assert_eq!(source.to_string(), "reset");

        let once = Policy::new(Duration::from_millis(100), Duration::from_secs(1), 1);
        let (_, trace) = run(once, 1, |a| Err::<(), _>(io_error(a)));
        assert_eq!((trace.attempts.len(), trace.waits.len()), (1, 0));
    }

    #[test]
    fn success_after_failures_stops_the_retries() {
        let (result, trace) = run(POLICY, 2, |a| if a < 3 { Err(io_error(a)) } else { Ok(a) });
        assert_eq!(result.unwrap(), 3);
        assert_eq!((trace.attempts.len(), trace.waits.len()), (3, 2));
    }

    #[test]
    fn an_error_whose_kind_is_not_retryable_is_not_retried() {
        for err in [
            Error::BadInput("bad".into()),
            Error::Conflict("differs".into()),
            Error::LockLost("day".into()),
        ] {
            assert!(!err.kind().retryable());
            let text = err.to_string();
            let mut err = Some(err);
            let (result, trace) = run(POLICY, 3, |_| Err::<(), _>(err.take().unwrap()));
            assert_eq!((trace.attempts.len(), trace.waits.len()), (1, 0), "{text}");
            assert_eq!(result.unwrap_err().to_string(), text);
        }
        // Timeout and NotReady are retryable kinds, like Failure.
        let (_, trace) = run(POLICY, 3, |_| Err::<(), _>(Error::Timeout("slow".into())));
        assert_eq!(trace.attempts.len(), 5);
    }

    #[test]
    fn max_elapsed_stops_a_retry_that_would_end_too_late() {
        // Waits up to 100, 200, 400, 800 ms: at most 1.5 s in all; a limit of 250 ms ends
        // the retries once the next wait would pass it.
        let policy = POLICY.with_max_elapsed(Duration::from_millis(250));
        for seed in 0..50 {
            let (result, trace) = run(policy, seed, |a| Err::<(), _>(io_error(a)));
            assert!(result.is_err());
            let slept: Duration = trace.waits.iter().sum();
            assert!(
                slept <= Duration::from_millis(250),
                "seed {seed}: {slept:?}"
            );
            assert_eq!(trace.attempts.len(), trace.waits.len() + 1);
        }
        // With every wait at its ceiling (a Retry-After as long), 100 + 200 > 250: two
        // attempts only.
        struct Asked;
        impl std::fmt::Display for Asked {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("slow down")
            }
        }
        impl Retryable for Asked {
            fn kind(&self) -> ErrorKind {
                ErrorKind::Failure
            }
            fn retry_after(&self) -> Option<Duration> {
                Some(Duration::from_millis(150))
            }
        }
        let waits = Arc::new(Mutex::new(Vec::new()));
        let w = waits.clone();
        let mut calls = 0;
        let result: Result<(), Asked> = futures::executor::block_on(policy.run_with(
            "asked",
            &mut Jitter::seeded(0),
            || w.lock().unwrap().iter().sum(),
            |d| {
                waits.lock().unwrap().push(d);
                std::future::ready(())
            },
            |_| {
                calls += 1;
                std::future::ready(Err(Asked))
            },
        ));
        assert!(result.is_err());
        assert_eq!(calls, 2);
        // The wait asked for is honoured even above the jittered one.
        assert_eq!(*waits.lock().unwrap(), [Duration::from_millis(150)]);
    }

    #[test]
    fn every_retry_is_logged_once_at_warn_with_attempt_and_error() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let b = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || b.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let (result, _) = run(POLICY, 4, |a| if a < 4 { Err(io_error(a)) } else { Ok(()) });
            result.unwrap();
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for (i, line) in lines.iter().enumerate() {
            let n = i + 1;
            assert!(line.contains("WARN"), "{line}");
            assert!(line.contains("call=\"test call\""), "{line}");
            assert!(line.contains(&format!("attempt={n} ")), "{line}");
            assert!(
                line.contains(&format!("/data/attempt-{n}: reset")),
                "{line}"
            );
        }
    }
}
