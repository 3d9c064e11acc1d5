//! One incident's decisions: the incident a first failure opens, who holds its alert,
//! the failure it counts for spikes, the probe and rate limits, and the alert it sends.

use super::{alert_window_expires, severity_of, EventPlan, Policy, Times, ALERT_WINDOW_SECONDS};
use crate::alert::{Alert, AlertKind};
use crate::ports::{AlertClaim, FailureCount, Incident, Sighting};
use crate::Diagnosis;

/// The incident the event opens if none is open under its key.
pub fn opening(event: &EventPlan, policy: &Policy, now: i64) -> Incident {
    let prefix = event.key.get(..16).unwrap_or(&event.key);
    Incident {
        id: format!("{prefix}-{now}"),
        opened_by: event.event_id.clone(),
        opened_at: now,
        until: policy.incident_until(now),
        attempts: 1,
        alerted: false,
    }
}

/// Whether this delivery sends the incident's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// It opened the incident: the alert is its own.
    Yes,
    /// A redelivery of the opener whose alert is not out: it may take the alert over
    /// ([`after_claim`]).
    IfClaimed,
    /// Another event opened it.
    No,
}

pub fn opener(sighting: &Sighting, event_id: &str) -> Opener {
    match sighting {
        Sighting::Opened(_) => Opener::Yes,
        Sighting::Duplicate(i) if i.opened_by == event_id && !i.alerted => Opener::IfClaimed,
        _ => Opener::No,
    }
}

/// Another delivery is publishing the alert: this one is retried later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertBusy;

/// Whether the redelivered opener sends the alert, once it asked for it.
pub fn after_claim(claim: AlertClaim) -> Result<bool, AlertBusy> {
    match claim {
        AlertClaim::Claimed => Ok(true),
        AlertClaim::Done => Ok(false),
        AlertClaim::Busy => Err(AlertBusy),
    }
}

/// The failure the opener counts for spikes; none for a success.
pub fn failure_count<'a>(
    event: &'a EventPlan,
    diagnosis: &'a Diagnosis,
    incident: &'a Incident,
    policy: &Policy,
    t: Times,
) -> Option<FailureCount<'a>> {
    event.failed.then(|| FailureCount {
        minute: t.now.div_euclid(60),
        role: &event.role,
        cause: diagnosis.cause.as_str(),
        incident_id: &incident.id,
        expires_at: policy.counter_expires(t),
    })
}

/// The rate-limit token a probe alert needs, one per owner (any case) per
/// `probe_alert_interval_seconds`; `None` for every other kind.
pub fn probe_token_key(kind: AlertKind, diagnosis: &Diagnosis) -> Option<String> {
    (kind == AlertKind::Probe).then(|| format!("probe#{}", crate::alert::probe_owner(diagnosis)))
}

/// Whether the alert counts towards (and may be held back by) the hourly alert rate.
/// Someone we cannot name got in: never held back.
pub fn rate_limited(kind: AlertKind) -> bool {
    kind != AlertKind::ForeignSuccess
}

/// The rate-limit window before `window`, whose count the first alert of `window` reports.
pub fn previous_window(window: i64) -> i64 {
    window - ALERT_WINDOW_SECONDS
}

/// Where the alert is counted: its window, and how long the count lives.
pub fn rate_window(wall: i64) -> (i64, i64) {
    let window = super::alert_window(wall);
    (window, alert_window_expires(window))
}

/// Whether the previous window's count is read before deciding alongside the window's own
/// count, not after: only the first alert of a window reports it, and an instance that
/// already counted in this window (`remembered`) cannot send that one.
pub fn read_previous_alongside(kind: AlertKind, window: i64, remembered: Option<i64>) -> bool {
    rate_limited(kind) && remembered != Some(window)
}

/// Whether the notes need the previous window's count, given this window's count after
/// this alert.
pub fn needs_previous_count(policy: &Policy, in_window: u64) -> bool {
    in_window == 1 && in_window != policy.alerts_per_hour + 1
}

/// The alert's notes on the rate limit: when this alert reaches it, or, for the first
/// alert of a window, what the previous window held back.
pub fn rate_notes(policy: &Policy, in_window: u64, previous: Option<u64>) -> Vec<String> {
    let limit = policy.alerts_per_hour;
    let mut notes = Vec::new();
    if in_window == limit + 1 {
        notes.push(format!(
            "Alert rate limit reached ({limit} per hour): later incident and probe alerts this hour are held back and counted in the AlertsHeldBack metric."
        ));
    } else if let Some(previous) = previous.filter(|p| in_window == 1 && *p > limit + 1) {
        notes.push(format!(
            "{} alerts were held back by the rate limit in the previous hour (AlertsHeldBack metric; the log has each diagnosis).",
            previous - limit - 1
        ));
    }
    notes
}

/// Whether the alert is held back (and settled, so a redelivery does not send it
/// either): a probe without its owner's token, or an alert past the hourly limit, which
/// still sends the one that reaches it, with a note saying so.
pub fn held_back(policy: &Policy, probe_token: bool, in_window: u64) -> bool {
    !probe_token || in_window > policy.alerts_per_hour + 1
}

/// The incident's alert.
pub fn alert(
    kind: AlertKind,
    event: &EventPlan,
    incident: &Incident,
    diagnosis: &Diagnosis,
    notes: Vec<String>,
) -> Alert {
    Alert {
        kind,
        severity: severity_of(kind),
        thread_id: incident.id.clone(),
        account_id: event.account.clone(),
        cause: Some(diagnosis.cause),
        attempts: incident.attempts,
        diagnosis: Some(diagnosis.clone()),
        spike: None,
        notes,
        changes: Vec::new(),
        digest: None,
    }
}
