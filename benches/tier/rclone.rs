//! rclone, the baseline operators pick for fast S3 transfers: its config for the local S3
//! server (written into the work dir) and its commands, tuned for large files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::measure::{CLIENT_CORE, on_core};

/// The tuning, as a user moving files of hundreds of MB to GB would set it (reasons in
/// docs/performance.md): 4 files at once and 8 parts in flight per file, as milvus-tier;
/// 16 MiB parts (rclone's default is 5 MiB); downloads over 64 MiB in 8 ranged streams
/// (rclone's default: 4 streams over 250 MiB).
pub(crate) const TUNING: [&str; 10] = [
    "--transfers",
    "4",
    "--s3-upload-concurrency",
    "8",
    "--s3-chunk-size",
    "16M",
    "--multi-thread-streams",
    "8",
    "--multi-thread-cutoff",
    "64M",
];

/// Whether `rclone` is installed.
pub(crate) fn installed() -> bool {
    Command::new("rclone")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Write `rclone.conf` into `w` with one remote, `bench`, for the S3 server at `endpoint`
/// (path style, the test credentials; rclone creates a missing bucket). Returns its path.
pub(crate) fn config(w: &Path, endpoint: &str) -> PathBuf {
    let path = w.join("rclone.conf");
    std::fs::write(
        &path,
        format!(
            "[bench]\ntype = s3\nprovider = Other\nendpoint = {endpoint}\nregion = {}\nforce_path_style = true\naccess_key_id = {}\nsecret_access_key = {}\n",
            test_support::moto::REGION,
            test_support::moto::ACCESS_KEY,
            test_support::moto::SECRET_KEY,
        ),
    )
    .expect("rclone.conf");
    path
}

/// `rclone copy SRC DST` with `conf` and [`TUNING`], on the client core.
pub(crate) fn copy(
    conf: &Path,
    src: impl AsRef<std::ffi::OsStr>,
    dst: impl AsRef<std::ffi::OsStr>,
) -> Command {
    let mut c = on_core(CLIENT_CORE, "rclone");
    c.arg("--config")
        .arg(conf)
        .arg("copy")
        .args(TUNING)
        .arg(src)
        .arg(dst)
        .stdout(Stdio::null())
        // rclone's AWS SDK fails on a CA bundle named in the environment (`unable to load
        // custom CA bundle, HTTPClient's transport unsupported type`); the server is plain
        // HTTP on loopback.
        .env_remove("AWS_CA_BUNDLE");
    c
}
