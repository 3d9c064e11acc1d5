//! What the record of successes says: roles nobody assumed within the window, statements
//! and `sub` values no recorded success needed.

use std::collections::BTreeSet;

use super::tighten::{matching_statements, Judge};
use super::{AccountFinding, AuditOptions, History, TrustStatement};
use crate::audit::{FindingCode, Severity};
use crate::claims::Claims;
use crate::pattern::like;
use crate::policy::{BaseOperator, Condition};
use crate::ports::ObservedSubject;
use crate::suggest::{Edit, Target};
use crate::text::quote;

const DAY: i64 = 86_400;

/// The history, when it reaches back over the whole window (`unused_days` > 0).
pub(super) fn covering<'a>(options: &AuditOptions<'a>) -> Option<&'a History> {
    let history = options.history?;
    let window = i64::from(options.unused_days) * DAY;
    let start = options.now.checked_sub(window)?;
    (options.unused_days > 0 && history.since.is_some_and(|since| since <= start)).then_some(history)
}

/// The role's recorded successes (role names compare without regard to case).
pub(super) fn successes<'a>(history: &'a History, role: &str) -> &'a [ObservedSubject] {
    history
        .successes
        .get(&role.to_ascii_lowercase())
        .or_else(|| {
            history
                .successes
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(role))
                .map(|(_, subjects)| subjects)
        })
        .map_or(&[], Vec::as_slice)
}

/// `UnusedRole` when no recorded success falls in the window; else `UnusedTrust` for each
/// web-identity statement no success matched, and each `sub` value of a used statement no
/// success matched.
pub(super) fn findings(
    role: &str,
    trusts: &[&TrustStatement<'_>],
    successes: &[ObservedSubject],
    claims: &[Claims],
    options: &AuditOptions<'_>,
    judge: Option<&Judge<'_>>,
    out: &mut Vec<AccountFinding>,
) {
    let (Some(history), Some(first)) = (covering(options), trusts.first()) else {
        return;
    };
    let window_start = options.now - i64::from(options.unused_days) * DAY;
    let recent = successes.iter().filter(|s| s.last_seen >= window_start).count();
    if recent == 0 {
        let last = successes.iter().map(|s| s.last_seen).max();
        out.push(first.role_finding(
            FindingCode::UnusedRole,
            Severity::Low,
            Some(format!("{} days", options.unused_days)),
            format!(
                "No successful AssumeRoleWithWebIdentity of role {} in the last {} days ({}{}): if nothing needs it, delete the role or its web-identity trust.",
                quote(role),
                options.unused_days,
                history_source(history),
                match last.map(crate::time::iso8601) {
                    Some(at) => format!("; the last recorded success was at {at}"),
                    None => String::new(),
                }
            ),
        ));
        return;
    }
    let matched: Vec<Vec<usize>> = claims
        .iter()
        .map(|c| matching_statements(first.policy, c).unwrap_or_default())
        .collect();
    for trust in trusts {
        let users: Vec<&Claims> = claims
            .iter()
            .zip(&matched)
            .filter(|(_, statements)| statements.contains(&trust.index))
            .map(|(c, _)| c)
            .collect();
        if users.is_empty() {
            out.push(trust.finding(
                FindingCode::UnusedTrust,
                Severity::Low,
                Some(format!("statement {}", trust.index)),
                format!(
                    "No recorded successful call of role {} used statement {} ({}): its trust may be removed.",
                    quote(role),
                    trust.index,
                    history_source(history)
                ),
                None,
            ));
            continue;
        }
        let subjects: BTreeSet<&str> = users.iter().filter_map(|c| c.subject.as_deref()).collect();
        for (condition, _) in trust.positive_claim_conditions(&["sub"]) {
            for value in &condition.values {
                if subjects.iter().any(|s| value_matches(condition, value, s)) {
                    continue;
                }
                let change = judge.and_then(|j| removal(j, trust.index, condition, value));
                out.push(trust.finding(
                    FindingCode::UnusedTrust,
                    Severity::Low,
                    Some(value.clone()),
                    format!(
                        "No recorded successful call of role {} presented a subject matching {} in statement {} ({}): the value may be removed.",
                        quote(role),
                        quote(value),
                        trust.index,
                        history_source(history)
                    ),
                    change,
                ));
            }
        }
    }
}

fn history_source(history: &History) -> String {
    let source = if history.source.is_empty() {
        "the record of successes"
    } else {
        history.source.as_str()
    };
    match history.since.map(crate::time::iso8601) {
        Some(since) => format!("{source} since {since}"),
        None => source.to_owned(),
    }
}

fn value_matches(condition: &Condition, value: &str, subject: &str) -> bool {
    match condition.operator.base {
        BaseOperator::StringLike => like(value, subject),
        BaseOperator::StringEqualsIgnoreCase => value.eq_ignore_ascii_case(subject),
        _ => value == subject,
    }
}

fn removal(
    judge: &Judge<'_>,
    statement: usize,
    condition: &Condition,
    value: &str,
) -> Option<crate::suggest::SuggestedChange> {
    if condition.values.iter().all(|v| v == value) {
        return None;
    }
    judge.verify(&Edit {
        statement,
        target: Target::Condition {
            operator: condition.operator_name.clone(),
            key: condition.key.clone(),
        },
        add: Vec::new(),
        remove: vec![value.to_owned()],
    })
}
