//! The segment copy (stage and publish options): stage and publish against `cp -r`, growth, the bandwidth cap, and `tier copy-one` (one segment folder, for peak RSS).

use std::path::Path;
use std::time::Instant;

use milvus_tier::segments::{self, CopyOptions, Existing, SegmentRef};

use crate::baselines::{cp_r, cp_r_sync, dd_fsync};
use crate::measure::{dir_bytes, median, rm, sync, warm};
use crate::results::{Row, throughput_row};
use crate::sim::{seed, sqlite};
use crate::{Args, MB};

/// Every segment folder under `<root>/db/tables`.
pub(crate) fn segments_under(root: &Path) -> Vec<SegmentRef> {
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

pub(crate) async fn copy_tree(src: &Path, dst: &Path, fsync: bool, cap: Option<u64>) -> f64 {
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

/// `tier copy-tree SRC DST [--fsync]`: one [`copy_tree`] of the storage root `SRC` (its
/// page cache warm, dirty pages written back first) into `DST`; prints its seconds.
pub(crate) fn copy_tree_cmd(argv: &[String]) {
    let (src, dst) = (Path::new(&argv[0]), Path::new(&argv[1]));
    let fsync = argv.iter().any(|a| a == "--fsync");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let secs = rt.block_on(copy_tree(src, dst, fsync, None));
    println!("{secs:.3}");
}

pub(crate) fn copy_one(argv: &[String]) {
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

/// Stage copy (checksummed, no fsync) and publish copy (temp name, fsync, rename) of the day
/// in `short` against `cp -r`, `cp -r` then `sync` and `dd conv=fsync`; stage copy growth at
/// 1x, 2x and 4x of a quarter day; the bandwidth cap. Returns the rows and the growth table
/// (factor, bytes, seconds).
pub(crate) async fn bench_copy(
    args: &Args,
    w: &Path,
    short: &Path,
    day_bytes: u64,
) -> (Vec<Row>, Vec<(u64, u64, f64)>) {
    let mut rows = Vec::new();
    // Stage copy (checksummed, no fsync) vs cp -r, both warm.
    let (mut base, mut ours) = (Vec::new(), Vec::new());
    cp_r(&short.join("db"), &w.join("warm/db"));
    for _ in 0..args.runs {
        base.push(cp_r(&short.join("db"), &w.join("cp/db")));
        ours.push(copy_tree(short, &w.join("stage"), false, None).await);
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
        ours.push(copy_tree(short, &w.join("publish"), true, None).await);
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

    (rows, growth)
}
