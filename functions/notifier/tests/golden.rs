//! Golden tests: the Block Kit payload of every alert kind, compared exactly with
//! `tests/golden/<name>.json`, and every golden checked against Slack's limits.
//!
//! Alerts are built the way oidc-monitor builds them (a diagnosis of an `events/` file,
//! `Alert::to_q_notification`) and read back through `parse_message`, so a change on
//! either side of the SNS contract shows up here. Regenerate after an intended change
//! with `UPDATE_GOLDEN=1 cargo test -p oidc-notifier --test golden`, then review the diff.

mod common;

use std::collections::BTreeSet;

use common::*;
use diagnosis::SubjectMismatch;
use oidc_notifier::escape::{mrkdwn, mrkdwn_lines};
use oidc_notifier::notice::{parse_message, Notice};
use oidc_notifier::ports::Breakdown;
use oidc_notifier::render::{limit_violations, limits, render};
use serde_json::Value;

/// One incident golden per cause (and per kind of `SubjectMismatch` whose fix differs).
const INCIDENTS: [(&str, &str); 22] = [
    (
        "subject-mismatch-branch",
        "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json",
    ),
    (
        "subject-mismatch-environment",
        "subject-mismatch/environment/github-environment-job-vs-branch-policy.json",
    ),
    (
        "subject-mismatch-case",
        "subject-mismatch/case/github-org-lowercased-in-policy.json",
    ),
    (
        "subject-mismatch-immutable-format",
        "subject-mismatch/immutable-format/github-immutable-subject-vs-name-policy.json",
    ),
    (
        "subject-mismatch-wildcard",
        "subject-mismatch/wildcard-under-string-equals/github-star-in-stringequals.json",
    ),
    (
        "subject-mismatch-whitespace",
        "subject-mismatch/whitespace/github-trailing-space-in-policy.json",
    ),
    (
        "subject-mismatch-eks",
        "subject-mismatch/other/eks-service-account-name-differs.json",
    ),
    (
        "audience-mismatch",
        "audience-mismatch/github-owner-url-audience.json",
    ),
    (
        "audience-not-in-provider",
        "audience-not-in-provider/gitlab-audience-not-registered.json",
    ),
    (
        "oidc-provider-missing",
        "oidc-provider-missing/github-enterprise-slug-issuer-not-registered.json",
    ),
    (
        "thumbprint-mismatch",
        "thumbprint-mismatch/ghes-certificate-rotated.json",
    ),
    (
        "principal-mismatch",
        "principal-mismatch/github-policy-trusts-provider-in-other-account.json",
    ),
    (
        "action-not-allowed",
        "action-not-allowed/github-action-is-sts-assumerole.json",
    ),
    (
        "missing-tag-session-permission",
        "missing-tag-session-permission/buildkite-session-tags-without-tagsession.json",
    ),
    (
        "explicit-deny",
        "explicit-deny/github-deny-statement-for-pull-requests.json",
    ),
    (
        "unverifiable-condition",
        "unverifiable-condition/github-job-workflow-ref-condition.json",
    ),
    (
        "session-duration-exceeded",
        "session-duration-exceeded/github-duration-above-role-maximum.json",
    ),
    ("token-expired", "token-expired/github-token-expired.json"),
    (
        "idp-unreachable",
        "idp-unreachable/github-idp-communication-error.json",
    ),
    (
        "denied-outside-trust-policy",
        "denied-outside-trust-policy/github-trust-policy-allows-but-rcp-denies.json",
    ),
    ("role-not-found", "role-not-found/github-role-name-typo.json"),
    ("unknown", "unknown/github-access-denied-without-role-arn.json"),
];

/// The alarm fixtures, and whether they render with a breakdown.
const ALARMS: [(&str, &str, bool); 3] = [
    (
        "alarm-single-metric",
        "sns-cloudwatch-alarm-single-metric.json",
        true,
    ),
    ("alarm-metric-math", "sns-cloudwatch-alarm-metric-math.json", true),
    ("alarm-ok", "sns-cloudwatch-alarm-ok.json", false),
];

fn parse(message: &str) -> Notice {
    parse_message(message).unwrap_or_else(|e| panic!("{e}: {message}"))
}

/// Every golden case: name, notice, breakdown.
fn cases() -> Vec<(String, Notice, Option<Breakdown>)> {
    let mut cases = Vec::new();
    for (name, path) in INCIDENTS {
        let attempts = if name == "subject-mismatch-branch" { 12 } else { 1 };
        let alert = incident_from(diagnosis_of(path), attempts);
        cases.push((format!("incident-{name}"), parse(&sns_message(&alert)), None));
    }
    for (name, alert) in [
        ("probe", probe()),
        ("foreign-success", foreign_success()),
        ("spike", spike()),
        ("recovery", recovery()),
        ("audit-digest", audit_digest()),
    ] {
        cases.push((name.to_owned(), parse(&sns_message(&alert)), None));
    }
    for (name, file, with_breakdown) in ALARMS {
        let notice = parse(&message_of(&fixture(file)));
        let breakdown = match (&notice, with_breakdown) {
            (Notice::Alarm(alarm), true) => {
                let (start, end) = alarm.window().expect("the fixture has a StateChangeTime");
                Some(Breakdown {
                    start,
                    end,
                    ..sample_breakdown()
                })
            }
            _ => None,
        };
        cases.push((name.to_owned(), notice, breakdown));
    }
    cases
}

#[test]
fn every_alert_kind_renders_as_its_golden() {
    let dir = manifest_dir().join("tests/golden");
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (name, notice, breakdown) in cases() {
        let payload = render(&notice, breakdown.as_ref()).payload();
        names.insert(format!("{name}.json"));
        problems.extend(check_json_file(&dir.join(format!("{name}.json")), &payload));
    }
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.ends_with(".json") && !names.contains(&file) {
            problems.push(format!("{file}: no test renders this golden any more; delete it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_golden_is_within_slack_limits() {
    let dir = manifest_dir().join("tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let problems = limit_violations(&payload);
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
        let blocks = payload["blocks"].as_array().unwrap();
        assert!(!blocks.is_empty() && blocks.len() <= limits::MAX_BLOCKS);
        assert_eq!(
            blocks[0]["type"],
            "header",
            "{}: severity and cause come first",
            path.display()
        );
        assert_eq!(payload["unfurl_links"], false);
        assert!(!payload["text"].as_str().unwrap().is_empty());
        checked += 1;
    }
    assert_eq!(checked, INCIDENTS.len() + 5 + ALARMS.len());
}

#[test]
fn incidents_carry_what_a_developer_needs() {
    let alert = incident_from(
        diagnosis_of("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"),
        12,
    );
    let payload = render(&parse(&sns_message(&alert)), None).payload();
    let text = payload.to_string();
    for needle in [
        "HIGH · SubjectMismatch (Branch)",
        "`gha-deploy-main-only`",
        "`111122223333`",
        "`us-east-1`",
        "`acme/web-app`",
        "*Branch*\\n`feature/login-form`",
        "*Attempts*\\n12",
        "• expected: `repo:acme/web-app:ref:refs/heads/main`",
        "• actual: `repo:acme/web-app:ref:refs/heads/feature/login-form`",
        "Owner `github:acme` · ours",
        "Add `repo:acme/web-app:ref:refs/heads/feature/login-form` to `StringEquals` `token.actions.githubusercontent.com:sub` in statement 0.",
        "Statement 0 after the change:\\n```\\n{\\n  \\\"Effect\\\": \\\"Allow\\\",",
        "<https://console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/804a752e-aa32-4947-96f7-a4de5b320c57|CloudTrail event>",
        "<https://console.aws.amazon.com/iam/home#/roles/details/gha-deploy-main-only?section=trust_relationships|IAM role>",
        "<https://github.com/acme/web-app/actions/runs/18190844520|GitHub run>",
    ] {
        assert!(text.contains(needle), "missing {needle} in {text}");
    }
}

#[test]
fn strangers_get_no_fix_and_alarms_show_the_breakdown() {
    let probe = render(&parse(&sns_message(&probe())), None).payload().to_string();
    assert!(probe.contains("Do not add it to the trust policy"));
    assert!(!probe.contains("Trust-policy change") && !probe.contains("*Fix*"));
    let notice = parse(&message_of(&fixture("sns-cloudwatch-alarm-single-metric.json")));
    let breakdown = sample_breakdown();
    let alarm = render(&notice, Some(&breakdown)).payload().to_string();
    assert!(alarm.contains("`SubjectMismatch`: 31") && alarm.contains("`gha-deploy-main-only`: 29"));
    let spike = render(&parse(&sns_message(&spike())), None).payload().to_string();
    assert!(spike.contains("*42* failures in the last 5 min"), "{spike}");
    assert!(spike.contains("`-` (roles that do not exist): 8"));
}

/// The notifier's SNS envelopes for `cargo lambda invoke` hold exactly what oidc-monitor
/// publishes today (regenerated with the goldens).
#[test]
fn sns_fixtures_hold_what_the_monitor_publishes() {
    let fixtures = [
        (
            "sns-oidc-watch-incident.json",
            "8d3f6a52-0001-5e4b-9c1d-3a2b1c0d9e8f",
            incident_from(
                diagnosis_of("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"),
                12,
            ),
        ),
        (
            "sns-oidc-watch-probe.json",
            "8d3f6a52-0002-5e4b-9c1d-3a2b1c0d9e8f",
            probe(),
        ),
        (
            "sns-oidc-watch-foreign-success.json",
            "8d3f6a52-0003-5e4b-9c1d-3a2b1c0d9e8f",
            foreign_success(),
        ),
        (
            "sns-oidc-watch-spike.json",
            "8d3f6a52-0004-5e4b-9c1d-3a2b1c0d9e8f",
            spike(),
        ),
        (
            "sns-oidc-watch-recovery.json",
            "8d3f6a52-0005-5e4b-9c1d-3a2b1c0d9e8f",
            recovery(),
        ),
    ];
    let problems: Vec<String> = fixtures
        .iter()
        .filter_map(|(file, id, alert)| check_json_file(&fixtures_dir().join(file), &alert_event(id, alert)))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_fixture_is_an_sns_event_the_notifier_understands() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let parsed: aws_lambda_events::sns::SnsEvent =
            serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let again = serde_json::to_value(&parsed).unwrap();
        let reparsed: aws_lambda_events::sns::SnsEvent = serde_json::from_value(again).unwrap();
        assert_eq!(parsed, reparsed, "{}", path.display());
        parse(&parsed.records[0].sns.message);
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
}

const BRANCH: &str = "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json";

/// The `text` of every section of `payload`.
fn section_texts(payload: &Value) -> Vec<String> {
    payload["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// The copyable snippet is the edited statement of `suggested_change.policy`, as the
/// producer verified it.
#[test]
fn the_snippet_is_rendered_from_suggested_change() {
    let d = diagnosis_of(BRANCH);
    let change = d
        .suggested_change
        .clone()
        .expect("the producer verifies a change for this job");
    let statement = &change.policy["Statement"][change.statement];
    assert!(statement.is_object());
    let pretty = serde_json::to_string_pretty(statement).unwrap();
    let payload = render(&parse(&sns_message(&incident_from(d, 1))), None).payload();
    let texts = section_texts(&payload);
    let block = format!("```\n{}\n```", mrkdwn_lines(&pretty));
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Statement 0 after the change:\n") && t.ends_with(&block)),
        "{texts:#?}"
    );
    // The summary names what the field adds, under its operator and key.
    assert!(texts.iter().any(|t| t.ends_with(&format!(
        "Add `{}` to `{}` `{}` in statement 0.",
        change.add[0],
        change.operator.as_deref().unwrap(),
        change.key
    ))));
}

/// No `suggested_change`, no snippet, whatever the fix says; the fix is shown instead.
#[test]
fn a_fix_sentence_never_makes_a_snippet() {
    let mut d = diagnosis_of("subject-mismatch/case/github-org-lowercased-in-policy.json");
    assert!(d.suggested_change.is_some());
    d.suggested_change = None;
    d.subject_mismatch = Some(SubjectMismatch::Case);
    d.fix = Some("In statement 0, replace \"x\" with \"y\" (a sentence, not a change).".into());
    let payload = render(&parse(&sns_message(&incident_from(d, 1))), None).payload();
    let text = payload.to_string();
    assert!(!text.contains("```"), "{text}");
    assert!(!text.contains("Trust-policy change"), "{text}");
    assert!(
        text.contains("*Fix*\\nIn statement 0, replace \\\"x\\\" with \\\"y\\\""),
        "{text}"
    );
}

/// The producer's null `suggested_change` (no safe policy edit): no snippet, the fix.
#[test]
fn a_null_suggested_change_renders_no_snippet() {
    let d = diagnosis_of("explicit-deny/github-deny-statement-for-pull-requests.json");
    assert!(d.suggested_change.is_none());
    let fix = d.fix.clone().expect("the fix says what to do instead");
    let message = sns_message(&incident_from(d, 1));
    let q: Value = serde_json::from_str(&message).unwrap();
    let diagnosis: Value =
        serde_json::from_str(q["metadata"]["additionalContext"]["diagnosis"].as_str().unwrap()).unwrap();
    assert_eq!(diagnosis["suggested_change"], Value::Null);
    let payload = render(&parse(&message), None).payload();
    let texts = section_texts(&payload);
    assert!(!payload.to_string().contains("```"));
    assert!(!texts.iter().any(|t| t.contains("Trust-policy change")));
    assert!(texts
        .iter()
        .any(|t| t.starts_with("*Fix*\n") && t.contains(&mrkdwn(&fix))));
}

/// An older producer's diagnosis has no `owner`, `trust` or `suggested_change`: the alert
/// still renders, without them; the context's own members stand in when only they exist.
#[test]
fn diagnoses_without_the_new_fields_still_render() {
    let q = incident_from(diagnosis_of(BRANCH), 1).to_q_notification();
    let strip = |q: &Value, context_too: bool| {
        let mut q = q.clone();
        let context = q["metadata"]["additionalContext"].as_object_mut().unwrap();
        let mut diagnosis: Value = serde_json::from_str(context["diagnosis"].as_str().unwrap()).unwrap();
        for key in ["owner", "trust", "suggested_change"] {
            diagnosis.as_object_mut().unwrap().remove(key);
            if context_too {
                context.remove(key);
            }
        }
        context.insert("diagnosis".into(), Value::String(diagnosis.to_string()));
        q.to_string()
    };
    let old = render(&parse(&strip(&q, true)), None).payload().to_string();
    assert!(old.contains("SubjectMismatch (Branch)") && old.contains("*Fix*"));
    assert!(!old.contains("```") && !old.contains("Owner `") && !old.contains("Trust-policy change"));
    let from_context = render(&parse(&strip(&q, false)), None).payload().to_string();
    assert!(from_context.contains("Owner `github:acme` · ours"));
    assert!(from_context.contains("Statement 0 after the change:"));
    // A malformed suggestion costs the snippet, not the alert.
    let mut bad = q.clone();
    bad["metadata"]["additionalContext"]["suggested_change"] = Value::String("{\"statement\":\"x\"}".into());
    let bad = strip(&bad, false);
    let rendered = render(&parse(&bad), None).payload().to_string();
    assert!(rendered.contains("*Fix*") && !rendered.contains("```"));
}

/// Notes of the alert path (rate limits) are shown after the summary, and in the text.
#[test]
fn notes_are_shown_when_the_notification_carries_them() {
    let mut q = incident_from(diagnosis_of(BRANCH), 1).to_q_notification();
    let note =
        "Alert rate limit reached (20 per hour): later incident and probe alerts this hour are held back.";
    q["metadata"]["additionalContext"]["notes"] = Value::String(serde_json::to_string(&[note]).unwrap());
    let payload = render(&parse(&q.to_string()), None).payload();
    assert_eq!(payload["blocks"][2]["type"], "context");
    assert_eq!(
        payload["blocks"][2]["elements"][0]["text"],
        format!(":information_source: {note}")
    );
    assert!(payload["text"].as_str().unwrap().ends_with(note));
    assert!(limit_violations(&payload).is_empty());
}
