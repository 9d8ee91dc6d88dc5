//! The milvus-tier benchmark (run by `scripts/bench`, never by the tests).
//!
//! Generates a short-term day with `milvus-sim seed`, then measures each of milvus-tier's
//! data paths against a baseline measured in the same run on the same data (`cp -r`,
//! `aws s3 cp --recursive`, the engine's own log), several runs each, and writes a
//! Markdown table with medians and ratios to `benches/RESULTS.md`.
//!
//! `tier copy-one SRC DST TABLE SEGMENT [--fsync]` is the copy of one segment folder, and
//! `tier backup-one TARGET FILE ENDPOINT` the backup upload of one file (hash, then one PUT
//! or a multipart upload), each in a process of its own, so that its peak RSS can be read
//! with `/usr/bin/time`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use milvus_tier::meta::{
    EngineType, FileRow, FileType, MetaDb, MetricType, MilvusDate, TableRow, TableState, WriteMode,
};
use milvus_tier::segments::{self, CopyOptions, Existing, SegmentRef};
use test_support::{MariaDb, Moto, free_port, workspace_bin};

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
    if argv.first().map(String::as_str) == Some("copy-one") {
        return copy_one(&argv[1..]);
    }
    if argv.first().map(String::as_str) == Some("backup-one") {
        return backup_one(&argv[1..]);
    }
    let args = parse_args(&argv);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(args));
}

/// One measured row of the results table.
struct Row {
    what: String,
    baseline: String,
    base_s: Option<f64>,
    ours_s: f64,
    /// Figure shown: ratio or absolute.
    figure: String,
    target: String,
    met: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn timed(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// CPU seconds (user + system) used so far by the finished children of this process.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let ru = unsafe {
        let mut ru = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// CPU seconds (user + system) used so far by the running process `pid` (/proc, in clock
/// ticks of 1/100 s).
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    f.iter().sum::<f64>() / 100.0
}

fn sh(cmd: &mut Command) -> String {
    let o = cmd.stderr(Stdio::inherit()).output().expect("spawn");
    assert!(o.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Write back dirty pages, so one measurement does not pay for the previous one's writes.
/// Before a measurement: write back dirty pages, so it does not pay for the previous one's
/// writes.
fn sync() {
    write_back();
}

/// Read every file under `p` once, so a measurement reading it starts from the page cache
/// whatever ran before it.
fn warm(p: &Path) {
    sh(Command::new("sh").arg("-c").arg(format!(
        "find '{}' -type f -exec cat {{}} + > /dev/null",
        p.display()
    )));
}

/// `sync`: write every dirty page back.
fn write_back() {
    sh(&mut Command::new("sync"));
}

/// Touch `bytes` of fresh anonymous memory, a byte per page, then free it.
fn touch(bytes: u64) {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut done = 0;
    while done < bytes {
        let len = (1usize << 30).min((bytes - done) as usize);
        let mut c = vec![0u8; len];
        for b in c.iter_mut().step_by(4096) {
            *b = 1;
        }
        std::hint::black_box(&c);
        chunks.push(c);
        done += len as u64;
    }
}

fn rm(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

/// Seconds of `cp -r src dst` (input warm, previous writes on disk).
fn cp_r(src: &Path, dst: &Path) -> f64 {
    cp_r_then(src, dst, false)
}

/// Seconds of `cp -r src dst` then `sync`: as durable as publish.
fn cp_r_sync(src: &Path, dst: &Path) -> f64 {
    cp_r_then(src, dst, true)
}

fn cp_r_then(src: &Path, dst: &Path, durable: bool) -> f64 {
    rm(dst);
    std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
    sync();
    warm(src);
    timed(|| {
        sh(Command::new("cp").arg("-r").arg(src).arg(dst));
        if durable {
            write_back();
        }
    })
}

/// Seconds to write `bytes` of zeros to a new file and sync it (`dd conv=fsync`): the
/// disk's durable write speed, which bounds any copy that must reach the disk.
fn dd_fsync(dst: &Path, bytes: u64) -> f64 {
    rm(dst);
    sync();
    let t = timed(|| {
        sh(Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", dst.display()))
            .args(["bs=8M", &format!("count={}", bytes.div_ceil(8 << 20))])
            .args(["conv=fsync", "status=none"]));
    });
    rm(dst);
    t
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// Every segment folder under `<root>/db/tables`.
fn segments_under(root: &Path) -> Vec<SegmentRef> {
    let mut out = Vec::new();
    let tables = root.join("db/tables");
    for t in std::fs::read_dir(&tables).expect("tables") {
        let t = t.expect("entry");
        for s in std::fs::read_dir(t.path()).expect("segments") {
            let s = s.expect("entry");
            if s.path().is_dir() {
                out.push(SegmentRef::new(
                    t.file_name().to_string_lossy(),
                    s.file_name().to_string_lossy(),
                ));
            }
        }
    }
    out
}

async fn copy_tree(src: &Path, dst: &Path, fsync: bool, cap: Option<u64>) -> f64 {
    rm(dst);
    sync();
    warm(src);
    let segs = segments_under(src);
    let opts = CopyOptions {
        concurrency: 4,
        bandwidth_bytes_per_s: cap,
        include: None,
        existing: if fsync {
            Existing::Verify
        } else {
            Existing::Replace
        },
        fsync,
        progress: None,
        prehashed: None,
    };
    let t = Instant::now();
    segments::copy_segments(src, dst, &segs, &opts)
        .await
        .expect("copy");
    t.elapsed().as_secs_f64()
}

fn seed(meta: &str, storage: &Path, size_mb: u64, segment_mb: u64) {
    rm(storage);
    std::fs::create_dir_all(storage).expect("mkdir");
    let row_bytes = DIM * 4 + 8;
    let rows = size_mb * MIB / row_bytes;
    let seg_rows = (segment_mb * MIB / row_bytes).max(1);
    sh(Command::new(workspace_bin("milvus-sim"))
        .args(["seed", "--meta", meta, "--storage"])
        .arg(storage)
        .args(["--collection", "live", "--days", "1", "--first-day", DAY])
        .args(["--rows-per-day", &rows.to_string()])
        .args(["--segment-rows", &seg_rows.to_string()])
        .args(["--dim", &DIM.to_string(), "--index-file-size", "256"])
        .env("MILVUS_SIM_LOG", "warn"));
}

fn sqlite(dir: &Path, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(name).display())
}

/// Touch most of the free memory once, then free it. Virtual machines that back guest
/// memory lazily (Firecracker and the like) charge a host fault on the first use of each
/// page (seen here: 2 GB written in 4.6 s the first time, 0.34 s the second); without this
/// the first measurements pay it. Pages freed later may still go back to the host (free
/// page reporting), which is why every figure is a median of several runs. Returns the
/// bytes touched and the seconds it took.
fn prefault_memory() -> (u64, f64) {
    let avail_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let total = (avail_kb * 1024).saturating_sub(2 << 30).min(64 << 30);
    let t = Instant::now();
    touch(total);
    (total, t.elapsed().as_secs_f64())
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
    let (touched, secs) = prefault_memory();
    println!("touched {} GB of free memory in {secs:.1}s", touched >> 30);
    notes.push(format!(
        "before measuring, {} GB of free memory were touched once ({secs:.1} s), so no measurement pays the VM's first-touch cost",
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

    // Stage copy (checksummed, no fsync) vs cp -r, both warm.
    let (mut base, mut ours) = (Vec::new(), Vec::new());
    cp_r(&short.join("db"), &w.join("warm/db"));
    for _ in 0..args.runs {
        base.push(cp_r(&short.join("db"), &w.join("cp/db")));
        ours.push(copy_tree(&short, &w.join("stage"), false, None).await);
    }
    rm(&w.join("cp"));
    rm(&w.join("warm"));
    rm(&w.join("stage"));
    rows.push(throughput_row(
        "stage copy of a day's segment folders, BLAKE3 while copying",
        "`cp -r`",
        median(base),
        median(ours),
        0.95,
    ));

    // Publish copy (temp + fsync + rename, verified) vs cp -r, and vs a durable cp -r
    // (followed by sync, which is what publish guarantees before its rows commit).
    let (mut base, mut base_sync, mut disk, mut ours) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        base.push(cp_r(&short.join("db"), &w.join("cp/db")));
        base_sync.push(cp_r_sync(&short.join("db"), &w.join("cp/db")));
        disk.push(dd_fsync(&w.join("dd"), day_bytes));
        ours.push(copy_tree(&short, &w.join("publish"), true, None).await);
    }
    rm(&w.join("cp"));
    rm(&w.join("publish"));
    let ours_m = median(ours);
    rows.push(throughput_row(
        "publish copy to long-term storage (temp name, fsync, rename)",
        "`cp -r`",
        median(base),
        ours_m,
        0.9,
    ));
    rows.push(throughput_row(
        "publish copy to long-term storage (same runs)",
        "`cp -r` then `sync` (equally durable)",
        median(base_sync),
        ours_m,
        0.9,
    ));
    rows.push(throughput_row(
        "publish copy to long-term storage (same runs)",
        "the disk: `dd conv=fsync` of as many bytes",
        median(disk),
        ours_m,
        0.9,
    ));

    // Growth: stage copy at 1x, 2x, 4x of a quarter day.
    let mut growth = Vec::new();
    for k in [1u64, 2, 4] {
        let size = (args.size_mb / 4 * k).max(16);
        let src = w.join(format!("growth{k}"));
        seed(
            &sqlite(w, &format!("growth{k}.sqlite")),
            &src,
            size,
            args.segment_mb,
        );
        let bytes = dir_bytes(&src);
        // Warm-up (untimed): every size starts from the page cache.
        copy_tree(&src, &w.join("growth-dst"), false, None).await;
        let mut v = Vec::new();
        for _ in 0..args.runs {
            v.push(copy_tree(&src, &w.join("growth-dst"), false, None).await);
        }
        let s = median(v);
        growth.push((k, bytes, s));
        rm(&src);
        rm(&w.join("growth-dst"));
    }

    // Bandwidth cap.
    let cap = 100 * MB;
    let mut v = Vec::new();
    let capped_src = w.join("capped");
    seed(
        &sqlite(w, "capped.sqlite"),
        &capped_src,
        (args.size_mb / 8).max(64),
        args.segment_mb,
    );
    let capped_bytes = dir_bytes(&capped_src);
    for _ in 0..args.runs {
        v.push(copy_tree(&capped_src, &w.join("capped-dst"), false, Some(cap)).await);
    }
    let rate = capped_bytes as f64 / median(v);
    let off = (rate / cap as f64 - 1.0).abs();
    rows.push(Row {
        what: "bandwidth cap 100 MB/s honoured (stage copy)".into(),
        baseline: "the cap".into(),
        base_s: None,
        ours_s: capped_bytes as f64 / rate,
        figure: format!(
            "{:.1} MB/s ({:+.1} %)",
            rate / 1e6,
            (rate / cap as f64 - 1.0) * 100.0
        ),
        target: "within 10 %".into(),
        met: off <= 0.10,
    });
    rm(&capped_src);
    rm(&w.join("capped-dst"));

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
    let s3s = S3sFs::start(w);
    if s3s.is_none() {
        notes.push(
            "backup RSS rows skipped: no s3s-fs (scripts/bench installs it into target/bench-tools)"
                .into(),
        );
    }
    for g in [1, args.big_gb] {
        let file = big_file(w, g);
        let (kb, secs) = rss_of(&[
            "copy-one",
            &file.root.display().to_string(),
            &w.join("big-dst").display().to_string(),
            "t_big",
            "1",
            "--fsync",
        ]);
        rm(&w.join("big-dst"));
        rows.push(rss_row(
            &format!("peak RSS, copy of one {g} GB file (publish options)"),
            kb,
            secs,
        ));
        if let Some(s3s) = &s3s {
            let (kb, secs) = rss_of(&[
                "backup-one",
                "s3://bench/rss",
                &file.path.display().to_string(),
                &s3s.endpoint,
            ]);
            rows.push(rss_row(
                &format!("peak RSS, backup of one {g} GB file to s3s-fs (multipart)"),
                kb,
                secs,
            ));
        }
        rm(&file.root);
    }
    drop(s3s);

    // Dry-run plan of a day with 10 000 file rows in MariaDB.
    let plan_s = bench_plan_10k(w, args.runs).await;
    rows.push(Row {
        what: "`migrate --dry-run` plan, 10 000 file rows in MariaDB (whole process)".into(),
        baseline: "—".into(),
        base_s: None,
        ours_s: plan_s,
        figure: format!("{plan_s:.2} s"),
        target: "< 1 s".into(),
        met: plan_s < 1.0,
    });

    rows.push(status_row(w, args.runs).await);

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

/// One results-table line.
fn row_line(r: &Row) -> String {
    format!(
        "| {} | {} | {} | {:.3} | {} | {} | {} |\n",
        r.what,
        r.baseline,
        r.base_s.map_or("—".into(), |b| format!("{b:.3}")),
        r.ours_s,
        r.figure,
        r.target,
        if r.met { "yes" } else { "**no**" }
    )
}

/// `md` with the results-table row of the same measurement replaced by `line` (or `line`
/// added after the table's last row).
fn merge_row(md: &str, line: &str) -> String {
    let key = line.split(" | ").next().unwrap_or_default();
    let mut lines: Vec<String> = md.lines().map(str::to_string).collect();
    let new = line.trim_end().to_string();
    if let Some(i) = lines
        .iter()
        .position(|l| l.split(" | ").next() == Some(key))
    {
        lines[i] = new;
    } else if let Some(h) = lines.iter().position(|l| l.starts_with("| what |")) {
        let end = lines[h..]
            .iter()
            .position(|l| !l.starts_with('|'))
            .map_or(lines.len(), |n| h + n);
        lines.insert(end, new);
    } else {
        lines.push(new);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn throughput_row(what: &str, baseline: &str, base: f64, ours: f64, target: f64) -> Row {
    let ratio = base / ours;
    Row {
        what: what.into(),
        baseline: baseline.into(),
        base_s: Some(base),
        ours_s: ours,
        figure: format!("{ratio:.2}×"),
        target: format!("≥ {target}×"),
        met: ratio >= target,
    }
}

/// A started `milvus-sim serve`, killed on drop; its log goes to a file.
struct Engine {
    child: std::process::Child,
    url: String,
}

impl Engine {
    fn start(meta: &str, storage: &Path, log: PathBuf, extra: &[&str]) -> Engine {
        let port = free_port();
        let child = Command::new(workspace_bin("milvus-sim"))
            .args(["serve", "--meta", meta, "--storage"])
            .arg(storage)
            .args(["--port", &port.to_string(), "--tick-ms", "20"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("milvus-sim");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "engine did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Engine { child, url }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(path: &Path, body: &str) {
    std::fs::write(path, body).expect("config");
}

/// Write a milvus-tier config to `cfg`: short-term collection `live`, long-term `archive`,
/// the engine at `engine_url`. `tiers` holds the metadata URL and storage path of
/// short-term, long-term and the engine, in that order; `extra` is appended.
fn write_tier_config(cfg: &Path, tiers: [(&str, &Path); 3], engine_url: &str, extra: &str) {
    let [(short_meta, short), (long_meta, long), (local_meta, local)] = tiers;
    write_config(
        cfg,
        &format!(
            r#"timezone = "UTC"
[short_term]
meta_url = "{short_meta}"
storage_path = "{}"
collection = "live"
partition_tag_format = "day_%Y-%m-%d"
[long_term]
meta_url = "{long_meta}"
storage_path = "{}"
collection = "archive"
[engine]
http_url = "{engine_url}"
meta_url = "{local_meta}"
storage_path = "{}"
{extra}"#,
            short.display(),
            long.display(),
            local.display(),
        ),
    );
}

/// The config of the migrate and backup runs, in `w`.
fn tier_config(w: &Path, short_meta: &str, short: &Path, engine: &Engine, extra: &str) -> PathBuf {
    let cfg = w.join("milvus-tier.toml");
    write_tier_config(
        &cfg,
        [
            (short_meta, short),
            (&sqlite(w, "long.sqlite"), &w.join("long")),
            (&sqlite(w, "local.sqlite"), &w.join("local")),
        ],
        &engine.url,
        &format!("[limits]\nmerge_timeout_secs = 3600\nindex_timeout_secs = 3600\n{extra}"),
    );
    cfg
}

fn fresh_long_term(w: &Path) {
    for p in ["long.sqlite", "local.sqlite"] {
        let _ = std::fs::remove_file(w.join(p));
    }
    rm(&w.join("long"));
    rm(&w.join("local"));
    std::fs::create_dir_all(w.join("local")).expect("mkdir");
    sh(Command::new(workspace_bin("milvus-sim"))
        .args([
            "seed-long-term",
            "--meta",
            &sqlite(w, "long.sqlite"),
            "--storage",
        ])
        .arg(w.join("long"))
        .args(["--collection", "archive", "--dim", &DIM.to_string()])
        .args(["--index-file-size", "4096", "--index-type", "IVF_PQ"])
        .args(["--params", r#"{"m":16,"nlist":1024}"#])
        .env("MILVUS_SIM_LOG", "warn"));
}

fn migrate_cmd(cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(workspace_bin("milvus-tier"));
    c.arg("--config").arg(cfg).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
        c.env_remove(k);
    }
    c
}

/// RFC 3339 timestamp at the start of a log line (text or JSON).
fn log_time(line: &str) -> Option<chrono::DateTime<chrono::Utc>> {
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

fn times_of(log: &str, needle: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(log_time)
        .collect()
}

async fn bench_migrate(
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

fn rss_row(what: &str, kb: u64, secs: f64) -> Row {
    Row {
        what: what.into(),
        baseline: "—".into(),
        base_s: None,
        ours_s: secs,
        figure: format!("{:.1} MiB", kb as f64 / 1024.0),
        target: "≤ 64 MiB".into(),
        met: kb <= 64 * 1024,
    }
}

/// A segment folder holding one big file of pseudo-random bytes.
struct BigFile {
    root: PathBuf,
    path: PathBuf,
}

fn big_file(w: &Path, gb: u64) -> BigFile {
    let root = w.join(format!("big{gb}"));
    let seg = root.join("db/tables/t_big/1");
    std::fs::create_dir_all(&seg).expect("mkdir");
    let path = seg.join("1700000000000000001");
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut block = vec![0u8; 8 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes());
    }
    for i in 0..(gb * 1_000_000_000 / block.len() as u64) {
        block[0..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&block).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    sync();
    BigFile { root, path }
}

/// Peak RSS (KiB) and seconds of this program run with `args`, in a process of its own.
fn rss_of(args: &[&str]) -> (u64, f64) {
    let exe = std::env::current_exe().expect("exe");
    let t = Instant::now();
    let o = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(exe)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", test_support::moto::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", test_support::moto::SECRET_KEY)
        .env("AWS_REGION", test_support::moto::REGION)
        .output()
        .expect("/usr/bin/time");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let kb = String::from_utf8_lossy(&o.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("time -f %M output");
    (kb, secs)
}

/// s3s-fs (file-backed S3, constant memory) on loopback, for the big-file backups.
struct S3sFs {
    child: std::process::Child,
    endpoint: String,
}

impl S3sFs {
    fn start(w: &Path) -> Option<S3sFs> {
        let bin = std::env::var_os("MILVUS_TIER_BENCH_S3S_FS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                test_support::workspace_root().join("target/bench-tools/bin/s3s-fs")
            });
        if !bin.is_file() {
            return None;
        }
        let root = w.join("s3s");
        rm(&root);
        std::fs::create_dir_all(root.join("bench")).expect("bucket dir");
        let port = free_port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", test_support::moto::ACCESS_KEY])
            .args(["--secret-key", test_support::moto::SECRET_KEY])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(S3sFs {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn backup_one(argv: &[String]) {
    let (target, file, endpoint) = (&argv[0], &argv[1], &argv[2]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cfg: milvus_tier::config::BackupConfig = toml::from_str(&format!(
            "target = \"{target}\"\nendpoint = \"{endpoint}\"\nregion = \"{}\"\nforce_path_style = true\n",
            test_support::moto::REGION
        ))
        .expect("backup config");
        let path = Path::new(file);
        let (size, blake3) = milvus_tier::backup::store::hash_file(path)
            .await
            .expect("hash");
        let store = milvus_tier::backup::store::Store::open(&cfg)
            .await
            .expect("store");
        store
            .put_file("big", path, size, &blake3)
            .await
            .expect("upload");
    });
}

fn copy_one(argv: &[String]) {
    let (src, dst, table, seg) = (&argv[0], &argv[1], &argv[2], &argv[3]);
    let fsync = argv.iter().any(|a| a == "--fsync");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let opts = CopyOptions {
            fsync,
            ..CopyOptions::default()
        };
        segments::copy_segments(
            Path::new(src),
            Path::new(dst),
            &[SegmentRef::new(table.as_str(), seg.as_str())],
            &opts,
        )
        .await
        .expect("copy");
    });
}

/// Median wall time of `migrate --dry-run` (the whole process) for a day of 10 000 file
/// rows in MariaDB.
async fn bench_plan_10k(w: &Path, runs: usize) -> f64 {
    let db = MariaDb::start();
    let (short_url, long_url) = (db.database("short"), db.database("long"));
    let short = MetaDb::connect(&short_url).await.expect("short");
    let long = MetaDb::connect(&long_url).await.expect("long");
    short.install_milvus_schema().await.expect("schema");
    long.install_milvus_schema().await.expect("schema");
    let coll = |name: &str| TableRow {
        id: 0,
        table_id: name.into(),
        state: TableState::Normal,
        dimension: 4,
        created_on: 1_764_000_000_000_000,
        flag: 0,
        index_file_size: 256 * MIB as i64,
        engine_type: EngineType::Flat,
        index_params: "{}".into(),
        metric_type: MetricType::L2,
        owner_table: String::new(),
        partition_tag: String::new(),
        version: Some("1.1.1".into()),
        flush_lsn: 0,
    };
    let part = TableRow {
        table_id: "p_live_20261120".into(),
        owner_table: "live".into(),
        partition_tag: "day_2026-11-20".into(),
        ..coll("live")
    };
    let storage = w.join("plan10k");
    let date = MilvusDate::from_day(DAY.parse().expect("day"));
    let files: Vec<FileRow> = (0..10_000)
        .map(|i| {
            let id = format!("{}", 1_700_000_000_000_000_000u64 + i);
            FileRow {
                id: 0,
                table_id: part.table_id.clone(),
                segment_id: id.clone(),
                engine_type: EngineType::Flat,
                file_id: id,
                file_type: FileType::Raw,
                file_size: 16 + 8,
                row_count: 1,
                updated_time: 0,
                created_on: 0,
                date,
                flush_lsn: 0,
            }
        })
        .collect();
    for f in &files {
        let d = storage
            .join("db/tables")
            .join(&f.table_id)
            .join(&f.segment_id);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(format!("{}.rv", f.file_id)), [0u8; 8 + 16]).expect("rv");
        std::fs::write(d.join(format!("{}.uid", f.file_id)), [0u8; 8 + 8]).expect("uid");
    }
    short
        .write_rows(&[coll("live"), part], &files, WriteMode::InsertIfAbsent)
        .await
        .expect("rows");
    long.write_rows(&[coll("archive")], &[], WriteMode::InsertIfAbsent)
        .await
        .expect("rows");
    let cfg = w.join("plan10k.toml");
    let no_password = |url: &str| url.replace(&format!(":{}@", test_support::PASSWORD), "@");
    write_tier_config(
        &cfg,
        [
            (&no_password(&short_url), &storage),
            (&no_password(&long_url), &w.join("plan10k-long")),
            (&sqlite(w, "plan10k-local.sqlite"), &w.join("plan10k-local")),
        ],
        // A dry run never calls the engine.
        "http://127.0.0.1:9",
        "",
    );
    let mut v = Vec::new();
    for _ in 0..runs.max(3) {
        let mut c = migrate_cmd(&cfg, &["migrate", "--date", DAY, "--dry-run", "--json"]);
        for s in ["SHORT_TERM", "LONG_TERM"] {
            c.env(
                format!("MILVUS_TIER_{s}__META_PASSWORD"),
                test_support::PASSWORD,
            );
        }
        let t = Instant::now();
        let o = c.output().expect("migrate --dry-run");
        v.push(t.elapsed().as_secs_f64());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(
            json["days"][0]["plan"]["input_files"]
                .as_array()
                .map(Vec::len),
            Some(10_000)
        );
    }
    rm(&storage);
    median(v)
}

async fn bench_backup(args: &Args, w: &Path) -> (Vec<Row>, Vec<String>) {
    let s3s = S3sFs::start(w);
    let moto = s3s.is_none().then(Moto::start);
    let (endpoint, server) = match (&s3s, &moto) {
        (Some(s), _) => (s.endpoint.clone(), "s3s-fs"),
        (None, Some(m)) => (m.endpoint(), "moto"),
        _ => unreachable!("one server runs"),
    };
    let aws = |a: &[&str]| {
        let mut c = Command::new("aws");
        c.args(["--endpoint-url", &endpoint])
            .args(a)
            .env("AWS_ACCESS_KEY_ID", test_support::moto::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", test_support::moto::SECRET_KEY)
            .env("AWS_DEFAULT_REGION", test_support::moto::REGION)
            .stdout(Stdio::null());
        c
    };
    if moto.is_some() {
        sh(&mut aws(&["s3", "mb", "s3://bench"]));
    }
    // The published day from the last migrate run is in w/long.
    let long = w.join("long");
    let cfg = w.join("milvus-tier.toml");
    let mut s = std::fs::read_to_string(&cfg).expect("config");
    let _ = write!(
        s,
        "[backup]\ntarget = \"s3://bench/tier\"\nendpoint = \"{endpoint}\"\nregion = \"{}\"\nforce_path_style = true\n",
        test_support::moto::REGION
    );
    std::fs::write(&cfg, s).expect("config");
    let server_pid = s3s.as_ref().map(|s| s.child.id());
    // Wall seconds, and CPU seconds of the client and of the server, of one command.
    let measure = |f: &mut dyn FnMut()| {
        let (c0, s0) = (children_cpu(), server_pid.map_or(0.0, process_cpu));
        let wall = timed(f);
        let (c1, s1) = (children_cpu(), server_pid.map_or(0.0, process_cpu));
        (wall, c1 - c0, s1 - s0)
    };
    let (mut base_up, mut ours_up, mut base_down, mut base_down_sync, mut ours_down) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for run in 0..args.runs {
        let prefix = format!("s3://bench/cli-{run}/");
        sync();
        warm(&long);
        base_up.push(measure(&mut || {
            sh(aws(&["s3", "cp", "--recursive", "--quiet"])
                .arg(long.join("db"))
                .arg(&prefix));
        }));
        let dl = w.join("cli-download");
        // s3s-fs keeps each object as a file under its root: start both downloads warm.
        let objects = |prefix: &str| w.join("s3s/bench").join(prefix);
        rm(&dl);
        sync();
        if s3s.is_some() {
            warm(&objects(&format!("cli-{run}")));
        }
        base_down.push(measure(&mut || {
            sh(aws(&["s3", "cp", "--recursive", "--quiet", &prefix]).arg(&dl));
        }));
        rm(&dl);
        sync();
        if s3s.is_some() {
            warm(&objects(&format!("cli-{run}")));
        }
        base_down_sync.push(timed(|| {
            sh(aws(&["s3", "cp", "--recursive", "--quiet", &prefix]).arg(&dl));
            write_back();
        }));
        rm(&dl);
        sh(&mut aws(&[
            "s3",
            "rm",
            "--recursive",
            "--quiet",
            "s3://bench/tier/",
        ]));
        sync();
        warm(&long);
        ours_up.push(measure(&mut || tier_ok(&cfg, "backup")));
        // Restore into an empty long-term: drop its rows and files first.
        fresh_long_term(w);
        sync();
        if s3s.is_some() {
            warm(&objects("tier"));
        }
        ours_down.push(measure(&mut || tier_ok(&cfg, "restore")));
        notes.push(format!(
            "backup run {run}: ours {:.2} s, restore {:.2} s",
            ours_up[run].0, ours_down[run].0
        ));
    }
    if server_pid.is_some() {
        let cpu = |v: &[(f64, f64, f64)]| {
            let c = median(v.iter().map(|m| m.1).collect());
            let s = median(v.iter().map(|m| m.2).collect());
            format!("client {c:.1} s + {server} {s:.1} s")
        };
        notes.push(format!(
            "CPU per run (medians; 2 cores shared by client and server): upload with `aws s3 cp` {}, with milvus-tier {}; download with `aws s3 cp` {}, restore {}",
            cpu(&base_up),
            cpu(&ours_up),
            cpu(&base_down),
            cpu(&ours_down)
        ));
    }
    let wall = |v: &[(f64, f64, f64)]| median(v.iter().map(|m| m.0).collect());
    let (base_up, ours_up, base_down, ours_down) = (
        wall(&base_up),
        wall(&ours_up),
        wall(&base_down),
        wall(&ours_down),
    );
    let rows = vec![
        throughput_row(
            &format!("backup of a day to a local S3-compatible server ({server})"),
            "`aws s3 cp --recursive` upload",
            base_up,
            ours_up,
            1.5,
        ),
        throughput_row(
            "restore of a day from it (download, verify, publish)",
            "`aws s3 cp --recursive` download",
            base_down,
            ours_down,
            1.5,
        ),
        throughput_row(
            "restore of a day (same runs)",
            "`aws s3 cp --recursive` download then `sync` (equally durable)",
            median(base_down_sync),
            ours_down,
            1.5,
        ),
    ];
    (rows, notes)
}

/// `milvus-tier COMMAND --date DAY` with the S3 credentials; panics unless it succeeds.
fn tier_ok(cfg: &Path, command: &str) {
    let o = aws_env(migrate_cmd(cfg, &[command, "--date", DAY]))
        .output()
        .expect(command);
    assert!(
        o.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn aws_env(mut c: Command) -> Command {
    c.env("AWS_ACCESS_KEY_ID", test_support::moto::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", test_support::moto::SECRET_KEY)
        .env("AWS_REGION", test_support::moto::REGION);
    c
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = sh(Command::new("uname").arg("-sr"));
    let fs = sh(Command::new("df")
        .args(["-hT"])
        .arg(test_support::workspace_root()));
    format!(
        "- CPU: {cpu}, {cores} cores\n- {}\n- kernel: {}- storage (work dir):\n```\n{fs}```\n",
        mem.split_whitespace().collect::<Vec<_>>().join(" "),
        kernel
    )
}

fn render(
    args: &Args,
    gb: f64,
    rows: &[Row],
    growth: &[(u64, u64, f64)],
    notes: &[String],
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# milvus-tier benchmark results\n");
    let _ = writeln!(
        md,
        "Produced by `scripts/bench` (`cargo bench --bench tier`), release build. Day: {gb:.2} GB in {} MB segments (dimension {DIM}), {} runs per figure, medians. Baselines run in the same process run on the same data, page cache equally warm for both; before each measurement dirty pages are written back and its input is read once, so neither side pays for the other's writeback or starts cold.\n",
        args.segment_mb, args.runs
    );
    let _ = writeln!(md, "## Machine\n\n{}", machine());
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "| what | baseline | baseline s | ours s | figure | target | met |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in rows {
        md.push_str(&row_line(r));
    }
    let _ = writeln!(md, "\n## Growth (stage copy)\n");
    let _ = writeln!(md, "| size | bytes | seconds | s per GB |");
    let _ = writeln!(md, "|---|---|---|---|");
    for (k, bytes, s) in growth {
        let _ = writeln!(
            md,
            "| {k}× | {bytes} | {s:.3} | {:.3} |",
            s / (*bytes as f64 / 1e9)
        );
    }
    if let (Some(first), Some(last)) = (growth.first(), growth.last()) {
        let per = |g: &(u64, u64, f64)| g.2 / (g.1 as f64 / 1e9);
        let _ = writeln!(
            md,
            "\nCost per GB at 4× over 1×: {:.2} (1.00 = linear).",
            per(last) / per(first)
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "\n## Run notes\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}
