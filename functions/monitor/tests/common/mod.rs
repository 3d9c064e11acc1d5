//! Samples, snapshots, event builders and configuration shared by the monitor's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use diagnosis::AccountSnapshot;
use oidc_watch_aws::config::Config;
use serde_json::{json, Value};

pub const T0: i64 = 1_793_000_000;

pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_below(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
    found.sort();
    found
}

pub fn accounts() -> Vec<AccountSnapshot> {
    files_below(&events_dir().join("accounts"))
        .iter()
        .map(|p| AccountSnapshot::from_json(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

pub fn sample(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(events_dir().join(path)).unwrap()).unwrap()
}

/// The same job's event again: a new event id, as each retry of the action gets.
pub fn retry_of(event: &Value, n: usize) -> Value {
    let mut event = event.clone();
    event["id"] = json!(format!("retry-{n}"));
    event["detail"]["eventID"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
    event
}

/// The event as if it happened at `t` (epoch seconds).
pub fn at(mut event: Value, t: i64) -> Value {
    event["detail"]["eventTime"] = json!(diagnosis::time::iso8601(t));
    event
}

pub fn with_subject(event: &Value, sub: &str, n: usize) -> Value {
    let mut event = retry_of(event, n);
    let provider = event["detail"]["userIdentity"]["identityProvider"]
        .as_str()
        .unwrap()
        .to_owned();
    event["detail"]["userIdentity"]["userName"] = json!(sub);
    event["detail"]["userIdentity"]["principalId"] = json!(format!("{provider}:sts.amazonaws.com:{sub}"));
    if let Some(response) = event["detail"]["responseElements"].as_object_mut() {
        response.insert("subjectFromWebIdentityToken".into(), json!(sub));
    }
    event
}

/// The monitor's configuration; `owners` is ALLOWED_OWNERS, empty for the default.
pub fn config(owners: &str) -> Config {
    Config::from_map(
        &[
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:oidc-watch-alerts",
            ),
            ("STATE_TABLE_NAME", "oidc-watch-state"),
            ("ALLOWED_OWNERS", owners),
            ("SPIKE_WINDOW_SECONDS", "300"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .expect("config")
}
