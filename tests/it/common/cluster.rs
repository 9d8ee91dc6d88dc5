//! A whole test cluster: three separate MariaDB servers (short-term, long-term, local engine
//! metadata), storage folders, `milvus-sim` as the local build engine, a config file, and
//! runners for the `milvus-tier` binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use milvus_tier::meta::{FileType, MetaDb};
use serde_json::Value;
use test_support::{MariaDb, PASSWORD, free_port, workspace_bin};

pub const COLL_SHORT: &str = "live";
pub const COLL_LONG: &str = "archive";
pub const DIM: usize = 16;

pub struct Sim {
    pub child: Child,
    pub url: String,
    /// Its stderr log.
    pub log: PathBuf,
}

impl Sim {
    pub fn start(meta: &str, storage: &Path, role: &str, extra: &[&str]) -> Sim {
        let port = free_port();
        let log = storage.with_extension(format!("{port}.log"));
        let child = Command::new(workspace_bin("milvus-sim"))
            .args(["serve", "--meta", meta, "--storage"])
            .arg(storage)
            .args([
                "--port",
                &port.to_string(),
                "--role",
                role,
                "--tick-ms",
                "50",
                "--ttl-secs",
                "1",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("sim log"))
            .spawn()
            .expect("start milvus-sim");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::blocking_get(&format!("{url}/state")).is_err() {
            assert!(Instant::now() < deadline, "milvus-sim did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sim { child, url, log }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod reqwest {
    //! Tiny blocking helpers over the async client (on their own thread, so they can be
    //! called from inside the test's runtime).
    fn block<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .join()
        .unwrap()
    }
    pub fn blocking_get(url: &str) -> Result<String, String> {
        let url = url.to_string();
        block(async move {
            let r = ::reqwest::get(url).await.map_err(|e| e.to_string())?;
            r.text().await.map_err(|e| e.to_string())
        })
    }
    pub fn blocking_post(url: &str, body: &serde_json::Value) -> Result<serde_json::Value, String> {
        let (url, body) = (url.to_string(), body.clone());
        block(async move {
            let r = ::reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let ok = r.status().is_success();
            let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
            if ok { Ok(v) } else { Err(v.to_string()) }
        })
    }
    pub fn blocking_put(url: &str, body: &serde_json::Value) -> Result<serde_json::Value, String> {
        let (url, body) = (url.to_string(), body.clone());
        block(async move {
            let r = ::reqwest::Client::new()
                .put(url)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            r.json().await.map_err(|e| e.to_string())
        })
    }
}

pub fn sim_cmd(args: &[&str]) -> Output {
    let o = Command::new(workspace_bin("milvus-sim"))
        .args(args)
        .output()
        .expect("run milvus-sim");
    assert!(
        o.status.success(),
        "milvus-sim {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

pub struct Cluster {
    pub servers: Vec<MariaDb>,
    pub dir: tempfile::TempDir,
    pub short_url: String,
    pub long_url: String,
    pub local_url: String,
    pub config: PathBuf,
    pub engine: Option<Sim>,
    /// Extra environment for every `milvus-tier` run (e.g. AWS credentials).
    pub env: Vec<(String, String)>,
}

impl Cluster {
    pub fn storage(&self, tier: &str) -> PathBuf {
        self.dir.path().join(tier)
    }

    /// `milvus-tier migrate ARGS --json`: the output and the parsed JSON (Null if none).
    pub fn migrate(&self, args: &[&str]) -> (Output, Value) {
        self.run("migrate", args, &[])
    }

    /// A `milvus-tier` command with the cluster's config, passwords in the environment, the
    /// extra environment `env`, and `--json` appended.
    pub fn run(&self, command: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, Value) {
        let mut cmd = self.command(command);
        cmd.args(args).arg("--json");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().expect("run milvus-tier");
        let json = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        (o, json)
    }

    /// The `milvus-tier COMMAND` process, configured but not started.
    pub fn command(&self, command: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
        cmd.arg("--config").arg(&self.config).arg(command);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
            cmd.env_remove(k);
        }
        for s in ["SHORT_TERM", "LONG_TERM", "ENGINE"] {
            cmd.env(format!("MILVUS_TIER_{s}__META_PASSWORD"), PASSWORD);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Replace the config's `[backup]` section (kept last in the file) with `toml`.
    pub fn set_backup(&self, toml: &str) {
        let s = std::fs::read_to_string(&self.config).unwrap();
        let head = s
            .split("\n[backup]\n")
            .next()
            .unwrap()
            .trim_end()
            .to_string();
        std::fs::write(&self.config, format!("{head}\n\n[backup]\n{toml}\n")).unwrap();
    }

    /// The engine's `http_url` and `meta_url` as written in the config file.
    pub fn engine_url_in_config(&self) -> (String, String) {
        let s = std::fs::read_to_string(&self.config).unwrap();
        let engine = s.split("[engine]").nth(1).unwrap();
        let value = |key: &str| {
            engine
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
                .and_then(|v| v.strip_suffix('"'))
                .unwrap()
                .to_string()
        };
        (value("http_url"), value("meta_url"))
    }

    /// Append TOML to the config file (e.g. a `[backup]` section).
    pub fn append_config(&self, toml: &str) {
        let mut s = std::fs::read_to_string(&self.config).unwrap();
        s.push_str(toml);
        std::fs::write(&self.config, s).unwrap();
    }
}

pub fn strip_password(url: &str) -> String {
    url.replace(&format!(":{PASSWORD}@"), "@")
}

/// Seed two days in short-term (6000 rows each in 2000-row segments), an empty IVF_PQ
/// long-term collection, and start the local engine.
pub fn cluster() -> Cluster {
    cluster_days(2)
}

/// [`cluster`] with `days` seeded days from 2026-11-20.
pub fn cluster_days(days: u32) -> Cluster {
    cluster_full(days, &[], "L2", "IVF_PQ", r#"{"m":4,"nlist":16}"#)
}

/// [`cluster_days`] with extra `milvus-sim serve` arguments for the local engine.
pub fn cluster_with(days: u32, engine_args: &[&str]) -> Cluster {
    cluster_full(days, engine_args, "L2", "IVF_PQ", r#"{"m":4,"nlist":16}"#)
}

/// [`cluster_days`] with the collections' `metric` and the long-term index.
pub fn cluster_metric(days: u32, metric: &str, long_index: &str, long_params: &str) -> Cluster {
    cluster_full(days, &[], metric, long_index, long_params)
}

/// The cluster of [`cluster_days`], every knob given.
pub fn cluster_full(
    days: u32,
    engine_args: &[&str],
    metric: &str,
    long_index: &str,
    long_params: &str,
) -> Cluster {
    super::init();
    let servers = vec![MariaDb::start(), MariaDb::start(), MariaDb::start()];
    let (short_url, long_url, local_url) = (
        servers[0].database("milvus"),
        servers[1].database("milvus"),
        servers[2].database("milvus"),
    );
    let dir = tempfile::tempdir().unwrap();
    for t in ["short", "long", "local"] {
        std::fs::create_dir_all(dir.path().join(t)).unwrap();
    }
    let short_storage = dir.path().join("short");
    sim_cmd(&[
        "seed",
        "--meta",
        &short_url,
        "--storage",
        short_storage.to_str().unwrap(),
        "--collection",
        COLL_SHORT,
        "--days",
        &days.to_string(),
        "--first-day",
        "2026-11-20",
        "--rows-per-day",
        "6000",
        "--segment-rows",
        "2000",
        "--dim",
        &DIM.to_string(),
        "--tag-format",
        "day_%Y-%m-%d",
        "--index-file-size",
        "1",
        "--metric",
        metric,
    ]);
    let long_storage = dir.path().join("long");
    sim_cmd(&[
        "seed-long-term",
        "--meta",
        &long_url,
        "--storage",
        long_storage.to_str().unwrap(),
        "--collection",
        COLL_LONG,
        "--dim",
        &DIM.to_string(),
        "--index-file-size",
        "4096",
        "--index-type",
        long_index,
        "--params",
        long_params,
        "--metric",
        metric,
    ]);
    let engine = Sim::start(
        &local_url,
        &dir.path().join("local"),
        "rw",
        &[&["--build-index-threshold", "4096"], engine_args].concat(),
    );
    let config = dir.path().join("milvus-tier.toml");
    std::fs::write(
        &config,
        format!(
            r#"timezone = "UTC"
[short_term]
meta_url = "{}"
storage_path = "{}"
collection = "{COLL_SHORT}"
partition_tag_format = "day_%Y-%m-%d"
[long_term]
meta_url = "{}"
storage_path = "{}"
collection = "{COLL_LONG}"
[engine]
http_url = "{}"
meta_url = "{}"
storage_path = "{}"
[limits]
connect_timeout_secs = 3
merge_timeout_secs = 60
index_timeout_secs = 60
no_progress_timeout_secs = 20
"#,
            strip_password(&short_url),
            short_storage.display(),
            strip_password(&long_url),
            long_storage.display(),
            engine.url,
            strip_password(&local_url),
            dir.path().join("local").display()
        ),
    )
    .unwrap();
    Cluster {
        servers,
        dir,
        short_url,
        long_url,
        local_url,
        config,
        engine: Some(engine),
        env: Vec::new(),
    }
}

pub fn blake3_file(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

/// Long-term content of the day in a form independent of generated ids: partition rows, and
/// per file (partition, type, rows, size, and each file's BLAKE3 by kind).
pub async fn canonical(c: &Cluster) -> Vec<String> {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let mut out = Vec::new();
    for p in long.partitions(COLL_LONG).await.unwrap() {
        let tag = p.partition_tag.clone();
        out.push(format!(
            "{:?}",
            milvus_tier::meta::TableRow {
                id: 0,
                table_id: tag.clone(),
                created_on: 0,
                ..p.clone()
            }
        ));
        for f in long
            .files(std::slice::from_ref(&p.table_id), &[])
            .await
            .unwrap()
        {
            let seg = c
                .storage("long")
                .join("db/tables")
                .join(&f.table_id)
                .join(&f.segment_id);
            let mut hashes = Vec::new();
            for e in std::fs::read_dir(&seg).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                let kind = name.strip_prefix(&f.file_id).unwrap_or(&name).to_string();
                let kind = if kind.is_empty() {
                    "index".to_string()
                } else {
                    kind
                };
                let raw_kind =
                    [".rv", ".uid", "bloom_filter", "deleted_docs"].contains(&kind.as_str());
                if (f.file_type == FileType::Index) != (kind == "index")
                    || (f.file_type != FileType::Index && !raw_kind)
                {
                    continue;
                }
                hashes.push(format!("{kind}={}", blake3_file(&seg.join(&name))));
            }
            hashes.sort();
            out.push(format!(
                "{tag} {} rows={} size={} {}",
                f.file_type,
                f.row_count,
                f.file_size,
                hashes.join(",")
            ));
        }
    }
    out.sort();
    // No folder is left that no row references, and no temporary folder.
    for t in std::fs::read_dir(c.storage("long").join("db/tables")).unwrap() {
        let t = t.unwrap();
        for s in std::fs::read_dir(t.path()).unwrap() {
            let seg = s.unwrap().file_name().to_string_lossy().into_owned();
            let tid = t.file_name().to_string_lossy().into_owned();
            let rows = long.files(std::slice::from_ref(&tid), &[]).await.unwrap();
            assert!(
                rows.iter().any(|f| f.segment_id == seg),
                "orphan folder {tid}/{seg} in long-term storage"
            );
        }
    }
    out
}

/// stderr and stdout (the JSON report holds the day's error) as one text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// Long-term holds the collection row only, no file rows, and no segment folder.
pub async fn assert_long_term_untouched(c: &Cluster, case: &str) {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    assert!(
        long.partitions(COLL_LONG).await.unwrap().is_empty(),
        "{case}: long-term got partition rows"
    );
    assert_eq!(
        c.servers[1]
            .sql("SELECT COUNT(*) FROM milvus.TableFiles")
            .trim(),
        "0",
        "{case}: long-term got file rows"
    );
    // The collection's own folder may exist; no segment folder may.
    let tables = c.storage("long").join("db/tables");
    let segments: Vec<_> = std::fs::read_dir(&tables)
        .into_iter()
        .flatten()
        .flat_map(|t| std::fs::read_dir(t.unwrap().path()).into_iter().flatten())
        .map(|s| s.unwrap().path())
        .collect();
    assert!(
        segments.is_empty(),
        "{case}: long-term storage got {segments:?}"
    );
}
