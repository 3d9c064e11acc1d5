//! oidc-auditor's handler over in-memory ports: the first run publishes every finding as
//! new, a run with nothing changed is silent, a changed trust policy publishes the new and
//! the resolved finding, an account that cannot be read stops nothing and resolves
//! nothing, and a failed publish saves nothing (the retry sends the same digest).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use diagnosis::alert::{Alert, AlertKind, Severity};
use diagnosis::audit::FindingCode;
use diagnosis::ports::memory::{MemoryAlerts, MemoryState};
use diagnosis::ports::{StateStore, Success};
use diagnosis::snapshot::AccountSnapshot;
use lambda_runtime::{Context, LambdaEvent};
use oidc_auditor::ports::memory::{MemoryFindings, MemoryReader};
use oidc_auditor::{handle, Config, Deps, HandlerError, Outcome};
use serde_json::{json, Value};

const OWN: &str = "111122223333";
const OTHER: &str = "444455556666";
const GITHUB: &str = "token.actions.githubusercontent.com";
const NOW: i64 = 1_795_000_000;
const DAY: i64 = 86_400;

type TestDeps = Deps<MemoryReader, MemoryFindings, MemoryState, MemoryAlerts>;

fn provider_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:oidc-provider/{GITHUB}")
}

/// A role trusting GitHub for `subjects` under StringLike, with an `aud` condition.
fn role(account: &str, name: &str, subjects: &[&str]) -> Value {
    json!({
        "RoleName": name,
        "Arn": format!("arn:aws:iam::{account}:role/{name}"),
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn(account)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {format!("{GITHUB}:aud"): "sts.amazonaws.com"},
                "StringLike": {format!("{GITHUB}:sub"): subjects}}}]}
    })
}

fn snapshot(account: &str, roles: Vec<Value>) -> AccountSnapshot {
    AccountSnapshot::from_json(
        &json!({
            "AccountId": account,
            "Roles": roles,
            "OpenIDConnectProviders": [{"Arn": provider_arn(account), "Url": GITHUB,
                "ClientIDList": ["sts.amazonaws.com"], "ThumbprintList": []}],
            "Complete": {"Roles": true, "OpenIDConnectProviders": true}
        })
        .to_string(),
    )
    .unwrap()
}

struct Harness {
    deps: TestDeps,
    now: Arc<AtomicI64>,
}

fn harness(accounts: &[&str], observed_subject_days: i64) -> Harness {
    let now = Arc::new(AtomicI64::new(NOW));
    let clock = now.clone();
    let reader = MemoryReader {
        own: OWN.to_owned(),
        ..MemoryReader::default()
    };
    reader.set(snapshot(
        OWN,
        vec![
            role(OWN, "gha-deploy", &["repo:acme/web:ref:refs/heads/main"]),
            role(OWN, "gha-infra", &["repo:acme/infra:*"]),
        ],
    ));
    reader.set(snapshot(
        OTHER,
        vec![role(OTHER, "gha-data", &["repo:acme/data:*"])],
    ));
    Harness {
        deps: Deps {
            config: Config {
                accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
                read_role_name: Some("oidc-watch-read".to_owned()),
                state_table_name: "state".to_owned(),
                alert_topic_arn: "arn:aws:sns:us-east-1:111122223333:alerts".to_owned(),
                unused_days: 90,
                observed_subject_days,
            },
            accounts: reader,
            findings: MemoryFindings::default(),
            successes: MemoryState::default(),
            alerts: MemoryAlerts::default(),
            clock: Box::new(move || clock.load(Ordering::SeqCst)),
        },
        now,
    }
}

impl Harness {
    async fn run_with(&self, payload: Value) -> Result<Outcome, HandlerError> {
        handle(LambdaEvent::new(payload, Context::default()), &self.deps).await
    }

    async fn run(&self) -> Outcome {
        self.run_with(json!({"source": "oidc-watch.audit-schedule"}))
            .await
            .unwrap()
    }

    fn published(&self) -> Vec<Alert> {
        self.deps.alerts.alerts.lock().unwrap().clone()
    }

    fn later(&self, days: i64) {
        self.now.fetch_add(days * DAY, Ordering::SeqCst);
    }
}

fn codes(findings: &[diagnosis::audit::AccountFinding]) -> Vec<(String, Option<String>, FindingCode)> {
    findings
        .iter()
        .map(|f| (f.account.clone(), f.role.clone(), f.code))
        .collect()
}

#[tokio::test]
async fn first_run_publishes_everything_then_nothing_changed_is_silent() {
    let h = harness(&[], 0);
    let outcome = h.run().await;
    assert!(outcome.published);
    assert_eq!(outcome.accounts.len(), 1);
    let own = &outcome.accounts[0];
    assert_eq!((own.account.as_str(), own.error.as_deref()), (OWN, None));
    assert!(
        own.findings > 0 && own.new == own.findings && own.resolved == 0,
        "{own:?}"
    );
    let alerts = h.published();
    assert_eq!(alerts.len(), 1);
    let digest = alerts[0].digest.as_ref().unwrap();
    assert_eq!(alerts[0].kind, AlertKind::AuditDigest);
    assert_eq!(digest.accounts, [OWN]);
    assert_eq!(digest.new_count(), own.findings);
    assert_eq!(digest.resolved_count(), 0);
    let saved = h.deps.findings.findings(OWN).unwrap();
    assert_eq!(saved.len(), own.findings);
    // The JSON a `cargo lambda invoke` prints.
    let output = serde_json::to_value(&outcome).unwrap();
    assert_eq!(output["accounts"][0]["error"], Value::Null);
    assert_eq!(output["published"], true);

    h.later(7);
    let outcome = h.run().await;
    assert!(!outcome.published, "{outcome:?}");
    assert_eq!((outcome.accounts[0].new, outcome.accounts[0].resolved), (0, 0));
    assert_eq!(h.published().len(), 1, "nothing changed: no second digest");
}

#[tokio::test]
async fn a_changed_trust_policy_publishes_the_new_and_the_resolved_finding() {
    let h = harness(&[], 0);
    h.run().await;
    let before = h.deps.findings.findings(OWN).unwrap();
    assert!(!codes(&before).contains(&(OWN.into(), Some("gha-deploy".into()), FindingCode::OwnerWildcard)));

    // gha-deploy now trusts any owner's "web" repository; gha-infra loses its name-based
    // subject for an immutable one.
    h.deps.accounts.set(snapshot(
        OWN,
        vec![
            role(OWN, "gha-deploy", &["repo:*/web:ref:refs/heads/main"]),
            role(OWN, "gha-infra", &["repo:acme@4711/infra@80808:*"]),
        ],
    ));
    h.later(7);
    let outcome = h.run().await;
    assert!(outcome.published);
    let alerts = h.published();
    let digest = alerts[1].digest.as_ref().unwrap();
    let new = codes(&digest.new);
    assert!(
        new.contains(&(OWN.into(), Some("gha-deploy".into()), FindingCode::OwnerWildcard)),
        "{new:?}"
    );
    let resolved = codes(&digest.resolved);
    assert!(
        resolved.contains(&(
            OWN.into(),
            Some("gha-infra".into()),
            FindingCode::NameBasedSubject
        )),
        "{resolved:?}"
    );
    assert_eq!(alerts[1].severity, Severity::High, "an owner wildcard is high");
    assert_ne!(alerts[0].thread_id, alerts[1].thread_id);
    assert_eq!(outcome.accounts[0].new, digest.new.len());
}

#[tokio::test]
async fn resolved_findings_alone_publish_an_info_digest() {
    let h = harness(&[], 0);
    h.run().await;
    // Both roles deleted: every role finding is resolved, nothing is new but the provider
    // no role trusts any more.
    h.deps.accounts.set(snapshot(OWN, vec![]));
    let outcome = h.run().await;
    assert!(outcome.published);
    let alerts = h.published();
    let digest = alerts[1].digest.as_ref().unwrap();
    assert!(digest.resolved_count() > 0);
    assert!(
        digest.new.iter().all(|f| f.code == FindingCode::UnusedProvider),
        "{:?}",
        codes(&digest.new)
    );
}

#[tokio::test]
async fn an_account_that_cannot_be_read_stops_nothing_and_resolves_nothing() {
    let h = harness(&[OWN, OTHER], 0);
    h.deps.accounts.deny(OTHER, true);
    let outcome = h.run().await;
    assert!(outcome.published);
    let other = outcome.accounts.iter().find(|a| a.account == OTHER).unwrap();
    assert!(
        other.error.as_deref().unwrap().contains("AccessDenied"),
        "{other:?}"
    );
    let own = outcome.accounts.iter().find(|a| a.account == OWN).unwrap();
    assert!(own.error.is_none() && own.new > 0);
    let digest = h.published()[0].digest.clone().unwrap();
    assert_eq!(digest.accounts, [OWN]);
    assert_eq!(digest.unread.len(), 1);
    assert_eq!(digest.unread[0].account, OTHER);

    // Readable again: its findings are new.
    h.deps.accounts.deny(OTHER, false);
    let outcome = h.run().await;
    assert!(outcome.published);
    let digest = h.published()[1].digest.clone().unwrap();
    assert!(digest.new.iter().all(|f| f.account == OTHER) && !digest.new.is_empty());
    assert_eq!(digest.resolved_count(), 0);

    // Denied again: what it had stands, nothing is resolved, nothing is published.
    let saved = h.deps.findings.findings(OTHER).unwrap();
    h.deps.accounts.deny(OTHER, true);
    let outcome = h.run().await;
    assert!(!outcome.published, "{outcome:?}");
    assert_eq!(h.deps.findings.findings(OTHER).unwrap(), saved);
    assert_eq!(h.published().len(), 2);
}

#[tokio::test]
async fn a_failed_publish_saves_nothing_and_the_retry_sends_the_same_digest() {
    let h = harness(&[], 0);
    *h.deps.alerts.fail_next.lock().unwrap() = 1;
    let error = h.run_with(json!({})).await.unwrap_err();
    assert!(matches!(error, HandlerError::Alert(_)), "{error}");
    assert!(h.deps.findings.findings(OWN).is_none(), "nothing saved");
    let outcome = h.run_with(json!({})).await.unwrap();
    assert!(outcome.published);
    let first = h.published();
    assert_eq!(first.len(), 1);

    // Saving fails after the publish: the retry publishes the same alert again (receivers
    // deduplicate by its id), then saves.
    let h = harness(&[], 0);
    *h.deps.findings.fail_saves.lock().unwrap() = true;
    for _ in 0..2 {
        let error = h.run_with(Value::Null).await.unwrap_err();
        assert!(matches!(error, HandlerError::State(_)), "{error}");
    }
    *h.deps.findings.fail_saves.lock().unwrap() = false;
    h.run().await;
    let alerts = h.published();
    assert!(alerts.len() >= 2);
    assert!(alerts.iter().all(|a| a.alert_id() == first[0].alert_id()));
    assert!(!h.run().await.published);
}

#[tokio::test]
async fn only_the_schedule_or_an_empty_event_runs_the_audit() {
    let h = harness(&[], 0);
    for payload in [json!({"source": "aws.events"}), json!({"source": 5}), json!([1])] {
        let error = h.run_with(payload.clone()).await.unwrap_err();
        assert!(
            matches!(error, HandlerError::NotSchedule(_)),
            "{payload}: {error}"
        );
    }
    assert!(h.published().is_empty());
    assert!(h.run_with(Value::Null).await.unwrap().published);
}

#[tokio::test]
async fn roles_are_judged_by_use_only_over_the_time_the_record_covers() {
    let h = harness(&[], 90);
    let unused = |alerts: &[Alert]| -> Vec<String> {
        alerts
            .iter()
            .flat_map(|a| a.digest.iter().flat_map(|d| d.new.clone()))
            .filter(|f| f.code == FindingCode::UnusedRole)
            .filter_map(|f| f.role)
            .collect()
    };
    // The first audit: the record is as old as the stack, so no role is called unused.
    h.run().await;
    assert!(unused(&h.published()).is_empty(), "{:?}", unused(&h.published()));

    // 100 days on, gha-deploy was assumed yesterday; gha-infra never.
    h.later(100);
    let at = NOW + 99 * DAY;
    h.deps
        .successes
        .record_success(&Success {
            account: OWN,
            role: "gha-deploy",
            subject: "repo:acme/web:ref:refs/heads/main",
            provider: Some(&provider_arn(OWN)),
            audience: Some("sts.amazonaws.com"),
            at,
            expires_at: at + 90 * DAY,
        })
        .await
        .unwrap();
    h.run().await;
    assert_eq!(unused(&h.published()), ["gha-infra"]);
}

#[tokio::test]
async fn no_account_read_fails_the_run_and_changes_nothing() {
    let h = harness(&[OWN, OTHER], 0);
    h.run().await;
    let saved = h.deps.findings.findings(OWN).unwrap();
    h.deps.accounts.deny(OWN, true);
    h.deps.accounts.deny(OTHER, true);
    let error = h.run_with(json!({})).await.unwrap_err();
    assert!(matches!(error, HandlerError::NoAccountRead(_)), "{error}");
    assert!(error.to_string().contains("AccessDenied"), "{error}");
    assert_eq!(h.published().len(), 1, "only the first run's digest");
    assert_eq!(h.deps.findings.findings(OWN).unwrap(), saved);
}
