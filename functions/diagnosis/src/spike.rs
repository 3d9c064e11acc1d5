//! Spike detection over per-minute failure counters, with an injected clock: a spike is
//! when the last window's failures exceed both a minimum and a factor of the trailing
//! baseline. One alert per scope per cooldown; a recovery alert when it subsides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeConfig {
    pub window_seconds: i64,
    pub min_failures: u64,
    pub factor: f64,
    pub cooldown_seconds: i64,
    /// How many windows before the current one make the baseline.
    pub baseline_windows: i64,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            window_seconds: 300,
            min_failures: 20,
            factor: 3.0,
            cooldown_seconds: 1800,
            baseline_windows: 12,
        }
    }
}

impl SpikeConfig {
    pub fn window_minutes(&self) -> i64 {
        ((self.window_seconds + 59) / 60).max(1)
    }

    /// The minutes whose counters an assessment at `now` reads: `(from, to]`.
    pub fn minutes_needed(&self, now: i64) -> (i64, i64) {
        let to = now.div_euclid(60);
        (to - self.window_minutes() * (self.baseline_windows + 1), to)
    }
}

/// Failures counted in one minute, with the roles and causes they had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteCount {
    pub minute: i64,
    pub failures: u64,
    pub labels: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpikeState {
    /// Optimistic-concurrency version: a save only wins against the version it read.
    pub version: u64,
    pub spiking: bool,
    pub since: i64,
    pub last_alert: i64,
    pub peak: u64,
    /// An alert decided and saved but not known to be published: whoever finds it once
    /// its lease has passed publishes it, so a failed or dead delivery loses no alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingSpikeAlert>,
}

/// A spike or recovery alert waiting to go out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSpikeAlert {
    pub recovery: bool,
    /// The `since` of the spike its thread belongs to.
    pub thread_since: i64,
    pub summary: crate::alert::SpikeSummary,
    /// Epoch seconds (wall clock) until which the delivery that decided it owns it.
    pub lease_until: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub failures: u64,
    pub baseline: f64,
    pub is_spike: bool,
    pub labels: BTreeMap<String, u64>,
}

pub fn assess(counts: &[MinuteCount], now: i64, config: &SpikeConfig) -> Assessment {
    let now_minute = now.div_euclid(60);
    let window = config.window_minutes();
    let mut failures = 0;
    let mut before = 0;
    let mut labels = BTreeMap::new();
    for count in counts {
        let age = now_minute - count.minute;
        if (0..window).contains(&age) {
            failures += count.failures;
            for (label, n) in &count.labels {
                *labels.entry(label.clone()).or_insert(0) += n;
            }
        } else if (window..window * (config.baseline_windows + 1)).contains(&age) {
            before += count.failures;
        }
    }
    let baseline = before as f64 / config.baseline_windows.max(1) as f64;
    let is_spike = failures >= config.min_failures && failures as f64 > config.factor * baseline;
    Assessment {
        failures,
        baseline,
        is_spike,
        labels,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeAction {
    Alert,
    Recover,
    Nothing,
}

/// What to do, and the state to save (`None`: leave it as it is).
pub fn decide(
    state: Option<&SpikeState>,
    assessment: &Assessment,
    now: i64,
    config: &SpikeConfig,
) -> (SpikeAction, Option<SpikeState>) {
    let current = state.cloned().unwrap_or_default();
    // An event older than the last change (a late delivery) cannot judge the present.
    if state.is_some() && now < current.since.max(current.last_alert) {
        return (SpikeAction::Nothing, None);
    }
    let next_version = current.version + 1;
    match (current.spiking, assessment.is_spike) {
        (false, true) if current.last_alert == 0 || now - current.last_alert >= config.cooldown_seconds => (
            SpikeAction::Alert,
            Some(SpikeState {
                version: next_version,
                spiking: true,
                since: now,
                last_alert: now,
                peak: assessment.failures,
                pending: None,
            }),
        ),
        (true, true) if now - current.last_alert >= config.cooldown_seconds => (
            SpikeAction::Alert,
            Some(SpikeState {
                version: next_version,
                last_alert: now,
                peak: current.peak.max(assessment.failures),
                ..current
            }),
        ),
        (true, false) => (
            SpikeAction::Recover,
            Some(SpikeState {
                version: next_version,
                spiking: false,
                since: now,
                ..current
            }),
        ),
        _ => (SpikeAction::Nothing, None),
    }
}

/// The `n` largest labels with a prefix (`role:`, `cause:`), prefix removed.
pub fn top_labels(labels: &BTreeMap<String, u64>, prefix: &str, n: usize) -> Vec<(String, u64)> {
    let mut items: Vec<(String, u64)> = labels
        .iter()
        .filter_map(|(label, count)| label.strip_prefix(prefix).map(|l| (l.to_owned(), *count)))
        .collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    items.truncate(n);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: SpikeConfig = SpikeConfig {
        window_seconds: 300,
        min_failures: 10,
        factor: 3.0,
        cooldown_seconds: 1800,
        baseline_windows: 4,
    };

    fn minute(minute: i64, failures: u64) -> MinuteCount {
        MinuteCount {
            minute,
            failures,
            labels: BTreeMap::from([("role:deploy".to_owned(), failures)]),
        }
    }

    /// A clock and a counter store in one: the state machine over time.
    fn run(timeline: &[(i64, u64)], checks: &[i64]) -> Vec<(i64, SpikeAction)> {
        let mut state: Option<SpikeState> = None;
        let mut actions = Vec::new();
        for &now in checks {
            let counts: Vec<MinuteCount> = timeline
                .iter()
                .filter(|(t, _)| *t <= now)
                .map(|(t, n)| minute(t.div_euclid(60), *n))
                .collect();
            let (action, next) = decide(state.as_ref(), &assess(&counts, now, &CONFIG), now, &CONFIG);
            if let Some(next) = next {
                state = Some(next);
            }
            if action != SpikeAction::Nothing {
                actions.push((now, action));
            }
        }
        actions
    }

    #[test]
    fn baseline_noise_is_not_a_spike() {
        let timeline: Vec<(i64, u64)> = (0..60).map(|m| (m * 60, 1)).collect();
        let checks: Vec<i64> = (0..60).map(|m| m * 60 + 30).collect();
        assert_eq!(run(&timeline, &checks), []);
    }

    #[test]
    fn a_burst_alerts_once_then_recovers_once() {
        let mut timeline: Vec<(i64, u64)> = (0..30).map(|m| (m * 60, 1)).collect();
        timeline.extend((30..33).map(|m| (m * 60, 20)));
        let checks: Vec<i64> = (0..60).map(|m| m * 60 + 30).collect();
        let actions = run(&timeline, &checks);
        assert_eq!(actions.len(), 2, "{actions:?}");
        assert_eq!(actions[0], (30 * 60 + 30, SpikeAction::Alert));
        assert_eq!(actions[1].1, SpikeAction::Recover);
        assert!(
            actions[1].0 > 33 * 60,
            "recovery only after the burst leaves the window"
        );
    }

    #[test]
    fn a_lasting_spike_alerts_again_only_after_the_cooldown() {
        let spiking = Assessment {
            failures: 50,
            baseline: 1.0,
            is_spike: true,
            labels: BTreeMap::new(),
        };
        let mut state = None;
        let mut alerts = Vec::new();
        for now in (0..=4000).step_by(300) {
            let (action, next) = decide(state.as_ref(), &spiking, now, &CONFIG);
            if action == SpikeAction::Alert {
                alerts.push(now);
            }
            state = next.or(state);
        }
        assert_eq!(alerts, [0, 1800, 3600]);
    }

    #[test]
    fn a_constant_rate_becomes_the_baseline() {
        let timeline: Vec<(i64, u64)> = (0..120).map(|m| (m * 60, if m >= 10 { 30 } else { 0 })).collect();
        let checks: Vec<i64> = (0..120).map(|m| m * 60 + 30).collect();
        let actions = run(&timeline, &checks);
        assert_eq!(
            actions.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            [SpikeAction::Alert, SpikeAction::Recover]
        );
    }

    #[test]
    fn a_late_event_does_not_judge_an_ongoing_spike() {
        let spiking = SpikeState {
            version: 1,
            spiking: true,
            since: 1000,
            last_alert: 1000,
            peak: 30,
            pending: None,
        };
        let quiet = Assessment {
            failures: 0,
            baseline: 0.0,
            is_spike: false,
            labels: BTreeMap::new(),
        };
        assert_eq!(
            decide(Some(&spiking), &quiet, 400, &CONFIG),
            (SpikeAction::Nothing, None)
        );
        let (action, next) = decide(Some(&spiking), &quiet, 1600, &CONFIG);
        assert_eq!(action, SpikeAction::Recover);
        assert_eq!(next.map(|s| (s.spiking, s.since)), Some((false, 1600)));
    }

    #[test]
    fn minimum_count_guards_quiet_scopes() {
        let a = assess(&[minute(100, 5)], 100 * 60, &CONFIG);
        assert!(!a.is_spike, "5 < min 10 even with a zero baseline");
        let a = assess(&[minute(100, 10)], 100 * 60, &CONFIG);
        assert!(a.is_spike);
        assert_eq!(top_labels(&a.labels, "role:", 3), [("deploy".to_owned(), 10)]);
    }
}
