//! The handler: each record of the envelope through the plan, and its one log line.

use diagnosis::claims::Claims;
use diagnosis::plan::{self, bounded, metric, spike::check_needed, EventPlan, Times};
use diagnosis::ports::{AccountState, AlertSink, MetricSink, StateStore};
use diagnosis::{diagnose_with, read_input, Diagnosis, InputItem, Ownership};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::{Deps, EventOutcome, HandlerError, Outcome};

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
                outcome.events.push(deps.process(&claims).await?);
            }
            Ok(InputItem::Skipped {
                change: Some(change), ..
            }) => outcome.changes.push(deps.process_change(&change).await?),
            other => {
                let envelope_id = event.payload.get("id").and_then(Value::as_str).unwrap_or("-");
                let reason = match other {
                    Ok(InputItem::Skipped { event_name, .. }) => {
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
                deps.publish_metrics(&metric::malformed_record(envelope_id, (deps.clock)()))
                    .await;
            }
        }
    }
    if outcome.events.is_empty() && outcome.changes.is_empty() && outcome.malformed == 0 {
        outcome.malformed += 1;
        tracing::warn!("empty event acknowledged");
    }
    Ok(outcome)
}

/// What an event's incident left for the end of the event.
#[derive(Default)]
pub(crate) struct IncidentWork {
    /// The opener counted a failure for spikes.
    pub counters_changed: bool,
    /// The opener's redelivery: a judgement it began may be undone.
    pub redelivered_opener: bool,
    /// The alert is out or refused: settle it, so no redelivery sends it.
    pub settle: bool,
}

/// One event, diagnosed: what the rest of its processing works from. An incident that
/// finds the snapshot stale (an IAM change it had not seen) replaces it.
pub(crate) struct Seen {
    pub diagnosis: Diagnosis,
    pub event: EventPlan,
    pub enrichment_error: Option<String>,
}

impl<A: AccountState, M: MetricSink, L: AlertSink, S: StateStore> Deps<A, M, L, S> {
    /// The role and providers (IAM, cached), who is ours, the diagnosis and its plan.
    pub(crate) async fn see(&self, claims: &Claims) -> Seen {
        let mut enrichment_error = None;
        let expected_provider = plan::expected_provider(claims);
        let snapshot = match (claims.account_id.as_deref(), claims.role_name.as_deref()) {
            (Some(account), Some(role)) => match self
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
            .and_then(|account| self.memo.owners_for(account, snapshot.as_ref()));
        let diagnosis = diagnose_with(
            claims.clone(),
            snapshot.as_ref(),
            Ownership {
                owners: &self.config.owners,
                trusted: trusted.as_ref(),
            },
        );
        let event = EventPlan::of(claims, &diagnosis, snapshot.as_ref());
        Seen {
            diagnosis,
            event,
            enrichment_error,
        }
    }

    async fn process(&self, claims: &Claims) -> Result<EventOutcome, HandlerError> {
        let policy = self.policy();
        let t = Times::of(claims, (self.clock)());
        let expected_provider = plan::expected_provider(claims);
        let mut seen = self.see(claims).await;
        let mut result = EventOutcome {
            enrichment_error: seen.enrichment_error.clone(),
            ..EventOutcome::default()
        };

        let work = match seen.event.kind {
            None => {
                let (event, diagnosis) = (&seen.event, &seen.diagnosis);
                let success = event.success(claims, expected_provider.as_deref(), t, &policy);
                self.record_success(event, success, diagnosis, &mut result, t, &policy)
                    .await?;
                IncidentWork::default()
            }
            Some(kind) => {
                self.sight_incident(kind, claims, &mut seen, &mut result, t, &policy)
                    .await?
            }
        };
        let Seen { diagnosis, event, .. } = &seen;
        result.event_id = event.event_id.clone();
        result.cause = Some(diagnosis.cause);
        result.subject_mismatch = diagnosis.subject_mismatch.map(|k| k.as_str().to_owned());
        result.confidence = serde_json::to_value(diagnosis.confidence)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        result.trust = Some(diagnosis.trust);
        result.evidence = diagnosis.evidence;
        result.enrichment_error = seen.enrichment_error.clone();

        // Settling the incident's alert and the spike check touch different items: one
        // round trip for both.
        let check = check_needed(
            work.counters_changed,
            work.redelivered_opener,
            self.memo.spike_active(),
        );
        let (settled, spiked) = tokio::join!(
            async {
                match work.settle {
                    true => self.state.finish_alert(&event.key).await,
                    false => Ok(()),
                }
            },
            async {
                match check {
                    true => self.check_spike(&event.account, t, &policy).await,
                    false => Ok(None),
                }
            }
        );
        settled.map_err(HandlerError::State)?;
        if let Some(kind) = spiked? {
            result.alerts.push(kind);
        }

        tracing::info!(
            event_id = %event.event_id,
            cause = diagnosis.cause.as_str(),
            subject_mismatch = diagnosis.subject_mismatch.map(|k| k.as_str()).unwrap_or(""),
            confidence = ?diagnosis.confidence,
            trust = diagnosis.trust.as_str(),
            account = %event.account,
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
}
