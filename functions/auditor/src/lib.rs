//! oidc-auditor: on a schedule, every trust policy and OIDC provider of the configured
//! accounts audited (`diagnosis::audit`), compared with the findings of the previous run
//! (kept in the state table), and one digest of what is new and what was resolved
//! published to the alert topic; nothing when nothing changed.
//!
//! One account that cannot be read (the read role denied, IAM unreachable) does not stop
//! the others: it is named in the output and the digest, and its previous findings stay
//! as they were, neither resolved nor replaced. The digest is published before any
//! findings are saved, so a run that fails after reading is retried whole, and the retry
//! publishes the same digest (same id: receivers deduplicate) until the saves are done.
//! When no account at all could be read the invocation fails, so the errors alarm says so.

pub mod config;
pub mod contract;
mod handler;
pub mod ports;

use diagnosis::ports::PortError;
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};

pub use config::Config;
pub use handler::handle;

/// The `source` of the EventBridge Scheduler payload infra/template.yaml sends.
pub const SCHEDULE_SOURCE: &str = "oidc-watch.audit-schedule";

/// The schedule's payload: `{"source": "oidc-watch.audit-schedule"}`. An empty payload,
/// `{}` or `null` (a manual invoke) runs the audit too; any other `source` is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ScheduleEvent {
    #[serde(default)]
    pub source: Option<String>,
}

/// Everything the handler needs, built once at init.
pub struct Deps<R, F, S, A> {
    pub config: Config,
    pub accounts: R,
    pub findings: F,
    /// The monitor's record of successful subjects.
    pub successes: S,
    pub alerts: A,
    /// Epoch seconds; injected so tests can move time.
    pub clock: Box<dyn Fn() -> i64 + Send + Sync>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("not an audit schedule event: {0}")]
    NotSchedule(String),
    #[error("state table: {0}")]
    State(PortError),
    #[error("alert topic: {0}")]
    Alert(PortError),
    /// Every configured account failed to read: nothing was audited (the errors alarm
    /// fires; the answer's accounts are in the log).
    #[error("no account could be read: {0}")]
    NoAccountRead(String),
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match &error {
            HandlerError::NotSchedule(_) => "NotAuditSchedule",
            HandlerError::State(_) => "Retryable.StateStore",
            HandlerError::Alert(_) => "Retryable.AlertTopic",
            HandlerError::NoAccountRead(_) => "Retryable.NoAccountRead",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What one run did (docs/contracts.md, "oidc-auditor").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    pub accounts: Vec<AccountOutcome>,
    /// A digest went to the alert topic.
    pub published: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccountOutcome {
    /// The account's ID (as configured; IAM's answer for the function's own account).
    pub account: String,
    pub findings: usize,
    pub new: usize,
    pub resolved: usize,
    /// Why the account was not audited; `null` when it was.
    pub error: Option<String>,
}
