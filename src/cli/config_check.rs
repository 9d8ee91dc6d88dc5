//! `milvus-tier config check`.

use std::path::Path;

use crate::check;
use crate::config::Config;
use crate::error::{Result, exit};

/// Print the effective configuration, then one line per check.
pub async fn run(path: &Path, config: &Config) -> Result<i32> {
    println!(
        "# effective configuration ({} + MILVUS_TIER_* environment), secrets masked",
        path.display()
    );
    print!("{}", config.redacted_toml());
    println!();
    let checks = check::run(config).await;
    for c in &checks {
        println!(
            "{:<4} {}: {}",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    println!("{} checks, {} failed", checks.len(), failed);
    Ok(if failed == 0 {
        exit::OK
    } else {
        super::CHECKS_FAILED
    })
}
