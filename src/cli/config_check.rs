//! `milvus-tier config check`.

use std::path::Path;

use milvus_tier::check;
use milvus_tier::config::{Config, Tier};
use milvus_tier::error::{Result, exit};
use milvus_tier::server_config::{Level, ServerConfig};

/// Print the effective configuration, then one line per check.
pub async fn run(path: &Path, config: &Config) -> Result<i32> {
    outln!(
        "# effective configuration ({} + MILVUS_TIER_* environment), secrets masked",
        path.display()
    );
    out!("{}", config.redacted_toml());
    outln!();
    let checks = check::run(config).await;
    for c in &checks {
        outln!(
            "{:<4} {}: {}",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let mut total = checks.len();
    let mut failed = checks.iter().filter(|c| !c.ok).count();
    let mut warned = 0;
    for (tier, file) in [
        (Tier::ShortTerm, &config.short_term.server_config),
        (Tier::LongTerm, &config.long_term.server_config),
        (Tier::Local, &config.engine.server_config),
    ] {
        let Some(file) = file else { continue };
        total += 1;
        let name = format!("{tier} server config {}", file.display());
        let findings = match ServerConfig::load(file) {
            Ok(sc) => sc.check_for(tier),
            Err(e) => {
                failed += 1;
                outln!("FAIL {name}: {e}");
                continue;
            }
        };
        if findings.is_empty() {
            outln!("ok   {name}: Milvus 1.1.1 accepts it; fits the {tier} role");
        }
        if findings.iter().any(|f| f.level == Level::Fail) {
            failed += 1;
        } else if !findings.is_empty() {
            warned += 1;
        }
        for f in &findings {
            let level = match f.level {
                Level::Fail => "FAIL",
                Level::Warn => "WARN",
            };
            outln!("{level:<4} {name}: {f}");
        }
    }
    outln!("{total} checks, {failed} failed, {warned} with warnings");
    Ok(if failed == 0 {
        exit::OK
    } else {
        super::CHECKS_FAILED
    })
}
