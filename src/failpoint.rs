//! Named crash points for crash-recovery tests.
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

/// Environment variable holding the name of the failpoint to crash at.
pub const ENV_VAR: &str = "MILVUS_TIER_FAILPOINT";

/// Abort the process immediately if `MILVUS_TIER_FAILPOINT` equals `name`.
pub fn failpoint(name: &str) {
    if let Some(v) = std::env::var_os(ENV_VAR)
        && v == name
    {
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            out.status.signal(),
            Some(6),
            "child status {:?}",
            out.status
        );
    }
}
