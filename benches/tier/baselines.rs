//! Baselines on the file system: `cp -r` (plain and followed by `sync`) and the disk's durable write speed (`dd conv=fsync`).

use std::path::Path;
use std::process::Command;

use crate::measure::{rm, sh, sync, timed, warm, write_back};

/// Seconds of `cp -r src dst` (input warm, previous writes on disk).
pub(crate) fn cp_r(src: &Path, dst: &Path) -> f64 {
    cp_r_then(src, dst, false)
}

/// Seconds of `cp -r src dst` then `sync`: as durable as publish.
pub(crate) fn cp_r_sync(src: &Path, dst: &Path) -> f64 {
    cp_r_then(src, dst, true)
}

pub(crate) fn cp_r_then(src: &Path, dst: &Path, durable: bool) -> f64 {
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
pub(crate) fn dd_fsync(dst: &Path, bytes: u64) -> f64 {
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
