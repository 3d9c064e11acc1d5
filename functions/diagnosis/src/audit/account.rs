//! The account audit: every trust policy that names an OIDC provider and every provider of
//! an account, judged together, with what GitHub and the record of successes say when the
//! caller brings them. Pure: the caller looks things up ([`github_lookups`] says what) and
//! passes the answers in [`AuditOptions`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{FindingCode, Severity};
use crate::claims::Provider;
use crate::ports::ObservedSubject;
use crate::snapshot::AccountSnapshot;
use crate::suggest::SuggestedChange;

/// One finding of the account audit (README, "oidc-watch audit"; one JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountFinding {
    pub account: String,
    /// The role's name; `None` for a finding about a provider alone.
    pub role: Option<String>,
    /// The provider's URL (host and path), when the finding concerns one.
    pub provider: Option<String>,
    /// The statement's index in the role's trust policy.
    pub statement: Option<usize>,
    pub code: FindingCode,
    pub severity: Severity,
    /// The policy value, client ID, owner or repository the finding is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub message: String,
    /// A verified change of the trust policy that resolves the finding, if one exists.
    pub suggested_change: Option<SuggestedChange>,
}

impl AccountFinding {
    /// What identifies the finding from one audit to the next (the digest compares keys):
    /// everything but the message and the suggestion, which may word the same thing anew.
    pub fn key(&self) -> String {
        // Findings lifted from the policy audit have no value; their message is a function
        // of the policy alone.
        let value = match (&self.value, &self.role) {
            (Some(value), _) => value.as_str(),
            (None, Some(_)) => self.message.as_str(),
            (None, None) => "",
        };
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.account,
            self.role.as_deref().unwrap_or("").to_ascii_lowercase(),
            self.provider.as_deref().unwrap_or(""),
            self.statement.map(|s| s.to_string()).unwrap_or_default(),
            self.code,
            value
        )
    }
}

/// What the record of successes says about one account: per role (lower-case name), the
/// subjects that assumed it, recorded since `since` (epoch seconds).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Where the record comes from, for messages ("CloudTrail files", "the monitor's record").
    pub source: String,
    pub since: Option<i64>,
    pub successes: BTreeMap<String, Vec<ObservedSubject>>,
}

/// The GitHub owners, repositories and owner patterns the trust policies name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GithubLookups {
    /// Owner logins, lower case.
    pub owners: BTreeSet<String>,
    /// `owner/repo`, lower case.
    pub repositories: BTreeSet<String>,
    /// Owner positions with a wildcard (`acme*`), as written.
    pub owner_patterns: BTreeSet<String>,
}

/// What GitHub answered for [`GithubLookups`]; a name absent from a map was not looked up.
#[derive(Debug, Clone, Default)]
pub struct GithubFacts {
    /// By lower-case login.
    pub owners: BTreeMap<String, OwnerFact>,
    /// By lower-case `owner/repo` as the policy names it.
    pub repositories: BTreeMap<String, RepositoryFact>,
    /// By owner pattern: the logins GitHub knows that match it.
    pub pattern_matches: BTreeMap<String, Vec<String>>,
    /// Sentences about what was not looked up (no token, rate limit), for the report.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerFact {
    Exists { id: u64, organization: bool },
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryFact {
    /// `full_name` is GitHub's current `owner/repo`: different from the name looked up when
    /// the repository was renamed or transferred.
    Exists {
        full_name: String,
        id: u64,
        owner_id: u64,
        /// Whether its OIDC subjects are immutable (`repo:owner@id/repo@id:…`).
        immutable_subjects: bool,
    },
    NotFound,
}

/// What the audit may use besides the snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditOptions<'a> {
    /// Epoch seconds.
    pub now: i64,
    /// A role no recorded success assumed for this many days is reported (0: not judged).
    pub unused_days: u32,
    pub history: Option<&'a History>,
    pub github: Option<&'a GithubFacts>,
}

/// Audits every role of `snapshot` whose trust policy names an OIDC provider, and every
/// provider of the account. Findings are sorted by severity, role and statement.
pub fn audit_account(snapshot: &AccountSnapshot, options: &AuditOptions<'_>) -> Vec<AccountFinding> {
    let _ = options;
    let account = snapshot.account_id.as_str();
    let mut findings = Vec::new();
    let mut trusted_urls: BTreeSet<String> = BTreeSet::new();

    for role in &snapshot.roles {
        let Ok(policy) = &role.trust_policy else {
            continue;
        };
        let mut names_provider = false;
        for (index, statement) in policy.statements.iter().enumerate() {
            for principal in statement.federated_principals() {
                let Some(provider) = Provider::parse(principal) else {
                    continue;
                };
                if provider.arn.is_none() {
                    continue;
                }
                names_provider = true;
                trusted_urls.insert(provider.url.to_ascii_lowercase());
                let ours = provider.account_id.as_deref() == Some(account);
                if ours && snapshot.complete.all_providers && snapshot.is_provider_absent(&provider.url) {
                    findings.push(AccountFinding {
                        account: account.to_owned(),
                        role: Some(role.name.clone()),
                        provider: Some(provider.url.clone()),
                        statement: Some(index),
                        code: FindingCode::MissingProvider,
                        severity: Severity::Medium,
                        value: provider.arn.clone(),
                        message: format!(
                            "Statement {index} trusts the OIDC provider {}, which account {account} does not have: every call fails until it is created.",
                            crate::text::quote(&provider.url)
                        ),
                        suggested_change: None,
                    });
                }
            }
        }
        if !names_provider {
            continue;
        }
        for finding in role.findings.iter() {
            let provider = policy
                .statements
                .get(finding.statement)
                .and_then(|s| s.federated_principals().iter().find_map(|p| Provider::parse(p)))
                .map(|p| p.url);
            findings.push(AccountFinding {
                account: account.to_owned(),
                role: Some(role.name.clone()),
                provider,
                statement: Some(finding.statement),
                code: finding.code,
                severity: finding.severity,
                value: None,
                message: finding.message.clone(),
                suggested_change: None,
            });
        }
    }

    if snapshot.complete.all_roles {
        for provider in &snapshot.providers {
            if !trusted_urls.contains(&provider.url.to_ascii_lowercase()) {
                findings.push(AccountFinding {
                    account: account.to_owned(),
                    role: None,
                    provider: Some(provider.url.clone()),
                    statement: None,
                    code: FindingCode::UnusedProvider,
                    severity: Severity::Low,
                    value: provider.arn.clone(),
                    message: format!(
                        "No role of account {account} trusts the OIDC provider {}; delete it, or it waits for the first trust policy that names it.",
                        crate::text::quote(&provider.url)
                    ),
                    suggested_change: None,
                });
            }
        }
    }

    findings.sort_by(|a, b| {
        (a.severity, &a.role, a.statement, a.code.as_str(), &a.value).cmp(&(
            b.severity,
            &b.role,
            b.statement,
            b.code.as_str(),
            &b.value,
        ))
    });
    findings.dedup_by(|a, b| a.key() == b.key());
    findings
}

/// The GitHub names the trust policies of `snapshot` mention, for the caller to look up.
pub fn github_lookups(snapshot: &AccountSnapshot) -> GithubLookups {
    let _ = snapshot;
    GithubLookups::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(value: serde_json::Value) -> AccountSnapshot {
        AccountSnapshot::from_json(&value.to_string()).unwrap()
    }

    #[test]
    fn providers_no_role_trusts_and_roles_trusting_a_missing_provider() {
        let snapshot = snapshot(serde_json::json!({
            "AccountId": "111122223333",
            "Roles": [{"RoleName": "deploy", "Arn": "arn:aws:iam::111122223333:role/deploy",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                        "token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/main"}}}]}}],
            "OpenIDConnectProviders": [{"Arn": "arn:aws:iam::111122223333:oidc-provider/gitlab.com",
                "Url": "gitlab.com", "ClientIDList": ["https://gitlab.com"]}],
            "Complete": {"Roles": true, "OpenIDConnectProviders": true}
        }));
        let findings = audit_account(&snapshot, &AuditOptions::default());
        let codes: Vec<_> = findings.iter().map(|f| (f.code, f.role.as_deref())).collect();
        assert!(
            codes.contains(&(FindingCode::MissingProvider, Some("deploy"))),
            "{findings:#?}"
        );
        assert!(
            codes.contains(&(FindingCode::UnusedProvider, None)),
            "{findings:#?}"
        );
        assert!(
            codes.contains(&(FindingCode::NameBasedSubject, Some("deploy"))),
            "{findings:#?}"
        );
        let keys: BTreeSet<_> = findings.iter().map(AccountFinding::key).collect();
        assert_eq!(keys.len(), findings.len());
    }
}
