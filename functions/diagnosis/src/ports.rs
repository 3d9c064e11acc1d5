//! The ports oidc-monitor talks through. Adapters (AWS) implement them; the in-memory
//! versions in [`memory`] serve handler tests and local runs.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::metrics::MetricRecord;
use crate::snapshot::AccountSnapshot;
use crate::spike::{MinuteCount, SpikeState};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {message}")]
pub struct PortError {
    pub service: &'static str,
    pub message: String,
    /// Worth retrying: throttling, a timeout, a 5xx.
    pub retryable: bool,
}

impl PortError {
    pub fn new(service: &'static str, message: impl Into<String>, retryable: bool) -> Self {
        PortError {
            service,
            message: message.into(),
            retryable,
        }
    }
}

/// The IAM state the diagnosis needs: the role (absent when it does not exist) and the
/// account's OIDC providers.
pub trait AccountState {
    fn snapshot(
        &self,
        account_id: &str,
        role_name: &str,
    ) -> impl Future<Output = Result<AccountSnapshot, PortError>> + Send;
}

pub trait MetricSink {
    fn publish(&self, record: &MetricRecord) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait AlertSink {
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// One incident: the same (account, role, subject, cause) within a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// The event that opened it: only that event (or its retry) alerts.
    pub opened_by: String,
    pub opened_at: i64,
    /// Open until this time (epoch seconds); later events open a new incident.
    pub until: i64,
    pub attempts: u64,
    pub alerted: bool,
}

/// Incident, counter and spike state (one DynamoDB table in AWS). Every write that decides
/// who alerts is conditional, so concurrent instances agree.
pub trait StateStore {
    /// True the first time `event_id` is seen; false for a redelivery of the same event.
    fn first_sighting(
        &self,
        event_id: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Stores `incident` under `key` unless an incident there is still open at `now`.
    /// True when this call opened it.
    fn open_incident(
        &self,
        key: &str,
        incident: &Incident,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Adds one attempt to the incident under `key`, returning it.
    fn add_attempt(&self, key: &str) -> impl Future<Output = Result<Option<Incident>, PortError>> + Send;

    fn incident(&self, key: &str) -> impl Future<Output = Result<Option<Incident>, PortError>> + Send;

    fn mark_alerted(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Adds one failure to `scope`'s counter for `minute`, and one to each label.
    fn count_failure(
        &self,
        scope: &str,
        minute: i64,
        labels: &[String],
        expires_at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The counters of `scope` for minutes in `(from, to]`.
    fn failure_counts(
        &self,
        scope: &str,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<MinuteCount>, PortError>> + Send;

    fn spike_state(&self, scope: &str) -> impl Future<Output = Result<Option<SpikeState>, PortError>> + Send;

    /// Saves `state` if the stored version is still `state.version - 1` (or there is none
    /// and `state.version` is 1). True when this call won.
    fn save_spike_state(
        &self,
        scope: &str,
        state: &SpikeState,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// A rate-limit token for `key`: true at most once per `period` seconds.
    fn take_token(
        &self,
        key: &str,
        now: i64,
        period: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// In-memory ports for tests and local runs.
#[cfg(any(test, feature = "testing"))]
pub mod memory {
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::Mutex;

    use super::*;

    /// Serves the snapshots it was given; `fail` makes every lookup fail.
    #[derive(Default)]
    pub struct MemoryAccounts {
        pub accounts: Vec<AccountSnapshot>,
        pub fail: bool,
        pub lookups: Mutex<u64>,
    }

    impl AccountState for MemoryAccounts {
        async fn snapshot(&self, account_id: &str, _role_name: &str) -> Result<AccountSnapshot, PortError> {
            *self.lookups.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            if self.fail {
                return Err(PortError::new(
                    "iam",
                    "AccessDenied: not authorized to perform iam:GetRole",
                    false,
                ));
            }
            self.accounts
                .iter()
                .find(|a| a.account_id == account_id)
                .cloned()
                .ok_or_else(|| PortError::new("iam", format!("no snapshot for {account_id}"), false))
        }
    }

    #[derive(Default)]
    pub struct MemoryMetrics {
        pub records: Mutex<Vec<MetricRecord>>,
    }

    impl MetricSink for MemoryMetrics {
        async fn publish(&self, record: &MetricRecord) -> Result<(), PortError> {
            self.records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record.clone());
            Ok(())
        }
    }

    /// Records alerts; fails the next `fail_next` publishes.
    #[derive(Default)]
    pub struct MemoryAlerts {
        pub alerts: Mutex<Vec<Alert>>,
        pub fail_next: Mutex<u32>,
    }

    impl AlertSink for MemoryAlerts {
        async fn publish(&self, alert: &Alert) -> Result<(), PortError> {
            let mut fail = self.fail_next.lock().unwrap_or_else(|e| e.into_inner());
            if *fail > 0 {
                *fail -= 1;
                return Err(PortError::new("sns", "Throttling: rate exceeded", true));
            }
            self.alerts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(alert.clone());
            Ok(())
        }
    }

    #[derive(Default)]
    struct State {
        events: HashSet<String>,
        incidents: HashMap<String, Incident>,
        counters: HashMap<String, BTreeMap<i64, MinuteCount>>,
        spikes: HashMap<String, SpikeState>,
        tokens: HashMap<String, i64>,
    }

    /// The same conditional semantics as the DynamoDB store, behind one mutex.
    #[derive(Default)]
    pub struct MemoryState {
        state: Mutex<State>,
    }

    impl MemoryState {
        fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
            f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }

    impl StateStore for MemoryState {
        async fn first_sighting(&self, event_id: &str, _expires_at: i64) -> Result<bool, PortError> {
            Ok(self.with(|s| s.events.insert(event_id.to_owned())))
        }

        async fn open_incident(
            &self,
            key: &str,
            incident: &Incident,
            now: i64,
            _expires: i64,
        ) -> Result<bool, PortError> {
            Ok(self.with(|s| match s.incidents.get(key) {
                Some(open) if open.until >= now => false,
                _ => {
                    s.incidents.insert(key.to_owned(), incident.clone());
                    true
                }
            }))
        }

        async fn add_attempt(&self, key: &str) -> Result<Option<Incident>, PortError> {
            Ok(self.with(|s| {
                s.incidents.get_mut(key).map(|i| {
                    i.attempts += 1;
                    i.clone()
                })
            }))
        }

        async fn incident(&self, key: &str) -> Result<Option<Incident>, PortError> {
            Ok(self.with(|s| s.incidents.get(key).cloned()))
        }

        async fn mark_alerted(&self, key: &str) -> Result<(), PortError> {
            self.with(|s| s.incidents.get_mut(key).map(|i| i.alerted = true));
            Ok(())
        }

        async fn count_failure(
            &self,
            scope: &str,
            minute: i64,
            labels: &[String],
            _expires: i64,
        ) -> Result<(), PortError> {
            self.with(|s| {
                let count = s
                    .counters
                    .entry(scope.to_owned())
                    .or_default()
                    .entry(minute)
                    .or_insert_with(|| MinuteCount {
                        minute,
                        ..MinuteCount::default()
                    });
                count.failures += 1;
                for label in labels {
                    *count.labels.entry(label.clone()).or_insert(0) += 1;
                }
            });
            Ok(())
        }

        async fn failure_counts(
            &self,
            scope: &str,
            from: i64,
            to: i64,
        ) -> Result<Vec<MinuteCount>, PortError> {
            Ok(self.with(|s| {
                s.counters
                    .get(scope)
                    .map(|c| c.range(from + 1..=to).map(|(_, v)| v.clone()).collect())
                    .unwrap_or_default()
            }))
        }

        async fn spike_state(&self, scope: &str) -> Result<Option<SpikeState>, PortError> {
            Ok(self.with(|s| s.spikes.get(scope).cloned()))
        }

        async fn save_spike_state(&self, scope: &str, state: &SpikeState) -> Result<bool, PortError> {
            Ok(self.with(|s| {
                let stored = s.spikes.get(scope).map_or(0, |v| v.version);
                if stored + 1 == state.version {
                    s.spikes.insert(scope.to_owned(), state.clone());
                    true
                } else {
                    false
                }
            }))
        }

        async fn take_token(&self, key: &str, now: i64, period: i64) -> Result<bool, PortError> {
            Ok(self.with(|s| match s.tokens.get(key) {
                Some(until) if *until > now => false,
                _ => {
                    s.tokens.insert(key.to_owned(), now + period);
                    true
                }
            }))
        }
    }
}
