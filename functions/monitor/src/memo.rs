//! What an instance remembers between events, bounded. None of it is needed for
//! correctness: it saves round trips.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use diagnosis::owner::{owners_named_by, Owner};
use diagnosis::AccountSnapshot;

/// Incidents and accounts an instance remembers.
const MEMO_INCIDENTS: usize = 4096;
const MEMO_ACCOUNTS: usize = 256;
/// Successful (account, role, subject)s an instance remembers having recorded.
const MEMO_SUCCESSES: usize = 2048;
/// A subject recorded by this instance is not written again for this long.
const SUCCESS_REWRITE_SECONDS: i64 = 3600;
/// Owners remembered per account: trust policies name few.
const MEMO_OWNERS_PER_ACCOUNT: usize = 1024;
/// IAM changes an instance remembers having applied to its caches.
const MEMO_CHANGES: usize = 1024;

/// (account, lower-cased role, subject): `diagnosis::plan::success_memo_key`.
pub(crate) type SuccessKey = (String, String, String);

#[derive(Default)]
pub struct Memo {
    /// Incident key -> open until (event time): a retry tries the attempt write first.
    incidents: Mutex<HashMap<String, i64>>,
    /// Account -> the owners its trust policies named, across the roles seen.
    owners: Mutex<HashMap<String, BTreeSet<Owner>>>,
    /// Whether a spike may be on (or an alert pending): `None` until first read.
    spike_active: Mutex<Option<bool>>,
    /// The alert-rate window this instance last counted an alert in.
    alert_window: Mutex<Option<i64>>,
    /// Success key -> when this instance last recorded it as a success (wall clock): one
    /// write per subject per hour, not per event.
    successes: Mutex<HashMap<SuccessKey, i64>>,
    /// Event ids of the IAM changes whose role or provider this instance forgot since:
    /// its caches no longer predate them.
    changes: Mutex<HashSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Memo {
    pub(crate) fn incident_open(&self, key: &str, now: i64) -> bool {
        lock(&self.incidents).get(key).is_some_and(|until| *until >= now)
    }

    pub(crate) fn alert_window(&self) -> Option<i64> {
        *lock(&self.alert_window)
    }

    pub(crate) fn remember_alert_window(&self, window: i64) {
        *lock(&self.alert_window) = Some(window);
    }

    pub(crate) fn spike_active(&self) -> Option<bool> {
        *lock(&self.spike_active)
    }

    pub(crate) fn remember_spike_active(&self, active: bool) {
        *lock(&self.spike_active) = Some(active);
    }

    pub(crate) fn success_recorded(&self, key: &SuccessKey, wall: i64) -> bool {
        lock(&self.successes)
            .get(key)
            .is_some_and(|at| wall - *at < SUCCESS_REWRITE_SECONDS && *at <= wall)
    }

    pub(crate) fn remember_success(&self, key: SuccessKey, wall: i64) {
        let mut successes = lock(&self.successes);
        if successes.len() >= MEMO_SUCCESSES && !successes.contains_key(&key) {
            successes.retain(|_, at| wall - *at < SUCCESS_REWRITE_SECONDS);
            if successes.len() >= MEMO_SUCCESSES {
                successes.clear();
            }
        }
        successes.insert(key, wall);
    }

    pub(crate) fn change_seen(&self, event_id: &str) -> bool {
        lock(&self.changes).contains(event_id)
    }

    pub(crate) fn remember_change(&self, event_id: &str) {
        let mut changes = lock(&self.changes);
        if changes.len() >= MEMO_CHANGES {
            // Forgetting them costs one IAM read per change at most, on an incident.
            changes.clear();
        }
        changes.insert(event_id.to_owned());
    }

    pub(crate) fn remember_incident(&self, key: &str, until: i64, now: i64) {
        let mut incidents = lock(&self.incidents);
        if incidents.len() >= MEMO_INCIDENTS {
            incidents.retain(|_, u| *u >= now);
            if incidents.len() >= MEMO_INCIDENTS {
                incidents.clear();
            }
        }
        incidents.insert(key.to_owned(), until);
    }

    /// Adds the snapshot's owners to the account's, and returns them; `None` when no trust
    /// policy of the account was ever seen.
    pub(crate) fn owners_for(
        &self,
        account: &str,
        snapshot: Option<&AccountSnapshot>,
    ) -> Option<BTreeSet<Owner>> {
        let mut owners = lock(&self.owners);
        if let Some(snapshot) = snapshot {
            let named: BTreeSet<Owner> = snapshot
                .roles
                .iter()
                .filter_map(|r| r.trust_policy.as_ref().ok())
                .flat_map(owners_named_by)
                .collect();
            if !owners.contains_key(account) && owners.len() >= MEMO_ACCOUNTS {
                owners.clear();
            }
            let known = owners.entry(account.to_owned()).or_default();
            for owner in named {
                if known.len() < MEMO_OWNERS_PER_ACCOUNT {
                    known.insert(owner);
                }
            }
        }
        owners.get(account).cloned()
    }
}
