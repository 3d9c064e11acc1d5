//! IAM changes through the handler, with in-memory ports: the cached role is dropped so
//! the next failure is diagnosed against the new policy, the following incident names the
//! change, a widening change alerts once, a neutral one is only recorded.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use diagnosis::alert::{Alert, AlertKind, Severity};
use diagnosis::change::{ChangeRecord, TrustChange};
use diagnosis::owner::Owners;
use diagnosis::policy::PolicyDocument;
use diagnosis::ports::StateStore;
use diagnosis::AccountSnapshot;
use lambda_runtime::{Context, LambdaEvent};
use oidc_monitor::{handle, Outcome};
use serde_json::{json, Value};

mod common;
use common::*;

const ROLE: &str = "gha-deploy-main-only";
const FAILURE: &str = "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json";
const RELEASE: &str = "repo:acme/web-app:ref:refs/heads/release";

async fn invoke(deps: &TestDeps, payload: Value) -> Outcome {
    handle(LambdaEvent::new(payload, Context::default()), deps)
        .await
        .expect("handled")
}

fn alerts(deps: &TestDeps) -> Vec<Alert> {
    deps.alerts.alerts.lock().unwrap().clone()
}

fn trust_policy(sub: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                      "StringLike": {"token.actions.githubusercontent.com:sub": sub}}}]})
    .to_string()
}

/// The change event of `file`, made to `ROLE` with `sub` as its only subject, at `t`.
fn change_event(file: &str, sub: &str, t: i64, id: &str) -> Value {
    let mut event = at(sample(&format!("changes/{file}")), t);
    event["detail"]["requestParameters"]["roleName"] = json!(ROLE);
    event["detail"]["requestParameters"]["policyDocument"] = json!(trust_policy(sub));
    event["detail"]["eventID"] = json!(id);
    event
}

/// The sample account as IAM holds it after `ROLE`'s policy became `policy`.
fn account_after(policy: &str) -> AccountSnapshot {
    let mut account = accounts()
        .into_iter()
        .find(|a| a.account_id == "111122223333")
        .unwrap();
    let role = account.roles.iter_mut().find(|r| r.name == ROLE).unwrap();
    *role = diagnosis::snapshot::Role::new(
        role.name.clone(),
        role.arn.clone(),
        role.max_session_duration,
        PolicyDocument::parse_str(policy),
    );
    account
}

fn deps(clock: Arc<AtomicI64>, iam_after: &str) -> TestDeps {
    let deps = deps_owned_by(clock, "acme");
    deps.accounts
        .changed
        .lock()
        .unwrap()
        .push(account_after(&trust_policy(iam_after)));
    deps
}

fn expected_values(alert: &Alert) -> Vec<String> {
    let d = alert.diagnosis.as_ref().unwrap();
    d.failed_conditions
        .iter()
        .flat_map(|c| c.expected.clone())
        .collect()
}

#[tokio::test]
async fn a_change_drops_the_cache_and_the_next_incident_is_diagnosed_against_it_and_names_it() {
    let clock = Arc::new(AtomicI64::new(T0));
    let deps = deps(clock.clone(), RELEASE);
    let change = change_event(
        "iam-update-assume-role-policy-release-branch-only.json",
        RELEASE,
        T0,
        "change-1",
    );
    let outcome = invoke(&deps, change).await;
    assert_eq!(outcome.malformed, 0, "a change is no malformed event");
    let [changed] = outcome.changes.as_slice() else {
        panic!("{outcome:?}")
    };
    assert!(!changed.widening && changed.alerts.is_empty(), "{changed:?}");
    assert!(alerts(&deps).is_empty(), "a neutral change only gets recorded");
    assert!(deps
        .accounts
        .forgotten
        .lock()
        .unwrap()
        .contains(&("111122223333".to_owned(), format!("role:{ROLE}"))));

    clock.store(T0 + 200, Ordering::SeqCst);
    let outcome = invoke(&deps, at(sample(FAILURE), T0 + 180)).await;
    assert_eq!(outcome.events[0].alerts, ["incident"]);
    let alert = alerts(&deps).pop().unwrap();
    assert_eq!(
        expected_values(&alert),
        [RELEASE],
        "diagnosed against the new policy"
    );
    let [note] = alert.changes.as_slice() else {
        panic!("{:?}", alert.changes)
    };
    assert!(
        note.sentence.starts_with(
            "began 3 min after UpdateAssumeRolePolicy of role \"gha-deploy-main-only\" by \"arn:aws:sts::111122223333:assumed-role/platform-admin/alice\"; the change"
        ),
        "{}",
        note.sentence
    );
    assert!(
        note.sentence
            .contains("\"repo:acme/web-app:ref:refs/heads/main\""),
        "the value it removed: {}",
        note.sentence
    );
    let description = alert.to_q_notification()["content"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(description.contains("Change: began 3 min after"), "{description}");

    // Past the window an incident no longer names it.
    clock.store(T0 + 4000, Ordering::SeqCst);
    let later = with_subject(&sample(FAILURE), "repo:acme/web-app:ref:refs/heads/other", 1);
    invoke(&deps, at(later, T0 + 3900)).await;
    assert!(alerts(&deps).pop().unwrap().changes.is_empty());
}

#[tokio::test]
async fn an_instance_that_missed_the_change_reads_iam_again_when_an_incident_opens() {
    let clock = Arc::new(AtomicI64::new(T0));
    let deps = deps(clock.clone(), RELEASE);
    // Warm: the old policy is cached.
    invoke(&deps, at(retry_of(&sample(FAILURE), 7), T0 - 600)).await;
    assert_eq!(
        expected_values(&alerts(&deps)[0]),
        ["repo:acme/web-app:ref:refs/heads/main"]
    );
    // Another instance recorded the change.
    let record = change_event(
        "iam-update-assume-role-policy-release-branch-only.json",
        RELEASE,
        T0,
        "change-elsewhere",
    );
    let change = TrustChange::from_record(&record["detail"], None)
        .unwrap()
        .unwrap();
    let policy_before = Some(trust_policy("repo:acme/web-app:ref:refs/heads/main"));
    let judged = ChangeRecord::judge(change, policy_before, &Owners::FromTrustPolicies);
    deps.state.record_change(&judged, T0 + 86_400).await.unwrap();

    clock.store(T0 + 130, Ordering::SeqCst);
    let lookups = *deps.accounts.lookups.lock().unwrap();
    let failure = with_subject(&sample(FAILURE), "repo:acme/web-app:ref:refs/heads/feature-9", 8);
    let outcome = invoke(&deps, at(failure, T0 + 120)).await;
    assert_eq!(outcome.events[0].alerts, ["incident"]);
    assert_eq!(
        *deps.accounts.lookups.lock().unwrap(),
        lookups + 2,
        "IAM read once more"
    );
    let alert = alerts(&deps).pop().unwrap();
    assert_eq!(expected_values(&alert), [RELEASE]);
    assert!(alert.changes[0].sentence.starts_with("began 2 min after"));
    assert_eq!(
        deps.state.incidents().len(),
        2,
        "the same incident key: the opening is kept, its diagnosis renewed"
    );
    assert!(deps.state.incidents().iter().all(|i| i.alerted));

    // A retry of the same job is an attempt: no read of the changes, no IAM read.
    let lookups = *deps.accounts.lookups.lock().unwrap();
    let retry = with_subject(&sample(FAILURE), "repo:acme/web-app:ref:refs/heads/feature-9", 9);
    let outcome = invoke(&deps, at(retry, T0 + 125)).await;
    assert!(outcome.events[0].alerts.is_empty());
    assert_eq!(*deps.accounts.lookups.lock().unwrap(), lookups + 1);
}

#[tokio::test]
async fn a_widening_change_alerts_once_with_its_diff_and_a_redelivery_is_silent() {
    let clock = Arc::new(AtomicI64::new(T0));
    let wildcard = "repo:*/web-app:*";
    let deps = deps(clock.clone(), wildcard);
    let event = change_event(
        "iam-update-assume-role-policy-owner-wildcard.json",
        wildcard,
        T0,
        "widen-1",
    );
    let outcome = invoke(&deps, event.clone()).await;
    assert_eq!(outcome.changes[0].alerts, ["trust-change"], "{outcome:?}");
    let [alert] = alerts(&deps).try_into().unwrap();
    assert_eq!(
        (alert.kind, alert.severity),
        (AlertKind::TrustChange, Severity::High)
    );
    let change = &alert.changes[0];
    assert!(
        change.widening.iter().any(|w| w.starts_with("OwnerWildcard")),
        "{:?}",
        change.widening
    );
    // The policy before came from the cache it forgot.
    let removed: Vec<&str> = change
        .diff
        .iter()
        .flat_map(|d| d.removed.iter().map(String::as_str))
        .collect();
    assert!(
        removed.contains(&"repo:acme/web-app:ref:refs/heads/main"),
        "{:?}",
        change.diff
    );
    assert!(alert
        .title()
        .starts_with("Trust widened on role \"gha-deploy-main-only\""));

    let again = invoke(&deps, event).await;
    assert!(again.changes[0].duplicate && again.changes[0].alerts.is_empty());
    assert_eq!(alerts(&deps).len(), 1, "a redelivery is silent");

    // Another widening edit of the same role within the interval is held back.
    let mut other = change_event(
        "iam-update-assume-role-policy-owner-wildcard.json",
        "-",
        T0 + 60,
        "widen-2",
    );
    let stranger =
        trust_policy(wildcard).replace("\"repo:*/web-app:*\"", "[\"repo:*/web-app:*\",\"repo:evil/x:*\"]");
    other["detail"]["requestParameters"]["policyDocument"] = json!(stranger);
    let outcome = invoke(&deps, other).await;
    assert_eq!(outcome.changes[0].held_back, ["trust-change"]);
    assert_eq!(alerts(&deps).len(), 1);
}

#[tokio::test]
async fn a_failed_trust_change_alert_is_sent_by_the_redelivery() {
    let deps = deps(Arc::new(AtomicI64::new(T0)), "repo:*/web-app:*");
    let event = change_event(
        "iam-update-assume-role-policy-owner-wildcard.json",
        "repo:*/web-app:*",
        T0,
        "widen-retry",
    );
    *deps.alerts.fail_next.lock().unwrap() = 1;
    let error = handle(LambdaEvent::new(event.clone(), Context::default()), &deps).await;
    assert!(error.is_err(), "the failed publish is retried");
    invoke(&deps, event.clone()).await;
    invoke(&deps, event).await;
    assert_eq!(alerts(&deps).len(), 1);
}

#[tokio::test]
async fn other_changes_are_recorded_or_ignored_without_alerts() {
    let deps = deps_owned_by(Arc::new(AtomicI64::new(T0)), "acme");
    for file in [
        "iam-create-role-github.json",
        "iam-delete-role.json",
        "iam-create-oidc-provider.json",
        "iam-add-client-id-to-oidc-provider.json",
        "iam-update-oidc-provider-thumbprint.json",
        "iam-remove-client-id-from-oidc-provider.json",
        "iam-delete-oidc-provider.json",
    ] {
        let outcome = invoke(&deps, sample(&format!("changes/{file}"))).await;
        let change = &outcome.changes[0];
        assert!(!change.ignored && !change.widening, "{file}: {change:?}");
    }
    assert!(alerts(&deps).is_empty());
    let recorded = deps.state.recent_changes("111122223333", 0).await.unwrap();
    assert_eq!(recorded.len(), 7);
    let deleted = recorded
        .iter()
        .find(|r| r.change.action == diagnosis::change::ChangeAction::DeleteRole)
        .unwrap();
    assert!(
        deleted
            .policy_before
            .as_deref()
            .is_some_and(|p| p.contains("acme/api")),
        "the policy before is the CreateRole's after"
    );
    assert!(deps.accounts.forgotten.lock().unwrap().contains(&(
        "111122223333".to_owned(),
        "provider:token.actions.githubusercontent.com".to_owned()
    )));

    let ignored = invoke(
        &deps,
        sample("changes/iam-create-role-lambda-service-ignored.json"),
    )
    .await;
    assert!(ignored.changes[0].ignored);
    assert_eq!(ignored.malformed, 0);
    assert_eq!(
        deps.state.recent_changes("111122223333", 0).await.unwrap().len(),
        7
    );
}

#[tokio::test]
async fn a_recovery_names_the_change_that_fixed_it() {
    let clock = Arc::new(AtomicI64::new(T0));
    let deps = deps(clock.clone(), "repo:acme/web-app:*");
    let failure = sample(FAILURE);
    for n in 0..25 {
        clock.store(T0 + n as i64 * 4, Ordering::SeqCst);
        let sub = format!("repo:acme/web-app:ref:refs/heads/feature-{n}");
        invoke(&deps, at(with_subject(&failure, &sub, n), T0 + n as i64 * 4)).await;
    }
    assert!(alerts(&deps).iter().any(|a| a.kind == AlertKind::Spike));
    clock.store(T0 + 300, Ordering::SeqCst);
    let fix = change_event(
        "iam-update-assume-role-policy-release-branch-only.json",
        "repo:acme/web-app:*",
        T0 + 300,
        "the-fix",
    );
    invoke(&deps, fix).await;
    let success = sample("none/github-push-main-success.json");
    for n in 0..3 {
        clock.store(T0 + 600 + n * 300, Ordering::SeqCst);
        invoke(
            &deps,
            at(retry_of(&success, 100 + n as usize), T0 + 600 + n * 300),
        )
        .await;
    }
    let recovery = alerts(&deps)
        .into_iter()
        .find(|a| a.kind == AlertKind::Recovery)
        .expect("a recovery");
    let [note] = recovery.changes.as_slice() else {
        panic!("{:?}", recovery.changes)
    };
    assert_eq!(note.event_id, "the-fix");
    assert!(note.sentence.starts_with("recovered "), "{}", note.sentence);
}
