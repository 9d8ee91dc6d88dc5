//! A loopback HTTP proxy that spoils every Nth request and forwards the others to an upstream
//! server: it either answers `503 Slow Down` (as S3 does when throttling) or `403
//! AccessDenied`, or forwards the
//! request and cuts the response off after its head and a few body bytes (a connection that
//! breaks mid-transfer). Each connection carries one request (the proxy answers with
//! `Connection: close`), so requests are counted exactly. Stopped on drop.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How the proxy spoils a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Answer `503 Slow Down` without forwarding.
    SlowDown,
    /// Forward, then pass on only the response head and [`CUT_AFTER`] body bytes.
    Truncate,
    /// Answer `403 AccessDenied` without forwarding.
    Forbidden,
}

/// Body bytes a truncated response keeps.
const CUT_AFTER: usize = 1000;

/// A running proxy.
pub struct FaultyProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl FaultyProxy {
    /// Forward to `127.0.0.1:upstream`, answering requests number `every`, `2 × every`, …
    /// with 503 (`every` = 1 fails them all).
    pub fn start(upstream: u16, every: usize) -> FaultyProxy {
        Self::spawn(upstream, every, Fault::SlowDown)
    }

    /// Forward every request to `127.0.0.1:upstream`, but cut the responses to requests
    /// number `every`, `2 × every`, … short: head and the first 1000 body bytes, then the
    /// connection closes.
    pub fn truncating(upstream: u16, every: usize) -> FaultyProxy {
        Self::spawn(upstream, every, Fault::Truncate)
    }

    /// Answer requests number `every`, `2 × every`, … with `403 AccessDenied` (as S3 does
    /// for a key without permission), forwarding the others.
    pub fn forbidding(upstream: u16, every: usize) -> FaultyProxy {
        Self::spawn(upstream, every, Fault::Forbidden)
    }

    fn spawn(upstream: u16, every: usize, fault: Fault) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (st, se, fa) = (stop.clone(), seen.clone(), failed.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (se, fa) = (se.clone(), fa.clone());
                        std::thread::spawn(move || {
                            // A broken connection is the client's to report.
                            let _ = serve(client, upstream, every.max(1), fault, &se, &fa);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultyProxy {
            port,
            stop,
            seen,
            failed,
        }
    }

    /// Endpoint URL of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }

    /// Requests spoiled so far (answered with 503 or 403, or cut short).
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    mut client: TcpStream,
    upstream: u16,
    every: usize,
    fault: Fault,
    seen: &AtomicUsize,
    failed: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    // Read the head, then the body by Content-Length.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
    let spoil = n.is_multiple_of(every);
    if spoil && fault != Fault::Truncate {
        failed.fetch_add(1, Ordering::Relaxed);
        let (status, code, message) = if fault == Fault::SlowDown {
            (
                "503 Slow Down",
                "SlowDown",
                "Please reduce your request rate.",
            )
        } else {
            ("403 Forbidden", "AccessDenied", "Access Denied")
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        client.flush()?;
        return client.shutdown(Shutdown::Both);
    }
    // Forward with `Connection: close` so that one connection is one request.
    let head = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())?;
    up.write_all(&buf[head_end..])?;
    up.flush()?;
    if spoil {
        // Responses with less body than that go through whole (and do not count).
        let mut resp = Vec::new();
        loop {
            let n = up.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            resp.extend_from_slice(&chunk[..n]);
            if let Some(i) = resp.windows(4).position(|w| w == b"\r\n\r\n")
                && resp.len() > i + 4 + CUT_AFTER
            {
                resp.truncate(i + 4 + CUT_AFTER);
                failed.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        client.write_all(&resp)?;
        client.flush()?;
        return client.shutdown(Shutdown::Both);
    }
    std::io::copy(&mut up, &mut client)?;
    client.shutdown(Shutdown::Both)
}
