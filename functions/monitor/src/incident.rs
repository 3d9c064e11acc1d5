//! A failure, or a stranger's success: its incident, and the opener's alert.

use diagnosis::alert::AlertKind;
use diagnosis::change::ChangeRecord;
use diagnosis::claims::Claims;
use diagnosis::plan::change as changes;
use diagnosis::plan::incident::{self as decide, Opener};
use diagnosis::plan::{lease_until, metric, EventPlan, Policy, Times};
use diagnosis::ports::{AccountState, AlertSink, Incident, MetricSink, Sighting, StateStore};
use diagnosis::Diagnosis;

use crate::handler::{IncidentWork, Seen};
use crate::{Deps, EventOutcome, HandlerError};

enum Delivered {
    Sent,
    HeldBack,
    /// SNS refused it for good (too large, not authorised): logged, not retried.
    Refused,
}

impl<A: AccountState, M: MetricSink, L: AlertSink, S: StateStore> Deps<A, M, L, S> {
    /// One conditional write: the delivery opens the incident, adds an attempt, or is
    /// found a redelivery.
    async fn sight(&self, event: &EventPlan, t: Times, policy: &Policy) -> Result<Sighting, HandlerError> {
        self.state
            .sight_incident(
                &event.key,
                &event.event_id,
                &decide::opening(event, policy, t.now),
                t.now,
                lease_until(t.wall),
                policy.incident_expires(t),
                self.memo.incident_open(&event.key, t.now),
            )
            .await
            .map_err(HandlerError::State)
    }

    /// The account's recent IAM changes, for an incident alert; a failed read is logged:
    /// the alert goes out without its change note.
    async fn changes_for(&self, account: &str, t: Times, policy: &Policy) -> Vec<ChangeRecord> {
        let since = changes::incident_since(t.now, policy.change_window_seconds);
        match self.state.recent_changes(account, since).await {
            Ok(recent) => recent,
            Err(error) => {
                tracing::warn!(error = %error, "recent IAM changes not read; the alert names none");
                Vec::new()
            }
        }
    }

    /// Records the delivery against its incident (one conditional write), counts it, and
    /// has the opener send the alert. An incident that opens reads the account's recent
    /// IAM changes (one read) first: when one of its role or provider is newer than this
    /// instance's cache, the cache is dropped and the event diagnosed again, so the alert
    /// is against the policy as it is now.
    pub(crate) async fn sight_incident(
        &self,
        mut kind: AlertKind,
        claims: &Claims,
        seen: &mut Seen,
        result: &mut EventOutcome,
        t: Times,
        policy: &Policy,
    ) -> Result<IncidentWork, HandlerError> {
        let mut sighting = self.sight(&seen.event, t, policy).await?;
        let mut recent = None;
        if matches!(sighting, Sighting::Opened(_)) && kind == AlertKind::Incident {
            let changes = self.changes_for(&seen.event.account, t, policy).await;
            let role = claims.role_name.as_deref();
            let provider = claims.provider.as_ref().map(|p| p.url.as_str());
            let stale = changes::stale_for(&changes, role, provider, t.now, |id| self.memo.change_seen(id));
            if !stale.is_empty() {
                for record in &stale {
                    let change = &record.change;
                    match (&change.role, &change.provider) {
                        (Some(role), _) => drop(self.accounts.forget_role(&change.account, role)),
                        (None, Some(url)) => self.accounts.forget_provider(&change.account, url),
                        _ => {}
                    }
                    self.memo.remember_change(&change.event_id);
                }
                let fresh = self.see(claims).await;
                tracing::info!(
                    changes = stale.len(),
                    "IAM changed since the cached snapshot; diagnosed again"
                );
                if fresh.event.key != seen.event.key {
                    // Opened against a stale policy: settled unsent, and the delivery
                    // recorded under the incident of its new diagnosis.
                    self.state
                        .finish_alert(&seen.event.key)
                        .await
                        .map_err(HandlerError::State)?;
                    *seen = fresh;
                    sighting = self.sight(&seen.event, t, policy).await?;
                } else {
                    *seen = fresh;
                }
                kind = seen.event.kind.unwrap_or(kind);
            }
            recent = Some(changes);
        }
        let (event, diagnosis) = (&seen.event, &seen.diagnosis);
        result.enrichment_error = seen.enrichment_error.clone();
        let incident = sighting.incident();
        self.memo.remember_incident(&event.key, incident.until, t.now);
        result.incident_id = Some(incident.id.clone());
        result.attempts = incident.attempts;
        result.duplicate = matches!(sighting, Sighting::Duplicate(_));
        if !result.duplicate {
            let record = metric::event_record(
                event,
                diagnosis,
                result.enrichment_error.is_some(),
                result.incident_id.as_deref(),
                t.now,
            );
            self.publish_metrics(&record).await;
        }
        let opener = match decide::opener(&sighting, &event.event_id) {
            Opener::Yes => true,
            Opener::No => false,
            Opener::IfClaimed => {
                let claim = self
                    .state
                    .claim_alert(&event.key, &event.event_id, t.wall, lease_until(t.wall))
                    .await
                    .map_err(HandlerError::State)?;
                decide::after_claim(claim).map_err(|_| HandlerError::AlertInFlight(incident.id.clone()))?
            }
        };
        let mut work = IncidentWork {
            redelivered_opener: opener && result.duplicate,
            ..IncidentWork::default()
        };
        if opener {
            work.counters_changed = event.failed;
            let delivered = self
                .alert_incident(kind, claims, event, incident, diagnosis, recent, t, policy)
                .await?;
            match delivered {
                Delivered::Sent => result.alerts.push(kind.as_str()),
                Delivered::HeldBack => result.held_back.push(kind.as_str()),
                Delivered::Refused => {}
            }
            work.settle = matches!(delivered, Delivered::Sent | Delivered::Refused);
        }
        Ok(work)
    }

    /// The opener's work: count the failure, pass the rate limits, publish. A sent or
    /// refused alert is settled by the caller (`finish_alert`); a held-back one here. Each
    /// step is idempotent per incident, so a redelivery may run it again.
    #[allow(clippy::too_many_arguments)]
    async fn alert_incident(
        &self,
        kind: AlertKind,
        claims: &Claims,
        event: &EventPlan,
        incident: &Incident,
        diagnosis: &Diagnosis,
        recent: Option<Vec<ChangeRecord>>,
        t: Times,
        policy: &Policy,
    ) -> Result<Delivered, HandlerError> {
        let count = async {
            match decide::failure_count(event, diagnosis, incident, policy, t) {
                Some(count) => self.state.count_failure(&count).await,
                None => Ok(()),
            }
        };
        let probe_token = async {
            match decide::probe_token_key(kind, diagnosis) {
                Some(key) => {
                    self.state
                        .take_token(&key, &incident.id, t.now, policy.probe_alert_interval_seconds)
                        .await
                }
                None => Ok(true),
            }
        };
        let (window, window_expires) = decide::rate_window(t.wall);
        let rate_limited = decide::rate_limited(kind);
        let rate = async {
            match rate_limited {
                true => self.state.count_alert(window, &incident.id, window_expires).await,
                false => Ok(0),
            }
        };
        let previous_window = decide::previous_window(window);
        let read_previous = decide::read_previous_alongside(kind, window, self.memo.alert_window());
        let previous = async {
            match read_previous {
                true => self.state.alert_count(previous_window).await.map(Some),
                false => Ok(None),
            }
        };
        let (counted, probe_token, in_window, previous) = tokio::join!(count, probe_token, rate, previous);
        counted.map_err(HandlerError::State)?;
        let probe_token = probe_token.map_err(HandlerError::State)?;
        let in_window = in_window.map_err(HandlerError::State)?;
        if rate_limited {
            self.memo.remember_alert_window(window);
        }

        let previous = match decide::needs_previous_count(policy, in_window) {
            true => Some(match previous.map_err(HandlerError::State)? {
                Some(previous) => previous,
                None => self
                    .state
                    .alert_count(previous_window)
                    .await
                    .map_err(HandlerError::State)?,
            }),
            false => None,
        };
        let notes = decide::rate_notes(policy, in_window, previous);
        if decide::held_back(policy, probe_token, in_window) {
            // Settled: a redelivery does not alert either.
            self.state
                .finish_alert(&event.key)
                .await
                .map_err(HandlerError::State)?;
            self.publish_metrics(&metric::held_back_record(event, kind, &incident.id, t.now))
                .await;
            return Ok(Delivered::HeldBack);
        }
        let mut alert = decide::alert(kind, event, incident, diagnosis, notes);
        if kind == AlertKind::Incident {
            let recent = match recent {
                Some(recent) => recent,
                None => self.changes_for(&event.account, t, policy).await,
            };
            let provider = claims.provider.as_ref().map(|p| p.url.as_str());
            alert.changes = changes::incident_notes(
                &recent,
                claims.role_name.as_deref(),
                provider,
                t.now,
                policy.change_window_seconds,
            );
        }
        match self.alerts.publish(&alert).await {
            Ok(()) => Ok(Delivered::Sent),
            Err(error) if error.retryable => {
                if let Err(release) = self.state.release_alert(&event.key).await {
                    tracing::warn!(error = %release, "alert lease not released; the redelivery waits for it");
                }
                Err(HandlerError::Alert(error))
            }
            Err(error) => {
                tracing::error!(error = %error, incident = %incident.id, "alert refused by the topic; not retried");
                Ok(Delivered::Refused)
            }
        }
    }
}
