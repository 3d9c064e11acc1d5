//! oidc-monitor: one EventBridge event in, its diagnosis out as a log line, metrics,
//! incident and spike state, and exactly one alert per incident.
//!
//! 1. Read the event; a malformed or foreign one is logged, counted and acknowledged.
//! 2. Look up the role and providers (IAM, cached); on failure diagnose from the event
//!    alone and count `EnrichmentErrors`. Who is ours: `ALLOWED_OWNERS`, else the owners
//!    the account's trust policies name.
//! 3. Record the delivery against its incident in one conditional write: it opens the
//!    incident, adds an attempt, or is found a redelivery. Metrics follow at once.
//! 4. The opener (or its redelivery) counts the failure for spikes, takes the rate-limit
//!    tokens and publishes the alert; every step is idempotent, so a redelivery completes
//!    what a failed or dead delivery left undone, and the alert goes out once.
//! 5. Spikes are judged only when the counters changed or a spike may be on.

pub mod contract;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use diagnosis::alert::{incident_key, Alert, AlertKind, Severity, SpikeSummary};
use diagnosis::claims::Claims;
use diagnosis::metrics::{Dimension, MetricName, MetricRecord, UNKNOWN_DIMENSION};
use diagnosis::owner::{owners_named_by, Owner, Trust};
use diagnosis::ports::{
    AccountState, AlertClaim, AlertSink, FailureCount, Incident, MetricSink, PortError, Sighting, StateStore,
    Success,
};
use diagnosis::snapshot::AccountSnapshot;
use diagnosis::spike::{assess, decide, top_labels, PendingSpikeAlert, SpikeAction, SpikeState};
use diagnosis::{diagnose_with, read_input, Cause, Diagnosis, InputItem, Ownership};
use lambda_runtime::{Diagnostic, LambdaEvent};
use oidc_watch_aws::config::Config;
use serde::Serialize;
use serde_json::{json, Value};

/// Everything the handler needs, built once at init.
pub struct Deps<A, M, L, S> {
    pub config: Config,
    pub accounts: A,
    pub metrics: M,
    pub alerts: L,
    pub state: S,
    /// Epoch seconds; injected so tests can move time.
    pub clock: Box<dyn Fn() -> i64 + Send + Sync>,
    /// What this instance remembers between events.
    pub memo: Memo,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("state table: {0}")]
    State(PortError),
    #[error("alert topic: {0}")]
    Alert(PortError),
    #[error("the alert of incident {0} is being published by another delivery")]
    AlertInFlight(String),
}

/// Every one is worth a retry: the event is kept by Lambda and redelivered, and each step
/// is idempotent, so the retry completes the work and never alerts twice.
impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match &error {
            HandlerError::State(_) => "Retryable.StateStore",
            HandlerError::Alert(_) => "Retryable.AlertTopic",
            HandlerError::AlertInFlight(_) => "Retryable.AlertInFlight",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What one invocation did, for `cargo lambda invoke` and tests.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub events: Vec<EventOutcome>,
    /// Records that were not AssumeRoleWithWebIdentity events, or not readable.
    pub malformed: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct EventOutcome {
    pub event_id: String,
    pub cause: Option<Cause>,
    pub subject_mismatch: Option<String>,
    pub confidence: Option<String>,
    pub trust: Option<Trust>,
    pub evidence: &'static str,
    pub incident_id: Option<String>,
    pub attempts: u64,
    pub duplicate: bool,
    pub enrichment_error: Option<String>,
    pub alerts: Vec<&'static str>,
    /// Alerts this event would have sent, held back by a rate limit.
    pub held_back: Vec<&'static str>,
}

/// Lifetimes of state, in seconds.
const DAY: i64 = 86_400;
/// How long a delivery owns an alert it is publishing before another may take it over.
const ALERT_LEASE_SECONDS: i64 = 30;
/// Spike state outlives any cooldown; it expires a week after its last change.
const SPIKE_STATE_LIFETIME: i64 = 7 * DAY;
/// The global alert-rate window.
const ALERT_WINDOW_SECONDS: i64 = 3600;
/// Incidents and accounts an instance remembers.
const MEMO_INCIDENTS: usize = 4096;
const MEMO_ACCOUNTS: usize = 256;
/// Successful (account, role, subject)s an instance remembers having recorded.
const MEMO_SUCCESSES: usize = 2048;
/// A subject recorded by this instance is not written again for this long.
const SUCCESS_REWRITE_SECONDS: i64 = 3600;
/// Owners remembered per account: trust policies name few.
const MEMO_OWNERS_PER_ACCOUNT: usize = 1024;
/// Spike scope: one burst, one alert, whatever roles it spans.
const SPIKE_SCOPE: &str = "all";

/// Subjects and similar strings logged beyond this are cut.
const MAX_LOGGED: usize = 512;

fn bounded(value: &str) -> String {
    match value.char_indices().nth(MAX_LOGGED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

/// What an instance remembers between events, bounded. None of it is needed for
/// correctness: it saves round trips.
#[derive(Default)]
pub struct Memo {
    /// Incident key -> open until (event time): a retry tries the attempt write first.
    incidents: Mutex<HashMap<String, i64>>,
    /// Account -> the owners its trust policies named, across the roles seen.
    owners: Mutex<HashMap<String, BTreeSet<Owner>>>,
    /// Whether a spike may be on (or an alert pending): `None` until first read.
    spike_active: Mutex<Option<bool>>,
    /// The alert-rate window this instance last counted an alert in.
    alert_window: Mutex<Option<i64>>,
    /// (account, lower-cased role, subject) -> when this instance last recorded it as a
    /// success (wall clock): one write per subject per hour, not per event.
    successes: Mutex<HashMap<(String, String, String), i64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Memo {
    fn incident_open(&self, key: &str, now: i64) -> bool {
        lock(&self.incidents).get(key).is_some_and(|until| *until >= now)
    }

    fn alert_window(&self) -> Option<i64> {
        *lock(&self.alert_window)
    }

    fn remember_alert_window(&self, window: i64) {
        *lock(&self.alert_window) = Some(window);
    }

    fn success_recorded(&self, key: &(String, String, String), wall: i64) -> bool {
        lock(&self.successes)
            .get(key)
            .is_some_and(|at| wall - *at < SUCCESS_REWRITE_SECONDS && *at <= wall)
    }

    fn remember_success(&self, key: (String, String, String), wall: i64) {
        let mut successes = lock(&self.successes);
        if successes.len() >= MEMO_SUCCESSES && !successes.contains_key(&key) {
            successes.retain(|_, at| wall - *at < SUCCESS_REWRITE_SECONDS);
            if successes.len() >= MEMO_SUCCESSES {
                successes.clear();
            }
        }
        successes.insert(key, wall);
    }

    fn remember_incident(&self, key: &str, until: i64, now: i64) {
        let mut incidents = lock(&self.incidents);
        if incidents.len() >= MEMO_INCIDENTS {
            incidents.retain(|_, u| *u >= now);
            if incidents.len() >= MEMO_INCIDENTS {
                incidents.clear();
            }
        }
        incidents.insert(key.to_owned(), until);
    }

    /// Adds the snapshot's owners to the account's, and returns them; `None` when no trust
    /// policy of the account was ever seen.
    fn owners_for(&self, account: &str, snapshot: Option<&AccountSnapshot>) -> Option<BTreeSet<Owner>> {
        let mut owners = lock(&self.owners);
        if let Some(snapshot) = snapshot {
            let named: BTreeSet<Owner> = snapshot
                .roles
                .iter()
                .filter_map(|r| r.trust_policy.as_ref().ok())
                .flat_map(owners_named_by)
                .collect();
            if !owners.contains_key(account) && owners.len() >= MEMO_ACCOUNTS {
                owners.clear();
            }
            let known = owners.entry(account.to_owned()).or_default();
            for owner in named {
                if known.len() < MEMO_OWNERS_PER_ACCOUNT {
                    known.insert(owner);
                }
            }
        }
        owners.get(account).cloned()
    }
}

/// How far ahead of the wall clock an event time may be before it is not believed.
const MAX_CLOCK_SKEW: i64 = 300;

/// The event's `eventTime`, or the wall clock when it is missing or in the future.
fn event_time(claims: &Claims, wall: i64) -> i64 {
    claims
        .event_time
        .as_deref()
        .and_then(diagnosis::evaluate::epoch_seconds)
        .filter(|t| *t <= wall + MAX_CLOCK_SKEW)
        .unwrap_or(wall)
}

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle<A, M, L, S>(
    event: LambdaEvent<Value>,
    deps: &Deps<A, M, L, S>,
) -> Result<Outcome, HandlerError>
where
    A: AccountState,
    M: MetricSink,
    L: AlertSink,
    S: StateStore,
{
    let bytes = serde_json::to_vec(&event.payload).unwrap_or_default();
    let mut outcome = Outcome::default();
    for item in read_input(&bytes) {
        match item {
            Ok(InputItem::Event(web_identity)) => {
                let claims = Claims::from_event(&web_identity);
                outcome.events.push(process(&claims, deps).await?);
            }
            other => {
                let envelope_id = event.payload.get("id").and_then(Value::as_str).unwrap_or("-");
                let reason = match other {
                    Ok(InputItem::Skipped { event_name }) => {
                        format!(
                            "not AssumeRoleWithWebIdentity: eventName {:?}",
                            event_name.as_deref().map(bounded)
                        )
                    }
                    Err(error) => error.to_string(),
                    Ok(InputItem::Event(_)) => String::new(),
                };
                tracing::warn!(event_id = %bounded(envelope_id), reason = %reason, "malformed or foreign event acknowledged");
                outcome.malformed += 1;
                let record = MetricRecord {
                    timestamp_ms: (deps.clock)() * 1000,
                    counts: vec![(MetricName::MalformedEvents, 1.0)],
                    dimensions: BTreeMap::new(),
                    properties: BTreeMap::from([("event_id".to_owned(), json!(bounded(envelope_id)))]),
                };
                publish_metrics(deps, &record).await;
            }
        }
    }
    if outcome.events.is_empty() && outcome.malformed == 0 {
        outcome.malformed += 1;
        tracing::warn!("empty event acknowledged");
    }
    Ok(outcome)
}

/// Which alert an event's incident sends, if any.
fn alert_kind(failed: bool, trust: Trust) -> Option<AlertKind> {
    match (failed, trust) {
        (true, Trust::Ours) => Some(AlertKind::Incident),
        (true, _) => Some(AlertKind::Probe),
        (false, Trust::Ours) => None,
        // Someone we cannot name got in: whatever the evidence, that is critical.
        (false, _) => Some(AlertKind::ForeignSuccess),
    }
}

fn severity_of(kind: AlertKind) -> Severity {
    match kind {
        AlertKind::ForeignSuccess => Severity::Critical,
        AlertKind::Probe => Severity::Low,
        AlertKind::Spike | AlertKind::Incident => Severity::High,
        AlertKind::Recovery => Severity::Info,
    }
}

async fn process<A, M, L, S>(claims: &Claims, deps: &Deps<A, M, L, S>) -> Result<EventOutcome, HandlerError>
where
    A: AccountState,
    M: MetricSink,
    L: AlertSink,
    S: StateStore,
{
    // Windows run on the event's own time: CloudTrail delivers minutes late, and what
    // matters is when the jobs ran. Item lifetimes and leases run on the wall clock.
    let wall = (deps.clock)();
    let now = event_time(claims, wall);
    let config = &deps.config;

    let mut enrichment_error = None;
    let expected_provider = match (&claims.provider, claims.account_id.as_deref()) {
        (Some(provider), Some(account)) => Some(provider.arn_in(account)),
        _ => None,
    };
    let snapshot = match (claims.account_id.as_deref(), claims.role_name.as_deref()) {
        (Some(account), Some(role)) => match deps
            .accounts
            .snapshot_expecting(account, role, expected_provider.as_deref())
            .await
        {
            Ok(snapshot) => Some(snapshot),
            Err(error) => {
                tracing::warn!(error = %error, "IAM lookup failed; diagnosing from the event alone");
                enrichment_error = Some(error.to_string());
                None
            }
        },
        _ => None,
    };
    let trusted = claims
        .account_id
        .as_deref()
        .and_then(|account| deps.memo.owners_for(account, snapshot.as_ref()));
    let diagnosis = diagnose_with(
        claims.clone(),
        snapshot.as_ref(),
        Ownership {
            owners: &config.owners,
            trusted: trusted.as_ref(),
        },
    );
    // IAM's own spelling of the role: case variants of one role are one role.
    let canonical_role = match (&snapshot, claims.role_name.as_deref()) {
        (Some(s), Some(name)) => s.role(name).map(|r| r.name.clone()),
        _ => None,
    };
    let role_dimension = canonical_role
        .clone()
        .unwrap_or_else(|| UNKNOWN_DIMENSION.to_owned());
    let account = diagnosis
        .account_id
        .clone()
        .unwrap_or_else(|| UNKNOWN_DIMENSION.to_owned());
    let key = incident_key(&diagnosis);
    let event_id = diagnosis
        .event_id
        .clone()
        .unwrap_or_else(|| format!("no-id-{key}"));
    let failed = diagnosis.cause != Cause::None;
    let kind = alert_kind(failed, diagnosis.trust);

    let mut result = EventOutcome {
        event_id: event_id.clone(),
        cause: Some(diagnosis.cause),
        subject_mismatch: diagnosis.subject_mismatch.map(|k| k.as_str().to_owned()),
        confidence: serde_json::to_value(diagnosis.confidence)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
        trust: Some(diagnosis.trust),
        evidence: diagnosis.evidence,
        enrichment_error: enrichment_error.clone(),
        ..EventOutcome::default()
    };

    let window = config.incident_window_seconds;
    let mut counters_changed = false;
    let mut redelivered_opener = false;
    let mut settle = false;
    match kind {
        None => {
            // A success of one of our jobs: the subject joins the role's record of what
            // works (`oidc-watch impact --observed`), alongside the sighting. The record is
            // idempotent, so a redelivery may write it again.
            let success = match (
                &canonical_role,
                claims.subject.as_deref(),
                claims.account_id.as_deref(),
            ) {
                (Some(role), Some(subject), Some(account)) if config.observed_subject_days > 0 => {
                    Some(Success {
                        account,
                        role,
                        subject,
                        provider: expected_provider.as_deref(),
                        audience: claims.audience.as_deref(),
                        at: now,
                        expires_at: wall.max(now) + config.observed_subject_days * DAY,
                    })
                    .filter(Success::recordable)
                }
                _ => None,
            };
            let memo_key = success
                .as_ref()
                .map(|s| (s.account.to_owned(), s.role.to_lowercase(), s.subject.to_owned()));
            let record = match &memo_key {
                Some(key) if !deps.memo.success_recorded(key, wall) => success.as_ref(),
                _ => None,
            };
            let (first, recorded) = tokio::join!(
                deps.state.first_sighting(&event_id, wall + 2 * window + DAY),
                async {
                    match record {
                        Some(success) => deps.state.record_success(success).await.map(|()| true),
                        None => Ok(false),
                    }
                }
            );
            // The record serves a pre-flight check: a lost write is logged, never retried
            // at the cost of the event's metrics.
            match (recorded, memo_key) {
                (Ok(true), Some(key)) => deps.memo.remember_success(key, wall),
                (Err(error), _) => tracing::warn!(error = %error, "successful subject not recorded"),
                _ => {}
            }
            let first = first.map_err(HandlerError::State)?;
            result.duplicate = !first;
            if first {
                publish_metrics(
                    deps,
                    &metric_record(&diagnosis, &result, &role_dimension, &account, now),
                )
                .await;
            }
        }
        Some(kind) => {
            let opening = Incident {
                id: format!("{}-{now}", &key[..16]),
                opened_by: event_id.clone(),
                opened_at: now,
                until: now + window,
                attempts: 1,
                alerted: false,
            };
            let sighting = deps
                .state
                .sight_incident(
                    &key,
                    &event_id,
                    &opening,
                    now,
                    wall + ALERT_LEASE_SECONDS,
                    wall.max(now) + window + DAY,
                    deps.memo.incident_open(&key, now),
                )
                .await
                .map_err(HandlerError::State)?;
            let incident = sighting.incident().clone();
            deps.memo.remember_incident(&key, incident.until, now);
            result.incident_id = Some(incident.id.clone());
            result.attempts = incident.attempts;
            result.duplicate = matches!(sighting, Sighting::Duplicate(_));
            if !result.duplicate {
                publish_metrics(
                    deps,
                    &metric_record(&diagnosis, &result, &role_dimension, &account, now),
                )
                .await;
            }
            let opener = match &sighting {
                Sighting::Opened(_) => true,
                Sighting::Duplicate(i) if i.opened_by == event_id && !i.alerted => {
                    match deps
                        .state
                        .claim_alert(&key, &event_id, wall, wall + ALERT_LEASE_SECONDS)
                        .await
                        .map_err(HandlerError::State)?
                    {
                        AlertClaim::Claimed => true,
                        AlertClaim::Done => false,
                        AlertClaim::Busy => return Err(HandlerError::AlertInFlight(incident.id)),
                    }
                }
                _ => false,
            };
            redelivered_opener = opener && result.duplicate;
            if opener {
                counters_changed = failed;
                let delivered = alert_incident(
                    deps,
                    IncidentAlert {
                        kind,
                        key: &key,
                        incident: &incident,
                        diagnosis: &diagnosis,
                        account: &account,
                        role: &role_dimension,
                        now,
                        wall,
                    },
                )
                .await?;
                match delivered {
                    Delivered::Sent => result.alerts.push(kind.as_str()),
                    Delivered::HeldBack => result.held_back.push(kind.as_str()),
                    Delivered::Refused => {}
                }
                settle = matches!(delivered, Delivered::Sent | Delivered::Refused);
            }
        }
    }

    // Settling the incident's alert and the spike check touch different items: one round
    // trip for both.
    let spike_may_be_on = *lock(&deps.memo.spike_active) != Some(false);
    let check = counters_changed || redelivered_opener || spike_may_be_on;
    let (settled, spiked) = tokio::join!(
        async {
            match settle {
                true => deps.state.finish_alert(&key).await,
                false => Ok(()),
            }
        },
        async {
            match check {
                true => check_spike(deps, &account, now, wall).await,
                false => Ok(None),
            }
        }
    );
    settled.map_err(HandlerError::State)?;
    if let Some(kind) = spiked? {
        result.alerts.push(kind);
    }

    tracing::info!(
        event_id = %event_id,
        cause = diagnosis.cause.as_str(),
        subject_mismatch = diagnosis.subject_mismatch.map(|k| k.as_str()).unwrap_or(""),
        confidence = ?diagnosis.confidence,
        trust = diagnosis.trust.as_str(),
        account = %account,
        role = %bounded(diagnosis.role_arn.as_deref().unwrap_or("-")),
        owner = %bounded(&diagnosis.owner.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string)),
        repository = %bounded(diagnosis.claims.repository.as_deref().unwrap_or("-")),
        subject = %bounded(diagnosis.subject.as_deref().unwrap_or("-")),
        run_id = diagnosis.github_run_id.as_deref().unwrap_or("-"),
        incident = result.incident_id.as_deref().unwrap_or("-"),
        duplicate = result.duplicate,
        alerts = ?result.alerts,
        held_back = ?result.held_back,
        "diagnosis"
    );
    Ok(result)
}

struct IncidentAlert<'a> {
    kind: AlertKind,
    key: &'a str,
    incident: &'a Incident,
    diagnosis: &'a Diagnosis,
    account: &'a str,
    role: &'a str,
    now: i64,
    wall: i64,
}

enum Delivered {
    Sent,
    HeldBack,
    /// SNS refused it for good (too large, not authorised): logged, not retried.
    Refused,
}

/// The opener's work: count the failure, pass the rate limits, publish. A sent or refused
/// alert is settled by the caller (`finish_alert`); a held-back one here. Each step is
/// idempotent per incident, so a redelivery may run it again.
async fn alert_incident<A, M, L, S>(
    deps: &Deps<A, M, L, S>,
    job: IncidentAlert<'_>,
) -> Result<Delivered, HandlerError>
where
    M: MetricSink,
    L: AlertSink,
    S: StateStore,
{
    let config = &deps.config;
    let d = job.diagnosis;
    let count = async {
        if d.cause == Cause::None {
            return Ok(());
        }
        let horizon =
            job.wall.max(job.now) + config.spike.window_seconds * (config.spike.baseline_windows + 2) + 3600;
        deps.state
            .count_failure(&FailureCount {
                minute: job.now.div_euclid(60),
                role: job.role,
                cause: d.cause.as_str(),
                incident_id: &job.incident.id,
                expires_at: horizon,
            })
            .await
    };
    let probe_token = async {
        if job.kind != AlertKind::Probe {
            return Ok(true);
        }
        let owner = d
            .owner
            .as_ref()
            .map_or_else(|| "no-owner".to_owned(), |o| o.to_string().to_ascii_lowercase());
        deps.state
            .take_token(
                &format!("probe#{owner}"),
                &job.incident.id,
                job.now,
                config.probe_alert_interval_seconds,
            )
            .await
    };
    let window = job.wall.div_euclid(ALERT_WINDOW_SECONDS) * ALERT_WINDOW_SECONDS;
    let rate = async {
        // Someone we cannot name got in: never held back.
        if job.kind == AlertKind::ForeignSuccess {
            return Ok(0);
        }
        deps.state
            .count_alert(window, &job.incident.id, window + ALERT_WINDOW_SECONDS + DAY)
            .await
    };
    // The previous hour matters only to the first alert of this one, which an instance
    // that already counted in this window cannot be: read it alongside, not after.
    let first_in_window = deps.memo.alert_window() != Some(window);
    let previous = async {
        match first_in_window && job.kind != AlertKind::ForeignSuccess {
            true => deps
                .state
                .alert_count(window - ALERT_WINDOW_SECONDS)
                .await
                .map(Some),
            false => Ok(None),
        }
    };
    let (counted, probe_token, in_window, previous) = tokio::join!(count, probe_token, rate, previous);
    counted.map_err(HandlerError::State)?;
    let probe_token = probe_token.map_err(HandlerError::State)?;
    let in_window = in_window.map_err(HandlerError::State)?;
    if job.kind != AlertKind::ForeignSuccess {
        deps.memo.remember_alert_window(window);
    }

    let limit = config.alerts_per_hour;
    let mut notes = Vec::new();
    if in_window == limit + 1 {
        notes.push(format!(
            "Alert rate limit reached ({limit} per hour): later incident and probe alerts this hour are held back and counted in the AlertsHeldBack metric."
        ));
    } else if in_window == 1 {
        let previous = match previous.map_err(HandlerError::State)? {
            Some(previous) => previous,
            None => deps
                .state
                .alert_count(window - ALERT_WINDOW_SECONDS)
                .await
                .map_err(HandlerError::State)?,
        };
        if previous > limit + 1 {
            notes.push(format!(
                "{} alerts were held back by the rate limit in the previous hour (AlertsHeldBack metric; the log has each diagnosis).",
                previous - limit - 1
            ));
        }
    }
    if !probe_token || in_window > limit + 1 {
        // Settled: a redelivery does not alert either.
        deps.state
            .finish_alert(job.key)
            .await
            .map_err(HandlerError::State)?;
        publish_metrics(
            deps,
            &MetricRecord {
                timestamp_ms: job.now * 1000,
                counts: vec![(MetricName::AlertsHeldBack, 1.0)],
                dimensions: BTreeMap::from([(Dimension::AccountId, job.account.to_owned())]),
                properties: BTreeMap::from([
                    ("incident_id".to_owned(), json!(job.incident.id)),
                    ("kind".to_owned(), json!(job.kind.as_str())),
                ]),
            },
        )
        .await;
        return Ok(Delivered::HeldBack);
    }
    let alert = Alert {
        kind: job.kind,
        severity: severity_of(job.kind),
        thread_id: job.incident.id.clone(),
        account_id: job.account.to_owned(),
        cause: Some(d.cause),
        attempts: job.incident.attempts,
        diagnosis: Some(d.clone()),
        spike: None,
        notes,
    };
    let delivered = match deps.alerts.publish(&alert).await {
        Ok(()) => Delivered::Sent,
        Err(error) if error.retryable => {
            if let Err(release) = deps.state.release_alert(job.key).await {
                tracing::warn!(error = %release, "alert lease not released; the redelivery waits for it");
            }
            return Err(HandlerError::Alert(error));
        }
        Err(error) => {
            tracing::error!(error = %error, incident = %job.incident.id, "alert refused by the topic; not retried");
            Delivered::Refused
        }
    };
    Ok(delivered)
}

async fn check_spike<A, M, L, S>(
    deps: &Deps<A, M, L, S>,
    account: &str,
    now: i64,
    wall: i64,
) -> Result<Option<&'static str>, HandlerError>
where
    L: AlertSink,
    S: StateStore,
{
    let config = &deps.config.spike;
    let (from, to) = config.minutes_needed(now);
    let (counts, state) = tokio::join!(
        deps.state.failure_counts(from, to),
        deps.state.spike_state(SPIKE_SCOPE)
    );
    let counts = counts.map_err(HandlerError::State)?;
    let state = state.map_err(HandlerError::State)?;
    let expires = wall + SPIKE_STATE_LIFETIME;

    // An alert decided before but not known to be out: publish it once its lease passed.
    if let Some(stored) = &state {
        if let Some(pending) = &stored.pending {
            *lock(&deps.memo.spike_active) = Some(true);
            if pending.lease_until > wall {
                return Ok(None);
            }
            let taken = SpikeState {
                version: stored.version + 1,
                pending: Some(PendingSpikeAlert {
                    lease_until: wall + ALERT_LEASE_SECONDS,
                    ..pending.clone()
                }),
                ..stored.clone()
            };
            return publish_spike(deps, account, taken, expires).await;
        }
    }

    let assessment = assess(&counts, now, config);
    let (action, next) = decide(state.as_ref(), &assessment, now, config);
    let spiking_after = next.as_ref().or(state.as_ref()).is_some_and(|s| s.spiking);
    *lock(&deps.memo.spike_active) = Some(spiking_after);
    let Some(mut next) = next else { return Ok(None) };
    if action != SpikeAction::Nothing {
        let recovery = action == SpikeAction::Recover;
        next.pending = Some(PendingSpikeAlert {
            recovery,
            // A recovery joins the thread of the spike it ends.
            thread_since: if recovery {
                state.as_ref().map_or(next.since, |s| s.since)
            } else {
                next.since
            },
            summary: SpikeSummary {
                scope: SPIKE_SCOPE.to_owned(),
                window_seconds: config.window_seconds,
                failures: assessment.failures,
                baseline: assessment.baseline,
                top_roles: top_labels(&assessment.labels, "role:", 5),
                top_causes: top_labels(&assessment.labels, "cause:", 5),
            },
            lease_until: wall + ALERT_LEASE_SECONDS,
        });
        *lock(&deps.memo.spike_active) = Some(true);
    }
    publish_spike(deps, account, next, expires).await
}

/// Saves `state` (conditionally); if it carries a pending alert, publishes it and clears
/// it. A failed publish leaves it pending for the next delivery to take over.
async fn publish_spike<A, M, L, S>(
    deps: &Deps<A, M, L, S>,
    account: &str,
    state: SpikeState,
    expires: i64,
) -> Result<Option<&'static str>, HandlerError>
where
    L: AlertSink,
    S: StateStore,
{
    if !deps
        .state
        .save_spike_state(SPIKE_SCOPE, &state, expires)
        .await
        .map_err(HandlerError::State)?
    {
        return Ok(None);
    }
    let Some(pending) = &state.pending else {
        return Ok(None);
    };
    let kind = if pending.recovery {
        AlertKind::Recovery
    } else {
        AlertKind::Spike
    };
    let alert = Alert {
        kind,
        severity: severity_of(kind),
        thread_id: format!("spike-{SPIKE_SCOPE}-{}", pending.thread_since),
        account_id: account.to_owned(),
        cause: None,
        attempts: pending.summary.failures,
        diagnosis: None,
        spike: Some(pending.summary.clone()),
        notes: Vec::new(),
    };
    match deps.alerts.publish(&alert).await {
        Ok(()) => {}
        Err(error) if error.retryable => {
            // Give the lease back, so the redelivery publishes at once.
            let released = SpikeState {
                version: state.version + 1,
                pending: state
                    .pending
                    .clone()
                    .map(|p| PendingSpikeAlert { lease_until: 0, ..p }),
                ..state.clone()
            };
            if let Err(release) = deps.state.save_spike_state(SPIKE_SCOPE, &released, expires).await {
                tracing::warn!(error = %release, "spike alert lease not released; the next delivery waits for it");
            }
            return Err(HandlerError::Alert(error));
        }
        Err(error) => tracing::error!(error = %error, "spike alert refused by the topic; not retried"),
    }
    let done = SpikeState {
        version: state.version + 1,
        pending: None,
        ..state.clone()
    };
    if !deps
        .state
        .save_spike_state(SPIKE_SCOPE, &done, expires)
        .await
        .map_err(HandlerError::State)?
    {
        tracing::warn!("spike state changed while its alert went out");
    }
    *lock(&deps.memo.spike_active) = Some(done.spiking);
    Ok(Some(kind.as_str()))
}

fn metric_record(d: &Diagnosis, result: &EventOutcome, role: &str, account: &str, now: i64) -> MetricRecord {
    let mut counts = vec![if d.cause == Cause::None {
        (MetricName::AssumeSuccesses, 1.0)
    } else {
        (MetricName::AssumeFailures, 1.0)
    }];
    if d.trust != Trust::Ours && d.cause != Cause::None {
        counts.push((MetricName::ProbeAttempts, 1.0));
    }
    if result.enrichment_error.is_some() {
        counts.push((MetricName::EnrichmentErrors, 1.0));
    }
    let text = |value: Option<&str>| json!(bounded(value.unwrap_or("-")));
    MetricRecord {
        timestamp_ms: now * 1000,
        counts,
        dimensions: BTreeMap::from([
            (Dimension::Cause, d.cause.as_str().to_owned()),
            (Dimension::RoleName, role.to_owned()),
            (Dimension::AccountId, account.to_owned()),
        ]),
        properties: BTreeMap::from([
            ("event_id".to_owned(), text(d.event_id.as_deref())),
            ("subject".to_owned(), text(d.subject.as_deref())),
            ("repository".to_owned(), text(d.claims.repository.as_deref())),
            (
                "owner".to_owned(),
                text(d.owner.as_ref().map(ToString::to_string).as_deref()),
            ),
            ("trust".to_owned(), json!(d.trust.as_str())),
            ("run_id".to_owned(), text(d.github_run_id.as_deref())),
            ("role_arn".to_owned(), text(d.role_arn.as_deref())),
            ("region".to_owned(), text(d.region.as_deref())),
            (
                "subject_mismatch".to_owned(),
                text(d.subject_mismatch.map(|k| k.as_str())),
            ),
            ("confidence".to_owned(), json!(d.confidence)),
            ("incident_id".to_owned(), text(result.incident_id.as_deref())),
        ]),
    }
}

/// Metrics never fail the event: a lost datum is better than a retried alert.
async fn publish_metrics<A, M, L, S>(deps: &Deps<A, M, L, S>, record: &MetricRecord)
where
    M: MetricSink,
{
    if let Err(error) = deps.metrics.publish(record).await {
        tracing::error!(error = %error, "metrics not published");
    }
}
