//! A throwaway moto server (S3, AWS Batch, IAM) on a random loopback port, from the test
//! virtualenv that `scripts/test` makes. Stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, venv_bin};

/// Access key and secret every moto server accepts (moto does not check them).
pub const ACCESS_KEY: &str = "test";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "test";
/// Region the tests use.
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct Moto {
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Moto {
    /// Start a server with no extra environment.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// Start a server with extra environment variables (e.g.
    /// `MOTO_SIMPLE_BATCH_FAIL_AFTER=0`, which makes every Batch job fail).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let dir = tempfile::Builder::new()
            .prefix("moto-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("moto.log");
        let port = free_port();
        let out = std::fs::File::create(&log).expect("moto log");
        let mut cmd = Command::new(venv_bin("moto_server"));
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn moto_server");
        let mut moto = Moto {
            port,
            child: Some(child),
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !moto.http_ok("GET", "/moto-api/", None) {
            if let Some(status) = moto
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("moto_server exited with {status}: {}", moto.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server not ready: {}",
                moto.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Endpoint URL, e.g. `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switch Batch to moto's Docker-free backend (jobs finish at once).
    pub fn batch_without_docker(&self) {
        assert!(
            self.http_ok(
                "POST",
                "/moto-api/config",
                Some(r#"{"batch":{"use_docker":false}}"#)
            ),
            "moto config failed: {}",
            self.log_text()
        );
    }

    /// Create IAM role `name` (Batch compute environments need one); returns its ARN.
    pub fn iam_role(&self, name: &str) -> String {
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
        );
        // moto routes unsigned requests by the service named in the credential scope.
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0"
        );
        assert!(
            self.http_request(
                "POST",
                "/",
                Some(&body),
                &[
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/x-www-form-urlencoded")
                ]
            ),
            "moto CreateRole failed: {}",
            self.log_text()
        );
        format!("arn:aws:iam::123456789012:role/{name}")
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kill the server at once; later requests fail to connect.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A minimal blocking HTTP/1.1 request with a JSON content type; true on a 2xx answer.
    fn http_ok(&self, method: &str, path: &str, body: Option<&str>) -> bool {
        self.http_request(method, path, body, &[("Content-Type", "application/json")])
    }

    fn http_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let body = body.unwrap_or("");
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.starts_with("HTTP/1.1 2") || resp.starts_with("HTTP/1.0 2")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}
