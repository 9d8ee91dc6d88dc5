//! `milvus-tier status`: each day's phase from both tiers, the journal, the backup and the
//! last verify, read in a fixed number of queries; exit 5 when a day is behind.

use crate::common;

use common::cluster::*;
use serde_json::Value;

fn day<'a>(json: &'a Value, d: &str) -> &'a Value {
    json["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["day"] == d)
        .unwrap_or_else(|| panic!("day {d} in {json:#}"))
}

fn status(c: &Cluster, args: &[&str]) -> (std::process::Output, Value) {
    c.run("status", args, &[])
}

const RANGE: [&str; 4] = ["--from", "2026-11-19", "--to", "2026-11-22"];

#[test]
fn status_follows_days_through_their_phases() {
    let mut c = cluster();
    let long = &c.servers[1];

    // Nothing migrated yet: the long-term database has no journal; status reads it as empty
    // and creates nothing.
    let (o, json) = status(&c, &RANGE);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{json:#} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(day(&json, "2026-11-19")["phase"], "absent");
    assert_eq!(day(&json, "2026-11-20")["phase"], "short_term_only");
    assert_eq!(day(&json, "2026-11-20")["short_term"]["rows"], 6000);
    assert_eq!(day(&json, "2026-11-20")["behind"], true);
    assert_eq!(day(&json, "2026-11-19")["behind"], false);
    assert_eq!(json["oldest_behind"], "2026-11-20");
    assert_eq!(
        json["behind"],
        serde_json::json!(["2026-11-20", "2026-11-21"])
    );
    assert_eq!(
        long.sql(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'milvus' AND table_name LIKE 'milvus_tier%'"
        )
        .trim(),
        "0",
        "status created no table"
    );
    // Nor does verify, a read-only check: the day is not in long-term, exit 5.
    let (o, v) = c.run("verify", &["--date", "2026-11-20"], &[]);
    assert_eq!(o.status.code(), Some(5), "{v:#}");
    assert_eq!(v["days"][0]["findings"][0]["kind"], "no_rows", "{v:#}");
    assert_eq!(
        long.sql(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'milvus' AND table_name LIKE 'milvus_tier%'"
        )
        .trim(),
        "0",
        "verify created no table"
    );
    let queries = json["queries"].as_u64().unwrap();
    assert_eq!(queries, 3, "{json:#}");

    // Day 20 migrated with a backup to a folder: backed up; day 21 still behind.
    let bak = c.dir.path().join("bak");
    std::fs::create_dir(&bak).unwrap();
    c.set_backup(&format!("target = \"file://{}\"", bak.display()));
    let (o, m) = c.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{m:#}");
    let (o, json) = status(&c, &RANGE);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    let d20 = day(&json, "2026-11-20");
    assert_eq!(d20["phase"], "backed_up", "{json:#}");
    assert_eq!(d20["behind"], false);
    assert_eq!(d20["long_term"]["rows"], 6000);
    assert_eq!(d20["long_term"]["partitions"], 1);
    assert!(
        d20["long_term"]["index_files"].as_u64().unwrap() >= 1,
        "{d20:#}"
    );
    assert_eq!(d20["last_run"]["outcome"], "done");
    assert_eq!(d20["last_run"]["step"], "backup");
    assert_eq!(d20["backup"]["manifest"], true);
    assert!(d20["backup"]["bytes"].as_i64().unwrap() > 0);
    assert_eq!(json["oldest_behind"], "2026-11-21");
    assert_eq!(json["last_published"], "2026-11-20");
    // The same figures as Prometheus gauges.
    let mut cmd = c.command("status");
    cmd.args(RANGE).arg("--metrics");
    let o = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(5), "{text}");
    for line in [
        "# TYPE milvus_tier_days_behind gauge",
        "milvus_tier_days_behind{collection=\"archive\"} 1",
        // 2026-11-21T00:00:00Z and 2026-11-20T00:00:00Z
        "milvus_tier_oldest_behind_day_timestamp_seconds{collection=\"archive\"} 1795219200",
        "milvus_tier_last_published_day_timestamp_seconds{collection=\"archive\"} 1795132800",
        "milvus_tier_days{collection=\"archive\",phase=\"backed_up\"} 1",
        "milvus_tier_days{collection=\"archive\",phase=\"absent\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} in\n{text}"
        );
    }
    let bytes = d20["backup"]["bytes"].as_i64().unwrap();
    assert!(
        text.contains(&format!(
            "milvus_tier_backup_bytes{{collection=\"archive\"}} {bytes}"
        )),
        "{text}"
    );

    // A clean verify makes it verified; dropping its short-term partition, rotated.
    let (o, v) = c.run("verify", &["--date", "2026-11-20"], &[]);
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    let (_, json) = status(&c, &RANGE);
    let d20 = day(&json, "2026-11-20");
    assert_eq!(d20["phase"], "verified", "{json:#}");
    assert_eq!(d20["verify"]["findings"], 0);
    assert_eq!(json["last_verified"], "2026-11-20");
    c.servers[0].sql("UPDATE milvus.Tables SET state = 1 WHERE partition_tag = 'day_2026-11-20'");
    let (_, json) = status(&c, &RANGE);
    assert_eq!(day(&json, "2026-11-20")["phase"], "rotated", "{json:#}");
    assert_eq!(day(&json, "2026-11-20")["short_term"]["dropped"], true);

    // Day 21 migrated: nothing behind, exit 0; the text form has one line per day.
    let (o, m) = c.migrate(&["--date", "2026-11-21"]);
    assert!(o.status.success(), "{m:#}");
    let mut cmd = c.command("status");
    cmd.args(RANGE);
    let o = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("2026-11-20  rotated"), "{text}");
    assert!(text.contains("2026-11-21  backed up"), "{text}");
    assert!(text.contains("no day behind"), "{text}");

    // A failed step shows as failed, names the step, and the day is behind again.
    long.sql(
        "UPDATE milvus.milvus_tier_journal SET state = 'failed', detail = '{\"error\":\"upload refused\"}' WHERE day = '2026-11-21' AND step = 'backup'",
    );
    let (o, json) = status(&c, &RANGE);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    let d21 = day(&json, "2026-11-21");
    assert_eq!(d21["phase"], "failed", "{json:#}");
    assert_eq!(d21["last_run"]["failed_step"], "backup");
    assert_eq!(d21["last_run"]["error"], "upload refused");

    // A year of days costs the same number of queries as four.
    let (_, year) = status(&c, &["--from", "2025-11-22", "--to", "2026-11-21"]);
    assert_eq!(year["days"].as_array().unwrap().len(), 365);
    assert_eq!(
        year["queries"].as_u64().unwrap(),
        queries,
        "{:#}",
        year["queries"]
    );

    // Long-term metadata gone: an error naming it, not an empty journal.
    c.servers[1].kill();
    let (o, _) = status(&c, &RANGE);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[test]
fn status_refuses_a_reversed_range() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::ops::ops_config(dir.path(), "http://127.0.0.1:9", "");
    let o = common::ops::tier(
        &config,
        &["status", "--from", "2026-11-22", "--to", "2026-11-20"],
        &[],
    );
    let (_, err) = common::ops::texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("2026-11-22..2026-11-20"), "{err}");
}
