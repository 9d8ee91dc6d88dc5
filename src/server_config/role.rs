//! The role checks: what a short-term, long-term or local engine node needs of its config
//! (writable or read-only mode, WAL off where rows are copied in).

use super::{Finding, Level, ServerConfig};
use crate::config::Tier;

impl ServerConfig {
    /// Everything wrong for a node of `tier`: what the engine refuses, then what the role
    /// needs (writable or read-only mode, WAL off where rows are copied in).
    pub fn check_for(&self, tier: Tier) -> Vec<Finding> {
        let mut out = self.findings.clone();
        let enable = self.bool_or("cluster.enable", true);
        let role = self.get("cluster.role").unwrap_or("rw");
        // DBWrapper::StartService (core/src/server/DBWrapper.cpp:85-99): cluster off is SINGLE
        // (writable); on, `ro` is CLUSTER_READONLY. DBImpl::Start (DBImpl.cpp:153-188) runs
        // merge, index build and TTL cleanup only when the mode is not CLUSTER_READONLY.
        let read_only = enable && role == "ro";
        let mode_rule = "DBWrapper::StartService (DBWrapper.cpp:85-99), DBImpl::Start";
        match tier {
            Tier::LongTerm if !read_only => out.push(Finding {
                level: Level::Fail,
                key: "cluster".into(),
                message: format!(
                    "a long-term node must be read-only (cluster.enable: true, cluster.role: ro); \
                     cluster.enable {enable} / role {role} runs merges, index builds and TTL cleanup \
                     on the published days"
                ),
                rule: mode_rule,
            }),
            Tier::ShortTerm | Tier::Local if read_only => out.push(Finding {
                level: Level::Fail,
                key: "cluster.role".into(),
                message: format!(
                    "a {tier} node must be writable (cluster.enable: false, or cluster.role: rw); \
                     role ro never flushes, merges or builds an index"
                ),
                rule: mode_rule,
            }),
            _ => {}
        }
        // CONFIG_WAL_ENABLE_DEFAULT is "true" (Config.cpp:185): WAL is on unless turned off.
        if matches!(tier, Tier::LongTerm | Tier::Local) && self.bool_or("wal.enable", true) {
            out.push(Finding {
                level: Level::Warn,
                key: "wal.enable".into(),
                message: format!(
                    "WAL is on, but a {tier} node receives copied partition rows: \
                     DBImpl::Flush -> WalManager::Flush returns lsn 0 for tables the WAL does not \
                     track (the flush that should start the merge merges nothing), and the foreign \
                     flush_lsn values make the next start fail with \"Wal init error!\"; \
                     set wal.enable: false"
                ),
                rule: "DBImpl::Flush (DBImpl.cpp:929) -> WalManager::Flush (db/wal/WalManager.cpp:448); WalManager::Init (WalManager.cpp:54) -> DBImpl::Start (DBImpl.cpp:136)",
            });
        }
        out
    }

    /// `ValidationUtil::ValidateStringIsBool` (ValidationUtil.cpp:608), defaulting when absent.
    fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            Some("true" | "on" | "yes" | "1") => true,
            Some("false" | "off" | "no" | "0" | "") => false,
            _ => default,
        }
    }
}
