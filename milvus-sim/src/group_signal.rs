//! Fault `MILVUS_SIM_SIGNAL_GROUP=1`: fail at start the way Milvus 1.1.1 does when it cannot
//! open its database (e.g. `WalManager::Init` failing, "Wal init error!").
//!
//! `DBWrapper::StartService` (core/src/server/DBWrapper.cpp) prints the error and calls
//! `kill(0, SIGUSR1)`, which signals every process in the caller's process group, not only
//! the server. milvus_server's own handler (core/src/main.cpp:118 ->
//! `SignalUtil::HandleSignal`) stops the server and exits 1; any other process of the group
//! without a handler dies of SIGUSR1.

/// The environment variable that switches the fault on (`1`).
pub const ENV: &str = "MILVUS_SIM_SIGNAL_GROUP";

/// With the fault on: print Milvus's error, signal the whole process group with SIGUSR1 and
/// exit 1 from the handler, as milvus_server does. Returns when the fault is off.
pub fn fail_at_start_if_set() {
    if std::env::var(ENV).as_deref() != Ok("1") {
        return;
    }
    eprintln!("Error: Failed to open database: Wal init error!");
    // SAFETY: installs a handler that only calls the async-signal-safe `_exit`, then sends
    // SIGUSR1 to this process's group (pid 0), as DBWrapper::StartService does.
    unsafe {
        libc::signal(
            libc::SIGUSR1,
            on_usr1 as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::kill(0, libc::SIGUSR1);
    }
    // The handler normally ends the process first; the outcome is the same.
    std::process::exit(1);
}

/// `SignalUtil::HandleSignal` for a critical signal: stop and exit 1.
extern "C" fn on_usr1(_: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe.
    unsafe { libc::_exit(1) }
}
