//! `oidc-watch impact`, run as a user runs it, on the fixtures in tests/data/impact/ and
//! the success records in events/none/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const ROLE: &str = "gha-deploy-web-app";
const ACCOUNT: &str = "tests/data/impact/account.json";
const MAIN: &str = "repo:acme/web-app:ref:refs/heads/main";
const PROD: &str = "repo:acme/web-app:environment:prod";

fn impact(policy: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "impact",
        "--role",
        ROLE,
        "--policy",
        policy,
        "--account",
        ACCOUNT,
        "--history",
        "events/none/github-push-main-success.json",
        "events/none/github-environment-prod-success.json",
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args(&args)
        .current_dir(repo())
        .output()
        .expect("run oidc-watch")
}

fn json(policy: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(extra);
    let output = impact(policy, &all);
    let text = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\nstderr: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), value)
}

/// Whether some item of the array `list` has `field` equal to `value`.
fn any(list: &Value, field: &str, value: &str) -> bool {
    list.as_array().unwrap().iter().any(|item| item[field] == value)
}

fn subject<'a>(report: &'a Value, sub: &str) -> &'a Value {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == sub)
        .unwrap_or_else(|| panic!("no {sub} in {report}"))
}

#[test]
fn a_narrowing_change_breaks_an_observed_subject() {
    let (code, report) = json("tests/data/impact/narrow.json", &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["verdict"], "breaks");
    let prod = subject(&report, PROD);
    assert_eq!(
        (&prod["old"], &prod["new"], &prod["change"]),
        (&"allowed".into(), &"denied".into(), &"breaks".into())
    );
    assert_eq!(prod["cause"], "SubjectMismatch");
    assert_eq!(prod["statement"], 0);
    let condition = &prod["failed_conditions"][0];
    assert_eq!(condition["key"], "token.actions.githubusercontent.com:sub");
    assert_eq!(condition["operator"], "StringLike");
    assert_eq!(condition["actual"], PROD);
    assert_eq!(prod["calls"], 1);
    assert_eq!(prod["origins"], serde_json::json!(["history"]));
    // The engine's verified change keeps it in.
    assert_eq!(prod["suggested_change"]["add"], serde_json::json!([PROD]));
    assert_eq!(subject(&report, MAIN)["change"], "unchanged");
    assert_eq!(report["summary"]["breaks"], 1);

    let text = impact("tests/data/impact/narrow.json", &[]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("BREAKS"), "{text}");
    assert!(text.contains(&format!("\"{PROD}\"")), "{text}");
    assert!(
        text.contains("StringLike token.actions.githubusercontent.com:sub"),
        "{text}"
    );
}

#[test]
fn a_widening_change_admits_a_stranger() {
    let (code, report) = json("tests/data/impact/widen-owner.json", &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["verdict"], "admits");
    let admitted = report["newly_admitted"].as_array().unwrap();
    let stranger = admitted
        .iter()
        .find(|a| a["kind"] == "other-owner")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        stranger["subject"],
        "repo:oidc-watch-stranger/web-app:ref:refs/heads/main"
    );
    assert_eq!(
        (&stranger["stranger"], &stranger["certain"]),
        (&true.into(), &true.into())
    );
    assert_eq!(stranger["from"], MAIN);
    assert_eq!(stranger["statement"], 0);
    assert!(any(&report["widening"], "code", "OwnerWildcard"));
    // Both observed subjects still get in.
    assert_eq!(report["summary"]["breaks"], 0);

    // Dropping the sub condition: every variant gets in, and the audit says why.
    let (code, report) = json("tests/data/impact/drop-sub.json", &[]);
    assert_eq!(code, Some(1));
    let kinds: Vec<&str> = report["newly_admitted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    for kind in ["other-owner", "ownerless", "other-repository", "pull-request"] {
        assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
    }
    assert!(any(&report["widening"], "code", "NoSubjectCondition"));

    // Dropping the aud condition widens too, though every variant is refused.
    let (code, report) = json("tests/data/impact/drop-aud.json", &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["widening"][0]["code"], "NoAudienceCondition");
    assert_eq!(report["summary"]["newly_admitted"], 0);

    // A context wildcard on the own repository: not a stranger, still a new shape.
    let (code, report) = json("tests/data/impact/widen-context.json", &[]);
    assert_eq!(code, Some(1));
    assert_eq!(report["summary"]["strangers_admitted"], 0);
    assert!(any(
        &report["newly_admitted"],
        "subject",
        "repo:acme/web-app:pull_request"
    ));
}

#[test]
fn a_neutral_change_exits_0() {
    let (code, report) = json("tests/data/impact/neutral.json", &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["verdict"], "neutral");
    assert_eq!(report["summary"]["unchanged"], 2);
    assert!(report["newly_admitted"].as_array().unwrap().is_empty());
    assert!(report["widening"].as_array().unwrap().is_empty());
    let text = impact("tests/data/impact/neutral.json", &[]);
    assert_eq!(text.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&text.stdout).contains("no observed subject breaks"));
}

#[test]
fn templates_and_plans_resolve() {
    // YAML with !Sub, !Join, !Ref, !GetAtt; RoleName from !Sub of a Default; the account
    // from the snapshot's role ARN.
    let (code, report) = json("tests/data/impact/template.yaml", &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["new"]["form"], "cloudformation");
    assert_eq!(report["new"]["resource"], "DeployRole");
    assert_eq!(report["new"]["line"], 12);
    assert_eq!(report["new"]["status"], "known");
    assert_eq!(report["summary"]["unchanged"], 2);

    // JSON template, Fn::Sub with a variable map: narrows.
    let (code, report) = json("tests/data/impact/template-narrow.json", &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(subject(&report, PROD)["change"], "breaks");

    // terraform show -json: matched by the role's name among other roles.
    let (code, report) = json("tests/data/impact/plan.json", &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["new"]["form"], "terraform");
    assert_eq!(report["new"]["resource"], "aws_iam_role.deploy");
    assert_eq!(subject(&report, PROD)["change"], "breaks");

    // A plan that deletes the role breaks every subject.
    let (code, report) = json("tests/data/impact/plan-delete.json", &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["new"]["status"], "deleted");
    assert_eq!(report["summary"]["breaks"], 2);
    assert_eq!(subject(&report, MAIN)["cause"], "RoleNotFound");

    // The URL-encoded form `aws iam get-role` prints.
    let (code, report) = json("tests/data/impact/narrow.url", &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["new"]["form"], "policy");
}

#[test]
fn unresolvable_values_are_unknown_never_guessed() {
    let (code, report) = json("tests/data/impact/template-unknown.yaml", &[]);
    assert_eq!(code, Some(2), "{report}");
    assert_eq!(report["verdict"], "unknown");
    assert_eq!(report["new"]["status"], "unknown");
    let unresolved = report["new"]["unresolved"].as_array().unwrap();
    assert!(!unresolved.is_empty());
    assert!(unresolved
        .iter()
        .all(|u| u["reason"].as_str().unwrap().contains("${GitHubOrg}")));
    assert_eq!(unresolved[0]["line"], 22);
    assert!(report["subjects"].as_array().unwrap().is_empty());

    // Given the parameter, it resolves (the account comes from the snapshot).
    let (code, report) = json(
        "tests/data/impact/template-unknown.yaml",
        &["--parameter", "GitHubOrg=acme"],
    );
    assert_eq!(code, Some(0), "{report}");

    // A JSON template: unknown too, with the line of the value.
    let (code, report) = json("tests/data/impact/template-unknown.json", &[]);
    assert_eq!(code, Some(2), "{report}");
    assert_eq!(report["new"]["unresolved"][0]["line"], 25, "{report}");

    // after_unknown in a plan.
    let (code, report) = json("tests/data/impact/plan-unknown.json", &[]);
    assert_eq!(code, Some(2));
    assert_eq!(report["new"]["status"], "unknown");
}

#[test]
fn bad_input_is_exit_2_with_file_and_line() {
    let output = impact("tests/data/impact/bad.json", &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tests/data/impact/bad.json:4:"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args([
            "impact",
            "--role",
            "nope",
            "--policy",
            "tests/data/impact/narrow.json",
            "--account",
            ACCOUNT,
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no role named \"nope\""));

    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("t.yaml");
    std::fs::write(
        &yaml,
        "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties: [a, b\n",
    )
    .unwrap();
    let output = impact(yaml.to_str().unwrap(), &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("t.yaml:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let no_role = dir.path().join("no-role.yaml");
    std::fs::write(&no_role, "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n").unwrap();
    let output = impact(no_role.to_str().unwrap(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no AWS::IAM::Role"));
}

#[test]
fn history_directories_keep_only_the_role_and_old_policy_files_work() {
    // A whole directory of samples: other roles' calls are left out.
    let output = Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args([
            "impact",
            "--role",
            ROLE,
            "--policy",
            "tests/data/impact/narrow.json",
            "--old",
            "tests/data/impact/old-policy.json",
            "--history",
            "events/",
            "--format",
            "json",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{report}");
    let subjects: Vec<&str> = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["subject"].as_str())
        .collect();
    assert!(
        subjects.contains(&PROD) && subjects.contains(&MAIN),
        "{subjects:?}"
    );
    assert_eq!(report["old"]["form"], "policy");
    assert!(
        report["summary"]["history_failures"].as_u64().unwrap() >= 1,
        "{report}"
    );

    // No history: the old policy's exact subjects seed the stranger's variants.
    let output = Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args([
            "impact",
            "--role",
            ROLE,
            "--policy",
            "tests/data/impact/widen-owner.json",
            "--old",
            "tests/data/impact/old-policy.json",
            "--format",
            "json",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(any(&report["newly_admitted"], "kind", "other-owner"));
}

#[test]
fn workflow_jobs_present_their_subjects_through_check_workflows() {
    let output = Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args([
            "impact",
            "--role",
            ROLE,
            "--policy",
            "tests/data/impact/narrow.json",
            "--account",
            ACCOUNT,
            "--workflows",
            "tests/data/impact/workflows",
            "--repository",
            "acme/web-app",
            "--default-branch",
            "main",
            "--format",
            "json",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.code(), Some(1), "{report}");
    let prod = subject(&report, PROD);
    assert_eq!(prod["origins"], serde_json::json!(["workflow"]));
    assert_eq!(prod["change"], "breaks");
    assert!(
        prod["seen_in"][0].as_str().unwrap().contains("deploy.yml"),
        "{prod}"
    );
    // pull_request was denied before as after: not this change's doing.
    assert_eq!(
        subject(&report, "repo:acme/web-app:pull_request")["change"],
        "still-denied"
    );
    // The job whose role is ${{ secrets.OTHER_ROLE }} is named in a note, not guessed.
    assert!(report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("--workflow-role")));
}

#[test]
fn hostile_text_in_a_policy_is_escaped_and_for_all_values_widens() {
    // A condition key carrying an ANSI escape and a right-to-left override.
    let output = impact("tests/data/impact/hostile.json", &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "{text}");
    assert!(text.contains("\\u{001b}[31mEVIL\\u{202e}"), "{text}");
    assert!(text.contains("ForAllValuesOnClaim"), "{text}");
    let (_, report) = json("tests/data/impact/hostile.json", &[]);
    // A condition on a claim STS never sets fails for certain: a break, not a maybe.
    let main = subject(&report, MAIN);
    assert_eq!(
        (&main["change"], &main["cause"]),
        (&"breaks".into(), &"UnverifiableCondition".into())
    );
    assert!(any(&report["widening"], "code", "ForAllValuesOnClaim"));
}
