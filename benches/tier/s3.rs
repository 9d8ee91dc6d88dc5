//! Backup and restore against a local S3-compatible server (s3s-fs, else moto): the server, `tier backup-one`, and the backup/restore rows against `aws s3 cp`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{Moto, free_port};

use crate::measure::{children_cpu, median, process_cpu, rm, sh, sync, timed, warm, write_back};
use crate::results::{Row, throughput_row};
use crate::sim::{fresh_long_term, migrate_cmd};
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
pub(crate) fn tier_ok(cfg: &Path, command: &str) {
    let o = aws_env(migrate_cmd(cfg, &[command, "--date", DAY]))
        .output()
        .expect(command);
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
