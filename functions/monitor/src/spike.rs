//! The spike judgement against the state: read the counters and the state, save the
//! plan's step, publish the alert it carries, then clear it.

use diagnosis::change::ChangeNote;
use diagnosis::plan::change as changes;
use diagnosis::plan::spike::{self as decide, SPIKE_SCOPE};
use diagnosis::plan::{spike_state_expires, Policy, Times};
use diagnosis::ports::{AlertSink, StateStore};
use diagnosis::spike::{MinuteCount, PendingSpikeAlert, SpikeState};

use crate::{Deps, HandlerError};

impl<A, M, L: AlertSink, S: StateStore> Deps<A, M, L, S> {
    /// The kind of the spike or recovery alert this event sent, if any.
    pub(crate) async fn check_spike(
        &self,
        account: &str,
        t: Times,
        policy: &Policy,
    ) -> Result<Option<&'static str>, HandlerError> {
        let config = &policy.spike;
        let (from, to) = config.minutes_needed(t.now);
        let (counts, stored) = tokio::join!(
            self.state.failure_counts(from, to),
            self.state.spike_state(SPIKE_SCOPE)
        );
        let counts = counts.map_err(HandlerError::State)?;
        let stored = stored.map_err(HandlerError::State)?;
        let step = decide::step(stored.as_ref(), &counts, t, config);
        self.memo.remember_spike_active(step.may_be_on);
        let Some(state) = step.save else { return Ok(None) };
        let expires = spike_state_expires(t.wall);
        if !self.save_spike(&state, expires).await? {
            return Ok(None);
        }
        let Some(pending) = &state.pending else {
            return Ok(None);
        };
        // Saved as pending first: a failed publish leaves it for the next delivery.
        let mut alert = decide::alert(pending, account);
        alert.changes = self.spike_changes(pending, &counts, account, t, policy).await;
        match self.alerts.publish(&alert).await {
            Ok(()) => {}
            Err(error) if error.retryable => {
                if let Err(release) = self
                    .state
                    .save_spike_state(SPIKE_SCOPE, &decide::released(&state), expires)
                    .await
                {
                    tracing::warn!(error = %release, "spike alert lease not released; the next delivery waits for it");
                }
                return Err(HandlerError::Alert(error));
            }
            Err(error) => tracing::error!(error = %error, "spike alert refused by the topic; not retried"),
        }
        let done = decide::published(&state);
        if !self.save_spike(&done, expires).await? {
            tracing::warn!("spike state changed while its alert went out");
        }
        self.memo.remember_spike_active(done.spiking);
        Ok(Some(alert.kind.as_str()))
    }

    /// The IAM changes a spike's top roles had shortly before it, or that a recovery's
    /// roles had while the spike lasted; a failed read is logged, never fails the alert.
    async fn spike_changes(
        &self,
        pending: &PendingSpikeAlert,
        counts: &[MinuteCount],
        account: &str,
        t: Times,
        policy: &Policy,
    ) -> Vec<ChangeNote> {
        let since = pending.thread_since;
        let window = policy.change_window_seconds;
        let recent = match self.state.recent_changes(account, since - window).await {
            Ok(recent) => recent,
            Err(error) => {
                tracing::warn!(error = %error, "recent IAM changes not read; the spike alert names none");
                return Vec::new();
            }
        };
        if pending.recovery {
            let roles = changes::roles_between(counts, since, t.now);
            changes::recovery_notes(&recent, &roles, since, t.now)
        } else {
            let roles: Vec<String> = pending
                .summary
                .top_roles
                .iter()
                .map(|(role, _)| role.clone())
                .filter(|role| role != "-")
                .collect();
            changes::spike_notes(&recent, &roles, since, t.now, window)
        }
    }

    /// True when this save won.
    async fn save_spike(&self, state: &SpikeState, expires: i64) -> Result<bool, HandlerError> {
        self.state
            .save_spike_state(SPIKE_SCOPE, state, expires)
            .await
            .map_err(HandlerError::State)
    }
}
