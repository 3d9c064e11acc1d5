//! Findings on a trust policy, whatever the event: what lets strangers in, and what will
//! break. Semantics follow Prowler (`iam_role_github_oidc_trust_subject_restricted`),
//! Checkov CKV_AWS_358 and Datadog where they agree.

use serde::{Deserialize, Serialize};

pub mod account;
pub mod digest;

pub use account::{
    audit_account, github_lookups, AccountFinding, AuditOptions, GithubFacts, GithubLookups, History,
};
pub use digest::{digest, Digest};

use crate::claims::Provider;
use crate::evaluate::ASSUME_ROLE_WITH_WEB_IDENTITY;
use crate::keys::{is_provided_claim, split_claim_key};
use crate::pattern;
use crate::policy::{Effect, PolicyDocument, Principal, SetQualifier, Statement};
use crate::subject::ProviderKind;
use crate::text::quote;

crate::names::named_enum! {
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        High = "high",
        Medium = "medium",
        Low = "low",
    }
}

crate::names::named_enum! {
    pub enum FindingCode {
        /// No `sub` (or GitHub `job_workflow_ref`) condition under a strict operator.
        NoSubjectCondition,
        /// A wildcard where the owner or organisation goes: any GitHub user can match.
        OwnerWildcard,
        /// `ForAllValues:` on the single-valued `sub` or `aud`: true when the key is missing.
        ForAllValuesOnClaim,
        /// `…IfExists` on `sub` or `aud`: true when the key is missing.
        IfExistsOnClaim,
        NoAudienceCondition,
        StringLikeWithoutWildcard,
        /// A condition on a key STS never sets for this provider: positive operators fail.
        UnsupportedConditionKey,
        WildcardUnderStringEquals,
        /// Name-based GitHub subjects stop matching once a repository sends immutable subjects.
        NameBasedSubject,
        // The account audit (`oidc-watch audit`, oidc-auditor) adds these.
        /// An OIDC provider of the account that no role's trust policy names.
        UnusedProvider,
        /// A trust policy names an OIDC provider the account does not have: it always fails.
        MissingProvider,
        /// A client ID of the provider that no `aud` condition of any role uses.
        UnusedClientId,
        /// An `aud` condition on an audience that is not in the provider's client-ID list.
        AudienceNotAllowed,
        /// The thumbprint list of a provider whose issuer STS verifies by its CA.
        ThumbprintNotUsed,
        /// A GitHub owner the policy names no longer exists: anyone may register it.
        OwnerNotFound,
        /// A GitHub repository the policy names no longer exists: anyone may create it.
        RepositoryNotFound,
        /// A GitHub repository the policy names was renamed or transferred.
        RepositoryRenamed,
        /// A repository sends immutable subjects while the policy names it by name.
        ImmutableSubjectsNotNamed,
        /// An owner wildcard that matches owners outside the organisation's control.
        OwnerWildcardMatchesStrangers,
        /// A role no successful call assumed within `--unused-days`.
        UnusedRole,
        /// A statement, or a value of a condition, that no recorded successful subject used.
        UnusedTrust,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub statement: usize,
    pub message: String,
}

/// Audits every Allow statement of `policy` that trusts an OIDC provider for web identity.
pub fn audit(policy: &PolicyDocument) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, statement) in policy.statements.iter().enumerate() {
        if statement.effect != Effect::Allow || !allows_web_identity(statement) {
            continue;
        }
        let providers: Vec<Provider> = match &statement.principal {
            Some(Principal::Typed { federated, .. }) => {
                federated.iter().filter_map(|f| Provider::parse(f)).collect()
            }
            _ => Vec::new(),
        };
        for provider in &providers {
            audit_statement(index, statement, provider, &mut findings);
        }
    }
    findings.sort_by_key(|f| (f.severity, f.statement));
    findings.dedup_by(|a, b| a.code == b.code && a.statement == b.statement && a.message == b.message);
    findings
}

fn allows_web_identity(statement: &Statement) -> bool {
    let action = ASSUME_ROLE_WITH_WEB_IDENTITY.to_ascii_lowercase();
    match (&statement.action, &statement.not_action) {
        (Some(actions), _) => actions
            .iter()
            .any(|a| pattern::like(&a.to_ascii_lowercase(), &action)),
        (None, Some(not)) => !not
            .iter()
            .any(|a| pattern::like(&a.to_ascii_lowercase(), &action)),
        _ => false,
    }
}

fn audit_statement(index: usize, statement: &Statement, provider: &Provider, findings: &mut Vec<Finding>) {
    let url = &provider.url;
    let mut push = |code, severity, message: String| {
        findings.push(Finding {
            code,
            severity,
            statement: index,
            message,
        });
    };
    let claim_of = |key: &str| {
        split_claim_key(key)
            .filter(|(prefix, _)| prefix.eq_ignore_ascii_case(url))
            .map(|(_, claim)| claim.to_ascii_lowercase())
    };

    let mut strict_sub = false;
    let mut has_aud = false;
    for condition in &statement.conditions {
        let claim = claim_of(&condition.key);
        let op = condition.operator;
        let is_claim = |c: &str| claim.as_deref() == Some(c);
        if is_claim("aud") {
            has_aud = true;
        }
        if is_claim("sub") || is_claim("aud") {
            if op.set == Some(SetQualifier::ForAllValues) {
                push(
                    FindingCode::ForAllValuesOnClaim,
                    Severity::High,
                    format!("{} uses {} on the single-valued {}: it is true when the claim is missing. Use {} without ForAllValues.", statement_name(index), condition.operator_name, condition.key, strip_set(&condition.operator_name)),
                );
            } else if op.if_exists {
                push(
                    FindingCode::IfExistsOnClaim,
                    Severity::High,
                    format!(
                        "{} uses {} on {}: it is true when the claim is missing. Drop IfExists.",
                        statement_name(index),
                        condition.operator_name,
                        condition.key
                    ),
                );
            }
        }
        let strict = op.set.is_none() && !op.if_exists && op.base.is_strict_string_match();
        if strict
            && (is_claim("sub") || (provider.kind == ProviderKind::GitHub && is_claim("job_workflow_ref")))
        {
            strict_sub = true;
        }
        if is_claim("sub") && strict && provider.kind == ProviderKind::GitHub {
            audit_github_subjects(index, &condition.values, &mut push);
        }
        if op.base.is_string() && !op.base.takes_wildcards() {
            for value in condition.values.iter().filter(|v| pattern::has_wildcard(v)) {
                push(
                    FindingCode::WildcardUnderStringEquals,
                    Severity::Medium,
                    format!("{} compares {} with {} under {}, where `*` and `?` are literal: it never matches. Use StringLike.", statement_name(index), condition.key, quote(value), condition.operator_name),
                );
            }
        }
        if op.base == crate::policy::BaseOperator::StringLike && op.set.is_none() {
            for value in condition.values.iter().filter(|v| !pattern::has_wildcard(v)) {
                push(
                    FindingCode::StringLikeWithoutWildcard,
                    Severity::Low,
                    format!("{} uses StringLike for {} without a wildcard; StringEquals says the same more plainly.", statement_name(index), quote(value)),
                );
            }
        }
        match split_claim_key(&condition.key) {
            Some((prefix, claim)) if prefix.eq_ignore_ascii_case(url) && !is_provided_claim(provider.kind, claim) => push(
                FindingCode::UnsupportedConditionKey,
                Severity::Medium,
                format!("{} has a condition on {}, a claim STS does not evaluate for this provider: the key is always missing, so positive operators never match and negated ones always do.", statement_name(index), condition.key),
            ),
            Some((prefix, claim)) if !prefix.eq_ignore_ascii_case(url) && matches!(claim.to_ascii_lowercase().as_str(), "sub" | "aud") && looks_like_provider_prefix(prefix) => push(
                FindingCode::UnsupportedConditionKey,
                Severity::Medium,
                format!("{} trusts provider {} but its condition key {} has another prefix; STS names the key {}:{}.", statement_name(index), quote(url), condition.key, url, claim),
            ),
            _ => {}
        }
    }
    if !strict_sub {
        let severity = if provider.kind.is_shared() {
            Severity::High
        } else {
            Severity::Medium
        };
        push(
            FindingCode::NoSubjectCondition,
            severity,
            format!(
                "{} trusts {} with no StringEquals/StringLike condition on {url}:sub: {}.",
                statement_name(index),
                quote(url),
                if provider.kind.is_shared() {
                    "any of the provider's users (any repository, project or workspace) can assume this role"
                } else {
                    "every identity of this issuer can assume this role"
                }
            ),
        );
    }
    if !has_aud {
        push(
            FindingCode::NoAudienceCondition,
            Severity::Low,
            format!(
                "{} has no condition on {url}:aud; only the provider's client-ID list limits the audience.",
                statement_name(index)
            ),
        );
    }
}

fn audit_github_subjects(
    index: usize,
    values: &[String],
    push: &mut impl FnMut(FindingCode, Severity, String),
) {
    for value in values {
        let owner = value
            .strip_prefix("repo:")
            .map(|rest| rest.split(['/', ':']).next().unwrap_or(""))
            .or_else(|| {
                value
                    .strip_prefix("repository_owner:")
                    .map(|rest| rest.split(':').next().unwrap_or(""))
            });
        match owner {
            Some(owner) if owner.is_empty() || pattern::has_wildcard(owner) => push(
                FindingCode::OwnerWildcard,
                Severity::High,
                format!("{} allows {}: the wildcard in the owner position lets any GitHub user's repository assume this role.", statement_name(index), quote(value)),
            ),
            None if pattern::has_wildcard(value) && pattern::like(value, "repo:stranger/repo:ref:refs/heads/main") => push(
                FindingCode::OwnerWildcard,
                Severity::High,
                format!("{} allows {}, which matches any GitHub repository.", statement_name(index), quote(value)),
            ),
            Some(owner) if value.starts_with("repo:") && !owner.contains('@') => push(
                FindingCode::NameBasedSubject,
                Severity::Low,
                format!("{} names the repository as {}; once it sends immutable subjects (repo:OWNER@ID/REPO@ID:…, the default for repositories created or renamed after 2026-07-15) this value stops matching.", statement_name(index), quote(value)),
            ),
            _ => {}
        }
    }
}

fn statement_name(index: usize) -> String {
    format!("Statement {index}")
}

fn strip_set(operator: &str) -> &str {
    operator.split_once(':').map_or(operator, |(_, base)| base)
}

fn looks_like_provider_prefix(prefix: &str) -> bool {
    prefix.contains('.') && !prefix.contains(' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(conditions: serde_json::Value) -> Vec<FindingCode> {
        let policy = PolicyDocument::from_value(&json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": conditions}]}))
        .unwrap();
        audit(&policy).into_iter().map(|f| f.code).collect()
    }

    #[test]
    fn well_scoped_policy_has_only_the_name_based_note() {
        let found = codes(json!({
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/web:*"}}));
        assert_eq!(found, [FindingCode::NameBasedSubject]);
    }

    #[test]
    fn flags_what_lets_strangers_in() {
        let found =
            codes(json!({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}));
        assert_eq!(found, [FindingCode::NoSubjectCondition]);
        for sub in ["repo:*", "*", "repo:ac*/web:*"] {
            let found = codes(
                json!({"StringLike": {"token.actions.githubusercontent.com:sub": sub,
                                                    "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}),
            );
            assert!(found.contains(&FindingCode::OwnerWildcard), "{sub}: {found:?}");
        }
        let found = codes(
            json!({"ForAllValues:StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"},
                                 "StringEqualsIfExists": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}),
        );
        assert!(found.contains(&FindingCode::ForAllValuesOnClaim));
        assert!(found.contains(&FindingCode::IfExistsOnClaim));
        assert!(found.contains(&FindingCode::NoSubjectCondition));
    }

    #[test]
    fn flags_what_never_matches() {
        let found = codes(json!({
            "StringEquals": {"token.actions.githubusercontent.com:sub": "repo:acme/web:*",
                             "token.actions.githubusercontent.com:event_name": "push",
                             "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}));
        assert!(found.contains(&FindingCode::WildcardUnderStringEquals));
        assert!(found.contains(&FindingCode::UnsupportedConditionKey));
    }
}
