//! An IAM change of a role or OIDC provider: the cached one is forgotten at once, the
//! change recorded (with the policy before it when known), and a change that widens trust
//! alerts once, rate-limited per role or provider.

use diagnosis::change::{ChangeRecord, TrustChange};
use diagnosis::plan::change::{self as decide};
use diagnosis::plan::incident::{after_claim, opener, Opener};
use diagnosis::plan::{bounded, lease_until};
use diagnosis::ports::{AccountState, AlertSink, StateStore};

use crate::{ChangeOutcome, Deps, HandlerError};

impl<A: AccountState, M, L: AlertSink, S: StateStore> Deps<A, M, L, S> {
    pub(crate) async fn process_change(&self, change: &TrustChange) -> Result<ChangeOutcome, HandlerError> {
        let wall = (self.clock)();
        let mut result = ChangeOutcome {
            event_id: change.event_id.clone(),
            action: change.action.as_str(),
            ..ChangeOutcome::default()
        };
        if !change.concerns_web_identity() {
            result.ignored = true;
            tracing::info!(event_id = %bounded(&change.event_id), action = change.action.as_str(), "IAM change of a role without web identity ignored");
            return Ok(result);
        }
        let cached = match (&change.role, &change.provider) {
            (Some(role), _) => self.accounts.forget_role(&change.account, role),
            (None, Some(provider)) => {
                self.accounts.forget_provider(&change.account, provider);
                None
            }
            _ => None,
        };
        self.memo.remember_change(&change.event_id);

        let recent = self
            .state
            .recent_changes(&change.account, decide::history_since(change))
            .await
            .map_err(HandlerError::State)?;
        let record = match decide::recorded(change, &recent) {
            Some(stored) => {
                result.duplicate = true;
                stored.clone()
            }
            None => {
                let before = decide::policy_before(change, &recent, cached.as_ref());
                let record = ChangeRecord::judge(change.clone(), before, &self.config.owners);
                let first = self
                    .state
                    .record_change(&record, decide::change_expires(change.at, wall))
                    .await
                    .map_err(HandlerError::State)?;
                result.duplicate = !first;
                record
            }
        };
        result.widening = !record.widening.is_empty();
        if result.widening {
            self.alert_change(&record, wall, &mut result).await?;
        }
        tracing::info!(
            event_id = %bounded(&change.event_id),
            action = change.action.as_str(),
            account = %bounded(&change.account),
            role = %bounded(change.role.as_deref().unwrap_or("-")),
            provider = %bounded(change.provider.as_deref().unwrap_or("-")),
            actor = %bounded(change.actor.as_deref().unwrap_or("-")),
            summary = %bounded(&record.summary()),
            widening = result.widening,
            duplicate = result.duplicate,
            alerts = ?result.alerts,
            held_back = ?result.held_back,
            "iam change"
        );
        Ok(result)
    }

    /// The widening change's alert, through the incident machinery keyed by its event id:
    /// the first delivery holds it, a redelivery takes it over only while it is not out.
    async fn alert_change(
        &self,
        record: &ChangeRecord,
        wall: i64,
        result: &mut ChangeOutcome,
    ) -> Result<(), HandlerError> {
        let change = &record.change;
        let key = decide::alert_key(change);
        let opening = decide::alert_incident(change, &key);
        let sighting = self
            .state
            .sight_incident(
                &key,
                &change.event_id,
                &opening,
                change.at,
                lease_until(wall),
                decide::change_expires(change.at, wall),
                false,
            )
            .await
            .map_err(HandlerError::State)?;
        let incident = sighting.incident().clone();
        let sends = match opener(&sighting, &change.event_id) {
            Opener::Yes => true,
            Opener::No => false,
            Opener::IfClaimed => {
                let claim = self
                    .state
                    .claim_alert(&key, &change.event_id, wall, lease_until(wall))
                    .await
                    .map_err(HandlerError::State)?;
                after_claim(claim).map_err(|_| HandlerError::AlertInFlight(incident.id.clone()))?
            }
        };
        if !sends {
            return Ok(());
        }
        let kind = diagnosis::alert::AlertKind::TrustChange.as_str();
        let token = self
            .state
            .take_token(
                &decide::token_key(change),
                &incident.id,
                change.at,
                self.config.probe_alert_interval_seconds,
            )
            .await
            .map_err(HandlerError::State)?;
        if !token {
            result.held_back.push(kind);
        } else {
            match self.alerts.publish(&decide::alert(record, &incident)).await {
                Ok(()) => result.alerts.push(kind),
                Err(error) if error.retryable => {
                    if let Err(release) = self.state.release_alert(&key).await {
                        tracing::warn!(error = %release, "trust-change alert lease not released; the redelivery waits for it");
                    }
                    return Err(HandlerError::Alert(error));
                }
                Err(error) => {
                    tracing::error!(error = %error, incident = %incident.id, "trust-change alert refused by the topic; not retried")
                }
            }
        }
        self.state.finish_alert(&key).await.map_err(HandlerError::State)
    }
}
