//! Peak RSS of copying and of backing up one big file, each in a process of its own under `/usr/bin/time`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::Args;
use crate::measure::{CLIENT_CORE, pinning, rm, sync};
use crate::results::Row;
use crate::s3::S3sFs;

pub(crate) fn rss_row(what: &str, kb: u64, secs: f64) -> Row {
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
pub(crate) struct BigFile {
    pub(crate) root: PathBuf,
    pub(crate) path: PathBuf,
}

pub(crate) fn big_file(w: &Path, gb: u64) -> BigFile {
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
pub(crate) fn rss_of(args: &[&str]) -> (u64, f64) {
    let exe = std::env::current_exe().expect("exe");
    let t = Instant::now();
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%M"]);
    // The S3 client on its core, as in every S3 measurement (taskset execs it: same process).
    if args[0] == "backup-one" && pinning() {
        c.args(["taskset", "-c", &CLIENT_CORE.to_string()]);
    }
    let o = c
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

/// Peak RSS of copying and of backing up (to s3s-fs, when installed) one big file, at 1 GB
/// and at `--big-gb`. Returns the rows and the run notes.
pub(crate) fn bench_rss(args: &Args, w: &Path) -> (Vec<Row>, Vec<String>) {
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
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

    (rows, notes)
}
