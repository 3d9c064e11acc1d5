//! `--history`: CloudTrail files and directories (read as `diagnose` reads them); each
//! successful `AssumeRoleWithWebIdentity` becomes a recorded success of its account and role.

use std::collections::{BTreeMap, BTreeSet};

use diagnosis::audit::History;
use diagnosis::claims::{account_of_arn, Claims, Outcome};
use diagnosis::evaluate::epoch_seconds;
use diagnosis::ports::ObservedSubject;
use diagnosis::{read_input, InputItem};

use super::AuditError;
use crate::input::{expand, PathOrStdin};

/// Subjects kept per role, as the monitor's record keeps at most so many.
const MAX_SUBJECTS_PER_ROLE: usize = diagnosis::ports::MAX_OBSERVED_SUBJECTS;

/// Per account: its history. `since` is the earliest event time read in any file.
pub fn read(paths: &[String]) -> Result<BTreeMap<String, History>, AuditError> {
    let mut by_account: BTreeMap<String, BTreeMap<String, BTreeMap<String, ObservedSubject>>> =
        BTreeMap::new();
    let mut since: Option<i64> = None;
    for source in expand(paths) {
        let source = source.map_err(|e| AuditError::History(e.to_string()))?;
        if let PathOrStdin::Path(path) = &source {
            if !path.exists() {
                return Err(AuditError::History(format!(
                    "{}: no such file or directory",
                    path.display()
                )));
            }
        }
        let input = source.read().map_err(|e| AuditError::History(e.to_string()))?;
        for item in read_input(&input.bytes) {
            let event = match item {
                Ok(InputItem::Event(event)) => event,
                Ok(InputItem::Skipped { .. }) => continue,
                Err(error) => {
                    return Err(AuditError::History(format!(
                        "{}: line {}: record {}: {}",
                        input.name, error.line, error.record, error.message
                    )))
                }
            };
            let claims = Claims::from_event(&event);
            let at = claims.event_time.as_deref().and_then(epoch_seconds);
            if let Some(at) = at {
                since = Some(since.map_or(at, |s| s.min(at)));
            }
            if claims.outcome != Outcome::Success {
                continue;
            }
            let (Some(role), Some(subject), Some(at)) =
                (claims.role_name.as_deref(), claims.subject.as_deref(), at)
            else {
                continue;
            };
            let Some(account) = claims
                .account_id
                .clone()
                .or_else(|| claims.role_arn.as_deref().and_then(account_of_arn))
            else {
                continue;
            };
            let subjects = by_account
                .entry(account)
                .or_default()
                .entry(role.to_ascii_lowercase())
                .or_default();
            if subjects.len() >= MAX_SUBJECTS_PER_ROLE && !subjects.contains_key(subject) {
                continue;
            }
            let provider = claims.provider.as_ref().map(|p| p.principal().to_owned());
            let entry = subjects
                .entry(subject.to_owned())
                .or_insert_with(|| ObservedSubject {
                    subject: subject.to_owned(),
                    provider: provider.clone(),
                    audience: claims.audience.clone(),
                    first_seen: at,
                    last_seen: at,
                });
            entry.first_seen = entry.first_seen.min(at);
            if at >= entry.last_seen {
                entry.last_seen = at;
                entry.provider = provider;
                entry.audience = claims.audience.clone();
            }
        }
    }
    Ok(by_account
        .into_iter()
        .map(|(account, roles)| {
            let history = History {
                source: "the CloudTrail files of --history".to_owned(),
                since,
                successes: roles
                    .into_iter()
                    .map(|(role, subjects)| (role, subjects.into_values().collect()))
                    .collect(),
            };
            (account, history)
        })
        .collect())
}

/// An empty history for an account the files have no success of, covering what they cover.
pub fn empty_like(histories: &BTreeMap<String, History>) -> Option<History> {
    let since = histories.values().filter_map(|h| h.since).min()?;
    Some(History {
        source: "the CloudTrail files of --history".to_owned(),
        since: Some(since),
        successes: BTreeMap::new(),
    })
}

/// Repositories (`owner/repo`, lower case) whose recorded successes carry immutable
/// subjects (`repo:owner@id/repo@id:…`).
pub fn immutable_repositories(histories: &BTreeMap<String, History>) -> BTreeSet<String> {
    histories
        .values()
        .flat_map(|h| h.successes.values().flatten())
        .filter_map(|s| {
            let segment = s.subject.strip_prefix("repo:")?.split(':').next()?;
            let (owner, repository) = segment.split_once('/')?;
            let (owner_name, _) = owner.split_once('@')?;
            let (repository_name, _) = repository.split_once('@')?;
            Some(format!("{owner_name}/{repository_name}").to_ascii_lowercase())
        })
        .collect()
}
