//! At least once, alert exactly once. A scripted day (a retry burst, a burst of distinct
//! jobs that spikes, a stranger's success, a recovery) runs with the state store and the
//! alert topic wrapped so that their Nth call fails, or so that the process dies right
//! after the Nth call reached them (the write happened, the answer was lost), for every
//! N. Every failed delivery is redelivered until it succeeds. Whatever N, the user sees
//! one alert per incident, one spike and one recovery, the critical alert, and exact
//! counters.

mod common;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use diagnosis::alert::{Alert, AlertKind};
use diagnosis::metrics::{MetricName, MetricRecord};
use diagnosis::ports::memory::{MemoryAccounts, MemoryAlerts, MemoryMetrics, MemoryState};
use diagnosis::ports::{
    AlertClaim, AlertSink, FailureCount, Incident, MetricSink, ObservedSubject, PortError, Sighting,
    StateStore, Success,
};
use diagnosis::spike::{MinuteCount, SpikeState};
use lambda_runtime::{Context, LambdaEvent};
use oidc_monitor::{handle, Deps, HandlerError, Memo};
use serde_json::Value;
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The Nth call fails before it reaches the store or topic.
    Fail,
    /// The Nth call reaches the store or topic, then the process dies.
    DieAfter,
}

/// Counts calls across the wrapped ports and injects the fault once.
struct Injector {
    calls: AtomicU64,
    at: Option<u64>,
    fault: Fault,
    died: Notify,
}

impl Injector {
    fn new(at: Option<u64>, fault: Fault) -> Arc<Self> {
        Arc::new(Injector {
            calls: AtomicU64::new(0),
            at,
            fault,
            died: Notify::new(),
        })
    }

    /// Runs `call` under the fault plan. Yields first, so concurrent deliveries interleave.
    async fn run<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        tokio::task::yield_now().await;
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) != self.at {
            return call.await;
        }
        match self.fault {
            Fault::Fail => Err(PortError::new("injected", format!("call {n} failed"), true)),
            Fault::DieAfter => {
                let _ = call.await;
                self.died.notify_one();
                std::future::pending().await
            }
        }
    }
}

struct FaultyState {
    inner: MemoryState,
    faults: Arc<Injector>,
}

impl StateStore for FaultyState {
    async fn first_sighting(&self, event_id: &str, expires_at: i64) -> Result<bool, PortError> {
        self.faults
            .run(self.inner.first_sighting(event_id, expires_at))
            .await
    }
    async fn sight_incident(
        &self,
        key: &str,
        event_id: &str,
        opening: &Incident,
        now: i64,
        lease_until: i64,
        expires_at: i64,
        expect_open: bool,
    ) -> Result<Sighting, PortError> {
        self.faults
            .run(
                self.inner
                    .sight_incident(key, event_id, opening, now, lease_until, expires_at, expect_open),
            )
            .await
    }
    async fn claim_alert(
        &self,
        key: &str,
        event_id: &str,
        wall: i64,
        lease: i64,
    ) -> Result<AlertClaim, PortError> {
        self.faults
            .run(self.inner.claim_alert(key, event_id, wall, lease))
            .await
    }
    async fn release_alert(&self, key: &str) -> Result<(), PortError> {
        self.faults.run(self.inner.release_alert(key)).await
    }
    async fn finish_alert(&self, key: &str) -> Result<(), PortError> {
        self.faults.run(self.inner.finish_alert(key)).await
    }
    async fn count_failure(&self, count: &FailureCount<'_>) -> Result<(), PortError> {
        self.faults.run(self.inner.count_failure(count)).await
    }
    async fn failure_counts(&self, from: i64, to: i64) -> Result<Vec<MinuteCount>, PortError> {
        self.faults.run(self.inner.failure_counts(from, to)).await
    }
    async fn spike_state(&self, scope: &str) -> Result<Option<SpikeState>, PortError> {
        self.faults.run(self.inner.spike_state(scope)).await
    }
    async fn save_spike_state(
        &self,
        scope: &str,
        state: &SpikeState,
        expires: i64,
    ) -> Result<bool, PortError> {
        self.faults
            .run(self.inner.save_spike_state(scope, state, expires))
            .await
    }
    async fn take_token(&self, key: &str, holder: &str, now: i64, period: i64) -> Result<bool, PortError> {
        self.faults
            .run(self.inner.take_token(key, holder, now, period))
            .await
    }
    async fn count_alert(&self, window: i64, holder: &str, expires: i64) -> Result<u64, PortError> {
        self.faults
            .run(self.inner.count_alert(window, holder, expires))
            .await
    }
    async fn alert_count(&self, window: i64) -> Result<u64, PortError> {
        self.faults.run(self.inner.alert_count(window)).await
    }
    async fn record_success(&self, success: &Success<'_>) -> Result<(), PortError> {
        self.faults.run(self.inner.record_success(success)).await
    }
    async fn successful_subjects(
        &self,
        account: &str,
        role: &str,
    ) -> Result<Vec<ObservedSubject>, PortError> {
        self.faults
            .run(self.inner.successful_subjects(account, role))
            .await
    }
    async fn record_change(
        &self,
        record: &diagnosis::change::ChangeRecord,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        self.faults
            .run(self.inner.record_change(record, expires_at))
            .await
    }
    async fn recent_changes(
        &self,
        account: &str,
        since: i64,
    ) -> Result<Vec<diagnosis::change::ChangeRecord>, PortError> {
        self.faults.run(self.inner.recent_changes(account, since)).await
    }
}

struct FaultyAlerts {
    inner: MemoryAlerts,
    faults: Arc<Injector>,
}

impl AlertSink for FaultyAlerts {
    async fn publish(&self, alert: &Alert) -> Result<(), PortError> {
        self.faults.run(self.inner.publish(alert)).await
    }
}

/// EMF is a synchronous line on stdout: it is not a place where a delivery fails.
struct Metrics(MemoryMetrics);

impl MetricSink for Metrics {
    async fn publish(&self, record: &MetricRecord) -> Result<(), PortError> {
        self.0.publish(record).await
    }
}

type FaultyDeps = Deps<MemoryAccounts, Metrics, FaultyAlerts, FaultyState>;

fn deps(faults: &Arc<Injector>, wall: Arc<AtomicI64>) -> FaultyDeps {
    Deps {
        config: config("acme"),
        accounts: MemoryAccounts {
            accounts: accounts(),
            ..MemoryAccounts::default()
        },
        metrics: Metrics(MemoryMetrics::default()),
        alerts: FaultyAlerts {
            inner: MemoryAlerts::default(),
            faults: faults.clone(),
        },
        state: FaultyState {
            inner: MemoryState::default(),
            faults: faults.clone(),
        },
        clock: Box::new(move || wall.load(Ordering::SeqCst)),
        memo: Memo::default(),
    }
}

const MAIN_ONLY: &str = "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json";
const SUCCESS: &str = "none/github-push-main-success.json";

/// The day: (event time, event).
fn script() -> Vec<(i64, Value)> {
    let failure = sample(MAIN_ONLY);
    let success = sample(SUCCESS);
    let mut events = Vec::new();
    // One job retried six times: one incident.
    for n in 0..6 {
        let t = T0 + n as i64 * 5;
        events.push((t, at(retry_of(&failure, n), t)));
    }
    // 24 more jobs within the spike window: 25 incidents in all, over the minimum of 20.
    for n in 0..24 {
        let t = T0 + 40 + n as i64 * 5;
        let sub = format!("repo:acme/web-app:ref:refs/heads/feature-{n}");
        events.push((t, at(with_subject(&failure, &sub, 100 + n), t)));
    }
    // A stranger got in.
    let t = T0 + 200;
    events.push((
        t,
        at(
            with_subject(&success, "repo:mallory/tool:ref:refs/heads/main", 500),
            t,
        ),
    ));
    // Quiet successes later: the spike recovers.
    for n in 0..3 {
        let t = T0 + 900 + n as i64 * 300;
        events.push((t, at(retry_of(&success, 600 + n), t)));
    }
    events
}

/// Delivers `event` until a delivery succeeds, as Lambda's retries (and the failure
/// queue's redrive) would; each redelivery comes after the alert lease has passed.
async fn deliver(deps: &FaultyDeps, faults: &Injector, wall: &AtomicI64, event: &Value) -> usize {
    for attempt in 1..=20 {
        let outcome = tokio::select! {
            biased;
            result = handle(LambdaEvent::new(event.clone(), Context::default()), deps) => Some(result),
            _ = faults.died.notified() => None,
        };
        match outcome {
            Some(Ok(_)) => return attempt,
            Some(Err(HandlerError::State(_) | HandlerError::Alert(_) | HandlerError::AlertInFlight(_)))
            | None => {
                wall.fetch_add(61, Ordering::SeqCst);
            }
        }
    }
    panic!("an event was never delivered");
}

struct Day {
    alerts: Vec<Alert>,
    calls: u64,
    counted: u64,
    burst_attempts: u64,
    failure_metrics: usize,
    success_metrics: usize,
}

async fn run_day(at_call: Option<u64>, fault: Fault) -> Day {
    let faults = Injector::new(at_call, fault);
    let wall = Arc::new(AtomicI64::new(T0));
    let deps = deps(&faults, wall.clone());
    for (t, event) in script() {
        wall.store(wall.load(Ordering::SeqCst).max(t), Ordering::SeqCst);
        deliver(&deps, &faults, &wall, &event).await;
    }
    let counted = deps
        .state
        .inner
        .failure_counts(T0.div_euclid(60) - 1, (T0 + 3600).div_euclid(60))
        .await
        .unwrap_or_default()
        .iter()
        .map(|m| m.failures)
        .sum();
    let burst_attempts = deps
        .state
        .inner
        .incidents()
        .iter()
        .map(|i| i.attempts)
        .max()
        .unwrap_or(0);
    let records = deps
        .metrics
        .0
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let count = |name| records.iter().filter(|r| r.counts.contains(&(name, 1.0))).count();
    let alerts = deps
        .alerts
        .inner
        .alerts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Day {
        alerts,
        calls: faults.calls.load(Ordering::SeqCst),
        counted,
        burst_attempts,
        failure_metrics: count(MetricName::AssumeFailures),
        success_metrics: count(MetricName::AssumeSuccesses),
    }
}

fn kinds(alerts: &[Alert], kind: AlertKind) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.kind == kind).collect()
}

/// What the user sees: the notifier posts each alert id once, so a publish repeated
/// after a lost answer from SNS shows once.
fn seen(alerts: &[Alert]) -> Vec<Alert> {
    let mut ids = std::collections::HashSet::new();
    alerts
        .iter()
        .filter(|a| ids.insert(a.alert_id()))
        .cloned()
        .collect()
}

fn check(day: &Day, label: &str) {
    let seen = seen(&day.alerts);
    assert!(
        day.alerts.len() <= seen.len() + 1,
        "{label}: only a publish whose answer was lost is repeated: {} published, {} distinct",
        day.alerts.len(),
        seen.len()
    );
    assert_eq!(
        kinds(&seen, AlertKind::Incident).len(),
        25,
        "{label}: one alert per incident"
    );
    assert_eq!(
        kinds(&seen, AlertKind::Spike).len(),
        1,
        "{label}: one spike alert"
    );
    assert_eq!(
        kinds(&seen, AlertKind::Recovery).len(),
        1,
        "{label}: one recovery"
    );
    assert_eq!(
        kinds(&seen, AlertKind::ForeignSuccess).len(),
        1,
        "{label}: the critical alert is never lost"
    );
    assert_eq!(day.counted, 25, "{label}: spikes count each job once");
    assert_eq!(day.burst_attempts, 6, "{label}: every retry counted once");
}

#[tokio::test]
async fn a_clean_day_alerts_as_the_user_expects() {
    let day = run_day(None, Fault::Fail).await;
    check(&day, "no fault");
    assert_eq!(day.alerts.len(), 28, "nothing repeated without a fault");
    assert_eq!((day.failure_metrics, day.success_metrics), (30, 4));
    assert!(
        day.calls > 50,
        "the script exercises the ports: {} calls",
        day.calls
    );
}

#[tokio::test]
async fn whichever_call_fails_the_redeliveries_alert_exactly_once() {
    let calls = run_day(None, Fault::Fail).await.calls;
    for n in 1..=calls {
        let day = run_day(Some(n), Fault::Fail).await;
        check(&day, &format!("call {n} failed"));
        // A call that fails before it writes leaves nothing half done.
        assert_eq!(
            (day.failure_metrics, day.success_metrics),
            (30, 4),
            "call {n} failed"
        );
    }
}

#[tokio::test]
async fn wherever_the_process_dies_the_redeliveries_alert_exactly_once() {
    let calls = run_day(None, Fault::DieAfter).await.calls;
    for n in 1..=calls {
        let day = run_day(Some(n), Fault::DieAfter).await;
        check(&day, &format!("died after call {n}"));
        // Dying between the state write and the EMF line loses that one datum: the only
        // window where a count is lost, and no await point separates them in the Lambda.
        assert!(
            (29..=30).contains(&day.failure_metrics) && (3..=4).contains(&day.success_metrics),
            "died after call {n}: {} failures, {} successes counted",
            day.failure_metrics,
            day.success_metrics
        );
    }
}

#[tokio::test]
async fn two_concurrent_deliveries_of_one_event_alert_once() {
    let faults = Injector::new(None, Fault::Fail);
    let wall = Arc::new(AtomicI64::new(T0));
    let deps = deps(&faults, wall.clone());
    let event = at(retry_of(&sample(MAIN_ONLY), 1), T0);
    let invoke = || handle(LambdaEvent::new(event.clone(), Context::default()), &deps);
    let (a, b) = tokio::join!(invoke(), invoke());
    let in_flight = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(HandlerError::AlertInFlight(_))))
        .count();
    assert!(a.is_ok() || b.is_ok(), "one of them publishes");
    if in_flight == 1 {
        wall.fetch_add(61, Ordering::SeqCst);
        deliver(&deps, &faults, &wall, &event).await;
    }
    let alerts = deps
        .alerts
        .inner
        .alerts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
}
