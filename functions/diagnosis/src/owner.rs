//! Who a job belongs to. Owners are scoped by provider: a GitHub owner (name and immutable
//! id), a GitLab top-level group, a Terraform Cloud organization, a CircleCI organization
//! id, a Buildkite organization, a Bitbucket workspace. An EKS issuer is one cluster, so
//! its owner is the account that registered the provider.
//!
//! A subject that names no owner (a custom template of `environment` alone, a
//! `job_workflow_ref` without the calling repository) can be minted by anyone: it is never
//! ours.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::claims::Claims;
use crate::pattern;
use crate::policy::{BaseOperator, PolicyDocument};
use crate::snapshot::AccountSnapshot;
use crate::subject::{ProviderKind, Subject};

/// The namespace an owner name lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerScope {
    GitHub,
    GitLab,
    Terraform,
    CircleCi,
    Buildkite,
    Bitbucket,
    Eks,
}

impl OwnerScope {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerScope::GitHub => "github",
            OwnerScope::GitLab => "gitlab",
            OwnerScope::Terraform => "terraform",
            OwnerScope::CircleCi => "circleci",
            OwnerScope::Buildkite => "buildkite",
            OwnerScope::Bitbucket => "bitbucket",
            OwnerScope::Eks => "eks",
        }
    }

    fn parse(name: &str) -> Option<OwnerScope> {
        Some(match name.to_ascii_lowercase().as_str() {
            "github" | "ghes" => OwnerScope::GitHub,
            "gitlab" => OwnerScope::GitLab,
            "terraform" | "tfc" | "terraform-cloud" | "hcp-terraform" => OwnerScope::Terraform,
            "circleci" => OwnerScope::CircleCi,
            "buildkite" => OwnerScope::Buildkite,
            "bitbucket" => OwnerScope::Bitbucket,
            "eks" => OwnerScope::Eks,
            _ => return None,
        })
    }

    pub fn of(kind: ProviderKind) -> Option<OwnerScope> {
        Some(match kind {
            ProviderKind::GitHub => OwnerScope::GitHub,
            ProviderKind::GitLab => OwnerScope::GitLab,
            ProviderKind::TerraformCloud => OwnerScope::Terraform,
            ProviderKind::CircleCi => OwnerScope::CircleCi,
            ProviderKind::Buildkite => OwnerScope::Buildkite,
            ProviderKind::Bitbucket => OwnerScope::Bitbucket,
            ProviderKind::Eks => OwnerScope::Eks,
            ProviderKind::Google | ProviderKind::Other => return None,
        })
    }

    /// Names compare case-insensitively where the provider does (GitHub, GitLab,
    /// Bitbucket); ids and organization names elsewhere exactly.
    fn folds_case(self) -> bool {
        matches!(
            self,
            OwnerScope::GitHub | OwnerScope::GitLab | OwnerScope::Bitbucket
        )
    }
}

/// One owner: `github:acme`, `github:acme@1234` (with GitHub's immutable owner id),
/// `gitlab:acme-group`, `eks:<cluster id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub scope: OwnerScope,
    pub name: String,
    pub id: Option<String>,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}:{}@{id}", self.scope.as_str(), self.name),
            None => write!(f, "{}:{}", self.scope.as_str(), self.name),
        }
    }
}

impl Serialize for Owner {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Owner::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Owner {
    pub fn new(scope: OwnerScope, name: impl Into<String>) -> Owner {
        Owner {
            scope,
            name: name.into(),
            id: None,
        }
    }

    /// `provider:owner` or a bare owner (GitHub); `name@id` adds GitHub's owner id.
    pub fn parse(entry: &str) -> Result<Owner, OwnerError> {
        let entry = entry.trim();
        let (scope, rest) = match entry.split_once(':') {
            Some((scope, rest)) => (
                OwnerScope::parse(scope).ok_or_else(|| OwnerError::UnknownProvider(scope.to_owned()))?,
                rest,
            ),
            None => (OwnerScope::GitHub, entry),
        };
        let (name, id) = match rest.split_once('@') {
            Some((name, id)) if scope == OwnerScope::GitHub => (name, Some(id.to_owned())),
            _ => (rest, None),
        };
        if name.is_empty() || name.contains(['*', '?', '/', ':']) || name.chars().any(char::is_whitespace) {
            return Err(OwnerError::Invalid(entry.to_owned()));
        }
        if id
            .as_deref()
            .is_some_and(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(OwnerError::Invalid(entry.to_owned()));
        }
        Ok(Owner {
            scope,
            name: name.to_owned(),
            id,
        })
    }

    /// Same owner: the same scope, the same id where both carry one (an owner id
    /// survives renames and cannot be re-registered), else the same name.
    pub fn is(&self, other: &Owner) -> bool {
        if self.scope != other.scope {
            return false;
        }
        if let (Some(a), Some(b)) = (&self.id, &other.id) {
            return a == b;
        }
        if self.scope.folds_case() {
            self.name.eq_ignore_ascii_case(&other.name)
        } else {
            self.name == other.name
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("unknown provider {0:?} (github, gitlab, terraform, circleci, buildkite, bitbucket, eks)")]
    UnknownProvider(String),
    #[error("not an owner: {0:?} (expected provider:owner, no wildcards)")]
    Invalid(String),
}

/// Who is ours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Owners {
    /// `ALLOWED_OWNERS` / `--owners`: exactly these.
    Allowed(Vec<Owner>),
    /// No allow-list: the owners that the account's trust policies name.
    #[default]
    FromTrustPolicies,
}

impl Owners {
    /// A comma-separated list (`ALLOWED_OWNERS`); empty means [`Owners::FromTrustPolicies`].
    pub fn parse_list(list: &str) -> Result<Owners, OwnerError> {
        let owners = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Owner::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if owners.is_empty() {
            Owners::FromTrustPolicies
        } else {
            Owners::Allowed(owners)
        })
    }
}

crate::names::named_enum! {
    /// `ours`, `foreign` (not ours, or no owner to judge by) or `unknown` (no evidence of who
    /// is ours: no allow-list and no trust policy seen).
    pub enum Trust {
        Ours = "ours",
        Foreign = "foreign",
        Unknown = "unknown",
    }
    unknown => Unknown
}

/// The owner a job's token names, if any.
pub fn owner_of(claims: &Claims) -> Option<Owner> {
    let provider = claims.provider.as_ref()?;
    let scope = OwnerScope::of(provider.kind)?;
    match scope {
        // The provider URL is the cluster (EKS) or the workspace (Bitbucket).
        OwnerScope::Eks => provider_owner(scope, &provider.url),
        OwnerScope::Bitbucket => provider_owner(scope, &provider.url),
        _ => subject_owner(scope, &claims.parsed_subject),
    }
}

/// The owner an exact subject (or a trust-policy value) names; `None` when it names
/// none, or names it with a wildcard.
pub fn subject_owner(scope: OwnerScope, subject: &Subject) -> Option<Owner> {
    let (name, id) = match (scope, subject) {
        (OwnerScope::GitHub, Subject::GitHub(s)) => (s.owner.clone()?, s.owner_id.clone()),
        (OwnerScope::GitLab, Subject::GitLab(s)) => {
            let path = s.get("namespace_path").or_else(|| s.get("project_path"))?;
            (path.split('/').next()?.to_owned(), None)
        }
        (OwnerScope::Terraform, Subject::TerraformCloud(s))
        | (OwnerScope::Buildkite, Subject::Buildkite(s)) => (s.get("organization")?.to_owned(), None),
        (OwnerScope::CircleCi, Subject::CircleCi(s)) => (s.org_id.clone(), None),
        _ => return None,
    };
    if name.is_empty() || pattern::has_wildcard(&name) || id.as_deref().is_some_and(pattern::has_wildcard) {
        return None;
    }
    Some(Owner { scope, name, id })
}

/// The owner a trust-policy `sub` value names. Patterns need not parse as a whole
/// subject (`organization:acme:pipeline:deploy:*`), so the owner's key is looked for too.
pub fn value_owner(scope: OwnerScope, kind: ProviderKind, value: &str) -> Option<Owner> {
    if let Some(owner) = subject_owner(scope, &Subject::parse(kind, value)) {
        return Some(owner);
    }
    let tokens: Vec<&str> = value.split(':').collect();
    let after = |key: &str| tokens.windows(2).find(|w| w[0] == key).map(|w| w[1]);
    let name = match scope {
        OwnerScope::GitLab => after("namespace_path")
            .or_else(|| after("project_path"))
            .and_then(|p| p.split('/').next()),
        OwnerScope::Terraform | OwnerScope::Buildkite => after("organization"),
        OwnerScope::CircleCi => value.strip_prefix("org/").and_then(|rest| rest.split('/').next()),
        _ => None,
    }?;
    (!name.is_empty() && !pattern::has_wildcard(name)).then(|| Owner::new(scope, name))
}

fn provider_owner(scope: OwnerScope, url: &str) -> Option<Owner> {
    let name = match scope {
        // oidc.eks.REGION.amazonaws.com/id/CLUSTER
        OwnerScope::Eks => url.rsplit('/').next()?,
        // api.bitbucket.org/2.0/workspaces/WORKSPACE/pipelines-config/identity/oidc
        OwnerScope::Bitbucket => {
            let mut parts = url.split('/');
            parts.find(|p| *p == "workspaces")?;
            parts.next()?
        }
        _ => return None,
    };
    (!name.is_empty()).then(|| Owner::new(scope, name))
}

/// The owners a trust policy trusts by name: the owner of every exact or wildcard-free
/// owner part of its `sub` values (and GitHub's `repository_owner(_id)`), for federated
/// Allow statements. EKS and Bitbucket providers it names are owned by the account.
pub fn owners_named_by(policy: &PolicyDocument) -> BTreeSet<Owner> {
    let mut owners = BTreeSet::new();
    for statement in policy.statements.iter().filter(|s| s.is_allow()) {
        for principal in statement.federated_principals() {
            let url = principal
                .split_once(":oidc-provider/")
                .map_or(principal.as_str(), |(_, u)| u);
            let kind = ProviderKind::from_url(url);
            let Some(scope) = OwnerScope::of(kind) else {
                continue;
            };
            if matches!(scope, OwnerScope::Eks | OwnerScope::Bitbucket) {
                owners.extend(provider_owner(scope, url));
                continue;
            }
            for condition in &statement.conditions {
                let positive = matches!(
                    condition.operator.base,
                    BaseOperator::StringEquals
                        | BaseOperator::StringLike
                        | BaseOperator::StringEqualsIgnoreCase
                );
                let Some((prefix, claim)) = crate::keys::split_claim_key(&condition.key) else {
                    continue;
                };
                if !positive || !prefix.eq_ignore_ascii_case(url) {
                    continue;
                }
                match claim.to_ascii_lowercase().as_str() {
                    "sub" => owners.extend(
                        condition
                            .values
                            .iter()
                            .filter_map(|v| value_owner(scope, kind, v)),
                    ),
                    "repository_owner" if scope == OwnerScope::GitHub => owners.extend(
                        condition
                            .values
                            .iter()
                            .filter(|v| !pattern::has_wildcard(v))
                            .map(|v| Owner::new(scope, v.clone())),
                    ),
                    _ => {}
                }
            }
        }
    }
    owners
}

/// Every owner the account's roles trust.
pub fn owners_of_account(account: &AccountSnapshot) -> BTreeSet<Owner> {
    account
        .roles
        .iter()
        .filter_map(|r| r.trust_policy.as_ref().ok())
        .flat_map(owners_named_by)
        .collect()
}

/// Whether `owner` is ours, given the allow-list or the owners the account trusts.
pub fn trust_of(owner: Option<&Owner>, owners: &Owners, trusted: Option<&BTreeSet<Owner>>) -> Trust {
    let allowed: Vec<&Owner> = match owners {
        Owners::Allowed(list) => list.iter().collect(),
        Owners::FromTrustPolicies => match trusted {
            Some(set) => set.iter().collect(),
            None => return Trust::Unknown,
        },
    };
    match owner {
        Some(owner) if allowed.iter().any(|a| a.is(owner)) => Trust::Ours,
        _ => Trust::Foreign,
    }
}

/// The same subject under an owner nobody here controls: what a stranger would present
/// by copying the job's workflow into their own repository. `None` when the subject
/// names no owner (then anyone can mint it as it is).
pub fn stranger_subject(scope: OwnerScope, subject: &Subject, sub: &str) -> Option<String> {
    let owner = subject_owner(scope, subject)?;
    const STRANGER: &str = "oidc-watch-stranger";
    const STRANGER_ID: &str = "999999999";
    let replaced = match scope {
        OwnerScope::GitHub => {
            let mut parts: Vec<String> = Vec::new();
            let mut tokens = sub.split(':').peekable();
            while let Some(token) = tokens.next() {
                parts.push(token.to_owned());
                let Some(value) = tokens.peek().copied() else {
                    break;
                };
                let value = match token {
                    "repo" | "repository" => match value.split_once('/') {
                        Some((o, rest)) => {
                            let o = match o.split_once('@') {
                                Some(_) => format!("{STRANGER}@{STRANGER_ID}"),
                                None => STRANGER.to_owned(),
                            };
                            format!("{o}/{rest}")
                        }
                        None => value.to_owned(),
                    },
                    "repository_owner" => STRANGER.to_owned(),
                    "repository_owner_id" => STRANGER_ID.to_owned(),
                    _ => value.to_owned(),
                };
                if token != "pull_request" {
                    tokens.next();
                    parts.push(value);
                }
            }
            parts.join(":")
        }
        OwnerScope::GitLab => sub
            .replace(
                &format!("project_path:{}/", owner.name),
                &format!("project_path:{STRANGER}/"),
            )
            .replace(
                &format!("namespace_path:{}", owner.name),
                &format!("namespace_path:{STRANGER}"),
            ),
        OwnerScope::Terraform | OwnerScope::Buildkite => sub.replacen(
            &format!("organization:{}", owner.name),
            &format!("organization:{STRANGER}"),
            1,
        ),
        OwnerScope::CircleCi => sub.replacen(
            &format!("org/{}/", owner.name),
            "org/00000000-0000-0000-0000-000000000000/",
            1,
        ),
        OwnerScope::Eks | OwnerScope::Bitbucket => return None,
    };
    (replaced != sub).then_some(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyDocument;

    fn github(sub: &str) -> Subject {
        Subject::parse(ProviderKind::GitHub, sub)
    }

    #[test]
    fn entries_are_provider_scoped_and_a_bare_name_is_github() {
        assert_eq!(
            Owner::parse("acme").unwrap(),
            Owner::new(OwnerScope::GitHub, "acme")
        );
        assert_eq!(
            Owner::parse("gitlab:acme-group").unwrap().scope,
            OwnerScope::GitLab
        );
        assert_eq!(
            Owner::parse("github:acme@1234").unwrap().id.as_deref(),
            Some("1234")
        );
        assert!(Owner::parse("acme*").is_err());
        assert!(Owner::parse("nope:acme").is_err());
        assert!(Owner::parse("github:acme@x1").is_err());
        assert_eq!(Owners::parse_list(" , ").unwrap(), Owners::FromTrustPolicies);
        assert_eq!(
            Owner::parse("github:acme@12").unwrap().to_string(),
            "github:acme@12"
        );
    }

    #[test]
    fn ownerless_subjects_have_no_owner() {
        assert_eq!(
            subject_owner(OwnerScope::GitHub, &github("environment:prod")),
            None
        );
        assert_eq!(
            subject_owner(
                OwnerScope::GitHub,
                &github("job_workflow_ref:acme/shared/.github/workflows/d.yml@refs/heads/main")
            ),
            None
        );
        assert_eq!(
            subject_owner(OwnerScope::GitHub, &github("repo:acme*/app:ref:refs/heads/main")),
            None
        );
        let owner = subject_owner(
            OwnerScope::GitHub,
            &github("repo:acme@12/app@34:ref:refs/heads/main"),
        )
        .unwrap();
        assert_eq!((owner.name.as_str(), owner.id.as_deref()), ("acme", Some("12")));
    }

    #[test]
    fn ids_decide_when_both_sides_have_one() {
        let named = Owner::parse("ACME").unwrap();
        let with_id = Owner::parse("acme@12").unwrap();
        let squatter = Owner::parse("acme@99").unwrap();
        assert!(named.is(&with_id) && with_id.is(&named));
        assert!(!with_id.is(&squatter));
        assert!(!Owner::parse("gitlab:acme").unwrap().is(&named));
    }

    #[test]
    fn policies_name_their_owners() {
        let policy = PolicyDocument::parse_str(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"Federated":"arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":["repo:acme/*","repo:*/x:*","environment:prod"]}}}]}"#,
        )
        .unwrap();
        let owners: Vec<String> = owners_named_by(&policy).iter().map(ToString::to_string).collect();
        assert_eq!(owners, ["github:acme"]);
    }

    #[test]
    fn strangers_differ_only_in_the_owner() {
        let sub = "repo:acme/app:ref:refs/heads/main";
        assert_eq!(
            stranger_subject(OwnerScope::GitHub, &github(sub), sub).as_deref(),
            Some("repo:oidc-watch-stranger/app:ref:refs/heads/main")
        );
        let sub = "repo:acme@1/app@2:environment:prod";
        assert_eq!(
            stranger_subject(OwnerScope::GitHub, &github(sub), sub).as_deref(),
            Some("repo:oidc-watch-stranger@999999999/app@2:environment:prod")
        );
        let sub = "repository_owner:acme:environment:prod";
        assert_eq!(
            stranger_subject(OwnerScope::GitHub, &github(sub), sub).as_deref(),
            Some("repository_owner:oidc-watch-stranger:environment:prod")
        );
        assert_eq!(
            stranger_subject(
                OwnerScope::GitHub,
                &github("environment:prod"),
                "environment:prod"
            ),
            None
        );
    }

    #[test]
    fn trust_needs_evidence() {
        let acme = Owner::parse("acme").unwrap();
        assert_eq!(
            trust_of(Some(&acme), &Owners::FromTrustPolicies, None),
            Trust::Unknown
        );
        let set = BTreeSet::from([acme.clone()]);
        assert_eq!(
            trust_of(Some(&acme), &Owners::FromTrustPolicies, Some(&set)),
            Trust::Ours
        );
        assert_eq!(
            trust_of(None, &Owners::FromTrustPolicies, Some(&set)),
            Trust::Foreign
        );
        let other = Owner::parse("other").unwrap();
        assert_eq!(
            trust_of(Some(&other), &Owners::Allowed(vec![acme]), None),
            Trust::Foreign
        );
    }
}
