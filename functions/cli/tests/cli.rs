//! The `oidc-watch` binary, run as a user runs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn oidc_watch(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args(args)
        .current_dir(repo())
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run oidc-watch");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn diagnoses_every_sample_with_the_snapshot_of_its_account() {
    let output = oidc_watch(
        &[
            "diagnose",
            "events/",
            "--account",
            "events/accounts/",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let diagnoses = json_lines(&output);
    assert!(diagnoses.len() >= 40, "{}", diagnoses.len());
    for d in &diagnoses {
        for key in [
            "event_id",
            "event_time",
            "account_id",
            "region",
            "outcome",
            "error_code",
            "role_arn",
            "provider",
            "subject",
            "audience",
            "claims",
            "cause",
            "subject_mismatch",
            "confidence",
            "explanation",
            "fix",
            "failed_conditions",
            "findings",
        ] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
        assert_eq!(d["evidence"], "account-snapshot", "{d}");
    }
    let branch = diagnoses
        .iter()
        .find(|d| d["subject"] == "repo:acme/web-app:ref:refs/heads/feature/login-form")
        .expect("the feature-branch sample");
    assert_eq!(
        (branch["cause"].as_str(), branch["subject_mismatch"].as_str()),
        (Some("SubjectMismatch"), Some("Branch"))
    );
    assert_eq!(branch["confidence"], "certain");
    assert_eq!(branch["claims"]["repository"], "acme/web-app");
    assert_eq!(
        branch["failed_conditions"][0]["key"],
        "token.actions.githubusercontent.com:sub"
    );
    assert_eq!(
        branch["failed_conditions"][0]["actual"],
        "repo:acme/web-app:ref:refs/heads/feature/login-form"
    );
    assert!(branch["fix"]
        .as_str()
        .unwrap()
        .contains("repo:acme/web-app:ref:refs/heads/feature/login-form"));
}

#[test]
fn account_snapshots_can_be_named_one_by_one() {
    let event = "events/subject-mismatch/case/terraform-cloud-default-project-lowercase.json";
    let with = oidc_watch(
        &[
            "diagnose",
            event,
            "--account",
            "events/accounts/111122223333-github-acme.json",
            "--account",
            "events/accounts/777788889999-gitlab-tfc.json",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(json_lines(&with)[0]["subject_mismatch"], "Case");
    let wrong_account = oidc_watch(
        &[
            "diagnose",
            event,
            "--account",
            "events/accounts/111122223333-github-acme.json",
            "--format",
            "json",
        ],
        None,
    );
    let d = &json_lines(&wrong_account)[0];
    assert_eq!(
        (d["evidence"].as_str(), d["confidence"].as_str()),
        (Some("event-only"), Some("unknown"))
    );
}

#[test]
fn reads_stdin_gzip_and_cloudtrail_log_files() {
    let bytes = std::fs::read(repo().join("events/none/github-push-main-success.json")).unwrap();
    let output = oidc_watch(&["diagnose", "-"], Some(&bytes));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        json_lines(&output)[0]["cause"],
        "None",
        "not a terminal: JSON by default"
    );

    let plain = oidc_watch(
        &["diagnose", "events/replay/cloudtrail-log-file-mixed.json"],
        None,
    );
    let gzipped = oidc_watch(
        &["diagnose", "events/replay/cloudtrail-log-file-mixed.json.gz"],
        None,
    );
    assert_eq!(json_lines(&plain).len(), 3);
    assert_eq!(plain.stdout, gzipped.stdout);
}

#[test]
fn a_malformed_record_is_reported_and_the_rest_go_on() {
    let output = oidc_watch(
        &[
            "diagnose",
            "tests/data/malformed/records-with-truncated-line.jsonl",
            "--account",
            "events/accounts",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_lines(&output).len(), 4);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("record 2 (line 2): not valid JSON"), "{stderr}");

    let missing = oidc_watch(&["diagnose", "no/such/file.json"], None);
    assert_eq!(missing.status.code(), Some(1));
    let bad_snapshot = oidc_watch(&["diagnose", "events/none", "--account", "Cargo.toml"], None);
    assert_eq!(bad_snapshot.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_snapshot.stderr).contains("Cargo.toml"));
}

#[test]
fn text_output_names_cause_condition_and_fix_and_escapes_hostile_subjects() {
    let output = oidc_watch(
        &[
            "diagnose",
            "events/subject-mismatch/environment",
            "--account",
            "events/accounts",
            "--format",
            "text",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "✗ SubjectMismatch (Environment)",
        "expected",
        "actual",
        "fix",
        "repo:acme/web-app:environment:production",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(
        !text.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );

    let hostile = r#"{"eventName":"AssumeRoleWithWebIdentity","errorCode":"AccessDenied","recipientAccountId":"111122223333",
        "userIdentity":{"type":"WebIdentityUser","userName":"repo:evil/x:ref:refs/heads/\u001b[2J\u001b]0;pwned\u0007\nOK  assumed",
        "identityProvider":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
        "requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/gha-deploy-web-app"}}"#;
    let output = oidc_watch(
        &[
            "diagnose",
            "-",
            "--account",
            "events/accounts",
            "--format",
            "text",
        ],
        Some(hostile.as_bytes()),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("OK")),
        "a subject must not forge a line:\n{text}"
    );
    assert!(text.contains("SubjectMismatch (Repository)"), "{text}");
}

#[test]
fn evaluate_prints_the_decision_and_every_statement() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let request = dir.path().join("request.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
             "Action":"sts:AssumeRoleWithWebIdentity",
             "Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:acme/*"}}},
            {"Effect":"Deny","Principal":"*","Action":"sts:*",
             "Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"*:pull_request"}}}]}"#,
    )
    .unwrap();
    let evaluate = || {
        oidc_watch(
            &[
                "evaluate",
                "--policy",
                policy.to_str().unwrap(),
                "--request",
                request.to_str().unwrap(),
            ],
            None,
        )
    };
    let run = |sub: &str| {
        std::fs::write(
            &request,
            serde_json::json!({"principal": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com",
                               "action": "sts:AssumeRoleWithWebIdentity",
                               "context": {"token.actions.githubusercontent.com:sub": sub}})
            .to_string(),
        )
        .unwrap();
        let output = evaluate();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let allowed = run("repo:acme/web:ref:refs/heads/main");
    assert_eq!(allowed["decision"], "Allow");
    assert_eq!(allowed["statements"].as_array().unwrap().len(), 2);
    assert_eq!(allowed["statements"][0]["matched"], true);
    assert_eq!(allowed["statements"][1]["conditions"][0]["result"], false);
    assert_eq!(run("repo:acme/web:pull_request")["decision"], "ExplicitDeny");
    assert_eq!(
        run("repo:other/web:ref:refs/heads/main")["decision"],
        "ImplicitDeny"
    );

    std::fs::write(&request, "{}").unwrap();
    let output = evaluate();
    assert_eq!(output.status.code(), Some(2));
}
