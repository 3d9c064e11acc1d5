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
//! 6. An IAM change of a role or provider drops the cached one and is recorded; one that
//!    widens trust alerts (`trust-change`). An incident that opens reads the account's
//!    recent changes: it is diagnosed again if its snapshot predates one, and its alert
//!    names them, as do spike and recovery alerts.
//!
//! Every decision is `diagnosis::plan`'s; this crate asks it, calls the ports and feeds
//! the answers back.

mod change;
pub mod contract;
mod handler;
mod incident;
mod memo;
mod spike;
mod success;

use diagnosis::metrics::MetricRecord;
use diagnosis::owner::Trust;
use diagnosis::plan::Policy;
use diagnosis::ports::{MetricSink, PortError};
use diagnosis::Cause;
use lambda_runtime::Diagnostic;
use oidc_watch_aws::config::Config;
use serde::Serialize;

pub use handler::handle;
pub use memo::Memo;

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

impl<A, M: MetricSink, L, S> Deps<A, M, L, S> {
    fn policy(&self) -> Policy {
        let config = &self.config;
        Policy {
            incident_window_seconds: config.incident_window_seconds,
            spike: config.spike,
            probe_alert_interval_seconds: config.probe_alert_interval_seconds,
            alerts_per_hour: config.alerts_per_hour,
            observed_subject_days: config.observed_subject_days,
            change_window_seconds: config.change_window_seconds,
        }
    }

    /// Metrics never fail the event: a lost datum is better than a retried alert.
    async fn publish_metrics(&self, record: &MetricRecord) {
        if let Err(error) = self.metrics.publish(record).await {
            tracing::error!(error = %error, "metrics not published");
        }
    }
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
    /// IAM changes of roles and OIDC providers; absent when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeOutcome>,
}

/// What one IAM change did.
#[derive(Debug, Default, Serialize)]
pub struct ChangeOutcome {
    pub event_id: String,
    pub action: &'static str,
    /// A role without web identity: nothing recorded.
    pub ignored: bool,
    /// Recorded before: a redelivery.
    pub duplicate: bool,
    pub widening: bool,
    pub alerts: Vec<&'static str>,
    pub held_back: Vec<&'static str>,
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
