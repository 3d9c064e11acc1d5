//! oidc-monitor: one EventBridge event in, its diagnosis out as a log line, metrics,
//! incident and spike state, and at most one alert per incident.
//!
//! 1. Read the event; a malformed or foreign one is logged, counted and acknowledged.
//! 2. Look up the role and providers (IAM, cached); on failure diagnose from the event
//!    alone and count `EnrichmentErrors`.
//! 3. Dedupe redeliveries, collapse retry bursts into incidents (conditional writes).
//! 4. Alert the first event of an incident; probes and foreign successes by owner.
//! 5. Count failures per minute and alert spikes and recoveries.
//! 6. Publish metrics (EMF or PutMetricData).

use std::collections::BTreeMap;

use diagnosis::alert::{triage, Alert, AlertKind, Severity, SpikeSummary, Triage};
use diagnosis::claims::Claims;
use diagnosis::metrics::{Dimension, MetricName, MetricRecord, UNKNOWN_DIMENSION};
use diagnosis::ports::{AccountState, AlertSink, Incident, MetricSink, PortError, StateStore};
use diagnosis::spike::{assess, decide, top_labels, SpikeAction, SpikeState};
use diagnosis::{diagnose_claims, read_input, Cause, Diagnosis, InputItem};
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
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("state table: {0}")]
    State(PortError),
    #[error("alert topic: {0}")]
    Alert(PortError),
}

/// Both are worth a retry: the event is kept by Lambda and redelivered, and redelivery
/// is deduplicated, so a retry never alerts twice.
impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match &error {
            HandlerError::State(_) => "Retryable.StateStore",
            HandlerError::Alert(_) => "Retryable.AlertTopic",
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
    pub evidence: &'static str,
    pub incident_id: Option<String>,
    pub attempts: u64,
    pub duplicate: bool,
    pub enrichment_error: Option<String>,
    pub alerts: Vec<&'static str>,
}

/// Subjects and similar strings logged beyond this are cut.
const MAX_LOGGED: usize = 512;

fn bounded(value: &str) -> String {
    match value.char_indices().nth(MAX_LOGGED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
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

/// Stable per (account, role, subject, cause): the retries of one job share it.
pub fn incident_key(d: &Diagnosis) -> String {
    let parts = [
        d.account_id.as_deref().unwrap_or(""),
        d.role_arn.as_deref().unwrap_or(""),
        d.subject.as_deref().unwrap_or(""),
        d.cause.as_str(),
    ];
    let hash = parts
        .iter()
        .flat_map(|p| p.bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
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

async fn process<A, M, L, S>(claims: &Claims, deps: &Deps<A, M, L, S>) -> Result<EventOutcome, HandlerError>
where
    A: AccountState,
    M: MetricSink,
    L: AlertSink,
    S: StateStore,
{
    // Windows run on the event's own time: CloudTrail delivers minutes late, and what
    // matters is when the jobs ran. Item lifetimes run on the wall clock.
    let wall = (deps.clock)();
    let now = event_time(claims, wall);
    let config = &deps.config;

    let mut enrichment_error = None;
    let snapshot = match (claims.account_id.as_deref(), claims.role_name.as_deref()) {
        (Some(account), Some(role)) => match deps.accounts.snapshot(account, role).await {
            Ok(snapshot) => Some(snapshot),
            Err(error) => {
                tracing::warn!(error = %error, "IAM lookup failed; diagnosing from the event alone");
                enrichment_error = Some(error.to_string());
                None
            }
        },
        _ => None,
    };
    let diagnosis = diagnose_claims(claims, snapshot.as_ref());
    let role_exists = match (&snapshot, claims.role_name.as_deref()) {
        (Some(s), Some(name)) => s.role(name).is_some(),
        _ => false,
    };
    let role_dimension = match (role_exists, claims.role_name.as_deref()) {
        (true, Some(name)) => name.to_owned(),
        _ => UNKNOWN_DIMENSION.to_owned(),
    };
    let account = diagnosis
        .account_id
        .clone()
        .unwrap_or_else(|| UNKNOWN_DIMENSION.to_owned());
    let event_id = diagnosis
        .event_id
        .clone()
        .unwrap_or_else(|| format!("no-id-{}", incident_key(&diagnosis)));
    let failed = diagnosis.cause != Cause::None;
    let owner = triage(&diagnosis, &config.allowed_owners);

    let mut result = EventOutcome {
        event_id: event_id.clone(),
        cause: Some(diagnosis.cause),
        subject_mismatch: diagnosis.subject_mismatch.map(|k| k.as_str().to_owned()),
        confidence: serde_json::to_value(diagnosis.confidence)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
        evidence: diagnosis.evidence,
        enrichment_error: enrichment_error.clone(),
        ..EventOutcome::default()
    };

    let window = config.incident_window_seconds;
    let first = deps
        .state
        .first_sighting(&event_id, wall + 2 * window + 86_400)
        .await
        .map_err(HandlerError::State)?;
    result.duplicate = !first;

    // Incidents: failures, and successes from outside owners.
    let foreign_owner = match &owner {
        Triage::Foreign { owner } => Some(owner.clone()),
        Triage::Ours => None,
    };
    let alert_kind = match (failed, &foreign_owner) {
        (true, None) => Some(AlertKind::Incident),
        (true, Some(_)) => Some(AlertKind::Probe),
        (false, Some(_)) => Some(AlertKind::ForeignSuccess),
        (false, None) => None,
    };
    let mut pending_alert = None;
    // Spikes count jobs, not the retries of one job: a failure counts when it opens an incident.
    let mut opened_new_incident = false;
    if let Some(kind) = alert_kind {
        let key = incident_key(&diagnosis);
        let (incident, mut should_alert) = if first {
            let opened = Incident {
                id: format!("{key}-{now}"),
                opened_by: event_id.clone(),
                opened_at: now,
                until: now + window,
                attempts: 1,
                alerted: false,
            };
            if deps
                .state
                .open_incident(&key, &opened, now, wall.max(now) + window + 86_400)
                .await
                .map_err(HandlerError::State)?
            {
                opened_new_incident = true;
                (Some(opened), true)
            } else {
                (
                    deps.state.add_attempt(&key).await.map_err(HandlerError::State)?,
                    false,
                )
            }
        } else {
            let stored = deps.state.incident(&key).await.map_err(HandlerError::State)?;
            let retry_of_opener = stored
                .as_ref()
                .is_some_and(|i| i.opened_by == event_id && !i.alerted);
            (stored, retry_of_opener)
        };
        if let (AlertKind::Probe, Some(owner), true, true) = (kind, &foreign_owner, should_alert, first) {
            let token = format!("probe#{}", owner.to_ascii_lowercase());
            should_alert = deps
                .state
                .take_token(&token, now, config.probe_alert_interval_seconds)
                .await
                .map_err(HandlerError::State)?;
            if !should_alert {
                // Suppressed by the rate limit: settled, so a redelivery does not alert either.
                deps.state.mark_alerted(&key).await.map_err(HandlerError::State)?;
            }
        }
        if let Some(incident) = &incident {
            result.incident_id = Some(incident.id.clone());
            result.attempts = incident.attempts;
        }
        pending_alert = should_alert.then_some((kind, key, incident));
    }

    // Counters and metrics before any alert: if publishing fails, the redelivery finds
    // them done and only the alert is retried.
    let minute = now.div_euclid(60);
    let mut scopes = vec!["all".to_owned()];
    if role_exists {
        scopes.push(format!("role:{role_dimension}"));
    }
    if first {
        if failed && opened_new_incident {
            let horizon =
                wall.max(now) + config.spike.window_seconds * (config.spike.baseline_windows + 2) + 3600;
            let labels = vec![
                format!("role:{role_dimension}"),
                format!("cause:{}", diagnosis.cause.as_str()),
            ];
            for scope in &scopes {
                deps.state
                    .count_failure(scope, minute, &labels, horizon)
                    .await
                    .map_err(HandlerError::State)?;
            }
        }
        let foreign = foreign_owner.is_some();
        publish_metrics(
            deps,
            &metric_record(&diagnosis, &result, &role_dimension, &account, foreign, now),
        )
        .await;
    }

    if let Some((kind, key, incident)) = pending_alert {
        let severity = match kind {
            AlertKind::ForeignSuccess => Severity::Critical,
            AlertKind::Probe => Severity::Low,
            _ => Severity::High,
        };
        let alert = Alert {
            kind,
            severity,
            thread_id: incident.as_ref().map_or_else(|| key.clone(), |i| i.id.clone()),
            account_id: account.clone(),
            cause: Some(diagnosis.cause),
            attempts: incident.as_ref().map_or(1, |i| i.attempts),
            diagnosis: Some(diagnosis.clone()),
            spike: None,
        };
        deps.alerts.publish(&alert).await.map_err(HandlerError::Alert)?;
        deps.state.mark_alerted(&key).await.map_err(HandlerError::State)?;
        result.alerts.push(kind.as_str());
    }

    // Redeliveries check too: the first delivery may have failed before its spike alert.
    for scope in &scopes {
        if let Some(kind) = check_spike(deps, scope, &account, now).await? {
            result.alerts.push(kind);
        }
    }

    tracing::info!(
        event_id = %event_id,
        cause = diagnosis.cause.as_str(),
        subject_mismatch = diagnosis.subject_mismatch.map(|k| k.as_str()).unwrap_or(""),
        confidence = ?diagnosis.confidence,
        account = %account,
        role = %bounded(diagnosis.role_arn.as_deref().unwrap_or("-")),
        owner = %bounded(diagnosis.claims.owner.as_deref().unwrap_or("-")),
        repository = %bounded(diagnosis.claims.repository.as_deref().unwrap_or("-")),
        subject = %bounded(diagnosis.subject.as_deref().unwrap_or("-")),
        run_id = diagnosis.github_run_id.as_deref().unwrap_or("-"),
        incident = result.incident_id.as_deref().unwrap_or("-"),
        duplicate = result.duplicate,
        alerts = ?result.alerts,
        "diagnosis"
    );
    Ok(result)
}

async fn check_spike<A, M, L, S>(
    deps: &Deps<A, M, L, S>,
    scope: &str,
    account: &str,
    now: i64,
) -> Result<Option<&'static str>, HandlerError>
where
    L: AlertSink,
    S: StateStore,
{
    let config = &deps.config.spike;
    let (from, to) = config.minutes_needed(now);
    let counts = deps
        .state
        .failure_counts(scope, from, to)
        .await
        .map_err(HandlerError::State)?;
    let assessment = assess(&counts, now, config);
    let state = deps.state.spike_state(scope).await.map_err(HandlerError::State)?;
    let (action, next) = decide(state.as_ref(), &assessment, now, config);
    let Some(next) = next else { return Ok(None) };
    if !deps
        .state
        .save_spike_state(scope, &next)
        .await
        .map_err(HandlerError::State)?
    {
        return Ok(None);
    }
    let kind = match action {
        SpikeAction::Alert => AlertKind::Spike,
        SpikeAction::Recover => AlertKind::Recovery,
        SpikeAction::Nothing => return Ok(None),
    };
    let alert = Alert {
        kind,
        severity: if kind == AlertKind::Spike {
            Severity::High
        } else {
            Severity::Info
        },
        // A recovery joins the thread of the spike it ends.
        thread_id: format!(
            "spike-{scope}-{}",
            if kind == AlertKind::Recovery {
                state.as_ref().map_or(next.since, |s| s.since)
            } else {
                next.since
            }
        ),
        account_id: account.to_owned(),
        cause: None,
        attempts: assessment.failures,
        diagnosis: None,
        spike: Some(SpikeSummary {
            scope: scope.to_owned(),
            window_seconds: config.window_seconds,
            failures: assessment.failures,
            baseline: assessment.baseline,
            top_roles: top_labels(&assessment.labels, "role:", 5),
            top_causes: top_labels(&assessment.labels, "cause:", 5),
        }),
    };
    if let Err(error) = deps.alerts.publish(&alert).await {
        // Give the decision back, so the retry of this event makes it again and alerts.
        let undo = SpikeState {
            version: next.version + 1,
            ..state.unwrap_or_default()
        };
        if let Err(undo_error) = deps.state.save_spike_state(scope, &undo).await {
            tracing::error!(error = %undo_error, scope, "spike state not rolled back");
        }
        return Err(HandlerError::Alert(error));
    }
    Ok(Some(kind.as_str()))
}

fn metric_record(
    d: &Diagnosis,
    result: &EventOutcome,
    role: &str,
    account: &str,
    foreign: bool,
    now: i64,
) -> MetricRecord {
    let mut counts = vec![if d.cause == Cause::None {
        (MetricName::AssumeSuccesses, 1.0)
    } else {
        (MetricName::AssumeFailures, 1.0)
    }];
    if foreign && d.cause != Cause::None {
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
            ("owner".to_owned(), text(d.claims.owner.as_deref())),
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
