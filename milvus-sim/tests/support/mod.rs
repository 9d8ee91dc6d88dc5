//! Shared helpers of the simulator's integration tests: start `milvus-sim` as a child
//! process on a free port (killed on drop), run its `seed` command, talk JSON over HTTP.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use milvus_tier::meta::{FileRow, FileType, MetaDb};
use serde_json::Value;

/// A running `milvus-sim serve`.
pub struct Sim {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its stderr log file.
    pub log: PathBuf,
}

/// Start `milvus-sim serve --meta <meta> --storage <storage> <extra…>` and wait for `/state`.
pub async fn start(meta: &str, storage: &Path, extra: &[&str]) -> Sim {
    let port = test_support::free_port();
    let log = storage.with_extension(format!("{port}.log"));
    let child = Command::new(test_support::workspace_bin("milvus-sim"))
        .arg("serve")
        .args(["--meta", meta])
        .arg("--storage")
        .arg(storage)
        .args(["--port", &port.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn milvus-sim");
    let sim = Sim {
        child: Some(child),
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if reqwest::get(format!("{}/state", sim.base)).await.is_ok() {
            return sim;
        }
        assert!(
            Instant::now() < deadline,
            "milvus-sim did not start: {}",
            sim.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Sim {
    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send `method path` with an optional raw body; returns (status, JSON or Null).
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client.request(m, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    /// Like [`Sim::call`] but asserts a 2xx status.
    pub async fn ok(&self, method: &str, path: &str, body: &str) -> Value {
        let (s, v) = self.call(method, path, Some(body)).await;
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }

    /// The node's resident set size in KiB, read from `/proc/<pid>/status` (Linux).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }

    /// Wait for the process to exit (up to `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run `milvus-sim seed` with `args` and return its stdout; panics on failure.
pub fn seed(meta: &str, storage: &Path, args: &[&str]) -> String {
    let out = Command::new(test_support::workspace_bin("milvus-sim"))
        .arg("seed")
        .args(["--meta", meta])
        .arg("--storage")
        .arg(storage)
        .args(args)
        .output()
        .expect("run milvus-sim seed");
    assert!(
        out.status.success(),
        "seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// All files of a collection and its partitions.
pub async fn files_of(db: &MetaDb, collection: &str) -> Vec<FileRow> {
    let mut ids = vec![collection.to_string()];
    ids.extend(
        db.partitions(collection)
            .await
            .expect("partitions")
            .into_iter()
            .map(|p| p.table_id),
    );
    db.files(&ids, &[]).await.expect("files")
}

/// Poll `check` every 100 ms until it returns true or `limit` passes.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Count files by type.
pub fn count(files: &[FileRow], t: FileType) -> usize {
    files.iter().filter(|f| f.file_type == t).count()
}
