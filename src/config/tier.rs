//! Tiers: [`Tier`] (short-term, long-term, the local engine) and [`TierTarget`], what a
//! command needs of one tier (URL with its password, storage, collection, tag format).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::Config;
use super::secret::with_password;
use crate::day::TagFormat;
use crate::error::Result;
use crate::redact;

/// Which cluster a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// The writable short-term cluster.
    ShortTerm,
    /// The read-only long-term cluster.
    LongTerm,
    /// The local build engine.
    Local,
}

impl Tier {
    /// Every tier, in the order commands list them.
    pub const ALL: [Tier; 3] = [Tier::ShortTerm, Tier::LongTerm, Tier::Local];
}

impl std::str::FromStr for Tier {
    type Err = String;

    /// `short-term`, `long-term` or `local`, as [`fmt::Display`] writes them.
    fn from_str(s: &str) -> std::result::Result<Tier, String> {
        Tier::ALL
            .into_iter()
            .find(|t| t.to_string() == s)
            .ok_or_else(|| format!("unknown tier `{s}` (short-term, long-term, local)"))
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::ShortTerm => "short-term",
            Tier::LongTerm => "long-term",
            Tier::Local => "local",
        })
    }
}

/// What a command needs to know of one tier.
#[derive(Debug, Clone)]
pub struct TierTarget {
    /// Which tier.
    pub tier: Tier,
    /// Metadata URL with the password filled in (never print it: use `redacted_url`).
    pub meta_url: String,
    /// Metadata URL with the password masked.
    pub redacted_url: String,
    /// Storage path.
    pub storage_path: PathBuf,
    /// Collection name in this tier.
    pub collection: String,
    /// Partition tag format.
    pub tag_format: TagFormat,
}

impl Config {
    /// Everything a command needs to address `tier`.
    pub fn tier(&self, tier: Tier) -> Result<TierTarget> {
        let short_fmt = self
            .short_term
            .partition_tag_format
            .clone()
            .expect("validated");
        let long_fmt = self
            .long_term
            .partition_tag_format
            .clone()
            .unwrap_or_else(|| short_fmt.clone());
        let (url, pw, pw_file, storage, collection, fmt, section) = match tier {
            Tier::ShortTerm => {
                let c = &self.short_term;
                (
                    &c.meta_url,
                    &c.meta_password,
                    &c.meta_password_file,
                    &c.storage_path,
                    &c.collection,
                    short_fmt,
                    "short_term",
                )
            }
            Tier::LongTerm => {
                let c = &self.long_term;
                (
                    &c.meta_url,
                    &c.meta_password,
                    &c.meta_password_file,
                    &c.storage_path,
                    &c.collection,
                    long_fmt,
                    "long_term",
                )
            }
            Tier::Local => {
                let e = &self.engine;
                (
                    &e.meta_url,
                    &e.meta_password,
                    &e.meta_password_file,
                    &e.storage_path,
                    &self.long_term.collection,
                    long_fmt,
                    "engine",
                )
            }
        };
        let meta_url = with_password(url, pw.as_ref(), pw_file.as_deref(), section)?;
        Ok(TierTarget {
            tier,
            redacted_url: redact::url(&meta_url),
            meta_url,
            storage_path: storage.clone(),
            collection: collection.clone(),
            tag_format: fmt,
        })
    }
}
