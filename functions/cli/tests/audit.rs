//! `oidc-watch audit` as a user runs it: the binary over snapshot fixtures
//! (tests/data/audit/), with the GitHub stand-in of tests/standins/github.py on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

mod common;
use common::{response, without_machine_config, StandIn, IAM_NS, STS_NS};

const ACCOUNT: &str = "210987654321";
const TOKEN: &str = "ghp_audit_test_token";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/audit")
        .join(name)
}

fn snapshot() -> PathBuf {
    data("accounts")
}

/// The GitHub stand-in, a child process stopped when this is dropped.
struct GitHub {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
}

impl GitHub {
    fn start(extra: &[&str]) -> GitHub {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/standins/github.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--data")
            .arg(data("github.json"))
            .args(["--token", TOKEN, "--exit-on-stdin-eof"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the GitHub stand-in needs python3 on PATH");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let announced: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        GitHub {
            child,
            stdin,
            url: announced["url"].as_str().unwrap().to_owned(),
        }
    }

    /// Every request it answered: [{"method", "path", "authorization", "status"}].
    fn recorded(&self) -> Vec<Value> {
        let address = self.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET /_recorded HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }
}

impl Drop for GitHub {
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn audit(args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oidc-watch"));
    command
        .arg("audit")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_TOKEN");
    if let Some(token) = token {
        command.env("GITHUB_TOKEN", token);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.code().is_some(),
        "killed by a signal: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line {l:?}: {e}")))
        .collect()
}

fn with_code<'a>(findings: &'a [Value], code: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["code"] == code).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn existing_renamed_deleted_and_immutable_repositories() {
    let github = GitHub::start(&[]);
    let output = audit(
        &[
            "--account",
            snapshot().to_str().unwrap(),
            "--github-api",
            &github.url,
            "--format",
            "json",
        ],
        Some(TOKEN),
    );
    let findings = lines(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "high findings fail by default: {}",
        stderr(&output)
    );
    for finding in &findings {
        let object = finding.as_object().unwrap();
        for key in [
            "account",
            "role",
            "provider",
            "statement",
            "code",
            "severity",
            "message",
            "suggested_change",
        ] {
            assert!(object.contains_key(key), "{key} missing from {finding}");
        }
        assert_eq!(finding["account"], ACCOUNT);
    }

    let deleted = with_code(&findings, "RepositoryNotFound");
    assert_eq!(deleted.len(), 1, "{findings:#?}");
    assert_eq!(
        (&deleted[0]["role"], &deleted[0]["value"], &deleted[0]["severity"]),
        (&json!("deleted"), &json!("acme/gone"), &json!("high"))
    );
    assert_eq!(
        deleted[0]["suggested_change"]["remove"],
        json!(["repo:acme/gone:*"])
    );

    let renamed = with_code(&findings, "RepositoryRenamed");
    assert_eq!(renamed.len(), 1, "{findings:#?}");
    assert_eq!(renamed[0]["role"], "renamed");
    assert!(renamed[0]["message"].as_str().unwrap().contains("\"acme/site\""));
    assert_eq!(renamed[0]["suggested_change"]["add"], json!(["repo:acme/site:*"]));

    let immutable = with_code(&findings, "ImmutableSubjectsNotNamed");
    assert_eq!(immutable.len(), 1, "{findings:#?}");
    assert_eq!(immutable[0]["role"], "immutable");
    assert!(immutable[0]["message"]
        .as_str()
        .unwrap()
        .contains("\"repo:acme@7/fresh@55:*\""));
    assert_eq!(
        immutable[0]["suggested_change"]["add"],
        json!(["repo:acme@7/fresh@55:*"])
    );

    let freed = with_code(&findings, "OwnerNotFound");
    assert_eq!(freed.len(), 1);
    assert_eq!(
        (&freed[0]["role"], &freed[0]["value"]),
        (&json!("freed-owner"), &json!("defunct-org"))
    );

    let strangers = with_code(&findings, "OwnerWildcardMatchesStrangers");
    assert_eq!(strangers.len(), 1, "{findings:#?}");
    let message = strangers[0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"acme-evil\"") && !message.contains("\"acme\","),
        "{message}"
    );

    // The repository that exists under its name, and the private one the token may read,
    // are not reported as gone or moved.
    for role in ["web", "private"] {
        assert!(
            findings
                .iter()
                .filter(|f| f["role"] == role)
                .all(|f| f["severity"] != "high"),
            "{role}: {findings:#?}"
        );
    }
    let requests = github.recorded();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r["authorization"] == format!("Bearer {TOKEN}")),
        "{requests:#?}"
    );
    assert!(requests
        .iter()
        .any(|r| r["path"] == "/repos/acme/old-site" && r["status"] == 301));
}

#[test]
fn without_a_token_lookups_are_anonymous_and_private_repositories_are_not_called_gone() {
    let github = GitHub::start(&[]);
    let output = audit(
        &[
            "--account",
            snapshot().to_str().unwrap(),
            "--github-api",
            &github.url,
            "--format",
            "json",
        ],
        None,
    );
    let findings = lines(&output);
    assert!(github.recorded().iter().all(|r| r["authorization"].is_null()));
    let gone: Vec<&Value> = with_code(&findings, "RepositoryNotFound");
    assert!(
        gone.iter()
            .all(|f| f["role"] != "private" && f["role"] != "deleted"),
        "{gone:#?}"
    );
    let notes = stderr(&output);
    assert!(notes.contains("No GITHUB_TOKEN"), "{notes}");
    assert!(
        notes.contains("\"acme/secret\"") && notes.contains("\"acme/gone\""),
        "{notes}"
    );
    // What is public is still judged.
    assert_eq!(with_code(&findings, "RepositoryRenamed").len(), 1);
}

#[test]
fn a_spent_rate_limit_stops_the_lookups_and_says_so() {
    let github = GitHub::start(&["--rate-limit-after", "2"]);
    let output = audit(
        &[
            "--account",
            snapshot().to_str().unwrap(),
            "--github-api",
            &github.url,
            "--format",
            "json",
        ],
        Some(TOKEN),
    );
    let requests = github.recorded();
    let limited = requests.iter().filter(|r| r["status"] == 403).count();
    // Lookups already in flight may still hit the limit; none start after it.
    assert!((1..=4).contains(&limited), "{requests:#?}");
    assert!(requests.len() <= 2 + 4, "{requests:#?}");
    let notes = stderr(&output);
    assert!(notes.contains("rate limit was spent"), "{notes}");
    assert!(output.status.code() == Some(0) || output.status.code() == Some(1));
}

#[test]
fn exit_codes_follow_fail_on_and_bad_input() {
    let web = data("web-only.json");
    let web = web.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["--account", web, "--no-github", "--format", "json"];
        args.extend_from_slice(extra);
        audit(&args, None).status.code()
    };
    // Only a low finding (the name-based subject).
    assert_eq!(run(&[]), Some(0));
    assert_eq!(run(&["--fail-on", "medium"]), Some(0));
    assert_eq!(run(&["--fail-on", "low"]), Some(1));
    assert_eq!(run(&["--fail-on", "none"]), Some(0));
    let all = snapshot();
    let output = audit(
        &[
            "--account",
            all.to_str().unwrap(),
            "--no-github",
            "--fail-on",
            "none",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(
        lines(&output)
            .iter()
            .all(|f| !f["code"].as_str().unwrap().contains("Repository")),
        "--no-github asks GitHub nothing"
    );

    assert_eq!(
        audit(&["--no-github"], None).status.code(),
        Some(2),
        "no accounts"
    );
    assert_eq!(
        audit(&["--account", "/nonexistent/snapshot.json"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        audit(&["--live", "--accounts", "12345", "--read-role", "r"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        audit(&["--account", web, "--format", "yaml"], None).status.code(),
        Some(2)
    );
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "{not json").unwrap();
    assert_eq!(
        audit(&["--account", bad.path().to_str().unwrap()], None)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn sarif_is_2_1_0_with_one_rule_per_code() {
    let github = GitHub::start(&[]);
    let output = audit(
        &[
            "--account",
            snapshot().to_str().unwrap(),
            "--github-api",
            &github.url,
            "--format",
            "sarif",
        ],
        Some(TOKEN),
    );
    let log: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &log["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        let rule = result["ruleId"].as_str().unwrap();
        assert!(rules.contains(&rule), "{rule} is not a rule");
        assert_eq!(rules[result["ruleIndex"].as_u64().unwrap() as usize], rule);
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
    }
    let deleted = results
        .iter()
        .find(|r| r["ruleId"] == "RepositoryNotFound")
        .unwrap();
    assert_eq!(deleted["level"], "error");
    assert_eq!(
        deleted["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        format!("aws:{ACCOUNT}/role/deleted/statement/0")
    );
}

#[test]
fn markdown_and_text_escape_what_strangers_wrote() {
    let hostile = data("hostile.json");
    let output = audit(
        &[
            "--account",
            hostile.to_str().unwrap(),
            "--no-github",
            "--format",
            "markdown",
        ],
        None,
    );
    let markdown = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(markdown.contains("| Severity | Account | Role |"), "{markdown}");
    let rows: Vec<&str> = markdown.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(rows.len() >= 3, "{markdown}");
    for row in &rows[2..] {
        // Seven columns: a pipe a stranger wrote does not open an eighth.
        let unescaped = row.replace("\\|", "");
        assert_eq!(unescaped.matches('|').count(), 8, "{row}");
        assert!(
            !row.contains("<img") && !row.contains('\u{1b}') && !row.contains('\u{202e}'),
            "{row}"
        );
    }
    let text = audit(
        &[
            "--account",
            hostile.to_str().unwrap(),
            "--no-github",
            "--format",
            "text",
        ],
        None,
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!("account {ACCOUNT}")) && text.contains("  role hostile"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "{text:?}");
    let json = audit(
        &[
            "--account",
            hostile.to_str().unwrap(),
            "--no-github",
            "--format",
            "json",
        ],
        None,
    );
    assert!(!String::from_utf8(json.stdout).unwrap().contains('\u{202e}'));
}

/// `2026-12-02T10:00:00Z` for epoch seconds.
fn iso(t: i64) -> String {
    let (days, seconds) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

fn call(role: &str, subject: &str, at: i64, failed: bool) -> Value {
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com");
    let mut record = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "WebIdentityUser", "userName": subject, "identityProvider": provider,
            "principalId": format!("{provider}:sts.amazonaws.com:{subject}")},
        "eventTime": iso(at),
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithWebIdentity",
        "awsRegion": "us-east-1",
        "requestParameters": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "roleSessionName": "gha"},
        "responseElements": {"subjectFromWebIdentityToken": subject, "provider": provider, "audience": "sts.amazonaws.com"},
        "eventID": format!("{role}-{at}"),
        "recipientAccountId": ACCOUNT,
    });
    if failed {
        record["errorCode"] = json!("AccessDenied");
        record["errorMessage"] = json!("Not authorized to perform sts:AssumeRoleWithWebIdentity");
        record["responseElements"] = Value::Null;
    }
    record
}

#[test]
fn history_narrows_a_wildcard_and_finds_unused_roles() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let day = 86_400;
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("trail.json");
    let records = json!({"Records": [
        call("web", "repo:acme/web:ref:refs/heads/main", now - 120 * day, true),
        call("wildcard", "repo:acme/web:ref:refs/heads/main", now - day, false),
        call("deleted", "repo:acme/web:ref:refs/heads/main", now - 2 * day, false),
        call("renamed", "repo:acme/old-site:ref:refs/heads/main", now - 100 * day, false),
    ]});
    std::fs::write(&trail, records.to_string()).unwrap();
    let output = audit(
        &[
            "--account",
            snapshot().to_str().unwrap(),
            "--no-github",
            "--format",
            "json",
            "--history",
            trail.to_str().unwrap(),
            "--owners",
            "acme",
        ],
        None,
    );
    assert!(output.status.code() == Some(1), "{}", stderr(&output));
    let findings = lines(&output);
    let wildcard = with_code(&findings, "OwnerWildcard");
    assert_eq!(wildcard.len(), 1, "{findings:#?}");
    let change = &wildcard[0]["suggested_change"];
    assert_eq!(change["remove"], json!(["repo:acme*:*"]), "{findings:#?}");
    assert_eq!(change["add"], json!(["repo:acme/*"]));

    let unused: Vec<&str> = with_code(&findings, "UnusedRole")
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    // Not assumed in 90 days: every role but the two recent ones.
    assert!(
        unused.contains(&"renamed") && unused.contains(&"web") && unused.contains(&"immutable"),
        "{unused:?}"
    );
    assert!(
        !unused.contains(&"wildcard") && !unused.contains(&"deleted"),
        "{unused:?}"
    );
    // deleted's recorded success used repo:acme/web:*, never repo:acme/gone:*.
    let trust = with_code(&findings, "UnusedTrust");
    assert!(
        trust
            .iter()
            .any(|f| f["role"] == "deleted" && f["value"] == "repo:acme/gone:*"),
        "{trust:#?}"
    );

    // A window the files do not cover judges nothing.
    let output = audit(
        &[
            "--account",
            snapshot().to_str().unwrap(),
            "--no-github",
            "--format",
            "json",
            "--history",
            trail.to_str().unwrap(),
            "--unused-days",
            "365",
        ],
        None,
    );
    assert!(with_code(&lines(&output), "UnusedRole").is_empty());
}

fn identity(account: &str) -> (u16, String) {
    response(
        "GetCallerIdentity",
        STS_NS,
        &format!("<Arn>arn:aws:iam::{account}:user/ci</Arn><UserId>AIDASTANDIN</UserId><Account>{account}</Account>"),
    )
}

fn live(iam: &StandIn, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oidc-watch"));
    without_machine_config(&mut command)
        .arg("audit")
        .args(["--live", "--no-github", "--format", "json"])
        .args(args)
        .envs([
            ("AWS_ENDPOINT_URL", iam.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ]);
    command.output().unwrap()
}

#[test]
fn a_read_role_that_answers_for_another_account_is_not_audited() {
    const OWN: &str = "999999999999";
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let iam = StandIn::start(Box::new(move |form| {
        match form.get("Action").map(String::as_str) {
        // First our own identity, then (with the read role's credentials) a third account.
        Some("GetCallerIdentity") => match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => identity(OWN),
            _ => identity("123456789012"),
        },
        Some("AssumeRole") => response(
            "AssumeRole",
            STS_NS,
            "<Credentials><AccessKeyId>ASIASTANDIN</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>\
             <SessionToken>token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>\
             <AssumedRoleUser><Arn>arn:aws:sts::210987654321:assumed-role/read/oidc-watch-audit</Arn>\
             <AssumedRoleId>AROASTANDIN:oidc-watch-audit</AssumedRoleId></AssumedRoleUser>",
        ),
        _ => (400, format!("<ErrorResponse xmlns=\"{IAM_NS}\"><Error><Code>Unexpected</Code></Error></ErrorResponse>")),
    }
    }));
    let output = live(&iam, &["--accounts", ACCOUNT, "--read-role", "read"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("gave credentials for account 123456789012, not 210987654321"),
        "{text}"
    );
    assert!(output.stdout.is_empty());
    // Nothing of IAM was read with those credentials.
    assert_eq!(
        iam.actions(),
        ["GetCallerIdentity", "AssumeRole", "GetCallerIdentity"]
    );
}

#[test]
fn a_refused_read_role_names_the_call_and_exits_2() {
    let iam = StandIn::start(Box::new(|form| {
        match form.get("Action").map(String::as_str) {
        Some("GetCallerIdentity") => identity("999999999999"),
        _ => (
            403,
            format!(
                "<ErrorResponse xmlns=\"{STS_NS}\"><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                 <Message>not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            ),
        ),
    }
    }));
    let output = live(&iam, &["--accounts", ACCOUNT, "--read-role", "read"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("account {ACCOUNT}")), "{text}");
    assert!(
        text.contains("sts:AssumeRole arn:aws:iam::210987654321:role/read: AccessDenied"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_recorded_immutable_subject_marks_its_repository() {
    let github = GitHub::start(&[]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("trail.jsonl");
    std::fs::write(
        &trail,
        format!(
            "{}\n",
            call("web", "repo:acme@7/web@42:ref:refs/heads/main", now - 3600, false)
        ),
    )
    .unwrap();
    let accounts = snapshot();
    let accounts = accounts.to_str().unwrap();
    let run = |history: bool| {
        let mut args = vec![
            "--account",
            accounts,
            "--github-api",
            &github.url,
            "--format",
            "json",
        ];
        if history {
            args.extend(["--history", trail.to_str().unwrap()]);
        }
        let output = audit(&args, Some(TOKEN));
        lines(&output)
            .into_iter()
            .filter(|f| f["code"] == "ImmutableSubjectsNotNamed")
            .map(|f| f["role"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // acme/web was created before 2026-07-15: only the history says it sends immutable subjects.
    assert!(!run(false).contains(&"web".to_owned()));
    let roles = run(true);
    assert!(
        roles.contains(&"web".to_owned()) && roles.contains(&"deleted".to_owned()),
        "{roles:?}"
    );
}
