//! `milvus-tier partitions rotate` on a short-term cluster served by `milvus-sim`: creates
//! the coming days, drops only days confirmed in long-term, keeps the others and says why.

use crate::common;

use common::cluster::*;
use common::ops::{block_text, slack_bot_env};
use milvus_tier::day::Day;
use milvus_tier::meta::{MetaDb, TableState};
use test_support::SlackServer;

async fn states(short: &MetaDb) -> Vec<(String, TableState)> {
    short
        .partitions(COLL_SHORT)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition_tag, p.state))
        .collect()
}

fn state_of(all: &[(String, TableState)], tag: &str) -> Option<TableState> {
    all.iter().find(|(t, _)| t == tag).map(|(_, s)| *s)
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_creates_ahead_drops_confirmed_days_and_keeps_unconfirmed_ones() {
    let c = cluster();
    // Day 2026-11-20 reaches long-term; 2026-11-21 does not.
    let (o, json) = c.migrate(&["--date", "2026-11-20"]);
    assert!(o.status.success(), "{json:#}");
    let (o, json) = c.run("verify", &["--date", "2026-11-20", "--deep"], &[]);
    assert_eq!(o.status.code(), Some(0), "{json:#}");
    let short_node = Sim::start(&c.short_url, &c.storage("short"), "rw", &[]);
    let slack = SlackServer::start();
    let mut env = slack_bot_env(&slack.api_url());
    env.push(("MILVUS_TIER_SHORT_TERM__HTTP_URL", short_node.url.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let short = MetaDb::connect(&c.short_url).await.unwrap();
    let today = Day(chrono::Utc::now().date_naive());
    let ahead: Vec<String> = [0, 1, 2]
        .iter()
        .map(|n| format!("day_{}", today.0 + chrono::Days::new(*n)))
        .collect();

    // Dry run: lists, changes nothing.
    let before = states(&short).await;
    let (o, json) = c.run("partitions", &["rotate", "--dry-run"], &env);
    assert_eq!(o.status.code(), Some(0), "{json:#}");
    assert_eq!(json["created"].as_array().unwrap().len(), 3, "{json:#}");
    assert_eq!(json["dropped"][0], "day_2026-11-20");
    assert_eq!(states(&short).await, before);

    // Long-term disagrees on day 20's rows: kept, with the counts in the reason.
    let long_db = &c.servers[1];
    let id =
        long_db.sql("SELECT id FROM milvus.TableFiles WHERE file_type = 3 ORDER BY id LIMIT 1");
    let id = id.trim();
    assert!(!id.is_empty(), "long-term holds an INDEX file");
    long_db.sql(&format!(
        "UPDATE milvus.TableFiles SET row_count = row_count + 1 WHERE id = {id}"
    ));
    let (o, json) = c.run("partitions", &["rotate"], &env);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    let kept = json["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 2, "{json:#}");
    assert_eq!(kept[0]["tag"], "day_2026-11-20");
    assert!(
        kept[0]["reason"]
            .as_str()
            .unwrap()
            .contains("short-term has 6000 rows, long-term 6001"),
        "{json:#}"
    );
    assert_eq!(kept[1]["tag"], "day_2026-11-21");
    assert!(
        kept[1]["reason"].as_str().unwrap().contains("publish done"),
        "{json:#}"
    );
    assert_eq!(json["created"], serde_json::json!(ahead));
    let now = states(&short).await;
    for t in &ahead {
        assert_eq!(state_of(&now, t), Some(TableState::Normal), "{t} created");
    }
    assert_eq!(state_of(&now, "day_2026-11-20"), Some(TableState::Normal));
    assert_eq!(state_of(&now, "day_2026-11-21"), Some(TableState::Normal));
    let reqs = slack.requests();
    assert_eq!(reqs.len(), 1, "failure notified");
    let text = block_text(&reqs[0].body);
    assert!(
        text.contains("PARTITIONS KEPT") && text.contains("day_2026-11-21: journal"),
        "{text}"
    );

    // Rows fixed, but the day's index file is gone from long-term storage: the journal and
    // the counts agree, verify does not, so the day is kept.
    long_db.sql(&format!(
        "UPDATE milvus.TableFiles SET row_count = row_count - 1 WHERE id = {id}"
    ));
    let loc = long_db.sql(&format!(
        "SELECT table_id, segment_id, file_id FROM milvus.TableFiles WHERE id = {id}"
    ));
    let loc: Vec<&str> = loc.trim().split('\t').collect();
    let file = c
        .storage("long")
        .join("db/tables")
        .join(loc[0])
        .join(loc[1])
        .join(loc[2]);
    let hidden = file.with_extension("away");
    std::fs::rename(&file, &hidden).unwrap();
    let (o, json) = c.run("partitions", &["rotate"], &env);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert_eq!(json["kept"][0]["tag"], "day_2026-11-20", "{json:#}");
    let reason = json["kept"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("missing_file") && reason.contains(loc[2]),
        "{json:#}"
    );
    assert_eq!(
        state_of(&states(&short).await, "day_2026-11-20"),
        Some(TableState::Normal)
    );

    // Long-term whole again, but with a flipped byte (same size) that only a deep check
    // sees: a plain verify passes, and it is the last verify recorded, so the day is kept.
    std::fs::rename(&hidden, &file).unwrap();
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    std::fs::write(&file, &bad).unwrap();
    let (o, json) = c.run("verify", &["--date", "2026-11-20"], &[]);
    assert_eq!(o.status.code(), Some(0), "{json:#}");
    let (o, json) = c.run("partitions", &["rotate"], &env);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert_eq!(json["kept"][0]["tag"], "day_2026-11-20", "{json:#}");
    assert!(
        json["kept"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no `verify --deep`"),
        "{json:#}"
    );
    let (o, json) = c.run("verify", &["--date", "2026-11-20", "--deep"], &[]);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    let (o, json) = c.run("partitions", &["rotate"], &env);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert_eq!(json["kept"][0]["tag"], "day_2026-11-20", "{json:#}");
    assert!(
        json["kept"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("found 1 problem"),
        "{json:#}"
    );

    // Long-term whole and a deep verify passed: day 20 is dropped, 21 still kept; nothing
    // more to create.
    std::fs::write(&file, &good).unwrap();
    let (o, json) = c.run("verify", &["--date", "2026-11-20", "--deep"], &[]);
    assert_eq!(o.status.code(), Some(0), "{json:#}");
    let (o, json) = c.run("partitions", &["rotate"], &env);
    assert_eq!(o.status.code(), Some(5), "{json:#}");
    assert_eq!(json["dropped"], serde_json::json!(["day_2026-11-20"]));
    assert_eq!(json["created"], serde_json::json!([]));
    assert_eq!(json["kept"][0]["tag"], "day_2026-11-21");
    let now = states(&short).await;
    // Dropped: marked TO_DELETE, and removed by the engine's next TTL pass (Milvus 1.1.1
    // deletes state=1 Tables rows at once), so either may be seen here.
    let day20 = state_of(&now, "day_2026-11-20");
    assert!(
        matches!(day20, None | Some(TableState::ToDelete)),
        "day_2026-11-20 still {day20:?} after the drop"
    );
    assert_eq!(state_of(&now, "day_2026-11-21"), Some(TableState::Normal));
    // Today and the days ahead are listed as retained, never dropped.
    let retained: Vec<&str> = json["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for t in &ahead {
        assert!(retained.contains(&t.as_str()), "{json:#}");
    }
}

#[test]
fn rotate_needs_the_short_term_http_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::ops::ops_config(dir.path(), "http://127.0.0.1:9", "");
    let o = common::ops::tier(&config, &["partitions", "rotate"], &[]);
    let (_, err) = common::ops::texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("short_term.http_url"), "{err}");
}
