//! A recording Slack endpoint on a random loopback port: answers `chat.postMessage` like
//! Slack's Web API and anything else like an incoming webhook (`ok`), and records every
//! request (method, path, headers, JSON body). Replies can be scripted: HTTP 429 with
//! Retry-After, `{"ok":false,"error":…}`, HTTP 500 or HTTP 400. Stopping it makes Slack "down".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path (with query).
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body parsed as JSON (Null if it is not JSON).
    pub body: serde_json::Value,
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted reply (used once, in order; then the server answers normally).
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 429 with `Retry-After: secs`.
    RateLimited(u64),
    /// HTTP 200 with `{"ok":false,"error":code}`.
    ApiError(String),
    /// HTTP 500.
    ServerError,
    /// HTTP 400 (`invalid_payload`, as a webhook refuses a message).
    BadRequest,
}

#[derive(Default)]
struct Shared {
    recorded: Vec<Recorded>,
    script: Vec<Reply>,
}

/// The running server.
pub struct SlackServer {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SlackServer {
    /// Start on a random port.
    pub fn start() -> SlackServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = handle(conn, &s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SlackServer {
            port,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// Web API base URL (`http://127.0.0.1:PORT/api`).
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port)
    }

    /// An incoming-webhook URL on this server.
    pub fn webhook_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/services/T000/B000/XXXXSECRET",
            self.port
        )
    }

    /// Queue replies for the next requests.
    pub fn script(&self, replies: &[Reply]) {
        self.shared
            .lock()
            .unwrap()
            .script
            .extend_from_slice(replies);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap().recorded.clone()
    }

    /// Stop listening: later posts fail to connect.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SlackServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn handle(conn: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let reply = {
        let mut s = shared.lock().unwrap();
        s.recorded.push(Recorded {
            method,
            path: path.clone(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            at: Instant::now(),
        });
        (!s.script.is_empty()).then(|| s.script.remove(0))
    };
    let api = path.contains("chat.postMessage");
    let (status, extra, ctype, text) = match reply {
        Some(Reply::RateLimited(secs)) => (
            "429 Too Many Requests",
            format!("Retry-After: {secs}\r\n"),
            if api { "application/json" } else { "text/plain" },
            if api {
                r#"{"ok":false,"error":"ratelimited"}"#.to_string()
            } else {
                "rate_limited".to_string()
            },
        ),
        Some(Reply::ApiError(code)) => (
            "200 OK",
            String::new(),
            "application/json",
            serde_json::json!({"ok": false, "error": code}).to_string(),
        ),
        Some(Reply::ServerError) => (
            "500 Internal Server Error",
            String::new(),
            "text/plain",
            "internal_error".to_string(),
        ),
        Some(Reply::BadRequest) => (
            "400 Bad Request",
            String::new(),
            "text/plain",
            "invalid_payload".to_string(),
        ),
        None if api => (
            "200 OK",
            String::new(),
            "application/json",
            r#"{"ok":true,"channel":"C0TEST","ts":"1764000000.000100","message":{"ts":"1764000000.000100","text":"ok"}}"#
                .to_string(),
        ),
        None => ("200 OK", String::new(), "text/html", "ok".to_string()),
    };
    let mut w = conn;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{text}",
        text.len()
    )?;
    w.flush()
}
