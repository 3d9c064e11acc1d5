//! The ports oidc-monitor and oidc-notifier talk through. Adapters (AWS, in `oidc-watch-aws`)
//! implement them; the in-memory versions in [`memory`] serve handler tests and local runs.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::change::ChangeRecord;
use crate::metrics::MetricRecord;
use crate::snapshot::{AccountSnapshot, Role};
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

    /// As [`AccountState::snapshot`], knowing which provider the event names
    /// (`arn:…:oidc-provider/<url>`): an adapter may fetch it alongside the list instead of
    /// after it. The answer is the same.
    fn snapshot_expecting(
        &self,
        account_id: &str,
        role_name: &str,
        _provider_arn: Option<&str>,
    ) -> impl Future<Output = Result<AccountSnapshot, PortError>> + Send {
        self.snapshot(account_id, role_name)
    }

    /// Drops what is cached about `role_name` (any case) in `account_id`, after IAM said
    /// it changed; the role that was cached, if any (its policy is the one before).
    fn forget_role(&self, _account_id: &str, _role_name: &str) -> Option<Role> {
        None
    }

    /// Drops the cached OIDC providers of `account_id`, after IAM said the provider of
    /// `provider_url` changed.
    fn forget_provider(&self, _account_id: &str, _provider_url: &str) {}
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
    /// The event that opened it: only that event (or its redelivery) alerts.
    pub opened_by: String,
    pub opened_at: i64,
    /// Open until this time (epoch seconds); later events open a new incident.
    pub until: i64,
    pub attempts: u64,
    pub alerted: bool,
}

/// What recording one delivery against an incident found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sighting {
    /// This delivery opened the incident, and holds its alert.
    Opened(Incident),
    /// One more attempt of an open incident.
    Attempt(Incident),
    /// This event was recorded before: a redelivery.
    Duplicate(Incident),
}

impl Sighting {
    pub fn incident(&self) -> &Incident {
        match self {
            Sighting::Opened(i) | Sighting::Attempt(i) | Sighting::Duplicate(i) => i,
        }
    }
}

/// Whether this delivery may publish an incident's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertClaim {
    /// Ours to publish until the lease ends.
    Claimed,
    /// Already published (or settled by a rate limit).
    Done,
    /// Another delivery holds it: retry later.
    Busy,
}

/// One failure counted towards spikes: once per incident, whatever the redeliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount<'a> {
    pub minute: i64,
    /// The canonical role name, or `-`.
    pub role: &'a str,
    pub cause: &'a str,
    pub incident_id: &'a str,
    pub expires_at: i64,
}

/// The longest subject the record of successes keeps; longer ones are not recorded.
pub const MAX_OBSERVED_SUBJECT: usize = 1024;
/// The most subjects [`StateStore::successful_subjects`] returns for one role.
pub const MAX_OBSERVED_SUBJECTS: usize = 1000;

/// One successful call of one of our own jobs, for the per-role record of the subjects
/// that work (`oidc-watch impact --observed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success<'a> {
    pub account: &'a str,
    /// IAM's spelling of the role; the record is keyed by its lower case.
    pub role: &'a str,
    pub subject: &'a str,
    /// The provider's ARN and the audience of the call, when the event has them.
    pub provider: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// When it happened (epoch seconds).
    pub at: i64,
    pub expires_at: i64,
}

impl Success<'_> {
    /// Whether it may be recorded: a subject of bounded length.
    pub fn recordable(&self) -> bool {
        !self.subject.is_empty() && self.subject.len() <= MAX_OBSERVED_SUBJECT
    }
}

/// A subject that assumed a role successfully, as the record of successes has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedSubject {
    pub subject: String,
    pub provider: Option<String>,
    pub audience: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// The most changes [`StateStore::recent_changes`] returns, the latest.
pub const MAX_RECENT_CHANGES: usize = 100;

/// Incident, counter, rate-limit and spike state (one DynamoDB table in AWS). Every write
/// that decides who alerts is conditional, so concurrent instances agree, and every write
/// is idempotent per event or incident, so a redelivery completes what a failed delivery
/// left undone.
pub trait StateStore {
    /// True the first time `event_id` is seen; false for a redelivery. For events that
    /// belong to no incident (successes of our own jobs).
    fn first_sighting(
        &self,
        event_id: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Records `event_id` against the incident under `key` in one conditional write when
    /// it can: opens `opening` unless an incident is open at `now` (the opener holds the
    /// alert until `lease_until`), or adds an attempt, or finds the event recorded.
    /// `expect_open` says which write to try first.
    #[allow(clippy::too_many_arguments)]
    fn sight_incident(
        &self,
        key: &str,
        event_id: &str,
        opening: &Incident,
        now: i64,
        lease_until: i64,
        expires_at: i64,
        expect_open: bool,
    ) -> impl Future<Output = Result<Sighting, PortError>> + Send;

    /// Takes the alert of the incident under `key` for its opener `event_id`.
    fn claim_alert(
        &self,
        key: &str,
        event_id: &str,
        wall: i64,
        lease_until: i64,
    ) -> impl Future<Output = Result<AlertClaim, PortError>> + Send;

    /// Gives the alert back after a failed publish, so the redelivery need not wait for
    /// the lease. Best effort: the lease ends anyway.
    fn release_alert(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The alert is out (or settled): no delivery publishes it again.
    fn finish_alert(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Counts one failure for spikes, idempotent per incident.
    fn count_failure(&self, count: &FailureCount<'_>) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The per-minute counters for minutes in `(from, to]`, every page.
    fn failure_counts(
        &self,
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
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// A rate-limit token for `key`: true at most once per `period` seconds, and again
    /// for the same `holder` (a redelivery keeps the token it took).
    fn take_token(
        &self,
        key: &str,
        holder: &str,
        now: i64,
        period: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Adds one alert to the global window starting at `window`, idempotent per `holder`;
    /// the window's count after it.
    fn count_alert(
        &self,
        window: i64,
        holder: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<u64, PortError>> + Send;

    /// How many alerts the global window starting at `window` counted.
    fn alert_count(&self, window: i64) -> impl Future<Output = Result<u64, PortError>> + Send;

    /// Records a successful subject of a role: an idempotent upsert (`first_seen` kept,
    /// `last_seen` the latest). A subject longer than [`MAX_OBSERVED_SUBJECT`] is skipped.
    fn record_success(&self, success: &Success<'_>) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The recorded successful subjects of `role` (any case) in `account`, at most
    /// [`MAX_OBSERVED_SUBJECTS`].
    fn successful_subjects(
        &self,
        account: &str,
        role: &str,
    ) -> impl Future<Output = Result<Vec<ObservedSubject>, PortError>> + Send;

    /// Records an IAM change of the record's account, idempotent per event id; true the
    /// first time. A store that keeps no changes records none.
    fn record_change(
        &self,
        _record: &ChangeRecord,
        _expires_at: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send {
        std::future::ready(Ok(false))
    }

    /// The recorded changes of `account` made at or after `since` (epoch seconds), oldest
    /// first, at most the latest [`MAX_RECENT_CHANGES`]: one read.
    fn recent_changes(
        &self,
        _account: &str,
        _since: i64,
    ) -> impl Future<Output = Result<Vec<ChangeRecord>, PortError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }
}

// ------------------------------------------------------------------ oidc-notifier

/// Where a thread lives: its channel and the `ts` of its first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRef {
    pub channel: String,
    pub ts: String,
}

/// oidc-notifier's delivery, thread and rate-limit state (the DynamoDB state table in AWS). Every write
/// that decides whether something is posted is conditional.
pub trait NotifierStore {
    /// Claims the SNS message `message_id` for delivery until `now + lease`. False when it
    /// was delivered already, or another invocation holds a live claim.
    fn begin_delivery(
        &self,
        message_id: &str,
        now: i64,
        lease: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Whether the message was posted (not merely claimed by an invocation in flight).
    fn delivery_posted(&self, message_id: &str) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Marks the message delivered: a redelivery is then a duplicate.
    fn finish_delivery(
        &self,
        message_id: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Gives up the claim after a failed post, so SNS's retry can post.
    fn abandon_delivery(&self, message_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    fn thread(&self, thread_id: &str) -> impl Future<Output = Result<Option<ThreadRef>, PortError>> + Send;

    fn save_thread(
        &self,
        thread_id: &str,
        thread: &ThreadRef,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// A rate-limit token for `key`: granted at most once per `period` seconds, and again
    /// to the same `holder` (the retry of the message that took it).
    fn take_token(
        &self,
        key: &str,
        holder: &str,
        now: i64,
        period: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// The window an alarm evaluated, for the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakdownRequest {
    pub start: i64,
    pub end: i64,
    /// Seconds per datapoint, a multiple of 60.
    pub period: i64,
}

/// Failures in the alarm's window by cause and by role, largest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Breakdown {
    pub start: i64,
    pub end: i64,
    pub by_cause: Vec<(String, f64)>,
    pub by_role: Vec<(String, f64)>,
}

pub trait AlarmBreakdown {
    fn breakdown(
        &self,
        request: &BreakdownRequest,
    ) -> impl Future<Output = Result<Breakdown, PortError>> + Send;
}

/// No enrichment (configured off, or in tests).
pub struct NoBreakdown;

impl AlarmBreakdown for NoBreakdown {
    async fn breakdown(&self, request: &BreakdownRequest) -> Result<Breakdown, PortError> {
        Err(PortError::new(
            "cloudwatch",
            format!("breakdown disabled ({}..{})", request.start, request.end),
            false,
        ))
    }
}

/// In-memory ports for tests and local runs.
#[cfg(any(test, feature = "testing"))]
pub mod memory {
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::Mutex;

    use super::*;

    /// Serves the snapshots it was given, as a cache would; `fail` makes every lookup
    /// fail. `changed` is what IAM holds after changes made behind that cache: an account
    /// is served from it once a role or provider of it was forgotten.
    #[derive(Default)]
    pub struct MemoryAccounts {
        pub accounts: Vec<AccountSnapshot>,
        pub fail: bool,
        pub lookups: Mutex<u64>,
        pub changed: Mutex<Vec<AccountSnapshot>>,
        /// What was forgotten: (account, `role:<lower-cased name>` or `provider:<url>`).
        pub forgotten: Mutex<Vec<(String, String)>>,
    }

    impl MemoryAccounts {
        fn forget(&self, account_id: &str, what: String) -> bool {
            let mut forgotten = self.forgotten.lock().unwrap_or_else(|e| e.into_inner());
            let first = !forgotten.iter().any(|(a, w)| a == account_id && *w == what);
            forgotten.push((account_id.to_owned(), what));
            first
        }
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
            let forgotten = self
                .forgotten
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|(a, _)| a == account_id);
            let changed = self.changed.lock().unwrap_or_else(|e| e.into_inner());
            let live = changed.iter().find(|a| a.account_id == account_id && forgotten);
            live.or_else(|| self.accounts.iter().find(|a| a.account_id == account_id))
                .cloned()
                .ok_or_else(|| PortError::new("iam", format!("no snapshot for {account_id}"), false))
        }

        fn forget_role(&self, account_id: &str, role_name: &str) -> Option<Role> {
            let first = self.forget(account_id, format!("role:{}", role_name.to_lowercase()));
            let cached = self.accounts.iter().find(|a| a.account_id == account_id)?;
            first.then(|| cached.role(role_name).cloned()).flatten()
        }

        fn forget_provider(&self, account_id: &str, provider_url: &str) {
            self.forget(account_id, format!("provider:{}", provider_url.to_lowercase()));
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

    /// The most event ids an incident remembers; later retries are counted, not deduplicated.
    pub const MAX_INCIDENT_EVENTS: usize = 256;
    /// The most incident ids a counter remembers.
    pub const MAX_COUNTER_INCIDENTS: usize = 512;

    struct StoredIncident {
        incident: Incident,
        events: HashSet<String>,
        claim_until: i64,
    }

    #[derive(Default)]
    struct Counter {
        failures: u64,
        incidents: HashSet<String>,
        causes: BTreeMap<String, u64>,
    }

    #[derive(Default)]
    struct State {
        events: HashSet<String>,
        incidents: HashMap<String, StoredIncident>,
        counters: BTreeMap<(i64, String), Counter>,
        spikes: HashMap<String, SpikeState>,
        tokens: HashMap<String, (i64, String)>,
        alert_windows: HashMap<i64, HashSet<String>>,
        /// (account, lower-cased role) -> subject -> its record.
        successes: BTreeMap<(String, String), BTreeMap<String, ObservedSubject>>,
        /// (account, at, event id) -> the change.
        changes: BTreeMap<(String, i64, String), ChangeRecord>,
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

        /// Every incident, for assertions.
        pub fn incidents(&self) -> Vec<Incident> {
            self.with(|s| s.incidents.values().map(|i| i.incident.clone()).collect())
        }
    }

    impl StateStore for MemoryState {
        async fn first_sighting(&self, event_id: &str, _expires_at: i64) -> Result<bool, PortError> {
            Ok(self.with(|s| s.events.insert(event_id.to_owned())))
        }

        async fn sight_incident(
            &self,
            key: &str,
            event_id: &str,
            opening: &Incident,
            now: i64,
            lease_until: i64,
            _expires_at: i64,
            _expect_open: bool,
        ) -> Result<Sighting, PortError> {
            Ok(self.with(|s| match s.incidents.get_mut(key) {
                Some(stored) if stored.events.contains(event_id) => {
                    Sighting::Duplicate(stored.incident.clone())
                }
                Some(stored) if stored.incident.until >= now => {
                    stored.incident.attempts += 1;
                    if stored.events.len() < MAX_INCIDENT_EVENTS {
                        stored.events.insert(event_id.to_owned());
                    }
                    Sighting::Attempt(stored.incident.clone())
                }
                _ => {
                    s.incidents.insert(
                        key.to_owned(),
                        StoredIncident {
                            incident: opening.clone(),
                            events: HashSet::from([event_id.to_owned()]),
                            claim_until: lease_until,
                        },
                    );
                    Sighting::Opened(opening.clone())
                }
            }))
        }

        async fn claim_alert(
            &self,
            key: &str,
            event_id: &str,
            wall: i64,
            lease_until: i64,
        ) -> Result<AlertClaim, PortError> {
            Ok(self.with(|s| match s.incidents.get_mut(key) {
                Some(stored) if stored.incident.opened_by != event_id || stored.incident.alerted => {
                    AlertClaim::Done
                }
                Some(stored) if stored.claim_until > wall => AlertClaim::Busy,
                Some(stored) => {
                    stored.claim_until = lease_until;
                    AlertClaim::Claimed
                }
                None => AlertClaim::Done,
            }))
        }

        async fn release_alert(&self, key: &str) -> Result<(), PortError> {
            self.with(|s| s.incidents.get_mut(key).map(|i| i.claim_until = 0));
            Ok(())
        }

        async fn finish_alert(&self, key: &str) -> Result<(), PortError> {
            self.with(|s| s.incidents.get_mut(key).map(|i| i.incident.alerted = true));
            Ok(())
        }

        async fn count_failure(&self, count: &FailureCount<'_>) -> Result<(), PortError> {
            self.with(|s| {
                let counter = s
                    .counters
                    .entry((count.minute, count.role.to_owned()))
                    .or_default();
                if counter.incidents.contains(count.incident_id) {
                    return;
                }
                if counter.incidents.len() < MAX_COUNTER_INCIDENTS {
                    counter.incidents.insert(count.incident_id.to_owned());
                }
                counter.failures += 1;
                *counter.causes.entry(count.cause.to_owned()).or_insert(0) += 1;
            });
            Ok(())
        }

        async fn failure_counts(&self, from: i64, to: i64) -> Result<Vec<MinuteCount>, PortError> {
            Ok(self.with(|s| {
                let mut minutes: BTreeMap<i64, MinuteCount> = BTreeMap::new();
                for ((minute, role), counter) in s.counters.range((from + 1, String::new())..) {
                    if *minute > to {
                        break;
                    }
                    let entry = minutes.entry(*minute).or_insert_with(|| MinuteCount {
                        minute: *minute,
                        ..MinuteCount::default()
                    });
                    entry.failures += counter.failures;
                    *entry.labels.entry(format!("role:{role}")).or_insert(0) += counter.failures;
                    for (cause, n) in &counter.causes {
                        *entry.labels.entry(format!("cause:{cause}")).or_insert(0) += n;
                    }
                }
                minutes.into_values().collect()
            }))
        }

        async fn spike_state(&self, scope: &str) -> Result<Option<SpikeState>, PortError> {
            Ok(self.with(|s| s.spikes.get(scope).cloned()))
        }

        async fn save_spike_state(
            &self,
            scope: &str,
            state: &SpikeState,
            _expires: i64,
        ) -> Result<bool, PortError> {
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

        async fn take_token(
            &self,
            key: &str,
            holder: &str,
            now: i64,
            period: i64,
        ) -> Result<bool, PortError> {
            Ok(self.with(|s| match s.tokens.get(key) {
                Some((_, held_by)) if held_by == holder => true,
                Some((until, _)) if *until > now => false,
                _ => {
                    s.tokens.insert(key.to_owned(), (now + period, holder.to_owned()));
                    true
                }
            }))
        }

        async fn count_alert(&self, window: i64, holder: &str, _expires_at: i64) -> Result<u64, PortError> {
            Ok(self.with(|s| {
                let holders = s.alert_windows.entry(window).or_default();
                holders.insert(holder.to_owned());
                holders.len() as u64
            }))
        }

        async fn alert_count(&self, window: i64) -> Result<u64, PortError> {
            Ok(self.with(|s| s.alert_windows.get(&window).map_or(0, |h| h.len() as u64)))
        }

        async fn record_success(&self, success: &Success<'_>) -> Result<(), PortError> {
            if !success.recordable() {
                return Ok(());
            }
            self.with(|s| {
                let role = s
                    .successes
                    .entry((success.account.to_owned(), success.role.to_lowercase()))
                    .or_default();
                let entry = role
                    .entry(success.subject.to_owned())
                    .or_insert_with(|| ObservedSubject {
                        subject: success.subject.to_owned(),
                        provider: success.provider.map(str::to_owned),
                        audience: success.audience.map(str::to_owned),
                        first_seen: success.at,
                        last_seen: success.at,
                    });
                // As the DynamoDB store: an older call changes nothing.
                if success.at >= entry.last_seen {
                    entry.last_seen = success.at;
                    entry.provider = success.provider.map(str::to_owned);
                    entry.audience = success.audience.map(str::to_owned);
                }
            });
            Ok(())
        }

        async fn successful_subjects(
            &self,
            account: &str,
            role: &str,
        ) -> Result<Vec<ObservedSubject>, PortError> {
            Ok(self.with(|s| {
                s.successes
                    .get(&(account.to_owned(), role.to_lowercase()))
                    .map(|subjects| subjects.values().take(MAX_OBSERVED_SUBJECTS).cloned().collect())
                    .unwrap_or_default()
            }))
        }

        async fn record_change(&self, record: &ChangeRecord, _expires_at: i64) -> Result<bool, PortError> {
            let c = &record.change;
            let key = (c.account.clone(), c.at, c.event_id.clone());
            Ok(self.with(|s| match s.changes.contains_key(&key) {
                true => false,
                false => s.changes.insert(key, record.clone()).is_none(),
            }))
        }

        async fn recent_changes(&self, account: &str, since: i64) -> Result<Vec<ChangeRecord>, PortError> {
            Ok(self.with(|s| {
                let mut recent: Vec<ChangeRecord> = s
                    .changes
                    .range((account.to_owned(), since, String::new())..)
                    .take_while(|((a, _, _), _)| a == account)
                    .map(|(_, r)| r.clone())
                    .collect();
                let extra = recent.len().saturating_sub(MAX_RECENT_CHANGES);
                recent.drain(..extra);
                recent
            }))
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Delivery {
        Pending { lease_until: i64 },
        Done,
    }

    #[derive(Default)]
    struct NotifierState {
        deliveries: HashMap<String, Delivery>,
        threads: HashMap<String, ThreadRef>,
        tokens: HashMap<String, (i64, String)>,
    }

    /// The same conditional semantics as the DynamoDB store, behind one mutex; `fail`
    /// makes every call fail.
    #[derive(Default)]
    pub struct MemoryNotifierStore {
        state: Mutex<NotifierState>,
        pub fail: bool,
    }

    impl MemoryNotifierStore {
        /// A store whose every call fails (a throttled or unreachable table).
        pub fn failing() -> Self {
            MemoryNotifierStore {
                fail: true,
                ..MemoryNotifierStore::default()
            }
        }

        fn with<T>(&self, f: impl FnOnce(&mut NotifierState) -> T) -> Result<T, PortError> {
            if self.fail {
                return Err(PortError::new(
                    "dynamodb",
                    "ProvisionedThroughputExceededException",
                    true,
                ));
            }
            Ok(f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner())))
        }

        pub fn thread_of(&self, thread_id: &str) -> Option<ThreadRef> {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .threads
                .get(thread_id)
                .cloned()
        }
    }

    impl NotifierStore for MemoryNotifierStore {
        async fn begin_delivery(
            &self,
            id: &str,
            now: i64,
            lease: i64,
            _expires: i64,
        ) -> Result<bool, PortError> {
            self.with(|s| match s.deliveries.get(id) {
                Some(Delivery::Done) => false,
                Some(Delivery::Pending { lease_until }) if *lease_until >= now => false,
                _ => {
                    s.deliveries.insert(
                        id.to_owned(),
                        Delivery::Pending {
                            lease_until: now + lease,
                        },
                    );
                    true
                }
            })
        }

        async fn delivery_posted(&self, id: &str) -> Result<bool, PortError> {
            self.with(|s| matches!(s.deliveries.get(id), Some(Delivery::Done)))
        }

        async fn finish_delivery(&self, id: &str, _expires: i64) -> Result<(), PortError> {
            self.with(|s| {
                s.deliveries.insert(id.to_owned(), Delivery::Done);
            })
        }

        async fn abandon_delivery(&self, id: &str) -> Result<(), PortError> {
            self.with(|s| {
                if matches!(s.deliveries.get(id), Some(Delivery::Pending { .. })) {
                    s.deliveries.remove(id);
                }
            })
        }

        async fn thread(&self, thread_id: &str) -> Result<Option<ThreadRef>, PortError> {
            self.with(|s| s.threads.get(thread_id).cloned())
        }

        async fn save_thread(
            &self,
            thread_id: &str,
            thread: &ThreadRef,
            _expires: i64,
        ) -> Result<(), PortError> {
            self.with(|s| {
                s.threads.insert(thread_id.to_owned(), thread.clone());
            })
        }

        async fn take_token(
            &self,
            key: &str,
            holder: &str,
            now: i64,
            period: i64,
        ) -> Result<bool, PortError> {
            self.with(|s| match s.tokens.get(key) {
                Some((until, owner)) if *until > now && owner != holder => false,
                _ => {
                    s.tokens.insert(key.to_owned(), (now + period, holder.to_owned()));
                    true
                }
            })
        }
    }

    /// Serves a fixed breakdown and records the requests.
    #[derive(Default)]
    pub struct FixedBreakdown {
        pub breakdown: Breakdown,
        pub requests: Mutex<Vec<BreakdownRequest>>,
    }

    impl AlarmBreakdown for FixedBreakdown {
        async fn breakdown(&self, request: &BreakdownRequest) -> Result<Breakdown, PortError> {
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(*request);
            Ok(Breakdown {
                start: request.start,
                end: request.end,
                ..self.breakdown.clone()
            })
        }
    }
}
