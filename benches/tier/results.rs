//! The results: `Row`, the Markdown table and the machine description, and merging one row into `benches/RESULTS.md`.

use std::fmt::Write as _;
use std::process::Command;

use crate::measure::sh;
use crate::{Args, DIM};

/// One measured row of the results table.
pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) baseline: String,
    pub(crate) base_s: Option<f64>,
    pub(crate) ours_s: f64,
    /// Figure shown: ratio or absolute.
    pub(crate) figure: String,
    pub(crate) target: String,
    pub(crate) met: bool,
}

/// One results-table line.
pub(crate) fn row_line(r: &Row) -> String {
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
pub(crate) fn merge_row(md: &str, line: &str) -> String {
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

pub(crate) fn throughput_row(what: &str, baseline: &str, base: f64, ours: f64, target: f64) -> Row {
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

pub(crate) fn machine() -> String {
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

pub(crate) fn render(
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
        "Produced by `scripts/bench` (`cargo bench --bench tier`), release build. Day: {gb:.2} GB in {} MB segments (dimension {DIM}), {} runs per figure, medians. Baselines run in the same process run on the same data, page cache equally warm for both; before each measurement dirty pages are written back and its input is read once, so neither side pays for the other's writeback or starts cold. In the S3 rows the server and the client each run on a core of their own (`taskset`; see the run notes).\n",
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
