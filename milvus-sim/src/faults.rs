//! Injected faults, switchable at start (`--fault`) and at run time (`PUT /admin/faults`).
//!
//! `hang`: index builds never start (TO_INDEX rows stay). `crash`: the process exits with
//! code 3 in the middle of a merge, leaving a NEW_MERGE row and a half-written folder.
//! `http-500:<share>`: that share of requests is answered 500 with Milvus error JSON.
//! `slow:<ms>`: every response is delayed.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::ids::SplitMix64;

/// Exit code of an injected crash.
pub const CRASH_EXIT_CODE: i32 = 3;

/// The engine-level fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineFault {
    /// Work normally.
    #[default]
    None,
    /// Accept create_index but never build.
    Hang,
    /// Exit in the middle of a merge.
    Crash,
}

/// The whole fault setting; also the JSON body of `PUT /admin/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultSettings {
    /// Engine fault.
    pub fault: EngineFault,
    /// Share (0..1) of HTTP requests answered 500.
    pub http_500_share: f64,
    /// Delay added to every HTTP response, milliseconds.
    pub slow_ms: u64,
}

impl FaultSettings {
    /// Parse the `--fault` flag: `none`, `hang`, `crash`, `http-500:<share>`, `slow:<ms>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut f = FaultSettings::default();
        match s.split_once(':') {
            None if s == "none" => {}
            None if s == "hang" => f.fault = EngineFault::Hang,
            None if s == "crash" => f.fault = EngineFault::Crash,
            Some(("http-500", share)) => {
                f.http_500_share = share
                    .parse()
                    .ok()
                    .filter(|x: &f64| (0.0..=1.0).contains(x))
                    .ok_or_else(|| format!("http-500 share `{share}` is not in 0..1"))?;
            }
            Some(("slow", ms)) => {
                f.slow_ms = ms
                    .parse()
                    .map_err(|_| format!("slow delay `{ms}` is not milliseconds"))?;
            }
            _ => {
                return Err(format!(
                    "unknown fault `{s}` (none, hang, crash, http-500:<share>, slow:<ms>)"
                ));
            }
        }
        Ok(f)
    }
}

/// Current faults plus the generator that picks failing requests (deterministic).
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<(FaultSettings, SplitMix64)>,
}

impl Faults {
    /// Start with `settings`.
    pub fn new(settings: FaultSettings) -> Self {
        Faults {
            inner: Mutex::new((settings, SplitMix64::new(500))),
        }
    }

    /// The current settings.
    pub fn get(&self) -> FaultSettings {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Replace the settings.
    pub fn set(&self, s: FaultSettings) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0 = s;
    }

    /// Whether this request should fail with 500.
    pub fn roll_500(&self) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let share = g.0.http_500_share;
        share > 0.0 && (g.1.next_f32() as f64) < share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flag_values() {
        assert_eq!(
            FaultSettings::parse("none").unwrap(),
            FaultSettings::default()
        );
        assert_eq!(
            FaultSettings::parse("hang").unwrap().fault,
            EngineFault::Hang
        );
        assert_eq!(
            FaultSettings::parse("http-500:0.5").unwrap().http_500_share,
            0.5
        );
        assert_eq!(FaultSettings::parse("slow:250").unwrap().slow_ms, 250);
        assert!(FaultSettings::parse("http-500:2").is_err());
        assert!(FaultSettings::parse("boom").is_err());
    }
}
