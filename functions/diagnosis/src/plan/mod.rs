//! The monitor's decisions, as plain functions of what the event and the state store
//! said. oidc-monitor asks the plan, calls the ports, and feeds the answers back:
//!
//! - [`EventPlan`]: the incident key, the event id, the metric dimensions and the alert
//!   kind of one diagnosed event;
//! - [`incident`]: the opening incident, who holds its alert, the failure counted for
//!   spikes, the probe and rate limits, the alert and its notes;
//! - [`metric`]: what each event, held-back alert and malformed record counts;
//! - [`spike`]: whether to judge spikes, the step to save, the alert it carries;
//! - [`change`]: IAM changes: the policy before, the trust-change alert, the notes of
//!   later alerts, the snapshots they make stale;
//! - [`Policy`]: the configured limits, and every item lifetime and lease.

pub mod change;
pub mod incident;
pub mod metric;
pub mod spike;

use crate::alert::{incident_key, AlertKind, Severity};
use crate::claims::Claims;
use crate::metrics::UNKNOWN_DIMENSION;
use crate::owner::Trust;
use crate::ports::Success;
use crate::spike::SpikeConfig;
use crate::{AccountSnapshot, Cause, Diagnosis};

pub const DAY: i64 = 86_400;
/// How long a delivery owns an alert it is publishing before another may take it over.
pub const ALERT_LEASE_SECONDS: i64 = 30;
/// Spike state outlives any cooldown; it expires a week after its last change.
pub const SPIKE_STATE_LIFETIME: i64 = 7 * DAY;
/// The global alert-rate window.
pub const ALERT_WINDOW_SECONDS: i64 = 3600;
/// How long items outlive the window they serve, so a late redelivery still finds them.
pub const REDELIVERY_MARGIN: i64 = DAY;
/// How long failure counters outlive the spike judgements that read them.
pub const COUNTER_MARGIN_SECONDS: i64 = 3600;
/// How far ahead of the wall clock an event time may be before it is not believed.
pub const MAX_CLOCK_SKEW: i64 = 300;
/// Subjects and similar strings logged or counted beyond this many characters are cut.
pub const MAX_LOGGED: usize = 512;

/// `value` cut after [`MAX_LOGGED`] characters, marked with `…`.
pub fn bounded(value: &str) -> String {
    match value.char_indices().nth(MAX_LOGGED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

/// The configured limits the decisions depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub incident_window_seconds: i64,
    pub spike: SpikeConfig,
    pub probe_alert_interval_seconds: i64,
    pub alerts_per_hour: u64,
    /// 0: no record of successful subjects is kept.
    pub observed_subject_days: i64,
    /// How long after an IAM change of a role or provider its alerts name the change.
    pub change_window_seconds: i64,
}

/// When an event happened, twice: windows (incidents, spike minutes) run on the event's
/// own time, since CloudTrail delivers minutes late and what matters is when the jobs ran;
/// item lifetimes and leases run on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// The event's `eventTime`, or the wall clock when it is missing or in the future.
    pub now: i64,
    pub wall: i64,
}

impl Times {
    pub fn of(claims: &Claims, wall: i64) -> Times {
        let now = claims
            .event_time
            .as_deref()
            .and_then(crate::evaluate::epoch_seconds)
            .filter(|t| *t <= wall + MAX_CLOCK_SKEW)
            .unwrap_or(wall);
        Times { now, wall }
    }

    fn latest(self) -> i64 {
        self.wall.max(self.now)
    }
}

/// Every lifetime (epoch seconds at which an item may go) and lease of the monitor's state.
impl Policy {
    /// `event#<id>`: a success of our own jobs, recorded to find redeliveries.
    pub fn sighting_expires(&self, t: Times) -> i64 {
        t.wall + 2 * self.incident_window_seconds + REDELIVERY_MARGIN
    }

    /// `incident#<key>`: the window, and the margin for a late redelivery.
    pub fn incident_expires(&self, t: Times) -> i64 {
        t.latest() + self.incident_window_seconds + REDELIVERY_MARGIN
    }

    /// Until when an incident opened at `now` is open.
    pub fn incident_until(&self, now: i64) -> i64 {
        now + self.incident_window_seconds
    }

    /// A per-minute failure counter: as long as a spike judgement reads its minute.
    pub fn counter_expires(&self, t: Times) -> i64 {
        t.latest() + self.spike.window_seconds * (self.spike.baseline_windows + 2) + COUNTER_MARGIN_SECONDS
    }

    /// A role's record of a successful subject, after its last success.
    pub fn success_expires(&self, t: Times) -> i64 {
        t.latest() + self.observed_subject_days * DAY
    }
}

/// Until when a delivery that takes an alert (incident or spike) at `wall` holds it.
pub fn lease_until(wall: i64) -> i64 {
    wall + ALERT_LEASE_SECONDS
}

/// The spike state saved at `wall`.
pub fn spike_state_expires(wall: i64) -> i64 {
    wall + SPIKE_STATE_LIFETIME
}

/// The alert-rate window holding `wall`, by its start.
pub fn alert_window(wall: i64) -> i64 {
    wall.div_euclid(ALERT_WINDOW_SECONDS) * ALERT_WINDOW_SECONDS
}

/// The alert-rate count of the window starting at `window`: read by the next window's
/// first alert, then a margin.
pub fn alert_window_expires(window: i64) -> i64 {
    window + ALERT_WINDOW_SECONDS + REDELIVERY_MARGIN
}

/// What one diagnosed event is, for the state, the metrics and the alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPlan {
    /// [`incident_key`]: the retries of one job share it.
    pub key: String,
    /// The event's id, or one derived from the key when it has none.
    pub event_id: String,
    /// The account dimension, or `-`.
    pub account: String,
    /// IAM's own spelling of the role, when IAM has it: case variants of one role are one role.
    pub canonical_role: Option<String>,
    /// The role dimension: the canonical role, or `-`.
    pub role: String,
    pub failed: bool,
    /// The alert its incident sends; `None`: a success of one of our jobs, no incident.
    pub kind: Option<AlertKind>,
}

impl EventPlan {
    pub fn of(claims: &Claims, diagnosis: &Diagnosis, snapshot: Option<&AccountSnapshot>) -> EventPlan {
        let canonical_role = match (snapshot, claims.role_name.as_deref()) {
            (Some(s), Some(name)) => s.role(name).map(|r| r.name.clone()),
            _ => None,
        };
        let key = incident_key(diagnosis);
        let event_id = diagnosis
            .event_id
            .clone()
            .unwrap_or_else(|| format!("no-id-{key}"));
        let failed = diagnosis.cause != Cause::None;
        EventPlan {
            event_id,
            account: diagnosis
                .account_id
                .clone()
                .unwrap_or_else(|| UNKNOWN_DIMENSION.to_owned()),
            role: canonical_role
                .clone()
                .unwrap_or_else(|| UNKNOWN_DIMENSION.to_owned()),
            canonical_role,
            failed,
            kind: alert_kind(failed, diagnosis.trust),
            key,
        }
    }

    /// A success of one of our jobs, for the role's record of what works (`oidc-watch
    /// impact --observed`); `None` when the record is off, the role unknown to IAM or the
    /// subject not recordable.
    pub fn success<'a>(
        &'a self,
        claims: &'a Claims,
        provider: Option<&'a str>,
        t: Times,
        policy: &Policy,
    ) -> Option<Success<'a>> {
        if self.kind.is_some() || policy.observed_subject_days <= 0 {
            return None;
        }
        let success = Success {
            account: claims.account_id.as_deref()?,
            role: self.canonical_role.as_deref()?,
            subject: claims.subject.as_deref()?,
            provider,
            audience: claims.audience.as_deref(),
            at: t.now,
            expires_at: policy.success_expires(t),
        };
        Some(success).filter(Success::recordable)
    }
}

/// The provider ARN the event's issuer would have in its account.
pub fn expected_provider(claims: &Claims) -> Option<String> {
    match (&claims.provider, claims.account_id.as_deref()) {
        (Some(provider), Some(account)) => Some(provider.arn_in(account)),
        _ => None,
    }
}

/// How an instance remembers having recorded a success: one write per subject and role
/// (any case) per account, not per event.
pub fn success_memo_key(success: &Success<'_>) -> (String, String, String) {
    (
        success.account.to_owned(),
        success.role.to_lowercase(),
        success.subject.to_owned(),
    )
}

/// Which alert an event's incident sends, if any.
pub fn alert_kind(failed: bool, trust: Trust) -> Option<AlertKind> {
    match (failed, trust) {
        (true, Trust::Ours) => Some(AlertKind::Incident),
        (true, _) => Some(AlertKind::Probe),
        (false, Trust::Ours) => None,
        // Someone we cannot name got in: whatever the evidence, that is critical.
        (false, _) => Some(AlertKind::ForeignSuccess),
    }
}

pub fn severity_of(kind: AlertKind) -> Severity {
    match kind {
        AlertKind::ForeignSuccess => Severity::Critical,
        AlertKind::Probe => Severity::Low,
        AlertKind::Spike | AlertKind::Incident | AlertKind::TrustChange => Severity::High,
        // The monitor sends no digest; oidc-auditor grades its own.
        AlertKind::Recovery | AlertKind::AuditDigest => Severity::Info,
    }
}
