//! The whole `migrate` of a day against the sum of its I/O and the engine's build time, and how late the engine's completion is noticed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::baselines::cp_r;
use crate::measure::{median, rm, sh, sync, timed};
use crate::results::Row;
use crate::sim::{Engine, fresh_long_term, migrate_cmd, sqlite, tier_config};
use crate::{Args, DAY};

/// RFC 3339 timestamp at the start of a log line (text or JSON).
pub(crate) fn log_time(line: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = if let Some(i) = line.find("\"timestamp\":\"") {
        &line[i + 13..]
    } else {
        line
    };
    let end = s.find([' ', '"'])?;
    chrono::DateTime::parse_from_rfc3339(&s[..end])
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub(crate) fn times_of(log: &str, needle: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(log_time)
        .collect()
}

pub(crate) async fn bench_migrate(
    args: &Args,
    w: &Path,
    short_meta: &str,
    short: &Path,
    day_bytes: u64,
) -> (Vec<Row>, Vec<String>) {
    // A fixed build speed for the simulator: merge and index at 400 MB/s.
    let speed = ["--merge-mb-per-s", "400", "--index-mb-per-s", "400"];
    let (mut wall, mut sums, mut late) = (Vec::new(), Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for run in 0..args.runs {
        fresh_long_term(w);
        let engine = Engine::start(
            &sqlite(w, "local.sqlite"),
            &w.join("local"),
            w.join(format!("engine-{run}.log")),
            &speed,
        );
        let cfg = tier_config(w, short_meta, short, &engine, "");
        let log = w.join(format!("migrate-{run}.log"));
        sync();
        let t = Instant::now();
        let o = migrate_cmd(
            &cfg,
            &["--log-format", "json", "migrate", "--date", DAY, "--json"],
        )
        .stderr(std::fs::File::create(&log).expect("log"))
        .output()
        .expect("migrate");
        let secs = t.elapsed().as_secs_f64();
        assert!(
            o.status.success(),
            "migrate failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        drop(engine);
        let elog = std::fs::read_to_string(w.join(format!("engine-{run}.log"))).unwrap_or_default();
        let tlog = std::fs::read_to_string(&log).unwrap_or_default();
        let merge_start = times_of(&elog, "merge start");
        let index_done = times_of(&elog, "index build done");
        let noticed = times_of(&tlog, "engine build complete");
        let (Some(first), Some(done), Some(seen)) =
            (merge_start.first(), index_done.last(), noticed.last())
        else {
            panic!("missing log lines: engine {elog}\nmigrate {tlog}");
        };
        let build_s = (*done - *first).num_milliseconds() as f64 / 1000.0;
        late.push((*seen - *done).num_milliseconds() as f64 / 1000.0);
        // Baseline parts: read the day once, write it to local storage, write the result
        // to long-term storage (cp -r of the same trees), plus the engine's build time.
        let read_s = timed(|| {
            sh(Command::new("sh").arg("-c").arg(format!(
                "find {} -type f -exec cat {{}} + > /dev/null",
                short.display()
            )));
        });
        let write_local = cp_r(&short.join("db"), &w.join("cp-local/db"));
        let write_long = cp_r(&w.join("long/db"), &w.join("cp-long/db"));
        rm(&w.join("cp-local"));
        rm(&w.join("cp-long"));
        sums.push(read_s + write_local + write_long + build_s);
        wall.push(secs);
        notes.push(format!(
            "migrate run {run}: {secs:.2} s; engine build {build_s:.2} s; read {read_s:.2} s, write local {write_local:.2} s, write long-term {write_long:.2} s"
        ));
    }
    let (w_m, s_m, late_m) = (median(wall), median(sums), median(late.clone()));
    let ratio = w_m / s_m;
    let rows = vec![
        Row {
            what: format!(
                "whole `migrate` of one day ({:.2} GB), simulator at 400 MB/s merge + index",
                day_bytes as f64 / 1e9
            ),
            baseline: "read once + write local + write long-term (`cp -r`) + engine build time"
                .into(),
            base_s: Some(s_m),
            ours_s: w_m,
            figure: format!("{ratio:.2}×"),
            target: "≤ 1.2×".into(),
            met: ratio <= 1.2,
        },
        Row {
            what: "engine completion noticed after the simulator's `index build done`".into(),
            baseline: "the simulator's log".into(),
            base_s: None,
            ours_s: late_m,
            figure: format!(
                "{late_m:.3} s late (max {:.3} s)",
                late.iter().cloned().fold(0.0, f64::max)
            ),
            target: "≤ 2 s".into(),
            met: late.iter().all(|l| *l <= 2.0),
        },
    ];
    (rows, notes)
}
