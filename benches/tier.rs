//! The milvus-tier benchmark (run by `scripts/bench`, never by the tests).
//!
//! Generates a short-term day with `milvus-sim seed`, then measures each of milvus-tier's
//! data paths against a baseline measured in the same run on the same data (`cp -r`,
//! `aws s3 cp --recursive`, tuned `rclone copy`, the S3 server's own limit, the engine's own
//! log), several runs each, and writes a Markdown table with medians and ratios to
//! `benches/RESULTS.md`. One module per measured path, under `benches/tier/`.
//!
//! `tier copy-one SRC DST TABLE SEGMENT [--fsync]` is the copy of one segment folder, and
//! `tier backup-one TARGET FILE ENDPOINT` the backup upload of one file (hash, then one PUT
//! or a multipart upload), each in a process of its own, so that its peak RSS can be read
//! with `/usr/bin/time`; `tier s3-limit put|get ...` is the trivial S3 client of the server's
//! limit; `tier copy-tree SRC DST [--fsync]` prints the seconds of one whole-tree copy as
//! the stage (or, with `--fsync`, the publish) row measures it, to time or profile that copy
//! alone.

use std::path::{Path, PathBuf};

use measure::{dir_bytes, page_reporting_note, prefault_memory, reported_kib, rm, timed};
use migrate::bench_migrate;
use results::{Row, merge_row, render, row_line};
use s3::bench_backup;
use sim::{seed, sqlite};

#[path = "tier/baselines.rs"]
mod baselines;
#[path = "tier/copy.rs"]
mod copy;
#[path = "tier/measure.rs"]
mod measure;
#[path = "tier/migrate.rs"]
mod migrate;
#[path = "tier/plan.rs"]
mod plan;
#[path = "tier/rclone.rs"]
mod rclone;
#[path = "tier/results.rs"]
mod results;
#[path = "tier/rss.rs"]
mod rss;
#[path = "tier/s3.rs"]
mod s3;
#[path = "tier/s3limit.rs"]
mod s3limit;
#[path = "tier/sim.rs"]
mod sim;
#[path = "tier/status.rs"]
mod status;

const MB: u64 = 1_000_000;
const MIB: u64 = 1 << 20;
const DAY: &str = "2026-11-20";
const DIM: u64 = 128;

struct Args {
    size_mb: u64,
    segment_mb: u64,
    big_gb: u64,
    runs: usize,
    work: PathBuf,
    out: PathBuf,
    /// Run one measurement only (`status`) and update its row in `out`.
    only: Option<String>,
}

fn parse_args(argv: &[String]) -> Args {
    let mut a = Args {
        size_mb: 2048,
        segment_mb: 256,
        big_gb: 8,
        runs: 5,
        work: test_support::workspace_root().join("target/bench-data"),
        out: test_support::workspace_root().join("benches/RESULTS.md"),
        only: None,
    };
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .unwrap_or_else(|| panic!("{k} needs a value"))
                .clone()
        };
        match k.as_str() {
            "--size-mb" => a.size_mb = v().parse().expect("--size-mb"),
            "--segment-mb" => a.segment_mb = v().parse().expect("--segment-mb"),
            "--big-gb" => a.big_gb = v().parse().expect("--big-gb"),
            "--runs" => a.runs = v().parse().expect("--runs"),
            "--work" => a.work = v().into(),
            "--out" => a.out = v().into(),
            "--only" => a.only = Some(v()),
            // `cargo bench` passes --bench; `scripts/bench -- ARGS` passes the `--` on.
            "--bench" | "--" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn main() {
    milvus_tier::init_crypto();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Subcommands run in processes of their own; anything else is the benchmark's options.
    match argv.first().map(String::as_str) {
        Some("copy-one") => return copy::copy_one(&argv[1..]),
        Some("copy-tree") => return copy::copy_tree_cmd(&argv[1..]),
        Some("backup-one") => return s3::backup_one(&argv[1..]),
        Some("s3-limit") => return s3limit::s3_limit(&argv[1..]),
        _ => {}
    }
    let args = parse_args(&argv);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let w = &args.work;
    rm(w);
    std::fs::create_dir_all(w).expect("work dir");
    match args.only.as_deref() {
        None => {}
        Some("status") => {
            let row = status_row(w, args.runs).await;
            let line = row_line(&row);
            print!("{line}");
            let md = std::fs::read_to_string(&args.out).unwrap_or_default();
            std::fs::write(&args.out, merge_row(&md, &line)).expect("write results");
            println!("updated {}", args.out.display());
            return;
        }
        Some(other) => panic!("--only {other}: the only partial run is `status`"),
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let reported_before = reported_kib();
    let (touched, secs) = prefault_memory();
    println!("touched {} GB of free memory in {secs:.1}s", touched >> 30);
    notes.push(format!(
        "before measuring, {} GB of free memory were touched once ({secs:.1} s), so no measurement pays the VM's first-touch cost (while the kernel keeps those pages: see the note on free page reporting)",
        touched >> 30
    ));
    println!(
        "bench: day of {} MB in {} MB segments, {} runs, work dir {}",
        args.size_mb,
        args.segment_mb,
        args.runs,
        w.display()
    );

    // The day.
    let short = w.join("short");
    let short_meta = sqlite(w, "short.sqlite");
    let t = timed(|| seed(&short_meta, &short, args.size_mb, args.segment_mb));
    let day_bytes = dir_bytes(&short);
    println!("seeded {day_bytes} bytes in {t:.1}s");
    let gb = day_bytes as f64 / 1e9;

    // Stage copy, publish copy, growth, bandwidth cap.
    let (c_rows, growth) = copy::bench_copy(&args, w, &short, day_bytes).await;
    rows.extend(c_rows);

    // Whole migrate with the simulator at a fixed build speed, and completion latency.
    let (m_rows, m_notes) = bench_migrate(&args, w, &short_meta, &short, day_bytes).await;
    rows.extend(m_rows);
    notes.extend(m_notes);

    // Backup and restore against a local S3-compatible server: s3s-fs (file-backed), else
    // moto (in memory).
    let (b_rows, b_notes) = bench_backup(&args, w).await;
    rows.extend(b_rows);
    notes.extend(b_notes);

    // Peak RSS of copying and of backing up one big file, at 1 GB and at the big size.
    let (r_rows, r_notes) = rss::bench_rss(&args, w);
    rows.extend(r_rows);
    notes.extend(r_notes);

    // Dry-run plan of a day with 10 000 file rows in MariaDB.
    rows.push(plan::plan_row(w, args.runs).await);

    rows.push(status_row(w, args.runs).await);
    notes.extend(page_reporting_note(reported_before));

    let md = render(&args, gb, &rows, &growth, &notes);
    print!("{md}");
    std::fs::write(&args.out, md).expect("write results");
    println!("wrote {}", args.out.display());
}

/// `status` of 365 days of long-term metadata in MariaDB, against `status` of one day.
async fn status_row(w: &Path, runs: usize) -> Row {
    let (one, year) = status::bench(w, runs).await;
    Row {
        what: format!(
            "`status` of {} days, long-term metadata in MariaDB (whole process)",
            status::DAYS
        ),
        baseline: "`status` of 1 day (same database)".into(),
        base_s: Some(one),
        ours_s: year,
        figure: format!("{year:.2} s ({:.2}× one day)", year / one),
        target: "< 1 s".into(),
        met: year < 1.0,
    }
}
