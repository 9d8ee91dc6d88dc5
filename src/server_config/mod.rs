//! A Milvus 1.1.1 `server_config.yaml`, checked offline against the rules the engine applies
//! when it loads one, plus what each milvus-tier role needs of it.
//!
//! `milvus_server` reads the file (`Config::LoadConfigFile`), then `Server::LoadConfig`
//! calls `Config::ValidateConfig`; any refused value prints "Config check fail: …" and the
//! server exits 1 (`core/src/server/Server.cpp`, `Server::LoadConfig`). A key that is absent
//! takes its default (`Config::GetConfigStr`), and every default passes. Line numbers below
//! are `core/src/config/Config.cpp` (or the file named) at the image's commit `330cc61be`.
//! Two checks depend on the host and are left to the engine: `cache.cache_size` and
//! `cache.insert_buffer_size` against the machine's memory, and `engine_config.omp_thread_num`
//! against its cores.

mod role;
mod schema;
mod values;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;

pub use schema::CONFIG_VERSION;
pub use values::{MAX_LOG_FILE_SIZE_MAX, MAX_LOG_FILE_SIZE_MIN, parse_bytes};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The engine refuses the file, or starts in a mode the role cannot work with.
    Fail,
    /// The engine starts, but the setting breaks milvus-tier's use of the node later.
    Warn,
}

/// One thing wrong with a server config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Fail or warn.
    pub level: Level,
    /// The key at fault, `section.key` (or `(file)` for the document as a whole).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// Where the engine applies the rule (Milvus source file and function).
    pub rule: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.key, self.message, self.rule)
    }
}

/// A parsed server config: every scalar as the string the engine reads
/// (`ConfigNode::GetValue`), keyed `section.key`.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    values: BTreeMap<String, String>,
    findings: Vec<Finding>,
}

impl ServerConfig {
    /// The value of `section.key` as the engine reads it, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// What the engine does with this file at load: every refused value (none when it starts).
    pub fn engine_findings(&self) -> &[Finding] {
        &self.findings
    }

    fn fail(&mut self, key: &str, message: String, rule: &'static str) {
        self.findings.push(Finding {
            level: Level::Fail,
            key: key.into(),
            message,
            rule,
        });
    }

    fn warn(&mut self, key: &str, message: String, rule: &'static str) {
        self.findings.push(Finding {
            level: Level::Warn,
            key: key.into(),
            message,
            rule,
        });
    }
}
