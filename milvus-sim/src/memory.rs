//! Keeping the process's memory bounded across large requests.
//!
//! An insert of 100 000 vectors parses into a JSON tree of about a gigabyte. glibc's malloc
//! keeps what such a request freed in the arena of the thread that ran it, and gives each
//! busy worker thread its own arena (up to 8 per core), so a long-running node that serves
//! large requests on many threads holds the peak of each arena at once and grows to tens of
//! gigabytes (the Milvus 1.1 suite drove it past 23 GB). Milvus itself bounds its data in a
//! sized cache (`cache.cache_size`); the simulator keeps no data cache, so bounding the
//! allocator is enough: few arenas, and freed pages handed back after a large request.

/// Bodies at least this large are followed by a trim.
pub const TRIM_AFTER_BODY_BYTES: u64 = 1 << 20;

/// Limit malloc to two arenas; call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hand memory freed by a finished request back to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
    tracing::debug!(rss_kib = ?rss_kib(), "memory trimmed after a large request");
}

/// The resident set size of this process, in KiB (Linux; `None` elsewhere).
pub fn rss_kib() -> Option<u64> {
    proc_kib("/proc/self/status", "VmRSS:")
}

/// The machine's physical memory, in KiB (`MemTotal`; Linux, `None` elsewhere).
pub fn total_kib() -> Option<u64> {
    proc_kib("/proc/meminfo", "MemTotal:")
}

/// The `key` line's value of a `/proc` file that gives sizes as `<n> kB`.
fn proc_kib(file: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(file).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
