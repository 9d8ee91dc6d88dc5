//! Test-only support shared by the workspace's integration tests.
//!
//! [`MariaDb`] starts a throwaway `mariadbd` (own temporary datadir, random loopback
//! port, own socket) and stops and removes it on drop, also when a test panics. Each
//! server is separate, so a test can stop one (say, long-term) in the middle of a run.

pub mod moto;
pub mod proxy;
pub mod slack;

pub use moto::Moto;
pub use slack::SlackServer;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Path of a binary built in the same target directory as the running test
/// (e.g. `milvus-sim`, `milvus-tier`). Panics with a hint if it is not built.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is not built: run the tests with `cargo test --workspace` (scripts/test)",
        bin.display()
    );
    bin
}

/// The Python interpreter of the test virtualenv made by `scripts/test`
/// (`$MILVUS_TIER_TEST_VENV`, default `<workspace>/.venv-test`).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("MILVUS_TIER_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-test"));
    let py = venv.join("bin").join("python");
    assert!(
        py.is_file(),
        "{} is missing: run scripts/test, which creates the test virtualenv",
        py.display()
    );
    py
}

/// A program installed in the test virtualenv (e.g. `moto_server`, `kubernetes-validate`).
pub fn venv_bin(name: &str) -> PathBuf {
    let bin = venv_python().with_file_name(name);
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/test, which installs it in the test virtualenv",
        bin.display()
    );
    bin
}

/// A SQLite metadata URL for a file in `dir` (created on first connect).
pub fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(name).display())
}

/// A throwaway MariaDB server.
pub struct MariaDb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// Password of the `tier` user every throwaway server has (reachable over TCP).
pub const PASSWORD: &str = "tier-secret";

impl MariaDb {
    /// Start a server; panics with the server log if it does not come up.
    pub fn start() -> MariaDb {
        let dir = tempfile::Builder::new()
            .prefix("mariadb-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("datadir");
        // Own tmpdir: concurrent bootstraps sharing /tmp collide on temporary table names.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmpdir");
        let root_user: Vec<&str> = if is_root() {
            vec!["--user=root"]
        } else {
            vec![]
        };
        let install = Command::new(find_bin(&["mariadb-install-db", "mysql_install_db"]))
            .arg("--no-defaults")
            .args(&root_user)
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--tmpdir={}", tmp.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect(
                "run mariadb-install-db (is mariadb-server installed? scripts/test installs it)",
            );
        assert!(
            install.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        let port = free_port();
        let mut db = MariaDb {
            dir,
            port,
            child: None,
        };
        db.launch();
        db.sql(&format!(
            "CREATE USER 'tier'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO 'tier'@'127.0.0.1';"
        ));
        db
    }

    /// Start `mariadbd` on the existing datadir and port; wait until it answers.
    fn launch(&mut self) {
        let data = self.dir.path().join("data");
        let tmp = self.dir.path().join("tmp");
        let root_user: Vec<&str> = if is_root() {
            vec!["--user=root"]
        } else {
            vec![]
        };
        let socket = self.dir.path().join("mysql.sock");
        let log = self.dir.path().join("error.log");
        let child = Command::new(find_bin(&["mariadbd", "mysqld"]))
            .arg("--no-defaults")
            .args(&root_user)
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--port={}", self.port))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--skip-log-bin",
            ])
            .arg(format!("--log-error={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.sql_quiet("SELECT 1").is_ok() {
                break;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "mariadbd exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd not ready: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start the server again after [`MariaDb::kill`], same data and port (as after a
    /// crash: InnoDB recovers and rolls back what was not committed).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Create database `name` if absent and return its URL (user `tier`, password included).
    pub fn database(&self, name: &str) -> String {
        self.sql(&format!("CREATE DATABASE IF NOT EXISTS `{name}`"));
        format!("mysql://tier:{PASSWORD}@127.0.0.1:{}/{name}", self.port)
    }

    /// Run SQL as root over the socket; panics on error. Returns tab-separated output.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_quiet(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {sql}: {e}"))
    }

    fn sql_quiet(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(find_bin(&["mariadb", "mysql"]))
            .args(["--no-defaults", "-uroot", "-N", "-B"])
            .arg(format!(
                "--socket={}",
                self.dir.path().join("mysql.sock").display()
            ))
            .arg("-e")
            .arg(sql)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Kill the server at once (as a crash would); later connections fail.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

fn find_bin(names: &[&str]) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        for n in names {
            let p = Path::new(dir).join(n);
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from(names[0])
}
