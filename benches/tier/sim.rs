//! The milvus-sim processes and the configs around them: seeding a day, the engine (`milvus-sim serve`), a fresh long-term tier, milvus-tier configs and commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{free_port, workspace_bin};

use crate::measure::{rm, sh};
use crate::{DAY, DIM, MIB};

pub(crate) fn seed(meta: &str, storage: &Path, size_mb: u64, segment_mb: u64) {
    rm(storage);
    std::fs::create_dir_all(storage).expect("mkdir");
    let row_bytes = DIM * 4 + 8;
    let rows = size_mb * MIB / row_bytes;
    let seg_rows = (segment_mb * MIB / row_bytes).max(1);
    sh(Command::new(workspace_bin("milvus-sim"))
        .args(["seed", "--meta", meta, "--storage"])
        .arg(storage)
        .args(["--collection", "live", "--days", "1", "--first-day", DAY])
        .args(["--rows-per-day", &rows.to_string()])
        .args(["--segment-rows", &seg_rows.to_string()])
        .args(["--dim", &DIM.to_string(), "--index-file-size", "256"])
        .env("MILVUS_SIM_LOG", "warn"));
}

pub(crate) fn sqlite(dir: &Path, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(name).display())
}

/// A started `milvus-sim serve`, killed on drop; its log goes to a file.
pub(crate) struct Engine {
    pub(crate) child: std::process::Child,
    pub(crate) url: String,
}

impl Engine {
    pub(crate) fn start(meta: &str, storage: &Path, log: PathBuf, extra: &[&str]) -> Engine {
        let port = free_port();
        let child = Command::new(workspace_bin("milvus-sim"))
            .args(["serve", "--meta", meta, "--storage"])
            .arg(storage)
            .args(["--port", &port.to_string(), "--tick-ms", "20"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("milvus-sim");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "engine did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Engine { child, url }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn write_config(path: &Path, body: &str) {
    std::fs::write(path, body).expect("config");
}

/// Write a milvus-tier config to `cfg`: short-term collection `live`, long-term `archive`,
/// the engine at `engine_url`. `tiers` holds the metadata URL and storage path of
/// short-term, long-term and the engine, in that order; `extra` is appended.
pub(crate) fn write_tier_config(
    cfg: &Path,
    tiers: [(&str, &Path); 3],
    engine_url: &str,
    extra: &str,
) {
    let [(short_meta, short), (long_meta, long), (local_meta, local)] = tiers;
    write_config(
        cfg,
        &format!(
            r#"timezone = "UTC"
[short_term]
meta_url = "{short_meta}"
storage_path = "{}"
collection = "live"
partition_tag_format = "day_%Y-%m-%d"
[long_term]
meta_url = "{long_meta}"
storage_path = "{}"
collection = "archive"
[engine]
http_url = "{engine_url}"
meta_url = "{local_meta}"
storage_path = "{}"
{extra}"#,
            short.display(),
            long.display(),
            local.display(),
        ),
    );
}

/// The config of the migrate and backup runs, in `w`.
pub(crate) fn tier_config(
    w: &Path,
    short_meta: &str,
    short: &Path,
    engine: &Engine,
    extra: &str,
) -> PathBuf {
    let cfg = w.join("milvus-tier.toml");
    write_tier_config(
        &cfg,
        [
            (short_meta, short),
            (&sqlite(w, "long.sqlite"), &w.join("long")),
            (&sqlite(w, "local.sqlite"), &w.join("local")),
        ],
        &engine.url,
        &format!("[limits]\nmerge_timeout_secs = 3600\nindex_timeout_secs = 3600\n{extra}"),
    );
    cfg
}

pub(crate) fn fresh_long_term(w: &Path) {
    for p in ["long.sqlite", "local.sqlite"] {
        let _ = std::fs::remove_file(w.join(p));
    }
    rm(&w.join("long"));
    rm(&w.join("local"));
    std::fs::create_dir_all(w.join("local")).expect("mkdir");
    sh(Command::new(workspace_bin("milvus-sim"))
        .args([
            "seed-long-term",
            "--meta",
            &sqlite(w, "long.sqlite"),
            "--storage",
        ])
        .arg(w.join("long"))
        .args(["--collection", "archive", "--dim", &DIM.to_string()])
        .args(["--index-file-size", "4096", "--index-type", "IVF_PQ"])
        .args(["--params", r#"{"m":16,"nlist":1024}"#])
        .env("MILVUS_SIM_LOG", "warn"));
}

pub(crate) fn migrate_cmd(cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(workspace_bin("milvus-tier"));
    c.arg("--config").arg(cfg).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
        c.env_remove(k);
    }
    c
}
