//! A local stand-in for Slack: an HTTP/1.1 server on 127.0.0.1 (std only, one thread)
//! that records every request and answers like an incoming webhook (`POST /hooks/…` ->
//! `200 ok`) or like `chat.postMessage` (`POST /api/chat.postMessage` -> `{"ok": true,
//! "channel", "ts"}`), unless a scripted reply (429 with `Retry-After`, 500, a Slack
//! error) is queued. Each connection serves one request and is closed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
    /// The status and body the stub answered with.
    pub status: u16,
    pub reply: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn rate_limited(retry_after: u64) -> Reply {
        Reply {
            status: 429,
            headers: vec![("Retry-After".into(), retry_after.to_string())],
            body: "{\"ok\":false,\"error\":\"ratelimited\"}".into(),
        }
    }

    pub fn server_error() -> Reply {
        Reply {
            status: 500,
            headers: vec![],
            body: "<html>internal error</html>".into(),
        }
    }

    pub fn api_error(error: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![],
            body: json!({"ok": false, "error": error}).to_string(),
        }
    }
}

#[derive(Default)]
struct Shared {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
    next_ts: u64,
}

#[derive(Clone)]
pub struct SlackStub {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl SlackStub {
    /// Listens on an ephemeral loopback port until the test process ends.
    pub fn start() -> SlackStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stub = SlackStub { port, shared };
        let served = stub.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                served.serve(stream);
            }
        });
        stub
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Web API base (`SLACK_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/hooks/services/T000/B000/XXXX", self.base_url())
    }

    /// Queues replies, used in order before the default answers resume.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// The requests that posted a message (answered `200 ok` or `{"ok": true}`).
    pub fn posted(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.status == 200
                    && (r.reply == "ok"
                        || serde_json::from_str::<Value>(&r.reply).is_ok_and(|v| v["ok"] == json!(true)))
            })
            .collect()
    }

    fn default_reply(&self, path: &str, body: &str) -> Reply {
        if path.ends_with("/chat.postMessage") {
            let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let mut shared = self.shared.lock().unwrap();
            shared.next_ts += 1;
            let ts = format!("1791297000.{:06}", shared.next_ts);
            Reply {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
                body: json!({"ok": true, "channel": request["channel"], "ts": ts}).to_string(),
            }
        } else if path.starts_with("/hooks/") {
            Reply {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html".into())],
                body: "ok".into(),
            }
        } else {
            Reply {
                status: 404,
                headers: vec![],
                body: "not_found".into(),
            }
        }
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).is_err() || header.trim_end().is_empty() {
                break;
            }
            if let Some((name, value)) = header.trim_end().split_once(':') {
                let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                }
                headers.push((name, value));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let scripted = self.shared.lock().unwrap().script.pop_front();
        let reply = scripted.unwrap_or_else(|| self.default_reply(&path, &body));
        self.shared.lock().unwrap().requests.push(Recorded {
            method,
            path,
            headers,
            body,
            at: Instant::now(),
            status: reply.status,
            reply: reply.body.clone(),
        });
        let reason = match reply.status {
            200 => "OK",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            _ => "Status",
        };
        let mut response = format!("HTTP/1.1 {} {reason}\r\n", reply.status);
        for (name, value) in &reply.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            reply.body.len(),
            reply.body
        ));
        let mut stream = stream;
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
    }
}
