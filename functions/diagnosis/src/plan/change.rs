//! The monitor's decisions about IAM changes: the policy before one, how long its record
//! lives, whether it alerts (and under which key and token), which changes a later
//! incident, spike or recovery alert names, and which make a cached snapshot stale.

use super::{severity_of, DAY};
use crate::alert::{Alert, AlertKind};
use crate::change::{ChangeAction, ChangeNote, ChangeRecord, TrustChange};
use crate::ports::Incident;
use crate::snapshot::Role;
use crate::spike::MinuteCount;

/// A change record lives this long after the change: enough for any window after it and
/// for the next change's "before".
pub const CHANGE_RECORD_LIFETIME: i64 = 3 * DAY;
/// Changes one alert names, the latest first.
pub const MAX_NOTES: usize = 3;

/// When the record of a change made at `at` (recorded at `wall`) may go.
pub fn change_expires(at: i64, wall: i64) -> i64 {
    at.max(wall) + CHANGE_RECORD_LIFETIME
}

/// The read a change's "before" comes from: the account's changes since this.
pub fn history_since(change: &TrustChange) -> i64 {
    change.at - CHANGE_RECORD_LIFETIME
}

/// The trust policy before `change`: the latest earlier recorded change of the role says
/// it (`None` after a `DeleteRole`), else the policy this instance had cached. A new role
/// had none.
pub fn policy_before(change: &TrustChange, recent: &[ChangeRecord], cached: Option<&Role>) -> Option<String> {
    if change.action == ChangeAction::CreateRole || !change.action.on_role() {
        return None;
    }
    let previous = recent
        .iter()
        .filter(|r| r.change.event_id != change.event_id && r.change.at <= change.at)
        .filter(|r| r.change.action.on_role() && r.change.concerns(change.role.as_deref(), None))
        .max_by_key(|r| r.change.at);
    match previous {
        Some(previous) => previous.change.policy_after.clone(),
        None => cached
            .and_then(|role| role.trust_policy.as_ref().ok())
            .map(|policy| policy.source.to_string()),
    }
}

/// The record of this very event, when a delivery before this one made it: its judgement
/// stands (this instance may no longer have the policy it was judged against).
pub fn recorded<'a>(change: &TrustChange, recent: &'a [ChangeRecord]) -> Option<&'a ChangeRecord> {
    recent.iter().find(|r| r.change.event_id == change.event_id)
}

/// The state key of a widening change's alert (the incident machinery's: lease, claim,
/// settle): one per event id.
pub fn alert_key(change: &TrustChange) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in ["trust-change", change.account.as_str(), change.event_id.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The incident a widening change opens: opened by its event, at its time.
pub fn alert_incident(change: &TrustChange, key: &str) -> Incident {
    Incident {
        id: format!("trust-change-{}", key.get(..16).unwrap_or(key)),
        opened_by: change.event_id.clone(),
        opened_at: change.at,
        until: change.at,
        attempts: 1,
        alerted: false,
    }
}

/// The rate-limit token of trust-change alerts: one per role (any case) or provider per
/// `PROBE_ALERT_INTERVAL_SECONDS`, so a burst of edits alerts once.
pub fn token_key(change: &TrustChange) -> String {
    let target = match (&change.role, &change.provider) {
        (Some(role), _) => format!("role:{}", role.to_lowercase()),
        (None, Some(provider)) => format!("provider:{}", provider.to_lowercase()),
        _ => "-".to_owned(),
    };
    format!("change#{}#{target}", change.account)
}

/// The alert of a widening change.
pub fn alert(record: &ChangeRecord, incident: &Incident) -> Alert {
    let kind = AlertKind::TrustChange;
    Alert {
        kind,
        severity: severity_of(kind),
        thread_id: incident.id.clone(),
        account_id: record.change.account.clone(),
        cause: None,
        attempts: 1,
        diagnosis: None,
        spike: None,
        notes: Vec::new(),
        changes: vec![ChangeNote {
            sentence: record.description(),
            ..record.note("", 0)
        }],
        digest: None,
    }
}

/// The account's changes an incident opened at `now` reads: those of the window before.
pub fn incident_since(now: i64, window_seconds: i64) -> i64 {
    now - window_seconds
}

/// The changes of the role or provider made at or before `now` that this instance has not
/// seen (`seen`): its cached snapshot may predate them, so it is forgotten and read again.
pub fn stale_for<'a>(
    recent: &'a [ChangeRecord],
    role: Option<&str>,
    provider_url: Option<&str>,
    now: i64,
    seen: impl Fn(&str) -> bool,
) -> Vec<&'a ChangeRecord> {
    recent
        .iter()
        .filter(|r| r.change.at <= now && r.change.concerns(role, provider_url))
        .filter(|r| !seen(&r.change.event_id))
        .collect()
}

fn latest(mut records: Vec<&ChangeRecord>) -> Vec<&ChangeRecord> {
    records.sort_by_key(|r| std::cmp::Reverse(r.change.at));
    records.truncate(MAX_NOTES);
    records
}

/// The notes of an incident of `role` / `provider_url` that began at `now`: the changes of
/// the window before it.
pub fn incident_notes(
    recent: &[ChangeRecord],
    role: Option<&str>,
    provider_url: Option<&str>,
    now: i64,
    window_seconds: i64,
) -> Vec<ChangeNote> {
    let relevant = recent
        .iter()
        .filter(|r| r.change.concerns(role, provider_url))
        .filter(|r| r.change.at <= now && now - r.change.at <= window_seconds)
        .collect();
    latest(relevant)
        .into_iter()
        .map(|r| r.note("began", now - r.change.at))
        .collect()
}

/// The notes of a spike that began at `since`, for its top `roles`: their changes of the
/// window before it, or during it up to `now`.
pub fn spike_notes(
    recent: &[ChangeRecord],
    roles: &[String],
    since: i64,
    now: i64,
    window_seconds: i64,
) -> Vec<ChangeNote> {
    let relevant = recent
        .iter()
        .filter(|r| r.change.action.on_role())
        .filter(|r| roles.iter().any(|role| r.change.concerns(Some(role), None)))
        .filter(|r| r.change.at <= now && since - r.change.at <= window_seconds)
        .collect();
    latest(relevant)
        .into_iter()
        .map(|r| r.note("began", since - r.change.at))
        .collect()
}

/// The notes of a recovery at `now` of a spike that began at `since`: the changes of the
/// roles that failed during it, made while it lasted (the change that fixed it).
pub fn recovery_notes(recent: &[ChangeRecord], roles: &[String], since: i64, now: i64) -> Vec<ChangeNote> {
    let relevant = recent
        .iter()
        .filter(|r| r.change.action.on_role())
        .filter(|r| roles.iter().any(|role| r.change.concerns(Some(role), None)))
        .filter(|r| r.change.at >= since && r.change.at <= now)
        .collect();
    latest(relevant)
        .into_iter()
        .map(|r| r.note("recovered", now - r.change.at))
        .collect()
}

/// The roles (not `-`) that failed in minutes from `from` (epoch seconds) to `to`, most
/// failures first.
pub fn roles_between(counts: &[MinuteCount], from: i64, to: i64) -> Vec<String> {
    let mut roles = std::collections::BTreeMap::new();
    for count in counts
        .iter()
        .filter(|c| c.minute >= from.div_euclid(60) && c.minute <= to.div_euclid(60))
    {
        for (label, n) in &count.labels {
            if let Some(role) = label.strip_prefix("role:").filter(|r| *r != "-") {
                *roles.entry(role.to_owned()).or_insert(0u64) += n;
            }
        }
    }
    let mut roles: Vec<(String, u64)> = roles.into_iter().collect();
    roles.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    roles
        .into_iter()
        .map(|(role, _)| role)
        .take(super::spike::TOP_LABELS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::Owners;

    fn change(id: &str, action: ChangeAction, at: i64, after: Option<&str>) -> TrustChange {
        TrustChange {
            event_id: id.into(),
            account: "111122223333".into(),
            action,
            at,
            actor: Some("arn:aws:iam::111122223333:user/alice".into()),
            role: Some("gha-deploy".into()),
            provider: None,
            policy_after: after.map(str::to_owned),
            client_id: None,
            client_ids: Vec::new(),
            thumbprints: Vec::new(),
        }
    }

    fn record(c: TrustChange) -> ChangeRecord {
        ChangeRecord::judge(c, None, &Owners::FromTrustPolicies)
    }

    #[test]
    fn the_policy_before_is_the_previous_records_after_else_the_cache() {
        let earlier = record(change(
            "a",
            ChangeAction::UpdateAssumeRolePolicy,
            100,
            Some("{\"v\":1}"),
        ));
        let later = record(change(
            "b",
            ChangeAction::UpdateAssumeRolePolicy,
            300,
            Some("{\"v\":3}"),
        ));
        let this = change("c", ChangeAction::UpdateAssumeRolePolicy, 200, Some("{}"));
        let recent = vec![earlier.clone(), later];
        assert_eq!(policy_before(&this, &recent, None).as_deref(), Some("{\"v\":1}"));
        let deleted = record(change("d", ChangeAction::DeleteRole, 150, None));
        assert_eq!(policy_before(&this, &[earlier, deleted], None), None);
        assert_eq!(
            policy_before(
                &change("n", ChangeAction::CreateRole, 200, Some("{}")),
                &recent,
                None
            ),
            None
        );
    }

    #[test]
    fn an_incident_names_the_changes_of_its_window_only() {
        let recent = vec![
            record(change("old", ChangeAction::UpdateAssumeRolePolicy, 1000, None)),
            record(change("new", ChangeAction::UpdateAssumeRolePolicy, 5000, None)),
            record(change("after", ChangeAction::UpdateAssumeRolePolicy, 5300, None)),
        ];
        let notes = incident_notes(&recent, Some("GHA-Deploy"), None, 5180, 3600);
        assert_eq!(
            notes.iter().map(|n| n.event_id.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
        assert!(notes[0]
            .sentence
            .starts_with("began 3 min after UpdateAssumeRolePolicy of role \"gha-deploy\""));
        assert!(incident_notes(&recent, Some("other"), None, 5180, 3600).is_empty());
        let stale = stale_for(&recent, Some("gha-deploy"), None, 5180, |id| id == "old");
        assert_eq!(
            stale
                .iter()
                .map(|r| r.change.event_id.as_str())
                .collect::<Vec<_>>(),
            ["new"]
        );
    }

    #[test]
    fn a_recovery_names_the_change_made_during_the_spike() {
        let recent = vec![
            record(change("before", ChangeAction::UpdateAssumeRolePolicy, 900, None)),
            record(change("fix", ChangeAction::UpdateAssumeRolePolicy, 1500, None)),
        ];
        let roles = vec!["gha-deploy".to_owned()];
        let notes = recovery_notes(&recent, &roles, 1000, 1620);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].sentence.starts_with("recovered 2 min after"),
            "{}",
            notes[0].sentence
        );
        let spike = spike_notes(&recent, &roles, 1000, 1000, 3600);
        assert_eq!(
            spike.iter().map(|n| n.event_id.as_str()).collect::<Vec<_>>(),
            ["before"]
        );
    }

    #[test]
    fn keys_and_tokens_are_per_event_and_per_role() {
        let a = change("a", ChangeAction::UpdateAssumeRolePolicy, 1, None);
        let mut b = a.clone();
        b.event_id = "b".into();
        assert_ne!(alert_key(&a), alert_key(&b));
        b.role = Some("GHA-DEPLOY".into());
        assert_eq!(token_key(&a), token_key(&b));
        let counts = vec![MinuteCount {
            minute: 20,
            failures: 3,
            labels: [
                ("role:x".to_owned(), 2),
                ("role:-".to_owned(), 1),
                ("cause:C".to_owned(), 3),
            ]
            .into(),
        }];
        assert_eq!(roles_between(&counts, 1200, 1300), ["x"]);
        assert!(roles_between(&counts, 1300, 1400).is_empty());
    }
}
