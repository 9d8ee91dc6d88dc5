//! Backup and restore against a local S3-compatible server (s3s-fs, else moto): the server,
//! `tier backup-one`, and the backup/restore rows against `aws s3 cp`, tuned rclone and the
//! server's own limit, server and client each on a core of its own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{Moto, free_port, workspace_bin};

use crate::measure::{
    CLIENT_CORE, SERVER_CORE, children_cpu, dir_bytes, median, on_core, pinning, process_cpu, rm,
    sh, sync, timed, warm, write_back,
};
use crate::rclone;
use crate::results::{Row, throughput_row};
use crate::s3limit::LIMIT_STREAMS;
use crate::sim::fresh_long_term;
use crate::{Args, DAY};

/// s3s-fs (file-backed S3, constant memory) on loopback, for the big-file backups.
pub(crate) struct S3sFs {
    pub(crate) child: std::process::Child,
    pub(crate) endpoint: String,
}

impl S3sFs {
    pub(crate) fn start(w: &Path) -> Option<S3sFs> {
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
        let child = on_core(SERVER_CORE, bin)
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

pub(crate) fn backup_one(argv: &[String]) {
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

pub(crate) async fn bench_backup(args: &Args, w: &Path) -> (Vec<Row>, Vec<String>) {
    let s3s = S3sFs::start(w);
    let moto = s3s.is_none().then(Moto::start);
    let (endpoint, server) = match (&s3s, &moto) {
        (Some(s), _) => (s.endpoint.clone(), "s3s-fs"),
        (None, Some(m)) => (m.endpoint(), "moto"),
        _ => unreachable!("one server runs"),
    };
    let aws = |a: &[&str]| {
        let mut c = on_core(CLIENT_CORE, "aws");
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
    let (mut rc_up, mut rc_down, mut rc_down_sync) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lim_put, mut lim_get) = (Vec::new(), Vec::new());
    let mut notes = Vec::new();
    let rclone_conf = rclone::installed().then(|| rclone::config(w, &endpoint));
    if rclone_conf.is_none() {
        notes.push("rclone rows skipped: rclone not installed (scripts/bench installs it)".into());
    }
    notes.push(if pinning() {
        format!(
            "cores: the S3 server ({server}) runs on core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), every S3 client on core {CLIENT_CORE} (`taskset -c {CLIENT_CORE}`): milvus-tier's backup and restore, `aws`, `rclone`, the limit client and the RSS rows' `backup-one`; the file-system rows are not pinned"
        )
    } else {
        "cores: not pinned (fewer than 2 cores or no `taskset`): server and client share the cores".into()
    });
    let day_bytes = dir_bytes(&long.join("db"));
    // The trivial client of the server's limit: this program, `s3-limit put|get`.
    let limit = |a: &[&str]| {
        let mut c = on_core(CLIENT_CORE, std::env::current_exe().expect("exe"));
        c.arg("s3-limit")
            .arg(a[0])
            .arg(&endpoint)
            .arg("bench")
            .args(&a[1..]);
        c
    };
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
        // rclone, tuned for large files: copy up, copy back, copy back then sync.
        if let Some(conf) = &rclone_conf {
            // A bucket of its own: s3s-fs answers 500 to the HEAD rclone sends for a source
            // under a bucket (`bench:bench/prefix`, a folder in its file system).
            let remote = format!("bench:rclone-{run}");
            sync();
            warm(&long);
            rc_up.push(measure(&mut || {
                sh(&mut rclone::copy(conf, long.join("db"), &remote));
            }));
            for durable in [false, true] {
                rm(&dl);
                sync();
                if s3s.is_some() {
                    warm(&w.join(format!("s3s/rclone-{run}")));
                }
                let m = measure(&mut || {
                    sh(&mut rclone::copy(conf, &remote, &dl));
                    if durable {
                        write_back();
                    }
                });
                if durable {
                    rc_down_sync.push(m.0);
                } else {
                    rc_down.push(m);
                }
            }
            rm(&dl);
            if s3s.is_some() {
                // Its objects are files under the server's root.
                rm(&w.join(format!("s3s/rclone-{run}")));
            } else {
                sh(&mut aws(&[
                    "s3",
                    "rb",
                    "--force",
                    &format!("s3://rclone-{run}"),
                ]));
            }
        }
        // The server's limit: a trivial client PUTs the same files, then GETs them.
        let lim = format!("limit-{run}");
        sync();
        warm(&long);
        lim_put.push(measure(&mut || {
            sh(limit(&["put", &lim]).arg(long.join("db")));
        }));
        sync();
        if s3s.is_some() {
            warm(&objects(&lim));
        }
        lim_get.push(measure(&mut || {
            sh(&mut limit(&["get", &lim]));
        }));
        sh(&mut aws(&[
            "s3",
            "rm",
            "--recursive",
            "--quiet",
            &format!("s3://bench/{lim}/"),
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
            "CPU per run (medians): upload with `aws s3 cp` {}, with milvus-tier {}; download with `aws s3 cp` {}, restore {}",
            cpu(&base_up),
            cpu(&ours_up),
            cpu(&base_down),
            cpu(&ours_down)
        ));
        if rclone_conf.is_some() {
            notes.push(format!(
                "CPU per run (medians): upload with `rclone copy` {}, download with `rclone copy` {}",
                cpu(&rc_up),
                cpu(&rc_down)
            ));
        }
        notes.push(format!(
            "CPU per run (medians): the limit client's PUTs {}, GETs {}",
            cpu(&lim_put),
            cpu(&lim_get)
        ));
    }
    let wall = |v: &[(f64, f64, f64)]| median(v.iter().map(|m| m.0).collect());
    let (base_up, ours_up, base_down, ours_down) = (
        wall(&base_up),
        wall(&ours_up),
        wall(&base_down),
        wall(&ours_down),
    );
    let (lim_up, lim_down) = (wall(&lim_put), wall(&lim_get));
    let mut rows = vec![
        naive_row(
            &format!("backup of a day to a local S3-compatible server ({server})"),
            "`aws s3 cp --recursive` upload",
            base_up,
            ours_up,
            lim_up,
        ),
        naive_row(
            "restore of a day from it (download, verify, publish)",
            "`aws s3 cp --recursive` download",
            base_down,
            ours_down,
            lim_down,
        ),
        naive_row(
            "restore of a day (same runs)",
            "`aws s3 cp --recursive` download then `sync` (equally durable)",
            median(base_down_sync),
            ours_down,
            lim_down,
        ),
    ];
    if rclone_conf.is_some() {
        let tuning = rclone::TUNING.join(" ");
        rows.push(throughput_row(
            "backup of a day (same runs)",
            &format!("`rclone copy` upload, `{tuning}`"),
            wall(&rc_up),
            ours_up,
            1.0,
        ));
        rows.push(throughput_row(
            "restore of a day (same runs)",
            "`rclone copy` download (same tuning)",
            wall(&rc_down),
            ours_down,
            1.0,
        ));
        rows.push(throughput_row(
            "restore of a day (same runs)",
            "`rclone copy` download then `sync` (equally durable)",
            median(rc_down_sync),
            ours_down,
            1.0,
        ));
    }
    rows.push(limit_row(
        "backup of a day (same runs)",
        &format!("{server}'s limit: {LIMIT_STREAMS} multipart part PUTs (8 MiB) in flight from the page cache, trivial client"),
        lim_up,
        ours_up,
        day_bytes,
    ));
    rows.push(limit_row(
        "restore of a day (same runs)",
        &format!("{server}'s limit: {LIMIT_STREAMS} ranged GETs (16 MiB) in flight into nothing, trivial client"),
        lim_down,
        ours_down,
        day_bytes,
    ));
    (rows, notes)
}

/// Ours against the aws CLI: 1.5× as fast, unless ours is already at the server's limit
/// (`limit` seconds, [`LIMIT_TARGET`]), where no client can be faster and the aws CLI may be
/// there too.
fn naive_row(what: &str, baseline: &str, base: f64, ours: f64, limit: f64) -> Row {
    let mut row = throughput_row(what, baseline, base, ours, 1.5);
    row.target = format!("≥ 1.5×, or at the server's limit (≥ {LIMIT_TARGET})");
    row.met = row.met || limit / ours >= LIMIT_TARGET;
    row
}

/// The fraction of the server's limit a path must reach.
const LIMIT_TARGET: f64 = 0.85;

/// Ours as a fraction of the server's limit (`limit` seconds for the same `bytes`).
fn limit_row(what: &str, baseline: &str, limit: f64, ours: f64, bytes: u64) -> Row {
    let fraction = limit / ours;
    Row {
        what: what.into(),
        baseline: baseline.into(),
        base_s: Some(limit),
        ours_s: ours,
        figure: format!(
            "{fraction:.2} of the limit ({:.2} GB/s)",
            bytes as f64 / limit / 1e9
        ),
        target: format!("≥ {LIMIT_TARGET}"),
        met: fraction >= LIMIT_TARGET,
    }
}

/// `milvus-tier COMMAND --date DAY` with the S3 credentials, on the client core; panics
/// unless it succeeds.
pub(crate) fn tier_ok(cfg: &Path, command: &str) {
    let mut c = on_core(CLIENT_CORE, workspace_bin("milvus-tier"));
    c.arg("--config").arg(cfg).args([command, "--date", DAY]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MILVUS_TIER_")) {
        c.env_remove(k);
    }
    let o = aws_env(c).output().expect(command);
    assert!(
        o.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub(crate) fn aws_env(mut c: Command) -> Command {
    c.env("AWS_ACCESS_KEY_ID", test_support::moto::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", test_support::moto::SECRET_KEY)
        .env("AWS_REGION", test_support::moto::REGION);
    c
}
