//! One scheduled run: read, audit and compare every account, publish one digest, save.

use diagnosis::alert::{digest_alert, UnreadAccount};
use diagnosis::audit::{audit_account, digest, AccountFinding, AuditOptions, Digest, History};
use diagnosis::ports::AlertSink;
use diagnosis::snapshot::AccountSnapshot;
use diagnosis::text::bound;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::ports::{AccountReader, FindingStore, SuccessRecord};
use crate::{AccountOutcome, Deps, HandlerError, Outcome, ScheduleEvent, SCHEDULE_SOURCE};

/// The longest error kept for one account.
const MAX_ERROR_CHARS: usize = 500;

/// One account read and audited, its findings not yet saved.
struct Audited {
    account: String,
    findings: Vec<AccountFinding>,
}

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle<R, F, S, A>(
    event: LambdaEvent<Value>,
    deps: &Deps<R, F, S, A>,
) -> Result<Outcome, HandlerError>
where
    R: AccountReader,
    F: FindingStore,
    S: SuccessRecord,
    A: AlertSink,
{
    check_schedule(&event.payload)?;
    let now = (deps.clock)();
    let targets: Vec<Option<&str>> = if deps.config.accounts.is_empty() {
        vec![None]
    } else {
        deps.config.accounts.iter().map(|a| Some(a.as_str())).collect()
    };

    let mut outcome = Outcome::default();
    let mut audited: Vec<Audited> = Vec::new();
    let mut unread: Vec<UnreadAccount> = Vec::new();
    let mut total = Digest::default();
    for target in targets {
        let label = target.unwrap_or("own").to_owned();
        let snapshot = match deps.accounts.read(target).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                let error = bound(&error, MAX_ERROR_CHARS);
                tracing::error!(account = %label, error = %error, "account not read; its previous findings stand");
                unread.push(UnreadAccount {
                    account: label.clone(),
                    error: error.clone(),
                });
                outcome.accounts.push(AccountOutcome {
                    account: label,
                    error: Some(error),
                    ..AccountOutcome::default()
                });
                continue;
            }
        };
        let account = snapshot.account_id.clone();
        let previous = deps
            .findings
            .previous(&account)
            .await
            .map_err(HandlerError::State)?;
        let history = match history(deps, &snapshot, now, previous.first_audit).await {
            Ok(history) => history,
            // Without the record the audit judges nothing by use, rather than calling every
            // role unused.
            Err(error) => {
                tracing::warn!(account = %account, error = %error, "record of successes not read; use is not judged");
                None
            }
        };
        let findings = audit_account(
            &snapshot,
            &AuditOptions {
                now,
                unused_days: deps.config.unused_days,
                history: history.as_ref(),
                ..AuditOptions::default()
            },
        );
        let changes = digest(&previous.findings, &findings);
        tracing::info!(
            account = %account,
            findings = findings.len(),
            new = changes.new.len(),
            resolved = changes.resolved.len(),
            "account audited"
        );
        outcome.accounts.push(AccountOutcome {
            account: account.clone(),
            findings: findings.len(),
            new: changes.new.len(),
            resolved: changes.resolved.len(),
            error: None,
        });
        total.new.extend(changes.new);
        total.resolved.extend(changes.resolved);
        total.unchanged += changes.unchanged;
        audited.push(Audited { account, findings });
    }

    if audited.is_empty() {
        let errors: Vec<String> = unread
            .iter()
            .map(|u| format!("{}: {}", u.account, u.error))
            .collect();
        return Err(HandlerError::NoAccountRead(bound(&errors.join("; "), 2000)));
    }
    if !total.is_empty() {
        let accounts: Vec<String> = audited.iter().map(|a| a.account.clone()).collect();
        let alert_account = match accounts.as_slice() {
            [one] => one.clone(),
            _ => "multiple".to_owned(),
        };
        let alert = digest_alert(&alert_account, &accounts, &total, &unread);
        deps.alerts.publish(&alert).await.map_err(HandlerError::Alert)?;
        tracing::info!(thread = %alert.thread_id, new = total.new.len(), resolved = total.resolved.len(), "digest published");
        outcome.published = true;
    }
    for a in &audited {
        deps.findings
            .save(&a.account, &a.findings, now)
            .await
            .map_err(HandlerError::State)?;
    }
    Ok(outcome)
}

fn check_schedule(payload: &Value) -> Result<(), HandlerError> {
    if payload.is_null() {
        return Ok(());
    }
    let event: ScheduleEvent = serde_json::from_value(payload.clone())
        .map_err(|e| HandlerError::NotSchedule(bound(&e.to_string(), 200)))?;
    match event.source.as_deref() {
        None | Some(SCHEDULE_SOURCE) => Ok(()),
        Some(other) => Err(HandlerError::NotSchedule(format!(
            "source {:?}",
            bound(other, 100)
        ))),
    }
}

/// The record of successes of every role that trusts an OIDC provider, when the monitor
/// keeps one (`OBSERVED_SUBJECT_DAYS` > 0). It covers the last `OBSERVED_SUBJECT_DAYS`,
/// and no more than the time since the first audit of the account: the monitor was
/// deployed with the auditor, and a role is not unused for lack of a record.
async fn history<R, F, S: SuccessRecord, A>(
    deps: &Deps<R, F, S, A>,
    snapshot: &AccountSnapshot,
    now: i64,
    first_audit: Option<i64>,
) -> Result<Option<History>, diagnosis::ports::PortError> {
    let days = deps.config.observed_subject_days;
    if days <= 0 {
        return Ok(None);
    }
    let since = (now - days * 86_400).max(first_audit.unwrap_or(now));
    let mut history = History {
        source: "the monitor's record of successes".to_owned(),
        since: Some(since),
        ..History::default()
    };
    for role in &snapshot.roles {
        let trusts_provider = role.trust_policy.as_ref().is_ok_and(|policy| {
            policy
                .statements
                .iter()
                .any(|s| !s.federated_principals().is_empty())
        });
        if !trusts_provider {
            continue;
        }
        let subjects = deps
            .successes
            .successful_subjects(&snapshot.account_id, &role.name)
            .await?;
        if !subjects.is_empty() {
            history.successes.insert(role.name.to_ascii_lowercase(), subjects);
        }
    }
    Ok(Some(history))
}
