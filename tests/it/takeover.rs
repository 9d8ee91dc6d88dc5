//! A run paused past its lease (SIGSTOP, as a paused VM) loses the day to a second run, and
//! when resumed (SIGCONT) writes nothing more: long-term holds the day once, files and rows
//! identical to a clean run. Each pause point gets its own cluster; they run side by side.

use crate::common;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;
use serde_json::Value;

const DAY: &str = "2026-11-20";

/// Short leases so a paused run loses its lease within seconds.
const LIMITS: &str = "lease_ttl_secs = 2\nlock_wait_secs = 60\n";

fn spawn(c: &Cluster, failpoint: Option<&str>) -> Child {
    let mut cmd = c.command("migrate");
    cmd.args(["--date", DAY, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(fp) = failpoint {
        cmd.env("MILVUS_TIER_FAILPOINT", fp);
    }
    cmd.spawn().expect("start milvus-tier")
}

/// The process state letter from /proc (`T` = stopped).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill sends a signal to a child this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

fn outcome(o: &Output) -> (Option<i32>, String, String) {
    let j: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (
        o.status.code(),
        j["days"][0]["outcome"].as_str().unwrap_or("").to_string(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        ),
    )
}

fn blocked_on_lock_row(c: &Cluster) -> bool {
    c.servers[1]
        .sql(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE INFO LIKE '%milvus_tier_lock%' AND COMMAND = 'Query'",
        )
        .trim()
        != "0"
}

/// One pause point: run A stops itself there; B takes over; A resumes. Returns the
/// long-term content of the day.
fn pause_case(point: &str) -> Vec<String> {
    let c = cluster_days(1);
    c.append_config(LIMITS);
    if point == "publish.clean" {
        // A crashed publish leaves folders for the next run to clean up.
        let o = c
            .command("migrate")
            .args(["--date", DAY, "--json"])
            .env("MILVUS_TIER_FAILPOINT", "publish.after_copy")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), None, "{point}: the first run dies");
    }
    let mut a = spawn(&c, Some(&format!("{point}:stop")));
    let deadline = Instant::now() + Duration::from_secs(120);
    while state(a.id()) != Some('T') {
        if let Some(st) = a.try_wait().unwrap() {
            let o = a.wait_with_output().unwrap();
            panic!(
                "{point}: A ended ({st}) before its pause: {}",
                outcome(&o).2
            );
        }
        assert!(Instant::now() < deadline, "{point}: A never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut b = spawn(&c, None);
    // B waits for A's lease to end and takes the day over; at the publish commit it waits on
    // the lease row that A's open transaction holds, so A is resumed then.
    while b.try_wait().unwrap().is_none() {
        if point == "publish.before_commit" && blocked_on_lock_row(&c) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{point}: B neither ended nor blocked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(a.id(), libc::SIGCONT);
    let (a, b) = (
        outcome(&a.wait_with_output().unwrap()),
        outcome(&b.wait_with_output().unwrap()),
    );
    if point == "publish.before_commit" {
        // A held the lease when it opened its publish transaction (the lease row is locked
        // by it), so A's commit stands; B finds the day done, or A still holding it.
        assert_eq!(
            (a.0, a.1.as_str()),
            (Some(0), "migrated"),
            "{point}: A {}",
            a.2
        );
        assert!(
            b.1 == "already_done" || b.0 == Some(3),
            "{point}: B finds the day published or the lock held: {}",
            b.2
        );
    } else {
        assert_eq!(
            (b.0, b.1.as_str()),
            (Some(0), "migrated"),
            "{point}: B {}",
            b.2
        );
        assert_eq!(a.0, Some(3), "{point}: A stops with `locked`: {}", a.2);
        assert!(a.2.contains("was lost"), "{point}: A says why: {}", a.2);
        // Every journal entry is B's: A wrote nothing after it resumed.
        let runs = c.servers[1].sql(
            "SELECT COUNT(DISTINCT run_id) FROM milvus.milvus_tier_journal WHERE state <> 'failed'",
        );
        assert_eq!(
            runs.trim(),
            "1",
            "{point}: journal rows of more than one run"
        );
    }
    assert_eq!(
        c.servers[1]
            .sql("SELECT COUNT(*) FROM milvus.Tables WHERE owner_table <> ''")
            .trim(),
        "1",
        "{point}: the day is held once"
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(canonical(&c))
}

#[test]
fn a_run_paused_past_its_lease_writes_nothing_after_another_takes_over() {
    const POINTS: &[&str] = &[
        "stage.after_copy",
        "build.after_create_index",
        "publish.before_commit",
        "publish.clean",
    ];
    common::init();
    std::thread::scope(|s| {
        let clean = s.spawn(|| {
            let c = cluster_days(1);
            c.append_config(LIMITS);
            let (o, _) = c.migrate(&["--date", DAY]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(canonical(&c))
        });
        let cases: Vec<_> = POINTS
            .iter()
            .map(|p| (*p, s.spawn(move || pause_case(p))))
            .collect();
        let want = clean.join().unwrap();
        assert!(want.len() >= 3, "{want:?}");
        for (p, h) in cases {
            let got = h.join().unwrap_or_else(|_| panic!("{p} failed"));
            assert_eq!(got, want, "{p}: long-term differs from a clean run");
        }
    });
}

#[test]
fn a_day_published_by_another_build_meanwhile_is_refused_at_commit() {
    common::init();
    let c = cluster_days(1);
    c.append_config(LIMITS);
    // The run stops after copying its folders, before its publish transaction.
    let a = spawn(&c, Some("publish.after_copy:stop"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while state(a.id()) != Some('T') {
        assert!(Instant::now() < deadline, "the run never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Meanwhile another build of the day lands in long-term (a partition with the day's tag
    // that is not this run's).
    c.servers[1].sql(&format!(
        "INSERT INTO milvus.Tables (table_id, state, dimension, created_on, flag, index_file_size, \
         engine_type, index_params, metric_type, owner_table, partition_tag, version, flush_lsn) \
         SELECT 'other_build_day', 0, dimension, created_on, flag, index_file_size, engine_type, \
         index_params, metric_type, table_id, 'day_{DAY}', version, flush_lsn \
         FROM milvus.Tables WHERE table_id = '{COLL_LONG}'"
    ));
    signal(a.id(), libc::SIGCONT);
    let (code, _, text) = outcome(&a.wait_with_output().unwrap());
    assert_eq!(code, Some(5), "refused as a mismatch: {text}");
    assert!(
        text.contains("other_build_day") && text.contains("already holds day"),
        "names the other build's partition: {text}"
    );
    assert_eq!(
        c.servers[1]
            .sql("SELECT COUNT(*) FROM milvus.Tables WHERE owner_table <> ''")
            .trim(),
        "1",
        "only the other build's partition"
    );
    assert_eq!(
        c.servers[1]
            .sql("SELECT COUNT(*) FROM milvus.TableFiles")
            .trim(),
        "0",
        "none of this run's file rows"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_that_grows_after_its_plan_is_not_published() {
    common::init();
    let c = cluster_days(1);
    let short = milvus_tier::meta::MetaDb::connect(&c.short_url)
        .await
        .unwrap();
    let long = milvus_tier::meta::MetaDb::connect(&c.long_url)
        .await
        .unwrap();
    // The run stops right after its plan.
    let a = spawn(&c, Some("plan.done:stop"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while state(a.id()) != Some('T') {
        assert!(Instant::now() < deadline, "the run never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Meanwhile the short-term engine flushes one more segment into the day.
    let part = short
        .partitions_tagged(COLL_SHORT, &format!("day_{DAY}"))
        .await
        .unwrap()
        .remove(0);
    let files = short
        .files(std::slice::from_ref(&part.table_id), &[])
        .await
        .unwrap();
    let mut extra = files[0].clone();
    extra.id = 0;
    extra.segment_id = format!("{}9", extra.segment_id);
    extra.file_id = format!("{}9", extra.file_id);
    let tables = c.storage("short").join("db/tables").join(&part.table_id);
    let (from, to) = (
        tables.join(&files[0].segment_id),
        tables.join(&extra.segment_id),
    );
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let renamed = name.replace(&files[0].file_id, &extra.file_id);
        std::fs::copy(from.join(&name), to.join(renamed)).unwrap();
    }
    short
        .write_rows(
            &[],
            std::slice::from_ref(&extra),
            milvus_tier::meta::WriteMode::InsertIfAbsent,
        )
        .await
        .unwrap();
    signal(a.id(), libc::SIGCONT);
    let o = a.wait_with_output().unwrap();
    let j: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let (code, outcome, text) = outcome(&o);
    assert_eq!(code, Some(6), "not ready, retryable: {text}");
    assert_eq!(outcome, "not_ready", "{text}");
    assert!(
        j["days"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("still growing"),
        "{text}"
    );
    assert!(
        long.partitions(COLL_LONG).await.unwrap().is_empty(),
        "nothing of the day published"
    );
    // status says the day is waiting to be retried, not that its run failed.
    let (_, st) = c.run("status", &["--date", DAY], &[]);
    let d = &st["days"][0];
    assert_eq!(d["phase"], "not_ready", "{st:#}");
    assert_eq!(d["last_run"]["outcome"], "not_ready", "{st:#}");
    assert!(
        d["last_run"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("still growing"),
        "{st:#}"
    );
    assert_eq!(st["phases"]["not_ready"], 1, "{st:#}");
    assert!(st["phases"].get("failed").is_none(), "{st:#}");
    let o = c.command("status").args(["--date", DAY]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.lines()
            .any(|l| l.starts_with(DAY) && l.contains("not ready") && !l.contains("failed")),
        "text output: {out}"
    );
    // The day has stopped growing: a rerun publishes all of it.
    let (o, j) = c.migrate(&["--date", DAY]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(j["days"][0]["outcome"], "migrated", "{j:#}");
    let published = long
        .files(
            &long
                .partitions(COLL_LONG)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.table_id)
                .collect::<Vec<_>>(),
            &[],
        )
        .await
        .unwrap();
    let rows: i64 = published
        .iter()
        .filter(|f| f.file_type != milvus_tier::meta::FileType::Backup)
        .map(|f| f.row_count)
        .sum();
    let want: i64 = files.iter().map(|f| f.row_count).sum::<i64>() + extra.row_count;
    assert_eq!(rows, want, "every row of the grown day");
}
