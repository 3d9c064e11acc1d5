//! `oidc-watch diagnose` on query-engine results (events/replay/athena-result.csv,
//! athena-unload.jsonl, lake-get-query-results.json, written from every scenario sample by
//! tests/make-query-results.py): the same diagnoses as the samples themselves; and
//! `oidc-watch query` prints SQL whose columns are the ones those files hold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn oidc_watch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run oidc-watch")
}

fn diagnoses(args: &[&str]) -> BTreeMap<String, Value> {
    let output = oidc_watch(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let d: Value = serde_json::from_str(line).unwrap();
            (d["event_id"].as_str().unwrap().to_owned(), d)
        })
        .collect()
}

fn scenario_files() -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![repo().join("events")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(repo().join("events")).unwrap().to_owned();
            let top = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .into_owned();
            if ["accounts", "changes", "replay", "sns"].contains(&top.as_str()) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(format!("events/{}", relative.display()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_engine_result_diagnoses_exactly_like_the_cloudtrail_records() {
    let files = scenario_files();
    let mut args = vec!["diagnose", "--account", "events/accounts", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let expected = diagnoses(&args);
    assert!(expected.len() >= 30, "{}", expected.len());
    for result in [
        "events/replay/athena-result.csv",
        "events/replay/athena-unload.jsonl",
        "events/replay/lake-get-query-results.json",
    ] {
        let got = diagnoses(&[
            "diagnose",
            result,
            "--account",
            "events/accounts",
            "--format",
            "json",
        ]);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{result}: not the same events (rerun tests/make-query-results.py after adding a sample)"
        );
        for (id, diagnosis) in &got {
            assert_eq!(diagnosis, &expected[id], "{result}: event {id}");
        }
    }
}

#[test]
fn a_broken_result_row_is_reported_and_the_others_diagnosed() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("events/replay/athena-unload.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().take(3).collect();
    lines.insert(1, "{\"eventid\": \"broken\", \"eventname\": ");
    let path = dir.path().join("unload.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let output = oidc_watch(&["diagnose", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "an unreadable row fails the run");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[test]
fn the_query_selects_the_columns_the_results_hold() {
    let header = std::fs::read_to_string(repo().join("events/replay/athena-result.csv")).unwrap();
    let columns: Vec<String> = header
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(|c| c.trim_matches('"').to_owned())
        .collect();
    for engine in ["athena", "lake"] {
        let output = oidc_watch(&[
            "query",
            "--engine",
            engine,
            "--table",
            "cloudtrail_logs",
            "--since",
            "2026-10-01",
            "--until",
            "2026-11-01",
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let sql = String::from_utf8(output.stdout).unwrap();
        for column in &columns {
            let named = sql.lines().any(|l| {
                let l = l.trim().trim_end_matches(',');
                l == column || l.ends_with(&format!(" AS {column}"))
            });
            assert!(named, "{engine}: {column} not selected:\n{sql}");
        }
        assert!(sql.contains("'AssumeRoleWithWebIdentity'"), "{sql}");
    }
    let refused = oidc_watch(&[
        "query", "--engine", "athena", "--table", "x'; --", "--since", "7d",
    ]);
    assert_eq!(refused.status.code(), Some(2));
}
