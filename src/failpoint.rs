//! Named crash points for crash-recovery tests.
//!
//! They exist only in builds with the `failpoints` cargo feature (the test builds of
//! `scripts/test`); every other build, releases included, ignores the variable.
//!
//! Code that must survive a crash at a precise moment calls [`failpoint`] with a stable
//! name. When the environment variable `MILVUS_TIER_FAILPOINT` equals that name, the
//! process aborts on the spot (`std::process::abort`, no unwinding, no destructors,
//! no flushing), which is as close to `kill -9` as a process can do to itself. Tests run a
//! child process with the variable set, then check what the crash left on disk and that a
//! rerun recovers. With the variable unset, a failpoint costs one environment lookup.
//!
//! Failpoints in use:
//! - `segments.after_file`: after each segment file is written (and synced when asked),
//!   before the segment folder is renamed into place.
//! - `segments.before_rename`: just before a temporary segment folder is renamed to its
//!   final name.
//! - `backup.after_file`: after each file uploaded to the backup target.
//! - `backup.before_manifest`: after every file of a day is in the backup, before its
//!   manifest is written.
//! - `backup.write` (I/O): each write to a `file://` backup target or a restore download.
//! - `gc.read_folder/<table_id>/<segment_id>` (I/O): gc reading that segment folder.
//! - `gc.before_remove`: gc, holding its lease, before the fenced check of each removal.

//!
//! The variable may add an action after a colon: `NAME` or `NAME:abort` aborts,
//! `NAME:sleep-MS` pauses the thread for MS milliseconds (a test then acts on the paused
//! run, e.g. stops a database server), `NAME:stop` stops the whole process with SIGSTOP (a
//! test sees it stopped, acts, then resumes it with SIGCONT: a paused VM), and `NAME:enospc` makes an I/O failpoint
//! ([`failpoint_io`]) fail with "No space left on device", as a full disk would, and
//! `NAME:eacces` with "Permission denied", as a folder it may not read would (for every
//! user, root included, which `chmod` cannot deny).

use std::time::Duration;

/// Environment variable holding the name of the failpoint to crash at.
pub const ENV_VAR: &str = "MILVUS_TIER_FAILPOINT";

/// What an armed failpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Abort,
    Sleep(Duration),
    Stop,
    NoSpace,
    Denied,
}

/// The action armed for `name`, if any.
fn armed(name: &str) -> Option<Action> {
    if !cfg!(feature = "failpoints") {
        return None;
    }
    let v = std::env::var(ENV_VAR).ok()?;
    let (point, action) = v.split_once(':').unwrap_or((&v, "abort"));
    if point != name {
        return None;
    }
    match action {
        "abort" => Some(Action::Abort),
        "enospc" => Some(Action::NoSpace),
        "eacces" => Some(Action::Denied),
        "stop" => Some(Action::Stop),
        a => a
            .strip_prefix("sleep-")
            .and_then(|ms| ms.parse().ok())
            .map(|ms| Action::Sleep(Duration::from_millis(ms))),
    }
}

/// Abort the process immediately if `MILVUS_TIER_FAILPOINT` names `name` (or pause, with
/// the `sleep-MS` action).
pub fn failpoint(name: &str) {
    match armed(name) {
        Some(Action::Abort) => std::process::abort(),
        Some(Action::Sleep(d)) => std::thread::sleep(d),
        // SAFETY: raise only sends a signal to this process.
        Some(Action::Stop) => unsafe {
            libc::raise(libc::SIGSTOP);
        },
        Some(Action::NoSpace) | Some(Action::Denied) | None => {}
    }
}

/// Like [`failpoint`], and with the `enospc` action returns the error a full disk gives,
/// with `eacces` the error of a file or folder that may not be read.
pub fn failpoint_io(name: &str) -> std::io::Result<()> {
    match armed(name) {
        // ENOSPC
        Some(Action::NoSpace) => return Err(std::io::Error::from_raw_os_error(28)),
        // EACCES
        Some(Action::Denied) => return Err(std::io::Error::from_raw_os_error(13)),
        _ => {}
    }
    failpoint(name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse() {
        // Parsing only; the variable is process-wide, so no test sets it in-process.
        assert_eq!(armed("failpoint.tests.never_set"), None);
    }

    #[test]
    fn unset_or_other_name_does_nothing() {
        // The test process never sets the variable to this name.
        failpoint("failpoint.tests.never_set");
    }

    /// Runs in a child process (see `abort_when_name_matches`); a no-op otherwise.
    #[test]
    fn child_entry() {
        if std::env::var_os("MILVUS_TIER_TEST_FAILPOINT_CHILD").is_some() {
            failpoint("failpoint.tests.child");
            // Reached only if the failpoint did not fire.
            std::process::exit(0);
        }
    }

    #[test]
    fn abort_when_name_matches() {
        use std::os::unix::process::ExitStatusExt;
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["failpoint::tests::child_entry", "--exact", "--nocapture"])
            .env("MILVUS_TIER_TEST_FAILPOINT_CHILD", "1")
            .env(ENV_VAR, "failpoint.tests.child")
            .output()
            .unwrap();
        if cfg!(feature = "failpoints") {
            assert_eq!(
                out.status.signal(),
                Some(6),
                "child status {:?}",
                out.status
            );
        } else {
            // A build without the feature (every release) ignores the variable.
            assert_eq!(out.status.code(), Some(0), "child status {:?}", out.status);
        }
    }
}
