//! The chat stand-in (Slack and Teams) of `tests/standins/chat.py`, which the e2e tier uses
//! too, run as a child process of the test: `python3` from `PATH`, one process per
//! [`ChatStandIn::start`], stopped when the last handle is dropped (or, should the test
//! process die first, when its stdin closes). Its scripted answers and what it recorded go
//! over its control paths (`/_control/…`, `/_recorded`), with a one-request HTTP/1.1 client
//! on std.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// The bot token `chat.postMessage` accepts, and the incoming webhook's path.
pub const BOT_TOKEN: &str = "xoxb-test-token";
pub const WEBHOOK_PATH: &str = "/hooks/services/T000/B000/XXXX";

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived, on the stand-in's monotonic clock.
    pub at: Duration,
    /// The status and body the stand-in answered with (0 and empty: not answered).
    pub status: u16,
    pub reply: String,
    /// Whether that answer means the message was posted.
    pub posted: bool,
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

    fn from_value(value: &Value) -> Recorded {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        Recorded {
            method: text("method"),
            path: text("path"),
            headers: value["headers"]
                .as_object()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            body: text("raw"),
            at: Duration::from_secs_f64(value["t"].as_f64().unwrap_or(0.0)),
            status: value["status"].as_u64().map_or(0, |s| s as u16),
            reply: text("reply"),
            posted: value["posted"] == json!(true),
        }
    }
}

/// A one-shot answer, used before the default answers resume.
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
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: json!({"ok": false, "error": error}).to_string(),
        }
    }
}

/// Kills the child when the last handle goes.
struct Process {
    child: Mutex<Child>,
    _stdin: ChildStdin,
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Clone)]
pub struct ChatStandIn {
    port: u16,
    teams_path: String,
    _process: Arc<Process>,
}

fn python3() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("python3"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("the chat stand-in (tests/standins/chat.py) needs python3 on PATH, and there is none")
        })
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/standins/chat.py")
}

impl ChatStandIn {
    /// Starts a stand-in with [`BOT_TOKEN`] and [`WEBHOOK_PATH`] on an ephemeral loopback port.
    pub fn start() -> ChatStandIn {
        let script = script_path();
        let mut child = Command::new(python3())
            .arg(&script)
            .args([
                "--token",
                BOT_TOKEN,
                "--webhook-path",
                WEBHOOK_PATH,
                "--exit-on-stdin-eof",
            ])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let process = Arc::new(Process {
            child: Mutex::new(child),
            _stdin: stdin,
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{} printed no port within 20 s", script.display()));
        let started: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: {e}: {line:?}", script.display()));
        ChatStandIn {
            port: started["port"].as_u64().expect("port") as u16,
            teams_path: started["teams_path"].as_str().expect("teams_path").to_owned(),
            _process: process,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Web API base (`SLACK_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.base_url())
    }

    /// A Teams Workflows incoming webhook URL.
    pub fn teams_url(&self) -> String {
        format!("{}{}", self.base_url(), self.teams_path)
    }

    /// Queues replies, used in order before the default answers resume.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        for reply in replies {
            let headers: serde_json::Map<String, Value> =
                reply.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            self.control(
                "answer-once",
                &json!({"status": reply.status, "headers": headers, "body": reply.body}),
            );
        }
    }

    /// Every request answered with `status` until [`ChatStandIn::heal`].
    pub fn fail_always(&self, status: u16) {
        self.control("fail-always", &json!({ "status": status }));
    }

    /// Clears the queued replies, the failure, the delay and a hold.
    pub fn heal(&self) {
        self.control("heal", &json!({}));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        let (_, body) = self.http("GET", "/_recorded", "");
        let recorded: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("/_recorded: {e}: {body}"));
        recorded
            .as_array()
            .map(|all| all.iter().map(Recorded::from_value).collect())
            .unwrap_or_default()
    }

    /// The requests answered as posted (`200 ok` on a webhook, `{"ok": true}` on
    /// `chat.postMessage`, `202` on a Teams workflow).
    pub fn posted(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.posted).collect()
    }

    fn control(&self, action: &str, body: &Value) {
        let (status, answer) = self.http("POST", &format!("/_control/{action}"), &body.to_string());
        assert_eq!(status, 200, "/_control/{action}: {answer}");
    }

    /// One request on its own connection: (status, body).
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("chat stand-in on port {}: {e}", self.port));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("control request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("control response");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, body.to_owned())
    }
}
