//! gc on a SQLite long-term: it keeps what it cannot read, requires the long-term storage
//! root, holds the `gc` lease for its whole run (refused while another holds it, stops when
//! it lost it), re-checks running work right before each removal, and publish does not
//! write long-term folders while gc holds its lease.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{COLLECTION, collection_row, file_row, partition_row, write_config};
use milvus_tier::error::ErrorKind;
use milvus_tier::journal::{Entry, Journal, State, Step};
use milvus_tier::lock::Lease;
use milvus_tier::meta::{EngineType, FileType, MetaDb, TableState, WriteMode};
use milvus_tier::publish::{PublishInput, publish};
use serde_json::Value;

/// The lock gc holds for its run.
const GC_LOCK: &str = "gc";
/// A partition folder name under `db/tables/`.
const TABLE: &str = "1764000000000000200";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    long_url: String,
}

impl Env {
    fn long_storage(&self) -> PathBuf {
        self.dir.path().join("long")
    }

    fn table_dir(&self) -> PathBuf {
        self.long_storage().join("db/tables").join(TABLE)
    }

    /// A garbage segment folder holding one file of `len` bytes.
    fn garbage(&self, seg: &str, len: usize) -> PathBuf {
        let d = self.table_dir().join(seg);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{seg}.rv")), vec![7u8; len]).unwrap();
        d
    }

    fn command(&self, args: &[&str], failpoint: Option<&str>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
            cmd.env_remove(k);
        }
        cmd.arg("--config").arg(&self.config).arg("gc").args(args);
        if let Some(fp) = failpoint {
            cmd.env("MILVUS_TIER_FAILPOINT", fp);
        }
        cmd
    }

    /// `gc ARGS --json`: the output and its JSON (Null if none).
    fn gc(&self, args: &[&str], failpoint: Option<&str>) -> (Output, Value) {
        let o = self
            .command(args, failpoint)
            .arg("--json")
            .output()
            .expect("run gc");
        let json = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        (o, json)
    }

    fn spawn(&self, args: &[&str], failpoint: &str) -> Child {
        self.command(args, Some(failpoint))
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gc")
    }

    async fn long(&self) -> MetaDb {
        MetaDb::connect(&self.long_url).await.unwrap()
    }
}

/// A long-term metadata database (SQLite) with the Milvus schema and a config whose
/// storage roots hold `db/tables`; leases last 2 s.
async fn env() -> Env {
    common::init();
    let dir = tempfile::tempdir().unwrap();
    let url = |n: &str| test_support::sqlite_url(dir.path(), n);
    let long_url = url("long.sqlite");
    let long = MetaDb::connect(&long_url).await.unwrap();
    long.install_milvus_schema().await.unwrap();
    long.close().await;
    let config = dir.path().join("milvus-tier.toml");
    write_config(
        &config,
        &url("short.sqlite"),
        &long_url,
        &url("local.sqlite"),
        dir.path(),
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("lease_ttl_secs = 2\nlock_wait_secs = 1\n");
    std::fs::write(&config, text).unwrap();
    Env {
        dir,
        config,
        long_url,
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn candidate<'a>(json: &'a Value, path: &Path) -> &'a Value {
    json["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("no candidates: {json:#}"))
        .iter()
        .find(|c| c["path"] == path.display().to_string())
        .unwrap_or_else(|| panic!("{} not listed: {json:#}", path.display()))
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

/// Wait until `child` stopped itself at its failpoint (SIGSTOP).
fn wait_stopped(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while state(child.id()) != Some('T') {
        if let Some(status) = child.try_wait().unwrap() {
            let o = child.stdout.take().map(std::io::read_to_string);
            panic!("gc ended ({status}) before its failpoint: {o:?}");
        }
        assert!(Instant::now() < deadline, "gc never reached its failpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_keeps_and_reports_a_folder_it_cannot_read() {
    let e = env().await;
    // Denied for every user, root included (chmod denies nothing to root).
    let unreadable = e.garbage("1999", 100);
    let other = e.garbage("1998", 10);
    let fp = format!("gc.read_folder/{TABLE}/1999:eacces");

    // Within the default grace period: kept, and the unreadable one says why.
    let (o, json) = e.gc(&[], Some(&fp));
    assert_eq!(o.status.code(), Some(0), "{}{json:#}", stderr(&o));
    assert!(
        unreadable.join("1999.rv").is_file(),
        "a folder gc cannot read was removed: {json:#}"
    );
    let c = candidate(&json, &unreadable);
    assert_eq!(c["removed"], false, "{json:#}");
    let why = c["unreadable"].as_str().unwrap_or("");
    assert!(why.contains("Permission denied"), "{json:#}");
    assert!(
        c["age_secs"].is_null(),
        "an unknown age is no age: {json:#}"
    );
    assert!(
        c["kept"].as_str().unwrap_or("").contains("unreadable"),
        "{json:#}"
    );

    // No grace: the readable garbage goes, the unreadable folder stays.
    let (o, json) = e.gc(&["--grace-hours", "0"], Some(&fp));
    assert_eq!(o.status.code(), Some(0), "{}{json:#}", stderr(&o));
    assert!(!other.exists(), "readable garbage removed: {json:#}");
    assert_eq!(candidate(&json, &other)["removed"], true);
    assert_eq!(json["removed"], 1, "{json:#}");
    assert_eq!(
        std::fs::read(unreadable.join("1999.rv")).unwrap(),
        vec![7u8; 100],
        "{json:#}"
    );
    assert_eq!(candidate(&json, &unreadable)["removed"], false);

    // The text output says it was kept, and why.
    let o = e
        .command(&["--grace-hours", "0"], Some(&fp))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("kept (unreadable")
            && l.contains(&unreadable.display().to_string())
            && l.contains("Permission denied")),
        "{text}"
    );
    assert!(unreadable.join("1999.rv").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_keeps_a_folder_the_file_system_denies_it() {
    use std::os::unix::fs::PermissionsExt;
    let e = env().await;
    let unreadable = e.garbage("1999", 100);
    let other = e.garbage("1998", 10);
    // gc runs as an unprivileged user: as root, it runs as `nobody` (chmod denies root
    // nothing). Everything but the denied folder is open to it.
    // SAFETY: geteuid only reads this process's effective user id.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        for entry in [e.dir.path().to_path_buf()]
            .into_iter()
            .chain(tree(e.dir.path()))
        {
            let mode = if entry.is_dir() { 0o777 } else { 0o666 };
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_milvus-tier"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_milvus-tier"))
    };
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
        cmd.env_remove(k);
    }
    let o = cmd
        .arg("--config")
        .arg(&e.config)
        .args(["gc", "--grace-hours", "0", "--json"])
        .output()
        .expect("run gc");
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o755)).unwrap();
    let json: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(o.status.code(), Some(0), "{}{json:#}", stderr(&o));
    assert_eq!(
        std::fs::read(unreadable.join("1999.rv")).ok(),
        Some(vec![7u8; 100]),
        "a folder gc may not read was removed: {json:#}"
    );
    let c = candidate(&json, &unreadable);
    assert_eq!(c["removed"], false, "{json:#}");
    assert!(
        c["unreadable"]
            .as_str()
            .unwrap_or("")
            .contains("Permission denied"),
        "{json:#}"
    );
    assert!(!other.exists(), "readable garbage removed: {json:#}");
    assert_eq!(json["removed"], 1, "{json:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_requires_the_long_term_storage_root() {
    let e = env().await;
    let root = e.long_storage();
    std::fs::remove_dir_all(&root).unwrap();
    let (o, _) = e.gc(&["--grace-hours", "0"], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&root.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!root.exists(), "gc created the storage root");
    // A root without db/tables is not Milvus storage (an empty mount point).
    std::fs::create_dir(&root).unwrap();
    let (o, _) = e.gc(&["--grace-hours", "0", "--dry-run"], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&root.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!root.join("db").exists(), "gc created db/tables");
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_is_refused_while_another_gc_holds_the_lease() {
    let e = env().await;
    let g = e.garbage("1999", 10);
    let long = e.long().await;
    let other = Lease::acquire(
        &long,
        GC_LOCK,
        "elsewhere:1:gc-other",
        Duration::from_secs(60),
    )
    .await
    .unwrap()
    .expect("lease free");
    let (o, json) = e.gc(&["--grace-hours", "0"], None);
    assert_eq!(o.status.code(), Some(3), "{}{json:#}", stderr(&o));
    assert!(stderr(&o).contains("`gc`"), "{}", stderr(&o));
    assert!(g.is_dir(), "removed while another gc held the lease");
    other.release().await.unwrap();
    let (o, json) = e.gc(&["--grace-hours", "0"], None);
    assert_eq!(o.status.code(), Some(0), "{}{json:#}", stderr(&o));
    assert!(!g.exists(), "{json:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_that_lost_its_lease_stops_before_removing() {
    let e = env().await;
    let g = e.garbage("1999", 10);
    let mut child = e.spawn(&["--grace-hours", "0"], "gc.before_remove:stop");
    wait_stopped(&mut child);
    // Paused past its 2 s lease: another gc takes the lease over.
    let long = e.long().await;
    let other = Lease::acquire_waiting(
        &long,
        GC_LOCK,
        "elsewhere:1:gc-other",
        Duration::from_secs(60),
        Duration::from_secs(60),
    )
    .await
    .expect("the paused gc's lease expires and is taken over");
    signal(child.id(), libc::SIGCONT);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("was lost"), "{}", stderr(&o));
    assert!(g.is_dir(), "a gc that lost its lease removed a folder");
    other.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_checks_for_running_work_right_before_each_removal() {
    let e = env().await;
    let g = e.garbage("1999", 10);
    let mut child = e.spawn(&["--grace-hours", "0"], "gc.before_remove:stop");
    wait_stopped(&mut child);
    // A publish starts after gc's walk, before its removal.
    let long = e.long().await;
    let journal = Journal::open(&long).await.unwrap();
    journal
        .put(&Entry {
            collection: COLLECTION.into(),
            day: "2026-11-20".into(),
            step: Step::Publish,
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
        })
        .await
        .unwrap();
    signal(child.id(), libc::SIGCONT);
    let o = child.wait_with_output().unwrap();
    let json: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(o.status.code(), Some(0), "{}{json:#}", stderr(&o));
    assert!(g.is_dir(), "removed while a publish was running: {json:#}");
    assert_eq!(json["removed"], 0, "{json:#}");
    assert_eq!(candidate(&json, &g)["removed"], false);
    assert!(
        json["in_flight"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap_or("").contains("other-run")),
        "{json:#}"
    );
}

/// A day to publish: a partition with one raw segment in `source`'s storage.
struct Day {
    tables: Vec<milvus_tier::meta::TableRow>,
    files: Vec<milvus_tier::meta::FileRow>,
    source: PathBuf,
}

fn day_to_publish(dir: &Path) -> Day {
    let coll = collection_row(COLLECTION, EngineType::Flat, 256 << 20);
    let part = partition_row(
        &coll,
        "1764000000000000500",
        "day_2026-11-20",
        TableState::Normal,
    );
    let file = file_row(&part.table_id, 1, FileType::Raw, 10);
    let source = dir.join("source");
    let seg = source
        .join("db/tables")
        .join(&file.table_id)
        .join(&file.segment_id);
    std::fs::create_dir_all(&seg).unwrap();
    std::fs::write(
        seg.join(format!("{}.rv", file.file_id)),
        vec![1u8; file.file_size as usize],
    )
    .unwrap();
    std::fs::write(seg.join(format!("{}.uid", file.file_id)), vec![2u8; 80]).unwrap();
    std::fs::write(seg.join("deleted_docs"), [0u8; 8]).unwrap();
    Day {
        tables: vec![part],
        files: vec![file],
        source,
    }
}

async fn rows(long: &MetaDb, table_id: &str) -> usize {
    long.files(&[table_id.to_string()], &[])
        .await
        .unwrap()
        .len()
}

async fn publish_long_term(dir: &Path) -> (MetaDb, PathBuf) {
    common::init();
    let long = MetaDb::connect(&test_support::sqlite_url(dir, "long.sqlite"))
        .await
        .unwrap();
    long.install_milvus_schema().await.unwrap();
    long.migrate_journal().await.unwrap();
    let coll = collection_row(COLLECTION, EngineType::Flat, 256 << 20);
    long.write_rows(&[coll], &[], WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    let storage = dir.join("long");
    std::fs::create_dir_all(storage.join("db/tables")).unwrap();
    (long, storage)
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_does_not_write_while_gc_holds_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (long, storage) = publish_long_term(dir.path()).await;
    let d = day_to_publish(dir.path());
    let seg_dir = storage
        .join("db/tables")
        .join(&d.files[0].table_id)
        .join(&d.files[0].segment_id);
    let gc = Lease::acquire(&long, GC_LOCK, "elsewhere:1:gc", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("gc lease free");
    let run = Lease::acquire(
        &long,
        "migrate/vectors/2026-11-20",
        "elsewhere:2:run",
        Duration::from_secs(60),
    )
    .await
    .unwrap()
    .expect("day lease free");
    let journal = Journal::open(&long).await.unwrap().fenced(run.fence());
    let input = |gc_wait: Duration| PublishInput {
        collection: COLLECTION,
        day: "2026-11-20",
        tables: &d.tables,
        files: &d.files,
        source_storage: &d.source,
        long_storage: &storage,
        long: &long,
        journal: &journal,
        lease: &run,
        run_id: "elsewhere:2:run",
        concurrency: 2,
        bandwidth: None,
        progress: None,
        prehashed: None,
        gc_wait,
    };
    let tid = d.tables[0].table_id.clone();

    // A bounded wait that ends while gc still holds its lease: a retryable error, nothing
    // written.
    let err = publish(&input(Duration::ZERO))
        .await
        .expect_err("published while gc held its lease");
    assert_eq!(err.kind(), ErrorKind::NotReady, "{err}");
    assert!(err.retryable() && err.to_string().contains("`gc`"), "{err}");
    assert!(!seg_dir.exists() && rows(&long, &tid).await == 0);
    assert!(
        std::fs::read_dir(seg_dir.parent().unwrap())
            .map(|rd| rd.count())
            .unwrap_or(0)
            == 0,
        "nothing written under the partition folder"
    );

    journal
        .reset_from(COLLECTION, "2026-11-20", Step::Publish)
        .await
        .unwrap();
    // A longer wait: publish marks its entry running, then waits for gc to end.
    let watcher = async {
        loop {
            let e = journal
                .get(COLLECTION, "2026-11-20", Step::Publish)
                .await
                .unwrap();
            match e.map(|e| e.state) {
                Some(State::Running) => break,
                Some(s) => panic!("publish reached {s:?} while gc held its lease"),
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        assert!(!seg_dir.exists(), "publish wrote while gc held its lease");
        assert_eq!(rows(&long, &tid).await, 0);
        gc.release().await.unwrap();
    };
    let waiting = input(Duration::from_secs(120));
    let (published, ()) = tokio::join!(publish(&waiting), watcher);
    let r = published.expect("published once gc ended");
    assert_eq!(r.rows_inserted, 2, "{r:?}");
    assert!(seg_dir.join("deleted_docs").is_file());
    assert_eq!(rows(&long, &tid).await, 1);
    run.release().await.unwrap();
}

/// Every path under `root`, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_does_not_publish_while_gc_holds_its_lease() {
    use common::cluster::{COLL_LONG, cluster_days};
    let c = cluster_days(1);
    c.append_config("lock_wait_secs = 1\n");
    let day = "2026-11-20";
    let long = MetaDb::connect(&c.long_url).await.unwrap();
    let before = tree(&c.storage("long"));
    let gc = Lease::acquire(&long, GC_LOCK, "elsewhere:1:gc", Duration::from_secs(600))
        .await
        .unwrap()
        .expect("gc lease free");
    // gc outlives the publish's wait: a retryable error, nothing written to long-term.
    let (o, json) = c.migrate(&["--date", day]);
    assert_eq!(o.status.code(), Some(6), "{}{json:#}", stderr(&o));
    assert_eq!(json["days"][0]["outcome"], "not_ready", "{json:#}");
    assert!(
        json["days"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("`gc`"),
        "{json:#}"
    );
    assert_eq!(
        tree(&c.storage("long")),
        before,
        "long-term storage written"
    );
    assert!(long.partitions(COLL_LONG).await.unwrap().is_empty());
    let journal = Journal::open(&long).await.unwrap();
    let publish = journal.get(COLL_LONG, day, Step::Publish).await.unwrap();
    assert_eq!(publish.map(|e| e.state), Some(State::Failed));
    // gc ended: the retry publishes the day.
    gc.release().await.unwrap();
    let (o, json) = c.migrate(&["--date", day]);
    assert_eq!(o.status.code(), Some(0), "{}{json:#}", stderr(&o));
    assert_eq!(json["days"][0]["outcome"], "migrated", "{json:#}");
    assert_eq!(long.partitions(COLL_LONG).await.unwrap().len(), 1);
}

/// An archive entry whose detail does not parse names the folders gc must keep for
/// `archive.grace_hours` in no readable way: gc refuses (exit 5, naming the entry) and
/// removes nothing, instead of reading it as "no folders held".
#[tokio::test]
async fn gc_refuses_an_archive_entry_whose_detail_does_not_parse() {
    use milvus_tier::lifecycle::record::{self, ARCHIVE, Record};
    let e = env().await;
    let g = e.garbage("1999", 10);
    let long = e.long().await;
    Journal::open(&long).await.unwrap();
    let now = milvus_tier::journal::now_micros();
    record::put(
        &long,
        &Record {
            collection: COLLECTION,
            day: "2026-11-20".parse().unwrap(),
            step: ARCHIVE,
            state: "done",
            run_id: "archive-run",
            started_at: now,
            finished_at: now,
            files: 1,
            rows: 0,
            bytes: 0,
            detail: Some("{\"folders\": [\"1764000000000000200/1999\"".into()),
        },
    )
    .await
    .unwrap();
    let (o, json) = e.gc(&["--grace-hours", "0"], None);
    assert_eq!(o.status.code(), Some(5), "{}{json:#}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{COLLECTION}/2026-11-20/archive")) && err.contains("detail"),
        "{err}"
    );
    assert!(
        g.is_dir(),
        "gc removed a folder with an unreadable archive entry"
    );
}
