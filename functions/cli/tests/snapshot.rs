//! Evidence, honestly: what a snapshot leaves out is unknown, and `oidc-watch snapshot`
//! writes one that says what it knows. IAM and STS are a stand-in on loopback here (the
//! moto run is tests/e2e/test_cli_snapshot.py); nothing leaves 127.0.0.1.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{response, without_machine_config, StandIn, IAM_NS, STS_NS};

const ACCOUNT: &str = "111122223333";
const AUTHORIZATION_DETAILS: &str =
    "functions/cli/tests/fixtures/accounts/111122223333-authorization-details.json";
const SAMPLE: &str = "events/accounts/111122223333-github-acme.json";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary with no AWS configuration of the machine's: only what `env` gives.
fn oidc_watch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oidc-watch"));
    without_machine_config(&mut command)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run oidc-watch")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every diagnosis of the sample account's events with these snapshots, by event file.
fn diagnoses_of_sample_account(accounts: &[&str]) -> Vec<Value> {
    let mut args = vec!["diagnose", "events/", "--format", "json"];
    for account in accounts {
        args.extend(["--account", account]);
    }
    let output = oidc_watch(&args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    json_lines(&output)
        .into_iter()
        .filter(|d| d["account_id"] == ACCOUNT && d["role_name"].is_string())
        .collect()
}

fn key(d: &Value) -> String {
    format!("{}", d["event_id"])
}

#[test]
fn an_authorization_details_snapshot_proves_no_provider_missing() {
    let roles_only = diagnoses_of_sample_account(&[AUTHORIZATION_DETAILS]);
    let complete: HashMap<String, Value> = diagnoses_of_sample_account(&[SAMPLE])
        .into_iter()
        .map(|d| (key(&d), d))
        .collect();
    assert!(roles_only.len() >= 20, "{}", roles_only.len());
    let mut access_denied = 0;
    for d in &roles_only {
        let full = &complete[&key(d)];
        if d["error_code"] != "AccessDenied" {
            if full["cause"] == "OidcProviderMissing" {
                // STS's own message says so; the snapshot cannot confirm it.
                assert_eq!(
                    (&d["cause"], &d["confidence"]),
                    (&full["cause"], &Value::from("probable"))
                );
                assert_eq!(full["confidence"], "certain");
            } else {
                assert_eq!(d["cause"], full["cause"], "{d}");
            }
            continue;
        }
        access_denied += 1;
        let cause = d["cause"].as_str().unwrap();
        assert!(
            ![
                "OidcProviderMissing",
                "AudienceNotInProvider",
                "ThumbprintMismatch",
                "RoleNotFound"
            ]
            .contains(&cause),
            "nothing is proven missing by a list that is not complete: {d}"
        );
        assert_ne!(
            d["confidence"], "certain",
            "missing evidence is never certain: {d}"
        );
        let explanation = d["explanation"].as_str().unwrap();
        if full["cause"] == "RoleNotFound" {
            assert!(explanation.contains("does not list role"), "{explanation}");
            assert!(
                explanation.contains("gha-deploy-prod"),
                "the near name is still offered: {explanation}"
            );
        } else {
            // The trust policy still decides.
            assert_eq!(
                (&d["cause"], &d["subject_mismatch"]),
                (&full["cause"], &full["subject_mismatch"]),
                "{d}"
            );
            assert!(
                explanation.contains("does not list its OIDC providers"),
                "{explanation}"
            );
        }
    }
    assert!(access_denied >= 15, "{access_denied}");
}

#[test]
fn a_roles_only_file_beside_a_complete_one_keeps_the_complete_evidence() {
    let merged = diagnoses_of_sample_account(&[AUTHORIZATION_DETAILS, SAMPLE]);
    let complete: HashMap<String, Value> = diagnoses_of_sample_account(&[SAMPLE])
        .into_iter()
        .map(|d| (key(&d), d))
        .collect();
    for d in &merged {
        let full = &complete[&key(d)];
        assert_eq!(
            (&d["cause"], &d["subject_mismatch"], &d["confidence"]),
            (&full["cause"], &full["subject_mismatch"], &full["confidence"]),
            "{d}"
        );
    }
    assert!(merged
        .iter()
        .any(|d| d["cause"] == "RoleNotFound" && d["confidence"] == "certain"));
}

#[test]
fn without_credentials_snapshot_says_so_and_exits_2() {
    let output = oidc_watch(
        &["snapshot"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(output.stdout.is_empty());
    assert!(
        text.contains("sts:GetCallerIdentity") && text.contains("No usable AWS credentials"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");

    let unreachable = oidc_watch(&["snapshot", "--roles", "x"], &credentials("http://127.0.0.1:9"));
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(
        stderr(&unreachable).contains("could not be reached"),
        "{}",
        stderr(&unreachable)
    );

    let no_names = oidc_watch(&["snapshot", "--roles", ","], &[]);
    assert_eq!(no_names.status.code(), Some(2));
    assert!(stderr(&no_names).contains("--roles needs"));
}

fn credentials(endpoint: &str) -> Vec<(&str, &str)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]
}

fn caller_identity() -> (u16, String) {
    response(
        "GetCallerIdentity",
        STS_NS,
        &format!("<Arn>arn:aws:iam::{ACCOUNT}:user/ci</Arn><UserId>AIDASTANDIN</UserId><Account>{ACCOUNT}</Account>"),
    )
}

fn access_denied(action: &str) -> (u16, String) {
    (
        403,
        format!(
            "<ErrorResponse xmlns=\"{IAM_NS}\"><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>User: arn:aws:iam::{ACCOUNT}:user/ci is not authorized to perform: iam:{action} on resource: *</Message>\
             </Error><RequestId>stand-in</RequestId></ErrorResponse>"
        ),
    )
}

fn role_xml(role: &Value) -> String {
    let policy = serde_json::to_string(&role["AssumeRolePolicyDocument"]).unwrap();
    let encoded = percent_encoding::utf8_percent_encode(&policy, percent_encoding::NON_ALPHANUMERIC);
    format!(
        "<member><Path>/</Path><RoleName>{name}</RoleName><RoleId>AROA{id}</RoleId><Arn>{arn}</Arn>\
         <CreateDate>2025-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>{encoded}</AssumeRolePolicyDocument>\
         <MaxSessionDuration>{max}</MaxSessionDuration></member>",
        name = role["RoleName"].as_str().unwrap(),
        id = role["RoleName"].as_str().unwrap().len(),
        arn = role["Arn"].as_str().unwrap(),
        max = role["MaxSessionDuration"].as_u64().unwrap_or(3600),
    )
}

/// The sample account as IAM would serve it, plus a role that trusts no web identity;
/// ListRoles in pages of 10.
fn sample_account(form: &HashMap<String, String>) -> (u16, String) {
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(repo().join(SAMPLE)).unwrap()).unwrap();
    let mut roles: Vec<Value> = sample["Roles"].as_array().unwrap().clone();
    roles.push(serde_json::json!({
        "RoleName": "ops-admin", "Arn": format!("arn:aws:iam::{ACCOUNT}:role/ops-admin"), "MaxSessionDuration": 3600,
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "sts:AssumeRole"}]}}));
    let providers = sample["OpenIDConnectProviders"].as_array().unwrap();
    match form.get("Action").map(String::as_str) {
        Some("GetCallerIdentity") => caller_identity(),
        Some("ListRoles") => {
            let start: usize = form.get("Marker").map_or(0, |m| m.parse().unwrap());
            let end = (start + 10).min(roles.len());
            let page: String = roles[start..end].iter().map(role_xml).collect();
            let more = if end < roles.len() {
                format!("<IsTruncated>true</IsTruncated><Marker>{end}</Marker>")
            } else {
                "<IsTruncated>false</IsTruncated>".to_owned()
            };
            response("ListRoles", IAM_NS, &format!("<Roles>{page}</Roles>{more}"))
        }
        Some("GetRole") => {
            let name = form.get("RoleName").cloned().unwrap_or_default();
            match roles.iter().find(|r| r["RoleName"] == name.as_str()) {
                Some(role) => response(
                    "GetRole",
                    IAM_NS,
                    &role_xml(role).replace("<member>", "<Role>").replace("</member>", "</Role>"),
                ),
                None => (
                    404,
                    format!(
                        "<ErrorResponse xmlns=\"{IAM_NS}\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>\
                         <Message>The role with name {name} cannot be found.</Message></Error><RequestId>x</RequestId></ErrorResponse>"
                    ),
                ),
            }
        }
        Some("ListOpenIDConnectProviders") => {
            let list: String = providers
                .iter()
                .map(|p| format!("<member><Arn>{}</Arn></member>", p["Arn"].as_str().unwrap()))
                .collect();
            response(
                "ListOpenIDConnectProviders",
                IAM_NS,
                &format!("<OpenIDConnectProviderList>{list}</OpenIDConnectProviderList>"),
            )
        }
        Some("GetOpenIDConnectProvider") => {
            let arn = form.get("OpenIDConnectProviderArn").cloned().unwrap_or_default();
            let provider = providers.iter().find(|p| p["Arn"] == arn.as_str()).unwrap();
            let members = |key: &str| -> String {
                provider[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| format!("<member>{}</member>", v.as_str().unwrap()))
                    .collect()
            };
            response(
                "GetOpenIDConnectProvider",
                IAM_NS,
                &format!(
                    "<Url>{}</Url><ClientIDList>{}</ClientIDList><ThumbprintList>{}</ThumbprintList><CreateDate>2025-01-01T00:00:00Z</CreateDate>",
                    provider["Url"].as_str().unwrap(),
                    members("ClientIDList"),
                    members("ThumbprintList")
                ),
            )
        }
        other => panic!("unexpected action {other:?}"),
    }
}

#[test]
fn access_denied_names_the_call_and_the_permissions_and_exits_2() {
    let iam = StandIn::start(Box::new(|form| match form.get("Action").map(String::as_str) {
        Some("GetCallerIdentity") => caller_identity(),
        Some(action) => access_denied(action),
        None => access_denied("?"),
    }));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot.json");
    let output = oidc_watch(
        &["snapshot", "--output", file.to_str().unwrap()],
        &credentials(&iam.url),
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "iam:ListRoles: AccessDenied: User: arn:aws:iam::111122223333:user/ci is not authorized"
        ),
        "{text}"
    );
    assert!(text.contains("The snapshot needs"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!file.exists(), "no partial snapshot is left behind");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    assert_eq!(iam.actions(), ["GetCallerIdentity", "ListRoles"]);
}

#[test]
fn snapshot_of_every_web_identity_role_diagnoses_like_the_sample() {
    let iam = StandIn::start(Box::new(sample_account));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot.json");
    let output = oidc_watch(
        &["snapshot", "--output", file.to_str().unwrap()],
        &credentials(&iam.url),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "--output: nothing on stdout");
    let actions = iam.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "ListRoles").count(),
        3,
        "three pages: {actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "GetOpenIDConnectProvider")
            .count(),
        2
    );

    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written["AccountId"], ACCOUNT);
    assert_eq!(
        written["Complete"],
        serde_json::json!({"Roles": true, "OpenIDConnectProviders": true})
    );
    assert_eq!(
        written["RolesWithoutWebIdentity"],
        serde_json::json!(["ops-admin"])
    );
    assert_eq!(written["Roles"].as_array().unwrap().len(), 23);
    assert!(
        written["Roles"][0]["AssumeRolePolicyDocument"].is_object(),
        "decoded: {}",
        written["Roles"][0]
    );
    assert_eq!(written["OpenIDConnectProviders"].as_array().unwrap().len(), 2);

    // Exactly the format `diagnose --account` reads, with the sample's answers.
    let path = file.to_str().unwrap();
    let from_iam: HashMap<String, Value> = diagnoses_of_sample_account(&[path])
        .into_iter()
        .map(|d| (key(&d), d))
        .collect();
    let sample = diagnoses_of_sample_account(&[SAMPLE]);
    assert!(from_iam.len() >= 20 && sample.iter().all(|d| from_iam.contains_key(&key(d))));
    for d in &sample {
        let got = &from_iam[&key(d)];
        for field in [
            "cause",
            "subject_mismatch",
            "confidence",
            "evidence",
            "failed_conditions",
        ] {
            assert_eq!(got[field], d[field], "{field}: {got}");
        }
    }

    // A role the snapshot only names: it exists, and trusts no web identity.
    let event = std::fs::read_to_string(repo().join("events/role-not-found/github-role-name-typo.json"))
        .unwrap()
        .replace("gha-deploy-prdo", "ops-admin");
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, event).unwrap();
    let output = oidc_watch(
        &[
            "diagnose",
            event_file.to_str().unwrap(),
            "--account",
            path,
            "--format",
            "json",
        ],
        &[],
    );
    let d = &json_lines(&output)[0];
    assert_eq!(
        (d["cause"].as_str(), d["confidence"].as_str()),
        (Some("PrincipalMismatch"), Some("probable")),
        "{d}"
    );
}

#[test]
fn snapshot_of_named_roles_records_the_ones_that_do_not_exist() {
    let iam = StandIn::start(Box::new(sample_account));
    let output = oidc_watch(
        &["snapshot", "--roles", "gha-deploy-prod,gha-deploy-prdo"],
        &credentials(&iam.url),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no role named \"gha-deploy-prdo\" (NoSuchEntity)"),
        "{}",
        stderr(&output)
    );
    assert!(!iam.actions().contains(&"ListRoles".to_owned()));
    let written: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(written["Roles"].as_array().unwrap().len(), 1);
    assert_eq!(
        written["Complete"],
        serde_json::json!({"Roles": ["gha-deploy-prod", "gha-deploy-prdo"], "OpenIDConnectProviders": true})
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("named.json");
    std::fs::write(&file, &output.stdout).unwrap();
    let diagnose = |event: &str| {
        let output = oidc_watch(
            &[
                "diagnose",
                event,
                "--account",
                file.to_str().unwrap(),
                "--format",
                "json",
            ],
            &[],
        );
        json_lines(&output).remove(0)
    };
    // Looked up and not found: certain.
    let typo = diagnose("events/role-not-found/github-role-name-typo.json");
    assert_eq!(
        (typo["cause"].as_str(), typo["confidence"].as_str()),
        (Some("RoleNotFound"), Some("certain"))
    );
    // Not looked up: unknown, not "not found".
    let other = diagnose("events/subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
    assert_ne!(other["cause"], "RoleNotFound");
    assert_eq!(other["confidence"], "unknown");
    assert!(
        other["explanation"]
            .as_str()
            .unwrap()
            .contains("does not list role"),
        "{other}"
    );
}
