//! Measuring: medians, timing, CPU seconds, shell commands, page cache (write back, warm), prefaulting memory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

pub(crate) fn timed(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// CPU seconds (user + system) used so far by the finished children of this process.
pub(crate) fn children_cpu() -> f64 {
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
pub(crate) fn process_cpu(pid: u32) -> f64 {
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

pub(crate) fn sh(cmd: &mut Command) -> String {
    let o = cmd.stderr(Stdio::inherit()).output().expect("spawn");
    assert!(o.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Write back dirty pages, so one measurement does not pay for the previous one's writes.
/// Before a measurement: write back dirty pages, so it does not pay for the previous one's
/// writes.
pub(crate) fn sync() {
    write_back();
}

/// Read every file under `p` once, so a measurement reading it starts from the page cache
/// whatever ran before it.
pub(crate) fn warm(p: &Path) {
    sh(Command::new("sh").arg("-c").arg(format!(
        "find '{}' -type f -exec cat {{}} + > /dev/null",
        p.display()
    )));
}

/// `sync`: write every dirty page back.
pub(crate) fn write_back() {
    sh(&mut Command::new("sync"));
}

/// Touch `bytes` of fresh anonymous memory, a byte per page, then free it.
pub(crate) fn touch(bytes: u64) {
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

pub(crate) fn rm(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

pub(crate) fn dir_bytes(p: &Path) -> u64 {
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

/// Touch most of the free memory once, then free it. Virtual machines that back guest
/// memory lazily (Firecracker and the like) charge a host fault on the first use of each
/// page (seen here: 2 GB written in 4.6 s the first time, 0.34 s the second); without this
/// the first measurements pay it. Pages freed later may still go back to the host (free
/// page reporting), which is why every figure is a median of several runs. Returns the
/// bytes touched and the seconds it took.
pub(crate) fn prefault_memory() -> (u64, f64) {
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

/// KiB of freed memory the kernel has reported to the hypervisor so far (virtio-balloon
/// free page reporting), if it reports.
pub(crate) fn reported_kib() -> Option<u64> {
    std::fs::read_to_string("/sys/module/page_reporting/parameters/reported_kib")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The run note on free page reporting: whether `scripts/bench` paused it, and how much
/// memory was handed back to the host between `before` and now.
pub(crate) fn page_reporting_note(before: Option<u64>) -> Option<String> {
    let (before, after) = (before?, reported_kib()?);
    let state = std::env::var("MILVUS_TIER_BENCH_PAGE_REPORTING")
        .unwrap_or_else(|_| "active (not root: not paused)".into());
    Some(format!(
        "free page reporting to the hypervisor: {state}; {} MiB of freed memory reported during the run (each reported page costs a host fault when a copy reuses it)",
        after.saturating_sub(before) >> 10
    ))
}

/// The core every S3 server is pinned to during a measurement.
pub(crate) const SERVER_CORE: usize = 0;
/// The core every S3 client (milvus-tier, the baselines, the limit client) is pinned to.
pub(crate) const CLIENT_CORE: usize = 1;

/// Whether processes are pinned: at least 2 cores and `taskset` installed.
pub(crate) fn pinning() -> bool {
    std::thread::available_parallelism().map_or(0, |n| n.get()) >= 2
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `program` to be run on `core` only (`taskset -c CORE program`, which execs it, so the
/// pid is the program's), or as is when [`pinning`] is off.
pub(crate) fn on_core(core: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
    if pinning() {
        let mut c = Command::new("taskset");
        c.args(["-c", &core.to_string()]).arg(program);
        c
    } else {
        Command::new(program)
    }
}
