//! `migrate` against behaviours of the real Milvus 1.1.1 engine that `milvus-sim` follows
//! (docs/milvus-1.1.1-source-notes.md): blocking index builds, the start-up WAL check,
//! create_index over a shared local engine, the compiled-in build threshold and merge.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;
use milvus_tier::meta::{FileType, MetaDb};
use test_support::{free_port, workspace_bin};

fn set_limit(c: &Cluster, key: &str, value: u64) {
    let s = std::fs::read_to_string(&c.config).unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{key} =")))
        .expect("key in config")
        .to_string();
    std::fs::write(&c.config, s.replace(&line, &format!("{key} = {value}"))).unwrap();
}

/// Long-term partitions with their INDEX files.
async fn index_files_per_partition(c: &Cluster) -> Vec<(String, usize)> {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let mut out = Vec::new();
    for p in long.partitions(COLL_LONG).await.unwrap() {
        let files = long
            .files(std::slice::from_ref(&p.table_id), &[FileType::Index])
            .await
            .unwrap();
        out.push((p.partition_tag.clone(), files.len()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_longer_than_the_no_progress_limit_succeeds() {
    // One 6000-row day is 432 000 bytes: at 0.1 MB/s the build takes about 4 s, with no
    // metadata change meanwhile; the no-progress limit is 2 s.
    let c = cluster_with(1, &["--index-mb-per-s", "0.1"]);
    set_limit(&c, "no_progress_timeout_secs", 2);
    let (o, json) = c.migrate(&["--date", "2026-11-20"]);
    let log = c.engine.as_ref().unwrap().log_text();
    assert!(
        o.status.success(),
        "{}\n{json:#}\n{log}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json["days"][0]["outcome"], "migrated");
    assert_eq!(
        index_files_per_partition(&c).await,
        [("day_2026-11-20".to_string(), 1)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_engine_still_ends_in_timeout() {
    let c = cluster_with(1, &["--fault", "hang"]);
    set_limit(&c, "no_progress_timeout_secs", 2);
    let (o, _) = c.migrate(&["--date", "2026-11-20"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("made no progress"), "{err}");
}

/// Start `milvus-sim serve` and wait until it answers or exits; Err(log) when it exits.
fn try_start(meta: &str, storage: &std::path::Path, extra: &[&str]) -> Result<Sim, String> {
    let port = free_port();
    let log = storage.with_extension(format!("{port}.log"));
    let mut child = Command::new(workspace_bin("milvus-sim"))
        .args(["serve", "--meta", meta, "--storage"])
        .arg(storage)
        .args(["--port", &port.to_string(), "--tick-ms", "50"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "exited with {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        if reqwest::blocking_get(&format!("{url}/state")).is_ok() {
            return Ok(Sim { child, url, log });
        }
        assert!(Instant::now() < deadline, "milvus-sim did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn long_term_node_with_wal_starts_after_publish() {
    let c = cluster_days(1);
    // Short-term runs with WAL: its partitions carry lsns of its own WAL.
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    sqlx::query("UPDATE Tables SET flush_lsn = ? WHERE owner_table = ?")
        .bind(4_294_967_360_i64)
        .bind(COLL_SHORT)
        .execute(short.pool())
        .await
        .unwrap();
    let (o, json) = c.migrate(&["--date", "2026-11-20"]);
    assert!(
        o.status.success(),
        "{}\n{json:#}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The next start of a writable long-term node (WAL on, recovery errors not ignored).
    let node = try_start(
        &c.long_url,
        &c.storage("long"),
        &["--role", "rw", "--wal-enable", "true"],
    );
    assert!(node.is_ok(), "{}", node.err().unwrap_or_default());
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let root = long.collection(COLL_LONG).await.unwrap().unwrap();
    for p in long.partitions(COLL_LONG).await.unwrap() {
        assert_eq!(p.flush_lsn, root.flush_lsn, "{}", p.table_id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_day_range_builds_each_day_once() {
    let c = cluster_days(3);
    let (o, json) = c.migrate(&["--from", "2026-11-20", "--to", "2026-11-22"]);
    assert!(
        o.status.success(),
        "{}\n{json:#}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = c.engine.as_ref().unwrap().log_text();
    let builds = log.matches("index build start").count();
    assert_eq!(builds, 3, "one build per day:\n{log}");
    // Merge still reaches one index file per day.
    assert_eq!(
        index_files_per_partition(&c).await,
        [
            ("day_2026-11-20".to_string(), 1),
            ("day_2026-11-21".to_string(), 1),
            ("day_2026-11-22".to_string(), 1)
        ]
    );
}

#[test]
fn an_engine_threshold_other_than_the_compiled_in_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("milvus-tier.toml");
    let base = r#"timezone = "UTC"
[short_term]
meta_url = "sqlite:///nonexistent/short.sqlite"
storage_path = "/nonexistent/short"
collection = "live"
partition_tag_format = "day_%Y-%m-%d"
[long_term]
meta_url = "sqlite:///nonexistent/long.sqlite"
storage_path = "/nonexistent/long"
collection = "archive"
[engine]
http_url = "http://127.0.0.1:1"
meta_url = "sqlite:///nonexistent/local.sqlite"
storage_path = "/nonexistent/local"
build_index_threshold = 5000
"#;
    std::fs::write(&config, base).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_milvus-tier"))
            .arg("--config")
            .arg(&config)
            .args(["migrate", "--date", "2026-11-20", "--dry-run"])
            .output()
            .unwrap()
    };
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("engine.build_index_threshold"), "{err}");
    assert!(err.contains("4096"), "{err}");
    // Accepted when the engine was built with it (the run then fails later, elsewhere).
    std::fs::write(&config, format!("{base}custom_build = true\n")).unwrap();
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("engine.build_index_threshold"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_whose_staging_races_a_ttl_pass_equals_a_clean_run() {
    let clean = cluster_days(1);
    let (o, _) = clean.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = canonical(&clean).await;
    drop(clean);

    // The engine's TTL passes pause 2 s between removing rows and removing folders.
    let c = cluster_with(1, &["--ttl-pause-ms", "2000"]);
    // A first run dies after the build: the merged sources are TO_DELETE in the engine.
    let o = c
        .command("migrate")
        .args(["--date", "2026-11-20", "--json"])
        .env("MILVUS_TIER_FAILPOINT", "build.done")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        None,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Once a TTL pass has removed those rows (and pauses before the folders), the rerun
    // stages the same segments and pauses 4 s after copying them.
    let engine = c.engine.as_ref().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !engine.log_text().contains("ttl delete") {
        assert!(
            Instant::now() < deadline,
            "no TTL pass: {}",
            engine.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (o, json) = c.run(
        "migrate",
        &["--date", "2026-11-20"],
        &[("MILVUS_TIER_FAILPOINT", "stage.after_copy:sleep-4000")],
    );
    assert!(
        o.status.success(),
        "{}\n{json:#}\n{}",
        String::from_utf8_lossy(&o.stderr),
        engine.log_text()
    );
    assert_eq!(json["days"][0]["outcome"], "migrated");
    assert_eq!(
        canonical(&c).await,
        want,
        "rerun differs from the clean run"
    );
}
