//! The account audit: every trust policy that names an OIDC provider and every provider of
//! an account, judged together, with what GitHub and the record of successes say when the
//! caller brings them. Pure: the caller looks things up ([`github_lookups`] says what) and
//! passes the answers in [`AuditOptions`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

mod github;
mod history;
mod tighten;

use super::{Finding, FindingCode, Severity};
use crate::claims::{Claims, Provider};
use crate::evaluate::ASSUME_ROLE_WITH_WEB_IDENTITY;
use crate::keys::split_claim_key;
use crate::owner::{owners_of_account, Owner, OwnerScope};
use crate::pattern::{has_wildcard, like, like_ignore_case};
use crate::policy::{BaseOperator, Condition, PolicyDocument, Statement};
use crate::ports::ObservedSubject;
use crate::snapshot::{AccountSnapshot, OidcProvider, Role};
use crate::subject::ProviderKind;
use crate::suggest::{Edit, SuggestedChange, Target};
use crate::text::{finish_message, quote};
use tighten::{claims_for, Judge};

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
    /// Owners that are ours besides those the account's trust policies name exactly
    /// (`--owners`, `ALLOWED_OWNERS`): a suggested change adds values of these only.
    pub known_owners: &'a [Owner],
}

/// One Allow statement of a role's trust policy that trusts an IAM OIDC provider for
/// web identity.
pub(crate) struct TrustStatement<'a> {
    pub account: &'a str,
    pub role: &'a Role,
    pub policy: &'a PolicyDocument,
    pub index: usize,
    pub statement: &'a Statement,
    pub provider: Provider,
}

impl TrustStatement<'_> {
    fn is_github(&self) -> bool {
        self.provider.kind == ProviderKind::GitHub
    }

    /// The conditions on `<provider>:<claim>` for these claims under a positive string
    /// operator (no `ForAllValues`, no `IfExists`), with the claim in lower case.
    fn positive_claim_conditions(&self, claims: &[&str]) -> Vec<(&Condition, String)> {
        self.statement
            .conditions
            .iter()
            .filter(|c| {
                c.operator.base.is_strict_string_match() && c.operator.set.is_none() && !c.operator.if_exists
            })
            .filter_map(|c| {
                let (prefix, claim) = split_claim_key(&c.key)?;
                let claim = claim.to_ascii_lowercase();
                (prefix.eq_ignore_ascii_case(&self.provider.url) && claims.contains(&claim.as_str()))
                    .then_some((c, claim))
            })
            .collect()
    }

    fn finding(
        &self,
        code: FindingCode,
        severity: Severity,
        value: Option<String>,
        message: String,
        suggested_change: Option<SuggestedChange>,
    ) -> AccountFinding {
        AccountFinding {
            account: self.account.to_owned(),
            role: Some(self.role.name.clone()),
            provider: Some(self.provider.url.clone()),
            statement: Some(self.index),
            code,
            severity,
            value,
            message: finish_message(message),
            suggested_change,
        }
    }

    /// A finding about the role as a whole.
    fn role_finding(
        &self,
        code: FindingCode,
        severity: Severity,
        value: Option<String>,
        message: String,
    ) -> AccountFinding {
        AccountFinding {
            statement: None,
            ..self.finding(code, severity, value, message, None)
        }
    }
}

fn allows_web_identity(statement: &Statement) -> bool {
    statement.is_allow()
        && match (&statement.action, &statement.not_action) {
            (Some(actions), _) => actions
                .iter()
                .any(|a| like_ignore_case(a, ASSUME_ROLE_WITH_WEB_IDENTITY)),
            (None, Some(not)) => !not
                .iter()
                .any(|a| like_ignore_case(a, ASSUME_ROLE_WITH_WEB_IDENTITY)),
            _ => false,
        }
}

/// Every statement of every role that trusts an IAM OIDC provider (by ARN).
fn trust_statements(snapshot: &AccountSnapshot) -> Vec<TrustStatement<'_>> {
    let mut trusts = Vec::new();
    for role in &snapshot.roles {
        let Ok(policy) = &role.trust_policy else {
            continue;
        };
        for (index, statement) in policy.statements.iter().enumerate() {
            for principal in statement.federated_principals() {
                let Some(provider) = Provider::parse(principal).filter(|p| p.arn.is_some()) else {
                    continue;
                };
                trusts.push(TrustStatement {
                    account: snapshot.account_id.as_str(),
                    role,
                    policy,
                    index,
                    statement,
                    provider,
                });
            }
        }
    }
    trusts
}

/// GitHub owner logins that are ours, lower case: those given, and those the account's
/// trust policies name exactly, less any GitHub says no longer exists.
fn known_github_owners(snapshot: &AccountSnapshot, options: &AuditOptions<'_>) -> BTreeSet<String> {
    owners_of_account(snapshot)
        .iter()
        .chain(options.known_owners)
        .filter(|o| o.scope == OwnerScope::GitHub)
        .map(|o| o.name.to_ascii_lowercase())
        .filter(|name| {
            !options
                .github
                .is_some_and(|facts| facts.owners.get(name) == Some(&OwnerFact::NotFound))
        })
        .collect()
}

/// Audits every role of `snapshot` whose trust policy names an OIDC provider, and every
/// provider of the account. Findings are sorted by severity, role and statement.
pub fn audit_account(snapshot: &AccountSnapshot, options: &AuditOptions<'_>) -> Vec<AccountFinding> {
    let account = snapshot.account_id.as_str();
    let mut findings = Vec::new();
    let trusts = trust_statements(snapshot);
    let known_owners = known_github_owners(snapshot, options);
    let no_successes = History::default();

    for role in &snapshot.roles {
        let role_trusts: Vec<&TrustStatement> =
            trusts.iter().filter(|t| std::ptr::eq(t.role, role)).collect();
        let Some(first) = role_trusts.first() else {
            continue;
        };
        let observed = history::successes(options.history.unwrap_or(&no_successes), &role.name);
        let claims: Vec<Claims> = observed
            .iter()
            .map(|o| {
                claims_for(
                    o.provider.as_deref().unwrap_or(first.provider.principal()),
                    &o.subject,
                    o.audience.as_deref(),
                )
            })
            .collect();
        let judges: Vec<Judge> = role_trusts
            .iter()
            .map(|trust| Judge {
                policy: trust.policy,
                provider: &trust.provider,
                successes: &claims,
                known_owners: &known_owners,
                audience: stranger_audience(snapshot, trust),
            })
            .collect();

        for (trust, judge) in role_trusts.iter().zip(&judges) {
            if allows_web_identity(trust.statement)
                && snapshot.is_provider_absent(&trust.provider.url)
                && trust.provider.account_id.as_deref() == Some(account)
            {
                findings.push(trust.finding(
                    FindingCode::MissingProvider,
                    Severity::Medium,
                    trust.provider.arn.clone(),
                    format!(
                        "Statement {} trusts the OIDC provider {}, which account {account} does not have: every call fails until it is created.",
                        trust.index,
                        quote(&trust.provider.url)
                    ),
                    None,
                ));
            }
            if !allows_web_identity(trust.statement) {
                continue;
            }
            audience_findings(snapshot, trust, &mut findings);
            if let Some(facts) = options.github {
                let context = github::GithubContext {
                    facts,
                    known_owners: &known_owners,
                };
                github::findings(trust, &context, Some(judge), &mut findings);
            }
        }

        for finding in role.findings.iter() {
            let trust = role_trusts
                .iter()
                .zip(&judges)
                .find(|(t, _)| t.index == finding.statement);
            let provider = trust.map(|(t, _)| t.provider.url.clone()).or_else(|| {
                first
                    .policy
                    .statements
                    .get(finding.statement)
                    .and_then(|s| s.federated_principals().iter().find_map(|p| Provider::parse(p)))
                    .map(|p| p.url)
            });
            let suggested_change = trust.and_then(|(t, judge)| lifted_change(t, judge, finding, &claims));
            findings.push(AccountFinding {
                account: account.to_owned(),
                role: Some(role.name.clone()),
                provider,
                statement: Some(finding.statement),
                code: finding.code,
                severity: finding.severity,
                value: None,
                message: finding.message.clone(),
                suggested_change,
            });
        }

        let web_identity: Vec<&TrustStatement> = role_trusts
            .iter()
            .copied()
            .filter(|t| allows_web_identity(t.statement))
            .collect();
        let judge = judges.first();
        history::findings(
            &role.name,
            &web_identity,
            observed,
            &claims,
            options,
            judge,
            &mut findings,
        );
    }

    provider_findings(snapshot, &trusts, &mut findings);

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

/// The audience a stranger's token carries when an edit is judged: one the provider
/// allows and the statement asks for, if any.
fn stranger_audience(snapshot: &AccountSnapshot, trust: &TrustStatement<'_>) -> String {
    let asked: Vec<&String> = trust
        .positive_claim_conditions(&["aud"])
        .into_iter()
        .flat_map(|(c, _)| &c.values)
        .collect();
    asked
        .iter()
        .find(|v| !has_wildcard(v))
        .map(|v| v.as_str())
        .or_else(|| {
            snapshot
                .provider(&trust.provider.url)
                .and_then(|p| p.client_ids.first())
                .map(String::as_str)
        })
        .unwrap_or("sts.amazonaws.com")
        .to_owned()
}

/// A verified change for a finding of the policy audit: an owner wildcard narrowed to the
/// owners we know that recorded successes came from; a missing `sub` condition filled with
/// the repositories of ours that recorded successes came from.
fn lifted_change(
    trust: &TrustStatement<'_>,
    judge: &Judge<'_>,
    finding: &Finding,
    claims: &[Claims],
) -> Option<SuggestedChange> {
    if !trust.is_github() {
        return None;
    }
    let ours = |c: &&Claims| {
        c.derived
            .owner
            .as_deref()
            .is_some_and(|o| judge.known_owners.contains(&o.to_ascii_lowercase()))
    };
    match finding.code {
        FindingCode::OwnerWildcard => {
            let (condition, value) =
                trust
                    .positive_claim_conditions(&["sub"])
                    .into_iter()
                    .find_map(|(c, _)| {
                        c.values
                            .iter()
                            .find(|v| finding.message.contains(&quote(v)))
                            .map(|v| (c, v))
                    })?;
            let parsed = github::GithubValue::parse(value);
            let mut narrowed: BTreeSet<String> = BTreeSet::new();
            for claims in claims.iter().filter(ours) {
                let (Some(subject), Some(owner)) =
                    (claims.subject.as_deref(), claims.derived.owner.as_deref())
                else {
                    continue;
                };
                if !like(value, subject) {
                    continue;
                }
                let owner_written = subject_owner_segment(subject).unwrap_or(owner);
                narrowed.insert(match &parsed {
                    Some(p) if p.repository.is_some() => {
                        format!("repo:{owner_written}/{}{}", p.repository.unwrap_or("*"), p.tail)
                    }
                    _ => format!("repo:{owner_written}/*"),
                });
            }
            if narrowed.is_empty() {
                return None;
            }
            judge.verify(&Edit {
                statement: trust.index,
                target: Target::Condition {
                    operator: "StringLike".to_owned(),
                    key: condition.key.clone(),
                },
                add: narrowed.into_iter().collect(),
                remove: vec![value.clone()],
            })
        }
        FindingCode::NoSubjectCondition => {
            let repositories: BTreeSet<String> = claims
                .iter()
                .filter(ours)
                .filter_map(|c| c.subject.as_deref())
                .filter_map(|s| s.strip_prefix("repo:").and_then(|rest| rest.split(':').next()))
                .map(|repository| format!("repo:{repository}:*"))
                .collect();
            if repositories.is_empty() {
                return None;
            }
            judge.verify(&Edit {
                statement: trust.index,
                target: Target::Condition {
                    operator: "StringLike".to_owned(),
                    key: format!("{}:sub", trust.provider.url),
                },
                add: repositories.into_iter().collect(),
                remove: Vec::new(),
            })
        }
        _ => None,
    }
}

/// The owner as a subject writes it: `acme` or `acme@123`.
fn subject_owner_segment(subject: &str) -> Option<&str> {
    subject
        .strip_prefix("repo:")?
        .split(['/', ':'])
        .next()
        .filter(|o| !o.is_empty())
}

/// `aud` values no client ID of the provider allows.
fn audience_findings(snapshot: &AccountSnapshot, trust: &TrustStatement<'_>, out: &mut Vec<AccountFinding>) {
    let Some(provider) = snapshot.provider(&trust.provider.url) else {
        return;
    };
    for (condition, _) in trust.positive_claim_conditions(&["aud"]) {
        for value in &condition.values {
            if provider
                .client_ids
                .iter()
                .any(|id| condition_value_matches(condition, value, id))
            {
                continue;
            }
            out.push(trust.finding(
                FindingCode::AudienceNotAllowed,
                Severity::Low,
                Some(value.clone()),
                format!(
                    "Statement {} accepts the audience {}, which no client ID of the provider {} allows: STS rejects such tokens (\"Incorrect token audience\") before the trust policy is read. Add it to the provider's client-ID list, or drop it here.",
                    trust.index,
                    quote(value),
                    quote(&provider.url)
                ),
                None,
            ));
        }
    }
}

fn condition_value_matches(condition: &Condition, value: &str, actual: &str) -> bool {
    match condition.operator.base {
        BaseOperator::StringLike => like(value, actual),
        BaseOperator::StringEqualsIgnoreCase => value.eq_ignore_ascii_case(actual),
        _ => value == actual,
    }
}

/// Whether AWS verifies this issuer by its library of trusted CAs, ignoring thumbprints.
fn verified_by_trusted_ca(url: &str) -> bool {
    let host = url.split('/').next().unwrap_or(url).to_ascii_lowercase();
    match ProviderKind::from_url(url) {
        ProviderKind::GitHub | ProviderKind::Eks | ProviderKind::Google => true,
        ProviderKind::GitLab => host == "gitlab.com",
        _ => false,
    }
}

/// Providers no role trusts, client IDs no `aud` condition uses, thumbprint lists that do
/// not matter.
fn provider_findings(
    snapshot: &AccountSnapshot,
    trusts: &[TrustStatement<'_>],
    out: &mut Vec<AccountFinding>,
) {
    let account = snapshot.account_id.as_str();
    let provider_finding =
        |provider: &OidcProvider, code, value: Option<String>, message: String| AccountFinding {
            account: account.to_owned(),
            role: None,
            provider: Some(provider.url.clone()),
            statement: None,
            code,
            severity: Severity::Low,
            value,
            message: finish_message(message),
            suggested_change: None,
        };
    for provider in &snapshot.providers {
        let trusting: Vec<&TrustStatement> = trusts
            .iter()
            .filter(|t| {
                t.provider.url.eq_ignore_ascii_case(&provider.url) && allows_web_identity(t.statement)
            })
            .collect();
        if snapshot.complete.all_roles
            && !trusts
                .iter()
                .any(|t| t.provider.url.eq_ignore_ascii_case(&provider.url))
        {
            out.push(provider_finding(
                provider,
                FindingCode::UnusedProvider,
                provider.arn.clone(),
                format!(
                    "No role of account {account} trusts the OIDC provider {}; delete it, or it waits for the first trust policy that names it.",
                    quote(&provider.url)
                ),
            ));
        }
        if verified_by_trusted_ca(&provider.url) && !provider.thumbprint_list.is_empty() {
            out.push(provider_finding(
                provider,
                FindingCode::ThumbprintNotUsed,
                None,
                format!(
                    "AWS verifies {} by its library of trusted certificate authorities: the provider's thumbprint list ({} entries) is not used, and needs no update when the issuer's certificate changes.",
                    quote(&provider.url),
                    provider.thumbprint_list.len()
                ),
            ));
        }
        let every_statement_names_audience = trusting
            .iter()
            .all(|t| !t.positive_claim_conditions(&["aud"]).is_empty());
        if !snapshot.complete.all_roles || trusting.is_empty() || !every_statement_names_audience {
            continue;
        }
        for client_id in &provider.client_ids {
            let used = trusting.iter().any(|t| {
                t.positive_claim_conditions(&["aud"])
                    .iter()
                    .any(|(c, _)| c.values.iter().any(|v| condition_value_matches(c, v, client_id)))
            });
            if !used {
                out.push(provider_finding(
                    provider,
                    FindingCode::UnusedClientId,
                    Some(client_id.clone()),
                    format!(
                        "The client ID {} of the provider {} is in no role's aud condition: tokens for that audience are accepted by STS but no trust policy admits them. Remove it from the client-ID list.",
                        quote(client_id),
                        quote(&provider.url)
                    ),
                ));
            }
        }
    }
}

/// The GitHub names the trust policies of `snapshot` mention, for the caller to look up.
pub fn github_lookups(snapshot: &AccountSnapshot) -> GithubLookups {
    github::lookups(&trust_statements(snapshot))
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

    const GITHUB: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    /// One account with a GitHub provider and one role per (name, sub operator, sub values).
    fn account(roles: &[(&str, &str, &[&str])]) -> AccountSnapshot {
        let roles: Vec<serde_json::Value> = roles
            .iter()
            .map(|(name, operator, subs)| {
                serde_json::json!({"RoleName": name, "Arn": format!("arn:aws:iam::111122223333:role/{name}"),
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"Federated": GITHUB},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                            *operator: {"token.actions.githubusercontent.com:sub": subs}}}]}})
            })
            .collect();
        snapshot(serde_json::json!({
            "AccountId": "111122223333", "Roles": roles,
            "OpenIDConnectProviders": [{"Arn": GITHUB, "Url": "token.actions.githubusercontent.com",
                "ClientIDList": ["sts.amazonaws.com"]}],
            "Complete": {"Roles": true, "OpenIDConnectProviders": true}
        }))
    }

    fn history(role: &str, subjects: &[(&str, i64)]) -> History {
        History {
            source: "CloudTrail files".to_owned(),
            since: Some(NOW - 200 * DAY),
            successes: BTreeMap::from([(
                role.to_owned(),
                subjects
                    .iter()
                    .map(|(subject, at)| ObservedSubject {
                        subject: (*subject).to_owned(),
                        provider: Some(GITHUB.to_owned()),
                        audience: Some("sts.amazonaws.com".to_owned()),
                        first_seen: *at,
                        last_seen: *at,
                    })
                    .collect(),
            )]),
        }
    }

    fn of_code(findings: &[AccountFinding], code: FindingCode) -> Vec<&AccountFinding> {
        findings.iter().filter(|f| f.code == code).collect()
    }

    fn admits(change: &SuggestedChange, subject: &str) -> bool {
        let policy = PolicyDocument::from_value(&change.policy).unwrap();
        tighten::allows(&policy, &claims_for(GITHUB, subject, Some("sts.amazonaws.com")))
    }

    #[test]
    fn github_names_that_are_gone_renamed_or_immutable() {
        let snapshot = account(&[(
            "deploy",
            "StringLike",
            &[
                "repo:acme/web:ref:refs/heads/main",
                "repo:acme/old:*",
                "repo:acme/api:*",
                "repo:acme/moved:*",
                "repo:gone-org/tool:*",
            ],
        )]);
        let lookups = github_lookups(&snapshot);
        assert_eq!(
            lookups.owners,
            BTreeSet::from(["acme".to_owned(), "gone-org".to_owned()])
        );
        assert!(lookups.repositories.contains("acme/old") && lookups.repositories.contains("gone-org/tool"));
        let exists = |full_name: &str, immutable: bool| RepositoryFact::Exists {
            full_name: full_name.to_owned(),
            id: 42,
            owner_id: 7,
            immutable_subjects: immutable,
        };
        let facts = GithubFacts {
            owners: BTreeMap::from([
                (
                    "acme".to_owned(),
                    OwnerFact::Exists {
                        id: 7,
                        organization: true,
                    },
                ),
                ("gone-org".to_owned(), OwnerFact::NotFound),
            ]),
            repositories: BTreeMap::from([
                ("acme/web".to_owned(), exists("acme/web", false)),
                ("acme/old".to_owned(), RepositoryFact::NotFound),
                ("acme/api".to_owned(), exists("acme/api", true)),
                ("acme/moved".to_owned(), exists("acme/renamed", false)),
            ]),
            ..GithubFacts::default()
        };
        let options = AuditOptions {
            now: NOW,
            github: Some(&facts),
            ..AuditOptions::default()
        };
        let findings = audit_account(&snapshot, &options);
        let owner = of_code(&findings, FindingCode::OwnerNotFound);
        assert_eq!(owner.len(), 1, "{findings:#?}");
        assert_eq!(
            (owner[0].severity, owner[0].value.as_deref()),
            (Severity::High, Some("gone-org"))
        );
        // Removing it leaves acme's values, which nobody else can satisfy.
        let removal = owner[0].suggested_change.as_ref().expect("a verified removal");
        assert_eq!(removal.remove, ["repo:gone-org/tool:*"]);
        assert!(!admits(removal, "repo:gone-org/tool:ref:refs/heads/main"));
        assert!(admits(removal, "repo:acme/web:ref:refs/heads/main"));

        let missing = of_code(&findings, FindingCode::RepositoryNotFound);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].value.as_deref(), Some("acme/old"));

        let renamed = of_code(&findings, FindingCode::RepositoryRenamed);
        assert_eq!(renamed.len(), 1);
        assert_eq!(renamed[0].severity, Severity::Medium);
        assert!(
            renamed[0].message.contains("\"acme/renamed\""),
            "{}",
            renamed[0].message
        );
        let change = renamed[0].suggested_change.as_ref().expect("the new name added");
        assert_eq!(change.add, ["repo:acme/renamed:*"]);
        assert!(admits(change, "repo:acme/renamed:ref:refs/heads/main"));

        let immutable = of_code(&findings, FindingCode::ImmutableSubjectsNotNamed);
        assert_eq!(immutable.len(), 1, "{findings:#?}");
        assert!(
            immutable[0].message.contains("\"repo:acme@7/api@42:*\""),
            "{}",
            immutable[0].message
        );
        let change = immutable[0].suggested_change.as_ref().unwrap();
        assert!(admits(change, "repo:acme@7/api@42:ref:refs/heads/main"));
        assert!(!admits(change, "repo:acme@8/api@42:ref:refs/heads/main"));
        // The repository that exists under its name is not reported.
        assert!(findings.iter().all(|f| f.value.as_deref() != Some("acme/web")));
    }

    #[test]
    fn an_owner_wildcard_that_matches_strangers() {
        let snapshot = account(&[
            ("deploy", "StringLike", &["repo:acme*/web:*"]),
            ("other", "StringEquals", &["repo:acme/site:ref:refs/heads/main"]),
        ]);
        assert!(github_lookups(&snapshot).owner_patterns.contains("acme*"));
        let facts = GithubFacts {
            pattern_matches: BTreeMap::from([(
                "acme*".to_owned(),
                vec!["acme".to_owned(), "acme-evil".to_owned(), "notacme".to_owned()],
            )]),
            ..GithubFacts::default()
        };
        let findings = audit_account(
            &snapshot,
            &AuditOptions {
                github: Some(&facts),
                ..AuditOptions::default()
            },
        );
        let strangers = of_code(&findings, FindingCode::OwnerWildcardMatchesStrangers);
        assert_eq!(strangers.len(), 1, "{findings:#?}");
        assert!(strangers[0].message.contains("\"acme-evil\""));
        // acme is ours (named exactly by another role); notacme does not match the pattern.
        assert!(!strangers[0].message.contains("\"acme\"") && !strangers[0].message.contains("notacme"));
    }

    #[test]
    fn an_owner_wildcard_is_narrowed_to_our_owners_seen_to_succeed() {
        let snapshot = account(&[("deploy", "StringLike", &["repo:*/web:*"])]);
        let record = history(
            "deploy",
            &[
                ("repo:acme/web:ref:refs/heads/main", NOW - DAY),
                ("repo:intruder/web:ref:refs/heads/main", NOW - DAY),
            ],
        );
        let wildcard = |owners: &[Owner]| {
            let findings = audit_account(
                &snapshot,
                &AuditOptions {
                    now: NOW,
                    unused_days: 90,
                    history: Some(&record),
                    known_owners: owners,
                    ..AuditOptions::default()
                },
            );
            of_code(&findings, FindingCode::OwnerWildcard)[0].clone()
        };
        // Nothing says who is ours: no suggestion.
        assert_eq!(wildcard(&[]).suggested_change, None);
        let owners = [Owner::parse("acme").unwrap()];
        let finding = wildcard(&owners);
        let change = finding.suggested_change.expect("narrowed to acme");
        assert_eq!(
            (change.add.as_slice(), change.remove.as_slice()),
            (
                &["repo:acme/web:*".to_owned()][..],
                &["repo:*/web:*".to_owned()][..]
            )
        );
        assert!(admits(&change, "repo:acme/web:ref:refs/heads/main"));
        assert!(!admits(&change, "repo:intruder/web:ref:refs/heads/main"));
        assert!(!admits(
            &change,
            "repo:oidc-watch-stranger/web:ref:refs/heads/main"
        ));
    }

    #[test]
    fn a_missing_sub_condition_is_filled_with_our_repositories() {
        let snapshot = snapshot(serde_json::json!({
            "AccountId": "111122223333",
            "Roles": [{"RoleName": "open", "Arn": "arn:aws:iam::111122223333:role/open",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Federated": GITHUB},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}]}}],
            "Complete": {"Roles": true}
        }));
        let record = history("open", &[("repo:acme/web:ref:refs/heads/main", NOW - DAY)]);
        let owners = [Owner::parse("acme").unwrap()];
        let findings = audit_account(
            &snapshot,
            &AuditOptions {
                now: NOW,
                history: Some(&record),
                known_owners: &owners,
                ..AuditOptions::default()
            },
        );
        let open = of_code(&findings, FindingCode::NoSubjectCondition);
        let change = open[0].suggested_change.as_ref().expect("a sub condition");
        assert_eq!(change.add, ["repo:acme/web:*"]);
        assert!(admits(change, "repo:acme/web:ref:refs/heads/main"));
        assert!(!admits(change, "repo:other/web:ref:refs/heads/main"));
    }

    #[test]
    fn history_finds_unused_roles_and_unused_trust() {
        let snapshot = account(&[
            ("deploy", "StringLike", &["repo:acme/web:*", "repo:acme/legacy:*"]),
            ("idle", "StringLike", &["repo:acme/web:*"]),
        ]);
        let mut record = history("deploy", &[("repo:acme/web:ref:refs/heads/main", NOW - DAY)]);
        record.successes.insert(
            "idle".to_owned(),
            vec![ObservedSubject {
                subject: "repo:acme/web:ref:refs/heads/main".to_owned(),
                provider: Some(GITHUB.to_owned()),
                audience: Some("sts.amazonaws.com".to_owned()),
                first_seen: NOW - 150 * DAY,
                last_seen: NOW - 150 * DAY,
            }],
        );
        let options = AuditOptions {
            now: NOW,
            unused_days: 90,
            history: Some(&record),
            ..AuditOptions::default()
        };
        let findings = audit_account(&snapshot, &options);
        let unused = of_code(&findings, FindingCode::UnusedRole);
        assert_eq!(
            unused.iter().map(|f| f.role.as_deref()).collect::<Vec<_>>(),
            [Some("idle")]
        );
        let trust = of_code(&findings, FindingCode::UnusedTrust);
        assert_eq!(trust.len(), 1, "{findings:#?}");
        assert_eq!(trust[0].value.as_deref(), Some("repo:acme/legacy:*"));
        let change = trust[0]
            .suggested_change
            .as_ref()
            .expect("the unused value removed");
        assert!(admits(change, "repo:acme/web:ref:refs/heads/main"));
        assert!(!admits(change, "repo:acme/legacy:ref:refs/heads/main"));

        // A history shorter than the window judges nothing.
        let mut short = record.clone();
        short.since = Some(NOW - 10 * DAY);
        let options = AuditOptions {
            history: Some(&short),
            ..options
        };
        let findings = audit_account(&snapshot, &options);
        assert!(of_code(&findings, FindingCode::UnusedRole).is_empty());
        assert!(of_code(&findings, FindingCode::UnusedTrust).is_empty());
    }

    #[test]
    fn client_ids_audiences_and_thumbprints() {
        let snapshot = snapshot(serde_json::json!({
            "AccountId": "111122223333",
            "Roles": [{"RoleName": "deploy", "Arn": "arn:aws:iam::111122223333:role/deploy",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Federated": GITHUB},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazon.com",
                        "token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/main"}}}]}}],
            "OpenIDConnectProviders": [
                {"Arn": GITHUB, "Url": "token.actions.githubusercontent.com",
                 "ClientIDList": ["sts.amazonaws.com"], "ThumbprintList": ["6938fd4d98bab03faadb97b34396831e3780aea1"]},
                {"Arn": "arn:aws:iam::111122223333:oidc-provider/idp.example.com", "Url": "idp.example.com",
                 "ClientIDList": ["x"], "ThumbprintList": ["0000000000000000000000000000000000000000"]}],
            "Complete": {"Roles": true, "OpenIDConnectProviders": true}
        }));
        let findings = audit_account(&snapshot, &AuditOptions::default());
        let audience = of_code(&findings, FindingCode::AudienceNotAllowed);
        assert_eq!(audience.len(), 1);
        assert_eq!(audience[0].value.as_deref(), Some("sts.amazon.com"));
        let client = of_code(&findings, FindingCode::UnusedClientId);
        assert_eq!(client.len(), 1);
        assert_eq!(client[0].value.as_deref(), Some("sts.amazonaws.com"));
        let thumbprint = of_code(&findings, FindingCode::ThumbprintNotUsed);
        assert_eq!(
            thumbprint
                .iter()
                .map(|f| f.provider.as_deref())
                .collect::<Vec<_>>(),
            [Some("token.actions.githubusercontent.com")]
        );
        assert!(findings
            .iter()
            .all(|f| f.severity == Severity::Low || f.code != FindingCode::ThumbprintNotUsed));
    }

    #[test]
    fn a_statement_without_aud_uses_every_client_id() {
        let snapshot = snapshot(serde_json::json!({
            "AccountId": "111122223333",
            "Roles": [{"RoleName": "deploy", "Arn": "arn:aws:iam::111122223333:role/deploy",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Federated": GITHUB},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/main"}}}]}}],
            "OpenIDConnectProviders": [{"Arn": GITHUB, "Url": "token.actions.githubusercontent.com", "ClientIDList": ["a", "b"]}],
            "Complete": {"Roles": true, "OpenIDConnectProviders": true}
        }));
        let findings = audit_account(&snapshot, &AuditOptions::default());
        assert!(
            of_code(&findings, FindingCode::UnusedClientId).is_empty(),
            "{findings:#?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn hostile_names_never_panic_and_never_reach_a_message_raw(
            sub in "\\PC{0,40}|repo:[a-z*?\u{202e}\n-]{0,12}/[a-z.\u{200b}\r]{0,10}:[^\"]{0,10}",
            login in "\\PC{0,20}|[\u{0}-\u{1f}\u{202e}a-z]{0,10}",
        ) {
            let snapshot = account(&[("deploy", "StringLike", &[sub.as_str()])]);
            let lookups = github_lookups(&snapshot);
            for owner in &lookups.owners {
                proptest::prop_assert!(owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            }
            let facts = GithubFacts {
                owners: lookups.owners.iter().map(|o| (o.clone(), OwnerFact::NotFound)).collect(),
                repositories: lookups.repositories.iter().map(|r| (r.clone(), RepositoryFact::Exists {
                    full_name: format!("{login}/{login}"), id: 1, owner_id: 2, immutable_subjects: true })).collect(),
                pattern_matches: lookups.owner_patterns.iter().map(|p| (p.clone(), vec![login.clone()])).collect(),
                skipped: Vec::new(),
            };
            let record = history("deploy", &[(sub.as_str(), NOW - DAY), (login.as_str(), NOW)]);
            let findings = audit_account(&snapshot, &AuditOptions {
                now: NOW, unused_days: 90, history: Some(&record), github: Some(&facts), ..AuditOptions::default() });
            for finding in &findings {
                proptest::prop_assert!(!finding.message.chars().any(crate::text::needs_escape), "{}", finding.message);
            }
        }
    }
}
