//! `oidc-watch check-workflows`, run as a user runs it, on the fixture repositories of
//! tests/data/workflows/ (one workflow file per rule).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{codes, response, subjects, without_machine_config, StandIn, IAM_NS, STS_NS};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data() -> PathBuf {
    repo().join("tests/data/workflows")
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oidc-watch"));
    command
        .arg("check-workflows")
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run oidc-watch")
}

fn run(args: &[&str]) -> Output {
    run_in(&data(), args, &[])
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

const ACME: [&str; 4] = ["--repository", "acme/web", "--default-branch", "main"];

fn acme(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["acme-web", "--format", "json"];
    args.extend(ACME);
    args.extend(extra);
    let output = run(&args);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{}", stderr(&output));
    json_lines(&output)
}

fn job<'a>(reports: &'a [Value], file: &str, name: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["file"] == format!(".github/workflows/{file}") && r["job"] == name)
        .unwrap_or_else(|| panic!("no report for {file} job {name}"))
}

fn s(trigger: &str, subject: &str, certain: bool) -> (String, String, bool) {
    (trigger.to_owned(), subject.to_owned(), certain)
}

#[test]
fn every_report_carries_the_json_contract() {
    let reports = acme(&[]);
    assert_eq!(reports.len(), 20, "{reports:#?}");
    for r in &reports {
        for key in [
            "file",
            "job",
            "line",
            "role",
            "id_token",
            "triggers",
            "environment",
            "subjects",
            "findings",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        for subject in r["subjects"].as_array().unwrap() {
            for key in [
                "trigger",
                "subject",
                "certain",
                "verdict",
                "cause",
                "suggested_change",
            ] {
                assert!(subject.get(key).is_some(), "{key} missing in {subject}");
            }
        }
        for finding in r["findings"].as_array().unwrap() {
            for key in ["code", "severity", "line", "message"] {
                assert!(finding.get(key).is_some(), "{key} missing in {finding}");
            }
        }
    }
    assert!(
        !reports
            .iter()
            .any(|r| r["file"] == ".github/workflows/static-keys.yml"),
        "static keys are not OIDC"
    );
}

#[test]
fn permission_rules() {
    let reports = acme(&[]);
    let expect = |file: &str, id_token: &str, findings: &[(&str, u64)]| {
        let r = job(&reports, file, "deploy");
        assert_eq!(r["id_token"], id_token, "{file}");
        let expected: Vec<(String, u64)> = findings.iter().map(|(c, l)| (c.to_string(), *l)).collect();
        assert_eq!(codes(r), expected, "{file}");
    };
    expect("write-all.yml", "granted", &[]);
    expect("no-permissions.yml", "missing", &[("id-token-missing", 9)]);
    expect("job-block-drops.yml", "missing", &[("id-token-missing", 11)]);
    expect("read-all.yml", "missing", &[("id-token-missing", 5)]);
    expect("empty-block.yml", "missing", &[("id-token-missing", 5)]);
    expect("read-only.yml", "read-only", &[("id-token-read-only", 8)]);
    let message = job(&reports, "no-permissions.yml", "deploy")["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("permissions:\n      id-token: write\n      contents: read"),
        "{message}"
    );
    let message = job(&reports, "job-block-drops.yml", "deploy")["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("Add `id-token: write` to the permissions block of job deploy on line 11"),
        "{message}"
    );
}

#[test]
fn subjects_per_trigger_and_filter() {
    let reports = acme(&[]);
    let deploy = job(&reports, "deploy.yml", "deploy");
    assert_eq!(
        deploy["triggers"],
        serde_json::json!(["push", "pull_request", "workflow_dispatch"])
    );
    assert_eq!(
        subjects(deploy),
        vec![
            s("push", "repo:acme/web:ref:refs/heads/main", true),
            s("push", "repo:acme/web:ref:refs/heads/release/**", false),
            s("push", "repo:acme/web:ref:refs/tags/v*", false),
            s("pull_request", "repo:acme/web:pull_request", true),
            s("workflow_dispatch", "repo:acme/web:ref:refs/heads/main", true),
        ]
    );
    assert_eq!(codes(deploy), vec![("fork-pull-request".to_owned(), 8)]);
    assert_eq!(
        subjects(job(&reports, "triggers.yml", "any")),
        vec![
            s("push", "repo:acme/web:ref:refs/heads/*", false),
            s("push", "repo:acme/web:ref:refs/tags/*", false),
            s(
                "merge_group",
                "repo:acme/web:ref:refs/heads/gh-readonly-queue/main/*",
                false
            ),
            s("pull_request_target", "repo:acme/web:pull_request", true),
            s("release", "repo:acme/web:ref:refs/tags/*", false),
        ]
    );
}

#[test]
fn environments_in_every_form() {
    let reports = acme(&[]);
    let string = job(&reports, "environments.yml", "string");
    assert_eq!(string["environment"], "production");
    assert_eq!(
        subjects(string),
        vec![
            s("schedule", "repo:acme/web:environment:production", true),
            s("pull_request", "repo:acme/web:environment:production", true),
        ]
    );
    assert_eq!(
        codes(string),
        vec![
            ("environment-protection".to_owned(), 13),
            ("fork-pull-request".to_owned(), 6)
        ]
    );
    assert_eq!(string["findings"][0]["severity"], "note");
    let mapping = job(&reports, "environments.yml", "mapping");
    assert_eq!(
        subjects(mapping)[0],
        s("schedule", "repo:acme/web:environment:stage%3Aeu", true)
    );
    let matrix = job(&reports, "environments.yml", "matrix");
    assert_eq!(
        subjects(matrix)[..2],
        [
            s("schedule", "repo:acme/web:environment:dev", true),
            s("schedule", "repo:acme/web:environment:qa", true)
        ]
    );
    let expression = job(&reports, "environments.yml", "expression");
    assert_eq!(subjects(expression)[0], s("schedule", "unknown", false));
}

#[test]
fn reusable_workflows_get_at_most_what_their_caller_grants() {
    let reports = acme(&[]);
    let called = job(&reports, "reusable-called.yml", "deploy");
    assert_eq!(called["id_token"], "depends-on-caller");
    assert_eq!(
        subjects(called),
        vec![
            s("push", "repo:acme/web:environment:production", true),
            s("push", "repo:acme/web:environment:staging", true),
        ]
    );
    assert!(codes(called).contains(&("id-token-missing-from-caller".to_owned(), 14)));
    let ok = job(&reports, "reusable-caller.yml", "call-ok");
    assert_eq!(ok["id_token"], "granted");
    assert_eq!(ok["calls"]["file"], ".github/workflows/reusable-called.yml");
    assert_eq!(ok["line"], 12);
    assert_eq!(
        subjects(ok),
        vec![s("push", "repo:acme/web:environment:production", true)]
    );
    let missing = job(&reports, "reusable-caller.yml", "call-missing");
    assert_eq!(missing["id_token"], "missing");
    assert_eq!(
        subjects(missing),
        vec![s("push", "repo:acme/web:environment:staging", true)]
    );
    assert_eq!(codes(missing)[0], ("id-token-missing".to_owned(), 5));
}

#[test]
fn anchors_flow_style_and_documents() {
    let reports = acme(&[]);
    for name in ["first", "second"] {
        let r = job(&reports, "anchors.yml", name);
        assert_eq!(r["id_token"], "granted");
        assert_eq!(r["role"], "arn:aws:iam::123456789012:role/gha-deploy");
    }
    assert_eq!(job(&reports, "multi-document.yaml", "one")["id_token"], "granted");
    assert_eq!(job(&reports, "multi-document.yaml", "two")["id_token"], "missing");
}

#[test]
fn verdicts_from_the_account_snapshot() {
    let reports = acme(&[
        "--account",
        "accounts",
        "--role",
        "DEPLOY_ROLE=arn:aws:iam::123456789012:role/gha-deploy",
    ]);
    let verdicts = |r: &Value| -> Vec<(String, String)> {
        r["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["verdict"].as_str().unwrap().to_owned(),
                    s["cause"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let deploy = job(&reports, "deploy.yml", "deploy");
    assert_eq!(
        verdicts(deploy),
        vec![
            ("allowed".to_owned(), String::new()),
            ("unknown".to_owned(), String::new()),
            ("unknown".to_owned(), String::new()),
            ("denied".to_owned(), "SubjectMismatch".to_owned()),
            ("allowed".to_owned(), String::new()),
        ]
    );
    // pull_request subjects can be minted by anyone who opens a pull request: no change.
    assert!(deploy["subjects"][3]["suggested_change"].is_null());
    assert!(codes(deploy).contains(&("subject-denied".to_owned(), 18)));
    let called = job(&reports, "reusable-called.yml", "deploy");
    assert_eq!(called["role_arn"], "arn:aws:iam::123456789012:role/gha-deploy");
    let staging = &called["subjects"][1];
    assert_eq!(staging["verdict"], "denied");
    let change = &staging["suggested_change"];
    assert_eq!(
        change["add"],
        serde_json::json!(["repo:acme/web:environment:staging"])
    );
    assert_eq!(change["key"], "token.actions.githubusercontent.com:sub");
    let typo = job(&reports, "audience.yml", "typo");
    assert_eq!(typo["audience"], "sts.amazon.com");
    assert_eq!(typo["subjects"][0]["cause"], "AudienceNotInProvider");
}

#[test]
fn custom_and_immutable_subject_templates() {
    let reports = acme(&[
        "--sub-template",
        "repo,context,job_workflow_ref",
        "--immutable",
        "111/222",
    ]);
    let deploy = job(&reports, "deploy.yml", "deploy");
    assert_eq!(
        subjects(deploy)[0],
        s(
            "push",
            "repo:acme@111/web@222:ref:refs/heads/main:job_workflow_ref:acme/web/.github/workflows/deploy.yml@refs/heads/main",
            true
        )
    );
    // A pull request's ref is refs/pull/<number>/merge: not one literal.
    assert!(!subjects(deploy)[3].2);
    let called = job(&reports, "reusable-caller.yml", "call-missing");
    assert_eq!(
        subjects(called)[0].1,
        "repo:acme@111/web@222:environment:staging:job_workflow_ref:acme/web/.github/workflows/reusable-called.yml@0123456789abcdef0123456789abcdef01234567"
    );
    let reports = acme(&["--sub-template", "repository_owner,actor"]);
    assert_eq!(
        subjects(job(&reports, "deploy.yml", "deploy"))[0],
        s("push", "unknown", false)
    );
}

#[test]
fn exit_codes() {
    let clean = run(&[
        "acme-web/.github/workflows/write-all.yml",
        "--repository",
        "acme/web",
    ]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let errors = run(&[
        "acme-web/.github/workflows/no-permissions.yml",
        "--repository",
        "acme/web",
    ]);
    assert_eq!(errors.status.code(), Some(1));
    let notes = [
        "acme-web/.github/workflows/environments.yml",
        "--repository",
        "acme/web",
    ];
    assert_eq!(run(&notes).status.code(), Some(0));
    let mut strict = notes.to_vec();
    strict.extend(["--fail-on", "note"]);
    assert_eq!(run(&strict).status.code(), Some(1));
    let bad = run(&["bad-yaml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains(".github/workflows/broken.yml:4:"),
        "{}",
        stderr(&bad)
    );
    let shape = run(&["bad-shape"]);
    assert_eq!(shape.status.code(), Some(2));
    assert!(
        stderr(&shape).contains("jobs-list.yml:3: jobs: must be a mapping"),
        "{}",
        stderr(&shape)
    );
    assert_eq!(run(&["no-such-dir"]).status.code(), Some(2));
    // A repository root without .github/workflows: its other YAML files are not workflows.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(".git")).unwrap();
    std::fs::write(root.path().join("compose.yml"), "jobs: [not, a, workflow]\n").unwrap();
    let output = run_in(
        root.path(),
        &["--repository", "acme/web", "--format", "json"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    assert_eq!(
        run(&["acme-web", "--repository", "not a repo"]).status.code(),
        Some(2)
    );
}

#[test]
fn sarif_for_code_scanning() {
    let output = run(&["acme-web", "--format", "sarif", "--repository", "acme/web"]);
    let log: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "oidc-watch");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"id-token-missing"), "{rules:?}");
    let result = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                == ".github/workflows/read-all.yml"
        })
        .unwrap();
    assert_eq!(result["ruleId"], "id-token-missing");
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        5
    );
}

#[test]
fn github_workflow_commands() {
    let output = run(&[
        "acme-web/.github/workflows/no-permissions.yml",
        "--format",
        "github",
        "--repository",
        "acme/web",
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next().unwrap();
    assert!(
        line.starts_with(
            "::error file=.github/workflows/no-permissions.yml,line=9,title=oidc-watch id-token-missing::"
        ),
        "{line}"
    );
    assert!(
        line.contains("%0A    permissions:%0A      id-token: write"),
        "{line}"
    );
    assert_eq!(text.lines().count(), 1);
}

#[test]
fn hostile_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("evil.yml"),
        "on: push\njobs:\n  \"evil\\e[2J\\u202e\":\n    environment: \"prod\\u2066x\\n::error::forged\"\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::1:role/r\n",
    )
    .unwrap();
    for format in ["text", "json", "github", "sarif"] {
        let output = run_in(dir.path(), &["--format", format, "--repository", "acme/web"], &[]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}') && !text.contains('\u{2066}'),
            "{format}: {text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("::error::forged")),
            "{format}: {text}"
        );
    }
}

#[test]
fn identity_from_git() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "trunk"]);
    git(&["remote", "add", "origin", "git@github.com:Acme-Corp/web.app.git"]);
    let workflows = root.join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::copy(
        data().join("acme-web/.github/workflows/deploy.yml"),
        workflows.join("deploy.yml"),
    )
    .unwrap();
    let output = run_in(root, &["--format", "json"], &[]);
    let reports = json_lines(&output);
    assert_eq!(
        subjects(&reports[0]).last().unwrap().1,
        "repo:Acme-Corp/web.app:ref:refs/heads/trunk"
    );
    git(&["remote", "set-url", "origin", "https://github.com/acme/web"]);
    let reports = json_lines(&run_in(
        root,
        &["--format", "json", "--default-branch", "main"],
        &[],
    ));
    assert_eq!(subjects(&reports[0])[0].1, "repo:acme/web:ref:refs/heads/main");

    let bare = tempfile::tempdir().unwrap();
    let workflows = bare.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::copy(
        data().join("acme-web/.github/workflows/deploy.yml"),
        workflows.join("deploy.yml"),
    )
    .unwrap();
    let output = run_in(
        bare.path(),
        &["--format", "text"],
        &[("GIT_CEILING_DIRECTORIES", "/")],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("repository unknown · default branch unknown"),
        "{text}"
    );
    let reports = json_lines(&run_in(
        bare.path(),
        &["--format", "json"],
        &[("GIT_CEILING_DIRECTORIES", "/")],
    ));
    assert!(subjects(&reports[0])
        .iter()
        .all(|(_, sub, certain)| sub == "unknown" && !certain));
}

/// A one-request stand-in for api.github.com: answers `body` and returns what it was asked.
fn github_stand_in(body: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            request.push_str(&line);
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        let _ = reader.read(&mut [0; 1]);
        request
    });
    (url, handle)
}

#[test]
fn subject_template_from_the_github_api() {
    let (url, server) = github_stand_in(
        r#"{"use_default":false,"include_claim_keys":["repo","context","job_workflow_ref"],"use_immutable_subject":true,"sub_claim_prefix":"repo:acme@42/web@7"}"#,
    );
    let output = run_in(
        &data(),
        &[
            "acme-web/.github/workflows/write-all.yml",
            "--format",
            "json",
            "--repository",
            "acme/web",
            "--default-branch",
            "main",
            "--github-api",
            &url,
        ],
        &[("GITHUB_TOKEN", "test-token")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /repos/acme/web/actions/oidc/customization/sub HTTP/1.1"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer test-token"),
        "{request}"
    );
    let reports = json_lines(&output);
    assert_eq!(
        subjects(&reports[0])[0].1,
        "repo:acme@42/web@7:ref:refs/heads/main:job_workflow_ref:acme/web/.github/workflows/write-all.yml@refs/heads/main"
    );
}

/// IAM and STS on loopback (the query protocol), serving the fixture snapshot's account;
/// every action asked for is recorded.
fn iam_stand_in() -> StandIn {
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(data().join("accounts/123456789012.json")).unwrap())
            .unwrap();
    StandIn::start(Box::new(move |form| {
        let action = form.get("Action").cloned().unwrap_or_default();
        iam_answer(&snapshot, &action, form)
    }))
}

fn iam_answer(
    snapshot: &Value,
    action: &str,
    form: &std::collections::HashMap<String, String>,
) -> (u16, String) {
    let ok = |namespace: &str, result: String| response(action, namespace, &result);
    let provider = &snapshot["OpenIDConnectProviders"][0];
    match action {
        "GetCallerIdentity" => ok(
            STS_NS,
            "<Arn>arn:aws:iam::123456789012:user/ci</Arn><UserId>AIDA</UserId><Account>123456789012</Account>".to_owned(),
        ),
        "GetRole" => {
            let role = &snapshot["Roles"][0];
            if form.get("RoleName").map(String::as_str) != role["RoleName"].as_str() {
                return (
                    404,
                    format!(
                        "<ErrorResponse xmlns=\"{IAM_NS}\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>\
                         <Message>no such role</Message></Error><RequestId>x</RequestId></ErrorResponse>"
                    ),
                );
            }
            let policy = serde_json::to_string(&role["AssumeRolePolicyDocument"]).unwrap();
            let encoded = percent_encoding::utf8_percent_encode(&policy, percent_encoding::NON_ALPHANUMERIC);
            ok(
                IAM_NS,
                format!(
                    "<Role><Path>/</Path><RoleName>{}</RoleName><RoleId>AROA1</RoleId><Arn>{}</Arn>\
                     <CreateDate>2025-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>{encoded}</AssumeRolePolicyDocument>\
                     <MaxSessionDuration>3600</MaxSessionDuration></Role>",
                    role["RoleName"].as_str().unwrap(),
                    role["Arn"].as_str().unwrap()
                ),
            )
        }
        "ListOpenIDConnectProviders" => ok(
            IAM_NS,
            format!(
                "<OpenIDConnectProviderList><member><Arn>{}</Arn></member></OpenIDConnectProviderList>",
                provider["Arn"].as_str().unwrap()
            ),
        ),
        "GetOpenIDConnectProvider" => ok(
            IAM_NS,
            format!(
                "<Url>{}</Url><ClientIDList><member>sts.amazonaws.com</member></ClientIDList>\
                 <ThumbprintList></ThumbprintList><CreateDate>2025-01-01T00:00:00Z</CreateDate>",
                provider["Url"].as_str().unwrap()
            ),
        ),
        other => panic!("unexpected action {other:?}"),
    }
}

#[test]
fn live_reads_the_roles_the_jobs_name_from_iam() {
    let iam = iam_stand_in();
    let endpoint = iam.url.clone();
    let output = without_machine_config(&mut Command::new(env!("CARGO_BIN_EXE_oidc-watch")))
        .args([
            "check-workflows",
            "acme-web/.github/workflows/deploy.yml",
            "--live",
            "--format",
            "json",
        ])
        .args(ACME)
        .current_dir(data())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let reports = json_lines(&output);
    let verdicts: Vec<&str> = reports[0]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["allowed", "unknown", "unknown", "denied", "allowed"]);
    let actions = iam.actions();
    assert!(actions.contains(&"GetRole".to_owned()), "{actions:?}");
    assert!(
        !actions.contains(&"ListRoles".to_owned()),
        "only the roles the jobs name: {actions:?}"
    );
}
