//! The metadata layer on real MariaDB servers and on SQLite files: schema, enums,
//! queries and batched writes behave the same on both.

use crate::common;

use common::{COLLECTION, fixture, load};
use milvus_tier::Error;
use milvus_tier::meta::{EngineType, FileType, MetaDb, RowOutcome, TableState, WriteMode};
use test_support::MariaDb;

async fn schema_and_queries(db: &MetaDb) {
    let f = load(db).await;
    db.check_schema()
        .await
        .expect("schema as Milvus creates it");
    db.migrate_journal().await.expect("journal tables");
    db.migrate_journal()
        .await
        .expect("journal migration is idempotent");

    let coll = db
        .collection(COLLECTION)
        .await
        .unwrap()
        .expect("collection row");
    assert_eq!(coll.dimension, 16);
    assert_eq!(coll.index_file_size, 256 << 20);
    assert!(db.collection("nope").await.unwrap().is_none());
    assert!(
        db.collection("1764000000000000200")
            .await
            .unwrap()
            .is_none(),
        "a partition is not a collection"
    );

    let parts = db
        .partitions_tagged(COLLECTION, "day_2026-11-24")
        .await
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts
            .iter()
            .filter(|p| p.state == TableState::Normal)
            .count(),
        1
    );
    assert_eq!(db.partitions(COLLECTION).await.unwrap().len(), 4);

    let ids = vec!["1764000000000000200".to_string()];
    let input = db
        .files(&ids, &[FileType::Raw, FileType::ToIndex, FileType::Backup])
        .await
        .unwrap();
    assert_eq!(input.len(), 4);
    assert_eq!(
        input.iter().map(|r| r.row_count).sum::<i64>(),
        100 + 200 + 5000 + 6000
    );
    let all = db.files(&ids, &[]).await.unwrap();
    assert_eq!(all.len(), 9);
    // Values round-trip exactly (ids are local).
    for row in &all {
        let want = f.files.iter().find(|x| x.file_id == row.file_id).unwrap();
        assert!(row.same_content(want), "{row:?} != {want:?}");
    }
}

async fn writes(db: &MetaDb) {
    let f = load(db).await;
    // Same rows again: every row identical, nothing written.
    let r = db
        .write_rows(&f.tables, &f.files, WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    assert!(r.committed);
    assert_eq!(r.counts(), (0, f.tables.len() + f.files.len(), 0, 0));

    // One new row and one conflicting row in insert-if-absent mode: all rolled back.
    let mut changed = f.files[3].clone();
    changed.row_count += 1;
    let mut fresh = f.files[4].clone();
    fresh.file_id = "9999999999".into();
    let r = db
        .write_rows(
            &[],
            &[fresh.clone(), changed.clone()],
            WriteMode::InsertIfAbsent,
        )
        .await
        .unwrap();
    assert!(!r.committed);
    assert_eq!(r.files[0].1, RowOutcome::Inserted);
    assert_eq!(
        r.files[1].1,
        RowOutcome::Conflict {
            columns: vec!["row_count"]
        }
    );
    assert_eq!(r.conflicts().len(), 1);
    assert!(r.conflicts()[0].contains(&changed.file_id));
    let ids = vec![fresh.table_id.clone()];
    let after = db.files(&ids, &[]).await.unwrap();
    assert!(
        !after.iter().any(|x| x.file_id == "9999999999"),
        "rolled back: nothing written"
    );

    // Replace mode overwrites the conflicting row and inserts the new one.
    let r = db
        .write_rows(&[], &[fresh.clone(), changed.clone()], WriteMode::Replace)
        .await
        .unwrap();
    assert!(r.committed);
    assert_eq!(
        r.files[1].1,
        RowOutcome::Replaced {
            columns: vec!["row_count"]
        }
    );
    let after = db.files(&ids, &[]).await.unwrap();
    assert!(after.iter().any(|x| x.file_id == "9999999999"));
    let row = after.iter().find(|x| x.file_id == changed.file_id).unwrap();
    assert_eq!(row.row_count, changed.row_count);
    assert_eq!(
        after
            .iter()
            .filter(|x| x.file_id == changed.file_id)
            .count(),
        1,
        "replaced, not duplicated"
    );

    // Tables: conflicting collection row.
    let mut coll = f.tables[0].clone();
    coll.index_file_size = 1;
    let r = db
        .write_rows(&[coll], &[], WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    assert_eq!(
        r.tables[0].1,
        RowOutcome::Conflict {
            columns: vec!["index_file_size"]
        }
    );

    // A batch larger than one chunk.
    let many: Vec<_> = (0..1200u32)
        .map(|i| common::file_row("1764000000000000300", 1000 + i, FileType::Raw, 1))
        .collect();
    let r = db
        .write_rows(&[], &many, WriteMode::InsertIfAbsent)
        .await
        .unwrap();
    assert_eq!(r.counts().0, 1200);
}

async fn unknown_enum(db: &MetaDb) {
    load(db).await;
    sqlx::query(
        "INSERT INTO TableFiles VALUES (NULL,'1764000000000000300','s',1,'f9',9,0,0,0,0,-1,0)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let ids = vec!["1764000000000000300".to_string()];
    let err = db.files(&ids, &[]).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::UnknownEnum { .. }), "{msg}");
    assert!(
        msg.starts_with("TableFiles row id ") && msg.ends_with(": unknown file_type value 9"),
        "{msg}"
    );
}

async fn missing_column(db: &MetaDb, create: &str) {
    sqlx::query(create).execute(db.pool()).await.unwrap();
    let err = db.check_schema().await.unwrap_err().to_string();
    assert!(
        err.contains("table Tables lacks Milvus column `flush_lsn`"),
        "{err}"
    );
}

/// Milvus's Tables DDL for a back end, without its last column (flush_lsn).
fn tables_without_flush_lsn(ddl: &str) -> String {
    let stmt = milvus_tier::meta::schema::statements(ddl)
        .into_iter()
        .find(|s| s.contains("EXISTS Tables "))
        .unwrap();
    let cut = stmt.rfind(",flush_lsn").unwrap();
    format!("{})", &stmt[..cut])
}

#[tokio::test]
async fn mariadb_metadata_layer() {
    common::init();
    let m = MariaDb::start();
    let db = MetaDb::connect(&m.database("q")).await.unwrap();
    schema_and_queries(&db).await;
    let db = MetaDb::connect(&m.database("w")).await.unwrap();
    writes(&db).await;
    let db = MetaDb::connect(&m.database("e")).await.unwrap();
    unknown_enum(&db).await;
    let db = MetaDb::connect(&m.database("bad")).await.unwrap();
    missing_column(
        &db,
        &tables_without_flush_lsn(milvus_tier::meta::schema::MYSQL_DDL),
    )
    .await;
    // The schema check compares types too, as Milvus does.
    let db = MetaDb::connect(&m.database("types")).await.unwrap();
    db.install_milvus_schema().await.unwrap();
    m.sql("ALTER TABLE types.TableFiles MODIFY date VARCHAR(10)");
    let err = db.check_schema().await.unwrap_err().to_string();
    assert!(
        err.contains("TableFiles column `date` has type varchar"),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_metadata_layer() {
    common::init();
    let dir = tempfile::tempdir().unwrap();
    let url = |n: &str| test_support::sqlite_url(dir.path(), n);
    schema_and_queries(&MetaDb::connect(&url("q.sqlite")).await.unwrap()).await;
    writes(&MetaDb::connect(&url("w.sqlite")).await.unwrap()).await;
    unknown_enum(&MetaDb::connect(&url("e.sqlite")).await.unwrap()).await;
    missing_column(
        &MetaDb::connect(&url("bad.sqlite")).await.unwrap(),
        &tables_without_flush_lsn(milvus_tier::meta::schema::SQLITE_DDL),
    )
    .await;
}

#[tokio::test]
async fn ddl_files_match_column_list() {
    // The DDL in sql/ and the column list the check uses describe the same schema.
    let dir = tempfile::tempdir().unwrap();
    let db = MetaDb::connect(&test_support::sqlite_url(dir.path(), "m.sqlite"))
        .await
        .unwrap();
    db.install_milvus_schema().await.unwrap();
    for (table, cols) in milvus_tier::meta::schema::MILVUS_TABLES {
        let have = db.columns(table).await.unwrap();
        let want: Vec<(String, String)> = cols
            .iter()
            .map(|c| (c.0.to_string(), c.2.to_string()))
            .collect();
        assert_eq!(have, want, "{table}");
    }
    let _ = fixture();
}

/// Two of milvus-tier's own connections to one SQLite metadata file (as two runs have)
/// writing at once: each write transaction waits for the other instead of failing with
/// "database is locked" (a deferred transaction that reads, then writes, cannot wait).
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_writers_wait_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let a = MetaDb::connect(&url).await.unwrap();
    load(&a).await;
    a.migrate_journal().await.unwrap();
    let b = MetaDb::connect(&url).await.unwrap();
    let (ms,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(
        ms as u128,
        milvus_tier::meta::SQLITE_BUSY_TIMEOUT.as_millis()
    );
    let owner = common::collection_row(COLLECTION, EngineType::Flat, 256 << 20);
    let run = |db: MetaDb, base: u32| {
        let owner = owner.clone();
        tokio::spawn(async move {
            let mut errors = Vec::new();
            for i in 0..40 {
                let part = common::partition_row(
                    &owner,
                    &format!("{}", 1_800_000_000_000_000_000u64 + u64::from(base + i)),
                    &format!("t{base}_{i}"),
                    TableState::Normal,
                );
                let file = common::file_row(&part.table_id, 5000 + base + i, FileType::Raw, 10);
                if let Err(e) = db
                    .write_rows(&[part], &[file], WriteMode::InsertIfAbsent)
                    .await
                {
                    errors.push(e.to_string());
                }
            }
            errors
        })
    };
    let (ea, eb) = tokio::join!(run(a.clone(), 0), run(b.clone(), 100));
    let errors: Vec<String> = ea.unwrap().into_iter().chain(eb.unwrap()).collect();
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        errors.first()
    );
    let ids: Vec<String> = (0..40)
        .chain(100..140)
        .map(|i| format!("{}", 1_800_000_000_000_000_000u64 + i))
        .collect();
    assert_eq!(a.files(&ids, &[]).await.unwrap().len(), 80);
}

/// A lease whose database is gone by the time it is released: the work's own result is
/// what the caller gets, never the failed release.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_lock_release_keeps_the_work_result() {
    use milvus_tier::lock::Lease;
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let db = MetaDb::connect(&url).await.unwrap();
    let ttl = std::time::Duration::from_secs(60);
    let lease = Lease::acquire(&db, "c/2026-01-01", "h:1:a", ttl)
        .await
        .unwrap()
        .unwrap();
    db.close().await;
    let r: Result<(), Error> = lease
        .release_after(Err(Error::Conflict(
            "publish of day 2026-01-01 failed".into(),
        )))
        .await;
    let e = r.unwrap_err().to_string();
    assert_eq!(e, "publish of day 2026-01-01 failed");
    let db = MetaDb::connect(&url).await.unwrap();
    let lease = Lease::acquire(&db, "c/2026-01-02", "h:1:b", ttl)
        .await
        .unwrap()
        .unwrap();
    db.close().await;
    assert_eq!(lease.release_after(Ok(7)).await.unwrap(), 7);
}

/// The server's count of connections that failed before they were usable.
fn aborted_connects(m: &MariaDb) -> u64 {
    let out = m.sql("SHOW GLOBAL STATUS LIKE 'Aborted_connects'");
    out.split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Aborted_connects: {out}"))
}

#[tokio::test]
async fn credentials_or_a_database_the_server_refuses_are_bad_input_tried_once() {
    common::init();
    let m = MariaDb::start();
    let good = m.database("creds");
    let wrong_password = good.replacen(
        &format!("tier:{}@", test_support::PASSWORD),
        "tier:not-the-password@",
        1,
    );
    assert_ne!(wrong_password, good);
    let unknown_db = good.replace("/creds", "/no_such_db");
    for (case, url) in [
        ("wrong password", &wrong_password),
        ("unknown database", &unknown_db),
    ] {
        let before = aborted_connects(&m);
        let err = MetaDb::connect(url).await.unwrap_err();
        let after = aborted_connects(&m);
        assert!(matches!(err, Error::MetaConnect { .. }), "{case}: {err}");
        assert_eq!(
            err.kind(),
            milvus_tier::error::ErrorKind::BadInput,
            "{case}: the server refused, retrying cannot help: {err}"
        );
        assert_eq!(after - before, 1, "{case}: attempts the server saw: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("127.0.0.1:{}", m.port())),
            "{case}: {text}"
        );
        assert!(!text.contains("not-the-password"), "{case}: {text}");
    }
    // The right credentials still connect.
    MetaDb::connect(&good).await.unwrap();
}
