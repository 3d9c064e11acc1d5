//! Shared by the notifier's integration tests: alerts built exactly as oidc-monitor builds
//! them (diagnosis of an `events/` file, `Alert::to_q_notification`), SNS envelopes as
//! Lambda receives them (built here, or the files of `events/sns/`), golden files, and
//! [`chat`], the chat stand-in (tests/standins/chat.py) as a child process.

#![allow(dead_code, unused_imports)] // each test file uses some of these

pub mod chat;

use std::path::{Path, PathBuf};

use diagnosis::alert::{message_attributes, Alert, AlertKind, Severity, SpikeSummary};
use diagnosis::owner::{Owner, OwnerScope, Trust};
use diagnosis::testing::{diagnose_sample, sample_json};
pub use diagnosis::testing::{events_dir, sns_dir as fixtures_dir, sns_event as fixture};
use diagnosis::Diagnosis;
use oidc_notifier::ports::{AlarmBreakdown, Breakdown, Channel, NotifierStore};
use oidc_notifier::{handle, Deps, HandlerError, Outcome, Status};
use serde_json::{json, Value};

pub const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:111122223333:oidc-watch-alerts";

/// Set to regenerate golden files and generated fixtures instead of comparing.
pub const UPDATE_ENV: &str = "UPDATE_GOLDEN";

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The diagnosis oidc-monitor makes of `events/<relative>`, with its account's snapshot.
pub fn diagnosis_of(relative: &str) -> Diagnosis {
    diagnose_sample(&sample_json(relative))
}

pub fn diagnosis_of_value(envelope: &Value) -> Diagnosis {
    diagnose_sample(envelope)
}

/// `events/<relative>` as if another subject had made the call.
pub fn with_subject(relative: &str, sub: &str) -> Value {
    diagnosis::testing::with_subject(&sample_json(relative), sub)
}

pub fn incident_from(d: Diagnosis, attempts: u64) -> Alert {
    Alert {
        kind: AlertKind::Incident,
        severity: Severity::High,
        thread_id: format!("{:016x}-1791297000", fnv(d.event_id.as_deref().unwrap_or(""))),
        account_id: d.account_id.clone().unwrap_or_else(|| "-".into()),
        cause: Some(d.cause),
        attempts,
        diagnosis: Some(d),
        spike: None,
        notes: Vec::new(),
        changes: Vec::new(),
        digest: None,
    }
}

pub fn incident(relative: &str) -> Alert {
    incident_from(diagnosis_of(relative), 1)
}

pub fn probe() -> Alert {
    let d = diagnosis_of_value(&with_subject(
        "subject-mismatch/repository/github-other-repo-same-org.json",
        "repo:evil-corp/payments-api:ref:refs/heads/main",
    ));
    Alert {
        kind: AlertKind::Probe,
        severity: Severity::Low,
        ..incident_from(d, 1)
    }
}

pub fn foreign_success() -> Alert {
    let mut d = diagnosis_of("none/github-push-main-success.json");
    d.subject = Some("repo:outsider/web-app:ref:refs/heads/main".into());
    d.claims.repository = Some("outsider/web-app".into());
    d.claims.owner = Some("outsider".into());
    d.owner = Some(Owner::new(OwnerScope::GitHub, "outsider"));
    d.trust = Trust::Foreign;
    d.explanation = format!(
        "The call succeeded: \"repo:outsider/web-app:ref:refs/heads/main\" assumed {:?}.",
        d.role_arn.clone().unwrap_or_default()
    );
    Alert {
        kind: AlertKind::ForeignSuccess,
        severity: Severity::Critical,
        cause: None,
        ..incident_from(d, 1)
    }
}

pub fn spike_summary(failures: u64) -> SpikeSummary {
    SpikeSummary {
        scope: "all".into(),
        window_seconds: 300,
        failures,
        baseline: 2.5,
        top_roles: vec![
            ("gha-deploy-main-only".into(), 30),
            ("-".into(), 8),
            ("gha-deploy-prod".into(), 4),
        ],
        top_causes: vec![
            ("SubjectMismatch".into(), 30),
            ("RoleNotFound".into(), 8),
            ("AudienceMismatch".into(), 4),
        ],
    }
}

pub fn spike() -> Alert {
    Alert {
        kind: AlertKind::Spike,
        severity: Severity::High,
        thread_id: "spike-all-1791296700".into(),
        account_id: "111122223333".into(),
        cause: None,
        attempts: 42,
        diagnosis: None,
        spike: Some(spike_summary(42)),
        notes: Vec::new(),
        changes: Vec::new(),
        digest: None,
    }
}

pub fn recovery() -> Alert {
    Alert {
        kind: AlertKind::Recovery,
        severity: Severity::Info,
        attempts: 1,
        spike: Some(SpikeSummary {
            failures: 1,
            top_roles: vec![],
            top_causes: vec![],
            ..spike_summary(1)
        }),
        ..spike()
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The SNS `Message` a Lambda subscriber gets for `alert`: the `default` member of what
/// `oidc-watch-aws`'s `to_publish` sends with `MessageStructure=json`.
pub fn sns_message(alert: &Alert) -> String {
    serde_json::to_string(&alert.to_q_notification()).unwrap()
}

/// An SNS event carrying `message`, as Lambda receives it.
pub fn sns_event(
    message_id: &str,
    subject: Option<&str>,
    message: &str,
    attributes: &[(&str, String)],
) -> Value {
    let attributes: serde_json::Map<String, Value> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), json!({"Type": "String", "Value": v})))
        .collect();
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{TOPIC_ARN}:0b6941c4-8d4c-4b2f-9f3e-2a3c4d5e6f70"),
            "Sns": {
                "Type": "Notification",
                "MessageId": message_id,
                "TopicArn": TOPIC_ARN,
                "Subject": subject,
                "Message": message,
                "Timestamp": "2026-10-06T14:30:05.123Z",
                "SignatureVersion": "1",
                "Signature": "EXAMPLE",
                "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
                "UnsubscribeUrl": format!("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:0b6941c4"),
                "MessageAttributes": attributes,
            }
        }]
    })
}

pub fn alert_event(message_id: &str, alert: &Alert) -> Value {
    let attributes: Vec<(&str, String)> = message_attributes(alert).into_iter().collect();
    sns_event(
        message_id,
        Some("oidc-watch alert"),
        &sns_message(alert),
        &attributes,
    )
}

/// The `Message` of the first record of an SNS event fixture.
pub fn message_of(event: &Value) -> String {
    event["Records"][0]["Sns"]["Message"].as_str().unwrap().to_owned()
}

/// The breakdown the alarm goldens render with.
pub fn sample_breakdown() -> Breakdown {
    Breakdown {
        start: 0,
        end: 0,
        by_cause: vec![
            ("SubjectMismatch".into(), 31.0),
            ("RoleNotFound".into(), 9.0),
            ("AudienceMismatch".into(), 2.0),
        ],
        by_role: vec![
            ("gha-deploy-main-only".into(), 29.0),
            ("-".into(), 9.0),
            ("gha-deploy-prod".into(), 4.0),
        ],
    }
}

pub fn updating() -> bool {
    std::env::var_os(UPDATE_ENV).is_some()
}

/// Compares `actual` with the file at `path` (pretty JSON and a newline), or writes it
/// when [`UPDATE_ENV`] is set. Returns a mismatch description instead of panicking, so a
/// test can report every stale golden at once.
pub fn check_json_file(path: &Path, actual: &Value) -> Option<String> {
    let text = format!("{}\n", serde_json::to_string_pretty(actual).unwrap());
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &text).unwrap();
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == text => None,
        Ok(_) => Some(format!(
            "{} differs (run with {UPDATE_ENV}=1 to regenerate, then review the diff)",
            path.display()
        )),
        Err(_) => Some(format!("{} is missing (run with {UPDATE_ENV}=1)", path.display())),
    }
}

/// One invocation of the handler with `payload` as the Lambda event.
pub async fn invoke<C: Channel, D: NotifierStore, B: AlarmBreakdown>(
    deps: &Deps<C, D, B>,
    payload: Value,
) -> Result<Outcome, HandlerError> {
    handle(
        lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default()),
        deps,
    )
    .await
}

/// What each delivery of an invocation came to.
pub fn statuses(outcome: &Outcome) -> Vec<Status> {
    outcome.deliveries.iter().map(|d| d.status).collect()
}

/// An audit finding as oidc-auditor keeps it.
pub fn account_finding(
    role: Option<&str>,
    code: diagnosis::audit::FindingCode,
    severity: diagnosis::audit::Severity,
    message: &str,
) -> diagnosis::audit::AccountFinding {
    diagnosis::audit::AccountFinding {
        account: "111122223333".into(),
        role: role.map(str::to_owned),
        provider: Some("token.actions.githubusercontent.com".into()),
        statement: role.map(|_| 0),
        code,
        severity,
        value: None,
        message: message.into(),
        suggested_change: None,
    }
}

/// A digest as oidc-auditor publishes it: new findings of two severities on two roles
/// and a provider, one with a verified change, and one resolved finding. Fixed findings,
/// not the audit engine's, so the golden pins the rendering alone.
pub fn audit_digest() -> Alert {
    use diagnosis::audit::{Digest, FindingCode, Severity as S};
    let mut wildcard = account_finding(
        Some("gha-deploy-prod"),
        FindingCode::OwnerWildcard,
        S::High,
        "Statement 0 allows \"repo:*/infra:*\": the wildcard in the owner position lets any GitHub user's repository assume this role.",
    );
    wildcard.value = Some("repo:*/infra:*".into());
    let mut renamed = account_finding(
        Some("gha-web-app"),
        FindingCode::RepositoryRenamed,
        S::Medium,
        "Statement 0 names \"acme/web-app\", which GitHub now calls \"acme/storefront\".",
    );
    renamed.suggested_change = Some(diagnosis::suggest::SuggestedChange {
        statement: 0,
        operator: Some("StringLike".into()),
        key: "token.actions.githubusercontent.com:sub".into(),
        add: vec!["repo:acme/storefront:*".into()],
        remove: vec!["repo:acme/web-app:*".into()],
        policy: Value::Null,
    });
    let digest = Digest {
        new: vec![
            renamed,
            wildcard,
            account_finding(
                None,
                FindingCode::UnusedProvider,
                S::Low,
                "No role of account 111122223333 trusts the OIDC provider \"gitlab.com\".",
            ),
        ],
        resolved: vec![account_finding(
            Some("gha-legacy-deploy"),
            FindingCode::NoSubjectCondition,
            S::High,
            "Statement 0 trusts \"token.actions.githubusercontent.com\" with no condition on sub.",
        )],
        unchanged: 7,
    };
    let unread = [diagnosis::alert::UnreadAccount {
        account: "444455556666".into(),
        error: "AccessDenied: not authorized to perform sts:AssumeRole".into(),
    }];
    diagnosis::alert::digest_alert(
        "111122223333",
        &["111122223333".to_owned(), "444455556666".to_owned()],
        &digest,
        &unread,
    )
}
