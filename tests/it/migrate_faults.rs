//! `milvus-tier migrate` refuses bad input and survives faults: each case gets a clear error
//! naming the culprit, a non-zero exit code, and leaves long-term (rows and storage) as it
//! was; the short-term cluster is only ever read. After a fault, a rerun completes.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;
use milvus_tier::meta::{FileRow, FileType, MetaDb, TableRow, WriteMode};

const DAY: &str = "2026-11-20";

/// Run migrate with `args`; it must fail with `code` and name every one of `needles`.
async fn refused(
    c: &Cluster,
    case: &str,
    args: &[&str],
    env: &[(&str, &str)],
    code: i32,
    needles: &[&str],
) {
    let (o, _) = c.run("migrate", args, env);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(code), "{case}: {all}");
    for n in needles {
        assert!(all.contains(n), "{case}: the error names {n:?}: {all}");
    }
    assert_long_term_untouched(c, case).await;
}

/// Short-term metadata as text, and every short-term file with its BLAKE3.
fn short_term_snapshot(c: &Cluster) -> (String, Vec<String>) {
    let rows = c.servers[0].sql(
        "SELECT * FROM milvus.Tables ORDER BY id; SELECT * FROM milvus.TableFiles ORDER BY id",
    );
    let mut files = Vec::new();
    let mut stack = vec![c.storage("short")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(format!("{} {}", p.display(), blake3_file(&p)));
            }
        }
    }
    files.sort();
    (rows, files)
}

fn segment_dir(c: &Cluster, f: &FileRow) -> std::path::PathBuf {
    c.storage("short")
        .join("db/tables")
        .join(&f.table_id)
        .join(&f.segment_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_long_term_stays_unchanged() {
    let c = cluster();
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let part = short
        .partitions_tagged(COLL_SHORT, "day_2026-11-20")
        .await
        .unwrap()
        .remove(0);
    let files = short
        .files(std::slice::from_ref(&part.table_id), &[])
        .await
        .unwrap();
    let f = files
        .iter()
        .find(|f| f.file_type == FileType::Raw)
        .expect("a RAW file")
        .clone();
    let seg = segment_dir(&c, &f);
    let date = ["--date", DAY];

    // A segment file shorter than its row says.
    let rv = seg.join(format!("{}.rv", f.file_id));
    let original = std::fs::read(&rv).unwrap();
    std::fs::write(&rv, &original[..original.len() - 4]).unwrap();
    refused(
        &c,
        "truncated file",
        &date,
        &[],
        2,
        &[&format!("{}.rv", f.file_id), &f.table_id],
    )
    .await;
    std::fs::write(&rv, &original).unwrap();

    // A file no row accounts for.
    std::fs::write(seg.join("stray.bin"), b"not milvus").unwrap();
    refused(&c, "extra file", &date, &[], 2, &["stray.bin"]).await;
    std::fs::remove_file(seg.join("stray.bin")).unwrap();

    // A segment folder that is gone.
    let moved = seg.with_extension("moved");
    std::fs::rename(&seg, &moved).unwrap();
    refused(
        &c,
        "missing folder",
        &date,
        &[],
        2,
        &[&f.segment_id, "missing"],
    )
    .await;
    std::fs::rename(&moved, &seg).unwrap();

    // The short-term engine is still merging this day.
    c.servers[0].sql(&format!(
        "UPDATE milvus.TableFiles SET file_type = 5 WHERE id = {}",
        f.id
    ));
    refused(
        &c,
        "NEW_MERGE input",
        &date,
        &[],
        6,
        &[&format!("row id {}", f.id), "NEW_MERGE"],
    )
    .await;
    c.servers[0].sql(&format!(
        "UPDATE milvus.TableFiles SET file_type = {} WHERE id = {}",
        f.file_type as i32, f.id
    ));

    // Dimension, then metric, differ between the clusters.
    c.servers[1].sql(&format!(
        "UPDATE milvus.Tables SET dimension = 32 WHERE table_id = '{COLL_LONG}'"
    ));
    refused(
        &c,
        "dimension mismatch",
        &date,
        &[],
        2,
        &[COLL_LONG, "dimension 32", "dimension 16"],
    )
    .await;
    c.servers[1].sql(&format!(
        "UPDATE milvus.Tables SET dimension = {DIM}, metric_type = 2 WHERE table_id = '{COLL_LONG}'"
    ));
    refused(
        &c,
        "metric mismatch",
        &date,
        &[],
        2,
        &[COLL_LONG, "metric IP"],
    )
    .await;
    c.servers[1].sql(&format!(
        "UPDATE milvus.Tables SET metric_type = 1 WHERE table_id = '{COLL_LONG}'"
    ));

    // The long-term collection does not exist.
    refused(
        &c,
        "missing long-term collection",
        &date,
        &[("MILVUS_TIER_LONG_TERM__COLLECTION", "no_such_archive")],
        2,
        &["no_such_archive", "long-term"],
    )
    .await;

    // A day with no partition, and a partition with no files.
    refused(
        &c,
        "no partition",
        &["--date", "2026-11-23"],
        &[],
        2,
        &["day_2026-11-23"],
    )
    .await;
    let empty = TableRow {
        id: 0,
        table_id: format!("{}_empty", part.table_id),
        partition_tag: "day_2026-11-22".into(),
        ..part.clone()
    };
    short
        .write_rows(std::slice::from_ref(&empty), &[], WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    refused(
        &c,
        "partition without files",
        &["--date", "2026-11-22"],
        &[],
        2,
        &[&empty.table_id, "has no RAW, TO_INDEX or BACKUP files"],
    )
    .await;

    // TO_DELETE rows are leftovers of a finished merge: not input, and their folders need
    // not exist. The plan counts them as skipped.
    let leftover = FileRow {
        id: 0,
        file_id: "1700000000000000001".into(),
        segment_id: "1700000000000000001".into(),
        file_type: FileType::ToDelete,
        ..f.clone()
    };
    short
        .write_rows(
            &[],
            std::slice::from_ref(&leftover),
            WriteMode::InsertIfAbsent,
        )
        .await
        .unwrap();
    let (o, plan) = c.migrate(&["--date", DAY, "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(plan["days"][0]["plan"]["skipped"]["TO_DELETE"], 1, "{plan}");
    assert_long_term_untouched(&c, "dry run").await;

    // With the input repaired, the day migrates; short-term is read, never written.
    let before = short_term_snapshot(&c);
    let (o, report) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(report["days"][0]["outcome"], "migrated", "{report}");
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let parts = long.partitions(COLL_LONG).await.unwrap();
    assert_eq!(parts.len(), 1);
    let rows: i64 = long
        .files(
            &[parts[0].table_id.clone()],
            &[FileType::Index, FileType::Raw],
        )
        .await
        .unwrap()
        .iter()
        .map(|f| f.row_count)
        .sum();
    assert_eq!(rows, 6000);
    assert_eq!(short_term_snapshot(&c), before, "short-term was written");
}

/// Mounts a small tmpfs on a folder for the test's lifetime (root only); unmounts on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_storage_full_fails_cleanly_and_rerun_completes() {
    let c = cluster();
    // A 64 KiB file system for the engine's storage where this machine allows mounting;
    // elsewhere the storage layer's write fails with the same error by failpoint.
    let disk = SmallDisk::mount(&c.storage("local"), "64k");
    if disk.is_some() {
        // A fresh volume holds what the engine creates at start.
        std::fs::create_dir_all(c.storage("local").join("db/tables")).unwrap();
    }
    let injected = [("MILVUS_TIER_FAILPOINT", "segments.write:enospc")];
    let env: &[(&str, &str)] = if disk.is_some() { &[] } else { &injected };
    assert_full_disk_refused(&c, env).await;
    drop(disk);
    // The injected error takes the same path (what runs where mounting is not allowed).
    assert_full_disk_refused(&c, &injected).await;

    let (o, report) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(report["days"][0]["outcome"], "migrated", "{report}");
}

async fn assert_full_disk_refused(c: &Cluster, env: &[(&str, &str)]) {
    let (o, report) = c.run("migrate", &["--date", DAY], env);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("No space left on device"), "{all}");
    assert!(
        all.contains(&c.storage("local").display().to_string()),
        "names the file: {all}"
    );
    assert_eq!(report["days"][0]["outcome"], "failed", "{report}");
    assert_long_term_untouched(c, "local storage full").await;
    let local = MetaDb::connect(&c.local_url).await.unwrap();
    assert!(
        local.partitions(COLL_LONG).await.unwrap().is_empty(),
        "no engine rows for files that were not staged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn long_term_db_stopped_mid_publish_rolls_back_and_rerun_completes() {
    let mut c = cluster();
    // Stop the run inside the publish transaction (rows inserted, not committed: the
    // failpoint stops the process with SIGSTOP there), stop the long-term server, and let
    // the run go on.
    let mut child = c
        .command("migrate")
        .args(["--date", DAY, "--json"])
        .env("MILVUS_TIER_FAILPOINT", "publish.before_commit:stop")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while process_state(child.id()) != Some('T') {
        if let Some(st) = child.try_wait().unwrap() {
            let o = child.wait_with_output().unwrap();
            panic!(
                "the run ended ({st}) before the publish commit: {}",
                text(&o)
            );
        }
        assert!(
            Instant::now() < deadline,
            "the run never reached the publish commit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The transaction holds the day's rows: the server has them, uncommitted.
    assert_ne!(
        c.servers[1]
            .sql("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0")
            .trim(),
        "0",
        "the paused run has an open transaction with rows"
    );
    c.servers[1].kill();
    // SAFETY: kill sends a signal to a child this test started.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) },
        0
    );
    let o = child.wait_with_output().unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("127.0.0.1"), "names the database: {all}");

    c.servers[1].restart();
    assert_long_term_rows_empty(&c).await;
    let (o, report) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(report["days"][0]["outcome"], "migrated", "{report}");
    // The rows now reference exactly the folders on disk (canonical checks orphans).
    let got = canonical(&c).await;
    assert!(got.iter().any(|l| l.contains("INDEX rows=6000")), "{got:?}");
    let (o, report) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(report["days"][0]["outcome"], "already_done", "{report}");
}

/// The process state letter from /proc (`T` = stopped).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// After the crash the uncommitted rows are gone (the folders may remain until the rerun).
async fn assert_long_term_rows_empty(c: &Cluster) {
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    assert!(long.partitions(COLL_LONG).await.unwrap().is_empty());
    assert_eq!(
        c.servers[1]
            .sql("SELECT COUNT(*) FROM milvus.TableFiles")
            .trim(),
        "0"
    );
}
