//! What GitHub says about the owners and repositories the trust policies name: names that
//! no longer exist (anyone may register them), renamed or transferred repositories,
//! repositories that send immutable subjects, owner wildcards that match strangers.

use std::collections::BTreeSet;

use super::tighten::Judge;
use super::{AccountFinding, GithubFacts, GithubLookups, OwnerFact, RepositoryFact, TrustStatement};
use crate::audit::{FindingCode, Severity};
use crate::pattern::{has_wildcard, like};
use crate::policy::Condition;
use crate::suggest::{Edit, Target};
use crate::text::quote;

/// GitHub's longest login.
const MAX_LOGIN: usize = 39;
/// GitHub's longest repository name.
const MAX_REPOSITORY: usize = 100;
/// Logins named in one finding.
const MAX_NAMED_STRANGERS: usize = 10;

/// A GitHub `sub` value (`repo:OWNER/REPO:<context>`, names or `name@id`), or a
/// `repository` value (`OWNER/REPO`), split where the policy author split it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GithubValue<'a> {
    /// As written: may carry `@id` or a wildcard.
    pub owner: &'a str,
    pub repository: Option<&'a str>,
    /// From the `:` after the repository on (empty for a `repository` value).
    pub tail: &'a str,
}

impl<'a> GithubValue<'a> {
    /// A `sub` value naming a repository.
    pub fn parse(value: &'a str) -> Option<Self> {
        let rest = value.strip_prefix("repo:")?;
        let (segment, tail) = match rest.find(':') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let mut parsed = Self::repository_value(segment)?;
        parsed.tail = tail;
        Some(parsed)
    }

    /// A `repository` condition value, `OWNER/REPO`.
    pub fn repository_value(value: &'a str) -> Option<Self> {
        let (owner, repository) = match value.split_once('/') {
            Some((owner, repository)) => (owner, Some(repository)),
            None => (value, None),
        };
        Some(GithubValue {
            owner,
            repository,
            tail: "",
        })
    }

    pub fn owner_name(&self) -> &'a str {
        name_part(self.owner)
    }

    pub fn repository_name(&self) -> Option<&'a str> {
        self.repository.map(name_part)
    }

    /// Whether the value names owner and repository by id (`owner@id/repo@id`).
    pub fn is_immutable(&self) -> bool {
        self.owner.contains('@') || self.repository.is_some_and(|r| r.contains('@'))
    }

    /// `owner/repo` in lower case, when both are exact names GitHub could have.
    pub fn repository_key(&self) -> Option<String> {
        let (owner, repository) = (self.owner_name(), self.repository_name()?);
        (is_login(owner) && is_repository_name(repository))
            .then(|| format!("{owner}/{repository}").to_ascii_lowercase())
    }
}

fn name_part(text: &str) -> &str {
    text.split('@').next().unwrap_or(text)
}

/// What GitHub accepts as a login: letters, digits and single hyphens, at most 39.
pub(super) fn is_login(name: &str) -> bool {
    (1..=MAX_LOGIN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
}

fn is_repository_name(name: &str) -> bool {
    (1..=MAX_REPOSITORY).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// An owner position with a wildcard that still fixes a prefix (`acme-*`): worth asking
/// GitHub which logins match. A bare `*` matches everyone and needs no lookup.
fn owner_pattern(owner: &str) -> Option<&str> {
    let prefix = owner.split(['*', '?']).next().unwrap_or("");
    let pattern_chars = owner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-*?".contains(&b));
    (has_wildcard(owner) && !prefix.is_empty() && pattern_chars && owner.len() <= MAX_LOGIN * 2)
        .then_some(owner)
}

/// The values of a statement's positive `sub` and `repository` conditions, parsed, with
/// the condition each comes from and whether it is a `sub` condition.
fn named_values<'s>(trust: &'s TrustStatement<'_>) -> Vec<(&'s Condition, bool, &'s str, GithubValue<'s>)> {
    let mut values = Vec::new();
    for (condition, claim) in trust.positive_claim_conditions(&["sub", "repository"]) {
        let is_sub = claim == "sub";
        for value in &condition.values {
            let parsed = if is_sub {
                GithubValue::parse(value)
            } else {
                GithubValue::repository_value(value)
            };
            if let Some(parsed) = parsed {
                values.push((condition, is_sub, value.as_str(), parsed));
            }
        }
    }
    values
}

pub(super) fn lookups(trusts: &[TrustStatement<'_>]) -> GithubLookups {
    let mut lookups = GithubLookups::default();
    for trust in trusts.iter().filter(|t| t.is_github()) {
        for (_, _, _, value) in named_values(trust) {
            let owner = value.owner_name();
            if is_login(owner) {
                lookups.owners.insert(owner.to_ascii_lowercase());
                if let Some(key) = value.repository_key() {
                    lookups.repositories.insert(key);
                }
            } else if let Some(pattern) = owner_pattern(value.owner) {
                lookups.owner_patterns.insert(pattern.to_owned());
            }
        }
    }
    lookups
}

/// What the account audit needs to judge one statement against GitHub's answers.
pub(super) struct GithubContext<'a> {
    pub facts: &'a GithubFacts,
    pub known_owners: &'a BTreeSet<String>,
}

pub(super) fn findings(
    trust: &TrustStatement<'_>,
    context: &GithubContext<'_>,
    judge: Option<&Judge<'_>>,
    out: &mut Vec<AccountFinding>,
) {
    if !trust.is_github() {
        return;
    }
    let facts = context.facts;
    for (condition, is_sub, value, parsed) in named_values(trust) {
        let owner = parsed.owner_name();
        let owner_key = owner.to_ascii_lowercase();
        if let Some(OwnerFact::NotFound) = facts.owners.get(&owner_key) {
            let removal = judge.and_then(|j| removal(j, trust, condition, is_sub, value));
            out.push(trust.finding(
                FindingCode::OwnerNotFound,
                Severity::High,
                Some(owner.to_owned()),
                format!(
                    "Statement {} trusts {}, whose owner {} does not exist on GitHub: anyone may register that name and mint subjects this policy trusts. Remove the value (and the statement, if it is its only one).",
                    trust.index,
                    quote(value),
                    quote(owner)
                ),
                removal,
            ));
            continue;
        }
        if let Some(pattern) = owner_pattern(parsed.owner) {
            if let Some(logins) = facts.pattern_matches.get(pattern) {
                let strangers: Vec<&String> = logins
                    .iter()
                    .filter(|login| {
                        like(pattern, login) && !context.known_owners.contains(&login.to_ascii_lowercase())
                    })
                    .collect();
                if !strangers.is_empty() {
                    let named: Vec<String> = strangers
                        .iter()
                        .take(MAX_NAMED_STRANGERS)
                        .map(|l| quote(l))
                        .collect();
                    let more = strangers.len().saturating_sub(MAX_NAMED_STRANGERS);
                    out.push(trust.finding(
                        FindingCode::OwnerWildcardMatchesStrangers,
                        Severity::High,
                        Some(value.to_owned()),
                        format!(
                            "Statement {} allows {}, whose owner wildcard matches GitHub accounts that are not yours: {}{}. Their repositories can assume this role.",
                            trust.index,
                            quote(value),
                            named.join(", "),
                            if more > 0 { format!(" and {more} more") } else { String::new() }
                        ),
                        None,
                    ));
                }
            }
            continue;
        }
        let Some(key) = parsed.repository_key() else {
            continue;
        };
        let repository = format!("{owner}/{}", parsed.repository_name().unwrap_or(""));
        match facts.repositories.get(&key) {
            Some(RepositoryFact::NotFound) => {
                let removal = judge.and_then(|j| removal(j, trust, condition, is_sub, value));
                out.push(trust.finding(
                    FindingCode::RepositoryNotFound,
                    Severity::High,
                    Some(repository.clone()),
                    format!(
                        "Statement {} trusts {}, but the repository {} does not exist on GitHub: whoever controls {} may create it. Remove the value (and the statement, if it is its only one).",
                        trust.index,
                        quote(value),
                        quote(&repository),
                        quote(owner)
                    ),
                    removal,
                ));
            }
            Some(RepositoryFact::Exists {
                full_name,
                id,
                owner_id,
                immutable_subjects,
            }) => {
                let (new_owner, new_name) = full_name.split_once('/').unwrap_or((full_name.as_str(), ""));
                if !full_name.eq_ignore_ascii_case(&repository) && !parsed.is_immutable() {
                    let add = is_sub.then(|| format!("repo:{full_name}{}", parsed.tail));
                    let change = add
                        .filter(|_| !immutable_subjects)
                        .zip(judge)
                        .and_then(|(add, j)| j.verify(&addition(trust, condition, add)));
                    out.push(trust.finding(
                        FindingCode::RepositoryRenamed,
                        Severity::Medium,
                        Some(repository.clone()),
                        format!(
                            "Statement {} trusts {}, but GitHub now calls the repository {}: it was renamed or transferred, so its jobs present the new name{}.",
                            trust.index,
                            quote(value),
                            quote(full_name),
                            if new_owner.eq_ignore_ascii_case(owner) {
                                String::new()
                            } else {
                                format!(", and the old name {} is free for its owner to reuse", quote(&repository))
                            }
                        ),
                        change,
                    ));
                }
                if *immutable_subjects && is_sub && !parsed.is_immutable() {
                    let immutable = format!("repo:{new_owner}@{owner_id}/{new_name}@{id}{}", parsed.tail);
                    let change = judge.and_then(|j| j.verify(&addition(trust, condition, immutable.clone())));
                    out.push(trust.finding(
                        FindingCode::ImmutableSubjectsNotNamed,
                        Severity::Medium,
                        Some(value.to_owned()),
                        format!(
                            "Statement {} names {} by name, but the repository sends immutable subjects: add {} to {} (or its jobs are denied).",
                            trust.index,
                            quote(value),
                            quote(&immutable),
                            condition.key
                        ),
                        change,
                    ));
                }
            }
            None => {}
        }
    }
}

/// The value added under the condition's own operator and key.
fn addition(trust: &TrustStatement<'_>, condition: &Condition, value: String) -> Edit {
    Edit {
        statement: trust.index,
        target: Target::Condition {
            operator: condition.operator_name.clone(),
            key: condition.key.clone(),
        },
        add: vec![value],
        remove: Vec::new(),
    }
}

/// The value removed, when others stay in the condition (removing the last would drop it).
fn removal(
    judge: &Judge<'_>,
    trust: &TrustStatement<'_>,
    condition: &Condition,
    is_sub: bool,
    value: &str,
) -> Option<crate::suggest::SuggestedChange> {
    if !is_sub || condition.values.iter().filter(|v| *v != value).count() == 0 {
        return None;
    }
    judge.verify(&Edit {
        statement: trust.index,
        target: Target::Condition {
            operator: condition.operator_name.clone(),
            key: condition.key.clone(),
        },
        add: Vec::new(),
        remove: vec![value.to_owned()],
    })
}
