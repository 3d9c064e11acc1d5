//! The spike judgement's steps. One scope, [`SPIKE_SCOPE`]: one burst, one alert,
//! whatever roles it spans. A decided alert is saved as pending with a lease before it is
//! published, so a delivery that dies in between leaves it for the next one to take over.

use super::{lease_until, severity_of, Times};
use crate::alert::{Alert, AlertKind, SpikeSummary};
use crate::spike::{
    assess, decide, top_labels, MinuteCount, PendingSpikeAlert, SpikeAction, SpikeConfig, SpikeState,
};

pub const SPIKE_SCOPE: &str = "all";
/// Roles and causes a spike alert names.
pub const TOP_LABELS: usize = 5;

/// Whether spikes are judged for this event: only when the counters changed, an opener's
/// redelivery may have left a judgement undone, or a spike may be on (`remembered`: what
/// this instance last knew, `None` before it knew anything).
pub fn check_needed(counters_changed: bool, redelivered_opener: bool, remembered: Option<bool>) -> bool {
    counters_changed || redelivered_opener || remembered != Some(false)
}

/// What one judgement does.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeStep {
    /// Whether a spike may be on (or an alert be pending) after it, for the next event.
    pub may_be_on: bool,
    /// The state to save conditionally; its pending alert, if any, is published once the
    /// save won.
    pub save: Option<SpikeState>,
}

/// The next step from the stored state and the failure counts of
/// [`SpikeConfig::minutes_needed`]: take over a pending alert whose lease passed (or wait
/// for it), else judge the counts and save the decision, with an alert when it starts or
/// ends a spike.
pub fn step(
    stored: Option<&SpikeState>,
    counts: &[MinuteCount],
    t: Times,
    config: &SpikeConfig,
) -> SpikeStep {
    if let Some(stored) = stored {
        if let Some(pending) = &stored.pending {
            let save = (pending.lease_until <= t.wall).then(|| SpikeState {
                version: stored.version + 1,
                pending: Some(PendingSpikeAlert {
                    lease_until: lease_until(t.wall),
                    ..pending.clone()
                }),
                ..stored.clone()
            });
            return SpikeStep {
                may_be_on: true,
                save,
            };
        }
    }
    let assessment = assess(counts, t.now, config);
    let (action, next) = decide(stored, &assessment, t.now, config);
    let spiking_after = next.as_ref().or(stored).is_some_and(|s| s.spiking);
    let Some(mut next) = next else {
        return SpikeStep {
            may_be_on: spiking_after,
            save: None,
        };
    };
    if action == SpikeAction::Nothing {
        return SpikeStep {
            may_be_on: spiking_after,
            save: Some(next),
        };
    }
    let recovery = action == SpikeAction::Recover;
    next.pending = Some(PendingSpikeAlert {
        recovery,
        // A recovery joins the thread of the spike it ends.
        thread_since: match (recovery, stored) {
            (true, Some(stored)) => stored.since,
            _ => next.since,
        },
        summary: SpikeSummary {
            scope: SPIKE_SCOPE.to_owned(),
            window_seconds: config.window_seconds,
            failures: assessment.failures,
            baseline: assessment.baseline,
            top_roles: top_labels(&assessment.labels, "role:", TOP_LABELS),
            top_causes: top_labels(&assessment.labels, "cause:", TOP_LABELS),
        },
        lease_until: lease_until(t.wall),
    });
    SpikeStep {
        may_be_on: true,
        save: Some(next),
    }
}

/// The alert a pending spike (or recovery) sends.
pub fn alert(pending: &PendingSpikeAlert, account: &str) -> Alert {
    let kind = if pending.recovery {
        AlertKind::Recovery
    } else {
        AlertKind::Spike
    };
    Alert {
        kind,
        severity: severity_of(kind),
        thread_id: format!("spike-{SPIKE_SCOPE}-{}", pending.thread_since),
        account_id: account.to_owned(),
        cause: None,
        attempts: pending.summary.failures,
        diagnosis: None,
        spike: Some(pending.summary.clone()),
        notes: Vec::new(),
        changes: Vec::new(),
        digest: None,
    }
}

/// `state` after its alert failed to go out: still pending, its lease given back so the
/// redelivery publishes at once.
pub fn released(state: &SpikeState) -> SpikeState {
    SpikeState {
        version: state.version + 1,
        pending: state
            .pending
            .clone()
            .map(|p| PendingSpikeAlert { lease_until: 0, ..p }),
        ..state.clone()
    }
}

/// `state` after its alert went out (or was refused for good).
pub fn published(state: &SpikeState) -> SpikeState {
    SpikeState {
        version: state.version + 1,
        pending: None,
        ..state.clone()
    }
}
