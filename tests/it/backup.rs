//! Backup, restore, verify and gc end to end: three MariaDB servers, `milvus-sim` as the
//! build engine, a moto S3 server on loopback (or a backup folder), the `milvus-tier` binary.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::cluster::*;
use common::s3;
use milvus_tier::journal::{Entry, Journal, State, Step};
use milvus_tier::meta::{FileRow, FileType, MetaDb, TableRow, WriteMode};
use serde_json::Value;
use test_support::moto::Moto;
use test_support::proxy::FaultyProxy;

const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";
const D3: &str = "2026-11-22";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output, json: &Value) {
    assert!(o.status.success(), "{}\n{json:#}", stderr(o));
}

/// Long-term as rows (natural keys, every column but the auto id) and file checksums by
/// path under `db/tables`.
async fn snapshot(c: &Cluster) -> (Vec<String>, BTreeMap<String, String>) {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let mut rows = Vec::new();
    let coll = long.collection(COLL_LONG).await.unwrap().unwrap();
    rows.push(format!("{:?}", TableRow { id: 0, ..coll }));
    let parts = long.partitions(COLL_LONG).await.unwrap();
    for p in &parts {
        rows.push(format!("{:?}", TableRow { id: 0, ..p.clone() }));
    }
    let ids: Vec<String> = parts.iter().map(|p| p.table_id.clone()).collect();
    for f in long.files(&ids, &[]).await.unwrap() {
        rows.push(format!("{:?}", FileRow { id: 0, ..f }));
    }
    rows.sort();
    long.close().await;
    let mut files = BTreeMap::new();
    let root = c.storage("long").join("db/tables");
    walk(&root, &root, &mut files);
    (rows, files)
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, blake3_file(&p));
        }
    }
}

/// Drop the long-term database and storage; leave a fresh database with only the Milvus
/// schema.
async fn wipe_long_term(c: &Cluster) {
    c.servers[1].sql("DROP DATABASE milvus");
    c.servers[1].sql("CREATE DATABASE milvus");
    std::fs::remove_dir_all(c.storage("long")).unwrap();
    // A fresh Milvus storage path (Milvus creates db/tables; milvus-tier never does).
    std::fs::create_dir_all(c.storage("long").join("db/tables")).unwrap();
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    long.install_milvus_schema().await.unwrap();
    long.close().await;
}

fn findings(json: &Value) -> Vec<(String, String)> {
    json["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["findings"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Recompute a hand-edited manifest's `files_digest`, as backup computes it, so the edit
/// reaches the checks behind the manifest's own.
fn redigest(m: &mut Value) {
    let files: Vec<milvus_tier::segments::FileDigest> =
        serde_json::from_value(m["files"].clone()).unwrap();
    m["files_digest"] = milvus_tier::segments::combined_digest(&files).into();
}

fn step<'a>(day: &'a Value, name: &str) -> &'a Value {
    day["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step: {day:#}"))
}

/// A published file of `day` (relative to `db/tables`): the first index file.
async fn index_file_of(c: &Cluster, day: &str) -> (FileRow, String) {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let p = long
        .partitions_tagged(COLL_LONG, &format!("day_{day}"))
        .await
        .unwrap()
        .remove(0);
    let f = long
        .files(std::slice::from_ref(&p.table_id), &[FileType::Index])
        .await
        .unwrap()
        .remove(0);
    long.close().await;
    let rel = format!("{}/{}/{}", f.table_id, f.segment_id, f.file_id);
    (f, rel)
}

#[tokio::test(flavor = "multi_thread")]
async fn disaster_recovery_drill_restores_three_days_from_s3_and_verify_finds_each_fault() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    s3::create_bucket(&ep, "drill").await;
    let mut c = cluster_days(3);
    c.env = s3::aws_env();
    c.set_backup(&s3::backup_toml("drill", "milvus/backups", &ep));

    let (o, json) = c.migrate(&["--from", D1, "--to", D3]);
    ok(&o, &json);
    let keys = s3::keys(&ep, "drill", "milvus/backups/").await;
    for (i, day) in [D1, D2, D3].iter().enumerate() {
        let d = &json["days"][i];
        assert_eq!(d["outcome"], "migrated", "{d:#}");
        let b = step(d, "backup");
        assert_eq!(b["outcome"], "done");
        assert_eq!(
            b["digest"],
            step(d, "publish")["digest"],
            "same files as published"
        );
        let manifest = format!("milvus/backups/{COLL_LONG}/{day}/manifest.json");
        assert!(keys.contains(&manifest), "{keys:?}");
        let files = keys
            .iter()
            .filter(|k| k.starts_with(&format!("milvus/backups/{COLL_LONG}/{day}/files/")))
            .count();
        assert_eq!(files as u64, b["files"].as_u64().unwrap(), "{keys:?}");
    }
    let before = snapshot(&c).await;
    // The manifest lists every long-term file of the day with its checksum.
    let raw = s3::get(
        &s3::client(&ep).await,
        "drill",
        &format!("milvus/backups/{COLL_LONG}/{D1}/manifest.json"),
    )
    .await;
    let m: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["format_version"], 2);
    assert!(
        m["collection_row_digest"]
            .as_str()
            .unwrap()
            .starts_with("v2:")
    );
    assert_eq!(m["collection_row"]["table_id"], COLL_LONG);
    for f in m["files"].as_array().unwrap() {
        let rel = format!(
            "{}/{}/{}",
            f["table_id"].as_str().unwrap(),
            f["segment_id"].as_str().unwrap(),
            f["name"].as_str().unwrap()
        );
        assert_eq!(
            before.1.get(&rel).map(String::as_str),
            f["blake3"].as_str(),
            "{rel}"
        );
    }
    if let Some(out) = std::env::var_os("BACKUP_MANIFEST_EXAMPLE_OUT") {
        std::fs::write(out, &raw).unwrap();
    }
    let (o, json) = c.run("verify", &["--from", D1, "--to", D3, "--deep"], &[]);
    ok(&o, &json);
    assert_eq!(json["ok"], true);

    // Disaster: long-term metadata and storage are gone.
    wipe_long_term(&c).await;
    let (o, json) = c.run("restore", &["--from", D1, "--to", D3], &[]);
    ok(&o, &json);
    for i in 0..3 {
        assert_eq!(json["days"][i]["outcome"], "restored", "{json:#}");
    }
    assert_eq!(json["days"][0]["created_collection"], true);
    let after = snapshot(&c).await;
    assert_eq!(before.0, after.0, "rows equal by natural key");
    assert_eq!(before.1, after.1, "every file checksum equal");
    let (o, json) = c.run("verify", &["--from", D1, "--to", D3, "--deep"], &[]);
    ok(&o, &json);
    // Restoring again is a no-op; migrate sees the days as done and backed up.
    let (o, json) = c.run("restore", &["--date", D2], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "identical");
    let (o, json) = c.migrate(&["--date", D3]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "already_done");
    assert_eq!(step(&json["days"][0], "backup")["outcome"], "skipped");

    let long_root = c.storage("long").join("db/tables");
    let (_, rel) = index_file_of(&c, D1).await;
    let path = long_root.join(&rel);
    let bytes = std::fs::read(&path).unwrap();

    // A deleted long-term file.
    std::fs::remove_file(&path).unwrap();
    let (o, json) = c.run("verify", &["--date", D1], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert!(
        findings(&json)
            .iter()
            .any(|(k, s)| k == "missing_file" && s.ends_with(&rel)),
        "{json:#}"
    );
    std::fs::write(&path, &bytes).unwrap();

    // A corrupted byte (same size): only a deep verify re-hashes.
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let (o, json) = c.run("verify", &["--date", D1, "--deep"], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert!(
        findings(&json)
            .iter()
            .any(|(k, s)| k == "checksum_mismatch" && s.ends_with(&rel)),
        "{json:#}"
    );
    let text = c
        .command("verify")
        .args(["--date", D1, "--deep"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("MISMATCH") && l.contains(&rel)),
        "{out}"
    );
    std::fs::write(&path, &bytes).unwrap();

    // A missing row.
    let (row, _) = index_file_of(&c, D2).await;
    c.servers[1].sql(&format!(
        "DELETE FROM milvus.TableFiles WHERE table_id = '{}' AND file_id = '{}'",
        row.table_id, row.file_id
    ));
    let (o, json) = c.run("verify", &["--date", D2], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    let subject = format!("TableFiles row {}/{}", row.table_id, row.file_id);
    assert!(
        findings(&json)
            .iter()
            .any(|(k, s)| k == "missing_row" && *s == subject),
        "{json:#}"
    );
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    long.write_rows(&[], std::slice::from_ref(&row), WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    long.close().await;

    // A manifest that disagrees with what was published.
    let key = format!("milvus/backups/{COLL_LONG}/{D3}/manifest.json");
    let client = s3::client(&ep).await;
    let original = s3::get(&client, "drill", &key).await;
    let mut m: Value = serde_json::from_slice(&original).unwrap();
    m["files"][0]["blake3"] = Value::String("0".repeat(64));
    redigest(&mut m);
    let changed_path = m["files"][0]["path"].as_str().unwrap().to_string();
    s3::put(&client, "drill", &key, serde_json::to_vec(&m).unwrap()).await;
    let (o, json) = c.run("verify", &["--date", D3], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert!(
        findings(&json)
            .iter()
            .any(|(k, s)| k == "manifest_mismatch" && s.contains(&changed_path)),
        "{json:#}"
    );
    s3::put(&client, "drill", &key, original).await;

    // Restore into a long-term holding different rows for the day: refused, untouched.
    c.servers[1].sql(&format!(
        "UPDATE milvus.TableFiles SET row_count = row_count + 1 WHERE table_id = '{}' AND file_id = '{}'",
        row.table_id, row.file_id
    ));
    let (o, _) = c.run("restore", &["--date", D2], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains(&subject), "{}", stderr(&o));
    c.servers[1].sql(&format!(
        "UPDATE milvus.TableFiles SET row_count = row_count - 1 WHERE table_id = '{}' AND file_id = '{}'",
        row.table_id, row.file_id
    ));

    let (o, json) = c.run("verify", &["--from", D1, "--to", D3, "--deep"], &[]);
    ok(&o, &json);
    assert_eq!(snapshot(&c).await, before);
}

/// Modification stamps of the objects under `prefix`.
async fn stamps(ep: &str, bucket: &str, prefix: &str) -> BTreeMap<String, String> {
    let client = s3::client(ep).await;
    let mut out = BTreeMap::new();
    for k in s3::keys(ep, bucket, prefix).await {
        let h = client
            .head_object()
            .bucket(bucket)
            .key(&k)
            .send()
            .await
            .unwrap();
        out.insert(k, format!("{:?} {:?}", h.last_modified(), h.e_tag()));
    }
    out
}

fn long_is_empty_of_days(c: &Cluster) {
    let tables = c.storage("long").join("db/tables");
    let entries: Vec<PathBuf> = std::fs::read_dir(&tables)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    for t in entries {
        let inner: Vec<_> = std::fs::read_dir(&t).unwrap().collect();
        assert!(
            inner.is_empty(),
            "{} holds {} entries",
            t.display(),
            inner.len()
        );
    }
    let hidden: Vec<_> = std::fs::read_dir(c.storage("long"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "staging left behind: {hidden:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_faults_interrupted_upload_and_manifest_refusals() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let mut c = cluster();
    c.env = s3::aws_env();

    // The bucket does not exist: publish happened, the backup step fails naming the bucket.
    c.set_backup(&s3::backup_toml("missing-bucket", "p", &ep));
    let (o, json) = c.migrate(&["--date", D1]);
    assert_eq!(o.status.code(), Some(1), "{json:#}");
    assert_eq!(step(&json["days"][0], "publish")["outcome"], "done");
    assert!(
        stderr(&o).contains("bucket `missing-bucket` does not exist"),
        "{}",
        stderr(&o)
    );
    // Restore from it: one line naming the bucket and S3's error code.
    let (o, _) = c.run("restore", &["--date", D1], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        !err.contains("ServiceError") && !err.contains("<?xml"),
        "{err}"
    );
    assert!(
        lines[0].starts_with("error: backup store s3://missing-bucket/")
            && lines[0].contains("NoSuchBucket")
            && lines[0].len() < 300,
        "{err}"
    );

    // The endpoint is unreachable (moto accepts any credentials, so a wrong endpoint stands
    // in for them): a clear error after the SDK's retries.
    let dead = format!("http://127.0.0.1:{}", test_support::free_port());
    c.set_backup(&s3::backup_toml("bak", "p", &dead));
    let (o, _) = c.run("backup", &["--date", D1], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("backup store s3://bak"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stderr(&o)
            .trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1
    );

    // A long-term file changed since publish (same size): the backup refuses it, and
    // neither that file nor a manifest reaches the bucket.
    s3::create_bucket(&ep, "bak").await;
    c.set_backup(&s3::backup_toml("bak", "changed", &ep));
    let (_, rel) = index_file_of(&c, D1).await;
    let path = c.storage("long").join("db/tables").join(&rel);
    let bytes = std::fs::read(&path).unwrap();
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let (o, _) = c.run("backup", &["--date", D1], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&path.display().to_string())
            && stderr(&o).contains("refusing to back up a changed file"),
        "{}",
        stderr(&o)
    );
    let stored = stamps(&ep, "bak", "changed/").await;
    assert!(
        !stored
            .keys()
            .any(|k| k.ends_with(&rel) || k.ends_with("manifest.json")),
        "{stored:?}"
    );
    std::fs::write(&path, &bytes).unwrap();

    // Killed after the first uploaded file; the rerun sends only what is missing.
    c.set_backup(&s3::backup_toml("bak", "p", &ep));
    let o = c
        .command("backup")
        .args(["--date", D1])
        .env("MILVUS_TIER_FAILPOINT", "backup.after_file")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(6), "{}", stderr(&o));
    let day_prefix = format!("p/{COLL_LONG}/{D1}/");
    let first = stamps(&ep, "bak", &day_prefix).await;
    assert!(!first.is_empty());
    assert!(
        !first.keys().any(|k| k.ends_with("manifest.json")),
        "manifest is written last"
    );
    // Killed again with every file up but before the manifest: still incomplete.
    let log_mark = moto.log_text().len();
    let o = c
        .command("backup")
        .args(["--date", D1])
        .env("MILVUS_TIER_FAILPOINT", "backup.before_manifest")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(6), "{}", stderr(&o));
    let log = moto.log_text()[log_mark..].to_string();
    for k in first.keys() {
        assert!(
            !log.contains(&format!("\"PUT /bak/{k}?")),
            "{k} was uploaded again"
        );
    }
    let all = stamps(&ep, "bak", &day_prefix).await;
    assert!(all.len() > first.len(), "the rest was uploaded");
    assert!(
        !all.keys().any(|k| k.ends_with("manifest.json")),
        "manifest is written last"
    );
    // The rerun writes only the manifest.
    let log_mark = moto.log_text().len();
    let (o, json) = c.run("backup", &["--date", D1], &[]);
    ok(&o, &json);
    let log = moto.log_text()[log_mark..].to_string();
    assert_eq!(
        log.matches("\"PUT ").count(),
        1,
        "only the manifest is sent: {log}"
    );
    assert!(
        log.contains(&format!("\"PUT /bak/{day_prefix}manifest.json?")),
        "moto's request log: {log}"
    );
    assert_eq!(step(&json["days"][0], "backup")["outcome"], "verified");
    let first = all;
    let b = step(&json["days"][0], "backup");
    let total = b["files"].as_u64().unwrap();
    let second = stamps(&ep, "bak", &day_prefix).await;
    assert_eq!(second.len() as u64, total + 1, "{second:?}");
    for (k, v) in &first {
        assert_eq!(second.get(k), Some(v), "{k} was uploaded again");
    }
    // S3 answers 503 to every third request: the SDK's retries carry the day through.
    let flaky = FaultyProxy::start(moto.port(), 3);
    c.set_backup(
        &s3::backup_toml("bak", "p", &flaky.endpoint())
            .replace("max_attempts = 2", "max_attempts = 4"),
    );
    let (o, json) = c.migrate(&["--date", D2]);
    ok(&o, &json);
    assert_eq!(step(&json["days"][0], "backup")["outcome"], "done");
    assert!(flaky.failed() > 0, "{} requests", flaky.requests());
    // Every request fails: a clear failure once the attempts are spent.
    let down = FaultyProxy::start(moto.port(), 1);
    c.set_backup(&s3::backup_toml("bak", "p", &down.endpoint()));
    let (o, _) = c.run("backup", &["--date", D2], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("backup store s3://bak"),
        "{}",
        stderr(&o)
    );
    assert_eq!(down.requests(), 2, "max_attempts = 2");
    c.set_backup(&s3::backup_toml("bak", "p", &ep));

    // Restore refusals on an empty long-term: each names the manifest or object, writes nothing.
    wipe_long_term(&c).await;
    let client = s3::client(&ep).await;
    let key = format!("p/{COLL_LONG}/{D1}/manifest.json");
    let original = s3::get(&client, "bak", &key).await;
    let mut wrong_version: Value = serde_json::from_slice(&original).unwrap();
    wrong_version["format_version"] = 99.into();
    let mut wrong_sum: Value = serde_json::from_slice(&original).unwrap();
    wrong_sum["files"][0]["blake3"] = Value::String("f".repeat(64));
    redigest(&mut wrong_sum);
    let bad_object = format!(
        "s3://bak/p/{COLL_LONG}/{D1}/{}",
        wrong_sum["files"][0]["path"].as_str().unwrap()
    );
    let cases: Vec<(Option<Vec<u8>>, String)> = vec![
        (None, "not found".into()),
        (
            Some(original[..original.len() / 2].to_vec()),
            "not valid JSON".into(),
        ),
        (
            Some(serde_json::to_vec(&wrong_version).unwrap()),
            "unknown format_version 99".into(),
        ),
        (Some(serde_json::to_vec(&wrong_sum).unwrap()), bad_object),
    ];
    for (body, want) in cases {
        match body {
            None => {
                client
                    .delete_object()
                    .bucket("bak")
                    .key(&key)
                    .send()
                    .await
                    .unwrap();
            }
            Some(b) => {
                s3::put(&client, "bak", &key, b).await;
            }
        }
        let (o, _) = c.run("restore", &["--date", D1], &[]);
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&want), "want {want}: {err}");
        if !want.starts_with("s3://") {
            assert!(err.contains(&format!("s3://bak/{key}")), "{err}");
        }
        let long = MetaDb::connect(&c.long_url).await.unwrap();
        assert!(
            long.collection(COLL_LONG).await.unwrap().is_none(),
            "nothing written"
        );
        long.close().await;
        long_is_empty_of_days(&c);
    }
    s3::put(&client, "bak", &key, original).await;
    let (o, json) = c.run("restore", &["--from", D1, "--to", D2], &[]);
    ok(&o, &json);
    let (o, json) = c.run("verify", &["--from", D1, "--to", D2, "--deep"], &[]);
    ok(&o, &json);
    assert!(json["days"][0]["short_term_checked"].as_bool().unwrap());

    // Short-term counts disagree with long-term's (rows written to the day after migrate).
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let part = short
        .partitions_tagged(COLL_SHORT, &format!("day_{D2}"))
        .await
        .unwrap()
        .remove(0);
    short.close().await;
    let bump = |delta: i32| {
        c.servers[0].sql(&format!(
            "UPDATE milvus.TableFiles SET row_count = row_count + ({delta}) WHERE table_id = '{}' AND file_type = 1 LIMIT 1",
            part.table_id
        ))
    };
    bump(5);
    let (o, json) = c.run("verify", &["--date", D2], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert_eq!(
        findings(&json),
        vec![(
            "count_mismatch".to_string(),
            format!("partition {} (tag day_{D2})", part.table_id)
        )]
    );
    bump(-5);
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_backend_and_gc() {
    let c = cluster();
    // An unwritable target (its parent is a file): the step fails naming the path.
    let blocker = c.dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    c.set_backup(&format!("target = \"file://{}/sub\"", blocker.display()));
    let (o, json) = c.migrate(&["--date", D1]);
    assert_eq!(o.status.code(), Some(1), "{json:#}");
    assert!(stderr(&o).contains("not-a-folder"), "{}", stderr(&o));
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let journal = Journal::open(&long).await.unwrap();
    let e = journal
        .get(COLL_LONG, D1, Step::Backup)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.state, State::Failed);

    // A backup folder that does not exist (its volume not mounted) is not created: the
    // backup step fails naming it, as `config check` does.
    let dest = c.dir.path().join("fsbackup");
    c.set_backup(&format!("target = \"file://{}\"", dest.display()));
    let (o, json) = c.migrate(&["--date", D1]);
    assert_eq!(o.status.code(), Some(1), "{json:#}");
    let err = stderr(&o);
    assert!(
        err.contains(&dest.display().to_string()) && err.contains("does not exist"),
        "{err}"
    );
    assert!(!dest.exists(), "the backup folder was created");
    let o = c.command("config").arg("check").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.lines().any(|l| l.starts_with("FAIL backup target")
            && l.contains(&dest.display().to_string())
            && l.contains("does not exist")),
        "{out}"
    );
    std::fs::create_dir(&dest).unwrap();
    let (o, json) = c.migrate(&["--from", D1, "--to", D2]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["outcome"], "already_done");
    assert_eq!(step(&json["days"][0], "backup")["outcome"], "done");
    assert_eq!(json["days"][1]["outcome"], "migrated");
    for day in [D1, D2] {
        let dir = dest.join(COLL_LONG).join(day);
        let m: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert!(!m["files"].as_array().unwrap().is_empty());
        for f in m["files"].as_array().unwrap() {
            let p = dir.join(f["path"].as_str().unwrap());
            assert_eq!(
                Some(blake3_file(&p).as_str()),
                f["blake3"].as_str(),
                "{}",
                p.display()
            );
        }
    }
    // A rerun of the backup sends nothing.
    let (o, json) = c.run("backup", &["--date", D2], &[]);
    ok(&o, &json);
    assert_eq!(step(&json["days"][0], "backup")["outcome"], "verified");
    assert_eq!(step(&json["days"][0], "backup")["bytes"], 0);
    let (o, json) = c.run("verify", &["--from", D1, "--to", D2, "--deep"], &[]);
    ok(&o, &json);
    let before = snapshot(&c).await;

    // Garbage: an unreferenced segment folder, a copier temporary folder, and a folder
    // referenced only by a TO_DELETE row.
    let (row, _) = index_file_of(&c, D1).await;
    let table_dir = c.storage("long").join("db/tables").join(&row.table_id);
    for (seg, len) in [("1999", 100usize), (".1998.tmp", 10), ("1997", 7)] {
        std::fs::create_dir_all(table_dir.join(seg)).unwrap();
        std::fs::write(table_dir.join(seg).join("1999.rv"), vec![1u8; len]).unwrap();
    }
    let dead = FileRow {
        id: 0,
        segment_id: "1997".into(),
        file_id: "1997".into(),
        file_type: FileType::ToDelete,
        ..row.clone()
    };
    long.write_rows(&[], std::slice::from_ref(&dead), WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    let gc = |args: &[&str]| {
        let (o, json) = c.run("gc", args, &[]);
        ok(&o, &json);
        json
    };
    let listed = gc(&["--dry-run", "--grace-hours", "0"]);
    let cands = listed["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 3, "{listed:#}");
    let by_reason = |r: &str| cands.iter().find(|x| x["reason"] == r).unwrap().clone();
    assert_eq!(by_reason("unreferenced")["bytes"], 100);
    assert_eq!(by_reason("temporary")["bytes"], 10);
    assert_eq!(by_reason("to_delete")["bytes"], 7);
    assert!(cands.iter().all(|x| x["removed"] == false));
    // Within the default grace period: kept.
    assert_eq!(gc(&[])["removed"], 0);
    // A run in flight: kept.
    let running = Entry {
        collection: COLL_LONG.into(),
        day: D3.into(),
        step: Step::Stage,
        state: State::Running,
        run_id: "other-run".into(),
        started_at: 1,
        updated_at: 1,
        finished_at: None,
        files: 0,
        rows: 0,
        bytes: 0,
        checksum_digest: String::new(),
        detail: None,
    };
    journal.put(&running).await.unwrap();
    let json = gc(&["--grace-hours", "0"]);
    assert_eq!(json["removed"], 0);
    assert_eq!(json["in_flight"].as_array().unwrap().len(), 1);
    journal
        .reset_from(COLL_LONG, D3, Step::Stage)
        .await
        .unwrap();
    let json = gc(&["--grace-hours", "0"]);
    assert_eq!(json["removed"], 3, "{json:#}");
    for seg in ["1999", ".1998.tmp", "1997"] {
        assert!(!table_dir.join(seg).exists(), "{seg}");
    }
    let left = long
        .files(std::slice::from_ref(&row.table_id), &[FileType::ToDelete])
        .await
        .unwrap();
    assert!(left.is_empty(), "TO_DELETE row removed: {left:?}");
    assert_eq!(snapshot(&c).await, before, "referenced folders untouched");
    let (o, json) = c.run("verify", &["--from", D1, "--to", D2, "--deep"], &[]);
    ok(&o, &json);

    // Restore under another collection name into an empty long-term.
    long.close().await;
    wipe_long_term(&c).await;
    let (o, json) = c.run("restore", &["--date", D1, "--to-collection", "copy"], &[]);
    ok(&o, &json);
    assert_eq!(json["days"][0]["collection"], "copy");
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let coll = long
        .collection("copy")
        .await
        .unwrap()
        .expect("collection row created");
    assert_eq!(coll.dimension, DIM as i64);
    let parts = long.partitions("copy").await.unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].partition_tag, format!("day_{D1}"));
    assert!(long.collection(COLL_LONG).await.unwrap().is_none());
}
