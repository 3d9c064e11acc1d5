//! The handler on every `events/` file and on the situations docs/design.md describes
//! (incidents, alert claims, rate limits, spikes), with in-memory ports: no AWS, a clock
//! the test moves.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use diagnosis::alert::{AlertKind, Severity};
use diagnosis::metrics::{Dimension, MetricName};
use diagnosis::owner::Trust;
use lambda_runtime::{Context, LambdaEvent};
use oidc_monitor::{handle, Outcome};
use serde_json::{json, Value};

mod common;
use common::*;

fn deps(clock: Arc<AtomicI64>) -> TestDeps {
    deps_owned_by(clock, "acme,acme-labs,gitlab:acme-group")
}

async fn invoke(deps: &TestDeps, payload: Value) -> Result<Outcome, oidc_monitor::HandlerError> {
    handle(LambdaEvent::new(payload, Context::default()), deps).await
}

fn alerts(deps: &TestDeps) -> Vec<(AlertKind, Severity)> {
    deps.alerts
        .alerts
        .lock()
        .unwrap()
        .iter()
        .map(|a| (a.kind, a.severity))
        .collect()
}

#[tokio::test]
async fn every_sample_event_is_diagnosed_counted_and_alerted_once() {
    let mut checked = 0;
    for path in files_below(&events_dir()) {
        let relative = path
            .strip_prefix(events_dir())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if ["accounts/", "changes/", "replay/", "sns/"]
            .iter()
            .any(|dir| relative.starts_with(dir))
        {
            continue;
        }
        // Zero configuration: the owners the samples' trust policies name are ours.
        let deps = deps_owned_by(Arc::new(AtomicI64::new(T0)), "");
        let outcome = invoke(&deps, sample(&relative)).await.unwrap();
        assert_eq!(outcome.events.len(), 1, "{relative}");
        let event = &outcome.events[0];
        let cause = event.cause.unwrap().as_str();
        let expected = relative
            .split('/')
            .next()
            .unwrap()
            .replace('-', "")
            .to_lowercase();
        assert_eq!(cause.to_lowercase(), expected, "{relative}");
        if expected != "unknown" {
            assert_eq!(event.evidence, "account-snapshot", "{relative}: IAM was read");
        }

        let records = deps.metrics.records.lock().unwrap();
        assert_eq!(records.len(), 1, "{relative}");
        let metric = if cause == "None" {
            MetricName::AssumeSuccesses
        } else {
            MetricName::AssumeFailures
        };
        assert!(
            records[0].counts.contains(&(metric, 1.0)),
            "{relative}: {:?}",
            records[0].counts
        );
        assert_eq!(records[0].dimensions[&Dimension::Cause], cause);
        assert!(records[0].to_emf("OidcWatch").is_ok());

        let sent = alerts(&deps);
        if cause == "None" {
            assert!(sent.is_empty(), "{relative}: {sent:?}");
        } else if event.evidence == "account-snapshot" {
            assert_eq!(
                event.trust,
                Some(Trust::Ours),
                "{relative}: its trust policy names the owner"
            );
            assert_eq!(sent, [(AlertKind::Incident, Severity::High)], "{relative}");
        } else {
            // Nothing says who is ours: never an incident whose fix opens the role.
            assert_eq!(event.trust, Some(Trust::Unknown), "{relative}");
            assert_eq!(sent, [(AlertKind::Probe, Severity::Low)], "{relative}");
        }
        checked += 1;
    }
    assert!(checked >= 30);
}

#[tokio::test]
async fn twelve_retries_of_one_failure_make_one_incident_and_one_alert() {
    let deps = deps(Arc::new(AtomicI64::new(T0)));
    let failure = sample("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
    let mut incident = None;
    for n in 0..12 {
        let outcome = invoke(&deps, retry_of(&failure, n)).await.unwrap();
        incident.get_or_insert(outcome.events[0].incident_id.clone());
        assert_eq!(outcome.events[0].incident_id, *incident.as_ref().unwrap());
        assert_eq!(outcome.events[0].attempts, n as u64 + 1);
    }
    assert_eq!(alerts(&deps), [(AlertKind::Incident, Severity::High)]);
    assert_eq!(
        deps.metrics.records.lock().unwrap().len(),
        12,
        "every attempt counts as a failure"
    );
}

#[tokio::test]
async fn a_redelivered_event_never_alerts_twice_but_a_failed_alert_is_retried() {
    let deps = deps(Arc::new(AtomicI64::new(T0)));
    let failure = sample("subject-mismatch/tag/github-release-tag-vs-main-only-policy.json");
    *deps.alerts.fail_next.lock().unwrap() = 1;
    assert!(
        invoke(&deps, failure.clone()).await.is_err(),
        "SNS down: Lambda must retry"
    );
    assert!(alerts(&deps).is_empty());
    let retried = invoke(&deps, failure.clone()).await.unwrap();
    assert!(retried.events[0].duplicate);
    assert_eq!(alerts(&deps).len(), 1, "the retry delivers the alert");
    invoke(&deps, failure).await.unwrap();
    assert_eq!(alerts(&deps).len(), 1, "a third delivery does not");
    assert_eq!(
        deps.metrics.records.lock().unwrap().len(),
        1,
        "redeliveries are not counted again"
    );
}

#[tokio::test]
async fn outside_owners_are_probes_and_their_successes_critical() {
    let deps = deps(Arc::new(AtomicI64::new(T0)));
    let failure = sample("subject-mismatch/repository/github-other-repo-same-org.json");
    for n in 0..3 {
        let probe = with_subject(
            &failure,
            &format!("repo:stranger/tool-{n}:ref:refs/heads/main"),
            n,
        );
        invoke(&deps, probe).await.unwrap();
    }
    assert_eq!(
        alerts(&deps),
        [(AlertKind::Probe, Severity::Low)],
        "rate-limited per owner"
    );
    let suppressed = with_subject(&failure, "repo:stranger/tool-2:ref:refs/heads/main", 2);
    invoke(&deps, suppressed).await.unwrap();
    assert_eq!(
        alerts(&deps).len(),
        1,
        "a redelivered suppressed probe stays suppressed"
    );
    let records: Vec<_> = deps
        .metrics
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.counts.contains(&(MetricName::AssumeFailures, 1.0)))
        .cloned()
        .collect();
    assert_eq!(records.len(), 3, "the redelivery is not counted again");
    assert!(records
        .iter()
        .all(|r| r.counts.contains(&(MetricName::ProbeAttempts, 1.0))));
    assert!(records.iter().all(|r| r.properties["subject"]
        .as_str()
        .unwrap()
        .starts_with("repo:stranger/")));

    let success = sample("none/github-push-main-success.json");
    invoke(
        &deps,
        with_subject(&success, "repo:stranger/tool:ref:refs/heads/main", 99),
    )
    .await
    .unwrap();
    assert_eq!(
        alerts(&deps).last(),
        Some(&(AlertKind::ForeignSuccess, Severity::Critical))
    );
}

#[tokio::test]
async fn iam_unavailable_still_diagnoses_from_the_event() {
    let mut deps = deps(Arc::new(AtomicI64::new(T0)));
    deps.accounts.fail = true;
    let outcome = invoke(
        &deps,
        sample("subject-mismatch/environment/github-environment-job-vs-branch-policy.json"),
    )
    .await
    .unwrap();
    let event = &outcome.events[0];
    assert_eq!(
        (event.evidence, event.confidence.as_deref()),
        ("event-only", Some("unknown"))
    );
    assert_eq!(event.subject_mismatch.as_deref(), Some("Environment"));
    assert!(event.enrichment_error.is_some());
    let records = deps.metrics.records.lock().unwrap();
    assert!(records[0].counts.contains(&(MetricName::EnrichmentErrors, 1.0)));
    assert_eq!(
        records[0].dimensions[&Dimension::RoleName],
        "-",
        "unverified role names are not dimensions"
    );
}

#[tokio::test]
async fn malformed_and_foreign_events_are_acknowledged_and_counted() {
    let deps = deps(Arc::new(AtomicI64::new(T0)));
    for payload in [
        json!({"id": "x", "detail-type": "AWS API Call via CloudTrail", "detail": {"eventName": "GetObject"}}),
        json!({"id": "y", "detail-type": "Scheduled Event"}),
        json!("just a string"),
        json!({}),
    ] {
        let outcome = invoke(&deps, payload).await.unwrap();
        assert_eq!((outcome.events.len(), outcome.malformed), (0, 1));
    }
    let records = deps.metrics.records.lock().unwrap();
    assert!(
        records
            .iter()
            .filter(|r| r.counts == [(MetricName::MalformedEvents, 1.0)])
            .count()
            >= 3
    );
    assert!(alerts(&deps).is_empty());
}

#[tokio::test]
async fn a_burst_gives_one_spike_alert_and_later_one_recovery() {
    let clock = Arc::new(AtomicI64::new(T0));
    let deps = deps(clock.clone());
    let failure = sample("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
    for n in 0..25 {
        clock.store(T0 + n as i64 * 4, Ordering::SeqCst);
        let sub = format!("repo:acme/web-app:ref:refs/heads/feature-{n}");
        invoke(&deps, at(with_subject(&failure, &sub, n), T0 + n as i64 * 4))
            .await
            .unwrap();
    }
    let spikes = |deps: &TestDeps| {
        deps.alerts
            .alerts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.kind == AlertKind::Spike)
            .cloned()
            .collect::<Vec<_>>()
    };
    let spike = spikes(&deps);
    assert_eq!(spike.len(), 1, "one burst, one spike alert");
    let summary = spike[0].spike.as_ref().unwrap();
    assert_eq!(
        (summary.scope.as_str(), summary.failures),
        ("all", 20),
        "the default minimum"
    );
    assert_eq!(summary.top_roles[0].0, "gha-deploy-main-only");
    assert!(
        diagnosis::alert::Alert::to_plain_text(&spike[0]).contains("on role \"gha-deploy-main-only\""),
        "the title names the role that carries the burst"
    );

    let success = sample("none/github-push-main-success.json");
    for n in 0..3 {
        clock.store(T0 + 600 + n * 300, Ordering::SeqCst);
        invoke(
            &deps,
            at(retry_of(&success, 100 + n as usize), T0 + 600 + n * 300),
        )
        .await
        .unwrap();
    }
    let recoveries: Vec<String> = deps
        .alerts
        .alerts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.kind == AlertKind::Recovery)
        .map(|a| a.spike.as_ref().unwrap().scope.clone())
        .collect();
    assert_eq!(recoveries, ["all"], "one recovery");
    let thread = |kind| {
        let alerts = deps.alerts.alerts.lock().unwrap();
        let alert = alerts
            .iter()
            .find(|a| a.kind == kind && a.spike.as_ref().unwrap().scope == "all");
        alert.unwrap().thread_id.clone()
    };
    assert_eq!(
        thread(AlertKind::Spike),
        thread(AlertKind::Recovery),
        "a recovery joins its spike's thread"
    );
    assert_eq!(spikes(&deps).len(), 1, "no new spike alert");
}

#[tokio::test]
async fn incident_windows_run_on_the_event_time() {
    let deps = deps(Arc::new(AtomicI64::new(T0)));
    let failure = sample("subject-mismatch/pull-request/github-pull-request-vs-branch-policy.json");
    let first = invoke(&deps, at(retry_of(&failure, 1), T0 - 3000)).await.unwrap();
    let same_window = invoke(&deps, at(retry_of(&failure, 2), T0 - 3000 + 600))
        .await
        .unwrap();
    let next_window = invoke(&deps, at(retry_of(&failure, 3), T0 - 3000 + 1000))
        .await
        .unwrap();
    assert_eq!(first.events[0].incident_id, same_window.events[0].incident_id);
    assert_ne!(
        first.events[0].incident_id, next_window.events[0].incident_id,
        "15 minutes later: a new incident"
    );
    assert_eq!(alerts(&deps).len(), 2);

    // An event stamped an hour ahead of the wall clock is placed at the wall clock.
    let future = invoke(&deps, at(retry_of(&failure, 4), T0 + 3600)).await.unwrap();
    let id = future.events[0].incident_id.clone().unwrap();
    assert!(id.ends_with(&format!("-{T0}")), "{id}");
}

#[tokio::test]
async fn a_success_records_its_subject_once_an_hour_and_a_failure_nothing() {
    use diagnosis::ports::StateStore;
    let clock = Arc::new(AtomicI64::new(T0));
    let deps = deps(clock.clone());
    let success = sample("none/github-push-main-success.json");
    let subject = "repo:acme/web-app:ref:refs/heads/main";
    for n in 0..3 {
        invoke(&deps, at(retry_of(&success, n), T0 + n as i64))
            .await
            .unwrap();
    }
    // The role's name in any case reads the one record, which IAM's spelling keys.
    let recorded = deps
        .state
        .successful_subjects("111122223333", "GHA-Deploy-Web-App")
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].subject, subject);
    assert_eq!(
        recorded[0].provider.as_deref(),
        Some("arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com")
    );
    assert_eq!(recorded[0].audience.as_deref(), Some("sts.amazonaws.com"));
    assert_eq!(recorded[0].first_seen, T0);
    // The instance wrote it once: the later calls within the hour were not written.
    assert_eq!(recorded[0].last_seen, T0);

    // An hour later it is written again: last_seen moves on, first_seen stays.
    clock.store(T0 + 3700, Ordering::SeqCst);
    invoke(&deps, at(retry_of(&success, 10), T0 + 3700))
        .await
        .unwrap();
    let recorded = deps
        .state
        .successful_subjects("111122223333", "gha-deploy-web-app")
        .await
        .unwrap();
    assert_eq!((recorded[0].first_seen, recorded[0].last_seen), (T0, T0 + 3700));

    // A failure, and a stranger's success, record nothing.
    let fresh = deps_owned_by(Arc::new(AtomicI64::new(T0)), "acme");
    let failure = sample("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
    invoke(&fresh, failure).await.unwrap();
    invoke(
        &fresh,
        with_subject(&success, "repo:stranger/tool:ref:refs/heads/main", 99),
    )
    .await
    .unwrap();
    for role in ["gha-deploy-web-app", "gha-deploy-main-only"] {
        let none = fresh
            .state
            .successful_subjects("111122223333", role)
            .await
            .unwrap();
        assert!(none.is_empty(), "{role}: {none:?}");
    }
}

#[tokio::test]
async fn no_record_of_successes_when_it_is_off() {
    use diagnosis::ports::StateStore;
    let mut deps = deps(Arc::new(AtomicI64::new(T0)));
    deps.config.observed_subject_days = 0;
    invoke(&deps, sample("none/github-push-main-success.json"))
        .await
        .unwrap();
    let none = deps
        .state
        .successful_subjects("111122223333", "gha-deploy-web-app")
        .await
        .unwrap();
    assert!(none.is_empty());
}
