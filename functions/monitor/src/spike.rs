//! The spike judgement against the state: read the counters and the state, save the
//! plan's step, publish the alert it carries, then clear it.

use diagnosis::plan::spike::{self as decide, SPIKE_SCOPE};
use diagnosis::plan::{spike_state_expires, Times};
use diagnosis::ports::{AlertSink, StateStore};
use diagnosis::spike::{SpikeConfig, SpikeState};

use crate::{Deps, HandlerError};

impl<A, M, L: AlertSink, S: StateStore> Deps<A, M, L, S> {
    /// The kind of the spike or recovery alert this event sent, if any.
    pub(crate) async fn check_spike(
        &self,
        account: &str,
        t: Times,
        config: &SpikeConfig,
    ) -> Result<Option<&'static str>, HandlerError> {
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
        let alert = decide::alert(pending, account);
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

    /// True when this save won.
    async fn save_spike(&self, state: &SpikeState, expires: i64) -> Result<bool, HandlerError> {
        self.state
            .save_spike_state(SPIKE_SCOPE, state, expires)
            .await
            .map_err(HandlerError::State)
    }
}
