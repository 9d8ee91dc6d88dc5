//! The `milvus-tier` binary end to end: `meta show` and `config check` against separate
//! throwaway MariaDB servers and SQLite files, and every bad input the foundation names.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{COLLECTION, expected, fixture, load, write_config};
use milvus_tier::meta::{FileType, MetaDb};
use serde_json::Value;
use test_support::{MariaDb, PASSWORD};

fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MILVUS_TIER_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().copied());
    cmd.output().expect("run milvus-tier")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `mysql://tier@127.0.0.1:<port>/<db>`: the password comes from the environment.
fn no_password(url: &str) -> String {
    url.replace(&format!(":{PASSWORD}@"), "@")
}

fn password_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("MILVUS_TIER_SHORT_TERM__META_PASSWORD", PASSWORD),
        ("MILVUS_TIER_LONG_TERM__META_PASSWORD", PASSWORD),
        ("MILVUS_TIER_ENGINE__META_PASSWORD", PASSWORD),
    ]
}

fn check_day_json(json: &Value, f: &common::Fixture, day: &str, partitions: &[&str]) {
    assert_eq!(json["day"], day);
    assert_eq!(json["tag"], format!("day_{day}"));
    let parts = json["partitions"].as_array().unwrap();
    let got: Vec<&str> = parts
        .iter()
        .map(|p| p["table_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, partitions);
    let (mut tf, mut tr, mut tb) = (0, 0, 0);
    for p in parts {
        let id = p["table_id"].as_str().unwrap();
        for t in p["by_file_type"].as_array().unwrap() {
            let ft = FileType::from_label(t["file_type"].as_str().unwrap()).unwrap();
            let (files, rows, bytes) = expected(f, id, Some(ft));
            assert_eq!(
                (
                    t["files"].as_u64().unwrap(),
                    t["rows"].as_i64().unwrap(),
                    t["bytes"].as_i64().unwrap()
                ),
                (files, rows, bytes),
                "{id} {ft}"
            );
        }
        let (files, rows, bytes) = expected(f, id, None);
        assert_eq!(p["total"]["files"].as_u64().unwrap(), files);
        assert_eq!(p["total"]["rows"].as_i64().unwrap(), rows);
        assert_eq!(p["total"]["bytes"].as_i64().unwrap(), bytes);
        tf += files;
        tr += rows;
        tb += bytes;
    }
    assert_eq!(json["total"]["files"].as_u64().unwrap(), tf);
    assert_eq!(json["total"]["rows"].as_i64().unwrap(), tr);
    assert_eq!(json["total"]["bytes"].as_i64().unwrap(), tb);
}

fn meta_show_matches_fixture(config: &Path, env: &[(&str, &str)]) {
    let f = fixture();
    for tier in ["short-term", "long-term"] {
        let o = run(
            config,
            &[
                "meta",
                "show",
                "--tier",
                tier,
                "--date",
                "2026-11-24",
                "--json",
            ],
            env,
        );
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        let json: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["tier"], tier);
        check_day_json(
            &json,
            &f,
            "2026-11-24",
            &["1764000000000000100", "1764000000000000200"],
        );
        // Day one holds every file type.
        let types: Vec<&str> = json["partitions"][1]["by_file_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["file_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "NEW",
                "RAW",
                "TO_INDEX",
                "INDEX",
                "TO_DELETE",
                "NEW_MERGE",
                "NEW_INDEX",
                "BACKUP"
            ]
        );
        assert_eq!(json["partitions"][0]["state"], "TO_DELETE");
        assert_eq!(
            json["partitions"][1]["searchable_rows"],
            100 + 200 + 5000 + 6000
        );

        let o = run(
            config,
            &[
                "meta",
                "show",
                "--tier",
                tier,
                "--date",
                "2026-11-25",
                "--json",
            ],
            env,
        );
        let json: Value = serde_json::from_str(&text(&o).0).unwrap();
        check_day_json(&json, &f, "2026-11-25", &["1764000000000000300"]);
        assert_eq!(json["total"]["rows"], 4096 + 1000 + 7);
        assert_eq!(json["total"]["bytes"], (4096 + 1000 + 7) * 72);
    }
    let o = run(
        config,
        &[
            "meta",
            "show",
            "--tier",
            "short-term",
            "--date",
            "2026-11-25",
        ],
        env,
    );
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.contains("partition 1764000000000000300  tag day_2026-11-25  state NORMAL"),
        "{out}"
    );
    assert!(
        out.contains("total: 1 partitions, 3 files, 5103 rows, 358.80 KiB"),
        "{out}"
    );
}

#[tokio::test]
async fn meta_show_on_separate_mariadb_servers() {
    common::init();
    let (short, long, local) = (MariaDb::start(), MariaDb::start(), MariaDb::start());
    let (su, lu, cu) = (
        short.database("milvus"),
        long.database("milvus"),
        local.database("milvus"),
    );
    load(&MetaDb::connect(&su).await.unwrap()).await;
    load(&MetaDb::connect(&lu).await.unwrap()).await;
    MetaDb::connect(&cu)
        .await
        .unwrap()
        .install_milvus_schema()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("milvus-tier.toml");
    write_config(
        &cfg,
        &no_password(&su),
        &no_password(&lu),
        &no_password(&cu),
        dir.path(),
    );
    meta_show_matches_fixture(&cfg, &password_env());

    // config check: all green, secrets masked.
    let o = run(&cfg, &["config", "check"], &password_env());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "password leaked:\n{out}{err}"
    );
    assert!(
        out.contains(&format!(
            "meta_url = \"mysql://tier@127.0.0.1:{}/milvus\"",
            short.port()
        )),
        "{out}"
    );
    assert!(out.contains("meta_password = \"***\""), "{out}");
    assert!(
        out.contains("ok   short-term collection `vectors`: dimension 16, metric L2"),
        "{out}"
    );
    assert!(out.contains("ok   local Milvus 1.1.1 schema"), "{out}");
    assert!(out.contains("0 failed"), "{out}");

    // Stop long-term: config check fails on it, naming host and port, never the password.
    let long_port = long.port();
    drop(long);
    let o = run(&cfg, &["config", "check"], &password_env());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains(&format!("FAIL long-term metadata mysql://tier:***@127.0.0.1:{long_port}/milvus: cannot connect to metadata database 127.0.0.1:{long_port}")), "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    let o = run(
        &cfg,
        &[
            "meta",
            "show",
            "--tier",
            "long-term",
            "--date",
            "2026-11-24",
        ],
        &password_env(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains(&format!(
            "cannot connect to metadata database 127.0.0.1:{long_port}"
        )),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
}

#[tokio::test]
async fn meta_show_on_sqlite() {
    common::init();
    let dir = tempfile::tempdir().unwrap();
    let url = |n: &str| test_support::sqlite_url(dir.path(), n);
    load(&MetaDb::connect(&url("short.sqlite")).await.unwrap()).await;
    load(&MetaDb::connect(&url("long.sqlite")).await.unwrap()).await;
    MetaDb::connect(&url("local.sqlite"))
        .await
        .unwrap()
        .install_milvus_schema()
        .await
        .unwrap();
    let cfg = dir.path().join("milvus-tier.toml");
    let plain = |n: &str| format!("sqlite://{}", dir.path().join(n).display());
    write_config(
        &cfg,
        &plain("short.sqlite"),
        &plain("long.sqlite"),
        &plain("local.sqlite"),
        dir.path(),
    );
    meta_show_matches_fixture(&cfg, &[]);
    let o = run(&cfg, &["config", "check"], &[]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[tokio::test]
async fn bad_input_is_a_clear_one_line_error() {
    common::init();
    let dir = tempfile::tempdir().unwrap();
    let url = |n: &str| test_support::sqlite_url(dir.path(), n);
    let plain = |n: &str| format!("sqlite://{}", dir.path().join(n).display());
    load(&MetaDb::connect(&url("short.sqlite")).await.unwrap()).await;
    let broken = MetaDb::connect(&url("broken.sqlite")).await.unwrap();
    load(&broken).await;
    sqlx::query(
        "INSERT INTO TableFiles VALUES (NULL,'1764000000000000300','s',1,'f9',9,0,0,0,0,-1,0)",
    )
    .execute(broken.pool())
    .await
    .unwrap();
    let nocol = MetaDb::connect(&url("nocol.sqlite")).await.unwrap();
    sqlx::query(
        "CREATE TABLE Tables (id INTEGER PRIMARY KEY NOT NULL, table_id TEXT UNIQUE NOT NULL)",
    )
    .execute(nocol.pool())
    .await
    .unwrap();
    let cfg = dir.path().join("milvus-tier.toml");
    write_config(
        &cfg,
        &plain("short.sqlite"),
        &plain("broken.sqlite"),
        &plain("nocol.sqlite"),
        dir.path(),
    );
    let before = std::fs::read(dir.path().join("short.sqlite")).unwrap();

    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "meta",
                "show",
                "--tier",
                "short-term",
                "--date",
                "2026-11-24",
                "--collection",
                "nope",
            ],
            2,
            "error: collection `nope` not found in the short-term metadata",
        ),
        (
            vec![
                "meta",
                "show",
                "--tier",
                "short-term",
                "--date",
                "2026-01-01",
            ],
            2,
            "error: collection `vectors` has no partition tagged `day_2026-01-01` (day 2026-01-01) in the short-term metadata",
        ),
        (
            vec![
                "meta",
                "show",
                "--tier",
                "short-term",
                "--date",
                "2026/11/24",
            ],
            2,
            "error: invalid date `2026/11/24`: expected YYYY-MM-DD",
        ),
        (
            vec![
                "meta",
                "show",
                "--tier",
                "long-term",
                "--date",
                "2026-11-25",
            ],
            1,
            ": unknown file_type value 9",
        ),
        (
            vec!["meta", "show", "--tier", "local", "--date", "2026-11-25"],
            1,
            "table Tables lacks Milvus column `state`",
        ),
    ];
    for (args, code, msg) in cases {
        let o = run(&cfg, &args, &[]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
    }
    let o = run(
        &cfg,
        &[
            "meta",
            "show",
            "--tier",
            "long-term",
            "--date",
            "2026-11-25",
        ],
        &[],
    );
    assert!(text(&o).1.contains("TableFiles row id "), "names the row");

    // config check names the table and column at fault and exits non-zero.
    let o = run(&cfg, &["config", "check"], &[]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out.contains("FAIL local Milvus 1.1.1 schema: metadata database"),
        "{out}"
    );
    assert!(
        out.contains("table Tables lacks Milvus column `state`"),
        "{out}"
    );

    // A SQLite file that does not exist is reported, not created.
    let missing = dir.path().join("missing.sqlite");
    let o = run(
        &cfg,
        &["config", "check"],
        &[(
            "MILVUS_TIER_SHORT_TERM__META_URL",
            &format!("sqlite://{}", missing.display()),
        )],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).0.contains(&format!(
        "FAIL short-term metadata sqlite://{}",
        missing.display()
    )));
    assert!(!missing.exists(), "nothing written");
    assert_eq!(
        std::fs::read(dir.path().join("short.sqlite")).unwrap(),
        before,
        "read-only commands write nothing"
    );
}

#[test]
fn config_errors_name_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("milvus-tier.toml");
    let o = run(&cfg, &["config", "check"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o).1.trim(),
        format!(
            "error: configuration: config file {} not found",
            cfg.display()
        )
    );

    let base = |extra: &str| {
        write_config(
            &cfg,
            "sqlite:///x/s.sqlite",
            "sqlite:///x/l.sqlite",
            "sqlite:///x/c.sqlite",
            dir.path(),
        );
        let mut t = std::fs::read_to_string(&cfg).unwrap();
        t.push_str(extra);
        std::fs::write(&cfg, t).unwrap();
    };
    let cases = [
        ("bogus_key = 1\n", "bogus_key", ""),
        (
            "copy_concurrency = \"four\"\n",
            "limits.copy_concurrency",
            "",
        ),
        ("[backup]\ntarget = \"ftp://x\"\n", "backup.target", ""),
    ];
    for (extra, key, _) in cases {
        base(extra);
        let o = run(&cfg, &["config", "check"], &[]);
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(key), "names the key {key}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    base("");
    let o = run(
        &cfg,
        &["config", "check"],
        &[("MILVUS_TIER_LIMITS__COPY_CONCURRENCY", "zero")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("limits.copy_concurrency"));
    let o = run(
        &cfg,
        &["config", "check"],
        &[("MILVUS_TIER_TIMEZONE", "Mars/Olympus")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o)
            .1
            .contains("key `timezone`: `Mars/Olympus` is not an IANA timezone name")
    );

    // A value a setting's own check refuses says "configuration:" once.
    base("");
    let t = std::fs::read_to_string(&cfg).unwrap().replacen(
        &format!("partition_tag_format = \"{}\"", common::TAG_FORMAT),
        "partition_tag_format = \"day_%Y\"",
        1,
    );
    std::fs::write(&cfg, t).unwrap();
    let o = run(&cfg, &["config", "check"], &[]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("partition_tag_format"), "{err}");
    assert_eq!(err.matches("configuration:").count(), 1, "{err}");
    base("");

    // Secrets in the TOML are refused, naming the key and the env variable to use.
    let t = std::fs::read_to_string(&cfg).unwrap().replace(
        "meta_url = \"sqlite:///x/l.sqlite\"",
        "meta_url = \"mysql://u:hunter2@db:3306/m\"",
    );
    std::fs::write(&cfg, t).unwrap();
    let o = run(&cfg, &["config", "check"], &[]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("long_term.meta_url") && err.contains("MILVUS_TIER_LONG_TERM__META_PASSWORD"),
        "{err}"
    );
    assert!(!err.contains("hunter2"));
    let _ = COLLECTION;
}

/// Kubernetes sets `MILVUS_TIER_SERVICE_HOST`, `MILVUS_TIER_PORT`, … in every pod of a
/// namespace with a Service named `milvus-tier`: they name no section, so they are ignored
/// with a warning; a misspelt key of a real section is still an error.
#[test]
fn service_link_variables_are_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("milvus-tier.toml");
    write_config(
        &cfg,
        "sqlite:///x/s.sqlite",
        "sqlite:///x/l.sqlite",
        "sqlite:///x/c.sqlite",
        dir.path(),
    );
    let clean = run(&cfg, &["config", "check"], &[]);
    let links = [
        ("MILVUS_TIER_SERVICE_HOST", "10.0.0.7"),
        ("MILVUS_TIER_SERVICE_PORT", "8080"),
        ("MILVUS_TIER_PORT", "tcp://10.0.0.7:8080"),
        ("MILVUS_TIER_PORT_8080_TCP_ADDR", "10.0.0.7"),
    ];
    let o = run(&cfg, &["config", "check"], &links);
    let err = text(&o).1;
    assert_eq!(o.status.code(), clean.status.code(), "{err}");
    assert_ne!(o.status.code(), Some(2), "{err}");
    for (name, _) in links {
        assert!(
            err.contains(&format!("ignoring {name}:")),
            "warns about {name}: {err}"
        );
    }
    assert!(!err.contains("unknown field"), "{err}");

    let o = run(
        &cfg,
        &["config", "check"],
        &[("MILVUS_TIER_LIMITS__COPY_CONCURENCY", "4")],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("copy_concurency"), "{err}");
}

#[test]
fn example_config_parses() {
    // The shipped example is complete and valid (passwords come from the environment).
    let example = test_support::workspace_root().join("milvus-tier.example.toml");
    let config = milvus_tier::config::Config::load(&example).expect("example config loads");
    assert_eq!(config.timezone, "Asia/Seoul");
    assert_eq!(config.engine.build_index_threshold, 4096);
}

#[test]
fn names_and_tag_formats_milvus_would_not_take_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("milvus-tier.toml");
    write_config(
        &cfg,
        "sqlite:///x/s.sqlite",
        "sqlite:///x/l.sqlite",
        "sqlite:///x/c.sqlite",
        dir.path(),
    );
    // A tag format that does not name one day (weekday, year, month): refused at load.
    let o = run(
        &cfg,
        &["config", "check"],
        &[("MILVUS_TIER_SHORT_TERM__PARTITION_TAG_FORMAT", "%a_%Y_%m")],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`%a_%Y_%m`"), "{err}");

    // Collection names Milvus's ValidateCollectionName refuses: before any path or URL.
    let long = "c".repeat(256);
    for (key, name) in [
        ("MILVUS_TIER_LONG_TERM__COLLECTION", "../outside"),
        ("MILVUS_TIER_SHORT_TERM__COLLECTION", "a/b"),
        ("MILVUS_TIER_LONG_TERM__COLLECTION", "it's"),
        ("MILVUS_TIER_SHORT_TERM__COLLECTION", "1st"),
        ("MILVUS_TIER_LONG_TERM__COLLECTION", long.as_str()),
    ] {
        let o = run(&cfg, &["config", "check"], &[(key, name)]);
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(&format!("`{name}`")), "{name}: {err}");
    }
    for name in ["../outside", "a/b", "x y"] {
        let o = run(
            &cfg,
            &["restore", "--date", "2026-11-20", "--to-collection", name],
            &[],
        );
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("--to-collection `{name}`")),
            "{name}: {err}"
        );
    }
}

/// A config on SQLite files that do not exist (nothing to connect to).
fn unreachable_config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("milvus-tier.toml");
    write_config(
        &cfg,
        "sqlite:///nonexistent/s.sqlite",
        "sqlite:///nonexistent/l.sqlite",
        "sqlite:///nonexistent/c.sqlite",
        dir,
    );
    cfg
}

#[test]
fn a_report_file_that_cannot_be_written_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = unreachable_config(dir.path());
    let missing = dir.path().join("no-such-folder/report.json");
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    for target in [&missing, &folder] {
        let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_milvus-tier"));
        let o = cmd
            .arg("--config")
            .arg(&cfg)
            .args(["migrate", "--date", "2026-01-01", "--report"])
            .arg(target)
            .env_remove("MILVUS_TIER_CONFIG")
            .output()
            .unwrap();
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&target.display().to_string()), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(before.len(), after.len(), "nothing written");
    }
}

#[test]
fn a_day_that_ended_less_than_settle_minutes_ago_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("milvus-tier.toml");
    write_config(
        &cfg,
        "sqlite:///x/s.sqlite",
        "sqlite:///x/l.sqlite",
        "sqlite:///x/c.sqlite",
        dir.path(),
    );
    // The window reaches one hour past now: 2026-11-20 ended inside it. Refused before any
    // database is opened.
    let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let settle = (chrono::Utc::now() - end).num_minutes() + 60;
    let settle = settle.to_string();
    let o = run(
        &cfg,
        &["migrate", "--date", "2026-11-20", "--json"],
        &[
            ("MILVUS_TIER_LIMITS__SETTLE_MINUTES", &settle),
            ("MILVUS_TIER_TIMEZONE", "UTC"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(6), "{err}{out}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["days"][0]["outcome"], "not_ready", "{json:#}");
    let msg = json["days"][0]["error"].as_str().unwrap().to_string();
    assert!(
        msg.contains("2026-11-20") && msg.contains("limits.settle_minutes"),
        "{msg}"
    );
}

#[test]
fn a_closed_stdout_ends_the_output_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = unreachable_config(dir.path());
    let normal = run(&cfg, &["config", "check"], &[]);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_milvus-tier"))
        .arg("--config")
        .arg(&cfg)
        .args(["config", "check"])
        .env_remove("MILVUS_TIER_CONFIG")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), normal.status.code(), "{err}");
}
