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
    let days = t.div_euclid(86_400);
    let (hh, mm, ss) = (
        t.rem_euclid(86_400) / 3600,
        t.rem_euclid(3600) / 60,
        t.rem_euclid(60),
    );
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    event["detail"]["eventTime"] = json!(format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"));
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
