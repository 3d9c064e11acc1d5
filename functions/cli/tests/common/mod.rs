//! Helpers the CLI's black-box tests share.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------
// An IAM and STS stand-in: the query protocol, one request per connection.

pub type Handler = dyn Fn(&HashMap<String, String>) -> (u16, String) + Send + Sync;

pub struct StandIn {
    pub url: String,
    actions: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    pub fn start(handler: Box<Handler>) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let actions = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&actions);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let form: HashMap<String, String> = String::from_utf8_lossy(&body)
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| {
                        let decode = |s: &str| {
                            percent_encoding::percent_decode_str(&s.replace('+', " "))
                                .decode_utf8_lossy()
                                .into_owned()
                        };
                        (decode(k), decode(v))
                    })
                    .collect();
                seen.lock()
                    .unwrap()
                    .push(form.get("Action").cloned().unwrap_or_default());
                let (status, xml) = handler(&form);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
            }
        });
        StandIn { url, actions }
    }

    pub fn actions(&self) -> Vec<String> {
        self.actions.lock().unwrap().clone()
    }
}

pub fn response(action: &str, namespace: &str, result: &str) -> (u16, String) {
    (
        200,
        format!(
            "<{action}Response xmlns=\"{namespace}\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>stand-in</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

pub const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

// ---------------------------------------------------------------------------------------
// Running the binary, and reading its reports.

/// `command` with none of the machine's environment but `PATH`, and the AWS configuration
/// files and instance metadata out of reach: the binary sees only what the test gives it.
pub fn without_machine_config(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// A `check-workflows` job report's subjects as (trigger, subject, certain).
#[allow(dead_code)] // the snapshot suite reads no job reports
pub fn subjects(report: &serde_json::Value) -> Vec<(String, String, bool)> {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["trigger"].as_str().unwrap().to_owned(),
                s["subject"].as_str().unwrap().to_owned(),
                s["certain"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// A `check-workflows` job report's findings as (code, line).
#[allow(dead_code)] // the snapshot suite reads no job reports
pub fn codes(report: &serde_json::Value) -> Vec<(String, u64)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}
