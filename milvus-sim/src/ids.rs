//! Clocks and ids as Milvus 1.1.1 makes them, plus a small deterministic PRNG.
//!
//! `file_id` and partition `table_id` values follow Milvus's `SafeIDGenerator`:
//! microseconds since the epoch times 1000, bumped by one microsecond when the clock has
//! not moved, so ids from one process are strictly increasing.

use std::sync::Mutex;

use chrono::Local;
use milvus_tier::meta::MilvusDate;

/// Ids one microsecond can hold (`MAX_IDS_PER_MICRO`).
const IDS_PER_MICRO: i64 = 1000;

static LAST_MICROS: Mutex<i64> = Mutex::new(0);

/// Microseconds since the epoch (`GetMicroSecTimeStamp`).
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Today's `date` column value (`GetDate`, local time).
pub fn today() -> MilvusDate {
    MilvusDate::from_day(Local::now().date_naive())
}

/// Reserve `n` consecutive time-based ids (at least one); returns the first.
fn reserve(n: i64) -> i64 {
    let now = now_micros();
    let mut last = LAST_MICROS.lock().unwrap_or_else(|p| p.into_inner());
    let start = if now > *last { now } else { *last + 1 };
    *last = start + (n.max(1) - 1) / IDS_PER_MICRO;
    start * IDS_PER_MICRO
}

/// A new `file_id` or partition `table_id`, as a numeric string.
pub fn next_id() -> String {
    reserve(1).to_string()
}

/// `n` new vector ids for an insert without user ids.
pub fn next_vector_ids(n: usize) -> Vec<i64> {
    let first = reserve(n as i64);
    (0..n as i64).map(|i| first + i).collect()
}

/// SplitMix64: a tiny deterministic generator (same seed, same sequence on every platform).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase() {
        let a: i64 = next_id().parse().unwrap();
        let b: i64 = next_id().parse().unwrap();
        assert!(b > a);
        let v = next_vector_ids(2500);
        assert!(v.windows(2).all(|w| w[1] == w[0] + 1));
        let c: i64 = next_id().parse().unwrap();
        assert!(c > *v.last().unwrap());
    }

    #[test]
    fn prng_is_deterministic() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..10 {
            let x = a.next_f32();
            assert_eq!(x, b.next_f32());
            assert!((0.0..1.0).contains(&x));
        }
    }
}
