//! `diagnosis::plan`, decision by decision, on the sample events of `events/` and without
//! any port: what the monitor counts, which incident, which alert, whether it is held
//! back, the spike step, and every lifetime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use diagnosis::alert::{incident_key, AlertKind, Severity, SpikeSummary};
use diagnosis::claims::Claims;
use diagnosis::metrics::{Dimension, MetricName};
use diagnosis::owner::{Owner, Owners, Trust};
use diagnosis::plan::incident::{self, AlertBusy, Opener};
use diagnosis::plan::spike::{self, SPIKE_SCOPE};
use diagnosis::plan::{
    alert_kind, alert_window, alert_window_expires, bounded, expected_provider, lease_until, metric,
    severity_of, spike_state_expires, success_memo_key, EventPlan, Policy, Times, MAX_LOGGED,
};
use diagnosis::ports::{AlertClaim, Incident, Sighting};
use diagnosis::spike::{MinuteCount, PendingSpikeAlert, SpikeConfig, SpikeState};
use diagnosis::{diagnose_with, read_input, AccountSnapshot, Cause, Diagnosis, InputItem, Ownership};
use serde_json::{json, Value};

const FAILURE: &str = "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json";
const SUCCESS: &str = "none/github-push-main-success.json";
/// 2026-10-06T14:23:30Z, the failure sample's event time.
const FAILURE_TIME: i64 = 1_791_296_610;

const POLICY: Policy = Policy {
    incident_window_seconds: 900,
    spike: SpikeConfig {
        window_seconds: 300,
        min_failures: 10,
        factor: 3.0,
        cooldown_seconds: 1800,
        baseline_windows: 4,
    },
    probe_alert_interval_seconds: 3600,
    alerts_per_hour: 20,
    observed_subject_days: 90,
    change_window_seconds: 3600,
};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn sample(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(events_dir().join(path)).unwrap()).unwrap()
}

fn account() -> AccountSnapshot {
    let path = events_dir().join("accounts/111122223333-github-acme.json");
    AccountSnapshot::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn claims_of(event: &Value) -> Claims {
    let bytes = serde_json::to_vec(event).unwrap();
    match read_input(&bytes).into_iter().next() {
        Some(Ok(InputItem::Event(event))) => Claims::from_event(&event),
        _ => panic!("not an AssumeRoleWithWebIdentity event"),
    }
}

/// The claims, the diagnosis (owners: `acme`) and the plan of one event.
fn planned(event: &Value, snapshot: Option<&AccountSnapshot>) -> (Claims, Diagnosis, EventPlan) {
    let claims = claims_of(event);
    let owners = Owners::parse_list("acme").unwrap();
    let diagnosis = diagnose_with(
        claims.clone(),
        snapshot,
        Ownership {
            owners: &owners,
            trusted: None,
        },
    );
    let plan = EventPlan::of(&claims, &diagnosis, snapshot);
    (claims, diagnosis, plan)
}

fn failure() -> (Claims, Diagnosis, EventPlan) {
    planned(&sample(FAILURE), Some(&account()))
}

fn incident(id: &str, opened_by: &str, alerted: bool) -> Incident {
    Incident {
        id: id.to_owned(),
        opened_by: opened_by.to_owned(),
        opened_at: 100,
        until: 1000,
        attempts: 3,
        alerted,
    }
}

#[test]
fn windows_run_on_the_event_time_unless_it_is_missing_or_ahead_of_the_clock() {
    let claims = claims_of(&sample(FAILURE));
    let later = FAILURE_TIME + 600;
    assert_eq!(
        Times::of(&claims, later),
        Times {
            now: FAILURE_TIME,
            wall: later
        }
    );
    // Up to 300 s ahead is clock skew; beyond it, the wall clock.
    assert_eq!(Times::of(&claims, FAILURE_TIME - 300).now, FAILURE_TIME);
    assert_eq!(Times::of(&claims, FAILURE_TIME - 301).now, FAILURE_TIME - 301);
    let mut event = sample(FAILURE);
    event["detail"].as_object_mut().unwrap().remove("eventTime");
    assert_eq!(Times::of(&claims_of(&event), later).now, later);
}

#[test]
fn every_lifetime_is_named_and_follows_the_configuration() {
    let late = Times {
        now: 1000,
        wall: 5000,
    };
    let ahead = Times {
        now: 5000,
        wall: 1000,
    };
    assert_eq!(POLICY.sighting_expires(late), 5000 + 2 * 900 + 86_400);
    assert_eq!(POLICY.sighting_expires(ahead), 1000 + 2 * 900 + 86_400);
    assert_eq!(POLICY.incident_expires(late), 5000 + 900 + 86_400);
    assert_eq!(POLICY.incident_expires(ahead), 5000 + 900 + 86_400);
    assert_eq!(POLICY.incident_until(1000), 1900);
    assert_eq!(POLICY.counter_expires(late), 5000 + 300 * 6 + 3600);
    assert_eq!(POLICY.success_expires(late), 5000 + 90 * 86_400);
    assert_eq!(lease_until(5000), 5030);
    assert_eq!(spike_state_expires(5000), 5000 + 7 * 86_400);
    assert_eq!(alert_window(7300), 7200);
    assert_eq!(alert_window(-1), -3600);
    assert_eq!(alert_window_expires(7200), 7200 + 3600 + 86_400);
    assert_eq!(incident::rate_window(7300), (7200, 7200 + 3600 + 86_400));
    assert_eq!(incident::previous_window(7200), 3600);
}

#[test]
fn the_alert_kind_follows_failure_and_trust() {
    assert_eq!(alert_kind(true, Trust::Ours), Some(AlertKind::Incident));
    assert_eq!(alert_kind(true, Trust::Foreign), Some(AlertKind::Probe));
    assert_eq!(alert_kind(true, Trust::Unknown), Some(AlertKind::Probe));
    assert_eq!(alert_kind(false, Trust::Ours), None);
    assert_eq!(alert_kind(false, Trust::Foreign), Some(AlertKind::ForeignSuccess));
    assert_eq!(alert_kind(false, Trust::Unknown), Some(AlertKind::ForeignSuccess));
    assert_eq!(severity_of(AlertKind::ForeignSuccess), Severity::Critical);
    assert_eq!(severity_of(AlertKind::Incident), Severity::High);
    assert_eq!(severity_of(AlertKind::Spike), Severity::High);
    assert_eq!(severity_of(AlertKind::Probe), Severity::Low);
    assert_eq!(severity_of(AlertKind::Recovery), Severity::Info);
}

#[test]
fn an_event_is_planned_with_its_key_id_and_bounded_dimensions() {
    let (_, diagnosis, plan) = failure();
    assert_eq!(plan.key, incident_key(&diagnosis));
    assert_eq!(plan.event_id, "804a752e-aa32-4947-96f7-a4de5b320c57");
    assert_eq!(plan.account, "111122223333");
    assert_eq!(plan.canonical_role.as_deref(), Some("gha-deploy-main-only"));
    assert_eq!(plan.role, "gha-deploy-main-only");
    assert!(plan.failed);
    assert_eq!(plan.kind, Some(AlertKind::Incident));

    // Without IAM the role is not a dimension (a stranger could mint any number of them).
    let (_, _, plan) = planned(&sample(FAILURE), None);
    assert_eq!((plan.canonical_role, plan.role.as_str()), (None, "-"));

    // IAM's spelling of the role, whatever case the event used.
    let mut event = sample(FAILURE);
    event["detail"]["requestParameters"]["roleArn"] =
        json!("arn:aws:iam::111122223333:role/GHA-Deploy-Main-Only");
    let (_, _, plan) = planned(&event, Some(&account()));
    assert_eq!(plan.role, "gha-deploy-main-only");

    let (claims, mut diagnosis, _) = planned(&sample(FAILURE), None);
    diagnosis.event_id = None;
    diagnosis.account_id = None;
    let plan = EventPlan::of(&claims, &diagnosis, None);
    assert_eq!(plan.event_id, format!("no-id-{}", plan.key));
    assert_eq!(plan.account, "-");
}

#[test]
fn only_our_successes_on_a_known_role_are_recorded() {
    let t = Times {
        now: 1000,
        wall: 2000,
    };
    let (claims, diagnosis, plan) = planned(&sample(SUCCESS), Some(&account()));
    assert_eq!(diagnosis.cause, Cause::None);
    assert_eq!(plan.kind, None);
    let provider = expected_provider(&claims);
    assert_eq!(
        provider.as_deref(),
        Some("arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com")
    );
    let success = plan.success(&claims, provider.as_deref(), t, &POLICY).unwrap();
    assert_eq!(success.account, "111122223333");
    assert_eq!(success.role, "gha-deploy-web-app");
    assert_eq!(success.subject, "repo:acme/web-app:ref:refs/heads/main");
    assert_eq!((success.at, success.expires_at), (1000, 2000 + 90 * 86_400));
    assert_eq!(
        success_memo_key(&success),
        (
            "111122223333".to_owned(),
            "gha-deploy-web-app".to_owned(),
            "repo:acme/web-app:ref:refs/heads/main".to_owned()
        )
    );

    let off = Policy {
        observed_subject_days: 0,
        ..POLICY
    };
    assert_eq!(plan.success(&claims, None, t, &off), None);
    let (claims, _, unknown_role) = planned(&sample(SUCCESS), None);
    assert_eq!(unknown_role.success(&claims, None, t, &POLICY), None);
    let (claims, _, failed) = failure();
    assert_eq!(failed.success(&claims, None, t, &POLICY), None);

    let mut long = claims_of(&sample(SUCCESS));
    long.subject = Some("x".repeat(diagnosis::ports::MAX_OBSERVED_SUBJECT + 1));
    assert_eq!(plan.success(&long, None, t, &POLICY), None);
}

#[test]
fn the_first_failure_opens_an_incident_named_by_its_key_and_time() {
    let (_, _, plan) = failure();
    let opening = incident::opening(&plan, &POLICY, FAILURE_TIME);
    assert_eq!(opening.id, format!("{}-{FAILURE_TIME}", &plan.key[..16]));
    assert_eq!(opening.opened_by, plan.event_id);
    assert_eq!(
        (opening.opened_at, opening.until),
        (FAILURE_TIME, FAILURE_TIME + 900)
    );
    assert_eq!((opening.attempts, opening.alerted), (1, false));
}

#[test]
fn the_opener_or_its_redelivery_holds_the_alert() {
    let open = incident("i", "e1", false);
    assert_eq!(
        incident::opener(&Sighting::Opened(open.clone()), "e1"),
        Opener::Yes
    );
    assert_eq!(
        incident::opener(&Sighting::Attempt(open.clone()), "e2"),
        Opener::No
    );
    assert_eq!(
        incident::opener(&Sighting::Duplicate(open.clone()), "e1"),
        Opener::IfClaimed
    );
    assert_eq!(incident::opener(&Sighting::Duplicate(open), "e2"), Opener::No);
    let alerted = incident("i", "e1", true);
    assert_eq!(incident::opener(&Sighting::Duplicate(alerted), "e1"), Opener::No);

    assert_eq!(incident::after_claim(AlertClaim::Claimed), Ok(true));
    assert_eq!(incident::after_claim(AlertClaim::Done), Ok(false));
    assert_eq!(incident::after_claim(AlertClaim::Busy), Err(AlertBusy));
}

#[test]
fn a_failure_is_counted_for_spikes_once_per_incident() {
    let (_, diagnosis, plan) = failure();
    let open = incident("inc-1", &plan.event_id, false);
    let t = Times {
        now: 6000 + 59,
        wall: 9000,
    };
    let count = incident::failure_count(&plan, &diagnosis, &open, &POLICY, t).unwrap();
    assert_eq!(count.minute, 100);
    assert_eq!(count.role, "gha-deploy-main-only");
    assert_eq!(count.cause, diagnosis.cause.as_str());
    assert_eq!(count.incident_id, "inc-1");
    assert_eq!(count.expires_at, POLICY.counter_expires(t));

    let (_, success, succeeded) = planned(&sample(SUCCESS), Some(&account()));
    assert_eq!(
        incident::failure_count(&succeeded, &success, &open, &POLICY, t),
        None
    );
}

#[test]
fn probes_take_one_token_per_owner_in_any_case() {
    let (_, mut diagnosis, _) = failure();
    assert_eq!(incident::probe_token_key(AlertKind::Incident, &diagnosis), None);
    diagnosis.owner = Some(Owner::parse("Stranger").unwrap());
    assert_eq!(
        incident::probe_token_key(AlertKind::Probe, &diagnosis).as_deref(),
        Some("probe#github:stranger")
    );
    diagnosis.owner = None;
    assert_eq!(
        incident::probe_token_key(AlertKind::Probe, &diagnosis).as_deref(),
        Some("probe#no-owner")
    );
}

#[test]
fn the_rate_limit_holds_back_past_the_limit_but_never_a_foreign_success() {
    assert!(incident::rate_limited(AlertKind::Incident));
    assert!(incident::rate_limited(AlertKind::Probe));
    assert!(!incident::rate_limited(AlertKind::ForeignSuccess));

    // The previous window is read alongside only by an instance new to this window.
    assert!(incident::read_previous_alongside(AlertKind::Incident, 7200, None));
    assert!(incident::read_previous_alongside(
        AlertKind::Incident,
        7200,
        Some(3600)
    ));
    assert!(!incident::read_previous_alongside(
        AlertKind::Incident,
        7200,
        Some(7200)
    ));
    assert!(!incident::read_previous_alongside(
        AlertKind::ForeignSuccess,
        7200,
        None
    ));

    assert!(incident::needs_previous_count(&POLICY, 1));
    assert!(!incident::needs_previous_count(&POLICY, 2));
    let none_allowed = Policy {
        alerts_per_hour: 0,
        ..POLICY
    };
    assert!(!incident::needs_previous_count(&none_allowed, 1));

    assert!(!incident::held_back(&POLICY, true, 20));
    // The alert that reaches the limit still goes out, saying so.
    assert!(!incident::held_back(&POLICY, true, 21));
    assert!(incident::held_back(&POLICY, true, 22));
    assert!(incident::held_back(&POLICY, false, 1));
    assert!(incident::held_back(&none_allowed, true, 2));
}

#[test]
fn notes_say_when_the_limit_is_reached_and_what_the_last_hour_held_back() {
    assert_eq!(incident::rate_notes(&POLICY, 5, None), Vec::<String>::new());
    assert_eq!(
        incident::rate_notes(&POLICY, 21, None),
        ["Alert rate limit reached (20 per hour): later incident and probe alerts this hour are held back and counted in the AlertsHeldBack metric."]
    );
    assert_eq!(
        incident::rate_notes(&POLICY, 1, Some(25)),
        ["4 alerts were held back by the rate limit in the previous hour (AlertsHeldBack metric; the log has each diagnosis)."]
    );
    assert_eq!(incident::rate_notes(&POLICY, 1, Some(21)), Vec::<String>::new());
    assert_eq!(incident::rate_notes(&POLICY, 2, Some(25)), Vec::<String>::new());
}

#[test]
fn the_incident_alert_threads_on_the_incident() {
    let (_, diagnosis, plan) = failure();
    let open = incident("inc-1", &plan.event_id, false);
    let alert = incident::alert(
        AlertKind::Incident,
        &plan,
        &open,
        &diagnosis,
        vec!["n".to_owned()],
    );
    assert_eq!(
        (alert.kind, alert.severity),
        (AlertKind::Incident, Severity::High)
    );
    assert_eq!(alert.thread_id, "inc-1");
    assert_eq!(alert.account_id, "111122223333");
    assert_eq!(alert.cause, Some(diagnosis.cause));
    assert_eq!(alert.attempts, 3);
    assert_eq!(alert.diagnosis.as_ref().map(|d| d.cause), Some(diagnosis.cause));
    assert_eq!(alert.spike, None);
    assert_eq!(alert.notes, ["n"]);
}

#[test]
fn an_event_counts_its_outcome_probes_and_enrichment_errors_under_three_dimensions() {
    let (_, diagnosis, plan) = failure();
    let record = metric::event_record(&plan, &diagnosis, false, Some("inc-1"), 1000);
    assert_eq!(record.timestamp_ms, 1_000_000);
    assert_eq!(record.counts, [(MetricName::AssumeFailures, 1.0)]);
    assert_eq!(
        record.dimensions,
        BTreeMap::from([
            (Dimension::Cause, diagnosis.cause.as_str().to_owned()),
            (Dimension::RoleName, "gha-deploy-main-only".to_owned()),
            (Dimension::AccountId, "111122223333".to_owned()),
        ])
    );
    assert_eq!(record.properties["incident_id"], json!("inc-1"));
    assert_eq!(record.properties["trust"], json!("ours"));
    assert_eq!(
        record.properties["subject"],
        json!("repo:acme/web-app:ref:refs/heads/feature/login-form")
    );

    let mut probe = diagnosis.clone();
    probe.trust = Trust::Foreign;
    probe.subject = Some("s".repeat(MAX_LOGGED + 10));
    let record = metric::event_record(&plan, &probe, true, None, 1000);
    assert_eq!(
        record.counts,
        [
            (MetricName::AssumeFailures, 1.0),
            (MetricName::ProbeAttempts, 1.0),
            (MetricName::EnrichmentErrors, 1.0)
        ]
    );
    assert_eq!(record.properties["incident_id"], json!("-"));
    assert_eq!(
        record.properties["subject"],
        json!(bounded(&"s".repeat(MAX_LOGGED + 10)))
    );

    let (_, success, succeeded) = planned(&sample(SUCCESS), Some(&account()));
    let record = metric::event_record(&succeeded, &success, false, None, 1000);
    assert_eq!(record.counts, [(MetricName::AssumeSuccesses, 1.0)]);
}

#[test]
fn held_back_alerts_and_malformed_records_are_counted_apart() {
    let (_, _, plan) = failure();
    let record = metric::held_back_record(&plan, AlertKind::Probe, "inc-1", 1000);
    assert_eq!(record.counts, [(MetricName::AlertsHeldBack, 1.0)]);
    assert_eq!(
        record.dimensions,
        BTreeMap::from([(Dimension::AccountId, "111122223333".to_owned())])
    );
    assert_eq!(record.properties["kind"], json!("probe"));
    assert_eq!(record.properties["incident_id"], json!("inc-1"));

    let long = "e".repeat(MAX_LOGGED * 2);
    let record = metric::malformed_record(&long, 7);
    assert_eq!(record.timestamp_ms, 7000);
    assert_eq!(record.counts, [(MetricName::MalformedEvents, 1.0)]);
    assert!(record.dimensions.is_empty());
    assert_eq!(record.properties["event_id"], json!(bounded(&long)));
}

#[test]
fn logged_text_is_cut_on_a_character_boundary() {
    assert_eq!(bounded("short"), "short");
    let long = "é".repeat(MAX_LOGGED + 1);
    let cut = bounded(&long);
    assert_eq!(cut.chars().count(), MAX_LOGGED + 1);
    assert!(cut.ends_with('…'));
}

#[test]
fn spikes_are_judged_when_counters_changed_or_a_spike_may_be_on() {
    assert!(!spike::check_needed(false, false, Some(false)));
    assert!(spike::check_needed(true, false, Some(false)));
    assert!(spike::check_needed(false, true, Some(false)));
    assert!(spike::check_needed(false, false, Some(true)));
    assert!(spike::check_needed(false, false, None));
}

fn burst(now: i64) -> Vec<MinuteCount> {
    (0..3)
        .map(|m| MinuteCount {
            minute: now.div_euclid(60) - m,
            failures: 10,
            labels: BTreeMap::from([
                ("role:deploy".to_owned(), 10),
                ("cause:SubjectMismatch".to_owned(), 10),
            ]),
        })
        .collect()
}

fn pending(lease_until: i64) -> SpikeState {
    SpikeState {
        version: 4,
        spiking: true,
        since: 100,
        last_alert: 100,
        peak: 30,
        pending: Some(PendingSpikeAlert {
            recovery: false,
            thread_since: 100,
            summary: SpikeSummary {
                scope: SPIKE_SCOPE.to_owned(),
                window_seconds: 300,
                failures: 30,
                baseline: 0.0,
                top_roles: Vec::new(),
                top_causes: Vec::new(),
            },
            lease_until,
        }),
    }
}

#[test]
fn a_burst_is_saved_as_a_pending_spike_alert_with_a_lease() {
    let t = Times {
        now: 100_000,
        wall: 100_010,
    };
    let step = spike::step(None, &burst(t.now), t, &POLICY.spike);
    assert!(step.may_be_on);
    let saved = step.save.unwrap();
    assert!(saved.spiking);
    let pending = saved.pending.as_ref().unwrap();
    assert!(!pending.recovery);
    assert_eq!(pending.thread_since, t.now);
    assert_eq!(pending.lease_until, t.wall + 30);
    assert_eq!(pending.summary.scope, SPIKE_SCOPE);
    assert_eq!(pending.summary.failures, 30);
    assert_eq!(pending.summary.top_roles, [("deploy".to_owned(), 30)]);
    assert_eq!(pending.summary.top_causes, [("SubjectMismatch".to_owned(), 30)]);

    let alert = spike::alert(pending, "111122223333");
    assert_eq!((alert.kind, alert.severity), (AlertKind::Spike, Severity::High));
    assert_eq!(alert.thread_id, format!("spike-all-{}", t.now));
    assert_eq!(alert.attempts, 30);
    assert_eq!((alert.cause, alert.diagnosis.is_none()), (None, true));
}

#[test]
fn quiet_counters_save_nothing_and_a_spike_that_ends_recovers_on_its_thread() {
    let t = Times {
        now: 100_000,
        wall: 100_000,
    };
    assert_eq!(
        spike::step(None, &[], t, &POLICY.spike),
        spike::SpikeStep {
            may_be_on: false,
            save: None
        }
    );
    let spiking = SpikeState {
        pending: None,
        ..pending(0)
    };
    let step = spike::step(Some(&spiking), &[], t, &POLICY.spike);
    assert!(step.may_be_on);
    let saved = step.save.unwrap();
    assert_eq!(saved.version, 5);
    let pending = saved.pending.unwrap();
    assert!(pending.recovery);
    assert_eq!(pending.thread_since, 100);
    let alert = spike::alert(&pending, "-");
    assert_eq!(
        (alert.kind, alert.severity),
        (AlertKind::Recovery, Severity::Info)
    );
    assert_eq!(alert.thread_id, "spike-all-100");
}

#[test]
fn a_pending_alert_is_taken_over_once_its_lease_passed() {
    let t = Times { now: 500, wall: 1000 };
    let waiting = spike::step(Some(&pending(1001)), &burst(t.now), t, &POLICY.spike);
    assert_eq!(
        waiting,
        spike::SpikeStep {
            may_be_on: true,
            save: None
        }
    );
    let taken = spike::step(Some(&pending(1000)), &[], t, &POLICY.spike);
    assert!(taken.may_be_on);
    let saved = taken.save.unwrap();
    assert_eq!(saved.version, 5);
    assert_eq!(saved.pending.as_ref().map(|p| p.lease_until), Some(1030));

    let released = spike::released(&saved);
    assert_eq!(released.version, 6);
    assert_eq!(released.pending.as_ref().map(|p| p.lease_until), Some(0));
    let published = spike::published(&saved);
    assert_eq!((published.version, published.pending), (6, None));
    assert!(published.spiking);
}
